"""The sequence runtime: pure functions that move one enrollment along its graph.

Every function takes the definition, the enrollment, the command's arguments and
``now`` and returns an `Advance`: the new enrollment (the input is never changed),
the actions the engine must perform and the events that happened. Nothing here
reads a clock or a store; the engine stores the enrollment, performs the actions
and publishes the events in one unit of work (DESIGN §1). The graph is walked
directly (no state machine per enrollment, DESIGN §5/§7); the enrollment's own
lifecycle moves through a table derived once from `EnrollmentLifecycle`.

Semantics (REFERENCE "Sequences"):

* **Automated steps run at once.** Entering a step runs automated email and SMS,
  A/B tests, field updates, status changes, advances and ends, one after another,
  until the enrollment reaches a manual step (email, call, task, LinkedIn, SMS:
  it waits for the seller), a wait or a condition that is not decided yet (a
  `Schedule` action asks the engine to call `on_due` at its time), or the end.
* **Automated messages need a recipient who can receive them.** Before an
  automated email (or A/B test variant) or SMS is sent, `RecordFacts.unreachable`
  is asked; when it gives a reason (a consent flag, a missing address, no contact)
  nothing is sent, the step is recorded as ``failed``, `SequenceSendFailed` says
  why and the enrollment exits with reason ``error``. Without facts every message
  is sent.
* **Waits** are scheduled on the enrollment owner's calendar with
  `OrganizationCalendar.schedule_after`, honouring the definition's
  ``skip_non_working_time`` and `RuntimeConfig.count_working_days`; condition time
  limits are scheduled the same way. With ``skip_non_working_time`` a manual step
  entered outside working time is due at the step owner's next working time.
* **Conditions** watch ``watches`` or, by default, the step the enrollment finished
  just before the condition. Email conditions are *yes* when the watched events
  (any or all) were recorded for the watched email since it was sent and before the
  limit expired; call conditions are *yes* when the watched call's outcome is one
  of the watch's outcomes (by default `RuntimeConfig.answered`); field and stage
  conditions ask the engine's `RecordFacts`. By default the branch is taken only
  when the whole limit has elapsed (as `stats` counts it); with ``advance_early``
  the yes branch is taken as soon as it is known (the no branch still waits for the
  limit). A condition without a limit decides at once. A skipped watched step has
  no facts, so its condition takes the no branch.
* **Repeated steps** (a loop through a wait) forget the facts of their previous
  visit when entered again.
* **Stale due items are harmless**: `on_due` does nothing unless the enrollment is
  active on a wait or condition whose time has come.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from salesflow.clock import require_aware
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.sequences.definition import (
    ActivityStep,
    ConditionStep,
    EmailEvent,
    SequenceDefinition,
    Step,
    StepKind,
    WaitStep,
    step_kind,
    successors,
)
from salesflow.sequences.enrollment import (
    Advance,
    CancelActivity,
    CompleteActivity,
    Enrollment,
    EnrollmentOwnerChanged,
    EnrollmentPaused,
    EnrollmentResumed,
    EnrollmentStarted,
    EnrollmentStatus,
    ExitReason,
    Preview,
    ReassignActivity,
    RecordFacts,
    RescheduleActivity,
    RuntimeConfig,
    StepAssigned,
    StepSkipped,
    StepSnoozed,
    UpNext,
    move,
)
from salesflow.sequences.walk import (
    DEFAULT_CONFIG,
    EMAIL_KINDS,
    TIMED_STEPS,
    begin,
    decide,
    early,
    enter,
    exit_now,
    finish,
    manual_current,
    record,
    steps_of,
    subject_of,
    variant_for,
    verdict,
)
from salesflow.values import RecordRef, is_identifier

__all__ = [
    "DEFAULT_CONFIG",
    "assign_step",
    "change_owner",
    "complete_step",
    "exit_enrollment",
    "on_due",
    "pause",
    "record_email_event",
    "resume",
    "skip_step",
    "snooze",
    "start",
    "up_next",
    "variant_for",
]

# --- commands ------------------------------------------------------------------------


def start(
    definition: SequenceDefinition,
    *,
    enrollment_id: str,
    record: RecordRef,
    owner_id: str | None,
    now: datetime,
    config: RuntimeConfig = DEFAULT_CONFIG,
    facts: RecordFacts | None = None,
) -> Advance:
    """Connect ``record`` to ``definition``: enter the entry step and run automated
    steps until a manual step, a wait, an undecided condition or the end.

    The engine checks what needs the store (a closed record, a record already on
    the sequence, an inactive definition) before calling this.

    Args:
        definition: The (valid, published) sequence version to run.
        enrollment_id: The new enrollment's id.
        record: The record to connect.
        owner_id: Who gets the steps.
        now: The current time (aware).
        config: Calendars, answered outcomes and the step budget.
        facts: The record's fields and stage, for field and stage conditions.

    Returns:
        The new enrollment (version 1), its actions and events.

    Raises:
        ValidationError: ``record`` is of another type than the sequence's, ``now``
            is naive, or a field/stage condition is decided without ``facts``.
        InvalidDefinition: The graph loops without a wait.
    """
    if record.kind is not definition.record_type:
        raise ValidationError(
            f"sequence {definition.id!r} runs on {definition.record_type.value} records; "
            f"{record} is a {record.kind.value}: connect it to a "
            f"{record.kind.value} sequence instead",
            field="record",
            value=str(record),
        )
    enrollment = Enrollment(
        id=enrollment_id,
        sequence_id=definition.id,
        sequence_version=definition.version,
        record=record,
        owner_id=owner_id,
        step_owner_id=owner_id,
        connected_at=now,
        version=0,
    )
    run = begin(definition, enrollment, now, config, facts)
    run.event(
        EnrollmentStarted,
        sequence_id=definition.id,
        sequence_version=definition.version,
        record=str(record),
    )
    enter(run, definition.entry)
    return finish(run, enrollment)


def complete_step(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    step_id: str,
    now: datetime,
    *,
    outcome: str | None = None,
    config: RuntimeConfig = DEFAULT_CONFIG,
    facts: RecordFacts | None = None,
) -> Advance:
    """The seller completed the current manual step (a call with its ``outcome``).

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        step_id: The step being completed; must be the current one.
        now: The current time.
        outcome: A call's result (``"answered"``, ``"no_answer"`` …); which outcomes
            count as answered is `RuntimeConfig.answered`.
        config: Calendars, answered outcomes and the step budget.
        facts: The record's fields and stage, for field and stage conditions.

    Returns:
        The enrollment moved on to the next step that must wait.

    Raises:
        InvalidTransition: The enrollment is not active, or ``step_id`` is not its
            current manual step.
        ValidationError: Wrong definition, naive ``now``, or facts missing.
    """
    run = begin(definition, enrollment, now, config, facts)
    step = manual_current(run, step_id, "complete")
    e = run.e
    run.actions.append(CompleteActivity(step_id=step_id, outcome=outcome))
    if step.kind is StepKind.CALL and outcome is not None:
        e.call_outcomes = {**e.call_outcomes, step_id: outcome}
    record(run, step, outcome or "completed")
    enter(run, step.next)
    return finish(run, enrollment)


def skip_step(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    step_id: str,
    now: datetime,
    *,
    config: RuntimeConfig = DEFAULT_CONFIG,
    facts: RecordFacts | None = None,
) -> Advance:
    """The seller skipped the current manual step: its activity is canceled and the
    enrollment moves on; a condition watching it takes the no branch.

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        step_id: The step being skipped; must be the current one.
        now: The current time.
        config: Calendars, answered outcomes and the step budget.
        facts: The record's fields and stage, for field and stage conditions.

    Returns:
        The enrollment moved on.

    Raises:
        InvalidTransition: The enrollment is not active, or ``step_id`` is not its
            current manual step.
        ValidationError: Wrong definition, naive ``now``, or facts missing.
    """
    run = begin(definition, enrollment, now, config, facts)
    step = manual_current(run, step_id, "skip")
    run.actions.append(CancelActivity(step_id=step_id))
    run.event(StepSkipped, step_id=step_id)
    record(run, step, "skipped")
    enter(run, step.next)
    return finish(run, enrollment)


def snooze(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    step_id: str,
    until: datetime,
    now: datetime,
) -> Advance:
    """Move the current manual step to a later time (not for tasks).

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        step_id: The step; must be the current one.
        until: The new due time; later than now and than the current due time.
        now: The current time.

    Returns:
        The enrollment with ``due_at`` at ``until`` and a `RescheduleActivity`.

    Raises:
        InvalidTransition: Not active, not the current manual step, or a task.
        ValidationError: ``until`` is naive or not later.
    """
    run = begin(definition, enrollment, now, DEFAULT_CONFIG, None)
    step = manual_current(run, step_id, "snooze")
    e = run.e
    if step.kind is StepKind.TASK:
        raise InvalidTransition(
            f"{e} cannot snooze task step {step_id!r}: manual tasks cannot be snoozed; "
            f"complete or skip it",
            state=e.status.value,
            event="snooze",
        )
    until = require_aware(until, "until")
    earliest = max(run.now, e.due_at) if e.due_at is not None else run.now
    if until <= earliest:
        raise ValidationError(
            f"snooze of step {step_id!r} of {e} until {until.isoformat()} is not later than "
            f"{earliest.isoformat()}; a step can only be snoozed to a later time",
            field="until",
            value=until,
        )
    e.due_at = until
    run.actions.append(RescheduleActivity(step_id=step_id, due_at=until))
    run.event(StepSnoozed, step_id=step_id, until=until)
    return finish(run, enrollment)


def assign_step(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    step_id: str,
    owner_id: str | None,
    now: datetime,
) -> Advance:
    """Give the current manual step (and its activity) to ``owner_id``; the steps
    after it still go to the enrollment's owner. A paused enrollment's step can be
    assigned too: assigning changes who does the step, not when.

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        step_id: The step; must be the current one.
        owner_id: Who does it from now on (None: nobody in particular).
        now: The current time.

    Returns:
        The enrollment with ``step_owner_id`` at ``owner_id`` and a
        `ReassignActivity`; the same enrollment, with no actions, when the step is
        already theirs.

    Raises:
        InvalidTransition: Ended, or ``step_id`` is not its current manual step.
        ValidationError: ``owner_id`` is not None or an id.
    """
    if owner_id is not None and not is_identifier(owner_id):
        raise ValidationError(
            f"owner_id={owner_id!r} must be None or an id: a non-empty string of at most "
            f"200 characters without surrounding spaces",
            field="owner_id",
            value=owner_id,
        )
    run = begin(definition, enrollment, now, DEFAULT_CONFIG, None)
    manual_current(run, step_id, "assign", paused_too=True)
    if enrollment.step_owner_id == owner_id:
        return Advance(enrollment=enrollment)
    run.e.step_owner_id = owner_id
    run.actions.append(ReassignActivity(step_id=step_id, owner_id=owner_id))
    run.event(StepAssigned, step_id=step_id, owner_id=owner_id)
    return finish(run, enrollment)


def record_email_event(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    step_id: str,
    event: EmailEvent | str,
    now: datetime,
    *,
    config: RuntimeConfig = DEFAULT_CONFIG,
    facts: RecordFacts | None = None,
) -> Advance:
    """The customer opened, replied to, clicked in or downloaded from an email sent
    by ``step_id``.

    The fact is kept for the conditions watching that email. A reply ends the
    enrollment when the sequence has ``exit_on_reply``. A condition waiting on
    the email with ``advance_early`` takes its yes branch at once; otherwise it is
    decided when its time limit expires. Events for an ended enrollment change
    nothing (the same enrollment comes back, with no actions).

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        step_id: The email, automated email or A/B test step that sent the email.
        event: What the customer did.
        now: The current time.
        config: Calendars, answered outcomes and the step budget.
        facts: The record's fields and stage, for field and stage conditions.

    Returns:
        The enrollment with the fact stored, possibly moved on or exited.

    Raises:
        ValidationError: ``step_id`` is not an email step of the definition, or
            ``event`` is not an email event.
        InvalidTransition: The email has not been sent to this record yet.
    """
    email_event = EmailEvent(event) if event in EmailEvent._value2member_map_ else None
    if email_event is None:
        raise ValidationError(
            f"{event!r} is not an email event; use one of {', '.join(e.value for e in EmailEvent)}",
            field="event",
            value=event,
        )
    step = steps_of(definition).get(step_id)
    if step is None or step_kind(step) not in EMAIL_KINDS:
        raise ValidationError(
            f"sequence {definition.id!r} has no email step {step_id!r}; email events belong "
            f"to an email, automated email or A/B test step",
            field="step_id",
            value=step_id,
        )
    if enrollment.ended:
        return Advance(enrollment=enrollment)
    last = next((h for h in reversed(enrollment.history) if h.step_id == step_id), None)
    if last is None or last.outcome == "skipped":
        raise InvalidTransition(
            f"{enrollment} has not sent the email of step {step_id!r}"
            + (" (the seller skipped it)" if last is not None else " yet")
            + "; an event for it cannot be recorded",
            state=enrollment.status.value,
            event="record_email_event",
        )
    run = begin(definition, enrollment, now, config, facts)
    e = run.e
    seen = e.email_events.get(step_id, frozenset())
    e.email_events = {**e.email_events, step_id: seen | {email_event}}
    if definition.exit_on_reply and email_event is EmailEvent.REPLIED:
        exit_now(run, ExitReason.CUSTOMER_REPLIED)
    elif e.status is EnrollmentStatus.ACTIVE:
        early(run)
    return finish(run, enrollment)


def on_due(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    now: datetime,
    *,
    config: RuntimeConfig = DEFAULT_CONFIG,
    facts: RecordFacts | None = None,
) -> Advance:
    """The enrollment's due time arrived: a wait ends, or a condition's limit
    expires and it takes its branch; the automated steps after it run.

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        now: The current time.
        config: Calendars, answered outcomes and the step budget.
        facts: The record's fields and stage, for field and stage conditions.

    Returns:
        The enrollment moved on; unchanged (same version, no actions) when nothing
        is due (a stale due item, a paused or ended enrollment, a manual step).

    Raises:
        ValidationError: Wrong definition, naive ``now``, or facts missing.
        InvalidDefinition: The graph loops without a wait.
    """
    now = require_aware(now, "now")
    if (
        enrollment.status is not EnrollmentStatus.ACTIVE
        or enrollment.current_step is None
        or enrollment.due_at is None
        or now < enrollment.due_at
    ):
        return Advance(enrollment=enrollment)
    step = steps_of(definition).get(enrollment.current_step)
    if not isinstance(step, TIMED_STEPS):
        return Advance(enrollment=enrollment)
    run = begin(definition, enrollment, now, config, facts)
    if isinstance(step, WaitStep):
        record(run, step, "waited")
        enter(run, step.next)
    else:
        enter(run, decide(run, step, verdict(run, step)))
    return finish(run, enrollment)


def pause(definition: SequenceDefinition, enrollment: Enrollment, now: datetime) -> Advance:
    """Pause the enrollment, keeping how long its current step still had to go.

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        now: The current time.

    Returns:
        The paused enrollment (its due item is dropped).

    Raises:
        InvalidTransition: The enrollment is not active.
    """
    run = begin(definition, enrollment, now, DEFAULT_CONFIG, None)
    e = run.e
    e.status = move(e.status, "pause", what=str(e))
    if e.due_at is not None:
        e.paused_remaining = max(e.due_at - run.now, timedelta(0))
    e.due_at = None
    run.event(EnrollmentPaused)
    return finish(run, enrollment)


def resume(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    now: datetime,
    *,
    config: RuntimeConfig = DEFAULT_CONFIG,
    facts: RecordFacts | None = None,
) -> Advance:
    """Resume a paused enrollment: its current step has the time it had left.

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        now: The current time.
        config: Calendars, answered outcomes and the step budget.
        facts: The record's fields and stage, for field and stage conditions.

    Returns:
        The active enrollment, due again after the remaining time (an
        ``advance_early`` condition whose event came meanwhile moves on at once).

    Raises:
        InvalidTransition: The enrollment is not paused.
    """
    run = begin(definition, enrollment, now, config, facts)
    e = run.e
    e.status = move(e.status, "resume", what=str(e))
    e.due_at = run.now + (e.paused_remaining or timedelta(0))
    e.paused_remaining = None
    step = steps_of(definition).get(e.current_step) if e.current_step else None
    if isinstance(step, ActivityStep) and step.kind.manual:
        # the step's activity moves with it, as a snooze moves it
        run.actions.append(RescheduleActivity(step_id=step.id, due_at=e.due_at))
    run.event(EnrollmentResumed)
    early(run)
    return finish(run, enrollment)


def exit_enrollment(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    reason: ExitReason | str,
    now: datetime,
) -> Advance:
    """End the enrollment early: disconnected by a user, the record qualified,
    disqualified or closed, the sequence deactivated, an error.

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        reason: Why.
        now: The current time.

    Returns:
        The exited enrollment; an open manual step's activity is canceled.

    Raises:
        InvalidTransition: The enrollment has already ended.
        ValidationError: ``reason`` is not an `ExitReason`.
    """
    if reason not in ExitReason._value2member_map_:
        raise ValidationError(
            f"{reason!r} is not an exit reason; use one of "
            f"{', '.join(r.value for r in ExitReason)}",
            field="reason",
            value=reason,
        )
    run = begin(definition, enrollment, now, DEFAULT_CONFIG, None)
    exit_now(run, ExitReason(reason))
    return finish(run, enrollment)


def change_owner(
    definition: SequenceDefinition,
    enrollment: Enrollment,
    owner_id: str | None,
    now: datetime,
) -> Advance:
    """Give the enrollment to ``owner_id``: the current step stays with its owner,
    every later step goes to the new one.

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.
        owner_id: The new owner.
        now: The current time.

    Returns:
        The enrollment with the new owner.

    Raises:
        InvalidTransition: The enrollment has ended.
    """
    if enrollment.ended:
        raise InvalidTransition(
            f"{enrollment} has {enrollment.status.value}; its owner cannot change",
            state=enrollment.status.value,
            event="change_owner",
        )
    run = begin(definition, enrollment, now, DEFAULT_CONFIG, None)
    run.e.owner_id = owner_id
    run.event(EnrollmentOwnerChanged, owner_id=owner_id)
    return finish(run, enrollment)


def up_next(definition: SequenceDefinition, enrollment: Enrollment) -> UpNext:
    """The current step (actionable) and the steps after it (read only).

    Waits are looked through: the upcoming step is the first one after them, due
    about their span after the current step's due time. After a condition both
    branches are shown, labelled ``yes`` and ``no``.

    Args:
        definition: The enrollment's sequence version.
        enrollment: The enrollment.

    Returns:
        `UpNext`; empty once the enrollment has ended.
    """
    if enrollment.current_step is None:
        return UpNext(current=None)
    steps = steps_of(definition)
    step = steps[enrollment.current_step]
    due = enrollment.due_at
    current = Preview(
        step_id=step.id,
        kind=step_kind(step),
        subject=subject_of(step),
        owner_id=enrollment.step_owner_id,
        due_at=due,
    )
    upcoming: list[Preview] = []
    for label, target in successors(step):
        at = due
        seen: set[str] = set()
        nxt: Step | None = steps[target]
        while isinstance(nxt, WaitStep) and nxt.id not in seen:
            seen.add(nxt.id)
            at = at + nxt.span.delta if at is not None else None
            nxt = steps[nxt.next] if nxt.next is not None else None
        if nxt is None:
            continue
        upcoming.append(
            Preview(
                step_id=nxt.id,
                kind=step_kind(nxt),
                subject=subject_of(nxt),
                owner_id=enrollment.owner_id,
                due_at=at,
                branch=label if isinstance(step, ConditionStep) else None,
            )
        )
    return UpNext(current=current, upcoming=tuple(upcoming))
