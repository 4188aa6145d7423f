"""The store port: units of work, queries and the catalogue of queryable fields.

A store keeps records of five kinds (lead, contact, account, opportunity,
activity). Every command of the engine runs in one `UnitOfWork`: reads see the
unit's own writes, and nothing is visible to others until `UnitOfWork.commit`.
Queries (`Query`) are plain data that each store answers with its own means:
the memory store in Python, the SQL stores as indexed SQL with the same result.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from functools import cache
from typing import Any, Generic, Protocol, TypeVar

import attrs

from salesflow.activity import Activity
from salesflow.clock import require_aware
from salesflow.conditions import Compare, Condition, Op, comparisons
from salesflow.definitions import StateDocument, StoredDefinition
from salesflow.due import DueItem
from salesflow.errors import ValidationError
from salesflow.interactions import Interaction
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.outbox import OutboxEntry
from salesflow.party import Account, Contact
from salesflow.scoring_compile import ScoreResult
from salesflow.sequences.enrollment import Enrollment
from salesflow.values import Money, Record, RecordKind, RecordRef, normalize_email, normalize_name

__all__ = [
    "CONVERTIBLE",
    "Column",
    "ColumnType",
    "GroupCount",
    "LookupKey",
    "Page",
    "Query",
    "SequenceConversion",
    "SortKey",
    "SpanStats",
    "Store",
    "StoredDefinition",
    "UnitOfWork",
    "check_claim",
    "check_comparison",
    "check_conversion_window",
    "check_fields",
    "check_interaction_lookup",
    "check_key",
    "check_remove_scores",
    "check_scored_activities",
    "check_span",
    "check_top_scored",
    "column_type",
    "columns_of",
    "counted_total",
    "derived_columns",
    "field_reader",
    "lookup_keys",
    "record_value",
    "search_keys",
    "sort_order",
]

R = TypeVar("R", bound=Record)


class ColumnType(StrEnum):
    """How a queryable field is typed in SQL."""

    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    DECIMAL = "decimal"
    DATETIME = "datetime"
    DATE = "date"


@attrs.frozen
class Column:
    """A queryable field: its name, SQL type and how to read it from a record.

    ``options`` is set for a field whose values come from an option set (an enum):
    the enum's values in declaration order, which is the order the field sorts in
    (see `sort_order`). It is ``None`` for every other field.
    """

    name: str
    type: ColumnType
    read: Callable[[Any], Any] = attrs.field(eq=False, repr=False)
    options: tuple[str, ...] | None = attrs.field(default=None, kw_only=True)


def _column_type(tp: Any) -> ColumnType | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else None
    if tp is bool:
        return ColumnType.BOOL
    if tp is int:
        return ColumnType.INT
    if tp is Decimal:
        return ColumnType.DECIMAL
    if tp is datetime:
        return ColumnType.DATETIME
    if tp is date:
        return ColumnType.DATE
    if tp is str or (isinstance(tp, type) and issubclass(tp, Enum)):
        return ColumnType.TEXT
    return None


def _options(tp: Any) -> tuple[str, ...] | None:
    """The values of ``tp`` in declaration order when it is an enum, else ``None``."""
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tuple(str(member.value) for member in tp)
    return None


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _reader(name: str) -> Callable[[Any], Any]:
    return lambda record: _plain(getattr(record, name))


def _money_reader(name: str, part: str) -> Callable[[Any], Any]:
    def read(record: Any) -> Any:
        money = getattr(record, name)
        return None if money is None else getattr(money, part)

    return read


def _ref_reader(name: str, part: str) -> Callable[[Any], Any]:
    def read(record: Any) -> Any:
        ref = getattr(record, name)
        return ref.kind.value if part == "kind" else ref.id

    return read


@cache
def columns_of(kind: RecordKind) -> tuple[Column, ...]:
    """The queryable fields of ``kind``, derived from the record class.

    Scalar fields are columns under their own name; a `Money` field ``x`` is the
    amount ``x`` plus the text column ``x_currency``; a `RecordRef` field ``x``
    is ``x_kind`` and ``x_id``. Lists (stakeholders, competitors) and ``custom``
    are not columns (custom fields are filtered as ``custom.<name>``). An enum
    field (an option set) is a text column whose `Column.options` list the enum's
    values in declaration order.
    """
    from salesflow.stores.codec import RECORD_TYPES

    cls = RECORD_TYPES[kind]
    hints = typing.get_type_hints(cls)
    result: list[Column] = []
    for a in attrs.fields(cls):
        tp = hints[a.name]
        name = a.name
        inner = tp
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [x for x in typing.get_args(tp) if x is not type(None)]
            inner = args[0] if len(args) == 1 else tp
        if inner is Money:
            result.append(Column(name, ColumnType.DECIMAL, _money_reader(name, "amount")))
            result.append(
                Column(f"{name}_currency", ColumnType.TEXT, _money_reader(name, "currency"))
            )
            continue
        if inner is RecordRef:
            result.append(Column(f"{name}_kind", ColumnType.TEXT, _ref_reader(name, "kind")))
            result.append(Column(f"{name}_id", ColumnType.TEXT, _ref_reader(name, "id")))
            continue
        ctype = _column_type(tp)
        if ctype is not None:
            result.append(Column(name, ctype, _reader(name), options=_options(inner)))
    return tuple(result)


@cache
def _columns_by_name(kind: RecordKind) -> dict[str, Column]:
    return {c.name: c for c in columns_of(kind)}


@attrs.frozen
class LookupKey:
    """A derived, indexed key used for exact lookups (matching, qualify)."""

    name: str
    read: Callable[[Any], str | None] = attrs.field(eq=False, repr=False)


def _lower(value: str | None) -> str | None:
    return normalize_email(value) if value else None


def _name(value: str | None) -> str | None:
    return normalize_name(value) if value else None


_LOOKUPS: dict[RecordKind, tuple[LookupKey, ...]] = {
    RecordKind.LEAD: (LookupKey("email_key", lambda r: _lower(r.email)),),
    RecordKind.CONTACT: (LookupKey("email_key", lambda r: _lower(r.email)),),
    RecordKind.ACCOUNT: (LookupKey("name_key", lambda r: _name(r.name)),),
    RecordKind.OPPORTUNITY: (),
    RecordKind.ACTIVITY: (),
}


def lookup_keys(kind: RecordKind) -> tuple[LookupKey, ...]:
    """The exact-lookup keys a store must index for ``kind``."""
    return _LOOKUPS[kind]


def _fold(value: str | None) -> str | None:
    return value.casefold() if value else None


_DERIVED: dict[RecordKind, tuple[Column, ...]] = {
    RecordKind.ACTIVITY: (Column("timeline_at", ColumnType.DATETIME, lambda r: r.timeline_at),),
}


def derived_columns(kind: RecordKind) -> tuple[Column, ...]:
    """Extra stored columns that only stores use (not queryable by name):
    the activity's ``timeline_at`` that orders a timeline."""
    return _DERIVED.get(kind, ())


_SEARCH: dict[RecordKind, tuple[LookupKey, ...]] = {
    RecordKind.LEAD: (
        LookupKey("search_name", lambda r: _fold(r.full_name)),
        LookupKey("search_last_name", lambda r: _fold(r.last_name)),
        LookupKey("search_company", lambda r: _fold(r.company_name)),
        LookupKey("search_email", lambda r: _fold(r.email)),
        LookupKey("search_topic", lambda r: _fold(r.topic)),
    ),
    RecordKind.CONTACT: (
        LookupKey("search_name", lambda r: _fold(r.full_name)),
        LookupKey("search_last_name", lambda r: _fold(r.last_name)),
        LookupKey("search_email", lambda r: _fold(r.email)),
    ),
    RecordKind.ACCOUNT: (LookupKey("search_name", lambda r: _fold(r.name)),),
    RecordKind.OPPORTUNITY: (LookupKey("search_name", lambda r: _fold(r.name)),),
    RecordKind.ACTIVITY: (LookupKey("search_subject", lambda r: _fold(r.subject)),),
}


def search_keys(kind: RecordKind) -> tuple[LookupKey, ...]:
    """The case-folded keys quick search looks in for ``kind``."""
    return _SEARCH[kind]


def record_value(record: Record, name: str) -> Any:
    """The value of queryable field ``name`` (or ``custom.<name>``) on ``record``.

    Raises:
        ValidationError: ``name`` is not a queryable field of the record's kind.
    """
    if name.startswith("custom."):
        return _plain(record.custom.get(name[7:]))
    column = _columns_by_name(record.KIND).get(name)
    if column is None:
        raise unknown_field(record.KIND, name)
    return column.read(record)


def field_reader(kind: RecordKind, name: str) -> Callable[[Record], Any]:
    """A function reading queryable field ``name`` from records of ``kind``, resolved
    once, for loops over many records (same values as `record_value`).

    Raises:
        ValidationError: ``name`` is not a queryable field of ``kind``.
    """
    if name.startswith("custom."):
        key = name[7:]
        return lambda record: _plain(record.custom.get(key))
    column = _columns_by_name(kind).get(name)
    if column is None:
        raise unknown_field(kind, name)
    return column.read


def unknown_field(kind: RecordKind, name: str) -> ValidationError:
    """The error for a query on a field ``kind`` does not have."""
    known = ", ".join(sorted(_columns_by_name(kind)))
    return ValidationError(
        f"{kind.value} has no queryable field {name!r}; use one of {known}, or "
        f"'custom.<name>' for a host field",
        field=name,
        value=name,
    )


def check_fields(kind: RecordKind, names: Sequence[str]) -> None:
    """Raise `ValidationError` for the first name that ``kind`` cannot be queried on."""
    columns = _columns_by_name(kind)
    for name in names:
        if not name.startswith("custom.") and name not in columns:
            raise unknown_field(kind, name)
        if name.startswith("custom.") and not name[7:].isidentifier():
            raise ValidationError(
                f"custom field name {name[7:]!r} is not valid in a query",
                field=name,
                value=name,
            )


_ACCEPTS: dict[ColumnType, tuple[tuple[type, ...], str]] = {
    ColumnType.TEXT: ((str,), "text"),
    ColumnType.INT: ((int, Decimal, float), "a number"),
    ColumnType.DECIMAL: ((int, Decimal, float), "a number (Decimal for money amounts)"),
    ColumnType.BOOL: ((bool,), "True or False"),
    ColumnType.DATETIME: ((datetime,), "a timezone-aware datetime"),
    ColumnType.DATE: ((date,), "a datetime.date"),
}


def check_comparison(kind: RecordKind, compare: Compare) -> None:
    """Refuse a comparison whose value cannot be compared with the field.

    Raises:
        ValidationError: naming the field, the value and what it needs.
    """
    ctype = column_type(kind, compare.field)
    if compare.op in (Op.STARTS_WITH, Op.CONTAINS) and ctype not in (None, ColumnType.TEXT):
        raise ValidationError(
            f"{compare.op.value} needs a text field, and {kind.value}.{compare.field} is "
            f"{ctype.value if ctype else 'custom'}",
            field=compare.field,
            value=compare.value,
        )
    values = compare.value if isinstance(compare.value, tuple) else (compare.value,)
    for value in values:
        if value is None:
            continue
        if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
            raise ValidationError(
                f"{kind.value}.{compare.field} is compared with a naive datetime "
                f"({value.isoformat()}); attach a time zone",
                field=compare.field,
                value=value,
            )
        if ctype is None:
            continue
        accepted, label = _ACCEPTS[ctype]
        wrong = not isinstance(value, accepted)
        wrong = wrong or (ctype is not ColumnType.BOOL and isinstance(value, bool))
        wrong = wrong or (ctype is ColumnType.DATE and isinstance(value, datetime))
        if wrong:
            raise ValidationError(
                f"{kind.value}.{compare.field} holds {label}; it cannot be compared with "
                f"{value!r} ({type(value).__name__})",
                field=compare.field,
                value=value,
            )


def column_type(kind: RecordKind, name: str) -> ColumnType | None:
    """The SQL type of column ``name`` of ``kind`` (``None`` for custom fields)."""
    column = _columns_by_name(kind).get(name)
    return column.type if column else None


def _by_value(value: Any) -> tuple[Any, ...]:
    return (False,) if value is None else (True, value)


def sort_order(kind: RecordKind, name: str) -> Callable[[Any], tuple[Any, ...]]:
    """The function that turns a value of field ``name`` of ``kind`` into its key
    for ascending order: how every store sorts by the field (`SortKey`) and orders
    its `GroupCount` values. Descending is the reverse.

    Empty (``None``) comes first. An option-set field (see `Column.options`) sorts
    by the position of its value in the option set (``hot`` < ``warm`` < ``cold``),
    and a value that is not one of the options after all of them, by its text.
    Every other field sorts by its value (text by code point). Only ordering is
    affected: filters compare option-set values as text, like any text field.
    """
    column = _columns_by_name(kind).get(name)
    if column is None or column.options is None:
        return _by_value
    ranks = {value: i for i, value in enumerate(column.options)}
    unknown = len(column.options)

    def key(value: Any) -> tuple[Any, ...]:
        if value is None:
            return (False,)
        return (True, ranks.get(value, unknown), value)

    return key


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
    """How many matching records have ``value`` in the grouped field."""

    value: Any
    count: int


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


class UnitOfWork(Protocol):
    """One all-or-nothing transaction over the store.

    Changes are visible to the unit itself at once and to everyone else only
    after `commit`. Leaving the context without commit rolls back.
    """

    def get(self, cls: type[R], record_id: str) -> R:
        """Return the record, or raise `NotFound`."""
        ...

    def find(self, cls: type[R], record_id: str) -> R | None:
        """Return the record or ``None``."""
        ...

    def add(self, record: Record) -> None:
        """Store a new record (its ``version`` must be 1), or raise `AlreadyExists`."""
        ...

    def update(self, record: Record) -> Record:
        """Store a changed record read at ``record.version``; return it at version + 1.

        Raises:
            NotFound: no such record.
            VersionConflict: the stored version is not ``record.version``.
        """
        ...

    def find_by(self, cls: type[R], key: str, value: str) -> list[R]:
        """Records whose lookup key ``key`` (see `lookup_keys`) equals ``value``,
        most recently modified first."""
        ...

    def find_many_by(self, cls: type[R], key: str, values: Iterable[str]) -> dict[str, list[R]]:
        """`find_by` for many values at once (a batch of intake rows): each distinct
        value → its records, most recently modified first (empty when none)."""
        ...

    def find_ids_by(self, cls: type[R], key: str, values: Iterable[str]) -> dict[str, list[str]]:
        """The ids of the records `find_many_by` would return (same order), without
        reading the records: the exact-match lookup of a batch of intake rows."""
        ...

    def query(self, cls: type[R], query: Query) -> Page[R]:
        """Answer ``query`` over records of ``cls``."""
        ...

    def group_counts(self, cls: type[R], query: Query, field: str) -> list[GroupCount]:
        """Count the records matching ``query`` (ignoring its paging) per value of
        ``field``, ordered as sorting by ``field`` orders them (`sort_order`): empty
        first, an option-set field in option order."""
        ...

    def span_stats(
        self, cls: type[R], query: Query, start: str, end: str, group_by: str | None = None
    ) -> list[SpanStats]:
        """Durations from date-time field ``start`` to ``end`` over the records
        matching ``query`` (its paging ignored) that have both set, per value of
        ``group_by`` (ordered as sorting by it orders them) or over all of them (one
        row, ``value`` None, when any record counts; none otherwise). Computed by the
        database in SQL stores.

        Raises:
            ValidationError: a field is unknown or not a date-time field (`check_span`).
        """
        ...

    def sequence_conversions(
        self,
        kind: RecordKind,
        since: datetime,
        until: datetime,
        *,
        owners: frozenset[str] | None = None,
        unowned: bool = True,
    ) -> list[SequenceConversion]:
        """Per sequence (by id), the enrollments of ``kind`` records connected in
        ``[since, until)`` and how many of their records have converted: a lead
        qualified into an opportunity, an opportunity won. Enrollments without a
        connection time (stored before salesflow kept one) are not counted. Computed
        by the database in SQL stores, through an index on (kind, connection time).

        ``owners`` counts only the enrollments of records those owners own (and, when
        ``unowned``, of records without an owner); None counts every record (an
        access-control scope, `salesflow.access.Scope`).

        Raises:
            ValidationError: see `check_conversion_window`.
        """
        ...

    def timeline(self, ref: RecordRef) -> list[Activity]:
        """The activities regarding ``ref`` in timeline order (`timeline_key`)."""
        ...

    # --- due items (see salesflow.due) ---------------------------------------------

    def schedule(self, item: DueItem) -> DueItem:
        """Store a new due item.

        Returns:
            ``item`` when it was stored; when ``item.key`` is set and an item with
            that key is already stored (also one this unit scheduled), that stored
            item instead, and nothing changes (scheduling is idempotent).

        Raises:
            AlreadyExists: an item with ``item.id`` is stored (and the key did not
                match one).
        """
        ...

    def cancel_due(self, item_id: str) -> bool:
        """Delete the item with ``item_id``; False when there is none."""
        ...

    def cancel_due_by_key(self, key: str) -> bool:
        """Delete the item with uniqueness key ``key``; False when there is none."""
        ...

    def claim_due(self, now: datetime, limit: int) -> list[DueItem]:
        """Take up to ``limit`` items with ``due_at <= now``, in ``(due_at, id)`` order.

        Until this unit ends, no other unit claims them: PostgreSQL locks their rows
        (``FOR UPDATE SKIP LOCKED``, so other claimers get the next items at once),
        SQLite and the memory store run one unit at a time. Items this unit already
        claimed are not returned again. Claiming changes nothing: `complete_due`
        deletes an item, and a unit that ends without commit leaves it due.

        Raises:
            ValidationError: ``now`` is naive or ``limit`` is not a whole number >= 1.
        """
        ...

    def complete_due(self, item_id: str) -> bool:
        """Delete a performed item (at commit it is gone for good); False when there
        is none."""
        ...

    def replace_due(self, current: DueItem, new: DueItem | None) -> bool:
        """Swap ``current`` for ``new`` (same id), or delete it when ``new`` is None,
        if the store still holds ``current`` unchanged (same id, ``due_at`` and
        ``attempts``); otherwise change nothing.

        The engine records a failed attempt this way, in a unit of its own after the
        failed one rolled back: an item that another worker performed or retried in
        between is left alone.

        Returns:
            True when the swap happened.
        """
        ...

    def next_due_at(self) -> datetime | None:
        """The earliest ``due_at`` of any stored item (claimed ones included), or
        None when there are no items."""
        ...

    def due_items(self, subject: RecordRef | None = None) -> list[DueItem]:
        """Every stored item, or those about ``subject``, in ``(due_at, id)`` order."""
        ...

    # --- definitions (see StoredDefinition) -----------------------------------------

    def add_definition(self, definition: StoredDefinition) -> None:
        """Store a new version of a definition.

        Raises:
            AlreadyExists: that ``(kind, id, version)`` is stored already.
        """
        ...

    def set_definition_state(
        self, kind: str, definition_id: str, version: int, state: str
    ) -> StoredDefinition:
        """Change the ``state`` of a stored version; return it as stored now.

        Raises:
            NotFound: no such version.
        """
        ...

    def find_definition(
        self, kind: str, definition_id: str, version: int | None = None
    ) -> StoredDefinition | None:
        """The stored ``version`` of a definition (the latest when None), or None."""
        ...

    def definitions(self, kind: str) -> list[StoredDefinition]:
        """The latest version of every definition of ``kind``, ordered by id."""
        ...

    # --- enrollments (see salesflow.sequences.enrollment) ---------------------------

    def add_enrollment(self, enrollment: Enrollment) -> None:
        """Store a new enrollment (its ``version`` must be 1).

        Raises:
            AlreadyExists: an enrollment with its id is stored.
            VersionConflict: its version is not 1.
        """
        ...

    def update_enrollment(self, enrollment: Enrollment) -> None:
        """Store the next state of an enrollment: the runtime hands back each new
        state one ``version`` higher than the state it was computed from, so the
        stored version must be ``enrollment.version - 1``.

        Raises:
            NotFound: no such enrollment.
            VersionConflict: the stored version is not ``enrollment.version - 1``
                (someone else moved it meanwhile).
        """
        ...

    def find_enrollment(self, enrollment_id: str) -> Enrollment | None:
        """The enrollment with ``enrollment_id``, or None."""
        ...

    def enrollments(
        self,
        *,
        record: RecordRef | None = None,
        sequence_id: str | None = None,
        running: bool = False,
    ) -> list[Enrollment]:
        """The enrollments of ``record`` and/or of ``sequence_id`` (every one when
        both are None), only those not ended (active or paused) when ``running``,
        ordered by id. Lookups by record and by sequence use an index."""
        ...

    # --- interactions (see salesflow.interactions) -----------------------------------

    def add_interaction(self, interaction: Interaction) -> None:
        """Store an interaction (they never change once stored).

        Raises:
            AlreadyExists: an interaction with its id is stored.
        """
        ...

    def find_interaction(self, interaction_id: str) -> Interaction | None:
        """The interaction with ``interaction_id``, or None."""
        ...

    def interactions(
        self,
        *,
        contact_ids: Sequence[str] = (),
        lead_id: str | None = None,
        account_id: str | None = None,
        since: datetime | None = None,
    ) -> list[Interaction]:
        """The interactions of any of ``contact_ids``, of ``lead_id`` or of
        ``account_id`` (their union; at least one must be given), that occurred at or
        after ``since`` when given, ordered by ``(occurred_at, id)``. Each lookup uses
        an index (contact, lead, account, each with the time).

        Raises:
            ValidationError: none of contact_ids, lead_id and account_id is given, or
                ``since`` is naive.
        """
        ...

    # --- lead scores (see salesflow.scoring) -------------------------------------------

    def add_score(self, score: ScoreResult) -> None:
        """Keep a lead's new score under one model; every score is kept (history),
        the latest per model is the current one."""
        ...

    def scores(self, lead_id: str) -> list[ScoreResult]:
        """The current score of the lead under each model (the latest ``scored_at``,
        then the latest added), ordered by model id."""
        ...

    def score_history(self, lead_id: str, model_id: str | None = None) -> list[ScoreResult]:
        """Every score the lead had (under ``model_id`` when given), oldest first
        (``scored_at``, then model id, then the order they were added)."""
        ...

    def best_scores(self, lead_ids: Iterable[str]) -> dict[str, int]:
        """Each lead's best current score (the highest points among its `scores`),
        for the leads of ``lead_ids`` that have a score."""
        ...

    def top_scored_leads(
        self, limit: int, after: tuple[str, int] | None = None
    ) -> list[tuple[str, int]]:
        """Up to ``limit`` ``(lead id, best score)`` pairs, the best score first, then
        by lead id; ``after`` (a pair returned before) continues after it. The SQL
        stores read an index, so a page costs the same at any size.

        Raises:
            ValidationError: ``limit`` is not a whole number from 1 to 10,000.
        """
        ...

    def remove_model_scores(self, model_id: str, limit: int) -> list[str]:
        """Delete every score ``model_id`` gave (its whole history) of up to ``limit``
        leads that have one, the first by lead id, and recompute those leads' best
        scores from what they have left (a stopped model's clean-up).

        Returns:
            The ids of the leads whose scores were removed; fewer than ``limit`` when
            no lead has a score of the model any more.

        Raises:
            ValidationError: ``model_id`` is not a non-empty string, or ``limit`` is
                not a whole number from 1 to 10,000.
        """
        ...

    def scored_lead_activities(
        self, where: Condition, limit: int, offset: int = 0
    ) -> list[tuple[Activity, int]]:
        """The activities matching ``where`` that regard a lead with a best score (see
        `best_scores`), each with that score, in the work list's score order: the
        best score first, then the due time (dated first, earliest first), then the
        lead's id, the activity's ``created_at`` and id; ``limit`` of them after the
        first ``offset``. A lead's first activity in this order is its next action.

        The SQL stores answer with one query that joins the activities to
        ``sf_best_scores`` and sorts in the database, then read the page's
        documents.

        Raises:
            ValidationError: ``where`` names a field activities lack, or ``limit``
                (1 to 10,000) or ``offset`` (0 or more) is not a whole number in range.
        """
        ...

    # --- running state (see salesflow.definitions.StateDocument) ---------------------

    def get_state(self, kind: str, key: str) -> StateDocument | None:
        """The state document ``(kind, key)``, or None."""
        ...

    def put_state(
        self,
        kind: str,
        key: str,
        document: dict[str, Any],
        *,
        expected_version: int | None,
        now: datetime,
    ) -> StateDocument:
        """Store a state document: a new one when ``expected_version`` is None, else
        the next version of the stored one read at ``expected_version``.

        Returns:
            The stored document (version 1, or ``expected_version + 1``).

        Raises:
            AlreadyExists: ``expected_version`` is None but the state exists.
            NotFound: ``expected_version`` is given but there is no such state.
            VersionConflict: the stored version is not ``expected_version``.
            ValidationError: ``document`` is not JSON values, or ``now`` is naive.
        """
        ...

    def states(self, kind: str) -> list[StateDocument]:
        """Every state document of ``kind``, ordered by key."""
        ...

    # --- the outbox (see salesflow.outbox) ---------------------------------------------

    def put_outbox(self, entry: OutboxEntry) -> None:
        """Keep ``entry`` (the events of this unit) until `remove_outbox` removes it.

        Raises:
            AlreadyExists: an entry with its id is stored.
            ValidationError: ``entry`` is not an `OutboxEntry`.
        """
        ...

    def claim_outbox(self, before: datetime, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` stored entries created at or before ``before``, oldest first
        (``created_at``, then id). PostgreSQL locks them until the unit ends and skips
        those another unit holds, so two deliverers never take the same entry.

        Raises:
            ValidationError: ``before`` is naive, or ``limit`` is not 1 to 10,000.
        """
        ...

    def remove_outbox(self, ids: Iterable[str]) -> int:
        """Remove the entries with these ids; returns how many were stored."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A block whose changes are undone, and only those, when it raises: the unit
        goes on as it was before the block (SQL ``SAVEPOINT``; MemoryStore keeps a
        copy of the unit's pending changes). The engine runs each automation rule's
        action in one, so a failed action leaves nothing behind."""
        ...

    def commit(self) -> None:
        """Make every change of this unit durable and visible."""
        ...


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


class Store(Protocol):
    """Where records live. `unit_of_work` is the only way in."""

    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]:
        """Open a unit of work; it rolls back unless committed."""
        ...

    def migrate(self) -> int:
        """Rewrite every stored document older than the codec's current schema.

        Each such record is decoded (which runs the codec's migrations) and stored
        again exactly as a write stores it, so every column derived from it is
        current, but its ``version`` is kept: a migration is not an edit. The work
        is done in transactions of bounded size; when it fails part-way, what is
        done stays done and calling again carries on.

        Returns:
            How many records were rewritten (0 when every document was current).

        Raises:
            StoreError: the store holds a document from a newer schema than the
                codec understands, or one that cannot be migrated or read.
        """
        ...

    def close(self) -> None:
        """Release connections and files. The store cannot be used afterwards."""
        ...


def iter_kinds() -> Iterator[tuple[RecordKind, type[Record]]]:
    """Every stored kind with its class."""
    yield RecordKind.LEAD, Lead
    yield RecordKind.CONTACT, Contact
    yield RecordKind.ACCOUNT, Account
    yield RecordKind.OPPORTUNITY, Opportunity
    yield RecordKind.ACTIVITY, Activity
