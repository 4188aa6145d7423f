"""Monte Carlo runs of a sequence: many simulated records, one `Funnel`.

`run_monte_carlo` connects ``records`` simulated records to a definition at
``start`` and walks each to its end with the same semantics as the pure runtime
(`salesflow.sequences.runtime`; its module docstring states them): waits and
condition limits on the owner's calendar with ``skip_non_working_time`` and
`RuntimeConfig.count_working_days`; conditions watching ``watches`` or the step
finished just before them; call conditions on `RuntimeConfig.answered`;
``advance_early``; a skipped watched step has no facts, so the no branch;
``exit_on_reply``; A/B variants from `~salesflow.sequences.runtime.variant_for`;
automated steps, ``set_status``, ``update_field`` and ``advance_to_sequence`` as
the runtime runs them. A `ResponseModel` says what sellers and customers do.

How the model is played, per record:

* A manual step becomes due when it is entered; the seller acts ``seller_delay``
  later and skips it with probability ``skip``, else completes it (a call with an
  outcome drawn from ``call_outcomes``).
* An email that is sent (a completed manual email, an automated email, an A/B
  test's variant) draws its customer events: *opened* with probability
  ``opened``; *replied*, *link_clicked* and *attachment_downloaded* each with
  their probability **per sent email**, and each implies *opened* (they are
  drawn given an open, with probability ``p / opened``, so each keeps its own
  rate; hence none may exceed ``opened``). Drawn events reach the enrollment
  ``event_delay`` after the email, in the order opened, replied, link clicked,
  attachment downloaded, and at an instant where the enrollment is also due,
  before it. Events are drawn only for emails something can observe (a condition
  watching the email, or ``exit_on_reply``).
* Field and stage conditions ask ``facts``: one `RecordFacts` for every record,
  a mapping of field values, or a sampler called once per record that needs them.
* An enrollment still running ``horizon`` after ``start`` (a sequence that loops
  through a wait) is stopped and counted as ``active``.

Record ``i`` (0-based) runs as enrollment ``mc-{i}`` (which fixes its A/B variant)
owned by ``owners[i % len(owners)]``. Randomness comes only from
``random.Random(seed)``: the same arguments give the same `Funnel`.

Speed (DESIGN §7): the definition is compiled once into integer-indexed tables,
time is kept in integer microseconds from ``start``, and each record is walked to
its end before the next starts: enrollments never interact in the runtime, so no
global heap is needed; only a record's own pending customer events wait in a
small heap. Working-time calendars take a slower, cached path.
"""

from __future__ import annotations

import gc
import heapq
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, cast

import attrs

from salesflow.clock import require_aware
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
from salesflow.sequences.enrollment import RecordFacts, RuntimeConfig, StaticFacts
from salesflow.sequences.validation import require_valid
from salesflow.sequences.walk import DEFAULT_CONFIG, variant_for
from salesflow.testing.funnel import ACTIVE, Funnel, OutcomeTimes, StepFunnel, WorkloadStats
from salesflow.worktime import OrganizationCalendar

__all__ = [
    "FactsSampler",
    "ResponseModel",
    "StepResponse",
    "enrollment_id",
    "run_monte_carlo",
]

FactsSampler: TypeAlias = Callable[[int, random.Random], RecordFacts]
"""Draws one record's facts: called with the record's index and the run's generator."""

_US = timedelta(microseconds=1)
_BUCKET = 15 * 60 * 1_000_000  # every UTC offset in use is a multiple of 15 minutes
_EVENT_BITS = ((EmailEvent.OPENED, 1), (EmailEvent.REPLIED, 2))
_REPLIED, _CLICKED, _DOWNLOADED = 2, 4, 8
_CHUNK = 10_000  # records between progress reports
_FIXED_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "GMT", "Etc/GMT", "Zulu"})

# Step codes of the compiled tables.
_MANUAL, _SEND, _AUTO, _WAIT, _COND, _ADVANCE, _END = range(7)
# How a compiled condition decides.
_V_ANY, _V_ALL, _V_CALL, _V_CONST, _V_FACTS = range(5)


def enrollment_id(record: int) -> str:
    """The enrollment id record ``record`` (0-based) runs as; it fixes A/B variants."""
    return f"mc-{record}"


# --- the model ------------------------------------------------------------------------


def _probability(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.default is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        name = f"{type(instance).__name__}.{attribute.name}"
        raise ValidationError(
            f"{name}={value!r} must be a probability from 0 to 1 (0.3 for 30 %)",
            field=name,
            value=value,
        )


def _delay(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.default is None:
        return
    if not isinstance(value, timedelta) or value < timedelta(0):
        name = f"{type(instance).__name__}.{attribute.name}"
        raise ValidationError(
            f"{name}={value!r} must be a timedelta >= 0 (e.g. timedelta(hours=2))",
            field=name,
            value=value,
        )


def _outcomes(value: object) -> tuple[tuple[str, float], ...] | None:
    if value is None:
        return None
    items: Any = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = tuple((str(k), v) for k, v in items)
    except (TypeError, ValueError):
        pairs = ()
    problem = not pairs or any(
        not k or isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1
        for k, p in pairs
    )
    if problem or abs(sum(p for _, p in pairs) - 1) > 1e-9:
        raise ValidationError(
            f"call_outcomes={value!r} must map call outcomes to probabilities that add up "
            f"to 1, e.g. {{'answered': 0.3, 'no_answer': 0.7}}",
            field="call_outcomes",
            value=value,
        )
    return tuple((k, float(p)) for k, p in pairs)


def _opened_bounds(values: Mapping[str, Any], where: str) -> None:
    opened = values["opened"]
    for name in ("replied", "link_clicked", "attachment_downloaded"):
        p = values[name]
        if p > opened:
            raise ValidationError(
                f"{where}.{name}={p!r} exceeds opened={opened!r}: every reply, click or "
                f"download implies an open, so raise opened to at least {p!r}",
                field=f"{where}.{name}",
                value=p,
            )


@attrs.frozen(kw_only=True)
class StepResponse:
    """Overrides of a `ResponseModel` for one step; ``None`` keeps the model's value.

    Attributes:
        opened: See `ResponseModel.opened`.
        replied: See `ResponseModel.replied`.
        link_clicked: See `ResponseModel.link_clicked`.
        attachment_downloaded: See `ResponseModel.attachment_downloaded`.
        event_delay: See `ResponseModel.event_delay`.
        call_outcomes: See `ResponseModel.call_outcomes`.
        skip: See `ResponseModel.skip`.
        seller_delay: See `ResponseModel.seller_delay`.
    """

    opened: float | None = attrs.field(default=None, validator=_probability)
    replied: float | None = attrs.field(default=None, validator=_probability)
    link_clicked: float | None = attrs.field(default=None, validator=_probability)
    attachment_downloaded: float | None = attrs.field(default=None, validator=_probability)
    event_delay: timedelta | None = attrs.field(default=None, validator=_delay)
    call_outcomes: tuple[tuple[str, float], ...] | None = attrs.field(
        default=None, converter=_outcomes
    )
    skip: float | None = attrs.field(default=None, validator=_probability)
    seller_delay: timedelta | None = attrs.field(default=None, validator=_delay)


def _steps(value: object) -> Mapping[str, StepResponse]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, StepResponse) for k, v in value.items()
    ):
        raise ValidationError(
            f"ResponseModel.steps={value!r} must map step ids (or 'step_id:a' / 'step_id:b' "
            f"for an A/B test's variants) to StepResponse values",
            field="ResponseModel.steps",
            value=value,
        )
    return dict(value)


def _facts(value: object) -> RecordFacts | FactsSampler | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return StaticFacts(fields=value)
    if hasattr(value, "field_value") and hasattr(value, "stage"):
        return cast(RecordFacts, value)
    if callable(value):
        return cast(FactsSampler, value)
    raise ValidationError(
        f"ResponseModel.facts={value!r} must be RecordFacts (e.g. StaticFacts), a mapping of "
        f"field values, or a sampler (record index, random.Random) -> RecordFacts",
        field="ResponseModel.facts",
        value=value,
    )


@attrs.frozen(kw_only=True)
class ResponseModel:
    """What sellers and customers do in a Monte Carlo run (see the module docstring
    for how each figure is played).

    Attributes:
        opened: Probability that a sent email is opened.
        replied: Probability that a sent email is replied to (implies opened).
        link_clicked: Probability of a click in a sent email (implies opened).
        attachment_downloaded: Probability of a download (implies opened).
        event_delay: How long after the email the customer's events arrive.
        call_outcomes: Call outcome → probability, adding up to 1; which outcomes
            count as answered is `RuntimeConfig.answered`.
        skip: Probability that the seller skips a manual step.
        seller_delay: How long after a manual step becomes due the seller acts.
        facts: The records' fields and stage for field and stage conditions: one
            `RecordFacts`, a mapping of field values, or a `FactsSampler`.
        steps: Per-step overrides by step id; ``"ab:a"`` and ``"ab:b"`` override
            the variants of the A/B test step ``ab``.

    Raises:
        ValidationError: A probability outside [0, 1], a reply, click or download
            rate above ``opened``, call outcomes not adding up to 1, a negative delay.
    """

    opened: float = attrs.field(default=0.0, validator=_probability)
    replied: float = attrs.field(default=0.0, validator=_probability)
    link_clicked: float = attrs.field(default=0.0, validator=_probability)
    attachment_downloaded: float = attrs.field(default=0.0, validator=_probability)
    event_delay: timedelta = attrs.field(default=timedelta(hours=1), validator=_delay)
    call_outcomes: tuple[tuple[str, float], ...] = attrs.field(
        default=(("no_answer", 1.0),), converter=_outcomes
    )
    skip: float = attrs.field(default=0.0, validator=_probability)
    seller_delay: timedelta = attrs.field(default=timedelta(0), validator=_delay)
    facts: RecordFacts | FactsSampler | None = attrs.field(default=None, converter=_facts, eq=False)
    steps: Mapping[str, StepResponse] = attrs.field(factory=dict, converter=_steps, hash=False)

    def __attrs_post_init__(self) -> None:
        _opened_bounds(self._merged(()), "ResponseModel")
        for key in self.steps:
            keys = (key.partition(":")[0], key)
            _opened_bounds(self._merged(keys), f"ResponseModel.steps[{key!r}]")

    def _merged(self, keys: tuple[str, ...]) -> dict[str, Any]:
        values = {a.name: getattr(self, a.name) for a in attrs.fields(StepResponse)}
        for key in keys:
            override = self.steps.get(key)
            if override is not None:
                values.update(
                    (a.name, getattr(override, a.name))
                    for a in attrs.fields(StepResponse)
                    if getattr(override, a.name) is not None
                )
        return values

    def for_step(self, *keys: str) -> ResponseModel:
        """This model with the overrides of ``keys`` applied in order (a step id, then
        ``"ab:a"`` for a variant); the result has no overrides of its own.

        Args:
            keys: Keys of `steps`; keys without an override change nothing.

        Returns:
            The model a step (or variant) is played with.
        """
        return attrs.evolve(self, steps={}, **self._merged(keys))


# --- compiling a definition -------------------------------------------------------------


class _Tables:
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
                self.code[i] = _MANUAL
                m = model.for_step(step.id)
                self.delay[i] = m.seller_delay // _US
                self.skip[i] = m.skip
                if kind.value not in self.manual_kinds:
                    self.manual_kinds.append(kind.value)
                self.kind_of[i] = self.manual_kinds.index(kind.value)
                if kind is StepKind.CALL:
                    self.calls[i] = self._call(m)
                if kind is StepKind.EMAIL and observed:
                    self.mails[i] = _mail(m)
            elif isinstance(step, ABTestStep):
                self.code[i] = _SEND
                self.ab[i] = step
                if observed:
                    self.mails[i] = (
                        _mail(model.for_step(step.id, f"{step.id}:a")),
                        _mail(model.for_step(step.id, f"{step.id}:b")),
                    )
            elif kind is StepKind.AUTO_EMAIL:
                self.code[i] = _SEND
                if observed:
                    self.mails[i] = _mail(model.for_step(step.id))
            elif isinstance(step, WaitStep):
                self.code[i] = _WAIT
                self.delay[i] = len(self.spans)
                self.spans.append(step.span)
            elif isinstance(step, ConditionStep):
                self._condition(i, step, index, model, config)
            elif isinstance(step, AdvanceStep):
                self.code[i] = _ADVANCE
                self.end[i] = self._outcome(f"advanced_to:{step.sequence_id}")
            elif isinstance(step, EndStep):
                self.code[i] = _END
                self.end[i] = self._outcome(step.outcome)
            else:  # automated SMS, field update, status change: run and move on
                self.code[i] = _AUTO

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
        self.code[i] = _COND
        self.yes[i], self.no[i] = index[step.yes], index[step.no]
        self.watch[i] = index[step.watches] if step.watches is not None else -1
        self.early[i] = step.advance_early
        self.zero[i] = step.within.days == 0 and step.within.hours == 0
        self.delay[i] = len(self.spans)
        self.spans.append(step.within)
        watch = step.watch
        if isinstance(watch, EmailWatch):
            bits = {e: b for e, b in _EVENT_BITS} | {
                EmailEvent.LINK_CLICKED: _CLICKED,
                EmailEvent.ATTACHMENT_DOWNLOADED: _DOWNLOADED,
            }
            self.vmask[i] = sum(bits[e] for e in watch.events)
            self.vtype[i] = _V_ALL if watch.match is Match.ALL else _V_ANY
        elif isinstance(watch, CallWatch):
            wanted = set(watch.outcomes or config.answered)
            for name in sorted(wanted):
                if name not in self.call_names:
                    self.call_names.append(name)
            self.vmask[i] = frozenset(self.call_names.index(n) for n in wanted)
            self.vtype[i] = _V_CALL
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
                self.vtype[i] = _V_CONST
                self.vmask[i] = _decide(watch, facts)  # type: ignore[arg-type]
            else:
                self.vtype[i] = _V_FACTS


def _decide(watch: Any, facts: RecordFacts) -> bool:
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
        m.event_delay // _US,
    )


def _fixed_zone(calendar: OrganizationCalendar) -> bool:
    key = getattr(calendar.timezone, "key", "")
    return key in _FIXED_ZONES or key.startswith("Etc/GMT")


# --- the run ----------------------------------------------------------------------------


def run_monte_carlo(
    definition: SequenceDefinition,
    *,
    records: int,
    model: ResponseModel,
    seed: int,
    start: datetime,
    config: RuntimeConfig | None = None,
    owners: Sequence[str] = ("owner",),
    goal: str | None = None,
    horizon: timedelta = timedelta(days=365),
    progress: Callable[[int, int], None] | None = None,
) -> Funnel:
    """Connect ``records`` simulated records to ``definition`` at ``start`` and walk
    each to its end with ``model``; the funnel of what happened.

    Args:
        definition: A valid sequence definition.
        records: How many records to simulate (>= 1).
        model: What sellers and customers do.
        seed: Seeds `random.Random`; the same arguments give the same funnel.
        start: When every record is connected (aware).
        config: Calendars, working days, answered call outcomes; by default the
            runtime's (Monday–Friday 08:00–17:00 UTC, calendar days, "answered").
        owners: The sellers; record ``i`` belongs to ``owners[i % len(owners)]``.
        goal: The outcome counted as converted in the step table; by default the
            outcome of the definition's first end step.
        horizon: Enrollments still running this long after ``start`` stop as ``active``.
        progress: Called as ``progress(done, records)`` every 10,000 records and at
            the end (a progress bar).

    Returns:
        The `Funnel`.

    Raises:
        ValidationError: ``records``, ``owners``, ``horizon`` or ``goal`` is wrong,
            ``start`` is naive, the model names steps the definition lacks, or a
            field or stage condition has no facts.
        InvalidDefinition: The definition is not valid (see `validate`).
    """
    start = require_aware(start, "start").astimezone(UTC)
    if isinstance(records, bool) or not isinstance(records, int) or records < 1:
        raise ValidationError(
            f"records={records!r} must be a whole number >= 1", field="records", value=records
        )
    if isinstance(owners, str) or not owners or not all(isinstance(o, str) for o in owners):
        raise ValidationError(
            f"owners={owners!r} must be a non-empty sequence of owner ids",
            field="owners",
            value=owners,
        )
    if not isinstance(horizon, timedelta) or horizon <= timedelta(0):
        raise ValidationError(
            f"horizon={horizon!r} must be a positive timedelta", field="horizon", value=horizon
        )
    if not isinstance(model, ResponseModel):
        raise ValidationError(
            f"model={model!r} must be a ResponseModel", field="model", value=model
        )
    config = config or DEFAULT_CONFIG
    require_valid(definition)
    ends = [s.outcome for s in definition.steps if isinstance(s, EndStep)]
    if goal is None:
        goal = ends[0] if ends else None
    elif goal not in ends:
        raise ValidationError(
            f"goal={goal!r} is not an outcome of sequence {definition.id!r}; choose one of "
            f"{', '.join(sorted(set(ends))) or '(none)'}",
            field="goal",
            value=goal,
        )
    tables = _Tables(definition, model, config)
    owner_list = list(owners)
    calendars = [config.calendars.for_owner(o) for o in owner_list]
    was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived tuples; nothing cyclic survives a record
    try:
        paths, load = _walk(
            tables, definition, model, config, calendars, records, seed, start, horizon, progress
        )
    finally:
        if was_enabled:
            gc.enable()
    return _funnel(
        tables, definition, records, seed, goal, paths, load, owner_list, calendars, start
    )


def _walk(
    c: _Tables,
    definition: SequenceDefinition,
    model: ResponseModel,
    config: RuntimeConfig,
    calendars: list[OrganizationCalendar],
    records: int,
    seed: int,
    start: datetime,
    horizon: timedelta,
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[tuple[int, int, int], int], dict[int, int]]:
    rng = random.Random(seed)
    draw = rng.random
    code, nxt, yes, no, delay, skip = c.code, c.nxt, c.yes, c.no, c.delay, c.skip
    calls, mails, end, vtype, vmask = c.calls, c.mails, c.end, c.vtype, c.vmask
    watch, early, zero, ab, kind_of = c.watch, c.early, c.zero, c.ab, c.kind_of
    n = c.n
    reach = [1 << i for i in range(n)]
    done = [1 << (n + i) for i in range(n)]
    declined = [1 << (2 * n + i) for i in range(n)]
    exit_on_reply = definition.exit_on_reply
    n_owners = len(calendars)
    n_kinds = max(len(c.manual_kinds), 1)
    base = (start - datetime(1970, 1, 1, tzinfo=UTC)) // _US % _BUCKET
    limit = horizon // _US
    replied_out = c.outcomes.index("exited:customer_replied")
    completed_out = c.outcomes.index("completed")
    active_out = c.outcomes.index(ACTIVE)
    facts = model.facts
    fast = (
        not definition.skip_non_working_time
        and not config.count_working_days
        and all(_fixed_zone(cal) for cal in calendars)
    )
    span_us = [s.delta // _US for s in c.spans]
    cal_index = [calendars.index(cal) for cal in calendars]
    cache: dict[tuple[int, int, int], int] = {}

    def after(owner: int, t: int, span: int) -> int:
        key = (cal_index[owner], t, span)
        hit = cache.get(key)
        if hit is None:
            if len(cache) > 1_000_000:
                cache.clear()
            due = calendars[key[0]].schedule_after(
                start + timedelta(microseconds=t),
                c.spans[span],
                skip_non_working=definition.skip_non_working_time,
                count_working_days=config.count_working_days,
            )
            hit = cache[key] = (due - start) // _US
        return hit

    record_facts: list[Any] = [-1, None]

    def verdict(i: int, f: dict[int, int], last: int, record: int) -> bool:
        w = watch[i] if watch[i] >= 0 else last
        how = vtype[i]
        if how == _V_CALL:
            return bool(f.get(-1 - w, -1) in vmask[i])
        if how == _V_ANY:
            return bool(f.get(w, 0) & vmask[i])
        if how == _V_ALL:
            return bool(f.get(w, 0) & vmask[i] == vmask[i])
        if how == _V_CONST:
            return bool(vmask[i])
        if record_facts[0] != record:
            record_facts[0] = record
            record_facts[1] = cast(FactsSampler, facts)(record, rng)
        return _decide(vmask[i], record_facts[1])

    paths: dict[tuple[int, int, int], int] = {}
    load: dict[int, int] = {}
    entry = c.entry
    cyclic = _has_cycle(definition)
    # Times of waits and limits in microseconds, when the calendar does not matter.
    span_of = [span_us[delay[i]] if code[i] in (_WAIT, _COND) else 0 for i in range(n)]
    f: dict[int, int] = {}
    pend: list[tuple[int, int, int, int]] = []
    for first in range(0, records, _CHUNK):
        if progress is not None and first:
            progress(first, records)
        for r in range(first, min(first + _CHUNK, records)):
            o = r % n_owners
            t = mask = seq = 0
            last = res = -1
            i = entry
            if f:
                f.clear()
            if pend:
                pend.clear()
            while True:
                if i < 0:
                    res = completed_out
                    break
                mask |= reach[i]
                k = code[i]
                if k == _SEND:
                    mask |= done[i]
                    mail = mails[i]
                    step = ab[i]
                    if step is not None:
                        variant_b = variant_for(step, enrollment_id(r)) == "b"
                        if variant_b:
                            mask |= declined[i]
                        if mail is not None:
                            mail = mail[1] if variant_b else mail[0]
                    if cyclic:
                        f.pop(i, None)
                    if mail is not None and mail[0] and draw() < mail[0]:
                        seq = _events(pend, seq, t + mail[4], i, mail, draw)
                    last = i
                    i = nxt[i]
                    continue
                if k == _MANUAL:
                    due = t + delay[i]
                    key = ((t + base) // _BUCKET * n_kinds + kind_of[i]) * n_owners + o
                    load[key] = load.get(key, 0) + 1
                    if cyclic:
                        f.pop(i, None)
                        f.pop(-1 - i, None)
                elif k == _WAIT:
                    due = t + span_of[i] if fast else after(o, t, delay[i])
                elif k == _COND:
                    if zero[i]:
                        decided = verdict(i, f, last, r)
                    elif early[i] and verdict(i, f, last, r):
                        decided = True
                    else:
                        decided = None
                    if decided is not None:
                        mask |= done[i] if decided else declined[i]
                        last = i
                        i = yes[i] if decided else no[i]
                        continue
                    due = t + span_of[i] if fast else after(o, t, delay[i])
                elif k == _AUTO:
                    mask |= done[i]
                    last = i
                    i = nxt[i]
                    continue
                else:  # an end, or an advance to another sequence
                    res = end[i]
                    break
                if pend:
                    until = due if due < limit else limit
                    jumped = False
                    while pend and pend[0][0] <= until:
                        te, _, at, bit = heapq.heappop(pend)
                        f[at] = f.get(at, 0) | bit
                        if bit == _REPLIED and exit_on_reply:
                            res = replied_out
                            t = te
                            break
                        if k == _COND and early[i] and verdict(i, f, last, r):
                            t = te
                            mask |= done[i]
                            last = i
                            i = yes[i]
                            jumped = True
                            break
                    if res >= 0:
                        break
                    if jumped:
                        continue
                if due > limit:
                    res = active_out
                    t = limit
                    break
                t = due
                if k == _MANUAL:
                    p = skip[i]
                    if p and draw() < p:
                        mask |= declined[i]
                    else:
                        mask |= done[i]
                        call = calls[i]
                        if call is not None:
                            u = draw() if len(call) > 1 else 0.0
                            for threshold, outcome in call:
                                if u < threshold:
                                    f[-1 - i] = outcome
                                    break
                        else:
                            mail = mails[i]
                            if mail is not None and mail[0] and draw() < mail[0]:
                                seq = _events(pend, seq, t + mail[4], i, mail, draw)
                    last = i
                    i = nxt[i]
                elif k == _WAIT:
                    last = i
                    i = nxt[i]
                else:
                    if vtype[i] == _V_CALL:
                        w = watch[i] if watch[i] >= 0 else last
                        decided = f.get(-1 - w, -1) in vmask[i]
                    else:
                        decided = verdict(i, f, last, r)
                    last = i
                    if decided:
                        mask |= done[i]
                        i = yes[i]
                    else:
                        mask |= declined[i]
                        i = no[i]
            key3 = (mask, res, t)
            paths[key3] = paths.get(key3, 0) + 1
    if progress is not None:
        progress(records, records)
    return paths, load


def _events(
    pend: list[tuple[int, int, int, int]],
    seq: int,
    at: int,
    step: int,
    mail: tuple[float, float, float, float, int],
    draw: Callable[[], float],
) -> int:
    """Queue the events of an opened email: the open, then each event given an open."""
    heapq.heappush(pend, (at, seq, step, 1))
    seq += 1
    for p, bit in ((mail[1], _REPLIED), (mail[2], _CLICKED), (mail[3], _DOWNLOADED)):
        if p and (p >= 1 or draw() < p):
            heapq.heappush(pend, (at, seq, step, bit))
            seq += 1
    return seq


def _has_cycle(definition: SequenceDefinition) -> bool:
    by_id = definition.by_id
    state: dict[str, int] = {}

    def visit(sid: str) -> bool:
        state[sid] = 1
        step = by_id[sid]
        targets = (
            [step.yes, step.no]
            if isinstance(step, ConditionStep)
            else [getattr(step, "next", None)]
        )
        for target in targets:
            if target is None or target not in by_id:
                continue
            if state.get(target) == 1 or (target not in state and visit(target)):
                return True
        state[sid] = 2
        return False

    return visit(definition.entry)


# --- from counts to a funnel ------------------------------------------------------------


def _funnel(
    c: _Tables,
    definition: SequenceDefinition,
    records: int,
    seed: int,
    goal: str | None,
    paths: Mapping[tuple[int, int, int], int],
    load: Mapping[int, int],
    owners: list[str],
    calendars: list[OrganizationCalendar],
    start: datetime,
) -> Funnel:
    n = c.n
    outcomes: dict[str, int] = {}
    per_outcome: dict[str, dict[int, int]] = {}
    reached, performed, declined = [0] * n, [0] * n, [0] * n
    ends: list[dict[str, int]] = [{} for _ in range(n)]
    entered = 0
    for (mask, res, t), count in paths.items():
        name = c.outcomes[res]
        outcomes[name] = outcomes.get(name, 0) + count
        spread = per_outcome.setdefault(name, {})
        spread[t] = spread.get(t, 0) + count
        entered += (mask & ((1 << n) - 1)).bit_count() * count
        for i in range(n):
            if mask >> i & 1:
                reached[i] += count
                performed[i] += count * (mask >> (n + i) & 1)
                declined[i] += count * (mask >> (2 * n + i) & 1)
                ends[i][name] = ends[i].get(name, 0) + count
    activities: dict[str, int] = {}
    steps = []
    for i, step in enumerate(definition.steps):
        kind = step_kind(step)
        is_activity = c.code[i] in (_MANUAL, _SEND) or kind is StepKind.AUTO_SMS
        if is_activity:
            activities[kind.value] = activities.get(kind.value, 0) + performed[i]
        steps.append(
            StepFunnel(
                step_id=step.id,
                kind=kind.value,
                reached=reached[i],
                performed=(
                    performed[i] - declined[i]  # an A/B test: variant A
                    if kind is StepKind.AB_TEST
                    else performed[i]
                    if is_activity or c.code[i] == _COND
                    else 0
                ),
                declined=declined[i] if c.code[i] in (_MANUAL, _COND, _SEND) else 0,
                outcomes=dict(sorted(ends[i].items())),
            )
        )
    times = {name: _times(spread) for name, spread in sorted(per_outcome.items())}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    floor = start - timedelta(microseconds=(start - epoch) // _US % _BUCKET)
    n_kinds = max(len(c.manual_kinds), 1)
    days: dict[tuple[int, int], dict[Any, int]] = {}
    for key, count in load.items():
        o = key % len(owners)
        k = key // len(owners) % n_kinds
        bucket = key // len(owners) // n_kinds
        local = (floor + timedelta(microseconds=bucket * _BUCKET)).astimezone(calendars[o].timezone)
        per_day = days.setdefault((o, k), {})
        per_day[local.date()] = per_day.get(local.date(), 0) + count
    workload = tuple(
        WorkloadStats(
            owner_id=owners[o], kind=c.manual_kinds[k], per_day=dict(sorted(per_day.items()))
        )
        for (o, k), per_day in sorted(days.items(), key=lambda kv: (owners[kv[0][0]], kv[0][1]))
    )
    return Funnel(
        sequence_id=definition.id,
        sequence_version=definition.version,
        records=records,
        seed=seed,
        goal=goal,
        outcomes=dict(sorted(outcomes.items())),
        steps=tuple(steps),
        times=times,
        activities=dict(sorted(activities.items())),
        workload=workload,
        steps_entered=entered,
    )


def _times(spread: Mapping[int, int]) -> OutcomeTimes:
    total = sum(spread.values())
    ordered = sorted(spread.items())

    def rank(wanted: int) -> timedelta:
        seen = 0
        for value, count in ordered:
            seen += count
            if seen >= wanted:
                return timedelta(microseconds=value)
        return timedelta(microseconds=ordered[-1][0])

    # Nearest rank: the smallest value with at least that share at or below it.
    return OutcomeTimes(
        median=rank(max(1, -(-total // 2))),
        p90=rank(max(1, -(-total * 9 // 10))),
        longest=rank(total),
    )
