"""Sequence behaviours the product reference states (REFERENCE "Sequences", "Leads",
"Working time") that the engine must keep: automated emails and SMS respect the
recipient's consent flags and address, manual steps are due in working time when
the sequence skips non-working time, and the current step can be assigned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.sequence_engines import make_engine

from salesflow.activity import Activity, ActivityKind, ActivityState
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import InvalidTransition, NotFound, ValidationError
from salesflow.events import ActivityUpdated, ListSink
from salesflow.sequences.definition import (
    ABTestStep,
    ActivityStep,
    CallWatch,
    ConditionStep,
    EndStep,
    SequenceDefinition,
    Span,
    Step,
    WaitStep,
)
from salesflow.sequences.enrollment import (
    EnrollmentStatus,
    ExitReason,
    RuntimeConfig,
    SendEmailRequested,
    SendSmsRequested,
    SequenceSendFailed,
    StaticFacts,
    StepAssigned,
)
from salesflow.sequences.runtime import assign_step, start
from salesflow.sequences.templates import TEMPLATES, load_template
from salesflow.stores.codec import decode_event, encode_event
from salesflow.testing import simulate
from salesflow.values import RecordKind, RecordRef
from salesflow.worktime import Calendars, OrganizationCalendar

MONDAY = datetime(2026, 3, 2, 9, tzinfo=UTC)
SATURDAY = datetime(2026, 3, 7, 10, tzinfo=UTC)
NEXT_MONDAY_OPENING = datetime(2026, 3, 9, 8, tzinfo=UTC)


@pytest.fixture
def engine(clock: FakeClock, sink: ListSink) -> Salesflow:
    """The conftest's clock and sink, on `make_engine`'s sequential ids."""
    return make_engine(clock, sink)


def seq(*steps: Step, record_type: str = "lead", **options: Any) -> SequenceDefinition:
    return SequenceDefinition(
        id="s",
        name="Sequence s",
        record_type=record_type,
        entry=steps[0].id,
        steps=list(steps),
        **options,
    )


def auto_email_first(record_type: str = "lead") -> SequenceDefinition:
    return seq(
        ActivityStep(id="intro", kind="auto_email", subject="Hello", template="t", next="call"),
        ActivityStep(id="call", kind="call", subject="Call", next="end"),
        EndStep(id="end", outcome="done"),
        record_type=record_type,
    )


def auto_sms_first() -> SequenceDefinition:
    return seq(
        ActivityStep(id="text", kind="auto_sms", subject="Hi", template="t", next="call"),
        ActivityStep(id="call", kind="call", subject="Call", next="end"),
        EndStep(id="end", outcome="done"),
    )


def of(sink: ListSink, cls: type[Any]) -> list[Any]:
    return [e for e in sink.events if isinstance(e, cls)]


# --- 1. consent flags and addresses ---------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"email": "a@example.com", "do_not_email": True}, "do_not_email"),
        ({"email": "a@example.com", "do_not_bulk_email": True}, "do_not_bulk_email"),
        ({}, "no_email_address"),
    ],
)
def test_an_automated_email_the_lead_cannot_receive_ends_the_enrollment_in_error(
    engine: Salesflow, sink: ListSink, fields: dict[str, Any], reason: str
) -> None:
    engine.publish_sequence(auto_email_first())
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ann", **fields)
    enrollment = engine.connect(lead, "s")

    assert enrollment.status is EnrollmentStatus.EXITED
    assert enrollment.exit_reason is ExitReason.ERROR
    assert of(sink, SendEmailRequested) == []
    (failed,) = of(sink, SequenceSendFailed)
    assert (failed.step_id, failed.channel, failed.reason) == ("intro", "email", reason)
    assert failed.enrollment_id == enrollment.id
    assert reason.replace("_", " ") in failed.error or reason in failed.error
    # nothing was sent, so nothing sent is on the timeline, and no later step started
    assert engine.timeline(lead) == []
    assert engine.due_items(lead) == []
    assert [(h.step_id, h.outcome) for h in enrollment.history] == [("intro", "failed")]


def test_an_automated_email_a_lead_may_receive_is_sent(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(auto_email_first())
    lead = engine.create_lead(
        topic="T", last_name="L", email="a@example.com", do_not_phone=True, owner_id="ann"
    )
    enrollment = engine.connect(lead, "s")
    assert enrollment.current_step == "call"
    assert [e.step_id for e in of(sink, SendEmailRequested)] == ["intro"]
    assert of(sink, SequenceSendFailed) == []


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"mobile_phone": "+370 600 00000", "do_not_phone": True}, "do_not_phone"),
        ({"business_phone": "+370 5 000 0000"}, "no_mobile_phone"),
    ],
)
def test_an_automated_sms_the_lead_cannot_receive_ends_the_enrollment_in_error(
    engine: Salesflow, sink: ListSink, fields: dict[str, Any], reason: str
) -> None:
    engine.publish_sequence(auto_sms_first())
    lead = engine.create_lead(topic="T", last_name="L", **fields)
    enrollment = engine.connect(lead, "s")
    assert enrollment.exit_reason is ExitReason.ERROR
    assert of(sink, SendSmsRequested) == []
    (failed,) = of(sink, SequenceSendFailed)
    assert (failed.channel, failed.reason) == ("sms", reason)


def test_an_automated_sms_to_a_mobile_phone_is_sent_even_when_emails_are_refused(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(auto_sms_first())
    lead = engine.create_lead(
        topic="T", last_name="L", mobile_phone="+370 600 00000", do_not_email=True
    )
    assert engine.connect(lead, "s").current_step == "call"
    assert [e.step_id for e in of(sink, SendSmsRequested)] == ["text"]


def test_consent_is_read_when_the_email_is_due_not_when_the_record_connected(
    engine: Salesflow, clock: FakeClock, sink: ListSink
) -> None:
    engine.publish_sequence(
        seq(
            WaitStep(id="wait", span=Span(days=1), next="intro"),
            ActivityStep(id="intro", kind="auto_email", subject="Hi", template="t", next="end"),
            EndStep(id="end", outcome="done"),
        )
    )
    lead = engine.create_lead(topic="T", last_name="L", email="a@example.com")
    enrollment = engine.connect(lead, "s")
    engine.update_lead(lead.id, do_not_email=True)
    simulate(engine, until=clock.now() + timedelta(days=2))
    assert engine.enrollment(enrollment.id).exit_reason is ExitReason.ERROR
    assert of(sink, SendEmailRequested) == []
    assert [e.reason for e in of(sink, SequenceSendFailed)] == ["do_not_email"]


def test_an_ab_test_email_respects_consent_too(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(
        seq(
            ABTestStep(id="mail", variant_a="a", variant_b="b", deadline=Span(days=3), next="end"),
            EndStep(id="end", outcome="done"),
        )
    )
    lead = engine.create_lead(topic="T", last_name="L", email="a@example.com", do_not_email=True)
    assert engine.connect(lead, "s").exit_reason is ExitReason.ERROR
    assert of(sink, SendEmailRequested) == []
    assert [e.step_id for e in of(sink, SequenceSendFailed)] == ["mail"]


def test_a_manual_email_step_is_the_sellers_own_act_and_is_not_blocked(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(
        seq(
            ActivityStep(id="mail", kind="email", subject="Write", next="end"),
            EndStep(id="end", outcome="done"),
        )
    )
    lead = engine.create_lead(topic="T", last_name="L", do_not_email=True)
    enrollment = engine.connect(lead, "s")
    assert enrollment.current_step == "mail"
    assert [a.kind for a in engine.timeline(lead)] == [ActivityKind.EMAIL]
    assert of(sink, SequenceSendFailed) == []


def test_an_opportunity_is_emailed_through_its_contact(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(auto_email_first("opportunity"))
    refusing = engine.create_contact(last_name="R", email="r@example.com", do_not_email=True)
    willing = engine.create_contact(last_name="W", email="w@example.com")
    blocked = engine.create_opportunity(name="Blocked", contact_id=refusing.id)
    alone = engine.create_opportunity(name="No contact")
    fine = engine.create_opportunity(name="Fine", contact_id=willing.id)

    assert engine.connect(blocked, "s").exit_reason is ExitReason.ERROR
    assert engine.connect(alone, "s").exit_reason is ExitReason.ERROR
    assert engine.connect(fine, "s").current_step == "call"
    assert [e.reason for e in of(sink, SequenceSendFailed)] == ["do_not_email", "no_recipient"]
    assert [e.record for e in of(sink, SendEmailRequested)] == [str(fine.ref)]


def test_an_opportunity_without_a_contact_is_emailed_through_its_accounts_primary_contact(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(auto_email_first("opportunity"))
    contact = engine.create_contact(last_name="P", email="p@example.com", do_not_bulk_email=True)
    account = engine.create_account(name="Acme", primary_contact_id=contact.id)
    opportunity = engine.create_opportunity(name="Deal", account_id=account.id)
    assert engine.connect(opportunity, "s").exit_reason is ExitReason.ERROR
    assert [e.reason for e in of(sink, SequenceSendFailed)] == ["do_not_bulk_email"]


def test_an_account_is_emailed_through_its_primary_contact(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(auto_email_first("account"))
    contact = engine.create_contact(last_name="P", email="p@example.com")
    with_contact = engine.create_account(name="Acme", primary_contact_id=contact.id)
    without = engine.create_account(name="Solo", email="solo@example.com")
    assert engine.connect(with_contact, "s").current_step == "call"
    assert engine.connect(without, "s").exit_reason is ExitReason.ERROR
    assert [e.reason for e in of(sink, SequenceSendFailed)] == ["no_recipient"]


def test_a_contact_is_its_own_recipient(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(auto_email_first("contact"))
    contact = engine.create_contact(last_name="C", email="c@example.com", do_not_email=True)
    assert engine.connect(contact, "s").exit_reason is ExitReason.ERROR
    assert [e.reason for e in of(sink, SequenceSendFailed)] == ["do_not_email"]


def test_the_failure_event_survives_the_outbox_codec() -> None:
    event = SequenceSendFailed(
        occurred_at=MONDAY,
        enrollment_id="enr-1",
        step_id="intro",
        record="lead:lead-1",
        channel="email",
        reason="do_not_email",
        error="lead:lead-1 asked not to be emailed",
    )
    assert decode_event(encode_event(event)) == event


def test_the_pure_runtime_asks_the_facts_whether_the_record_can_be_reached() -> None:
    ref = RecordRef(kind=RecordKind.LEAD, id="lead-1")
    refused = StaticFacts(unreachable_channels={"email": "do_not_email"})
    advance = start(
        auto_email_first(),
        enrollment_id="e1",
        record=ref,
        owner_id=None,
        now=MONDAY,
        facts=refused,
    )
    assert advance.enrollment.exit_reason is ExitReason.ERROR
    # without facts (a simulation of the graph alone) every message is sent
    free = start(auto_email_first(), enrollment_id="e2", record=ref, owner_id=None, now=MONDAY)
    assert free.enrollment.current_step == "call"


# --- 2. manual steps in working time -------------------------------------------------


def call_after(*before: Step, **options: Any) -> SequenceDefinition:
    return seq(
        *before,
        ActivityStep(id="call", kind="call", subject="Call", next="end"),
        EndStep(id="end", outcome="done"),
        **options,
    )


def test_a_manual_step_reached_in_non_working_time_is_due_at_the_next_working_time(
    clock: FakeClock, sink: ListSink
) -> None:
    engine = make_engine(clock, sink)
    engine.publish_sequence(call_after(skip_non_working_time=True))
    clock.set(SATURDAY)
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ann")
    enrollment = engine.connect(lead, "s")
    (call,) = engine.timeline(lead)
    assert call.due_at == NEXT_MONDAY_OPENING
    assert enrollment.due_at == NEXT_MONDAY_OPENING
    up_next = engine.up_next(enrollment.id)
    assert up_next.current is not None
    assert up_next.current.due_at == NEXT_MONDAY_OPENING


def test_without_the_option_a_manual_step_is_due_at_once(clock: FakeClock, sink: ListSink) -> None:
    engine = make_engine(clock, sink)
    engine.publish_sequence(call_after())
    clock.set(SATURDAY)
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ann")
    engine.connect(lead, "s")
    (call,) = engine.timeline(lead)
    assert call.due_at == SATURDAY


def test_the_step_owners_own_calendar_decides(clock: FakeClock, sink: ListSink) -> None:
    calendars = Calendars(owners={"ny": OrganizationCalendar(timezone="America/New_York")})
    engine = make_engine(clock, sink, RuntimeConfig(calendars=calendars))
    engine.publish_sequence(call_after(skip_non_working_time=True))
    clock.set(SATURDAY)
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ny")
    engine.connect(lead, "s")
    (call,) = engine.timeline(lead)
    assert call.due_at == datetime(2026, 3, 9, 12, tzinfo=UTC)  # 08:00 in New York (EDT)


def test_a_manual_step_after_a_wait_inherits_the_waits_shifted_end(
    clock: FakeClock, sink: ListSink
) -> None:
    engine = make_engine(clock, sink)
    engine.publish_sequence(
        call_after(WaitStep(id="wait", span=Span(days=5), next="call"), skip_non_working_time=True)
    )
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ann")
    enrollment = engine.connect(lead, "s")  # Monday 09:00 + 5 days = Saturday 09:00
    assert enrollment.due_at == NEXT_MONDAY_OPENING
    simulate(engine, until=NEXT_MONDAY_OPENING + timedelta(hours=1))
    (call,) = engine.timeline(lead)
    assert call.due_at == NEXT_MONDAY_OPENING


def test_a_step_completed_after_hours_puts_the_next_one_at_the_next_opening(
    clock: FakeClock, sink: ListSink
) -> None:
    engine = make_engine(clock, sink)
    engine.publish_sequence(
        seq(
            ActivityStep(id="research", kind="task", subject="Research", next="call"),
            ActivityStep(id="call", kind="call", subject="Call", next="end"),
            EndStep(id="end", outcome="done"),
            skip_non_working_time=True,
        )
    )
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ann")
    enrollment = engine.connect(lead, "s")
    clock.set(datetime(2026, 3, 6, 18, tzinfo=UTC))  # Friday after work
    enrollment = engine.complete_step(enrollment.id, "research")
    assert enrollment.due_at == NEXT_MONDAY_OPENING
    call = next(a for a in engine.timeline(lead) if a.state is ActivityState.OPEN)
    assert call.due_at == NEXT_MONDAY_OPENING


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_with_the_option_put_every_manual_activity_in_working_time(
    clock: FakeClock, sink: ListSink, name: str
) -> None:
    engine = make_engine(clock, sink)
    template = load_template(name)
    engine.publish_sequence(
        SequenceDefinition(
            id=template.id,
            name=template.name,
            record_type=template.record_type,
            entry=template.entry,
            steps=template.steps,
            skip_non_working_time=True,
        )
    )
    clock.set(SATURDAY)
    kind = template.record_type
    if kind is RecordKind.LEAD:
        record: Any = engine.create_lead(topic="T", last_name="L", email="l@example.com")
    else:
        contact = engine.create_contact(last_name="C", email="c@example.com")
        if kind is RecordKind.CONTACT:
            record = contact
        elif kind is RecordKind.ACCOUNT:
            record = engine.create_account(name="A", primary_contact_id=contact.id)
        else:
            record = engine.create_opportunity(name="O", contact_id=contact.id)
    enrollment = engine.connect(record, template.id)
    for _ in range(40):
        if enrollment.ended:
            break
        if enrollment.current_step is not None and enrollment.activity_id is not None:
            enrollment = engine.skip_step(enrollment.id, enrollment.current_step)
        else:
            due = engine.next_due_at()
            assert due is not None
            clock.set(max(due, clock.now()))
            engine.run_due()
            enrollment = engine.enrollment(enrollment.id)
    calendar = OrganizationCalendar()
    manual = [a for a in engine.timeline(record) if a.state is not ActivityState.COMPLETED]
    assert manual
    for activity in manual:
        assert activity.due_at is not None
        assert calendar.is_working_time(activity.due_at), activity


# --- 3. assigning the current step ----------------------------------------------------


def two_calls() -> SequenceDefinition:
    return seq(
        ActivityStep(id="call", kind="call", subject="Call", next="answered"),
        ConditionStep(id="answered", watch=CallWatch(), yes="book", no="again"),
        ActivityStep(id="book", kind="task", subject="Book", next="end"),
        ActivityStep(id="again", kind="call", subject="Call again", next="end"),
        EndStep(id="end", outcome="done"),
    )


def _open_activity(engine: Salesflow, record: Any) -> Activity:
    (activity,) = [a for a in engine.timeline(record) if a.state is ActivityState.OPEN]
    return activity


def test_assign_step_gives_the_current_step_and_its_activity_to_someone_else(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(two_calls())
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ann")
    enrollment = engine.connect(lead, "s")
    sink.events.clear()

    enrollment = engine.assign_step(enrollment.id, "call", "bob")

    assert enrollment.step_owner_id == "bob"
    assert enrollment.owner_id == "ann"  # later steps stay with the enrollment's owner
    assert _open_activity(engine, lead).owner_id == "bob"
    up_next = engine.up_next(enrollment.id)
    assert up_next.current is not None
    assert up_next.current.owner_id == "bob"
    assert [type(e) for e in sink.events] == [StepAssigned, ActivityUpdated]
    (assigned,) = of(sink, StepAssigned)
    assert (assigned.step_id, assigned.owner_id) == ("call", "bob")
    # the history credits the step to the one who did it; the next step is Ann's
    enrollment = engine.complete_step(enrollment.id, "call", outcome="no_answer")
    assert enrollment.history[0].owner_id == "bob"
    assert _open_activity(engine, lead).owner_id == "ann"


def test_assign_step_to_the_current_owner_changes_nothing(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(two_calls())
    enrollment = engine.connect(engine.create_lead(topic="T", last_name="L", owner_id="ann"), "s")
    sink.events.clear()
    assert engine.assign_step(enrollment.id, "call", "ann").version == enrollment.version
    assert sink.events == []


def test_assign_step_refuses_what_is_not_the_current_manual_step(engine: Salesflow) -> None:
    engine.publish_sequence(
        seq(
            ActivityStep(id="call", kind="call", subject="Call", next="wait"),
            WaitStep(id="wait", span=Span(days=1), next="task"),
            ActivityStep(id="task", kind="task", subject="Task", next="end"),
            EndStep(id="end", outcome="done"),
        )
    )
    enrollment = engine.connect(engine.create_lead(topic="T", last_name="L"), "s")
    with pytest.raises(InvalidTransition, match="current step is 'call'"):
        engine.assign_step(enrollment.id, "wait", "bob")
    enrollment = engine.complete_step(enrollment.id, "call")
    with pytest.raises(InvalidTransition, match="runs by itself"):
        engine.assign_step(enrollment.id, "wait", "bob")
    with pytest.raises(NotFound):
        engine.assign_step("enr-404", "call", "bob")


def test_assign_step_refuses_a_malformed_owner(engine: Salesflow) -> None:
    engine.publish_sequence(two_calls())
    enrollment = engine.connect(engine.create_lead(topic="T", last_name="L"), "s")
    with pytest.raises(ValidationError, match="owner_id"):
        engine.assign_step(enrollment.id, "call", " ")
    assert engine.enrollment(enrollment.id).step_owner_id is None


def test_a_paused_enrollments_step_can_be_assigned(engine: Salesflow) -> None:
    engine.publish_sequence(two_calls())
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ann")
    enrollment = engine.connect(lead, "s")
    engine.pause_enrollment(enrollment.id)
    assert engine.assign_step(enrollment.id, "call", "bob").step_owner_id == "bob"
    assert _open_activity(engine, lead).owner_id == "bob"


def test_delegating_a_step_activity_assigns_the_step(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(two_calls())
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ann")
    enrollment = engine.connect(lead, "s")
    engine.update_activity(_open_activity(engine, lead).id, owner_id="bob")
    enrollment = engine.enrollment(enrollment.id)
    assert enrollment.step_owner_id == "bob"
    up_next = engine.up_next(enrollment.id)
    assert up_next.current is not None
    assert up_next.current.owner_id == "bob"
    assert [e.owner_id for e in of(sink, StepAssigned)] == ["bob"]


def test_delegating_an_activity_of_no_sequence_touches_no_enrollment(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(two_calls())
    lead = engine.create_lead(topic="T", last_name="L", owner_id="ann")
    enrollment = engine.connect(lead, "s")
    own = engine.add_activity(lead, "task", "Own task", owner_id="ann")
    engine.update_activity(own.id, owner_id="bob")
    assert engine.enrollment(enrollment.id).step_owner_id == "ann"
    assert of(sink, StepAssigned) == []


def test_the_pure_runtime_assigns_only_the_current_manual_step() -> None:
    ref = RecordRef(kind=RecordKind.LEAD, id="lead-1")
    definition = two_calls()
    started = start(definition, enrollment_id="e1", record=ref, owner_id="ann", now=MONDAY)
    advance = assign_step(definition, started.enrollment, "call", "bob", MONDAY)
    assert advance.enrollment.step_owner_id == "bob"
    assert advance.enrollment.version == started.enrollment.version + 1
    assert started.enrollment.step_owner_id == "ann"  # the input is never changed
    with pytest.raises(InvalidTransition):
        assign_step(definition, started.enrollment, "book", "bob", MONDAY)
