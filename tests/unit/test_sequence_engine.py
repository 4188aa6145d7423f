"""The engine's sequence commands (`Salesflow.publish_sequence`, `connect`, …) on a
memory store with a fake clock and a list sink: each command's effect on the stored
enrollment, the record's timeline, the due item and the published events."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.sequence_engines import make_engine

from salesflow import events as ev
from salesflow.activity import Activity, ActivityKind, ActivityState
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import InvalidDefinition, InvalidTransition, NotFound, ValidationError
from salesflow.events import ListSink
from salesflow.lead import LeadStatus
from salesflow.opportunity import OpportunityStatus
from salesflow.party import Contact
from salesflow.sequences.definition import (
    ABTestStep,
    ActivityStep,
    AdvanceStep,
    CallWatch,
    ConditionStep,
    EmailWatch,
    EndStep,
    SequenceDefinition,
    SetStatusStep,
    Span,
    Step,
    StepKind,
    UpdateFieldStep,
    WaitStep,
)
from salesflow.sequences.enrollment import (
    EnrollmentCompleted,
    EnrollmentExited,
    EnrollmentOwnerChanged,
    EnrollmentPaused,
    EnrollmentResumed,
    EnrollmentStarted,
    EnrollmentStatus,
    ExitReason,
    RuntimeConfig,
    SendEmailRequested,
    SequenceAdvanceFailed,
    StepSkipped,
    StepSnoozed,
    StepStarted,
)
from salesflow.sequences.templates import load_template
from salesflow.sequences.walk import variant_for
from salesflow.stores.memory import MemoryStore
from salesflow.testing import simulate
from salesflow.values import Record, RecordKind, RecordRef

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
OUTBOUND = "high_volume_outbound_prospecting"
STEP_DUE = "sequence.step"
"""The kind of the due item that moves an enrollment when its wait or limit ends."""


def step_due_key(enrollment_id: str) -> str:
    """The uniqueness key of an enrollment's one due item."""
    return f"sequence:{enrollment_id}"


# --- fixtures and helpers ----------------------------------------------------------


@pytest.fixture
def engine(clock: FakeClock, sink: ListSink) -> Salesflow:
    """The conftest's clock and sink, on `make_engine`'s sequential ids."""
    return make_engine(clock, sink)


def seq(
    *steps: Step, id: str = "s", record_type: str = "lead", **options: Any
) -> SequenceDefinition:
    return SequenceDefinition(
        id=id,
        name=f"Sequence {id}",
        record_type=record_type,
        entry=steps[0].id,
        steps=list(steps),
        **options,
    )


def call_then_book(id: str = "s", within: Span | None = None) -> SequenceDefinition:
    """Call; answered (within a day) → book a meeting task; else end."""
    return seq(
        ActivityStep(id="call", kind="call", subject="Call the lead", next="answered"),
        ConditionStep(
            id="answered",
            watch=CallWatch(),
            within=within if within is not None else Span(days=1),
            yes="book",
            no="silent",
        ),
        ActivityStep(id="book", kind="task", subject="Book the meeting", next="booked"),
        EndStep(id="booked", outcome="meeting_booked"),
        EndStep(id="silent", outcome="no_answer"),
        id=id,
    )


def mail_then_watch(*, advance_early: bool = False, **options: Any) -> SequenceDefinition:
    """Automated email; opened within 2 days → call; else end."""
    return seq(
        ActivityStep(
            id="mail", kind="auto_email", subject="Introduction", template="intro", next="opened"
        ),
        ConditionStep(
            id="opened",
            watch=EmailWatch(events=["opened"]),
            within=Span(days=2),
            advance_early=advance_early,
            yes="call",
            no="silent",
        ),
        ActivityStep(id="call", kind="call", subject="Call the lead", next="engaged"),
        EndStep(id="engaged", outcome="engaged"),
        EndStep(id="silent", outcome="silent"),
        **options,
    )


def task_wait_call(id: str = "s", days: int = 3, record_type: str = "lead") -> SequenceDefinition:
    return seq(
        ActivityStep(id="task", kind="task", subject="Prepare", next="wait"),
        WaitStep(id="wait", span=Span(days=days), next="call"),
        ActivityStep(id="call", kind="call", subject="Call the lead", next="end"),
        EndStep(id="end", outcome="done"),
        id=id,
        record_type=record_type,
    )


def new_lead(engine: Salesflow, owner: str = "ann") -> Record:
    return engine.create_lead(
        topic="Laptops",
        last_name="Ruiz",
        company_name="Contoso",
        email="ruiz@contoso.example",
        owner_id=owner,
    )


def activity(engine: Salesflow, activity_id: str | None) -> Activity:
    assert activity_id is not None
    return engine.get(Activity, activity_id)


def step_items(engine: Salesflow) -> list[tuple[str | None, datetime]]:
    return [(i.key, i.due_at) for i in engine.due_items() if i.kind == STEP_DUE]


def of_type(events: Sequence[ev.Event], kind: type[ev.Event]) -> list[ev.Event]:
    return [e for e in events if isinstance(e, kind)]


class SnapshotSink:
    """Checks, for every published batch, that the store already holds what the
    events name (the command has committed) and keeps the batches."""

    def __init__(self) -> None:
        self.engine: Salesflow | None = None
        self.batches: list[tuple[ev.Event, ...]] = []

    def publish(self, events: Sequence[ev.Event]) -> None:
        assert self.engine is not None
        for event in events:
            if isinstance(event, EnrollmentStarted):
                self.engine.enrollment(event.enrollment_id)  # NotFound if not committed
            if isinstance(event, ev.ActivityCreated):
                self.engine.get(Activity, event.activity_id)
            if isinstance(event, EnrollmentCompleted | EnrollmentExited):
                assert self.engine.enrollment(event.enrollment_id).ended
        self.batches.append(tuple(events))


# --- publishing and versions ---------------------------------------------------------


def test_publish_stores_version_one_active_and_announces_it(
    engine: Salesflow, sink: ListSink
) -> None:
    published = engine.publish_sequence(call_then_book())
    assert published.definition.version == 1
    assert published.active
    assert published.state == "active"
    assert published.published_at == T0
    assert sink.events == [
        ev.DefinitionPublished(occurred_at=T0, kind="sequence", definition_id="s", version=1)
    ]
    assert engine.get_sequence("s") == published
    assert [p.definition.id for p in engine.sequences()] == ["s"]


def test_publishing_again_makes_the_next_version_and_equal_ones_change_nothing(
    engine: Salesflow, clock: FakeClock, sink: ListSink
) -> None:
    first = engine.publish_sequence(call_then_book())
    clock.advance(DAY)
    same = engine.publish_sequence(call_then_book())
    assert same == first
    assert len(sink.events) == 1
    second = engine.publish_sequence(call_then_book(within=Span(days=2)))
    assert second.definition.version == 2
    assert second.published_at == T0 + DAY
    # the version passed in is ignored: the store numbers versions
    third = engine.publish_sequence(
        SequenceDefinition(
            id="s",
            version=7,
            name="Renamed",
            record_type="lead",
            entry="call",
            steps=list(call_then_book().steps),
        )
    )
    assert third.definition.version == 3
    assert engine.get_sequence("s").definition.version == 3
    assert engine.get_sequence("s", 1).definition.step("answered").within == Span(days=1)  # type: ignore[union-attr]
    assert [p.definition.version for p in engine.sequences()] == [3]
    with pytest.raises(NotFound):
        engine.get_sequence("s", 4)
    with pytest.raises(NotFound):
        engine.get_sequence("nope")


def test_an_enrolled_record_stays_on_its_version_and_new_connections_use_the_new_one(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.publish_sequence(call_then_book())
    old = engine.connect(new_lead(engine), "s")
    # version 2: answered calls end at once, no booking task
    engine.publish_sequence(
        seq(
            ActivityStep(id="call", kind="call", subject="Call them", next="answered"),
            ConditionStep(id="answered", watch=CallWatch(), yes="booked", no="silent"),
            EndStep(id="booked", outcome="meeting_booked"),
            EndStep(id="silent", outcome="no_answer"),
        )
    )
    new = engine.connect(new_lead(engine), "s")
    assert (old.sequence_version, new.sequence_version) == (1, 2)
    assert activity(engine, new.activity_id).subject == "Call them"

    after_new = engine.complete_step(new.id, "call", outcome="answered")
    assert after_new.outcome == "meeting_booked"  # version 2 has no time limit

    after_old = engine.complete_step(old.id, "call", outcome="answered")
    assert after_old.current_step == "answered"  # version 1 waits its day
    simulate(engine, T0 + DAY)
    assert engine.enrollment(old.id).current_step == "book"
    assert engine.enrollment(old.id).sequence_version == 1


def test_invalid_definitions_are_refused(engine: Salesflow, sink: ListSink) -> None:
    orphan = seq(
        ActivityStep(id="call", kind="call", subject="Call", next="end"),
        EndStep(id="end", outcome="x"),
        EndStep(id="orphan", outcome="y"),
    )
    with pytest.raises(InvalidDefinition, match="orphan"):
        engine.publish_sequence(orphan)
    with pytest.raises(ValidationError, match="SequenceDefinition"):
        engine.publish_sequence({"id": "s"})  # type: ignore[arg-type]
    assert engine.sequences() == []
    assert sink.events == []


def advancing(target: str, id: str = "a") -> SequenceDefinition:
    return seq(
        ActivityStep(id="task", kind="task", subject="Hand over", next="go"),
        AdvanceStep(id="go", sequence_id=target),
        id=id,
    )


def test_advance_to_an_unpublished_sequence_or_another_record_type_is_refused(
    engine: Salesflow, sink: ListSink
) -> None:
    with pytest.raises(InvalidDefinition, match="'b', which is not published"):
        engine.publish_sequence(advancing("b"))
    engine.publish_sequence(
        seq(
            ActivityStep(id="t", kind="task", subject="Do", next="end"),
            EndStep(id="end", outcome="x"),
            id="b",
            record_type="contact",
        )
    )
    with pytest.raises(InvalidDefinition, match="runs on contact records, not lead"):
        engine.publish_sequence(advancing("b"))
    assert [p.definition.id for p in engine.sequences()] == ["b"]
    assert len(sink.events) == 1


def test_advance_to_sequence_moves_the_record_to_the_other_sequence(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(task_wait_call(id="b"))
    engine.publish_sequence(advancing("b"))
    lead = new_lead(engine)
    first = engine.connect(lead, "a", owner_id="bob")
    done = engine.complete_step(first.id, "task")
    assert done.status is EnrollmentStatus.EXITED
    assert done.exit_reason is ExitReason.ADVANCED_TO_SEQUENCE
    (running,) = engine.enrollments(lead, running=True)
    assert running.sequence_id == "b"
    assert running.owner_id == "bob"
    assert running.current_step == "task"
    assert activity(engine, running.activity_id).owner_id == "bob"


# --- connecting and its refusals ----------------------------------------------------


def test_connect_starts_at_the_entry_and_puts_the_activity_on_the_timeline(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(call_then_book())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    assert e.id == "enr-1"
    assert e.status is EnrollmentStatus.ACTIVE
    assert (e.sequence_id, e.sequence_version, e.record) == ("s", 1, lead.ref)
    assert (e.owner_id, e.step_owner_id) == ("ann", "ann")
    assert (e.current_step, e.due_at) == ("call", T0)
    assert engine.enrollment(e.id) == e
    assert engine.enrollments(lead) == [e]
    assert engine.enrollments(sequence_id="s", running=True) == [e]
    (call,) = engine.timeline(lead)
    assert call.id == e.activity_id
    assert (call.kind, call.subject, call.state) == (
        ActivityKind.PHONE_CALL,
        "Call the lead",
        ActivityState.OPEN,
    )
    assert (call.owner_id, call.due_at, call.regarding) == ("ann", T0, lead.ref)
    assert call.custom == {"sequence_id": "s", "enrollment_id": e.id, "sequence_step": "call"}
    assert step_items(engine) == []  # a manual step waits for the seller, not a due item


def test_connect_with_an_explicit_owner(engine: Salesflow) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine).ref, "s", owner_id="bob")
    assert e.owner_id == "bob"
    assert activity(engine, e.activity_id).owner_id == "bob"


def assert_nothing_changed(
    engine: Salesflow, sink: ListSink, record: Record, events_before: int
) -> None:
    assert engine.enrollments(record) == []
    assert engine.timeline(record) == []
    assert engine.due_items() == []
    assert len(sink.events) == events_before


def test_connect_refuses_a_record_of_another_type(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(call_then_book())
    contact = engine.create_contact(last_name="Ruiz")
    before = len(sink.events)
    with pytest.raises(ValidationError, match="runs on lead records"):
        engine.connect(contact, "s")
    assert_nothing_changed(engine, sink, contact, before)


def test_connect_refuses_closed_leads(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(call_then_book())
    disqualified = new_lead(engine)
    engine.disqualify_lead(disqualified.id, "cannot_contact")
    qualified = new_lead(engine)
    engine.qualify_lead(qualified.id)
    for lead in (disqualified, qualified):
        before = len(sink.events)
        with pytest.raises(InvalidTransition, match="only open leads"):
            engine.connect(lead, "s")
        assert_nothing_changed(engine, sink, lead, before)


@pytest.mark.parametrize("close", ["win_opportunity", "lose_opportunity"])
def test_connect_refuses_closed_opportunities(
    engine: Salesflow, sink: ListSink, close: str
) -> None:
    engine.publish_sequence(
        seq(
            ActivityStep(id="t", kind="task", subject="Demo", next="end"),
            EndStep(id="end", outcome="x"),
            record_type="opportunity",
        )
    )
    opportunity = engine.create_opportunity(name="Deal")
    getattr(engine, close)(opportunity.id)
    before = len(sink.events)
    with pytest.raises(InvalidTransition, match="only open opportunities"):
        engine.connect(opportunity, "s")
    assert_nothing_changed(engine, sink, opportunity, before)


def test_connect_refuses_a_record_already_on_the_sequence(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(call_then_book())
    lead = new_lead(engine)
    first = engine.connect(lead, "s")
    engine.pause_enrollment(first.id)  # paused still counts as on the sequence
    before = len(sink.events)
    timeline = engine.timeline(lead)
    with pytest.raises(InvalidTransition, match="already on sequence 's'"):
        engine.connect(lead, "s")
    assert [e.id for e in engine.enrollments(lead)] == [first.id]
    assert engine.timeline(lead) == timeline
    assert len(sink.events) == before
    # once disconnected it may start over
    engine.disconnect(first.id)
    again = engine.connect(lead, "s")
    assert again.id != first.id
    assert [e.id for e in engine.enrollments(lead, running=True)] == [again.id]


def test_connect_many_connects_each_record_as_connect_does() -> None:
    one_by_one, together = ListSink(), ListSink()
    engines = [make_engine(FakeClock(T0), one_by_one), make_engine(FakeClock(T0), together)]
    for engine in engines:
        engine.publish_sequence(mail_then_watch())
    first, second = engines
    refs = [new_lead(first, owner).ref for owner in ("ann", "bob", "ann")]
    assert [new_lead(second, owner).ref for owner in ("ann", "bob", "ann")] == refs
    singly = [first.connect(ref, "s") for ref in refs]
    batch = second.connect_many(refs, "s")
    assert batch == singly
    assert [e.owner_id for e in batch] == ["ann", "bob", "ann"]
    assert second.enrollments(sequence_id="s") == first.enrollments(sequence_id="s")
    for ref in refs:
        assert second.timeline(ref) == first.timeline(ref)
    assert second.due_items() == first.due_items()
    assert together.events == one_by_one.events  # one batch, the same events in order
    assert [
        e.owner_id for e in second.connect_many([new_lead(second).ref], "s", owner_id="cy")
    ] == ["cy"]


def test_the_activity_tags_are_checked_as_custom_fields(clock: FakeClock, sink: ListSink) -> None:
    engine = Salesflow(MemoryStore(), clock=clock, sink=sink, enrollment_ids=lambda: "e" * 4001)
    engine.publish_sequence(call_then_book())
    lead = new_lead(engine)
    before = len(sink.events)
    with pytest.raises(ValidationError, match=r"custom\.enrollment_id has 4001 characters"):
        engine.connect(lead, "s")
    assert_nothing_changed(engine, sink, lead, before)


def test_a_steps_later_activities_equal_ones_built_in_full(
    engine: Salesflow, clock: FakeClock
) -> None:
    # The engine builds a step's first activity in full and copies the later ones
    # from it with their own ids, times, record and owner: they must be the same.
    engine.publish_sequence(call_then_book())
    for owner in ("ann", "bob", "cy"):
        clock.advance(timedelta(minutes=7))
        lead = new_lead(engine, owner)
        e = engine.connect(lead, "s")
        (call,) = engine.timeline(lead)
        built = Activity(
            id=call.id,
            created_at=clock.now(),
            modified_at=clock.now(),
            kind=ActivityKind.PHONE_CALL,
            regarding=lead.ref,
            subject="Call the lead",
            owner_id=owner,
            due_at=clock.now(),
            custom={"sequence_id": "s", "enrollment_id": e.id, "sequence_step": "call"},
        )
        assert call == built


def test_a_copied_step_activity_still_checks_its_owner(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(call_then_book())
    engine.connect(new_lead(engine), "s")  # the step's activity is now a template
    lead = new_lead(engine)
    before = len(sink.events)
    with pytest.raises(ValidationError, match="owner_id"):
        engine.connect(lead, "s", owner_id=" ann ")
    assert_nothing_changed(engine, sink, lead, before)


def test_connect_many_is_all_or_nothing(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(call_then_book())
    fine = new_lead(engine)
    closed = new_lead(engine)
    engine.disqualify_lead(closed.id, "cannot_contact")
    for records, error, match in [
        ([fine, closed], InvalidTransition, "only open leads"),
        ([fine, fine], InvalidTransition, "already on sequence 's'"),
        ([fine, RecordRef(kind=RecordKind.LEAD, id="lead-404")], NotFound, "lead-404"),
        ([fine, "lead-1"], ValidationError, "regarding="),
    ]:
        before = len(sink.events)
        with pytest.raises(error, match=match):
            engine.connect_many(records, "s")  # type: ignore[arg-type]
        assert_nothing_changed(engine, sink, fine, before)
    with pytest.raises(ValidationError, match="list or tuple"):
        engine.connect_many(fine, "s")  # type: ignore[arg-type]
    assert engine.connect_many([], "s") == []
    assert [e.record for e in engine.connect_many((fine,), "s")] == [fine.ref]


def test_connect_refuses_an_inactive_or_unknown_sequence_and_an_unknown_record(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(call_then_book())
    engine.deactivate_sequence("s")
    lead = new_lead(engine)
    before = len(sink.events)
    with pytest.raises(InvalidTransition, match="activate it"):
        engine.connect(lead, "s")
    with pytest.raises(NotFound):
        engine.connect(lead, "nope")
    assert_nothing_changed(engine, sink, lead, before)
    engine.activate_sequence("s")
    before = len(sink.events)
    with pytest.raises(NotFound):
        engine.connect(RecordRef(kind=RecordKind.LEAD, id="lead-404"), "s")
    assert_nothing_changed(engine, sink, lead, before)
    assert engine.connect(lead, "s").status is EnrollmentStatus.ACTIVE


def test_a_command_on_an_unknown_enrollment_is_not_found(engine: Salesflow) -> None:
    for command in (
        lambda: engine.enrollment("enr-404"),
        lambda: engine.up_next("enr-404"),
        lambda: engine.complete_step("enr-404", "call"),
        lambda: engine.skip_step("enr-404", "call"),
        lambda: engine.pause_enrollment("enr-404"),
        lambda: engine.disconnect("enr-404"),
    ):
        with pytest.raises(NotFound):
            command()


# --- up next ------------------------------------------------------------------------


def test_up_next_shows_the_current_step_and_what_follows(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.publish_sequence(task_wait_call())
    e = engine.connect(new_lead(engine), "s")
    view = engine.up_next(e.id)
    assert view.current is not None
    assert (view.current.step_id, view.current.kind, view.current.subject) == (
        "task",
        StepKind.TASK,
        "Prepare",
    )
    assert (view.current.owner_id, view.current.due_at) == ("ann", T0)
    (upcoming,) = view.upcoming
    assert (upcoming.step_id, upcoming.kind, upcoming.due_at) == (
        "call",
        StepKind.CALL,
        T0 + 3 * DAY,
    )

    clock.advance(timedelta(hours=2))
    e = engine.complete_step(e.id, "task")
    view = engine.up_next(e.id)
    assert view.current is not None
    assert (view.current.step_id, view.current.due_at) == ("wait", T0 + timedelta(days=3, hours=2))
    engine.disconnect(e.id)
    assert engine.up_next(e.id).current is None


def test_up_next_shows_both_branches_of_a_condition(engine: Salesflow) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    e = engine.complete_step(e.id, "call", outcome="no_answer")
    view = engine.up_next(e.id)
    assert view.current is not None
    assert view.current.step_id == "answered"
    assert {(p.branch, p.step_id) for p in view.upcoming} == {("yes", "book"), ("no", "silent")}


# --- completing steps and call outcomes ---------------------------------------------


def test_an_answered_call_takes_the_yes_branch_when_the_limit_ends(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.publish_sequence(call_then_book())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    call_id = e.activity_id
    clock.advance(timedelta(hours=1))
    e = engine.complete_step(e.id, "call", outcome="answered")
    call = activity(engine, call_id)
    assert (call.state, call.outcome, call.closed_at) == (
        ActivityState.COMPLETED,
        "answered",
        T0 + timedelta(hours=1),
    )
    assert e.call_outcomes == {"call": "answered"}
    assert (e.current_step, e.due_at) == ("answered", T0 + timedelta(days=1, hours=1))
    assert step_items(engine) == [(step_due_key(e.id), T0 + timedelta(days=1, hours=1))]
    simulate(engine, T0 + 2 * DAY)
    e = engine.enrollment(e.id)
    assert e.current_step == "book"
    assert e.history[-1].outcome == "yes"
    book = activity(engine, e.activity_id)
    assert (book.kind, book.due_at) == (ActivityKind.TASK, T0 + timedelta(days=1, hours=1))
    e = engine.complete_step(e.id, "book")
    assert (e.status, e.outcome) == (EnrollmentStatus.COMPLETED, "meeting_booked")
    assert e.activity_id is None
    assert [h.step_id for h in e.history] == ["call", "answered", "book", "booked"]
    assert engine.due_items() == []


def test_a_call_not_answered_takes_the_no_branch(engine: Salesflow) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    e = engine.complete_step(e.id, "call", outcome="no_answer")
    simulate(engine, T0 + DAY)
    e = engine.enrollment(e.id)
    assert (e.status, e.outcome) == (EnrollmentStatus.COMPLETED, "no_answer")
    assert [h.outcome for h in e.history] == ["no_answer", "no", "no_answer"]


def test_the_answered_outcomes_come_from_the_runtime_config(
    clock: FakeClock, sink: ListSink
) -> None:
    engine = make_engine(clock, sink, RuntimeConfig(answered={"answered", "connected"}))
    engine.publish_sequence(call_then_book())
    connected = engine.connect(new_lead(engine), "s")
    engine.complete_step(connected.id, "call", outcome="connected")
    default_engine = make_engine(clock, ListSink())
    default_engine.publish_sequence(call_then_book())
    other = default_engine.connect(new_lead(default_engine), "s")
    default_engine.complete_step(other.id, "call", outcome="connected")
    simulate(engine, T0 + DAY)
    simulate(default_engine, T0 + DAY)
    assert engine.enrollment(connected.id).current_step == "book"
    assert default_engine.enrollment(other.id).outcome == "no_answer"


def test_complete_step_refuses_a_step_that_is_not_current_and_changes_nothing(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    before = len(sink.events)
    with pytest.raises(InvalidTransition, match="current step is 'call'"):
        engine.complete_step(e.id, "book")
    assert engine.enrollment(e.id) == e
    assert activity(engine, e.activity_id).state is ActivityState.OPEN
    assert len(sink.events) == before
    e2 = engine.complete_step(e.id, "call", outcome="no_answer")
    before = len(sink.events)
    with pytest.raises(InvalidTransition, match="runs by itself"):
        engine.complete_step(e.id, "answered")
    assert engine.enrollment(e.id) == e2
    assert len(sink.events) == before


# --- skipping -----------------------------------------------------------------------


def test_skip_cancels_the_activity_and_a_watched_call_takes_the_no_branch(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    call_id = e.activity_id
    e = engine.skip_step(e.id, "call")
    call = activity(engine, call_id)
    assert (call.state, call.closed_at) == (ActivityState.CANCELED, T0)
    assert e.current_step == "answered"
    assert e.history[-1].outcome == "skipped"
    assert e.call_outcomes == {}
    assert StepSkipped(occurred_at=T0, enrollment_id=e.id, step_id="call") in sink.events
    assert ev.ActivityCanceled(occurred_at=T0, activity_id=call_id) in sink.events  # type: ignore[arg-type]
    simulate(engine, T0 + DAY)
    e = engine.enrollment(e.id)
    assert (e.history[-2].step_id, e.history[-2].outcome) == ("answered", "no")
    assert e.outcome == "no_answer"


def email_then_reply() -> SequenceDefinition:
    """A manual email, then a two-day wait for a reply: ``replied`` or ``silent``."""
    return seq(
        ActivityStep(id="mail", kind="email", subject="Write", next="replied"),
        ConditionStep(
            id="replied",
            watch=EmailWatch(events=["replied"]),
            within=Span(days=2),
            yes="yes",
            no="no",
        ),
        EndStep(id="yes", outcome="replied"),
        EndStep(id="no", outcome="silent"),
    )


def test_a_skipped_email_takes_the_no_branch_of_its_condition(engine: Salesflow) -> None:
    engine.publish_sequence(email_then_reply())
    e = engine.connect(new_lead(engine), "s")
    engine.skip_step(e.id, "mail")
    simulate(engine, T0 + 2 * DAY)
    assert engine.enrollment(e.id).outcome == "silent"


# --- snoozing -----------------------------------------------------------------------


def test_snooze_moves_the_step_and_its_activity_to_a_later_time(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    later = T0 + timedelta(hours=4)
    snoozed = engine.snooze_step(e.id, "call", later)
    assert snoozed.due_at == later
    assert snoozed.current_step == "call"
    assert activity(engine, e.activity_id).due_at == later
    assert sink.events[-2:] == [
        StepSnoozed(occurred_at=T0, enrollment_id=e.id, step_id="call", until=later),
        ev.ActivityUpdated(occurred_at=T0, activity_id=e.activity_id, fields=("due_at",)),  # type: ignore[arg-type]
    ]
    assert engine.up_next(e.id).current.due_at == later  # type: ignore[union-attr]
    assert step_items(engine) == []


def test_snooze_is_refused_for_a_time_not_later(
    engine: Salesflow, clock: FakeClock, sink: ListSink
) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    later = T0 + timedelta(hours=4)
    e = engine.snooze_step(e.id, "call", later)
    before = len(sink.events)
    for until in (T0, later, later - timedelta(minutes=1)):
        with pytest.raises(ValidationError, match="later time"):
            engine.snooze_step(e.id, "call", until)
    with pytest.raises(ValidationError):
        engine.snooze_step(e.id, "call", datetime(2026, 3, 9, 9))  # naive
    assert activity(engine, e.activity_id).due_at == later
    assert engine.enrollment(e.id) == e
    assert len(sink.events) == before


def test_snooze_is_refused_for_tasks(engine: Salesflow) -> None:
    engine.publish_sequence(task_wait_call())
    e = engine.connect(new_lead(engine), "s")
    with pytest.raises(InvalidTransition, match="tasks cannot be snoozed"):
        engine.snooze_step(e.id, "task", T0 + DAY)
    assert activity(engine, e.activity_id).due_at == T0
    e = engine.complete_step(e.id, "task")
    with pytest.raises(InvalidTransition, match="runs by itself"):
        engine.snooze_step(e.id, "wait", T0 + 5 * DAY)


# --- email events -------------------------------------------------------------------


def test_an_email_event_with_advance_early_takes_the_yes_branch_at_once(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.publish_sequence(mail_then_watch(advance_early=True))
    e = engine.connect(new_lead(engine), "s")
    assert step_items(engine) == [(step_due_key(e.id), T0 + 2 * DAY)]
    clock.advance(timedelta(hours=3))
    e = engine.record_email_event(e.id, "mail", "opened")
    assert e.current_step == "call"
    assert e.history[-1].outcome == "yes"
    assert activity(engine, e.activity_id).due_at == T0 + timedelta(hours=3)
    assert step_items(engine) == []


def test_an_email_event_without_advance_early_waits_for_the_limit(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.publish_sequence(mail_then_watch())
    e = engine.connect(new_lead(engine), "s")
    clock.advance(timedelta(hours=3))
    e = engine.record_email_event(e.id, "mail", "opened")
    assert e.current_step == "opened"
    assert e.email_events == {"mail": frozenset({"opened"})}
    assert step_items(engine) == [(step_due_key(e.id), T0 + 2 * DAY)]
    assert engine.run_due() == 0
    simulate(engine, T0 + 2 * DAY)
    e = engine.enrollment(e.id)
    assert e.current_step == "call"
    assert activity(engine, e.activity_id).due_at == T0 + 2 * DAY


def test_no_email_event_within_the_limit_takes_the_no_branch(engine: Salesflow) -> None:
    engine.publish_sequence(mail_then_watch(advance_early=True))
    e = engine.connect(new_lead(engine), "s")
    e = engine.record_email_event(e.id, "mail", "link_clicked")  # not watched
    assert e.current_step == "opened"
    simulate(engine, T0 + 3 * DAY)
    assert engine.enrollment(e.id).outcome == "silent"


def test_email_events_are_checked(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(
        seq(
            ActivityStep(id="task", kind="task", subject="Prepare", next="mail"),
            ActivityStep(id="mail", kind="auto_email", subject="Hi", next="end"),
            EndStep(id="end", outcome="x"),
        )
    )
    e = engine.connect(new_lead(engine), "s")
    before = len(sink.events)
    with pytest.raises(ValidationError, match="not an email event"):
        engine.record_email_event(e.id, "mail", "bounced")
    with pytest.raises(ValidationError, match="no email step 'task'"):
        engine.record_email_event(e.id, "task", "opened")
    with pytest.raises(InvalidTransition, match="has not sent the email"):
        engine.record_email_event(e.id, "mail", "opened")
    assert engine.enrollment(e.id) == e
    assert len(sink.events) == before
    done = engine.complete_step(e.id, "task")
    assert done.outcome == "x"
    # events for an ended enrollment are ignored
    assert engine.record_email_event(e.id, "mail", "opened") == done


def test_exit_on_reply_ends_the_enrollment(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(mail_then_watch(exit_on_reply=True))
    e = engine.connect(new_lead(engine), "s")
    e = engine.record_email_event(e.id, "mail", "replied")
    assert (e.status, e.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.CUSTOMER_REPLIED)
    assert e.current_step is None
    assert engine.due_items() == []
    assert sink.events[-1] == EnrollmentExited(
        occurred_at=T0, enrollment_id=e.id, reason=ExitReason.CUSTOMER_REPLIED
    )


def test_a_reply_without_exit_on_reply_is_just_a_fact(engine: Salesflow) -> None:
    engine.publish_sequence(mail_then_watch())
    e = engine.connect(new_lead(engine), "s")
    e = engine.record_email_event(e.id, "mail", "replied")
    assert e.status is EnrollmentStatus.ACTIVE
    simulate(engine, T0 + 2 * DAY)
    assert engine.enrollment(e.id).outcome == "silent"  # replied is not opened


# --- pause and resume ---------------------------------------------------------------


def test_pause_keeps_the_remaining_wait_and_resume_continues(
    engine: Salesflow, clock: FakeClock, sink: ListSink
) -> None:
    engine.publish_sequence(task_wait_call())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    e = engine.complete_step(e.id, "task")
    assert step_items(engine) == [(step_due_key(e.id), T0 + 3 * DAY)]
    clock.advance(DAY)
    paused = engine.pause_enrollment(e.id)
    assert paused.status is EnrollmentStatus.PAUSED
    assert (paused.due_at, paused.paused_remaining) == (None, 2 * DAY)
    assert engine.due_items() == []
    assert sink.events[-1] == EnrollmentPaused(occurred_at=T0 + DAY, enrollment_id=e.id)
    with pytest.raises(InvalidTransition):
        engine.pause_enrollment(e.id)
    simulate(engine, T0 + 10 * DAY)  # nothing moves while paused
    assert engine.enrollment(e.id) == paused
    resumed = engine.resume_enrollment(e.id)
    assert resumed.status is EnrollmentStatus.ACTIVE
    assert (resumed.due_at, resumed.paused_remaining) == (T0 + 12 * DAY, None)
    assert step_items(engine) == [(step_due_key(e.id), T0 + 12 * DAY)]
    assert sink.events[-1:] == [EnrollmentResumed(occurred_at=T0 + 10 * DAY, enrollment_id=e.id)]
    with pytest.raises(InvalidTransition):
        engine.resume_enrollment(e.id)
    simulate(engine, T0 + 12 * DAY)
    e = engine.enrollment(e.id)
    assert e.current_step == "call"
    assert activity(engine, e.activity_id).due_at == T0 + 12 * DAY


def test_a_paused_enrollment_refuses_seller_steps(engine: Salesflow) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    engine.pause_enrollment(e.id)
    with pytest.raises(InvalidTransition, match="resume it first"):
        engine.complete_step(e.id, "call", outcome="answered")
    with pytest.raises(InvalidTransition, match="resume it first"):
        engine.skip_step(e.id, "call")
    assert activity(engine, e.activity_id).state is ActivityState.OPEN


def test_an_advance_early_event_while_paused_moves_on_at_resume(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.publish_sequence(mail_then_watch(advance_early=True))
    e = engine.connect(new_lead(engine), "s")
    engine.pause_enrollment(e.id)
    e = engine.record_email_event(e.id, "mail", "opened")
    assert (e.status, e.current_step) == (EnrollmentStatus.PAUSED, "opened")
    clock.advance(timedelta(hours=5))
    e = engine.resume_enrollment(e.id)
    assert e.current_step == "call"
    assert engine.due_items() == []


# --- disconnecting ------------------------------------------------------------------


def test_disconnect_cancels_the_open_activity(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(call_then_book())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    done = engine.disconnect(e.id)
    assert (done.status, done.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.DISCONNECTED)
    assert (done.current_step, done.activity_id) == (None, None)
    assert activity(engine, e.activity_id).state is ActivityState.CANCELED
    assert engine.enrollments(lead, running=True) == []
    with pytest.raises(InvalidTransition):
        engine.disconnect(e.id)


def test_disconnect_during_a_wait_drops_the_due_item(engine: Salesflow) -> None:
    engine.publish_sequence(task_wait_call())
    e = engine.connect(new_lead(engine), "s")
    task_id = e.activity_id
    engine.complete_step(e.id, "task")
    engine.disconnect(e.id)
    assert engine.due_items() == []
    assert activity(engine, task_id).state is ActivityState.COMPLETED  # done stays done
    simulate(engine, T0 + 5 * DAY)
    assert engine.enrollment(e.id).exit_reason is ExitReason.DISCONNECTED


# --- the record closing ends its enrollments ---------------------------------------


def two_enrollments(engine: Salesflow) -> tuple[Record, str, str]:
    """A lead on a call sequence (open call) and on a wait sequence (waiting)."""
    engine.publish_sequence(call_then_book(id="calls"))
    engine.publish_sequence(task_wait_call(id="waits"))
    lead = new_lead(engine)
    calling = engine.connect(lead, "calls")
    waiting = engine.connect(lead, "waits")
    engine.complete_step(waiting.id, "task")
    return lead, calling.id, waiting.id


@pytest.mark.parametrize(
    ("close", "reason"),
    [
        (lambda engine, lead: engine.qualify_lead(lead.id), ExitReason.RECORD_QUALIFIED),
        (
            lambda engine, lead: engine.disqualify_lead(lead.id, "cannot_contact"),
            ExitReason.RECORD_DISQUALIFIED,
        ),
    ],
    ids=["qualify", "disqualify"],
)
def test_closing_a_lead_ends_its_enrollments(
    engine: Salesflow, close: Callable[[Salesflow, Record], object], reason: ExitReason
) -> None:
    lead, calling, waiting = two_enrollments(engine)
    call_id = engine.enrollment(calling).activity_id
    close(engine, lead)
    for enrollment_id in (calling, waiting):
        e = engine.enrollment(enrollment_id)
        assert (e.status, e.exit_reason) == (EnrollmentStatus.EXITED, reason)
    assert activity(engine, call_id).state is ActivityState.CANCELED
    assert engine.due_items() == []
    assert engine.enrollments(lead, running=True) == []


@pytest.mark.parametrize("close", ["win_opportunity", "lose_opportunity"])
def test_closing_an_opportunity_ends_its_enrollments(engine: Salesflow, close: str) -> None:
    engine.publish_sequence(
        seq(
            ActivityStep(id="demo", kind="task", subject="Demo", next="end"),
            EndStep(id="end", outcome="x"),
            record_type="opportunity",
        )
    )
    opportunity = engine.create_opportunity(name="Deal", owner_id="ann")
    e = engine.connect(opportunity, "s")
    getattr(engine, close)(opportunity.id)
    e2 = engine.enrollment(e.id)
    assert (e2.status, e2.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.RECORD_CLOSED)
    assert activity(engine, e.activity_id).state is ActivityState.CANCELED


def test_a_paused_enrollment_also_ends_when_the_lead_closes(engine: Salesflow) -> None:
    engine.publish_sequence(call_then_book())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    engine.pause_enrollment(e.id)
    engine.disqualify_lead(lead.id, "lost")
    assert engine.enrollment(e.id).exit_reason is ExitReason.RECORD_DISQUALIFIED
    assert activity(engine, e.activity_id).state is ActivityState.CANCELED


def test_the_sequences_own_disqualification_completes_it_and_ends_the_other_enrollment(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(load_template(OUTBOUND))
    engine.publish_sequence(call_then_book(id="other"))
    lead = new_lead(engine)
    outbound = engine.connect(lead, OUTBOUND)
    other = engine.connect(lead, "other")
    other_call = other.activity_id
    e = outbound
    while not e.ended:
        step = engine.up_next(e.id).current
        assert step is not None
        if step.kind.manual:
            e = engine.complete_step(e.id, step.step_id, outcome="no_answer")
        else:
            assert e.due_at is not None
            simulate(engine, e.due_at)
            e = engine.enrollment(e.id)
    assert (e.status, e.outcome, e.exit_reason) == (
        EnrollmentStatus.COMPLETED,
        "disqualified",
        None,
    )
    assert e.history[-2].step_id == "disqualify"
    stored = engine.get_lead(lead.id)
    assert (stored.status, stored.status_reason) == (LeadStatus.DISQUALIFIED, "cannot_contact")
    ended = engine.enrollment(other.id)
    assert (ended.status, ended.exit_reason) == (
        EnrollmentStatus.EXITED,
        ExitReason.RECORD_DISQUALIFIED,
    )
    assert activity(engine, other_call).state is ActivityState.CANCELED
    assert engine.due_items() == []
    assert of_type(sink.events, EnrollmentExited) == [
        EnrollmentExited(
            occurred_at=T0 + 9 * DAY, enrollment_id=other.id, reason=ExitReason.RECORD_DISQUALIFIED
        )
    ]


def test_update_field_and_set_status_steps_change_the_record(engine: Salesflow) -> None:
    engine.publish_sequence(
        seq(
            UpdateFieldStep(id="rate", field="rating", value="hot", next="tag"),
            UpdateFieldStep(id="tag", field="campaign_tag", value="spring", next="qualify"),
            SetStatusStep(id="qualify", status="qualified", next="end"),
            EndStep(id="end", outcome="qualified"),
        )
    )
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    assert (e.status, e.outcome) == (EnrollmentStatus.COMPLETED, "qualified")
    stored = engine.get_lead(lead.id)
    assert stored.rating == "hot"
    assert stored.custom == {"campaign_tag": "spring"}
    assert stored.status is LeadStatus.QUALIFIED
    assert stored.qualifying_opportunity_id is not None


def test_a_set_status_step_closes_the_opportunity(engine: Salesflow) -> None:
    engine.publish_sequence(
        seq(
            SetStatusStep(id="lose", status="lost", reason="no_response", next="end"),
            EndStep(id="end", outcome="lost"),
            record_type="opportunity",
        )
    )
    opportunity = engine.create_opportunity(name="Deal")
    e = engine.connect(opportunity, "s")
    assert e.outcome == "lost"
    stored = engine.get(type(opportunity), opportunity.id)
    assert (stored.status, stored.close_reason) == (OpportunityStatus.LOST, "no_response")


# --- owner changes ------------------------------------------------------------------


def test_assigning_the_lead_hands_later_steps_to_the_new_owner(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(task_wait_call())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    engine.assign_lead(lead.id, "bob")
    moved = engine.enrollment(e.id)
    assert (moved.owner_id, moved.step_owner_id) == ("bob", "ann")
    assert activity(engine, e.activity_id).owner_id == "ann"  # the current step stays
    assert EnrollmentOwnerChanged(occurred_at=T0, enrollment_id=e.id, owner_id="bob") in sink.events
    e = engine.complete_step(e.id, "task")
    assert e.history[-1].owner_id == "ann"
    simulate(engine, T0 + 3 * DAY)
    e = engine.enrollment(e.id)
    assert e.step_owner_id == "bob"
    assert activity(engine, e.activity_id).owner_id == "bob"


def test_changing_a_contacts_owner_hands_later_steps_over(engine: Salesflow) -> None:
    engine.publish_sequence(
        seq(
            ActivityStep(id="t", kind="task", subject="Prepare", next="c"),
            ActivityStep(id="c", kind="call", subject="Call", next="end"),
            EndStep(id="end", outcome="x"),
            record_type="contact",
        )
    )
    contact = engine.create_contact(last_name="Ruiz", owner_id="ann")
    e = engine.connect(contact, "s")
    engine.update_contact(contact.id, owner_id="bob")
    e = engine.complete_step(e.id, "t")
    assert activity(engine, e.activity_id).owner_id == "bob"


def test_change_enrollment_owner_moves_one_enrollment(engine: Salesflow) -> None:
    engine.publish_sequence(task_wait_call())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    e = engine.change_enrollment_owner(e.id, "carla")
    assert (e.owner_id, e.step_owner_id) == ("carla", "ann")
    assert engine.get_lead(lead.id).owner_id == "ann"
    engine.complete_step(e.id, "task")
    simulate(engine, T0 + 3 * DAY)
    assert activity(engine, engine.enrollment(e.id).activity_id).owner_id == "carla"
    engine.disconnect(e.id)
    with pytest.raises(InvalidTransition):
        engine.change_enrollment_owner(e.id, "dan")


# --- the seller closes the activity from the timeline -------------------------------


def test_completing_the_steps_activity_by_hand_completes_the_step(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.publish_sequence(call_then_book())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    clock.advance(timedelta(hours=1))
    engine.complete_activity(e.activity_id, outcome="answered")  # type: ignore[arg-type]
    moved = engine.enrollment(e.id)
    assert moved.current_step == "answered"
    assert moved.call_outcomes == {"call": "answered"}
    assert moved.history[-1].outcome == "answered"
    assert activity(engine, e.activity_id).closed_at == T0 + timedelta(hours=1)
    simulate(engine, T0 + 2 * DAY)
    assert engine.enrollment(e.id).current_step == "book"


def test_canceling_the_steps_activity_by_hand_skips_the_step(engine: Salesflow) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    engine.cancel_activity(e.activity_id)  # type: ignore[arg-type]
    moved = engine.enrollment(e.id)
    assert moved.history[-1].outcome == "skipped"
    simulate(engine, T0 + DAY)
    assert engine.enrollment(e.id).outcome == "no_answer"


def test_closing_other_activities_leaves_the_enrollment_alone(engine: Salesflow) -> None:
    engine.publish_sequence(call_then_book())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    note = engine.add_activity(lead, "task", "Unrelated")
    engine.complete_activity(note.id)
    assert engine.enrollment(e.id) == e
    engine.pause_enrollment(e.id)
    paused = engine.enrollment(e.id)
    engine.complete_activity(e.activity_id, outcome="answered")  # type: ignore[arg-type]
    assert engine.enrollment(e.id) == paused  # a paused enrollment does not move


# --- deactivating -------------------------------------------------------------------


def test_deactivate_exits_every_running_enrollment_of_every_version(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(task_wait_call())
    on_task = engine.connect(new_lead(engine), "s")
    engine.publish_sequence(task_wait_call(days=5))
    waiting = engine.connect(new_lead(engine), "s")
    engine.complete_step(waiting.id, "task")
    paused = engine.connect(new_lead(engine), "s")
    engine.pause_enrollment(paused.id)
    finished = engine.connect(new_lead(engine), "s")
    engine.disconnect(finished.id)
    result = engine.deactivate_sequence("s")
    assert (result.state, result.definition.version, result.active) == ("inactive", 2, False)
    assert (
        ev.DefinitionStateChanged(
            occurred_at=T0, kind="sequence", definition_id="s", state="inactive"
        )
        in sink.events
    )
    for e in (on_task, waiting, paused):
        assert engine.enrollment(e.id).exit_reason is ExitReason.SEQUENCE_DEACTIVATED
    assert engine.enrollment(finished.id).exit_reason is ExitReason.DISCONNECTED
    assert activity(engine, on_task.activity_id).state is ActivityState.CANCELED
    assert engine.due_items() == []
    assert engine.get_sequence("s").state == "inactive"
    # deactivating again changes nothing; activating lets records connect again
    before = len(sink.events)
    assert engine.deactivate_sequence("s") == result
    assert len(sink.events) == before
    assert engine.activate_sequence("s").active
    assert engine.connect(new_lead(engine), "s").sequence_version == 2
    with pytest.raises(NotFound):
        engine.deactivate_sequence("nope")


# --- events -------------------------------------------------------------------------


def test_events_are_published_after_the_commit_one_batch_per_command(clock: FakeClock) -> None:
    snapshot = SnapshotSink()
    engine = make_engine(clock, snapshot)
    snapshot.engine = engine
    engine.publish_sequence(load_template(OUTBOUND))
    lead = new_lead(engine)
    batches = len(snapshot.batches)
    e = engine.connect(lead, OUTBOUND)
    assert len(snapshot.batches) == batches + 1
    events = snapshot.batches[-1]
    assert events[0] == EnrollmentStarted(
        occurred_at=T0,
        enrollment_id=e.id,
        sequence_id=OUTBOUND,
        sequence_version=1,
        record=str(lead.ref),
    )
    started = [x.step_id for x in of_type(events, StepStarted)]  # type: ignore[attr-defined]
    assert started == ["auto_email_introduction", "linkedin_research"]
    (request,) = of_type(events, SendEmailRequested)
    created = [x.activity_id for x in of_type(events, ev.ActivityCreated)]  # type: ignore[attr-defined]
    assert created == [request.activity_id, e.activity_id]  # type: ignore[attr-defined]
    assert events.index(request) > next(
        i for i, x in enumerate(events) if isinstance(x, ev.ActivityCreated)
    )
    assert all(x.occurred_at == T0 for x in events)


def test_the_order_of_a_run_through_waits(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(task_wait_call())
    e = engine.connect(new_lead(engine), "s")
    start = len(sink.events)
    engine.complete_step(e.id, "task")
    simulate(engine, T0 + 3 * DAY)
    engine.complete_step(e.id, "call", outcome="answered")
    sequence_events = [
        (type(x).__name__, getattr(x, "step_id", None), getattr(x, "outcome", None))
        for x in sink.events[start:]
        if not isinstance(x, ev.ActivityCreated | ev.ActivityCompleted)
    ]
    assert sequence_events == [
        ("StepCompleted", "task", "completed"),
        ("StepStarted", "wait", None),
        ("StepCompleted", "wait", "waited"),
        ("StepStarted", "call", None),
        ("StepCompleted", "call", "answered"),
        ("StepStarted", "end", None),
        ("StepCompleted", "end", "done"),
        ("EnrollmentCompleted", None, "done"),
    ]
    times = [x.occurred_at for x in sink.events]
    assert times == sorted(times)


def test_a_refused_command_publishes_nothing(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    before = list(sink.events)
    commands: list[Callable[[], object]] = [
        lambda: engine.complete_step(e.id, "book"),
        lambda: engine.resume_enrollment(e.id),
        lambda: engine.snooze_step(e.id, "call", T0),
        lambda: engine.record_email_event(e.id, "call", "opened"),
    ]
    for command in commands:
        with pytest.raises((InvalidTransition, ValidationError)):
            command()
    assert sink.events == before
    assert engine.enrollment(e.id) == e


# --- due items ----------------------------------------------------------------------


def test_run_due_moves_an_enrollment_whose_wait_ended(
    engine: Salesflow, clock: FakeClock, sink: ListSink
) -> None:
    engine.publish_sequence(task_wait_call())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    e = engine.complete_step(e.id, "task")
    (item,) = engine.due_items(lead)
    assert (item.kind, item.key, item.due_at, item.subject) == (
        STEP_DUE,
        step_due_key(e.id),
        T0 + 3 * DAY,
        lead.ref,
    )
    assert item.payload == {"enrollment_id": e.id}
    clock.set(T0 + 3 * DAY - timedelta(seconds=1))
    assert engine.run_due() == 0
    assert engine.enrollment(e.id) == e
    clock.set(T0 + 3 * DAY + timedelta(hours=1))
    assert engine.run_due() == 1
    moved = engine.enrollment(e.id)
    assert moved.current_step == "call"
    assert moved.history[-1].at == T0 + 3 * DAY + timedelta(hours=1)
    assert activity(engine, moved.activity_id).due_at == T0 + 3 * DAY + timedelta(hours=1)
    assert engine.due_items() == []
    assert engine.run_due() == 0


def test_run_due_processes_many_enrollments(engine: Salesflow, clock: FakeClock) -> None:
    engine.publish_sequence(task_wait_call())
    ids = []
    for _ in range(3):
        e = engine.connect(new_lead(engine), "s")
        engine.complete_step(e.id, "task")
        ids.append(e.id)
    clock.set(T0 + 3 * DAY)
    assert engine.run_due() == 3
    assert {engine.enrollment(i).current_step for i in ids} == {"call"}


def test_a_stale_due_item_changes_nothing(engine: Salesflow, clock: FakeClock) -> None:
    engine.publish_sequence(task_wait_call())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    e = engine.complete_step(e.id, "task")
    # an old item for the same enrollment, due before the wait ends
    engine.schedule_due(STEP_DUE, T0 + DAY, subject=lead, payload={"enrollment_id": e.id})
    engine.schedule_due(STEP_DUE, T0 + DAY, payload={"enrollment_id": "enr-gone"})
    clock.set(T0 + DAY)
    assert engine.run_due() == 2
    assert engine.enrollment(e.id) == e
    assert step_items(engine) == [(step_due_key(e.id), T0 + 3 * DAY)]


# --- automated emails ---------------------------------------------------------------


def test_automated_emails_are_completed_activities_and_send_requests(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(mail_then_watch())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    (mail,) = engine.timeline(lead)
    assert (mail.kind, mail.subject, mail.state) == (
        ActivityKind.EMAIL,
        "Introduction",
        ActivityState.COMPLETED,
    )
    assert (mail.owner_id, mail.due_at, mail.closed_at) == ("ann", T0, T0)
    assert mail.custom["sequence_step"] == "mail"
    (request,) = of_type(sink.events, SendEmailRequested)
    assert request == SendEmailRequested(
        occurred_at=T0,
        enrollment_id=e.id,
        step_id="mail",
        record=str(lead.ref),
        template="intro",
        subject="Introduction",
        owner_id="ann",
        variant=None,
        activity_id=mail.id,
    )
    assert e.history[0].outcome == "sent"
    assert e.activity_id is None  # no manual step yet


def test_an_ab_test_sends_the_variant_of_the_enrollment(engine: Salesflow, sink: ListSink) -> None:
    step = ABTestStep(id="ab", variant_a="tpl_a", variant_b="tpl_b", next="end")
    engine.publish_sequence(seq(step, EndStep(id="end", outcome="sent")))
    seen = set()
    for _ in range(8):
        e = engine.connect(new_lead(engine), "s")
        request = of_type(sink.events, SendEmailRequested)[-1]
        variant = variant_for(step, e.id)
        assert (request.variant, request.template) == (variant, f"tpl_{variant}")  # type: ignore[attr-defined]
        assert request.enrollment_id == e.id  # type: ignore[attr-defined]
        assert activity(engine, request.activity_id).state is ActivityState.COMPLETED  # type: ignore[attr-defined]
        seen.add(variant)
    assert seen == {"a", "b"}


# --- regressions: bugs found while testing the engine ---------------------------------


def test_a_reply_to_a_skipped_email_does_not_take_the_yes_branch(engine: Salesflow) -> None:
    engine.publish_sequence(email_then_reply())
    e = engine.connect(new_lead(engine), "s")
    engine.skip_step(e.id, "mail")
    with contextlib.suppress(InvalidTransition):  # refusing the event is a fix too
        engine.record_email_event(e.id, "mail", "replied")
    simulate(engine, T0 + 2 * DAY)
    assert engine.enrollment(e.id).outcome == "silent"


def test_changing_the_lead_owner_by_update_hands_later_steps_over(engine: Salesflow) -> None:
    engine.publish_sequence(task_wait_call())
    lead = new_lead(engine)
    e = engine.connect(lead, "s")
    engine.update_lead(lead.id, owner_id="bob")
    assert engine.get_lead(lead.id).owner_id == "bob"
    assert engine.enrollment(e.id).owner_id == "bob"


def test_resuming_a_snoozed_step_keeps_its_activity_in_line(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.publish_sequence(call_then_book())
    e = engine.connect(new_lead(engine), "s")
    engine.snooze_step(e.id, "call", T0 + 2 * DAY)
    clock.advance(DAY)
    engine.pause_enrollment(e.id)
    clock.advance(3 * DAY)
    e = engine.resume_enrollment(e.id)
    assert e.due_at == T0 + 5 * DAY
    assert activity(engine, e.activity_id).due_at == e.due_at


def test_an_advance_to_a_deactivated_sequence_does_not_strand_the_enrollment(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(task_wait_call(id="b"))
    engine.publish_sequence(
        seq(
            WaitStep(id="wait", span=Span(days=1), next="go"),
            AdvanceStep(id="go", sequence_id="b"),
            id="a",
        )
    )
    engine.deactivate_sequence("b")
    e = engine.connect(new_lead(engine), "a")
    simulate(engine, T0 + 2 * DAY)
    ended = engine.enrollment(e.id)
    assert ended.ended
    assert ended.exit_reason is ExitReason.ERROR
    assert engine.due_items() == []
    (failed,) = [x for x in sink.events if isinstance(x, SequenceAdvanceFailed)]
    assert failed.sequence_id == "b"
    assert "inactive" in failed.error


def test_the_diagram_of_an_enrollment_highlights_where_it_stands(engine: Salesflow) -> None:
    engine.publish_sequence(load_template("high_volume_outbound_prospecting"))
    e = engine.connect(new_lead(engine), "high_volume_outbound_prospecting")
    diagram = engine.sequence_diagram(e.id)
    assert diagram.startswith("flowchart TD\n")
    classes = [line.strip() for line in diagram.splitlines() if line.strip().startswith("class ")]
    assert len([c for c in classes if c.endswith(" current")]) == 1
    assert len([c for c in classes if c.endswith(" done")]) == 1  # the introduction email
    with pytest.raises(NotFound):
        engine.sequence_diagram("nope")


def test_contacts_and_accounts_close_by_becoming_inactive(engine: Salesflow) -> None:
    engine.publish_sequence(
        seq(
            ActivityStep(id="call", kind="call", subject="Call", next="off"),
            SetStatusStep(id="off", status="inactive", next="end"),
            EndStep(id="end", outcome="retired"),
            id="retire",
            record_type="contact",
        )
    )
    engine.publish_sequence(task_wait_call(id="other", record_type="contact"))
    contact = engine.create_contact(last_name="Kim")
    other = engine.connect(contact, "other")
    retire = engine.connect(contact, "retire")
    done = engine.complete_step(retire.id, "call", outcome="answered")
    assert done.outcome == "retired"
    assert engine.get(Contact, contact.id).active is False
    assert engine.enrollment(other.id).exit_reason is ExitReason.RECORD_CLOSED
    with pytest.raises(InvalidTransition, match="inactive"):
        engine.connect(contact, "other")
    account = engine.create_account(name="Contoso")
    engine.publish_sequence(task_wait_call(id="acc", record_type="account"))
    running = engine.connect(account, "acc")
    engine.update_account(account.id, active=False)
    assert engine.enrollment(running.id).exit_reason is ExitReason.RECORD_CLOSED
