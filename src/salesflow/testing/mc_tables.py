"""The compiled form of a sequence definition for `run_monte_carlo`.

An implementation detail of `salesflow.testing.montecarlo`, kept apart so the
runner's module holds only the walk: `Tables` turns a `SequenceDefinition` and a
`ResponseModel` into per-step lists indexed by step position (step codes, branch
targets, delays in integer microseconds, the draws of each email's events), so the
inner loop does list lookups and integer compares instead of attribute access on
attrs records.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from salesflow.conditions import evaluate
from salesflow.errors import ValidationError
from salesflow.sequences.definition import (
    ABTestStep,
    ActivityStep,
    AdvanceStep,
    CallWatch,
    ConditionStep,
    EmailEvent,
    EmailWatch,
    EndStep,
    FieldWatch,
    Match,
    SequenceDefinition,
    StepKind,
    WaitStep,
    step_kind,
)
from salesflow.sequences.enrollment import RecordFacts, RuntimeConfig
from salesflow.testing.funnel import ACTIVE
from salesflow.testing.response import ResponseModel
from salesflow.worktime import OrganizationCalendar

__all__ = [
    "ADVANCE",
    "AUTO",
    "BUCKET",
    "CLICKED",
    "COND",
    "DOWNLOADED",
    "END",
    "MANUAL",
    "REPLIED",
    "SEND",
    "US",
    "V_ALL",
    "V_ANY",
    "V_CALL",
    "V_CONST",
    "V_FACTS",
    "WAIT",
    "Tables",
    "decide",
    "fixed_zone",
]

US = timedelta(microseconds=1)
"""One microsecond: the runner keeps time in integer microseconds from the start."""
BUCKET = 15 * 60 * 1_000_000  # every UTC offset in use is a multiple of 15 minutes
"""Workload is counted per 15-minute bucket, converted to local days at the end."""
# An email's customer events are bits of one int per step in a record's facts, so a
# condition's "any" / "all" of several events is one mask test (opened is 1).
_EVENT_BITS = ((EmailEvent.OPENED, 1), (EmailEvent.REPLIED, 2))
REPLIED, CLICKED, DOWNLOADED = 2, 4, 8
_FIXED_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "GMT", "Etc/GMT", "Zulu"})

# Step codes of the compiled tables.
MANUAL, SEND, AUTO, WAIT, COND, ADVANCE, END = range(7)
# How a compiled condition decides.
V_ANY, V_ALL, V_CALL, V_CONST, V_FACTS = range(5)


class Tables:
    """A definition compiled for one run: per-step lists indexed by step position."""

    def __init__(
        self,
        definition: SequenceDefinition,
        model: ResponseModel,
        config: RuntimeConfig,
    ) -> None:
        steps = definition.steps
        index = {s.id: i for i, s in enumerate(steps)}
        for key in model.steps:
            sid, _, variant = key.partition(":")
            step = definition.by_id.get(sid)
            if step is None or (
                variant and (variant not in "ab" or not isinstance(step, ABTestStep))
            ):
                raise ValidationError(
                    f"ResponseModel.steps has {key!r}, but sequence {definition.id!r} has no "
                    f"such step (use a step id, or 'id:a' / 'id:b' for an A/B test step)",
                    field="ResponseModel.steps",
                    value=key,
                )
        n = len(steps)
        self.n = n
        self.entry = index[definition.entry]
        self.outcomes: list[str] = ["completed", ACTIVE, "exited:customer_replied"]
        self.code = [0] * n
        self.nxt = [-1] * n
        self.yes = [-1] * n
        self.no = [-1] * n
        self.delay = [0] * n  # manual: seller delay; wait/condition: span index
        self.skip = [0.0] * n
        self.kind_of = [0] * n  # manual: index into self.manual_kinds
        self.calls: list[tuple[tuple[float, int], ...] | None] = [None] * n
        self.mails: list[tuple[Any, ...] | None] = [None] * n  # events drawn (or None)
        self.end = [0] * n
        self.vtype = [0] * n
        self.vmask: list[Any] = [0] * n
        self.watch = [-1] * n
        self.early = [False] * n
        self.zero = [False] * n
        self.ab: list[ABTestStep | None] = [None] * n
        self.spans: list[Any] = []
        self.manual_kinds: list[str] = []
        self.call_names: list[str] = []
        watched = {c.watches for c in steps if isinstance(c, ConditionStep) and c.watches}
        before = {
            s.next
            for s in steps
            if isinstance(s, ActivityStep | ABTestStep)
            and s.next is not None
            and isinstance(definition.by_id.get(s.next), ConditionStep)
            and definition.by_id[s.next].watches is None  # type: ignore[union-attr]
        }
        for i, step in enumerate(steps):
            kind = step_kind(step)
            nxt = getattr(step, "next", None)
            self.nxt[i] = index[nxt] if nxt is not None else -1
            observed = definition.exit_on_reply or step.id in watched or nxt in before
            if isinstance(step, ActivityStep) and kind.manual:
                self.code[i] = MANUAL
                m = model.for_step(step.id)
                self.delay[i] = m.seller_delay // US
                self.skip[i] = m.skip
                if kind.value not in self.manual_kinds:
                    self.manual_kinds.append(kind.value)
                self.kind_of[i] = self.manual_kinds.index(kind.value)
                if kind is StepKind.CALL:
                    self.calls[i] = self._call(m)
                if kind is StepKind.EMAIL and observed:
                    self.mails[i] = _mail(m)
            elif isinstance(step, ABTestStep):
                self.code[i] = SEND
                self.ab[i] = step
                if observed:
                    self.mails[i] = (
                        _mail(model.for_step(step.id, f"{step.id}:a")),
                        _mail(model.for_step(step.id, f"{step.id}:b")),
                    )
            elif kind is StepKind.AUTO_EMAIL:
                self.code[i] = SEND
                if observed:
                    self.mails[i] = _mail(model.for_step(step.id))
            elif isinstance(step, WaitStep):
                self.code[i] = WAIT
                self.delay[i] = len(self.spans)
                self.spans.append(step.span)
            elif isinstance(step, ConditionStep):
                self._condition(i, step, index, model, config)
            elif isinstance(step, AdvanceStep):
                self.code[i] = ADVANCE
                self.end[i] = self._outcome(f"advanced_to:{step.sequence_id}")
            elif isinstance(step, EndStep):
                self.code[i] = END
                self.end[i] = self._outcome(step.outcome)
            else:  # automated SMS, field update, status change: run and move on
                self.code[i] = AUTO

    def _outcome(self, name: str) -> int:
        if name not in self.outcomes:
            self.outcomes.append(name)
        return self.outcomes.index(name)

    def _call(self, m: ResponseModel) -> tuple[tuple[float, int], ...]:
        cumulative: list[tuple[float, int]] = []
        total = 0.0
        for name, p in m.call_outcomes:
            if name not in self.call_names:
                self.call_names.append(name)
            if p > 0:
                total += p
                cumulative.append((total, self.call_names.index(name)))
        # Rounding must never leave a draw without an outcome.
        cumulative[-1] = (2.0, cumulative[-1][1])
        return tuple(cumulative)

    def _condition(
        self,
        i: int,
        step: ConditionStep,
        index: Mapping[str, int],
        model: ResponseModel,
        config: RuntimeConfig,
    ) -> None:
        self.code[i] = COND
        self.yes[i], self.no[i] = index[step.yes], index[step.no]
        self.watch[i] = index[step.watches] if step.watches is not None else -1
        self.early[i] = step.advance_early
        self.zero[i] = step.within.days == 0 and step.within.hours == 0
        self.delay[i] = len(self.spans)
        self.spans.append(step.within)
        watch = step.watch
        if isinstance(watch, EmailWatch):
            bits = {e: b for e, b in _EVENT_BITS} | {
                EmailEvent.LINK_CLICKED: CLICKED,
                EmailEvent.ATTACHMENT_DOWNLOADED: DOWNLOADED,
            }
            self.vmask[i] = sum(bits[e] for e in watch.events)
            self.vtype[i] = V_ALL if watch.match is Match.ALL else V_ANY
        elif isinstance(watch, CallWatch):
            wanted = set(watch.outcomes or config.answered)
            for name in sorted(wanted):
                if name not in self.call_names:
                    self.call_names.append(name)
            self.vmask[i] = frozenset(self.call_names.index(n) for n in wanted)
            self.vtype[i] = V_CALL
        else:
            facts = model.facts
            if facts is None:
                what = "fields" if isinstance(watch, FieldWatch) else "process stage"
                raise ValidationError(
                    f"condition {step.id!r} of sequence looks at the record's {what}; give "
                    f"ResponseModel(facts=...) a mapping of field values, RecordFacts or a "
                    f"sampler",
                    field="ResponseModel.facts",
                    value=None,
                )
            self.vmask[i] = watch
            if hasattr(facts, "field_value"):
                self.vtype[i] = V_CONST
                self.vmask[i] = decide(watch, facts)  # type: ignore[arg-type]
            else:
                self.vtype[i] = V_FACTS


def decide(watch: Any, facts: RecordFacts) -> bool:
    """Whether a field or stage condition's ``watch`` holds for one record's facts."""
    if isinstance(watch, FieldWatch):
        return evaluate(watch.condition, facts.field_value)
    return bool(facts.stage() == watch.stage)


def _mail(m: ResponseModel) -> tuple[float, float, float, float, int]:
    """The draw of one email's events: P(opened), then each event given an open."""

    def given(p: float) -> float:
        return p / m.opened if m.opened else 0.0

    return (
        m.opened,
        given(m.replied),
        given(m.link_clicked),
        given(m.attachment_downloaded),
        m.event_delay // US,
    )


def fixed_zone(calendar: OrganizationCalendar) -> bool:
    """Whether ``calendar``'s zone never changes offset, so waits need no calendar."""
    key = getattr(calendar.timezone, "key", "")
    return key in _FIXED_ZONES or key.startswith("Etc/GMT")
