"""The sequence runtime: each pure function on small hand-made graphs and the templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from salesflow.conditions import field
from salesflow.errors import InvalidDefinition, InvalidTransition, ValidationError
from salesflow.sequences import runtime as rt
from salesflow.sequences.definition import (
    ABTestStep,
    ActivityStep,
    AdvanceStep,
    CallWatch,
    ConditionStep,
    EmailWatch,
    EndStep,
    FieldWatch,
    SequenceDefinition,
    SetStatusStep,
    Span,
    Step,
    StepKind,
    UpdateFieldStep,
    WaitStep,
)
from salesflow.sequences.enrollment import (
    Advance,
    AdvanceTo,
    CancelActivity,
    CompleteActivity,
    CreateActivity,
    Enrollment,
    EnrollmentLifecycle,
    EnrollmentStatus,
    ExitReason,
    RescheduleActivity,
    RuntimeConfig,
    Schedule,
    SendEmail,
    SetField,
    SetStatus,
    StaticFacts,
    Unschedule,
    move,
)
from salesflow.sequences.templates import TEMPLATES, load_template
from salesflow.sequences.validation import stats
from salesflow.values import RecordRef
from salesflow.worktime import OrganizationCalendar

T0 = datetime(2024, 3, 4, 9, tzinfo=UTC)  # a Monday

OUTBOUND = load_template("high_volume_outbound_prospecting")


def seq(*steps: Step, entry: str | None = None, **options: object) -> SequenceDefinition:
    return SequenceDefinition(
        id="s",
        name="Test",
        record_type="lead",
        entry=entry or steps[0].id,
        steps=list(steps),
        **options,  # type: ignore[arg-type]
    )


def begin(definition: SequenceDefinition, now: datetime = T0, **kw: object) -> Advance:
    return rt.start(
        definition,
        enrollment_id="e-1",
        record=RecordRef(kind=definition.record_type, id="r-1"),
        owner_id="ann",
        now=now,
        **kw,  # type: ignore[arg-type]
    )


def is_manual(definition: SequenceDefinition, enrollment: Enrollment) -> bool:
    step = definition.by_id[enrollment.current_step or ""]
    return isinstance(step, ActivityStep) and step.kind.manual


def drive(
    definition: SequenceDefinition,
    outcomes: list[str] | None = None,
    *,
    now: datetime = T0,
) -> tuple[Enrollment, datetime, list[object]]:
    """Run to the end: manual steps completed at once (calls with ``outcomes`` in
    order, then ``no_answer``), due times jumped to."""
    outcomes = list(outcomes or [])
    advance = begin(definition, now)
    actions: list[object] = list(advance.actions)
    e = advance.enrollment
    for _ in range(200):
        if e.ended:
            break
        if is_manual(definition, e):
            step = definition.by_id[e.current_step or ""]
            result = None
            if isinstance(step, ActivityStep) and step.kind is StepKind.CALL:
                result = outcomes.pop(0) if outcomes else "no_answer"
            advance = rt.complete_step(definition, e, step.id, now, outcome=result)
        else:
            assert e.due_at is not None
            now = e.due_at
            advance = rt.on_due(definition, e, now, facts=StaticFacts())
        actions += advance.actions
        e = advance.enrollment
    return e, now, actions


# --- the lifecycle -------------------------------------------------------------------


def test_the_transition_table_comes_from_the_lifecycle_class() -> None:
    assert move("active", "pause", what="x") is EnrollmentStatus.PAUSED
    assert move("paused", "exit", what="x") is EnrollmentStatus.EXITED
    with pytest.raises(InvalidTransition, match="cannot resume while active"):
        move("active", "resume", what="x")
    with pytest.raises(InvalidTransition, match="it has ended"):
        move("completed", "exit", what="x")
    assert {s.value for s in EnrollmentLifecycle.states} == {s.value for s in EnrollmentStatus}


# --- start and automated steps -------------------------------------------------------


def test_outbound_start_sends_the_email_at_once_and_opens_the_linkedin_research() -> None:
    advance = begin(OUTBOUND)
    e = advance.enrollment
    assert e.version == 1
    assert e.status is EnrollmentStatus.ACTIVE
    assert e.current_step == "linkedin_research"
    assert e.due_at == T0
    send, create = advance.actions
    assert isinstance(send, SendEmail)
    assert send.template == "outbound_introduction"
    assert isinstance(create, CreateActivity)
    assert create.kind is StepKind.LINKEDIN
    assert create.owner_id == "ann"
    assert create.due_at == T0
    assert [h.outcome for h in e.history] == ["sent"]


def test_start_refuses_a_record_of_another_type() -> None:
    with pytest.raises(ValidationError, match="runs on lead records"):
        rt.start(
            OUTBOUND,
            enrollment_id="e",
            record=RecordRef(kind="contact", id="c"),
            owner_id=None,
            now=T0,
        )


def test_start_refuses_a_naive_time() -> None:
    with pytest.raises(ValidationError):
        begin(OUTBOUND, datetime(2024, 3, 4, 9))


def test_automated_steps_run_until_a_wait_and_schedule_it() -> None:
    d = seq(
        UpdateFieldStep(id="u", field="rating", value="hot", next="s"),
        SetStatusStep(id="s", status="qualified", next="w"),
        WaitStep(id="w", span=Span(days=2), next="end"),
        EndStep(id="end", outcome="done"),
    )
    advance = begin(d)
    assert advance.actions == (
        SetField(step_id="u", field="rating", value="hot"),
        SetStatus(step_id="s", status="qualified", reason=None),
        Schedule(due_at=T0 + timedelta(days=2)),
    )
    done = rt.on_due(d, advance.enrollment, T0 + timedelta(days=2))
    assert done.enrollment.status is EnrollmentStatus.COMPLETED
    assert done.enrollment.outcome == "done"
    assert Unschedule() in done.actions


def test_an_early_or_stale_due_call_changes_nothing() -> None:
    d = seq(WaitStep(id="w", span=Span(days=1), next="end"), EndStep(id="end", outcome="x"))
    e = begin(d).enrollment
    same = rt.on_due(d, e, T0 + timedelta(hours=1))
    assert same.enrollment is e
    assert same.actions == ()


def test_advance_to_sequence_exits_with_its_reason() -> None:
    d = seq(
        ActivityStep(id="a", kind="auto_email", subject="Hi", next="adv"),
        AdvanceStep(id="adv", sequence_id="other"),
    )
    advance = begin(d)
    assert advance.enrollment.exit_reason is ExitReason.ADVANCED_TO_SEQUENCE
    assert AdvanceTo(step_id="adv", sequence_id="other") in advance.actions


def test_a_loop_without_a_wait_hits_the_step_budget() -> None:
    d = seq(
        UpdateFieldStep(id="a", field="f", value="v", next="b"),
        UpdateFieldStep(id="b", field="f", value="w", next="a"),
    )
    with pytest.raises(InvalidDefinition, match="loops without a wait"):
        begin(d, config=RuntimeConfig(max_steps=50))


def test_the_wrong_definition_version_is_refused() -> None:
    e = begin(OUTBOUND).enrollment
    import attrs

    other = attrs.evolve(OUTBOUND, version=2)
    with pytest.raises(ValidationError, match="runs version 1"):
        rt.complete_step(other, e, "linkedin_research", T0)


# --- the outbound template's paths --------------------------------------------------


def test_outbound_call_answered_books_the_meeting() -> None:
    e, now, _actions = drive(OUTBOUND, ["answered"])
    assert e.status is EnrollmentStatus.COMPLETED
    assert e.outcome == "meeting_booked"
    assert now == T0 + timedelta(days=2)  # the first call's limit elapses in full
    assert e.history[-1].step_id == "meeting_booked_first_call"


def test_outbound_answered_on_the_second_call() -> None:
    e, now, _ = drive(OUTBOUND, ["no_answer", "answered"])
    assert e.outcome == "meeting_booked"
    assert e.history[-1].step_id == "meeting_booked_second_call"
    assert now == T0 + timedelta(days=6)


def test_outbound_never_answers_disqualifies_on_day_nine() -> None:
    e, now, actions = drive(OUTBOUND)
    assert e.outcome == "disqualified"
    assert now - T0 == stats(OUTBOUND).longest == timedelta(days=9)
    statuses = [a for a in actions if isinstance(a, SetStatus)]
    assert statuses == [
        SetStatus(step_id="disqualify", status="disqualified", reason="cannot_contact")
    ]
    created = [a.step_id for a in actions if isinstance(a, CreateActivity)]
    assert created == ["linkedin_research", "call_first", "call_second", "call_final"]


def test_the_answered_outcomes_are_configurable() -> None:
    e = begin(OUTBOUND).enrollment
    e = rt.complete_step(OUTBOUND, e, "linkedin_research", T0).enrollment
    config = RuntimeConfig(answered={"answered", "left_voicemail_called_back"})
    e = rt.complete_step(
        OUTBOUND, e, "call_first", T0, outcome="left_voicemail_called_back", config=config
    ).enrollment
    done = rt.on_due(OUTBOUND, e, T0 + timedelta(days=2), config=config)
    assert done.enrollment.current_step == "linkedin_connect"


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_runs_to_an_end_within_its_longest_duration(name: str) -> None:
    d = load_template(name)
    e, now, _ = drive(d)
    assert e.ended
    assert now - T0 <= stats(d).longest


# --- complete, skip, snooze ----------------------------------------------------------


def test_complete_step_refuses_a_step_that_is_not_current() -> None:
    e = begin(OUTBOUND).enrollment
    with pytest.raises(InvalidTransition, match="current step is 'linkedin_research'"):
        rt.complete_step(OUTBOUND, e, "call_first", T0)


def test_complete_step_records_the_activity_and_the_owner() -> None:
    e = begin(OUTBOUND).enrollment
    advance = rt.complete_step(OUTBOUND, e, "linkedin_research", T0 + timedelta(hours=1))
    assert advance.actions[0] == CompleteActivity(step_id="linkedin_research", outcome=None)
    assert advance.enrollment.history[-1].owner_id == "ann"
    assert e.current_step == "linkedin_research"  # the input is untouched


def test_skipping_a_watched_call_takes_the_no_branch() -> None:
    e = begin(OUTBOUND).enrollment
    e = rt.complete_step(OUTBOUND, e, "linkedin_research", T0).enrollment
    skipped = rt.skip_step(OUTBOUND, e, "call_first", T0)
    assert CancelActivity(step_id="call_first") in skipped.actions
    after = rt.on_due(OUTBOUND, skipped.enrollment, T0 + timedelta(days=2))
    assert after.enrollment.history[-2].outcome == "no"
    assert after.enrollment.current_step == "wait_three_days"


def test_a_skipped_task_is_canceled() -> None:
    d = seq(
        ActivityStep(id="t", kind="task", subject="Do it", next="end"),
        EndStep(id="end", outcome="x"),
    )
    advance = rt.skip_step(d, begin(d).enrollment, "t", T0)
    assert advance.actions[0] == CancelActivity(step_id="t")
    assert advance.enrollment.history[0].outcome == "skipped"


def test_snooze_moves_a_call_to_a_later_time_only() -> None:
    e = begin(OUTBOUND).enrollment
    e = rt.complete_step(OUTBOUND, e, "linkedin_research", T0).enrollment
    later = T0 + timedelta(hours=3)
    advance = rt.snooze(OUTBOUND, e, "call_first", later, T0)
    assert advance.enrollment.due_at == later
    assert advance.actions == (RescheduleActivity(step_id="call_first", due_at=later),)
    with pytest.raises(ValidationError, match="later time"):
        rt.snooze(OUTBOUND, advance.enrollment, "call_first", later, T0)


def test_snooze_is_refused_for_tasks_and_automated_steps() -> None:
    d = seq(
        ActivityStep(id="t", kind="task", subject="Do it", next="w"),
        WaitStep(id="w", span=Span(days=1), next="end"),
        EndStep(id="end", outcome="x"),
    )
    e = begin(d).enrollment
    with pytest.raises(InvalidTransition, match="tasks cannot be snoozed"):
        rt.snooze(d, e, "t", T0 + timedelta(days=1), T0)
    e = rt.complete_step(d, e, "t", T0).enrollment
    with pytest.raises(InvalidTransition, match="runs by itself"):
        rt.snooze(d, e, "w", T0 + timedelta(days=3), T0)


# --- conditions ----------------------------------------------------------------------


def email_condition(**kw: object) -> SequenceDefinition:
    return seq(
        ActivityStep(id="mail", kind="auto_email", subject="Hi", next="c"),
        ConditionStep(
            id="c",
            watch=EmailWatch(events=kw.pop("events", ["opened"]), match=kw.pop("match", "any")),
            within=Span(days=2),
            yes="yes",
            no="no",
            **kw,  # type: ignore[arg-type]
        ),
        EndStep(id="yes", outcome="engaged"),
        EndStep(id="no", outcome="silent"),
    )


def test_an_email_condition_waits_the_whole_limit_by_default() -> None:
    d = email_condition()
    e = begin(d).enrollment
    opened = rt.record_email_event(d, e, "mail", "opened", T0 + timedelta(hours=1))
    assert opened.enrollment.current_step == "c"
    assert opened.actions == ()
    done = rt.on_due(d, opened.enrollment, T0 + timedelta(days=2))
    assert done.enrollment.outcome == "engaged"


def test_advance_early_moves_on_as_soon_as_the_event_happens() -> None:
    d = email_condition(advance_early=True)
    e = begin(d).enrollment
    opened = rt.record_email_event(d, e, "mail", "opened", T0 + timedelta(hours=1))
    assert opened.enrollment.outcome == "engaged"
    assert Unschedule() in opened.actions


def test_no_event_within_the_limit_takes_the_no_branch() -> None:
    d = email_condition()
    done = rt.on_due(d, begin(d).enrollment, T0 + timedelta(days=2))
    assert done.enrollment.outcome == "silent"


def test_all_of_needs_every_event() -> None:
    d = email_condition(events=["opened", "replied"], match="all")
    e = rt.record_email_event(d, begin(d).enrollment, "mail", "opened", T0).enrollment
    assert rt.on_due(d, e, T0 + timedelta(days=2)).enrollment.outcome == "silent"
    e = rt.record_email_event(d, e, "mail", "replied", T0).enrollment
    assert rt.on_due(d, e, T0 + timedelta(days=2)).enrollment.outcome == "engaged"


def test_exit_on_reply_ends_the_enrollment() -> None:
    d = seq(*email_condition().steps, exit_on_reply=True)
    advance = rt.record_email_event(d, begin(d).enrollment, "mail", "replied", T0)
    assert advance.enrollment.exit_reason is ExitReason.CUSTOMER_REPLIED
    late = rt.record_email_event(d, advance.enrollment, "mail", "opened", T0)
    assert late.enrollment is advance.enrollment


def test_email_events_need_a_sent_email_step() -> None:
    d = email_condition()
    e = begin(d).enrollment
    with pytest.raises(ValidationError, match="no email step"):
        rt.record_email_event(d, e, "c", "opened", T0)
    with pytest.raises(ValidationError, match="not an email event"):
        rt.record_email_event(d, e, "mail", "bounced", T0)


def test_field_conditions_ask_the_engines_facts() -> None:
    d = seq(
        ConditionStep(
            id="c",
            watch=FieldWatch(condition=field("rating").eq("hot")),
            yes="yes",
            no="no",
        ),
        EndStep(id="yes", outcome="hot"),
        EndStep(id="no", outcome="cold"),
    )
    hot = begin(d, facts=StaticFacts(fields={"rating": "hot"}))
    assert hot.enrollment.outcome == "hot"
    assert begin(d, facts=StaticFacts()).enrollment.outcome == "cold"
    with pytest.raises(ValidationError, match="pass facts"):
        begin(d)


def test_a_call_condition_with_named_outcomes() -> None:
    d = seq(
        ActivityStep(id="call", kind="call", subject="Call", next="c"),
        ConditionStep(
            id="c", watch=CallWatch(outcomes=["busy"]), within=Span(hours=1), yes="y", no="n"
        ),
        EndStep(id="y", outcome="busy"),
        EndStep(id="n", outcome="other"),
    )
    e = rt.complete_step(d, begin(d).enrollment, "call", T0, outcome="busy").enrollment
    assert rt.on_due(d, e, T0 + timedelta(hours=1)).enrollment.outcome == "busy"


# --- pause, resume, exit, owner ------------------------------------------------------


def test_pause_and_resume_keep_the_remaining_wait() -> None:
    d = seq(WaitStep(id="w", span=Span(days=3), next="end"), EndStep(id="end", outcome="x"))
    e = begin(d).enrollment
    paused = rt.pause(d, e, T0 + timedelta(days=1))
    assert paused.enrollment.paused_remaining == timedelta(days=2)
    assert paused.enrollment.due_at is None
    assert paused.actions == (Unschedule(),)
    resumed = rt.resume(d, paused.enrollment, T0 + timedelta(days=10))
    assert resumed.enrollment.due_at == T0 + timedelta(days=12)
    assert resumed.actions == (Schedule(due_at=T0 + timedelta(days=12)),)
    with pytest.raises(InvalidTransition):
        rt.resume(d, resumed.enrollment, T0)


def test_a_paused_enrollment_cannot_complete_steps() -> None:
    e = rt.pause(OUTBOUND, begin(OUTBOUND).enrollment, T0).enrollment
    with pytest.raises(InvalidTransition, match="resume it first"):
        rt.complete_step(OUTBOUND, e, "linkedin_research", T0)


def test_exit_cancels_the_open_step_and_records_the_reason() -> None:
    e = begin(OUTBOUND).enrollment
    advance = rt.exit_enrollment(OUTBOUND, e, "record_qualified", T0)
    assert advance.enrollment.status is EnrollmentStatus.EXITED
    assert advance.enrollment.exit_reason is ExitReason.RECORD_QUALIFIED
    assert advance.actions == (CancelActivity(step_id="linkedin_research"),)
    with pytest.raises(InvalidTransition):
        rt.exit_enrollment(OUTBOUND, advance.enrollment, "disconnected", T0)
    with pytest.raises(ValidationError, match="not an exit reason"):
        rt.exit_enrollment(OUTBOUND, e, "bored", T0)


def test_owner_change_keeps_the_current_step_with_the_old_owner() -> None:
    e = begin(OUTBOUND).enrollment
    e = rt.change_owner(OUTBOUND, e, "bob", T0).enrollment
    assert rt.up_next(OUTBOUND, e).current.owner_id == "ann"  # type: ignore[union-attr]
    advance = rt.complete_step(OUTBOUND, e, "linkedin_research", T0)
    assert advance.enrollment.history[-1].owner_id == "ann"
    create = next(a for a in advance.actions if isinstance(a, CreateActivity))
    assert create.step_id == "call_first"
    assert create.owner_id == "bob"


# --- up next, calendars, A/B ---------------------------------------------------------


def test_up_next_shows_the_current_step_and_both_branches() -> None:
    e = begin(OUTBOUND).enrollment
    e = rt.complete_step(OUTBOUND, e, "linkedin_research", T0).enrollment
    e = rt.complete_step(OUTBOUND, e, "call_first", T0, outcome="no_answer").enrollment
    view = rt.up_next(OUTBOUND, e)
    assert view.current is not None
    assert view.current.step_id == "answered_first_call"
    assert {(p.branch, p.step_id) for p in view.upcoming} == {
        ("yes", "linkedin_connect"),
        ("no", "auto_email_follow_up"),
    }
    assert (
        rt.up_next(OUTBOUND, rt.exit_enrollment(OUTBOUND, e, "disconnected", T0).enrollment).current
        is None
    )


def test_up_next_looks_through_waits() -> None:
    d = seq(
        ActivityStep(id="t", kind="task", subject="Do it", next="w"),
        WaitStep(id="w", span=Span(days=3), next="call"),
        ActivityStep(id="call", kind="call", subject="Call", next="end"),
        EndStep(id="end", outcome="x"),
    )
    (preview,) = rt.up_next(d, begin(d).enrollment).upcoming
    assert preview.step_id == "call"
    assert preview.due_at == T0 + timedelta(days=3)


def wednesday_call(**options: object) -> SequenceDefinition:
    return seq(
        ActivityStep(id="mail", kind="email", subject="Mail", next="w"),
        WaitStep(id="w", span=Span(days=3), next="call"),
        ActivityStep(id="call", kind="call", subject="Call", next="end"),
        EndStep(id="end", outcome="x"),
        **options,
    )


def test_worked_example_call_on_monday_with_calendar_scheduling() -> None:
    wednesday = datetime(2024, 3, 6, 10, tzinfo=UTC)
    d = wednesday_call(skip_non_working_time=True)
    e = rt.complete_step(d, begin(d, wednesday).enrollment, "mail", wednesday).enrollment
    assert e.due_at is not None
    assert e.due_at.strftime("%A %H:%M") == "Monday 08:00"


def test_worked_example_call_on_tuesday_when_waits_count_working_days() -> None:
    wednesday = datetime(2024, 3, 6, 14, tzinfo=UTC)
    d = wednesday_call(skip_non_working_time=True)
    config = RuntimeConfig(calendars=OrganizationCalendar(), count_working_days=True)
    e = begin(d, wednesday, config=config).enrollment
    e = rt.complete_step(d, e, "mail", wednesday, config=config).enrollment
    assert e.due_at is not None
    assert e.due_at.strftime("%A") == "Tuesday"


def test_ab_test_variant_is_a_stable_split() -> None:
    step = ABTestStep(id="ab", variant_a="A", variant_b="B", split_percent=30)
    variants = [rt.variant_for(step, f"e-{i}") for i in range(1000)]
    assert variants == [rt.variant_for(step, f"e-{i}") for i in range(1000)]
    assert 200 < variants.count("a") < 400
