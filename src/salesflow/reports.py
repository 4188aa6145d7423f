"""Reports on leads and sequences: where leads come from and how many become
opportunities, who converts best, why leads are disqualified, how long qualifying
takes, and how well sequences convert against the previous equal period.

Each report is a handful of grouped counts and durations the store computes
(``GROUP BY`` in SQLite and PostgreSQL, a pass over the records in memory; see
`UnitOfWork.group_counts`, `UnitOfWork.span_stats` and
`UnitOfWork.sequence_conversions`) combined here into rows. A
`Report` has a title, column names and rows of plain values, ready for a table (the
CLI's ``salesflow report NAME``) or a chart.

The reports take an optional window on the leads' ``created_at`` (``since``
inclusive, ``until`` exclusive), so "leads of the last 90 days" is
``since=now - timedelta(days=90)``, and a `Scope`: the owners whose records count
(every record for the system; for an actor, what `Privilege.VIEW_REPORTS` reaches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

import attrs

from salesflow.access import EVERYTHING, Scope
from salesflow.conditions import Condition, all_of, field
from salesflow.lead import Lead
from salesflow.stores.base import GroupCount, Query, UnitOfWork
from salesflow.values import RecordKind

__all__ = ["LEAD_TYPE_FIELDS", "REPORTS", "Report", "ReportName", "Window", "rate"]


class ReportName(StrEnum):
    """The reports `Salesflow.report` knows."""

    LEAD_SOURCES = "lead_sources"
    LEAD_TYPES = "lead_types"
    CONVERSION_BY_OWNER = "conversion_by_owner"
    DISQUALIFICATION_REASONS = "disqualification_reasons"
    TIME_TO_QUALIFY = "time_to_qualify"
    SEQUENCE_SUCCESS = "sequence_success"


@attrs.frozen(kw_only=True)
class Report:
    """A computed report.

    Attributes:
        name: Which report.
        title: A heading for people.
        columns: The column names.
        rows: The rows, each a tuple of plain values (text, whole numbers, `Decimal`
            rates and days, or None).
        units: Per column, what its numbers count (``"%"``, ``"days"``, or ``""``),
            shown after them in `table`.
    """

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    units: tuple[str, ...] = ()

    def table(self) -> str:
        """The report as an aligned text table (what the CLI prints)."""
        units = self.units or ("",) * len(self.columns)
        cells = [self.columns] + [
            tuple(_cell(v, u) for v, u in zip(row, units, strict=True)) for row in self.rows
        ]
        widths = [max(len(str(r[i])) for r in cells) for i in range(len(self.columns))]
        lines = [self.title, ""]
        for index, row in enumerate(cells):
            lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    text = str(getattr(value, "value", value))
    return f"{text} {unit}" if unit else text


def rate(part: int, whole: int) -> Decimal | None:
    """``part`` as a percentage of ``whole`` to one decimal (None when ``whole`` is 0)."""
    if whole == 0:
        return None
    return (Decimal(part) * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


@attrs.frozen
class Window:
    """What a report counts: leads created in ``[since, until)`` (no bound when None)
    whose owner is in ``scope``."""

    since: datetime | None = None
    until: datetime | None = None
    scope: Scope = EVERYTHING


def _window(window: Window, *more: Condition) -> Condition | None:
    since, until = window.since, window.until
    parts = list(more)
    reach = window.scope.condition()
    if reach is not None:
        parts.append(reach)
    if since is not None:
        parts.append(field("created_at").ge(since))
    if until is not None:
        parts.append(field("created_at").lt(until))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else all_of(*parts)


def _counts(uow: UnitOfWork, group: str, window: Window, *more: Condition) -> dict[Any, int]:
    query = Query(where=_window(window, *more))
    found: list[GroupCount] = uow.group_counts(Lead, query, group)
    return {g.value: g.count for g in found}


def _ordered(keys: Sequence[Any], counts: dict[Any, int]) -> list[Any]:
    """Keys by count, largest first, then as the store ordered them."""
    position = {k: i for i, k in enumerate(keys)}
    return sorted(keys, key=lambda k: (-counts.get(k, 0), position[k]))


def _conversions(
    uow: UnitOfWork, window: Window, group: str
) -> tuple[list[tuple[Any, int, int, Decimal | None]], int, int]:
    """Per value of ``group``: leads, those qualified into an opportunity and the rate,
    largest first; and the totals of both."""
    leads = _counts(uow, group, window)
    converted = _counts(
        uow,
        group,
        window,
        field("status").eq("qualified"),
        field("qualifying_opportunity_id").not_null(),
    )
    rows = [
        (key, leads[key], converted.get(key, 0), rate(converted.get(key, 0), leads[key]))
        for key in _ordered(list(leads), leads)
    ]
    return rows, sum(leads.values()), sum(converted.values())


def lead_sources(uow: UnitOfWork, window: Window) -> Report:
    """Leads per source, how many were qualified into an opportunity, and the rate."""
    found, total, won = _conversions(uow, window, "source")
    rows = tuple(found)
    return Report(
        name=ReportName.LEAD_SOURCES.value,
        title="Where leads come from and how many become opportunities",
        columns=("source", "leads", "opportunities", "conversion"),
        units=("", "", "", "%"),
        rows=(*rows, ("all", total, won, rate(won, total))),
    )


LEAD_TYPE_FIELDS = (
    "rating",
    "need",
    "purchase_timeframe",
    "budget",
    "purchase_process",
    "industry",
)
"""The lead fields `lead_types` compares: what kind of lead it is, by the seller's
qualifying questions and its industry."""


def lead_types(uow: UnitOfWork, window: Window) -> Report:
    """Which kinds of lead most often become opportunities: for each field of
    `LEAD_TYPE_FIELDS` and each of its values, the leads, those qualified into an
    opportunity and the rate, the best-converting value of each field first (then
    the most leads)."""
    rows: list[tuple[Any, ...]] = []
    for name in LEAD_TYPE_FIELDS:
        found, _, _ = _conversions(uow, window, name)
        found.sort(key=lambda r: (-(r[3] if r[3] is not None else Decimal(-1)), -r[1]))
        rows.extend((name, value, n, won, share) for value, n, won, share in found)
    return Report(
        name=ReportName.LEAD_TYPES.value,
        title="Which kinds of lead become opportunities",
        columns=("field", "value", "leads", "opportunities", "conversion"),
        units=("", "", "", "", "%"),
        rows=tuple(rows),
    )


def conversion_by_owner(uow: UnitOfWork, window: Window) -> Report:
    """Per owner: leads, qualified, disqualified, still open, and the conversion rate
    (qualified of the leads decided either way)."""
    leads = _counts(uow, "owner_id", window)
    qualified = _counts(uow, "owner_id", window, field("status").eq("qualified"))
    disqualified = _counts(uow, "owner_id", window, field("status").eq("disqualified"))
    rows = []
    for owner in leads:
        q, d = qualified.get(owner, 0), disqualified.get(owner, 0)
        rows.append((owner, leads[owner], q, d, leads[owner] - q - d, rate(q, q + d)))
    rows.sort(key=lambda r: (-(r[5] if r[5] is not None else Decimal(-1)), -r[1], str(r[0])))
    return Report(
        name=ReportName.CONVERSION_BY_OWNER.value,
        title="Conversion rate by owner (qualified of the leads decided)",
        columns=("owner", "leads", "qualified", "disqualified", "open", "conversion"),
        units=("", "", "", "", "", "%"),
        rows=tuple(rows),
    )


def disqualification_reasons(uow: UnitOfWork, window: Window) -> Report:
    """How many leads were disqualified, per reason, and each reason's share."""
    counts = _counts(uow, "status_reason", window, field("status").eq("disqualified"))
    total = sum(counts.values())
    rows = tuple(
        (reason, counts[reason], rate(counts[reason], total))
        for reason in _ordered(list(counts), counts)
    )
    return Report(
        name=ReportName.DISQUALIFICATION_REASONS.value,
        title="Disqualified leads by reason",
        columns=("reason", "leads", "share"),
        units=("", "", "%"),
        rows=(*rows, ("all", total, rate(total, total))),
    )


def _days(seconds: float) -> Decimal:
    return (Decimal(repr(seconds)) / 86400).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


def time_to_qualify(uow: UnitOfWork, window: Window) -> Report:
    """Per owner: leads qualified and the days from creation to qualification
    (average, fastest, slowest); then everyone."""
    query = Query(where=_window(window, field("status").eq("qualified")))
    by_owner = uow.span_stats(Lead, query, "created_at", "closed_at", "owner_id")
    overall = uow.span_stats(Lead, query, "created_at", "closed_at")
    rows = [
        (s.value, s.count, _days(s.mean_seconds), _days(s.min_seconds), _days(s.max_seconds))
        for s in sorted(by_owner, key=lambda s: (s.mean_seconds, str(s.value)))
    ]
    for s in overall:
        rows.append(
            ("all", s.count, _days(s.mean_seconds), _days(s.min_seconds), _days(s.max_seconds))
        )
    return Report(
        name=ReportName.TIME_TO_QUALIFY.value,
        title="Days from a lead's creation to its qualification",
        columns=("owner", "qualified", "average", "fastest", "slowest"),
        units=("", "", "days", "days", "days"),
        rows=tuple(rows),
    )


PERIODS = (30, 90, 180, 365, 730)
"""The windows of `sequence_success`, in days (730: the product's "2 years")."""


def sequence_success(uow: UnitOfWork, window: Window, now: datetime) -> Report:
    """For lead and opportunity sequences, over the last 30, 90, 180 and 365 days and
    2 years (730 days; ending at ``until``, or now): records connected, those converted (a lead
    qualified into an opportunity, an opportunity won), the success rate, and the
    same for the previous equal period with the change in percentage points.
    ``since`` is not used: each period sets its own start."""
    end = window.until if window.until is not None else now
    reach = window.scope

    def conversions(kind: RecordKind, since: datetime, until: datetime) -> list[Any]:
        return uow.sequence_conversions(
            kind, since, until, owners=reach.owners, unowned=reach.unowned
        )

    rows = []
    for kind in (RecordKind.LEAD, RecordKind.OPPORTUNITY):
        for days in PERIODS:
            span = timedelta(days=days)
            current = {c.sequence_id: c for c in conversions(kind, end - span, end)}
            before = {c.sequence_id: c for c in conversions(kind, end - 2 * span, end - span)}
            for sequence_id in sorted(current.keys() | before.keys()):
                now_c = current.get(sequence_id)
                was_c = before.get(sequence_id)
                rate_now = rate(now_c.converted, now_c.connected) if now_c else None
                rate_was = rate(was_c.converted, was_c.connected) if was_c else None
                change = (
                    rate_now - rate_was if rate_now is not None and rate_was is not None else None
                )
                rows.append(
                    (
                        kind.value,
                        sequence_id,
                        days,
                        now_c.connected if now_c else 0,
                        now_c.converted if now_c else 0,
                        rate_now,
                        was_c.connected if was_c else 0,
                        was_c.converted if was_c else 0,
                        rate_was,
                        change,
                    )
                )
    return Report(
        name=ReportName.SEQUENCE_SUCCESS.value,
        title="Sequence success rate (records converted of those connected), against the "
        "previous equal period",
        columns=(
            "record type",
            "sequence",
            "days",
            "connected",
            "converted",
            "success",
            "before: connected",
            "converted",
            "success",
            "change",
        ),
        units=("", "", "days", "", "", "%", "", "", "%", "points"),
        rows=tuple(rows),
    )


def _lead_report(
    make: Callable[[UnitOfWork, Window], Report],
) -> Callable[[UnitOfWork, Window, datetime], Report]:
    return lambda uow, window, now: make(uow, window)


REPORTS: dict[ReportName, Callable[[UnitOfWork, Window, datetime], Report]] = {
    ReportName.LEAD_SOURCES: _lead_report(lead_sources),
    ReportName.LEAD_TYPES: _lead_report(lead_types),
    ReportName.CONVERSION_BY_OWNER: _lead_report(conversion_by_owner),
    ReportName.DISQUALIFICATION_REASONS: _lead_report(disqualification_reasons),
    ReportName.TIME_TO_QUALIFY: _lead_report(time_to_qualify),
    ReportName.SEQUENCE_SUCCESS: sequence_success,
}
"""Each report's function: ``(unit of work, window, now) -> Report``."""
