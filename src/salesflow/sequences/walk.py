"""The graph walker behind the sequence runtime: entering steps, running automated
ones, deciding conditions and ending enrollments.

Internal to `salesflow.sequences.runtime`, whose commands are the public surface
and whose module docstring states the semantics. A `Run` is one command's work in
progress: a private copy of the enrollment (one version higher) plus the actions
and events produced so far; `finish` turns it into an `Advance` and brings the
enrollment's due item in line with its new state.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import datetime

from salesflow.clock import require_aware
from salesflow.conditions import evaluate
from salesflow.errors import InvalidDefinition, InvalidTransition, ValidationError
from salesflow.sequences.definition import (
    ABTestStep,
    ActivityStep,
    AdvanceStep,
    CallWatch,
    ConditionStep,
    EmailWatch,
    EndStep,
    FieldWatch,
    Match,
    SequenceDefinition,
    SetStatusStep,
    Span,
    Step,
    StepKind,
    UpdateFieldStep,
    WaitStep,
    step_kind,
)
from salesflow.sequences.enrollment import (
    Action,
    Advance,
    AdvanceTo,
    CancelActivity,
    CreateActivity,
    Enrollment,
    EnrollmentCompleted,
    EnrollmentExited,
    EnrollmentStatus,
    ExitReason,
    HistoryEntry,
    RecordFacts,
    RuntimeConfig,
    Schedule,
    SendEmail,
    SendSms,
    SequenceEvent,
    SequenceSendFailed,
    SetField,
    SetStatus,
    StepCompleted,
    StepStarted,
    Unschedule,
    move,
)
from salesflow.values import shallow_copy

__all__ = [
    "DEFAULT_CONFIG",
    "EMAIL_KINDS",
    "TIMED_STEPS",
    "Run",
    "begin",
    "decide",
    "early",
    "enter",
    "exit_now",
    "finish",
    "manual_current",
    "record",
    "steps_of",
    "subject_of",
    "variant_for",
    "verdict",
]

DEFAULT_CONFIG = RuntimeConfig()
"""The organization calendar Monday–Friday 08:00–17:00 UTC, calendar days, "answered"."""

EMAIL_KINDS = frozenset({StepKind.EMAIL, StepKind.AUTO_EMAIL, StepKind.AB_TEST})
TIMED_STEPS = (WaitStep, ConditionStep)
"""The steps an enrollment waits on until a due time (a tuple: ``isinstance`` with a
``X | Y`` union builds the union on every call, and this test runs on every move)."""
_CACHE: dict[int, tuple[SequenceDefinition, Mapping[str, Step]]] = {}


def steps_of(definition: SequenceDefinition) -> Mapping[str, Step]:
    """The definition's steps by id, built once per definition object."""
    hit = _CACHE.get(id(definition))
    if hit is not None and hit[0] is definition:
        return hit[1]
    if len(_CACHE) >= 256:
        _CACHE.clear()
    by_id = definition.by_id
    _CACHE[id(definition)] = (definition, by_id)
    return by_id


def subject_of(step: Step) -> str:
    if isinstance(step, ActivityStep):
        return step.subject
    if isinstance(step, WaitStep):
        return f"Wait {step.span}"
    if isinstance(step, ConditionStep):
        return step.description or f"Condition {step.id}"
    if isinstance(step, UpdateFieldStep):
        return f"Set {step.field}"
    if isinstance(step, SetStatusStep):
        return f"Set status {step.status}"
    if isinstance(step, AdvanceStep):
        return f"Advance to {step.sequence_id}"
    if isinstance(step, ABTestStep):
        return f"A/B test {step.variant_a} / {step.variant_b}"
    return f"End: {step.outcome}"


def variant_for(step: ABTestStep, enrollment_id: str) -> str:
    """The A/B variant an enrollment gets: a stable split of the audience.

    Args:
        step: The A/B test step.
        enrollment_id: The enrollment.

    Returns:
        ``"a"`` for ``split_percent`` of enrollments, else ``"b"``; the same every time.
    """
    bucket = zlib.crc32(f"{enrollment_id}:{step.id}".encode()) % 100
    return "a" if bucket < step.split_percent else "b"


class Run:
    """One command's work in progress: a private copy of the enrollment plus output."""

    __slots__ = (
        "actions",
        "budget",
        "config",
        "definition",
        "e",
        "events",
        "facts",
        "now",
        "steps",
    )

    def __init__(
        self,
        definition: SequenceDefinition,
        enrollment: Enrollment,
        now: datetime,
        config: RuntimeConfig,
        facts: RecordFacts | None,
    ) -> None:
        self.definition = definition
        self.steps = steps_of(definition)
        self.e = enrollment
        self.now = now
        self.config = config
        self.facts = facts
        self.actions: list[Action] = []
        self.events: list[SequenceEvent] = []
        self.budget = config.max_steps

    def event(self, event_type: type[SequenceEvent], **fields: object) -> None:
        self.events.append(event_type(occurred_at=self.now, enrollment_id=self.e.id, **fields))


def begin(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    now: datetime,
    config: RuntimeConfig,
    facts: RecordFacts | None,
) -> Run:
    if (definition.id, definition.version) != (
        enrollment.sequence_id,
        enrollment.sequence_version,
    ):
        raise ValidationError(
            f"{enrollment} runs version {enrollment.sequence_version} of "
            f"{enrollment.sequence_id!r}, not version {definition.version} of "
            f"{definition.id!r}; pass the definition it was connected to",
            field="definition",
            value=(definition.id, definition.version),
        )
    now = require_aware(now, "now")
    # the runtime's private copy; only the version changes here, so nothing to check
    copy = shallow_copy(enrollment)
    copy.version = enrollment.version + 1
    return Run(definition, copy, now, config, facts)


def _timed(e: Enrollment, steps: Mapping[str, Step]) -> bool:
    return (
        e.status is EnrollmentStatus.ACTIVE
        and e.current_step is not None
        and e.due_at is not None
        and isinstance(steps[e.current_step], TIMED_STEPS)
    )


def finish(run: Run, before: Enrollment) -> Advance:
    """The result, with the due item brought in line with the new state."""
    steps = run.steps
    e = run.e
    if _timed(e, steps):
        assert e.due_at is not None
        if not (
            _timed(before, steps)
            and before.due_at == e.due_at
            and before.current_step == e.current_step
            and len(before.history) == len(e.history)
        ):
            run.actions.append(Schedule(due_at=e.due_at))
    elif _timed(before, steps):
        run.actions.append(Unschedule())
    return Advance(enrollment=e, actions=tuple(run.actions), events=tuple(run.events))


_AFTER: dict[tuple[int, datetime, Span, bool, bool], tuple[object, datetime]] = {}


def _after(run: Run, span: Span) -> datetime:
    calendar = run.config.calendars.for_owner(run.e.owner_id)
    skip = run.definition.skip_non_working_time
    working = run.config.count_working_days
    # The answer depends only on these (calendars are frozen), and the enrollments of
    # one run_due batch share ``now`` and their steps' spans: remember recent answers.
    key = (id(calendar), run.now, span, skip, working)
    hit = _AFTER.get(key)
    if hit is not None and hit[0] is calendar:
        return hit[1]
    due = calendar.schedule_after(run.now, span, skip_non_working=skip, count_working_days=working)
    if len(_AFTER) >= 1024:
        _AFTER.clear()
    _AFTER[key] = (calendar, due)
    return due


def _actionable_from(run: Run) -> datetime:
    """When a manual step entered now is due: now, or with ``skip_non_working_time``
    the step owner's next working time (REFERENCE "Working time": time off moves
    activities to the next available slot)."""
    if not run.definition.skip_non_working_time:
        return run.now
    return run.config.calendars.for_owner(run.e.step_owner_id).next_working_time(run.now)


_UNREACHABLE: dict[str, tuple[str, str]] = {
    "do_not_email": (
        "the recipient does not allow emails (do_not_email)",
        "connect it again once the customer allows emails",
    ),
    "do_not_bulk_email": (
        "the recipient does not allow bulk emails (do_not_bulk_email), and an automated "
        "sequence email is one",
        "connect it again once the customer allows them",
    ),
    "no_email_address": (
        "the recipient has no email address",
        "add one and connect the record again",
    ),
    "do_not_phone": (
        "the recipient does not allow phone contact (do_not_phone)",
        "connect it again once the customer allows it",
    ),
    "no_mobile_phone": (
        "the recipient has no mobile phone",
        "add one and connect the record again",
    ),
    "no_recipient": (
        "the record has no contact to write to",
        "give an opportunity a contact (contact_id), or the account a primary contact "
        "(primary_contact_id), then connect it again",
    ),
}


def _undeliverable(run: Run, step: ActivityStep | ABTestStep, channel: str) -> bool:
    """End the enrollment in error, sending nothing, when the facts say the record
    cannot be sent an automated message on ``channel``; True when it did."""
    facts = run.facts
    # facts written before `RecordFacts.unreachable` existed cannot refuse a message
    check = getattr(facts, "unreachable", None) if facts is not None else None
    reason = check(channel) if check is not None else None
    if reason is None:
        return False
    e = run.e
    why, fix = _UNREACHABLE.get(reason, (f"the recipient cannot receive it ({reason})", ""))
    error = (
        f"{e.record} was not sent the automated {channel} of step {step.id!r} of sequence "
        f"{run.definition.id!r}: {why}; the enrollment ended in error"
        + (f" ({fix})" if fix else "")
    )
    record(run, step, "failed")
    run.event(
        SequenceSendFailed,
        step_id=step.id,
        record=str(e.record),
        channel=channel,
        reason=reason,
        error=error,
    )
    exit_now(run, ExitReason.ERROR)
    return True


def record(run: Run, step: Step, outcome: str) -> None:
    e = run.e
    e.history = (
        *e.history,
        HistoryEntry(
            step_id=step.id,
            kind=step_kind(step),
            outcome=outcome,
            at=run.now,
            owner_id=e.step_owner_id,
        ),
    )
    # built here rather than by `Run.event`: every step passes here, and the
    # keyword packing and unpacking costs as much as the event itself
    run.events.append(
        StepCompleted(occurred_at=run.now, enrollment_id=e.id, step_id=step.id, outcome=outcome)
    )


def _leave(e: Enrollment) -> None:
    e.current_step = None
    e.due_at = None
    e.step_started_at = None
    e.paused_remaining = None


def _complete(run: Run, outcome: str | None) -> None:
    e = run.e
    e.status = move(e.status, "complete", what=str(e))
    _leave(e)
    e.outcome = outcome
    run.event(EnrollmentCompleted, outcome=outcome)


def exit_now(run: Run, reason: ExitReason) -> None:
    e = run.e
    if e.current_step is not None:
        step = run.steps[e.current_step]
        if step_kind(step).manual:
            run.actions.append(CancelActivity(step_id=step.id))
    e.status = move(e.status, "exit", what=str(e))
    _leave(e)
    e.exit_reason = reason
    run.event(EnrollmentExited, reason=reason)


def _forget(e: Enrollment, step_id: str) -> None:
    """Drop the facts of an earlier visit of ``step_id`` (a loop came back to it)."""
    if step_id in e.email_events:
        e.email_events = {k: v for k, v in e.email_events.items() if k != step_id}
    if step_id in e.call_outcomes:
        e.call_outcomes = {k: v for k, v in e.call_outcomes.items() if k != step_id}


def _watched(step: ConditionStep, e: Enrollment) -> str | None:
    if step.watches is not None:
        return step.watches
    return e.history[-1].step_id if e.history else None


def verdict(run: Run, step: ConditionStep) -> bool:
    """Whether the condition's event has happened, from the facts known now."""
    watch = step.watch
    e = run.e
    if isinstance(watch, EmailWatch):
        watched = _watched(step, e)
        seen = e.email_events.get(watched, frozenset()) if watched else frozenset()
        if watch.match is Match.ALL:
            return all(event in seen for event in watch.events)
        return any(event in seen for event in watch.events)
    if isinstance(watch, CallWatch):
        watched = _watched(step, e)
        outcome = e.call_outcomes.get(watched) if watched else None
        return outcome is not None and outcome in (watch.outcomes or run.config.answered)
    if run.facts is None:
        raise ValidationError(
            f"condition {step.id!r} of sequence {run.definition.id!r} looks at the record's "
            f"{'fields' if isinstance(watch, FieldWatch) else 'process stage'}; pass facts= "
            f"(RecordFacts) for {e}",
            field="facts",
            value=None,
        )
    if isinstance(watch, FieldWatch):
        return evaluate(watch.condition, run.facts.field_value)
    return run.facts.stage() == watch.stage


def decide(run: Run, step: ConditionStep, verdict: bool) -> str:
    record(run, step, "yes" if verdict else "no")
    return step.yes if verdict else step.no


def enter(run: Run, step_id: str | None) -> None:
    """Enter ``step_id`` and run automated steps until something must wait."""
    steps = run.steps
    e = run.e
    while True:
        if step_id is None:
            _complete(run, None)
            return
        run.budget -= 1
        if run.budget < 0:
            raise InvalidDefinition(
                [
                    f"sequence {run.definition.id!r} version {run.definition.version} ran "
                    f"{run.config.max_steps} steps in one go for {e} without reaching a "
                    f"manual step, a wait or an undecided condition (last: {step_id!r}); "
                    f"its graph loops without a wait: validate() reports where"
                ]
            )
        step = steps[step_id]
        kind = step_kind(step)
        e.current_step = step_id
        e.step_started_at = run.now
        e.step_owner_id = e.owner_id
        e.due_at = None
        # built here rather than by `Run.event`, as in `record`: every step passes here
        run.events.append(
            StepStarted(occurred_at=run.now, enrollment_id=e.id, step_id=step_id, kind=kind)
        )
        if isinstance(step, ActivityStep):
            _forget(e, step_id)
            if kind.manual:
                e.due_at = _actionable_from(run)
                run.actions.append(
                    CreateActivity(
                        step_id=step_id,
                        kind=kind,
                        subject=step.subject,
                        owner_id=e.step_owner_id,
                        due_at=e.due_at,
                        description=step.description,
                        linkedin_action=step.linkedin_action,
                    )
                )
                return
            if _undeliverable(run, step, "email" if kind is StepKind.AUTO_EMAIL else "sms"):
                return
            if kind is StepKind.AUTO_EMAIL:
                run.actions.append(
                    SendEmail(
                        step_id=step_id,
                        template=step.template,
                        subject=step.subject,
                        owner_id=e.step_owner_id,
                    )
                )
            else:
                run.actions.append(
                    SendSms(
                        step_id=step_id,
                        template=step.template,
                        subject=step.subject,
                        owner_id=e.step_owner_id,
                    )
                )
            record(run, step, "sent")
            step_id = step.next
        elif isinstance(step, WaitStep):
            e.due_at = _after(run, step.span)
            return
        elif isinstance(step, ConditionStep):
            if step.within.days == 0 and step.within.hours == 0:
                step_id = decide(run, step, verdict(run, step))
            elif step.advance_early and verdict(run, step):
                step_id = decide(run, step, True)
            else:
                e.due_at = _after(run, step.within)
                return
        elif isinstance(step, ABTestStep):
            _forget(e, step_id)
            if _undeliverable(run, step, "email"):
                return
            winner = run.facts.ab_winner(step_id) if run.facts is not None else None
            variant = winner if winner in ("a", "b") else variant_for(step, e.id)
            e.variants = {**e.variants, step_id: variant}
            run.actions.append(
                SendEmail(
                    step_id=step_id,
                    template=step.variant_a if variant == "a" else step.variant_b,
                    subject=subject_of(step),
                    owner_id=e.step_owner_id,
                    variant=variant,
                )
            )
            record(run, step, "sent")
            step_id = step.next
        elif isinstance(step, UpdateFieldStep):
            run.actions.append(SetField(step_id=step_id, field=step.field, value=step.value))
            record(run, step, "set")
            step_id = step.next
        elif isinstance(step, SetStatusStep):
            run.actions.append(SetStatus(step_id=step_id, status=step.status, reason=step.reason))
            record(run, step, "set")
            step_id = step.next
        elif isinstance(step, AdvanceStep):
            run.actions.append(AdvanceTo(step_id=step_id, sequence_id=step.sequence_id))
            record(run, step, "advanced")
            exit_now(run, ExitReason.ADVANCED_TO_SEQUENCE)
            return
        else:
            assert isinstance(step, EndStep)
            record(run, step, step.outcome)
            _complete(run, step.outcome)
            return


_DONE = {"complete": "completed", "skip": "skipped", "snooze": "snoozed", "assign": "assigned"}


def manual_current(run: Run, step_id: str, verb: str, *, paused_too: bool = False) -> ActivityStep:
    """The current manual step ``step_id`` the seller acts on (``verb``), or
    `InvalidTransition` saying why it cannot be acted on; a paused enrollment's
    step only when ``paused_too``."""
    e = run.e
    if e.status is not EnrollmentStatus.ACTIVE and not (
        paused_too and e.status is EnrollmentStatus.PAUSED
    ):
        raise InvalidTransition(
            f"{e} cannot {verb} step {step_id!r} while {e.status.value}"
            + ("; resume it first" if e.status is EnrollmentStatus.PAUSED else ""),
            state=e.status.value,
            event=verb,
        )
    if e.current_step != step_id:
        raise InvalidTransition(
            f"{e} cannot {verb} step {step_id!r}: its current step is {e.current_step!r}",
            state=e.status.value,
            event=verb,
        )
    step = run.steps[step_id]
    if not isinstance(step, ActivityStep) or not step.kind.manual:
        raise InvalidTransition(
            f"{e} cannot {verb} step {step_id!r}: it is a {step_kind(step).value} step, which "
            f"runs by itself; only manual steps (email, call, task, LinkedIn, SMS) can be "
            f"{_DONE.get(verb, verb + 'ed')} by a seller",
            state=e.status.value,
            event=verb,
        )
    return step


def early(run: Run) -> None:
    """Take an ``advance_early`` condition's yes branch if its event is known now."""
    e = run.e
    if e.current_step is None:
        return
    step = run.steps[e.current_step]
    if isinstance(step, ConditionStep) and step.advance_early and verdict(run, step):
        enter(run, decide(run, step, True))
