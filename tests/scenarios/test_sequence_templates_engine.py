"""The six standard templates run through the engine: publish, connect a record of the
template's type, and drive scripted paths (the customer never answers, answers the
second call, replies to the first email, …) with seller commands, email events and
`simulate`. Each path checks the activities it leaves on the timeline (kind, subject,
day after the start), how it ends (outcome, the record's status) and that it never
lasts longer than the template's longest path (`stats`). Also: the worked
working-time example ("email on Wednesday, wait 3 days, call") through the engine."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from salesflow.activity import Activity, ActivityKind, ActivityState
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.events import ListSink
from salesflow.lead import LeadStatus
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.sequences.definition import (
    ActivityStep,
    EndStep,
    SequenceDefinition,
    Span,
    StepKind,
    WaitStep,
)
from salesflow.sequences.enrollment import (
    Enrollment,
    EnrollmentStatus,
    RuntimeConfig,
    SendEmailRequested,
)
from salesflow.sequences.templates import TEMPLATES, load_template
from salesflow.sequences.validation import stats
from salesflow.stores.memory import MemoryStore
from salesflow.testing import simulate
from salesflow.values import Record
from salesflow.worktime import OrganizationCalendar

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)

EMAIL = ActivityKind.EMAIL
CALL = ActivityKind.PHONE_CALL
TASK = ActivityKind.TASK
LINKEDIN = ActivityKind.LINKEDIN


def make_engine(clock: FakeClock, config: RuntimeConfig | None = None) -> Salesflow:
    numbers = itertools.count(1)
    enrollments = itertools.count(1)
    return Salesflow(
        MemoryStore(),
        clock=clock,
        sink=ListSink(),
        ids=lambda kind: f"{kind.value}-{next(numbers)}",
        enrollment_ids=lambda: f"enr-{next(enrollments)}",
        sequences=config,
    )


def new_record(engine: Salesflow, record_type: str) -> Record:
    # automated emails go to the record's email address (an opportunity's or an
    # account's through its contact): a record without one exits in error
    if record_type == "lead":
        return engine.create_lead(
            topic="Laptops",
            last_name="Ruiz",
            company_name="Contoso",
            email="ruiz@contoso.example",
            owner_id="ann",
        )
    contact = engine.create_contact(last_name="Ruiz", email="ruiz@contoso.example", owner_id="ann")
    if record_type == "contact":
        return contact
    if record_type == "account":
        return engine.create_account(name="Contoso", primary_contact_id=contact.id, owner_id="ann")
    assert record_type == "opportunity"
    return engine.create_opportunity(name="Demo for Contoso", contact_id=contact.id, owner_id="ann")


@attrs.frozen(kw_only=True)
class Run:
    engine: Salesflow
    record: Record
    enrollment: Enrollment
    definition: SequenceDefinition

    @property
    def duration(self) -> timedelta:
        """From the start to the enrollment's last step."""
        return self.enrollment.history[-1].at - T0

    def timeline(self) -> list[tuple[ActivityKind, str, float]]:
        """The record's activities: kind, subject and day after the start it was due,
        in the order they were put on the timeline."""
        activities = sorted(
            self.engine.timeline(self.record),
            key=lambda a: (a.due_at, int(a.id.rsplit("-", 1)[1])),
        )
        result = []
        for a in activities:
            assert a.due_at is not None
            assert a.state is ActivityState.COMPLETED  # every step was done, none left open
            assert a.owner_id == "ann"
            result.append((a.kind, a.subject, (a.due_at - T0) / DAY))
        return result

    def email_requests(self) -> list[str | None]:
        sink = self.engine.sink
        assert isinstance(sink, ListSink)
        return [e.template for e in sink.events if isinstance(e, SendEmailRequested)]


def drive(
    name: str,
    *,
    answers: Mapping[str, str] | None = None,
    replies: frozenset[str] = frozenset(),
) -> Run:
    """Publish the template ``name``, connect a new record of its type at `T0` and run
    it to its end: manual steps are done at once (a call in ``answers`` with that
    outcome, any other call ``no_answer``); the customer replies, right after it is
    sent, to every email step in ``replies``; due times are reached with `simulate`."""
    answers = answers or {}
    clock = FakeClock(T0)
    engine = make_engine(clock)
    definition = engine.publish_sequence(load_template(name)).definition
    record = new_record(engine, definition.record_type.value)
    e = engine.connect(record, name)
    replied: set[str] = set()
    for _ in range(100):
        for step_id in sorted(replies - replied):
            if any(h.step_id == step_id for h in e.history):
                replied.add(step_id)
                e = engine.record_email_event(e.id, step_id, "replied")
        if e.ended:
            break
        current = engine.up_next(e.id).current
        assert current is not None
        if current.kind.manual:
            outcome = answers.get(current.step_id, "no_answer")
            e = engine.complete_step(
                e.id, current.step_id, outcome=outcome if current.kind is StepKind.CALL else None
            )
        else:
            assert e.due_at is not None
            assert current.kind in (StepKind.WAIT, StepKind.CONDITION)
            simulate(engine, e.due_at)
            e = engine.enrollment(e.id)
    assert e.ended, f"{name} did not end"
    assert replied == set(replies), "a scripted reply was never possible"
    assert engine.due_items() == []
    run = Run(engine=engine, record=record, enrollment=e, definition=definition)
    assert run.duration <= stats(definition).longest
    return run


def lead_status(run: Run) -> tuple[LeadStatus, str]:
    lead = run.engine.get_lead(run.record.id)
    return lead.status, lead.status_reason


def completed(run: Run, outcome: str) -> None:
    assert run.enrollment.status is EnrollmentStatus.COMPLETED
    assert run.enrollment.outcome == outcome
    assert run.enrollment.exit_reason is None


# --- every template ------------------------------------------------------------------


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_runs_through_the_engine_within_its_longest_duration(name: str) -> None:
    run = drive(name)
    assert run.enrollment.status is EnrollmentStatus.COMPLETED
    assert run.enrollment.record == run.record.ref
    # the path where the customer never answers is the longest one of every template
    assert run.duration == stats(run.definition).longest


# --- no-show follow-up (contact) -----------------------------------------------------

MISSED = (EMAIL, "Email about the missed meeting and ask for another one", 0.0)


def test_no_show_reply_to_the_first_email_gets_a_call_after_a_day() -> None:
    run = drive("no_show_follow_up", replies=frozenset({"email_missed_meeting"}))
    completed(run, "meeting_rescheduled")
    assert run.timeline() == [
        MISSED,
        (CALL, "Call and share the details of the missed meeting", 1.0),
    ]
    assert run.duration == DAY


def test_no_show_call_answered_shares_the_details_by_email() -> None:
    run = drive("no_show_follow_up", answers={"call_after_no_reply": "answered"})
    completed(run, "meeting_rescheduled")
    assert run.timeline() == [
        MISSED,
        (CALL, "Call about the missed meeting", 1.0),
        (EMAIL, "Share the details of the missed meeting discussed on the call", 1.0),
    ]


def test_no_show_reply_to_the_placeholder_email() -> None:
    run = drive("no_show_follow_up", replies=frozenset({"email_placeholder_meeting"}))
    completed(run, "meeting_rescheduled")
    assert run.timeline() == [
        MISSED,
        (CALL, "Call about the missed meeting", 1.0),
        (EMAIL, "Email to schedule a placeholder meeting", 3.0),
        (CALL, "Call and share the details of the missed meeting", 5.0),
    ]
    assert run.duration == 5 * DAY


def test_no_show_never_answering_ends_with_other_contacts_on_day_five() -> None:
    run = drive("no_show_follow_up")
    completed(run, "no_response")
    assert run.timeline() == [
        MISSED,
        (CALL, "Call about the missed meeting", 1.0),
        (EMAIL, "Email to schedule a placeholder meeting", 3.0),
        (TASK, "Reach out to other contacts at the company", 5.0),
    ]


# --- high-volume outbound prospecting (lead) -----------------------------------------

OUTBOUND = "high_volume_outbound_prospecting"
OUTBOUND_START = [
    (EMAIL, "Introduce yourself to the lead", 0.0),
    (LINKEDIN, "Research the lead and the lead's company on LinkedIn", 0.0),
    (CALL, "Call the lead", 0.0),
]
FOLLOW_UP = [
    (EMAIL, "Follow up with the lead", 2.0),
    (CALL, "Call the lead again", 5.0),
]


def test_outbound_first_call_answered_connects_on_linkedin_after_two_days() -> None:
    run = drive(OUTBOUND, answers={"call_first": "answered"})
    completed(run, "meeting_booked")
    assert run.timeline() == [
        *OUTBOUND_START,
        (LINKEDIN, "Discuss, connect with the lead on LinkedIn and schedule a meeting", 2.0),
    ]
    assert run.email_requests() == ["outbound_introduction"]
    assert lead_status(run) == (LeadStatus.OPEN, "new")
    assert run.duration == 2 * DAY


def test_outbound_answered_on_the_second_call_books_on_day_six() -> None:
    run = drive(OUTBOUND, answers={"call_second": "answered"})
    completed(run, "meeting_booked")
    assert run.enrollment.history[-1].step_id == "meeting_booked_second_call"
    assert run.timeline() == [*OUTBOUND_START, *FOLLOW_UP]
    assert run.email_requests() == ["outbound_introduction", "outbound_follow_up"]
    assert run.duration == 6 * DAY
    assert lead_status(run)[0] is LeadStatus.OPEN


def test_outbound_answered_on_the_final_call_books_on_day_nine() -> None:
    run = drive(OUTBOUND, answers={"call_final": "answered"})
    completed(run, "meeting_booked")
    assert run.enrollment.history[-1].step_id == "meeting_booked_final_call"
    assert run.timeline() == [
        *OUTBOUND_START,
        *FOLLOW_UP,
        (CALL, "Make the final call to the lead", 8.0),
    ]
    assert lead_status(run)[0] is LeadStatus.OPEN


def test_outbound_never_answered_disqualifies_the_lead_on_day_nine() -> None:
    run = drive(OUTBOUND)
    completed(run, "disqualified")
    assert run.timeline() == [
        *OUTBOUND_START,
        *FOLLOW_UP,
        (CALL, "Make the final call to the lead", 8.0),
    ]
    assert lead_status(run) == (LeadStatus.DISQUALIFIED, "cannot_contact")
    assert run.engine.get_lead(run.record.id).closed_at == T0 + 9 * DAY
    assert run.duration == 9 * DAY


# --- invite to upcoming event (contact) ---------------------------------------------

INVITATION = (EMAIL, "Send a personalized invitation to the event", 0.0)
FOLLOW_UP_INVITATION = (EMAIL, "Send a follow-up invitation to the event", 3.0)


def test_invite_reply_to_the_invitation_confirms_after_three_days() -> None:
    run = drive("invite_to_upcoming_event", replies=frozenset({"email_invitation"}))
    completed(run, "registered")
    assert run.timeline() == [
        INVITATION,
        (EMAIL, "Send a confirmation with the event details", 3.0),
    ]


def test_invite_reply_to_the_follow_up_confirms_on_day_five() -> None:
    run = drive("invite_to_upcoming_event", replies=frozenset({"email_follow_up"}))
    completed(run, "registered")
    assert run.enrollment.history[-1].step_id == "registered_after_follow_up"
    assert run.timeline() == [
        INVITATION,
        FOLLOW_UP_INVITATION,
        (EMAIL, "Send a confirmation with the event details", 5.0),
    ]


def test_invite_answered_call_confirms_what_was_discussed() -> None:
    run = drive("invite_to_upcoming_event", answers={"call_invitation": "answered"})
    completed(run, "registered")
    assert run.timeline() == [
        INVITATION,
        FOLLOW_UP_INVITATION,
        (CALL, "Call the customer about the event", 5.0),
        (EMAIL, "Send a confirmation with the event details discussed on the call", 5.0),
    ]


def test_invite_never_answered_flags_the_contact_for_future_events() -> None:
    run = drive("invite_to_upcoming_event")
    completed(run, "flagged_for_future_events")
    assert run.timeline() == [
        INVITATION,
        FOLLOW_UP_INVITATION,
        (CALL, "Call the customer about the event", 5.0),
    ]
    assert run.duration == 5 * DAY


# --- meeting for product demo requests (opportunity) --------------------------------

DEMO = "meeting_for_product_demo_requests"
DEMO_START = [
    (EMAIL, "Thank the customer for their interest in the product", 0.0),
    (LINKEDIN, "Research the customer on LinkedIn", 0.0),
    (LINKEDIN, "Connect with the customer on LinkedIn", 0.0),
    (EMAIL, "Ask the customer for a time slot for the demo", 1.0),
]
SCHEDULE = "Schedule the meeting and demo the product"


def opportunity(run: Run) -> Opportunity:
    return run.engine.get(Opportunity, run.record.id)


def test_demo_reply_with_a_slot_schedules_the_demo_on_day_three() -> None:
    run = drive(DEMO, replies=frozenset({"email_ask_for_slot"}))
    completed(run, "meeting_booked")
    assert run.timeline() == [*DEMO_START, (TASK, SCHEDULE, 3.0)]
    assert opportunity(run).status is OpportunityStatus.OPEN


def test_demo_first_call_answered_schedules_the_demo() -> None:
    run = drive(DEMO, answers={"call_first": "answered"})
    completed(run, "meeting_booked")
    assert run.timeline() == [
        *DEMO_START,
        (CALL, "Call the customer about the demo", 3.0),
        (TASK, SCHEDULE, 3.0),
    ]


def test_demo_follow_up_call_answered_schedules_the_demo_on_day_five() -> None:
    run = drive(DEMO, answers={"call_follow_up": "answered"})
    completed(run, "meeting_booked")
    assert run.enrollment.history[-1].step_id == "demo_booked_after_follow_up_call"
    assert run.timeline() == [
        *DEMO_START,
        (CALL, "Call the customer about the demo", 3.0),
        (CALL, "Make a follow-up call about the demo", 5.0),
        (TASK, SCHEDULE, 5.0),
    ]
    assert opportunity(run).status is OpportunityStatus.OPEN


def test_demo_never_answered_closes_the_opportunity_as_lost() -> None:
    run = drive(DEMO)
    completed(run, "disqualified")
    assert run.timeline() == [
        *DEMO_START,
        (CALL, "Call the customer about the demo", 3.0),
        (CALL, "Make a follow-up call about the demo", 5.0),
    ]
    closed = opportunity(run)
    assert (closed.status, closed.close_reason) == (OpportunityStatus.LOST, "no_response")
    assert run.duration == 5 * DAY


# --- upcoming account renewal (account) ---------------------------------------------


def test_account_renewal_runs_its_thirteen_steps_over_fifty_days() -> None:
    run = drive("upcoming_account_renewal")
    completed(run, "renewal_signed")
    assert run.timeline() == [
        (TASK, "Review the account and renewal data", 0.0),
        (EMAIL, "Email about the upcoming renewal and ask for a meeting to discuss it", 0.0),
        (
            TASK,
            "Review the products and features the account uses and explore add-ons to offer",
            7.0,
        ),
        (CALL, "Call to answer questions and outline add-ons", 7.0),
        (TASK, "Note the action items from the call and work on them", 12.0),
        (EMAIL, "Schedule a follow-up meeting to answer questions and resolve concerns", 12.0),
        (TASK, "Prepare the renewal proposal", 19.0),
        (TASK, "Discuss the renewal proposal with the sales team for approval", 19.0),
        (CALL, "Call to discuss the approved renewal proposal", 26.0),
        (EMAIL, "Email the quoted proposal for review", 26.0),
        (CALL, "Call to agree on the final proposal", 33.0),
        (TASK, "Discuss and sign the renewal contract", 47.0),
        (EMAIL, "Thank the customer for signing the renewal contract", 50.0),
    ]
    assert len(run.timeline()) == stats(run.definition).steps == 13
    assert run.duration == 50 * DAY


# --- webinar follow-up (lead) -------------------------------------------------------

WEBINAR = "webinar_follow_up"
THANK_YOU = (
    EMAIL,
    "Thank the attendee and ask for a meeting about next steps and questions",
    0.0,
)
CONFIRMATION = "Send a confirmation and set up the product demo meeting"
WEBINAR_FOLLOW_UP = (EMAIL, "Send a follow-up email", 2.0)


def assert_qualified(run: Run) -> None:
    completed(run, "meeting_booked")
    lead = run.engine.get_lead(run.record.id)
    assert lead.status is LeadStatus.QUALIFIED
    assert lead.qualifying_opportunity_id is not None
    assert run.enrollment.history[-2].step_id == "qualify"


def test_webinar_reply_to_the_thank_you_email_qualifies_the_lead_on_day_two() -> None:
    run = drive(WEBINAR, replies=frozenset({"auto_email_thank_you"}))
    assert_qualified(run)
    assert run.timeline() == [THANK_YOU, (EMAIL, CONFIRMATION, 2.0)]
    assert run.email_requests() == ["webinar_thank_you"]
    assert run.duration == 2 * DAY


def test_webinar_reply_to_the_follow_up_qualifies_the_lead_on_day_three() -> None:
    run = drive(WEBINAR, replies=frozenset({"email_follow_up"}))
    assert_qualified(run)
    assert run.timeline() == [THANK_YOU, WEBINAR_FOLLOW_UP, (EMAIL, CONFIRMATION, 3.0)]


def test_webinar_answered_call_qualifies_the_lead() -> None:
    run = drive(WEBINAR, answers={"call_next_steps": "answered"})
    assert_qualified(run)
    assert run.timeline() == [
        THANK_YOU,
        WEBINAR_FOLLOW_UP,
        (CALL, "Call about the next steps", 3.0),
        (EMAIL, CONFIRMATION, 3.0),
    ]


def test_webinar_reply_to_the_final_follow_up_qualifies_the_lead_on_day_seven() -> None:
    run = drive(WEBINAR, replies=frozenset({"email_final_follow_up"}))
    assert_qualified(run)
    assert run.timeline() == [
        THANK_YOU,
        WEBINAR_FOLLOW_UP,
        (CALL, "Call about the next steps", 3.0),
        (EMAIL, "Send a final follow-up email to arrange a meeting", 5.0),
        (EMAIL, CONFIRMATION, 7.0),
    ]
    assert run.duration == 7 * DAY


def test_webinar_never_replying_disqualifies_the_lead_on_day_seven() -> None:
    run = drive(WEBINAR)
    completed(run, "disqualified")
    assert lead_status(run) == (LeadStatus.DISQUALIFIED, "no_longer_interested")
    assert run.timeline() == [
        THANK_YOU,
        WEBINAR_FOLLOW_UP,
        (CALL, "Call about the next steps", 3.0),
        (EMAIL, "Send a final follow-up email to arrange a meeting", 5.0),
    ]
    assert run.duration == 7 * DAY


# --- the worked working-time example ------------------------------------------------

WEDNESDAY = datetime(2026, 3, 4, 14, 30, tzinfo=UTC)


def wednesday_call(*, skip_non_working_time: bool = True) -> SequenceDefinition:
    return SequenceDefinition(
        id="wednesday_call",
        name="Email, wait 3 days, call",
        record_type="lead",
        entry="mail",
        skip_non_working_time=skip_non_working_time,
        steps=[
            ActivityStep(id="mail", kind="email", subject="Email the lead", next="wait"),
            WaitStep(id="wait", span=Span(days=3), next="call"),
            ActivityStep(id="call", kind="call", subject="Call the lead", next="end"),
            EndStep(id="end", outcome="called"),
        ],
    )


def call_due_after_wednesday_email(
    config: RuntimeConfig | None, *, skip_non_working_time: bool = True
) -> datetime:
    """Send the email on Wednesday 14:30, then run time forward until the call is on
    the timeline; returns when the call is due (also checked against the due item)."""
    clock = FakeClock(WEDNESDAY)
    engine = make_engine(clock, config)
    engine.publish_sequence(wednesday_call(skip_non_working_time=skip_non_working_time))
    lead = engine.create_lead(topic="Laptops", last_name="Ruiz", owner_id="ann")
    e = engine.connect(lead, "wednesday_call")
    e = engine.complete_step(e.id, "mail")
    (item,) = engine.due_items()
    assert item.due_at == e.due_at
    assert e.due_at is not None
    simulate(engine, WEDNESDAY + 14 * DAY)
    e = engine.enrollment(e.id)
    assert e.current_step == "call"
    call: Activity = engine.get(Activity, e.activity_id or "")
    assert (call.kind, call.due_at) == (CALL, item.due_at)
    assert call.due_at is not None
    return call.due_at


def test_worked_example_calendar_days_put_the_call_on_monday() -> None:
    due = call_due_after_wednesday_email(None)
    assert due == datetime(2026, 3, 9, 8, tzinfo=UTC)
    assert due.strftime("%A %H:%M") == "Monday 08:00"


def test_worked_example_working_days_put_the_call_on_tuesday() -> None:
    config = RuntimeConfig(calendars=OrganizationCalendar(), count_working_days=True)
    due = call_due_after_wednesday_email(config)
    assert due == datetime(2026, 3, 10, 8, tzinfo=UTC)  # Thursday, Friday, Monday in full
    assert due.strftime("%A %H:%M") == "Tuesday 08:00"


def test_worked_example_without_skipping_non_working_time_calls_on_saturday() -> None:
    due = call_due_after_wednesday_email(None, skip_non_working_time=False)
    assert due == datetime(2026, 3, 7, 14, 30, tzinfo=UTC)


def test_worked_example_uses_the_engine_calendar_time_zone() -> None:
    # In New York 14:30 UTC is 09:30 EST on Wednesday: three calendar days later is
    # Saturday, so the call moves to Monday 08:00, which is EDT (UTC-4) after the
    # clocks went forward on Sunday 8 March.
    config = RuntimeConfig(calendars=OrganizationCalendar(timezone="America/New_York"))
    due = call_due_after_wednesday_email(config)
    assert due == datetime(2026, 3, 9, 12, tzinfo=UTC)
