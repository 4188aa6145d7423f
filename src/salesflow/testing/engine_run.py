"""`run_on_engine`: the Monte Carlo experiment played through a real `Salesflow`.

`salesflow.testing.montecarlo.run_monte_carlo` walks a compiled definition in
memory; this runs the same kind of experiment through the engine on any store:
records are created and connected (`Salesflow.connect_many`), sellers complete or
skip their manual steps, customers' email events come in through
`Salesflow.record_email_event`, and the fake clock jumps from due item to due item
(`run_due`). Every activity, history entry, event and due item is really written,
so the figures measure the whole engine (see ``bench/sequences.py``) and the
resulting `Funnel` can be compared with the in-memory runner's.

How the model is played is `ResponseModel`'s (its per-step overrides included):
a manual step is acted on ``seller_delay`` after it starts; an email's events are
drawn when it is sent and arrive ``event_delay`` later. Randomness comes only from
``random.Random(seed)`` and from the order the engine reports steps in, so the same
store kind, seed and ids give the same run; the random streams differ from the
in-memory runner's, so the two agree in distribution, not record by record.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.events import Event, EventSink
from salesflow.sequences.definition import EmailEvent, SequenceDefinition, StepKind, step_kind
from salesflow.sequences.enrollment import (
    Enrollment,
    EnrollmentStatus,
    SendEmailRequested,
    StepCompleted,
    StepStarted,
)
from salesflow.sequences.walk import steps_of
from salesflow.testing.funnel import ACTIVE, Funnel, OutcomeTimes, StepFunnel, WorkloadStats
from salesflow.testing.response import ResponseModel
from salesflow.values import RecordKind, RecordRef

__all__ = ["funnel_of", "run_on_engine"]

_EMAIL_EVENTS = (
    (EmailEvent.OPENED, "opened"),
    (EmailEvent.REPLIED, "replied"),
    (EmailEvent.LINK_CLICKED, "link_clicked"),
    (EmailEvent.ATTACHMENT_DOWNLOADED, "attachment_downloaded"),
)


_CONNECT_BATCH = 500
"""How many records one `connect_many` call connects at most."""


_PLAYED = frozenset({StepStarted, StepCompleted, SendEmailRequested})
"""The events the players react to (these classes have no subclasses)."""


class _Tee:
    """Passes events on to the engine's own sink and keeps the ones the players need."""

    def __init__(self, inner: EventSink) -> None:
        self.inner = inner
        self.seen: list[Event] = []

    def publish(self, events: Sequence[Event]) -> None:
        self.inner.publish(events)
        self.seen += [e for e in events if type(e) in _PLAYED]


def _create(engine: Salesflow, kind: RecordKind, index: int, owner: str) -> RecordRef:
    name = f"Simulated {index}"
    # automated messages go to the record's address (an account's or an opportunity's
    # through its contact); a simulated record can receive both kinds
    email, mobile = f"simulated{index}@example.com", "+1 555 0100"
    if kind is RecordKind.LEAD:
        return engine.create_lead(
            topic=name, last_name=name, owner_id=owner, email=email, mobile_phone=mobile
        ).ref
    contact = engine.create_contact(
        last_name=name, owner_id=owner, email=email, mobile_phone=mobile
    )
    if kind is RecordKind.CONTACT:
        return contact.ref
    if kind is RecordKind.ACCOUNT:
        return engine.create_account(name=name, owner_id=owner, primary_contact_id=contact.id).ref
    return engine.create_opportunity(name=name, owner_id=owner, contact_id=contact.id).ref


def _draw_outcome(rng: random.Random, outcomes: Iterable[tuple[str, float]]) -> str:
    roll = rng.random()
    last = ""
    for name, p in outcomes:
        last = name
        if roll < p:
            return name
        roll -= p
    return last


def run_on_engine(
    engine: Salesflow,
    sequence_id: str,
    *,
    records: int | Sequence[RecordRef],
    model: ResponseModel,
    seed: int,
    owners: Sequence[str] = ("owner",),
    horizon: timedelta = timedelta(days=365),
    progress: Callable[[int, int], None] | None = None,
) -> Funnel:
    """Connect ``records`` new records to ``sequence_id`` and play ``model`` until
    every enrollment has ended (or ``horizon`` has passed).

    Args:
        engine: An engine on a `FakeClock` (its clock is moved).
        sequence_id: A published, active sequence.
        records: How many new records to create and connect (>= 1), or the
            records to connect, already created (so that a benchmark can time
            creating them apart from the run); record ``i`` is still connected with
            ``owners[i % len(owners)]`` as the enrollment's owner.
        model: What sellers and customers do.
        seed: Seeds the run's only random generator.
        owners: Record ``i`` is owned by ``owners[i % len(owners)]``.
        horizon: Enrollments still running this long after the start count as ``active``.
        progress: Called as ``progress(done, total)`` while records are connected.

    Returns:
        The funnel of the run (see `funnel_of`).

    Raises:
        ValidationError: Not a `FakeClock`, ``records`` < 1, or no owners.
        NotFound: No such sequence.
    """
    clock = engine.clock
    if not isinstance(clock, FakeClock):
        raise ValidationError(
            "run_on_engine() moves the engine's clock: create it with clock=FakeClock(start)",
            field="clock",
            value=clock,
        )
    given: Sequence[RecordRef] | None = None
    if isinstance(records, Sequence) and not isinstance(records, str):
        given = records
        if not given or not all(isinstance(r, RecordRef) for r in given):
            raise ValidationError(
                "records must be a whole number >= 1 or a non-empty sequence of RecordRef "
                "(record.ref) values",
                field="records",
                value=records,
            )
        count = len(given)
    elif isinstance(records, bool) or not isinstance(records, int) or records < 1:
        raise ValidationError(
            f"records={records!r} must be a whole number >= 1", field="records", value=records
        )
    else:
        count = records
    if not owners:
        raise ValidationError("owners must name at least one owner", field="owners", value=owners)
    definition = engine.get_sequence(sequence_id).definition
    steps = steps_of(definition)  # by_id builds its dict on every call
    start = clock.now()
    end = start + horizon
    rng = random.Random(seed)
    tee = _Tee(engine.sink)
    engine.sink = tee
    # (when, order, enrollment, step, what): what the sellers and customers do next
    plan: list[tuple[datetime, int, str, str, str]] = []
    order = 0

    models: dict[tuple[str, ...], ResponseModel] = {}

    def played(*keys: str) -> ResponseModel:
        # the model a step is played with, merged once per step
        found = models.get(keys)
        if found is None:
            found = models[keys] = model.for_step(*keys)
        return found

    def react() -> None:
        nonlocal order
        for event in tee.seen:
            if isinstance(event, StepStarted) and event.kind.manual:
                m = played(event.step_id)
                what = "skip" if rng.random() < m.skip else "complete"
                at = event.occurred_at + m.seller_delay
                heapq.heappush(plan, (at, order, event.enrollment_id, event.step_id, what))
                order += 1
            elif isinstance(event, SendEmailRequested | StepCompleted):
                if isinstance(event, StepCompleted):
                    # a seller's email is sent when its step is completed
                    step = steps.get(event.step_id)
                    if step is None or step_kind(step) is not StepKind.EMAIL:
                        continue
                    if event.outcome == "skipped":
                        continue
                    m = played(event.step_id)
                elif event.variant:
                    m = played(event.step_id, f"{event.step_id}:{event.variant}")
                else:
                    m = played(event.step_id)
                if rng.random() >= m.opened or m.opened == 0:
                    continue
                at = event.occurred_at + m.event_delay
                for email_event, name in _EMAIL_EVENTS:
                    p = getattr(m, name)
                    chance = 1.0 if email_event is EmailEvent.OPENED else p / m.opened
                    if rng.random() < chance:
                        heapq.heappush(
                            plan, (at, order, event.enrollment_id, event.step_id, email_event)
                        )
                        order += 1
        tee.seen.clear()

    try:
        ids: list[str] = []
        # Records are connected in batches of one owner (`connect_many`, one unit of
        # work each), in order, at the same instant: the enrollments and events of
        # one `connect` per record, without a command per record.
        batch: list[RecordRef] = []
        for i in range(count):
            owner = owners[i % len(owners)]
            ref = (
                given[i] if given is not None else _create(engine, definition.record_type, i, owner)
            )
            batch.append(ref)
            last = i + 1 == count or owners[(i + 1) % len(owners)] != owner
            if last or len(batch) == _CONNECT_BATCH:
                ids.extend(e.id for e in engine.connect_many(batch, sequence_id, owner_id=owner))
                batch = []
                react()
            if progress is not None and (i + 1) % 1000 == 0:
                progress(i + 1, count)
        while True:
            due = engine.next_due_at()
            at = plan[0][0] if plan else None
            if due is not None and (at is None or due < at):
                at = due
            if at is None or at > end:
                break
            if at > clock.now():
                clock.set(at)
            while plan and plan[0][0] <= clock.now():
                _, _, enrollment_id, step_id, what = heapq.heappop(plan)
                _play(engine, definition, played(step_id), rng, enrollment_id, step_id, what)
                react()
            while engine.run_due(limit=1000):
                react()
        if progress is not None:
            progress(count, count)
    finally:
        engine.sink = tee.inner
    # one read of the sequence's enrollments rather than one per record
    stored = {e.id: e for e in engine.enrollments(sequence_id=sequence_id)}
    enrollments = [stored[i] for i in ids]
    return funnel_of(definition, enrollments, seed=seed, start=start, records=count)


def _play(
    engine: Salesflow,
    definition: SequenceDefinition,
    model: ResponseModel,
    rng: random.Random,
    enrollment_id: str,
    step_id: str,
    what: str,
) -> None:
    try:
        if what == "skip":
            engine.skip_step(enrollment_id, step_id)
        elif what == "complete":
            outcome = None
            if step_kind(steps_of(definition)[step_id]) is StepKind.CALL:
                outcome = _draw_outcome(rng, model.call_outcomes)
            engine.complete_step(enrollment_id, step_id, outcome=outcome)
        else:
            engine.record_email_event(enrollment_id, step_id, what)
    except InvalidTransition:
        pass  # the enrollment moved on or ended meanwhile (a reply, a deadline)


def _outcome_of(e: Enrollment, definition: SequenceDefinition) -> str:
    if e.status is EnrollmentStatus.COMPLETED:
        return e.outcome or "completed"
    if e.status is EnrollmentStatus.EXITED:
        assert e.exit_reason is not None
        if e.exit_reason.value == "advanced_to_sequence" and e.history:
            step = definition.by_id[e.history[-1].step_id]
            return f"advanced_to:{getattr(step, 'sequence_id', '?')}"
        return f"exited:{e.exit_reason.value}"
    return ACTIVE


def _nearest_rank(values: list[timedelta], share: float) -> timedelta:
    return values[max(0, math.ceil(len(values) * share) - 1)]


def funnel_of(
    definition: SequenceDefinition,
    enrollments: Sequence[Enrollment],
    *,
    seed: int,
    start: datetime,
    records: int | None = None,
) -> Funnel:
    """The `Funnel` of stored enrollments of one definition (see `Funnel` for the
    figures). Time to an outcome runs from ``start`` to the last history entry;
    workload counts manual steps by the local day they were finished on.

    Args:
        definition: The definition the enrollments ran.
        enrollments: The enrollments.
        seed: Recorded in the funnel.
        start: When the records were connected.
        records: The number of records (``len(enrollments)`` by default).
    """
    outcomes: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    performed: Counter[str] = Counter()
    declined: Counter[str] = Counter()
    per_step_outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    durations: dict[str, list[timedelta]] = defaultdict(list)
    activities: Counter[str] = Counter()
    workload: dict[tuple[str, str], Counter[date]] = defaultdict(Counter)
    entered = 0
    for e in enrollments:
        outcome = _outcome_of(e, definition)
        outcomes[outcome] += 1
        steps = {h.step_id for h in e.history}
        if e.current_step is not None:
            steps.add(e.current_step)
        entered += len(steps)
        for step_id in steps:
            reached[step_id] += 1
            per_step_outcomes[step_id][outcome] += 1
        for h in e.history:
            if h.kind is StepKind.CONDITION:
                (performed if h.outcome == "yes" else declined)[h.step_id] += 1
            elif h.kind.manual:
                if h.outcome == "skipped":
                    declined[h.step_id] += 1
                else:
                    performed[h.step_id] += 1
                    activities[h.kind.value] += 1
                    day = h.at.date()
                    workload[(h.owner_id or "", h.kind.value)][day] += 1
            elif h.kind in (StepKind.AUTO_EMAIL, StepKind.AUTO_SMS, StepKind.AB_TEST):
                performed[h.step_id] += 1
                activities[h.kind.value] += 1
        if outcome != ACTIVE and e.history:
            durations[outcome].append(e.history[-1].at - start)
    times = {}
    for outcome, values in durations.items():
        values.sort()
        times[outcome] = OutcomeTimes(
            median=_nearest_rank(values, 0.5), p90=_nearest_rank(values, 0.9), longest=values[-1]
        )
    goal = next((s.outcome for s in definition.steps if hasattr(s, "outcome")), None)
    return Funnel(
        sequence_id=definition.id,
        sequence_version=definition.version,
        records=records if records is not None else len(enrollments),
        seed=seed,
        goal=goal,
        outcomes=dict(outcomes),
        steps=tuple(
            StepFunnel(
                step_id=s.id,
                kind=step_kind(s).value,
                reached=reached[s.id],
                performed=performed[s.id],
                declined=declined[s.id],
                outcomes=dict(per_step_outcomes[s.id]),
            )
            for s in definition.steps
        ),
        times=times,
        activities=dict(activities),
        workload=tuple(
            WorkloadStats(owner_id=owner, kind=kind, per_day=dict(sorted(days.items())))
            for (owner, kind), days in sorted(workload.items())
        ),
        steps_entered=entered,
    )
