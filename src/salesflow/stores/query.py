"""Queries and what stores answer with, and the checks of store-method arguments.

`Query` (with its `SortKey`) is plain data that each store answers with its own
means, as a `Page` whose total `counted_total` computes the same way everywhere;
`GroupCount`, `SpanStats` and `SequenceConversion` are the rows of the report
methods. The ``check_*`` functions refuse the arguments of `UnitOfWork` methods
that are not valid, the same in every store. Re-exported by `salesflow.stores.base`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from salesflow.clock import require_aware
from salesflow.conditions import Condition, comparisons
from salesflow.errors import ValidationError
from salesflow.stores.columns import (
    ColumnType,
    check_comparison,
    check_fields,
    column_type,
    columns_of,
)
from salesflow.values import Record, RecordKind

__all__ = [
    "CONVERTIBLE",
    "GroupCount",
    "Page",
    "Query",
    "SequenceConversion",
    "SortKey",
    "SpanStats",
    "bounded_group",
    "check_claim",
    "check_conversion_window",
    "check_interaction_lookup",
    "check_key",
    "check_remove_scores",
    "check_scored_activities",
    "check_span",
    "check_top_scored",
    "counted_total",
    "group_count_bound",
]

R = TypeVar("R", bound=Record)


@attrs.frozen(kw_only=True)
class SortKey:
    """Order by ``field``; empty values sort first ascending, last descending.

    An option-set (enum) field such as ``rating`` or ``status`` sorts in the order
    its options are declared (``hot``, ``warm``, ``cold``), not alphabetically; a
    value outside the option set sorts after the options. See `sort_order`.
    """

    field: str
    descending: bool = False


def _sort(value: Any) -> tuple[SortKey, ...]:
    if isinstance(value, SortKey):
        return (value,)
    return tuple(value)


def _page_size(_: Any, __: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ValidationError(
            f"Query.limit={value!r} must be a whole number between 1 and 10000",
            field="Query.limit",
            value=value,
        )


def _offset(_: Any, __: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(
            f"Query.offset={value!r} must be a whole number >= 0",
            field="Query.offset",
            value=value,
        )


def _count_limit(_: Any, __: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValidationError(
            f"Query.count_limit={value!r} must be None or a whole number >= 0",
            field="Query.count_limit",
            value=value,
        )


def _search(_: Any, __: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > 200):
        raise ValidationError(
            f"Query.search={value!r} must be text of at most 200 characters",
            field="Query.search",
            value=value,
        )


@attrs.frozen(kw_only=True)
class Query:
    """Which records of one kind to return, in what order, which page.

    ``search`` is quick find: records whose name, company, email (per kind, see
    `search_keys`) *start with* the text, ignoring case; a leading ``*`` makes it
    *contains* (``"*smith"``). Results are always ordered totally: ``order_by``
    then id. Option-set (enum) fields sort in option order (see `SortKey`) while
    ``where`` compares their values as text, as for any text field.

    ``count_limit`` bounds the count behind `Page.total` (see `counted_total`):
    None counts every matching record; a number ``n`` counts at most
    ``max(n, offset + limit)`` of them, so a page of a million-record result does
    not cost a million-row count (a CRM's "5,000+"); 0 does not count at all.
    """

    where: Condition | None = None
    search: str | None = attrs.field(default=None, validator=_search)
    order_by: tuple[SortKey, ...] = attrs.field(default=(), converter=_sort)
    limit: int = attrs.field(default=50, validator=_page_size)
    offset: int = attrs.field(default=0, validator=_offset)
    count_limit: int | None = attrs.field(default=None, validator=_count_limit)

    def check(self, kind: RecordKind) -> None:
        """Raise `ValidationError` if the query names a field ``kind`` lacks or
        compares a field with a value of the wrong type (every store would
        otherwise answer differently, or silently match nothing)."""
        check_fields(kind, [s.field for s in self.order_by])
        if self.where is not None:
            for compare in comparisons(self.where):
                check_fields(kind, [compare.field])
                check_comparison(kind, compare)

    @property
    def search_term(self) -> tuple[str, bool] | None:
        """The case-folded search text and whether it is a *contains* search."""
        if self.search is None or not self.search.strip().lstrip("*").strip():
            return None
        raw = self.search.strip()
        contains = raw.startswith("*")
        return raw.lstrip("*").strip().casefold(), contains


@attrs.frozen(kw_only=True)
class Page(Generic[R]):
    """One page of a query's result and the total number of matching records.

    ``total_exact`` is False when the query's ``count_limit`` stopped the count:
    ``total`` is then a lower bound (at least that many records match).
    """

    items: tuple[R, ...]
    total: int
    offset: int
    limit: int
    total_exact: bool = True

    @property
    def has_more(self) -> bool:
        """True when records follow this page."""
        return self.offset + len(self.items) < self.total


def counted_total(query: Query, shown: int, count: Callable[[int | None], int]) -> tuple[int, bool]:
    """`Page.total` and `Page.total_exact` of a page of ``shown`` records of ``query``,
    the same in every store.

    A short page ends the result, so it needs no count. Otherwise ``count(n)``
    counts the matching records, stopping after ``n`` (all of them when None),
    and the total is exact unless more than the bound match: then it is the bound.
    With ``count_limit`` 0 a full page is not counted (the total is what was
    paged through, not exact); an empty page past the end still is, so the
    total is never more than the records that match.

    Args:
        query: The query answered.
        shown: How many records its page holds.
        count: Counts the matching records, at most the given number.
    """
    seen = query.offset + shown
    if shown < query.limit and (shown or query.offset == 0):
        return seen, True
    if query.count_limit is None:
        return count(None), True
    if query.count_limit == 0 and shown:
        return seen, False  # a full page: at least this many, and maybe more
    bound = max(query.count_limit, seen)
    counted = count(bound + 1)
    return (counted, True) if counted <= bound else (bound, False)


@attrs.frozen(kw_only=True)
class GroupCount:
    """How many matching records have ``value`` in the grouped field.

    ``exact`` is False when the count stopped at the query's ``count_limit`` (see
    `UnitOfWork.group_counts`): at least ``count`` records have the value ("5,000+").
    """

    value: Any
    count: int
    exact: bool = True


def group_count_bound(
    kind: RecordKind, field: str, query: Query
) -> tuple[int, tuple[str, ...]] | None:
    """The bound and the options when `UnitOfWork.group_counts` counts each group of
    ``field`` only up to ``query.count_limit``: a limit of 1 or more, and an
    option-set field (its groups are known without reading the rows: empty, then
    each option). None when every group is counted exactly."""
    if not query.count_limit:
        return None
    column = {c.name: c for c in columns_of(kind)}.get(field)
    if column is None or column.options is None:
        return None
    return query.count_limit, column.options


def bounded_group(value: Any, count: int, bound: tuple[int, tuple[str, ...]]) -> GroupCount:
    """The `GroupCount` of ``count`` records (counted up to one more than the bound)
    with ``value``: the bound and ``exact=False`` past it. Other text than the
    options (which no enum can hold, but a database might) is counted exactly."""
    limit, options = bound
    if count > limit and (value is None or value in options):
        return GroupCount(value=value, count=limit, exact=False)
    return GroupCount(value=value, count=count)


@attrs.frozen
class SpanStats:
    """How long from one date-time field to another over a group of records (see
    `UnitOfWork.span_stats`).

    Attributes:
        value: The group's value of the grouping field (None without grouping).
        count: How many records have both fields set.
        mean_seconds: The average, in seconds.
        min_seconds: The shortest.
        max_seconds: The longest.
    """

    value: Any
    count: int
    mean_seconds: float
    min_seconds: float
    max_seconds: float


@attrs.frozen
class SequenceConversion:
    """How many records connected to one sequence in a window converted (see
    `UnitOfWork.sequence_conversions`)."""

    sequence_id: str
    connected: int
    converted: int


CONVERTIBLE = (RecordKind.LEAD, RecordKind.OPPORTUNITY)
"""The record kinds whose conversion the sequence reports count: a lead qualified
into an opportunity, an opportunity won."""


def check_key(value: object, what: str) -> None:
    """Refuse an id or key that is not text (a store looks it up, so a list or a dict
    must be a clear error, not a crash in the lookup).

    Raises:
        ValidationError: ``value`` is not a string.
    """
    if not isinstance(value, str):
        raise ValidationError(
            f"{what}={value!r:.80} must be text (an id), not {type(value).__name__}",
            field=what,
            value=value,
        )


def check_span(kind: RecordKind, start: str, end: str, group_by: str | None) -> None:
    """Refuse `UnitOfWork.span_stats` fields that are not date-time fields of
    ``kind`` (or a grouping field ``kind`` cannot be queried on).

    Raises:
        ValidationError: the first field at fault.
    """
    check_fields(kind, [start, end] + ([group_by] if group_by is not None else []))
    for name in (start, end):
        if column_type(kind, name) is not ColumnType.DATETIME:
            raise ValidationError(
                f"{kind.value}.{name} is not a date-time field; span statistics measure "
                "from one date-time field to another (e.g. created_at to closed_at)",
                field=name,
                value=name,
            )


def check_conversion_window(kind: RecordKind, since: datetime, until: datetime) -> None:
    """Refuse `UnitOfWork.sequence_conversions` arguments.

    Raises:
        ValidationError: ``kind`` has no conversion, or a bound is naive.
    """
    if kind not in CONVERTIBLE:
        raise ValidationError(
            f"sequence conversions are counted for leads (qualified into an opportunity) "
            f"and opportunities (won), not {kind.value} records",
            field="kind",
            value=kind,
        )
    for label, value in (("since", since), ("until", until)):
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise ValidationError(
                f"{label}={value!r} must be a timezone-aware datetime", field=label, value=value
            )


def check_interaction_lookup(
    contact_ids: Sequence[str], lead_id: str | None, account_id: str | None, since: datetime | None
) -> None:
    """Refuse an interaction lookup that names nobody, ids that are not strings (a
    bare string would be read as its characters), or a naive ``since``."""
    if isinstance(contact_ids, str) or not all(isinstance(c, str) and c for c in contact_ids):
        raise ValidationError(
            f"contact_ids={contact_ids!r} must be a list of contact ids (strings), e.g. "
            f"[contact.id]",
            field="contact_ids",
            value=contact_ids,
        )
    if not contact_ids and lead_id is None and account_id is None:
        raise ValidationError(
            "interactions() needs contact_ids, lead_id or account_id: the interactions of "
            "everyone are never read at once",
            field="contact_ids",
            value=None,
        )
    if since is not None:
        require_aware(since, "since")


def check_claim(now: datetime, limit: int) -> None:
    """Refuse a naive ``now`` or a ``limit`` that is not a whole number >= 1."""
    require_aware(now, "now")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(
            f"limit={limit!r} must be a whole number >= 1", field="limit", value=limit
        )


def check_remove_scores(model_id: str, limit: int) -> None:
    """Refuse the arguments of `UnitOfWork.remove_model_scores` that are not valid."""
    if not isinstance(model_id, str) or not model_id:
        raise ValidationError(
            f"model_id={model_id!r} must be a scoring model's id (a non-empty string)",
            field="model_id",
            value=model_id,
        )
    check_top_scored(limit)


def check_scored_activities(where: Condition, limit: int, offset: int) -> None:
    """Refuse the arguments of `UnitOfWork.scored_lead_activities` that are not valid."""
    check_top_scored(limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(
            f"offset={offset!r} must be a whole number, 0 or more", field="offset", value=offset
        )
    Query(where=where).check(RecordKind.ACTIVITY)


def check_top_scored(limit: int) -> None:
    """Refuse a `UnitOfWork.top_scored_leads` ``limit`` out of 1 to 10,000."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise ValidationError(
            f"limit={limit!r} must be a whole number from 1 to 10000", field="limit", value=limit
        )
