"""The result of a Monte Carlo run: the funnel of one sequence, as plain values.

`salesflow.testing.montecarlo.run_monte_carlo` builds a `Funnel`; this module only
holds the values and turns them into text (`Funnel.rows`, `Funnel.table`) for a
command line or a test report. Every figure is an exact count over the simulated
records; shares are derived from the counts when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import attrs

__all__ = ["Funnel", "OutcomeTimes", "StepFunnel", "WorkloadStats"]

ACTIVE = "active"
"""The outcome of enrollments still running when the simulation's horizon came."""


@attrs.frozen(kw_only=True)
class OutcomeTimes:
    """How long the enrollments ending in one outcome took, from connection to end.

    Percentiles are nearest-rank: the median is the smallest duration at least half
    of them do not exceed, ``p90`` the one at least 90 % do not exceed.

    Attributes:
        median: The median time to the outcome.
        p90: The 90th percentile.
        longest: The longest time to the outcome.
    """

    median: timedelta
    p90: timedelta
    longest: timedelta


@attrs.frozen(kw_only=True)
class StepFunnel:
    """What happened at one step.

    Attributes:
        step_id: The step.
        kind: Its kind (``call``, ``condition`` …).
        reached: Enrollments that entered the step (each counted once, even when a
            looping sequence brings it back).
        performed: Activity steps: enrollments whose activity was completed by the
            seller or sent by the engine; conditions: enrollments that took the yes
            branch; A/B tests: got variant A; other steps: 0.
        declined: Manual steps: skipped by the seller; conditions: took the no
            branch; A/B tests: got variant B; other steps: 0.
        outcomes: How the enrollments that reached the step ended, per outcome.
    """

    step_id: str
    kind: str
    reached: int
    performed: int
    declined: int
    outcomes: Mapping[str, int] = attrs.field(factory=dict, hash=False)

    @property
    def yes_share(self) -> float | None:
        """Conditions: the share of decided enrollments that took yes, else ``None``."""
        decided = self.performed + self.declined
        if self.kind != "condition" or not decided:
            return None
        return self.performed / decided

    def conversion(self, outcome: str) -> float | None:
        """The share of the enrollments that reached this step and ended in ``outcome``.

        Args:
            outcome: An end outcome (``meeting_booked`` …) or an exit key.

        Returns:
            The share, or ``None`` when no enrollment reached the step.
        """
        if not self.reached:
            return None
        return self.outcomes.get(outcome, 0) / self.reached


@attrs.frozen(kw_only=True)
class WorkloadStats:
    """The manual steps one seller got of one kind, per day.

    Attributes:
        owner_id: The seller.
        kind: The manual step kind (``email``, ``call``, ``task``, ``linkedin``, ``sms``).
        per_day: Steps that became due on each local day of the seller's calendar.
    """

    owner_id: str
    kind: str
    per_day: Mapping[date, int] = attrs.field(factory=dict, hash=False)

    @property
    def total(self) -> int:
        """All the steps of this kind for this seller."""
        return sum(self.per_day.values())

    @property
    def peak(self) -> int:
        """The most steps on one day."""
        return max(self.per_day.values(), default=0)

    @property
    def mean(self) -> float:
        """The mean per day, over the days that had any."""
        return self.total / len(self.per_day) if self.per_day else 0.0


@attrs.frozen(kw_only=True)
class Funnel:
    """The funnel of one sequence over a simulated population of records.

    Attributes:
        sequence_id: The simulated definition.
        sequence_version: Its version.
        records: How many records were connected.
        seed: The seed of the run; the same seed gives the same funnel.
        goal: The outcome that counts as converted for `StepFunnel.conversion` in
            the table (by default the outcome of the definition's first end step).
        outcomes: Records per outcome. An end step's outcome as it is written
            (``meeting_booked``); ``exited:customer_replied`` for a reply when the
            sequence exits on replies; ``advanced_to:<sequence id>`` for an
            ``advance_to_sequence`` step; ``completed`` for a path that ran out
            without an end step; ``active`` for enrollments still running at the
            horizon.
        steps: One `StepFunnel` per step, in the definition's order.
        times: Time to each outcome (median, p90, longest).
        activities: Activities put on the timeline per step kind: manual steps the
            seller completed (not skipped) and automated emails and SMS sent.
        workload: The manual steps per seller per kind per day.
        steps_entered: Steps entered in all, each step once per enrollment (what a
            throughput in steps per second counts).
    """

    sequence_id: str
    sequence_version: int
    records: int
    seed: int
    goal: str | None
    outcomes: Mapping[str, int] = attrs.field(hash=False)
    steps: tuple[StepFunnel, ...]
    times: Mapping[str, OutcomeTimes] = attrs.field(hash=False)
    activities: Mapping[str, int] = attrs.field(hash=False)
    workload: tuple[WorkloadStats, ...]
    steps_entered: int

    def step(self, step_id: str) -> StepFunnel:
        """The funnel row of ``step_id``.

        Raises:
            KeyError: The definition has no such step.
        """
        for row in self.steps:
            if row.step_id == step_id:
                return row
        raise KeyError(step_id)

    def share(self, outcome: str) -> float:
        """The share of all records that ended in ``outcome`` (0 when none did)."""
        return self.outcomes.get(outcome, 0) / self.records if self.records else 0.0

    def rows(self) -> list[tuple[str, list[tuple[str, ...]]]]:
        """The funnel as three titled tables of text cells, header row first:
        outcomes, steps and workload."""
        outcome_rows: list[tuple[str, ...]] = [("outcome", "records", "share", "median", "p90")]
        for outcome, count in sorted(self.outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
            times = self.times[outcome]
            outcome_rows.append(
                (
                    outcome,
                    f"{count:,}",
                    _percent(self.share(outcome)),
                    _span(times.median),
                    _span(times.p90),
                )
            )
        goal = self.goal or "-"
        step_rows: list[tuple[str, ...]] = [
            ("step", "kind", "reached", "performed", "skipped/no", "yes", f"-> {goal}")
        ]
        for row in self.steps:
            conversion = row.conversion(self.goal) if self.goal else None
            step_rows.append(
                (
                    row.step_id,
                    row.kind,
                    f"{row.reached:,}",
                    f"{row.performed:,}",
                    f"{row.declined:,}",
                    _percent(row.yes_share),
                    _percent(conversion),
                )
            )
        workload_rows: list[tuple[str, ...]] = [
            ("owner", "kind", "days", "total", "mean/day", "peak/day")
        ]
        for load in self.workload:
            workload_rows.append(
                (
                    load.owner_id,
                    load.kind,
                    f"{len(load.per_day):,}",
                    f"{load.total:,}",
                    f"{load.mean:,.1f}",
                    f"{load.peak:,}",
                )
            )
        return [
            (
                f"{self.sequence_id} v{self.sequence_version}: {self.records:,} records, "
                f"seed {self.seed}",
                outcome_rows,
            ),
            ("steps", step_rows),
            ("workload (manual steps due per day)", workload_rows),
        ]

    def table(self) -> str:
        """The funnel as plain text: aligned columns, one blank line between tables."""
        parts: list[str] = []
        for title, rows in self.rows():
            widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
            lines = [title]
            for row in rows:
                cells = [
                    cell.ljust(width) if c == 0 or not _numeric(cell) else cell.rjust(width)
                    for c, (cell, width) in enumerate(zip(row, widths, strict=True))
                ]
                lines.append("  ".join(cells).rstrip())
            parts.append("\n".join(lines))
        return "\n\n".join(parts) + "\n"


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell == "-")


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _span(value: timedelta) -> str:
    hours, rest = divmod(int(value.total_seconds()), 3600)
    days, hours = divmod(hours, 24)
    minutes = rest // 60
    text = f"{days}d {hours}h"
    return f"{text} {minutes}m" if minutes else text
