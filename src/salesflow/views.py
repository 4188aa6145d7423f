"""The standard lead views and how a view request becomes a store query.

Views (R6.1): Open leads, Closed leads (qualified and disqualified), All leads,
My open leads (owned by the given user), Leads opened last week, Leads opened
this week (created in that calendar week of the organization). Each can be
searched, filtered on any field, sorted, grouped and paged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

import attrs

from salesflow.conditions import Condition, all_of, field
from salesflow.errors import ValidationError
from salesflow.lead import Lead, LeadStatus
from salesflow.stores.base import GroupCount, Query, SortKey, UnitOfWork
from salesflow.values import Record
from salesflow.worktime import OrganizationCalendar

__all__ = ["COUNT_LIMIT", "LeadView", "ViewResult", "lead_view_query", "read_lead_view"]

R = TypeVar("R", bound=Record)


class LeadView(StrEnum):
    """The standard lead views."""

    OPEN_LEADS = "open_leads"
    CLOSED_LEADS = "closed_leads"
    ALL_LEADS = "all_leads"
    MY_OPEN_LEADS = "my_open_leads"
    OPENED_LAST_WEEK = "opened_last_week"
    OPENED_THIS_WEEK = "opened_this_week"

    @property
    def label(self) -> str:
        """The view's display name."""
        return _LABELS[self]


_LABELS = {
    LeadView.OPEN_LEADS: "Open leads",
    LeadView.CLOSED_LEADS: "Closed leads",
    LeadView.ALL_LEADS: "All leads",
    LeadView.MY_OPEN_LEADS: "My open leads",
    LeadView.OPENED_LAST_WEEK: "Leads opened last week",
    LeadView.OPENED_THIS_WEEK: "Leads opened this week",
}

COUNT_LIMIT = 5_000
"""The usual bound of a view's count (`lead_view_query`'s ``count_limit``): exact
up to it, "5,000+" beyond, as CRMs show big views. Counting a million-row view
exactly reads every row's index entry on each page (about 100 milliseconds on
PostgreSQL for 800,000 open leads); counting to the bound reads at most this
many (or the rows paged through, on a deeper page), and a filter no index
answers reads their rows too, so the bound stays small."""

DEFAULT_ORDER = (SortKey(field="created_at", descending=True),)
"""Views list the newest leads first unless asked otherwise."""


def view_condition(
    view: LeadView, *, now: datetime, calendar: OrganizationCalendar, user_id: str | None
) -> Condition | None:
    """The condition that defines ``view`` at ``now``.

    Raises:
        ValidationError: ``MY_OPEN_LEADS`` without a ``user_id``.
    """
    match view:
        case LeadView.OPEN_LEADS:
            return field("status").eq(LeadStatus.OPEN)
        case LeadView.CLOSED_LEADS:
            return field("status").in_([LeadStatus.QUALIFIED, LeadStatus.DISQUALIFIED])
        case LeadView.ALL_LEADS:
            return None
        case LeadView.MY_OPEN_LEADS:
            if not user_id:
                raise ValidationError(
                    "the 'my_open_leads' view needs user_id: the user whose leads to list",
                    field="user_id",
                    value=user_id,
                )
            return all_of(field("status").eq(LeadStatus.OPEN), field("owner_id").eq(user_id))
        case LeadView.OPENED_LAST_WEEK | LeadView.OPENED_THIS_WEEK:
            weeks_ago = 1 if view is LeadView.OPENED_LAST_WEEK else 0
            start, end = calendar.week_bounds(now, weeks_ago)
            return all_of(field("created_at").ge(start), field("created_at").lt(end))
    raise AssertionError(view)  # pragma: no cover


def _page(value: int, name: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise ValidationError(
            f"{name}={value!r} must be a whole number between 1 and {upper}",
            field=name,
            value=value,
        )
    return value


def lead_view_query(
    view: LeadView | str,
    *,
    now: datetime,
    calendar: OrganizationCalendar,
    user_id: str | None = None,
    search: str | None = None,
    where: Condition | None = None,
    order_by: Sequence[SortKey] = (),
    group_by: str | None = None,
    page: int = 1,
    page_size: int = 50,
    count_limit: int | None = None,
) -> Query:
    """Build the store query for one page of a lead view.

    ``where`` narrows the view further; ``group_by`` sorts by that field first so
    each group's rows are together. ``page`` counts from 1. ``count_limit`` bounds
    the count of the view's rows (`Query.count_limit`; `COUNT_LIMIT` is the usual
    bound); None counts them all.

    Raises:
        ValidationError: an unknown view, a bad page, or a field leads lack.
    """
    try:
        chosen = LeadView(view)
    except ValueError:
        allowed = ", ".join(repr(v.value) for v in LeadView)
        raise ValidationError(
            f"view {view!r} is not a lead view; choose one of {allowed}", field="view", value=view
        ) from None
    _page(page, "page", 1_000_000)
    _page(page_size, "page_size", 10_000)
    base = view_condition(chosen, now=now, calendar=calendar, user_id=user_id)
    parts = [c for c in (base, where) if c is not None]
    condition: Condition | None = (
        None if not parts else parts[0] if len(parts) == 1 else all_of(*parts)
    )
    order = tuple(order_by) or DEFAULT_ORDER
    if group_by is not None:
        order = (SortKey(field=group_by), *[s for s in order if s.field != group_by])
    return Query(
        where=condition,
        search=search,
        order_by=order,
        limit=page_size,
        offset=(page - 1) * page_size,
        count_limit=count_limit,
    )


def read_lead_view(
    uow: UnitOfWork, query: Query, *, view: LeadView | str, group_by: str | None = None
) -> ViewResult[Lead]:
    """One page of a lead view: the rows of ``query`` (from `lead_view_query`), its
    total (bounded when the query's ``count_limit`` is), and the group counts.

    Raises:
        ValidationError: a field leads lack.
    """
    result = uow.query(Lead, query)
    groups = uow.group_counts(Lead, query, group_by) if group_by else []
    return ViewResult(
        view=LeadView(view).value,
        items=result.items,
        total=result.total,
        total_exact=result.total_exact,
        page=query.offset // query.limit + 1,
        page_size=query.limit,
        group_by=group_by,
        groups=tuple(groups),
    )


@attrs.frozen(kw_only=True)
class ViewResult(Generic[R]):
    """One page of a view: its rows, the total, and counts per group when grouped.

    ``total_exact`` is False when the count stopped at a bound (`COUNT_LIMIT`):
    the view then has *at least* ``total`` rows, shown as "5,000+".
    """

    view: str
    items: tuple[R, ...]
    total: int
    page: int
    page_size: int
    group_by: str | None = None
    groups: tuple[GroupCount, ...] = ()
    total_exact: bool = True

    @property
    def pages(self) -> int:
        """How many pages the view has at this page size (at least, when
        ``total_exact`` is False)."""
        return max(1, -(-self.total // self.page_size))

    def grouped(self) -> list[tuple[Any, list[R]]]:
        """This page's rows split by the value of ``group_by``, in order."""
        if self.group_by is None:
            return [(None, list(self.items))]
        from salesflow.stores.base import record_value

        result: list[tuple[Any, list[R]]] = []
        for item in self.items:
            value = record_value(item, self.group_by)
            if not result or result[-1][0] != value:
                result.append((value, []))
            result[-1][1].append(item)
        return result
