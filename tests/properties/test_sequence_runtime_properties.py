"""Random valid graphs and random event streams through the sequence runtime.

Graphs come from the strategy of ``test_sequence_graphs``; a stream of seller and
customer actions (complete with a random call outcome, skip, snooze, email events,
pause/resume, the clock jumping to the due time) is drawn step by step. What holds:

* no enrollment is ever stuck: an active one either waits on a manual step or has a
  due time that the engine was asked to schedule; a paused one keeps its step;
* when manual steps complete at once, the enrollment ends no later than
  ``stats().longest`` after it started;
* the same inputs give the same history, actions and events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from test_sequence_graphs import valid_definitions

from salesflow.sequences import runtime as rt
from salesflow.sequences.definition import (
    ActivityStep,
    ConditionStep,
    EmailEvent,
    SequenceDefinition,
    StepKind,
    WaitStep,
    step_kind,
)
from salesflow.sequences.enrollment import (
    Advance,
    Enrollment,
    EnrollmentStatus,
    Schedule,
    StaticFacts,
    Unschedule,
)
from salesflow.sequences.validation import stats
from salesflow.values import RecordRef

T0 = datetime(2024, 3, 4, 9, tzinfo=UTC)
EMAIL_KINDS = {StepKind.EMAIL, StepKind.AUTO_EMAIL, StepKind.AB_TEST}
OUTCOMES = ["answered", "no_answer", "busy"]
EVENTS = list(EmailEvent)


def _manual(definition: SequenceDefinition, e: Enrollment) -> ActivityStep | None:
    step = definition.by_id[e.current_step] if e.current_step else None
    return step if isinstance(step, ActivityStep) and step.kind.manual else None


def run(
    definition: SequenceDefinition,
    choose: Callable[[int], int],
    *,
    immediate: bool = False,
    check: Callable[[SequenceDefinition, Enrollment, datetime | None], None] | None = None,
) -> tuple[Enrollment, datetime, list[Advance]]:
    """Drive one enrollment to its end; ``choose(n)`` picks one of ``n`` options.

    Choosing 0 always makes progress (complete, or let the due time come) and
    detours (pauses, snoozes, email events) are capped, so every stream ends. With
    ``immediate`` the seller completes manual steps at once and never pauses or
    snoozes; customers may still act on sent emails.
    """
    facts = StaticFacts(fields={"rating": "hot" if choose(2) else "cold"})
    now = T0
    advance = rt.start(
        definition,
        enrollment_id="e-1",
        record=RecordRef(kind=definition.record_type, id="r-1"),
        owner_id="ann",
        now=now,
        facts=facts,
    )
    results = [advance]
    scheduled: datetime | None = None

    def note(result: Advance) -> None:
        nonlocal scheduled
        for action in result.actions:
            if isinstance(action, Schedule):
                scheduled = action.due_at
            elif isinstance(action, Unschedule):
                scheduled = None
        results.append(result)
        if check is not None:
            check(definition, result.enrollment, scheduled)

    note(advance)
    results.pop()  # counted once
    e = advance.enrollment
    pauses = detours = 0
    for _ in range(300):
        if e.ended:
            break
        sent = sorted(
            {h.step_id for h in e.history if h.kind in EMAIL_KINDS and h.outcome == "sent"}
        )
        if e.status is EnrollmentStatus.PAUSED:
            now += timedelta(hours=choose(48))
            result = rt.resume(definition, e, now, facts=facts)
        elif sent and detours < 30 and choose(4) == 3:
            detours += 1
            result = rt.record_email_event(
                definition,
                e,
                sent[choose(len(sent))],
                EVENTS[choose(len(EVENTS))],
                now,
                facts=facts,
            )
        elif not immediate and pauses < 3 and choose(8) == 7:
            pauses += 1
            result = rt.pause(definition, e, now)
        elif (step := _manual(definition, e)) is not None:
            move = 0 if immediate or detours >= 30 else choose(4)
            detours += move == 2
            if move == 1:
                result = rt.skip_step(definition, e, step.id, now, facts=facts)
            elif move == 2 and step.kind is not StepKind.TASK:
                assert e.due_at is not None
                until = max(now, e.due_at) + timedelta(hours=1 + choose(24))
                result = rt.snooze(definition, e, step.id, until, now)
                now = until
            else:
                outcome = OUTCOMES[choose(3)] if step.kind is StepKind.CALL else None
                result = rt.complete_step(definition, e, step.id, now, outcome=outcome, facts=facts)
        else:
            assert e.due_at is not None
            now = max(now, e.due_at)
            scheduled = None  # the engine consumed the due item
            result = rt.on_due(definition, e, now, facts=facts)
        note(result)
        e = result.enrollment
    assert e.ended, "the enrollment did not end within 300 moves"
    return e, now, results


def not_stuck(definition: SequenceDefinition, e: Enrollment, scheduled: datetime | None) -> None:
    if e.status is EnrollmentStatus.ACTIVE:
        assert e.current_step is not None
        step = definition.by_id[e.current_step]
        if isinstance(step, WaitStep | ConditionStep):
            assert e.due_at is not None
            assert scheduled == e.due_at, (e, scheduled)
        else:
            assert isinstance(step, ActivityStep), step_kind(step)
            assert step.kind.manual, step_kind(step)
    elif e.status is EnrollmentStatus.PAUSED:
        assert e.current_step is not None
        assert e.due_at is None
        assert scheduled is None
    else:
        assert e.current_step is None
        assert e.due_at is None


def chooser(data: st.DataObject, log: list[int]) -> Callable[[int], int]:
    def choose(n: int) -> int:
        value = data.draw(st.integers(0, n - 1)) if n > 1 else 0
        log.append(value)
        return value

    return choose


def replay(log: list[int]) -> Callable[[int], int]:
    values = iter(log)

    def choose(n: int) -> int:
        return next(values)

    return choose


@settings(max_examples=200, deadline=None)
@given(valid_definitions(), st.data())
def test_no_enrollment_is_ever_stuck(definition: SequenceDefinition, data: st.DataObject) -> None:
    run(definition, chooser(data, []), check=not_stuck)


@settings(max_examples=200, deadline=None)
@given(valid_definitions(), st.data())
def test_durations_never_exceed_the_longest_path(
    definition: SequenceDefinition, data: st.DataObject
) -> None:
    e, end, _ = run(definition, chooser(data, []), immediate=True)
    stat = stats(definition)
    assert end - T0 <= stat.longest
    assert all(T0 <= h.at <= T0 + stat.longest for h in e.history)


@settings(max_examples=100, deadline=None)
@given(valid_definitions(), st.data())
def test_the_same_inputs_give_the_same_history(
    definition: SequenceDefinition, data: st.DataObject
) -> None:
    log: list[int] = []
    first, _, first_results = run(definition, chooser(data, log))
    second, _, second_results = run(definition, replay(log))
    assert first.history == second.history
    assert [(r.actions, r.events) for r in first_results] == [
        (r.actions, r.events) for r in second_results
    ]
