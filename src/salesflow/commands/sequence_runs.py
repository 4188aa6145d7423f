"""How the engine runs sequences: the definitions cache, connecting, the due item
of an enrollment, the hooks the record commands call, and performing an `Advance`.

`SequenceCommands` (the public commands) stands on this. Each move loads the
enrollment and its definition version, calls the pure runtime
(`salesflow.sequences.runtime`) with the unit's ``now`` and performs the `Advance`
it returns in the same unit of work (`SequenceRuns._apply`): activities on the
record's timeline, automated emails and SMS (published as `SendEmailRequested` /
`SendSmsRequested` for the host to send), field and status changes of the record,
connecting it to the next sequence, and the enrollment's one due item (kind
``sequence.step``, key ``sequence:<enrollment id>``) that `run_due` performs when a
wait ends or a condition's time limit expires.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from salesflow import activity as act
from salesflow import events as ev
from salesflow.commands.core import RECORD_CLASSES
from salesflow.commands.due import DueCommands
from salesflow.commands.leads import LeadCommands
from salesflow.commands.records import RECORD_SYSTEM, RecordCommands
from salesflow.commands.work import UPDATED, Work
from salesflow.definitions import ACTIVE, StoredDefinition
from salesflow.due import DueItem
from salesflow.errors import InvalidTransition, NotFound, ValidationError
from salesflow.lead import SYSTEM_FIELDS as LEAD_SYSTEM
from salesflow.lead import Lead
from salesflow.lead import edit as edit_lead
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.qualification import QualifyOptions
from salesflow.sequences import runtime as rt
from salesflow.sequences.definition import SequenceDefinition, StepKind
from salesflow.sequences.enrollment import Advance as _Advance
from salesflow.sequences.enrollment import (
    AdvanceTo,
    CancelActivity,
    CompleteActivity,
    CreateActivity,
    Enrollment,
    ExitReason,
    ReassignActivity,
    RescheduleActivity,
    RuntimeConfig,
    Schedule,
    SendEmail,
    SendEmailRequested,
    SendSms,
    SendSmsRequested,
    SequenceAdvanceFailed,
    SetField,
    SetStatus,
    Unschedule,
)
from salesflow.sequences.io import from_dict
from salesflow.stores.base import record_value
from salesflow.values import (
    Record,
    RecordKind,
    RecordRef,
    check_fields,
    custom_fields_fast,
    evolve_fields,
    shallow_copy,
)

__all__ = [
    "SEQUENCE",
    "STEP_DUE",
    "EnrollmentIdFactory",
    "SequenceRuns",
    "StoredFacts",
    "no_sequence",
    "step_due_key",
]

SEQUENCE = "sequence"
"""The definition kind of sequences in the store."""

STEP_DUE = "sequence.step"
"""The due item kind that moves an enrollment when its wait or time limit ends."""

EnrollmentIdFactory = Callable[[], str]
"""Makes the id of a new enrollment."""

_ACTIVITY_KIND: Mapping[StepKind, act.ActivityKind] = {
    StepKind.EMAIL: act.ActivityKind.EMAIL,
    StepKind.AUTO_EMAIL: act.ActivityKind.EMAIL,
    StepKind.AB_TEST: act.ActivityKind.EMAIL,
    StepKind.CALL: act.ActivityKind.PHONE_CALL,
    StepKind.TASK: act.ActivityKind.TASK,
    StepKind.LINKEDIN: act.ActivityKind.LINKEDIN,
    StepKind.SMS: act.ActivityKind.SMS,
    StepKind.AUTO_SMS: act.ActivityKind.SMS,
}


StepActivityKey = tuple[StepKind, str, str | None, act.LinkedInAction | None, act.ActivityState]
"""A step's activity but for its ids, times, record and owner: kind, subject,
description, LinkedIn action and state (see `SequenceRuns._step_activities`)."""

_STEP_ACTIVITIES_MAX = 1024
"""How many step activity templates an engine keeps before it starts over."""


# tuples, not ``X | Y`` unions, for the tests `_apply` makes on every action: a union
# is built anew each time the test runs
_CLOSE_ACTIONS = (CompleteActivity, CancelActivity)
_SEND_ACTIONS = (SendEmail, SendSms)


def step_due_key(enrollment_id: str) -> str:
    """The uniqueness key of an enrollment's one due item."""
    return f"sequence:{enrollment_id}"


class StoredFacts:
    """`RecordFacts` of a stored record: its fields and stage, read from the unit of
    work only when a field or stage condition asks, whether it can be sent automated
    emails and SMS, and the decided A/B tests of its sequence version (``winner``)."""

    __slots__ = ("_record", "_ref", "_winner", "_work")

    def __init__(
        self,
        work: Work,
        ref: RecordRef,
        winner: Callable[[str], str | None] | None = None,
        record: Record | None = None,
    ) -> None:
        self._work = work
        self._ref = ref
        self._winner = winner
        # the record as this unit just read it, when the caller has it at hand
        self._record: Record | None = record

    def ab_winner(self, step_id: str) -> str | None:
        """The decided variant of the A/B test ``step_id``, or None."""
        return self._winner(step_id) if self._winner is not None else None

    def _load(self) -> Record:
        if self._record is None:
            self._record = self._work.uow.get(RECORD_CLASSES[self._ref.kind], self._ref.id)
        return self._record

    def field_value(self, name: str) -> Any:
        """The record's field ``name`` (a custom field when it has no such attribute)."""
        record = self._load()
        if name in attrs.fields_dict(type(record)):
            return record_value(record, name)
        return record.custom.get(name)

    def stage(self) -> str | None:
        """The opportunity's sales stage; records without stages have none."""
        stage = getattr(self._load(), "stage", None)
        return stage if isinstance(stage, str) else None

    def unreachable(self, channel: str) -> str | None:
        """Why the record's recipient cannot be sent an automated ``channel`` message
        now (a `SequenceSendFailed` reason), or None.

        The recipient is the lead or contact itself; an opportunity's contact, else
        its account's primary contact; an account's primary contact. Emails need an
        address and neither ``do_not_email`` nor ``do_not_bulk_email`` (an automated
        sequence email goes out to every connected record unattended, so it counts
        as bulk); SMS need a mobile phone and no ``do_not_phone``.
        """
        recipient = self._recipient()
        if recipient is None:
            return "no_recipient"
        if channel == "sms":
            if recipient.do_not_phone:
                return "do_not_phone"
            return None if recipient.mobile_phone else "no_mobile_phone"
        if recipient.do_not_email:
            return "do_not_email"
        if recipient.do_not_bulk_email:
            return "do_not_bulk_email"
        return None if recipient.email else "no_email_address"

    def _recipient(self) -> Lead | Contact | None:
        record = self._load()
        if isinstance(record, Lead | Contact):
            return record
        contact_id: str | None = None
        if isinstance(record, Opportunity):
            contact_id = record.contact_id
            if contact_id is None and record.account_id is not None:
                account = self._work.uow.find(Account, record.account_id)
                contact_id = account.primary_contact_id if account is not None else None
        elif isinstance(record, Account):
            contact_id = record.primary_contact_id
        if contact_id is None:
            return None
        return self._work.uow.find(Contact, contact_id)


class SequenceRuns(LeadCommands, RecordCommands, DueCommands):
    """The machinery under the sequence commands (see the module docstring)."""

    sequence_config: RuntimeConfig
    _enrollment_ids: EnrollmentIdFactory
    _definition_cache: dict[tuple[str, int], SequenceDefinition]
    _step_activities: dict[StepActivityKey, act.Activity]
    """The first activity built for each `StepActivityKey`, which later activities
    of that step are copied from (`_sequence_activity`)."""

    def _stored_sequence(
        self, work: Work, sequence_id: str, version: int | None
    ) -> StoredDefinition:
        stored = work.uow.find_definition(SEQUENCE, sequence_id, version)
        if stored is None:
            raise no_sequence(sequence_id, version)
        return stored

    def _decode(self, stored: StoredDefinition) -> SequenceDefinition:
        key = (stored.id, stored.version)
        cached = self._definition_cache.get(key)
        if cached is None:
            cached = self._definition_cache[key] = from_dict(stored.document)
        return cached

    def _definition(self, work: Work, sequence_id: str, version: int) -> SequenceDefinition:
        # Versions never change once stored, so the decoded definition is cached.
        cached = self._definition_cache.get((sequence_id, version))
        if cached is not None:
            return cached
        return self._decode(self._stored_sequence(work, sequence_id, version))

    def _facts(self, work: Work, e: Enrollment) -> StoredFacts:
        return self._facts_for(work, e.record, e.sequence_id, e.sequence_version)

    def _facts_for(
        self,
        work: Work,
        ref: RecordRef,
        sequence_id: str,
        version: int,
        record: Record | None = None,
    ) -> StoredFacts:
        return StoredFacts(
            work,
            ref,
            lambda step_id: self._ab_winner(work, sequence_id, version, step_id),
            record,
        )

    def _ab_winner(self, work: Work, sequence_id: str, version: int, step_id: str) -> str | None:
        """The decided variant of an A/B test step (see `ABTestCommands`); none here."""
        return None

    def _ab_sent(self, work: Work, e: Enrollment, step_id: str) -> None:
        """An A/B test step sent its email (see `ABTestCommands`); nothing here."""

    def _connect_in(
        self, work: Work, ref: RecordRef, sequence_id: str, owner_id: str | None
    ) -> Enrollment:
        stored = self._stored_sequence(work, sequence_id, None)
        if stored.state != ACTIVE:
            raise InvalidTransition(
                f"sequence {sequence_id!r} is {stored.state}; activate it before connecting "
                f"records (activate_sequence)",
                state=stored.state,
                event="connect",
            )
        definition = self._definition(work, sequence_id, stored.version)
        if ref.kind is not definition.record_type or ref.kind not in RECORD_CLASSES:
            raise ValidationError(
                f"sequence {sequence_id!r} runs on {definition.record_type.value} records; "
                f"{ref} is a {ref.kind.value}: connect it to a {ref.kind.value} sequence",
                field="record",
                value=str(ref),
            )
        target = work.get(RECORD_CLASSES[ref.kind], ref.id)
        _require_open(target)
        for running in work.uow.enrollments(record=ref, running=True):
            if running.sequence_id == sequence_id:
                raise InvalidTransition(
                    f"{ref} is already on sequence {sequence_id!r} (enrollment "
                    f"{running.id!r}, {running.status.value}); disconnect it first to start over",
                    state="connected",
                    event="connect",
                )
        owner = owner_id if owner_id is not None else getattr(target, "owner_id", None)
        advance = rt.start(
            definition,
            enrollment_id=self._enrollment_ids(),
            record=ref,
            owner_id=owner,
            now=work.now,
            config=self.sequence_config,
            # the runtime reads the record before anything writes it: the one just read
            facts=self._facts_for(work, ref, definition.id, definition.version, target),
        )
        return self._apply(work, definition, None, advance)

    # --- the due item -----------------------------------------------------------------

    def _step_due(self, work: Work, item: DueItem) -> None:
        """Handler of ``sequence.step`` items: the enrollment's wait or limit ended."""
        enrollment_id = item.payload.get("enrollment_id")
        if not isinstance(enrollment_id, str):
            raise ValidationError(
                f"due item {item.id!r} has no enrollment_id in its payload",
                field="payload",
                value=item.payload,
            )
        enrollment = work.uow.find_enrollment(enrollment_id)
        if enrollment is None:
            return  # the enrollment is gone: nothing to move
        definition = self._definition(work, enrollment.sequence_id, enrollment.sequence_version)
        advance = rt.on_due(
            definition,
            enrollment,
            work.now,
            config=self.sequence_config,
            facts=self._facts(work, enrollment),
        )
        if advance.enrollment is not enrollment:
            self._apply(work, definition, enrollment, advance)

    # --- hooks of the record commands -------------------------------------------------

    def _exit(self, work: Work, enrollment: Enrollment, reason: ExitReason) -> None:
        definition = self._definition(work, enrollment.sequence_id, enrollment.sequence_version)
        self._apply(
            work,
            definition,
            enrollment,
            rt.exit_enrollment(definition, enrollment, reason, work.now),
        )

    def _record_closed(self, work: Work, record: RecordRef, reason: str) -> None:
        for enrollment in work.uow.enrollments(record=record, running=True):
            # the enrollment whose own step closed the record moves on by itself
            if enrollment.id not in work.in_hand:
                self._exit(work, enrollment, ExitReason(reason))

    def _owner_changed(self, work: Work, record: RecordRef, owner_id: str | None) -> None:
        if record.kind is RecordKind.ACTIVITY:
            self._step_activity_delegated(work, record.id, owner_id)
            return
        for enrollment in work.uow.enrollments(record=record, running=True):
            if enrollment.id in work.in_hand or enrollment.owner_id == owner_id:
                continue
            definition = self._definition(work, enrollment.sequence_id, enrollment.sequence_version)
            advance = rt.change_owner(definition, enrollment, owner_id, work.now)
            self._apply(work, definition, enrollment, advance)

    def _step_activity_delegated(self, work: Work, activity_id: str, owner_id: str | None) -> None:
        """A seller gave the open activity of a running enrollment's current step to
        ``owner_id`` (`update_activity`): the step is assigned to them, as
        `assign_step` would, so up next shows who really does it."""
        activity = work.uow.find(act.Activity, activity_id)
        enrollment_id = activity.custom.get("enrollment_id") if activity is not None else None
        if not isinstance(enrollment_id, str) or enrollment_id in work.in_hand:
            return
        enrollment = work.uow.find_enrollment(enrollment_id)
        if (
            enrollment is None
            or enrollment.activity_id != activity_id
            or enrollment.current_step is None
            or enrollment.ended
        ):
            return
        definition = self._definition(work, enrollment.sequence_id, enrollment.sequence_version)
        advance = rt.assign_step(
            definition, enrollment, enrollment.current_step, owner_id, work.now
        )
        if advance.enrollment is not enrollment:
            self._apply(work, definition, enrollment, advance)

    def _activity_closed(self, work: Work, activity: act.Activity, event: str) -> None:
        enrollment_id = activity.custom.get("enrollment_id")
        if not isinstance(enrollment_id, str) or enrollment_id in work.in_hand:
            return
        enrollment = work.uow.find_enrollment(enrollment_id)
        if (
            enrollment is None
            or enrollment.activity_id != activity.id
            or enrollment.current_step is None
            or enrollment.ended
            or enrollment.status.value != "active"
        ):
            return
        definition = self._definition(work, enrollment.sequence_id, enrollment.sequence_version)
        facts = self._facts(work, enrollment)
        if event == "complete":
            advance = rt.complete_step(
                definition,
                enrollment,
                enrollment.current_step,
                work.now,
                outcome=activity.outcome,
                config=self.sequence_config,
                facts=facts,
            )
        else:
            advance = rt.skip_step(
                definition,
                enrollment,
                enrollment.current_step,
                work.now,
                config=self.sequence_config,
                facts=facts,
            )
        self._apply(work, definition, enrollment, advance)

    # --- performing an advance --------------------------------------------------------

    def _apply(
        self,
        work: Work,
        definition: SequenceDefinition,
        before: Enrollment | None,
        advance: _Advance,
    ) -> Enrollment:
        """Perform ``advance``'s actions and store its enrollment, in ``work``."""
        e = advance.enrollment
        # the open activity of the current manual step, if any, as the actions leave it
        activity_id = before.activity_id if before is not None else None
        work.in_hand.add(e.id)
        try:
            work.events.extend(advance.events)
            advances: list[AdvanceTo] = []
            for action in advance.actions:
                if isinstance(action, CreateActivity):
                    activity = self._sequence_activity(
                        work,
                        e,
                        action.step_id,
                        action.kind,
                        subject=action.subject,
                        description=action.description,
                        owner_id=action.owner_id,
                        due_at=action.due_at,
                        linkedin_action=action.linkedin_action,
                    )
                    work.add(activity)
                    work.events.append(_created(work, activity))
                    activity_id = activity.id
                elif isinstance(action, _CLOSE_ACTIONS):
                    self._close_step_activity(work, before, action)
                    activity_id = None
                elif isinstance(action, RescheduleActivity):
                    self._reschedule(work, before, action.due_at)
                elif isinstance(action, ReassignActivity):
                    self._reassign(work, before, action.owner_id)
                elif isinstance(action, _SEND_ACTIONS):
                    self._send(work, e, action)
                elif isinstance(action, SetField):
                    self._set_field(work, e.record, action.field, action.value)
                elif isinstance(action, SetStatus):
                    self._set_status(work, e.record, action.status, action.reason)
                elif isinstance(action, AdvanceTo):
                    advances.append(action)
                elif isinstance(action, Schedule):
                    key = step_due_key(e.id)
                    work.cancel_due_by_key(key)
                    work.schedule_due(
                        STEP_DUE,
                        action.due_at,
                        subject=e.record,
                        payload={"enrollment_id": e.id},
                        key=key,
                    )
                else:
                    assert isinstance(action, Unschedule)
                    work.cancel_due_by_key(step_due_key(e.id))
            if e.activity_id != activity_id:
                # the advance's enrollment is the runtime's new copy, not yet stored
                # or handed out: set the field the runtime leaves to the engine
                e.activity_id = activity_id
            if before is None:
                work.uow.add_enrollment(e)
            else:
                work.uow.update_enrollment(e)
        finally:
            work.in_hand.discard(e.id)
        for advance_to in advances:
            e = self._advance(work, e, advance_to.sequence_id)
        return e

    def _advance(self, work: Work, e: Enrollment, sequence_id: str) -> Enrollment:
        """Connect the record to the next sequence; when that cannot be (the sequence
        was deactivated or removed since publishing, the record closed meanwhile) the
        enrollment's exit reason becomes ``error`` and `SequenceAdvanceFailed` says why,
        rather than failing the seller's command or stranding the due item."""
        try:
            self._connect_in(work, e.record, sequence_id, e.owner_id)
        except (InvalidTransition, NotFound, ValidationError) as exc:
            failed = attrs.evolve(e, exit_reason=ExitReason.ERROR, version=e.version + 1)
            work.uow.update_enrollment(failed)
            work.events.append(
                SequenceAdvanceFailed(
                    occurred_at=work.now,
                    enrollment_id=e.id,
                    sequence_id=sequence_id,
                    error=str(exc),
                )
            )
            return failed
        return e

    def _sequence_activity(
        self,
        work: Work,
        e: Enrollment,
        step_id: str,
        kind: StepKind,
        *,
        subject: str,
        owner_id: str | None,
        due_at: datetime,
        description: str | None = None,
        linkedin_action: act.LinkedInAction | None = None,
        state: act.ActivityState = act.ActivityState.OPEN,
        closed_at: datetime | None = None,
    ) -> act.Activity:
        """A step's activity on the record's timeline, tagged with the enrollment
        (``custom``: sequence_id, enrollment_id, sequence_step) so that closing it
        from the timeline finds the step."""
        activity_id = self._ids(RecordKind.ACTIVITY)
        # The tags are checked as the class's converter checks them (same result, same
        # errors), by the converter's fast path for texts; the class then gets them
        # as they are rather than converting them a second time.
        tags = custom_fields_fast(
            {"sequence_id": e.sequence_id, "enrollment_id": e.id, "sequence_step": step_id}
        )
        # Every enrollment passing a step makes the same activity but for its id, times,
        # record and owner: the first one is built (and checked) in full, the others
        # are copies of it with those fields changed and checked (`evolve_fields`), the
        # step's texts and kinds being the ones already found valid.
        key = (kind, subject, description, linkedin_action, state)
        template = self._step_activities.get(key)
        if template is None:
            activity = act.Activity(
                id=activity_id,
                created_at=work.now,
                modified_at=work.now,
                kind=_ACTIVITY_KIND[kind],
                regarding=e.record,
                subject=subject,
                description=description,
                owner_id=owner_id,
                due_at=due_at,
                linkedin_action=linkedin_action,
                state=state,
                closed_at=closed_at,
            )
            if len(self._step_activities) >= _STEP_ACTIVITIES_MAX:
                self._step_activities.clear()  # a bound, for hosts that vary texts per record
            self._step_activities[key] = activity
            activity = shallow_copy(activity)  # the template stays as it was built
        else:
            activity = evolve_fields(
                template,
                id=activity_id,
                created_at=work.now,
                modified_at=work.now,
                regarding=e.record,
                owner_id=owner_id,
                due_at=due_at,
                closed_at=closed_at,
            )
        object.__setattr__(activity, "custom", tags)
        return activity

    def _open_activity(self, work: Work, before: Enrollment | None) -> act.Activity | None:
        if before is None or before.activity_id is None:
            return None
        found = work.uow.find(act.Activity, before.activity_id)
        if found is None or found.state is not act.ActivityState.OPEN:
            return None  # closed by hand from the timeline: nothing left to do
        return found

    def _close_step_activity(
        self, work: Work, before: Enrollment | None, action: CompleteActivity | CancelActivity
    ) -> None:
        activity = self._open_activity(work, before)
        if activity is None:
            return
        done = isinstance(action, CompleteActivity)
        closed = evolve_fields(
            activity,
            state=act.ActivityState.COMPLETED if done else act.ActivityState.CANCELED,
            outcome=action.outcome if isinstance(action, CompleteActivity) else None,
            closed_at=work.now,
            modified_at=work.now,
        )
        work.update(closed)
        work.events.append(
            ev.ActivityCompleted(occurred_at=work.now, activity_id=activity.id)
            if done
            else ev.ActivityCanceled(occurred_at=work.now, activity_id=activity.id)
        )

    def _reschedule(self, work: Work, before: Enrollment | None, due_at: datetime) -> None:
        activity = self._open_activity(work, before)
        if activity is not None:
            work.update(evolve_fields(activity, due_at=due_at, modified_at=work.now))
            work.events.append(
                ev.ActivityUpdated(
                    occurred_at=work.now, activity_id=activity.id, fields=("due_at",)
                )
            )

    def _reassign(self, work: Work, before: Enrollment | None, owner_id: str | None) -> None:
        activity = self._open_activity(work, before)
        # delegated from the timeline (update_activity), it already has its new owner
        if activity is not None and activity.owner_id != owner_id:
            work.update(evolve_fields(activity, owner_id=owner_id, modified_at=work.now))
            work.events.append(
                ev.ActivityUpdated(
                    occurred_at=work.now, activity_id=activity.id, fields=("owner_id",)
                )
            )

    def _send(self, work: Work, e: Enrollment, action: SendEmail | SendSms) -> None:
        kind = StepKind.AUTO_EMAIL if isinstance(action, SendEmail) else StepKind.AUTO_SMS
        activity = self._sequence_activity(
            work,
            e,
            action.step_id,
            kind,
            subject=action.subject,
            owner_id=action.owner_id,
            due_at=work.now,
            state=act.ActivityState.COMPLETED,
            closed_at=work.now,
        )
        work.add(activity)
        work.events.append(_created(work, activity))
        if isinstance(action, SendEmail):
            if action.variant is not None:
                self._ab_sent(work, e, action.step_id)
            work.events.append(
                SendEmailRequested(
                    occurred_at=work.now,
                    enrollment_id=e.id,
                    step_id=action.step_id,
                    record=str(e.record),
                    template=action.template,
                    subject=action.subject,
                    owner_id=action.owner_id,
                    variant=action.variant,
                    activity_id=activity.id,
                )
            )
        else:
            work.events.append(
                SendSmsRequested(
                    occurred_at=work.now,
                    enrollment_id=e.id,
                    step_id=action.step_id,
                    record=str(e.record),
                    template=action.template,
                    subject=action.subject,
                    owner_id=action.owner_id,
                    activity_id=activity.id,
                )
            )

    def _set_field(self, work: Work, ref: RecordRef, name: str, value: Any) -> None:
        cls = RECORD_CLASSES[ref.kind]
        record = work.get(cls, ref.id)
        if isinstance(record, Lead) and name in attrs.fields_dict(Lead):
            updated, happened = edit_lead(record, {name: value}, now=work.now)
            work.update(updated)
            work.events.append(happened)
            return
        if name in attrs.fields_dict(cls):
            system = LEAD_SYSTEM if cls is Lead else RECORD_SYSTEM
            check_fields(cls, {name: value}, frozenset(system), creating=False)
            updated_record = attrs.evolve(record, modified_at=work.now, **{name: value})
        else:
            updated_record = attrs.evolve(
                record, modified_at=work.now, custom={**record.custom, name: value}
            )
        work.update(updated_record)

    def _set_status(self, work: Work, ref: RecordRef, status: str, reason: str | None) -> None:
        if ref.kind is RecordKind.LEAD:
            if status == "disqualified":
                self._disqualify_in(work, ref.id, reason or "lost")
            else:
                self._qualify_in(work, ref.id, QualifyOptions())
        elif ref.kind is RecordKind.OPPORTUNITY:
            self._close_opportunity_in(work, ref.id, "win" if status == "won" else "lose", reason)
        else:  # a contact or an account: "inactive"
            record: Contact | Account = (
                work.get(Contact, ref.id)
                if ref.kind is RecordKind.CONTACT
                else work.get(Account, ref.id)
            )
            updated = attrs.evolve(record, active=False, modified_at=work.now)
            work.update(updated)
            work.events.append(UPDATED[ref.kind](work.now, ref.id, ("active",)))
            self._record_closed(work, ref, "record_closed")


def no_sequence(sequence_id: str, version: int | None) -> NotFound:
    """The `NotFound` of a missing sequence (or version of one)."""
    if version is None:
        return NotFound("Sequence", sequence_id)
    return NotFound("Sequence", f"{sequence_id} version {version}")


def _require_open(record: Record) -> None:
    if isinstance(record, Lead) and not record.is_open:
        raise InvalidTransition(
            f"Lead {record.id!r} is {record.status.value}; only open leads can be connected to "
            f"a sequence (reactivate it first)",
            state=record.status.value,
            event="connect",
        )
    if isinstance(record, Contact | Account) and not record.active:
        raise InvalidTransition(
            f"{type(record).__name__} {record.id!r} is inactive; only active records can be "
            f"connected to a sequence (set active=True first)",
            state="inactive",
            event="connect",
        )
    if isinstance(record, Opportunity) and not record.is_open:
        raise InvalidTransition(
            f"Opportunity {record.id!r} is {record.status.value}; only open opportunities can "
            f"be connected to a sequence (reopen it first)",
            state=record.status.value,
            event="connect",
        )


def _created(work: Work, activity: act.Activity) -> ev.Event:
    return ev.ActivityCreated(
        occurred_at=work.now, activity_id=activity.id, regarding=str(activity.regarding)
    )
