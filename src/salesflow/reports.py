"""Reports on leads: where they come from and how many become opportunities, who
converts best, and why leads are disqualified.

Each report is a handful of grouped counts the store computes (``GROUP BY`` in
SQLite and PostgreSQL, a pass over the records in memory; see
`salesflow.stores.base.UnitOfWork.group_counts`) combined here into rows. A
`Report` has a title, column names and rows of plain values, ready for a table (the
CLI's ``salesflow report NAME``) or a chart.

The reports take an optional window on the leads' ``created_at`` (``since``
inclusive, ``until`` exclusive), so "leads of the last 90 days" is
``since=now - timedelta(days=90)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

import attrs

from salesflow.conditions import Condition, all_of, field
from salesflow.lead import Lead
from salesflow.stores.base import GroupCount, Query, UnitOfWork

__all__ = ["REPORTS", "Report", "ReportName", "rate"]


class ReportName(StrEnum):
    """The reports `Salesflow.report` knows."""

    LEAD_SOURCES = "lead_sources"
    CONVERSION_BY_OWNER = "conversion_by_owner"
    DISQUALIFICATION_REASONS = "disqualification_reasons"


@attrs.frozen(kw_only=True)
class Report:
    """A computed report.

    Attributes:
        name: Which report.
        title: A heading for people.
        columns: The column names.
        rows: The rows, each a tuple of plain values (text, whole numbers, `Decimal`
            percentages, or None).
    """

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def table(self) -> str:
        """The report as an aligned text table (what the CLI prints)."""
        cells = [self.columns] + [tuple(_cell(v) for v in row) for row in self.rows]
        widths = [max(len(str(r[i])) for r in cells) for i in range(len(self.columns))]
        lines = [self.title, ""]
        for index, row in enumerate(cells):
            lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value} %"
    return str(getattr(value, "value", value))


def rate(part: int, whole: int) -> Decimal | None:
    """``part`` as a percentage of ``whole`` to one decimal (None when ``whole`` is 0)."""
    if whole == 0:
        return None
    return (Decimal(part) * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


def _window(since: datetime | None, until: datetime | None, *more: Condition) -> Condition | None:
    parts = list(more)
    if since is not None:
        parts.append(field("created_at").ge(since))
    if until is not None:
        parts.append(field("created_at").lt(until))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else all_of(*parts)


def _counts(
    uow: UnitOfWork, group: str, since: datetime | None, until: datetime | None, *more: Condition
) -> dict[Any, int]:
    query = Query(where=_window(since, until, *more))
    found: list[GroupCount] = uow.group_counts(Lead, query, group)
    return {g.value: g.count for g in found}


def _ordered(keys: Sequence[Any], counts: dict[Any, int]) -> list[Any]:
    """Keys by count, largest first, then as the store ordered them."""
    position = {k: i for i, k in enumerate(keys)}
    return sorted(keys, key=lambda k: (-counts.get(k, 0), position[k]))


def lead_sources(uow: UnitOfWork, since: datetime | None, until: datetime | None) -> Report:
    """Leads per source, how many were qualified into an opportunity, and the rate."""
    leads = _counts(uow, "source", since, until)
    converted = _counts(
        uow,
        "source",
        since,
        until,
        field("status").eq("qualified"),
        field("qualifying_opportunity_id").not_null(),
    )
    rows = tuple(
        (key, leads[key], converted.get(key, 0), rate(converted.get(key, 0), leads[key]))
        for key in _ordered(list(leads), leads)
    )
    total = sum(leads.values())
    won = sum(converted.values())
    return Report(
        name=ReportName.LEAD_SOURCES.value,
        title="Where leads come from and how many become opportunities",
        columns=("source", "leads", "opportunities", "conversion"),
        rows=(*rows, ("all", total, won, rate(won, total))),
    )


def conversion_by_owner(uow: UnitOfWork, since: datetime | None, until: datetime | None) -> Report:
    """Per owner: leads, qualified, disqualified, still open, and the conversion rate
    (qualified of the leads decided either way)."""
    leads = _counts(uow, "owner_id", since, until)
    qualified = _counts(uow, "owner_id", since, until, field("status").eq("qualified"))
    disqualified = _counts(uow, "owner_id", since, until, field("status").eq("disqualified"))
    rows = []
    for owner in leads:
        q, d = qualified.get(owner, 0), disqualified.get(owner, 0)
        rows.append((owner, leads[owner], q, d, leads[owner] - q - d, rate(q, q + d)))
    rows.sort(key=lambda r: (-(r[5] if r[5] is not None else Decimal(-1)), -r[1], str(r[0])))
    return Report(
        name=ReportName.CONVERSION_BY_OWNER.value,
        title="Conversion rate by owner (qualified of the leads decided)",
        columns=("owner", "leads", "qualified", "disqualified", "open", "conversion"),
        rows=tuple(rows),
    )


def disqualification_reasons(
    uow: UnitOfWork, since: datetime | None, until: datetime | None
) -> Report:
    """How many leads were disqualified, per reason, and each reason's share."""
    counts = _counts(uow, "status_reason", since, until, field("status").eq("disqualified"))
    total = sum(counts.values())
    rows = tuple(
        (reason, counts[reason], rate(counts[reason], total))
        for reason in _ordered(list(counts), counts)
    )
    return Report(
        name=ReportName.DISQUALIFICATION_REASONS.value,
        title="Disqualified leads by reason",
        columns=("reason", "leads", "share"),
        rows=(*rows, ("all", total, rate(total, total))),
    )


REPORTS: dict[ReportName, Callable[[UnitOfWork, datetime | None, datetime | None], Report]] = {
    ReportName.LEAD_SOURCES: lead_sources,
    ReportName.CONVERSION_BY_OWNER: conversion_by_owner,
    ReportName.DISQUALIFICATION_REASONS: disqualification_reasons,
}
"""Each report's function."""
