"""Enrollment state: one record on one sequence version, and what the runtime returns.

The values here are what `salesflow.sequences.runtime` works on and hands back to
the engine: the `Enrollment` entity (small and plain, referencing its definition by
``(sequence_id, sequence_version)``), its `EnrollmentLifecycle` (declared once as a
python-statemachine class, used on the hot path through a transition table derived
from it), the typed `ExitReason`, the history, the frozen *actions* the engine
performs (create an activity, send an email, schedule a due item …), the frozen
*events* it publishes, the `Advance` result of every runtime function, and the
`RuntimeConfig` and `RecordFacts` the functions take.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeAlias

import attrs
from statemachine import State, StateMachine

from salesflow.activity import LinkedInAction
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.events import Event
from salesflow.lifecycle import transitions
from salesflow.sequences.definition import EmailEvent, StepKind
from salesflow.values import CustomValue, RecordRef
from salesflow.worktime import Calendars, OrganizationCalendar

__all__ = [
    "ANSWERED",
    "Action",
    "Advance",
    "AdvanceTo",
    "CancelActivity",
    "CompleteActivity",
    "CreateActivity",
    "Enrollment",
    "EnrollmentCompleted",
    "EnrollmentExited",
    "EnrollmentLifecycle",
    "EnrollmentOwnerChanged",
    "EnrollmentPaused",
    "EnrollmentResumed",
    "EnrollmentStarted",
    "EnrollmentStatus",
    "ExitReason",
    "HistoryEntry",
    "Preview",
    "ReassignActivity",
    "RecordFacts",
    "RescheduleActivity",
    "RuntimeConfig",
    "Schedule",
    "SendEmail",
    "SendEmailRequested",
    "SendSms",
    "SendSmsRequested",
    "SequenceAdvanceFailed",
    "SequenceEvent",
    "SequenceSendFailed",
    "SetField",
    "SetStatus",
    "StaticFacts",
    "StepAssigned",
    "StepCompleted",
    "StepSkipped",
    "StepSnoozed",
    "StepStarted",
    "Unschedule",
    "UpNext",
    "move",
]

ANSWERED: frozenset[str] = frozenset({"answered"})
"""The call outcomes that count as "answered" unless configured otherwise."""


# --- the lifecycle -------------------------------------------------------------------


class EnrollmentStatus(StrEnum):
    """Where an enrollment is in its lifecycle."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    EXITED = "exited"


class EnrollmentLifecycle(StateMachine):
    """An enrollment: Active ⇄ Paused, then Completed (its path ran out) or Exited
    (with an `ExitReason`). The single source of truth of the moves; the runtime
    uses the table `transitions` derives from it."""

    active = State("Active", initial=True, value="active")
    paused = State("Paused", value="paused")
    completed = State("Completed", final=True, value="completed")
    exited = State("Exited", final=True, value="exited")

    pause = active.to(paused)
    resume = paused.to(active)
    complete = active.to(completed)
    exit = active.to(exited) | paused.to(exited)


_TABLE: dict[tuple[str, str], str] = transitions(EnrollmentLifecycle)


def move(status: str, event: str, *, what: str) -> EnrollmentStatus:
    """The status after ``event`` in ``status``, from the derived transition table.

    Args:
        status: The enrollment's current status.
        event: ``pause``, ``resume``, ``complete`` or ``exit``.
        what: How to name the enrollment in an error.

    Returns:
        The new status.

    Raises:
        InvalidTransition: ``event`` is not allowed in ``status``.
    """
    target = _TABLE.get((status, event))
    if target is None:
        allowed = sorted(e for (s, e) in _TABLE if s == status)
        hint = f"allowed now: {', '.join(allowed)}" if allowed else "it has ended"
        raise InvalidTransition(
            f"{what} cannot {event} while {status} ({hint})", state=status, event=event
        )
    return EnrollmentStatus(target)


class ExitReason(StrEnum):
    """Why an enrollment ended before its path ran out."""

    DISCONNECTED = "disconnected"
    RECORD_QUALIFIED = "record_qualified"
    RECORD_DISQUALIFIED = "record_disqualified"
    RECORD_CLOSED = "record_closed"
    CUSTOMER_REPLIED = "customer_replied"
    ADVANCED_TO_SEQUENCE = "advanced_to_sequence"
    SEQUENCE_DEACTIVATED = "sequence_deactivated"
    ERROR = "error"


# --- the entity ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class HistoryEntry:
    """One step the enrollment finished.

    Attributes:
        step_id: The step.
        kind: Its kind.
        outcome: ``completed``, ``skipped``, ``sent``, ``failed`` (an automated
            message the recipient cannot receive, see `SequenceSendFailed`),
            ``waited``, ``yes``, ``no``, ``set``, ``advanced``, ``ended`` or a call's
            outcome (``answered`` …).
        at: When it finished.
        owner_id: Who owned the step.
    """

    step_id: str
    kind: StepKind
    outcome: str
    at: datetime
    owner_id: str | None


@attrs.define(kw_only=True)
class Enrollment:
    """One record on one version of a sequence.

    Runtime functions never change an enrollment in place: they return a new one
    with ``version`` one higher.

    Attributes:
        id: The enrollment's id.
        sequence_id: The definition it runs.
        sequence_version: The definition's version it stays on.
        record: The enrolled record.
        owner_id: Who gets the steps that start from now on.
        status: An `EnrollmentStatus` value.
        current_step: The step it is on; ``None`` once it has ended.
        step_owner_id: Who owns the current step (stays when the owner changes).
        due_at: When the current step becomes actionable (manual steps, moved by a
            snooze), the wait ends or the condition's time limit expires; ``None``
            while paused or once ended.
        step_started_at: When the current step started.
        paused_remaining: While paused, how long the current step still had to go.
        activity_id: The timeline activity of the current manual step; the engine
            sets it when it creates the activity (the runtime never reads it).
        email_events: What the customer did with each email step sent.
        call_outcomes: The outcome of each completed call step.
        variants: The variant (``a`` or ``b``) each A/B test step sent.
        history: Every finished step, in order.
        outcome: The end step's outcome once completed.
        exit_reason: Why it exited, once exited.
        connected_at: When the record was connected (None for enrollments stored
            before salesflow kept it); the sequence reports count from it.
        version: For optimistic concurrency; one higher after every change.
    """

    id: str
    sequence_id: str
    sequence_version: int
    record: RecordRef
    owner_id: str | None
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE
    current_step: str | None = None
    step_owner_id: str | None = None
    due_at: datetime | None = None
    step_started_at: datetime | None = None
    paused_remaining: timedelta | None = None
    activity_id: str | None = None
    email_events: Mapping[str, frozenset[EmailEvent]] = attrs.field(factory=dict)
    call_outcomes: Mapping[str, str] = attrs.field(factory=dict)
    variants: Mapping[str, str] = attrs.field(factory=dict)
    history: tuple[HistoryEntry, ...] = ()
    outcome: str | None = None
    exit_reason: ExitReason | None = None
    connected_at: datetime | None = None
    version: int = 1

    @property
    def ended(self) -> bool:
        """True once completed or exited."""
        return self.status in (EnrollmentStatus.COMPLETED, EnrollmentStatus.EXITED)

    def __str__(self) -> str:
        return f"enrollment {self.id!r} of {self.record} on {self.sequence_id!r}"


# --- actions the engine performs ---------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateActivity:
    """Put a manual step's activity on the record's timeline, open, due at ``due_at``."""

    step_id: str
    kind: StepKind
    subject: str
    owner_id: str | None
    due_at: datetime
    description: str | None = None
    linkedin_action: LinkedInAction | None = None


@attrs.frozen(kw_only=True)
class CompleteActivity:
    """Mark the activity of ``step_id`` completed with ``outcome`` (a call's result)."""

    step_id: str
    outcome: str | None = None


@attrs.frozen(kw_only=True)
class CancelActivity:
    """Cancel the open activity of ``step_id`` (skipped, or the enrollment ended)."""

    step_id: str


@attrs.frozen(kw_only=True)
class RescheduleActivity:
    """Move the open activity of ``step_id`` to ``due_at`` (a snooze)."""

    step_id: str
    due_at: datetime


@attrs.frozen(kw_only=True)
class ReassignActivity:
    """Give the open activity of ``step_id`` to ``owner_id`` (the step was assigned)."""

    step_id: str
    owner_id: str | None


@attrs.frozen(kw_only=True)
class SendEmail:
    """Send the automated email ``template`` (an A/B test's chosen ``variant``) and put
    it on the timeline as a completed email activity."""

    step_id: str
    template: str | None
    subject: str
    owner_id: str | None
    variant: str | None = None


@attrs.frozen(kw_only=True)
class SendSms:
    """Send the automated SMS ``template`` and put it on the timeline, completed."""

    step_id: str
    template: str | None
    subject: str
    owner_id: str | None


@attrs.frozen(kw_only=True)
class SetField:
    """Set the record's ``field`` to ``value``."""

    step_id: str
    field: str
    value: CustomValue


@attrs.frozen(kw_only=True)
class SetStatus:
    """Change the record's status (e.g. disqualify it with ``reason``)."""

    step_id: str
    status: str
    reason: str | None


@attrs.frozen(kw_only=True)
class AdvanceTo:
    """Connect the record to the sequence ``sequence_id``."""

    step_id: str
    sequence_id: str


@attrs.frozen(kw_only=True)
class Schedule:
    """Store a due item for this enrollment at ``due_at`` (replacing any earlier one);
    when it is due the engine calls `salesflow.sequences.runtime.on_due`."""

    due_at: datetime


@attrs.frozen(kw_only=True)
class Unschedule:
    """Delete this enrollment's due item; nothing is due for it any more."""


Action: TypeAlias = (
    CreateActivity
    | CompleteActivity
    | CancelActivity
    | RescheduleActivity
    | ReassignActivity
    | SendEmail
    | SendSms
    | SetField
    | SetStatus
    | AdvanceTo
    | Schedule
    | Unschedule
)


# --- events --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SequenceEvent(Event):
    """Base of the events of an enrollment."""

    enrollment_id: str


@attrs.frozen(kw_only=True)
class EnrollmentStarted(SequenceEvent):
    """A record was connected to a sequence."""

    sequence_id: str
    sequence_version: int
    record: str


@attrs.frozen(kw_only=True)
class StepStarted(SequenceEvent):
    """The enrollment entered ``step_id``."""

    step_id: str
    kind: StepKind


@attrs.frozen(kw_only=True)
class StepCompleted(SequenceEvent):
    """``step_id`` finished with ``outcome`` (see `HistoryEntry.outcome`)."""

    step_id: str
    outcome: str


@attrs.frozen(kw_only=True)
class StepSkipped(SequenceEvent):
    """The seller skipped the manual step ``step_id``."""

    step_id: str


@attrs.frozen(kw_only=True)
class StepSnoozed(SequenceEvent):
    """The seller snoozed ``step_id`` until ``until``."""

    step_id: str
    until: datetime


@attrs.frozen(kw_only=True)
class StepAssigned(SequenceEvent):
    """The current manual step ``step_id`` (and its activity) was given to ``owner_id``;
    later steps still go to the enrollment's owner."""

    step_id: str
    owner_id: str | None


@attrs.frozen(kw_only=True)
class EnrollmentPaused(SequenceEvent):
    """The enrollment was paused."""


@attrs.frozen(kw_only=True)
class EnrollmentResumed(SequenceEvent):
    """The enrollment was resumed."""


@attrs.frozen(kw_only=True)
class EnrollmentOwnerChanged(SequenceEvent):
    """Later steps go to ``owner_id``; the current one stays with its owner."""

    owner_id: str | None


@attrs.frozen(kw_only=True)
class EnrollmentCompleted(SequenceEvent):
    """The path ran out at an end step with ``outcome``."""

    outcome: str | None


@attrs.frozen(kw_only=True)
class EnrollmentExited(SequenceEvent):
    """The enrollment ended early for ``reason``."""

    reason: ExitReason


@attrs.frozen(kw_only=True)
class SendEmailRequested(SequenceEvent):
    """The engine asks the host to send an automated email (published after commit).

    ``activity_id`` is the completed email activity on the record's timeline; it is
    also the idempotency key: the same email always carries the same id, so a host
    that retries can send it once.
    """

    step_id: str
    record: str
    template: str | None
    subject: str
    owner_id: str | None
    variant: str | None
    activity_id: str


@attrs.frozen(kw_only=True)
class SequenceAdvanceFailed(SequenceEvent):
    """An ``advance_to_sequence`` step could not connect the record to ``sequence_id``
    (``error`` says why); the enrollment ended with exit reason ``error``."""

    sequence_id: str
    error: str


@attrs.frozen(kw_only=True)
class SequenceSendFailed(SequenceEvent):
    """An automated email or SMS was not sent because its recipient cannot receive it;
    the enrollment ended with exit reason ``error``.

    Attributes:
        step_id: The ``auto_email``, ``ab_test`` or ``auto_sms`` step.
        record: The enrolled record (``kind:id``).
        channel: ``email`` or ``sms``.
        reason: Why, as a code: ``do_not_email``, ``do_not_bulk_email`` or
            ``no_email_address`` (email), ``do_not_phone`` or ``no_mobile_phone``
            (SMS), ``no_recipient`` (an opportunity or account with no contact to
            write to).
        error: The same in words, with what to change.
    """

    step_id: str
    record: str
    channel: str
    reason: str
    error: str


@attrs.frozen(kw_only=True)
class SendSmsRequested(SequenceEvent):
    """The engine asks the host to send an automated SMS (see `SendEmailRequested`)."""

    step_id: str
    record: str
    template: str | None
    subject: str
    owner_id: str | None
    activity_id: str


# --- results and inputs --------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Advance:
    """What a runtime function returns.

    Attributes:
        enrollment: The new state (the input is never changed).
        actions: What the engine must perform, in order.
        events: What happened, in order, for the engine to publish.
    """

    enrollment: Enrollment
    actions: tuple[Action, ...] = ()
    events: tuple[SequenceEvent, ...] = ()


@attrs.frozen(kw_only=True)
class Preview:
    """One step of "up next".

    Attributes:
        step_id: The step.
        kind: Its kind.
        subject: Its subject (activity steps) or a short description.
        owner_id: Who does it.
        due_at: When it is (or is expected to be) due; ``None`` when unknown.
        branch: ``"yes"``/``"no"`` for the branches after a condition, else ``None``.
    """

    step_id: str
    kind: StepKind
    subject: str
    owner_id: str | None
    due_at: datetime | None
    branch: str | None = None


@attrs.frozen(kw_only=True)
class UpNext:
    """The current step (actionable) and what comes after it (read only)."""

    current: Preview | None
    upcoming: tuple[Preview, ...] = ()


def _answered(value: Any) -> frozenset[str]:
    items = frozenset(value) if not isinstance(value, str) else frozenset({value})
    if not items or not all(isinstance(i, str) and i for i in items):
        raise ValidationError(
            f"RuntimeConfig.answered={value!r} must be a non-empty set of call outcomes",
            field="RuntimeConfig.answered",
            value=value,
        )
    return items


def _calendars(value: Any) -> Calendars:
    if isinstance(value, OrganizationCalendar):
        return Calendars(organization=value)
    if not isinstance(value, Calendars):
        raise ValidationError(
            f"RuntimeConfig.calendars={value!r} must be Calendars or an OrganizationCalendar",
            field="RuntimeConfig.calendars",
            value=value,
        )
    return value


def _max_steps(_: Any, __: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"RuntimeConfig.max_steps={value!r} must be a whole number >= 1",
            field="RuntimeConfig.max_steps",
            value=value,
        )


@attrs.frozen(kw_only=True)
class RuntimeConfig:
    """How the runtime schedules and judges steps; one per engine.

    Attributes:
        calendars: The organization's and the sellers' calendars; a wait is
            scheduled on the enrollment owner's calendar.
        count_working_days: Count the days of waits and time limits in full working
            days (the worked example's "Tuesday"); by default calendar days.
        answered: The call outcomes that count as "answered" for a call condition
            that names no outcomes.
        max_steps: How many steps one call may run before it gives up: a guard
            against a graph that loops without a wait.
    """

    calendars: Calendars = attrs.field(factory=Calendars, converter=_calendars)
    count_working_days: bool = False
    answered: frozenset[str] = attrs.field(default=ANSWERED, converter=_answered)
    max_steps: int = attrs.field(default=1000, validator=_max_steps)


class RecordFacts(Protocol):
    """What the engine knows about the enrolled record, for field and stage conditions."""

    def field_value(self, name: str) -> Any:
        """The value of the record's field ``name`` (``None`` when unset)."""

    def stage(self) -> str | None:
        """The stage of the record's business process, if it has one."""

    def ab_winner(self, step_id: str) -> str | None:
        """The variant (``a``/``b``) that won the A/B test ``step_id`` of the
        enrollment's sequence version, or None while it is undecided (each
        enrollment then gets its share of the split)."""

    def unreachable(self, channel: str) -> str | None:
        """Why the record cannot be sent an automated message on ``channel``
        (``email`` or ``sms``) now, as a `SequenceSendFailed.reason` code, or None
        when it can. Facts written before this method existed may leave it out:
        the runtime then sends."""


@attrs.frozen(kw_only=True)
class StaticFacts:
    """`RecordFacts` from a plain mapping of field values and a stage (tests, simulations).

    ``winners`` maps A/B test step ids to their decided variant;
    ``unreachable_channels`` maps a channel (``email``, ``sms``) to the reason the
    record cannot be sent messages on it (every channel is reachable by default).
    """

    fields: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    current_stage: str | None = None
    winners: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    unreachable_channels: Mapping[str, str] = attrs.field(factory=dict, hash=False)

    def unreachable(self, channel: str) -> str | None:
        """The reason `unreachable_channels` gives for ``channel``, or None."""
        return self.unreachable_channels.get(channel)

    def ab_winner(self, step_id: str) -> str | None:
        """The decided variant of ``step_id`` in `winners`, or None."""
        return self.winners.get(step_id)

    def field_value(self, name: str) -> Any:
        """The value of ``name`` in `fields`, or ``None``."""
        return self.fields.get(name)

    def stage(self) -> str | None:
        """`current_stage`."""
        return self.current_stage
