"""Business process flows (R2.5): definitions, the generic moves, the two standard flows,
JSON and Mermaid."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from salesflow.errors import InvalidDefinition, InvalidTransition, ValidationError
from salesflow.process import (
    ProblemCode,
    ProcessFlow,
    Stage,
    StageStep,
    require_valid,
    validate,
)
from salesflow.process_io import dumps_json, from_dict, loads_json, to_dict
from salesflow.process_render import mermaid
from salesflow.process_runtime import (
    ChangeReason,
    FlowState,
    ProcessContinued,
    ProcessStarted,
    ProcessSwitched,
    StageChanged,
    StepChecked,
    check,
    continue_on,
    is_set,
    jump,
    missing_steps,
    next_stage,
    previous_stage,
    start,
    switch_flow,
)
from salesflow.process_standard import (
    AUTOMATED_MARKETING_QUALIFICATION,
    CLOSE,
    DEVELOP,
    INQUIRY,
    LEAD_TO_OPPORTUNITY,
    MARKETING_LEAD_PROCESS,
    PROPOSE,
    QUALIFY,
    SALES_ACCEPTANCE,
    SALES_ACCEPTED,
    SALES_READY,
    TELEPROSPECT_ACCEPTED,
    TELEPROSPECTING_ACCEPTANCE,
    TELEPROSPECTING_QUALIFICATION,
    TELEPROSPECTING_READY,
    MarketingSettings,
    SalesAccepted,
    accept_for_sales,
    accept_teleprospect,
    mark_teleprospecting_ready,
    marketing_problems,
    on_first_score,
    on_lead_qualified,
    on_sales_ready,
)
from salesflow.values import RecordKind, RecordRef

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEAD = RecordRef(kind=RecordKind.LEAD, id="lead-1")
OPPORTUNITY = RecordRef(kind=RecordKind.OPPORTUNITY, id="opportunity-1")
MARKETING = MARKETING_LEAD_PROCESS
SALES = LEAD_TO_OPPORTUNITY


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def simple_flow(**changes: object) -> ProcessFlow:
    """Three lead stages: a needs the field ``email`` and the box ``ok``; b may jump to a."""
    stages = [
        Stage(
            id="a",
            name="A",
            steps=[
                StageStep(id="email", label="Email", kind="field"),
                StageStep(id="ok", label="OK", kind="checkbox"),
                StageStep(id="maybe", label="Maybe", kind="checkbox", required=False),
            ],
            jumps_to=["c"],
        ),
        Stage(id="b", name="B", steps=[StageStep(id="b_ok", label="B ok", kind="checkbox")]),
        Stage(id="c", name="C", jumps_to=["a"]),
    ]
    values: dict[str, object] = {"id": "simple", "name": "Simple", "record_type": "lead"}
    values["stages"] = stages
    values.update(changes)
    return ProcessFlow(**values)  # type: ignore[arg-type]


def consistent(state: FlowState) -> bool:
    history = state.history
    return (
        history[0].from_stage is None
        and all(b.from_stage == a.to_stage for a, b in itertools.pairwise(history))
        and history[-1].to_stage == state.stage
    )


# --- definitions and validation ----------------------------------------------------


def test_standard_flows_are_valid() -> None:
    assert validate(SALES) == []
    assert validate(MARKETING) == []
    assert marketing_problems(MARKETING) == []
    assert [s.name for s in SALES.stages] == ["Qualify", "Develop", "Propose", "Close"]
    assert [s.name for s in MARKETING.stages] == [
        "Inquiry",
        "Automated marketing qualification",
        "Teleprospecting acceptance",
        "Teleprospecting qualification",
        "Sales acceptance",
    ]
    assert SALES.record_type_of(SALES.stage(QUALIFY)) is RecordKind.LEAD
    assert SALES.record_type_of(SALES.stage(DEVELOP)) is RecordKind.OPPORTUNITY


def test_validate_reports_every_problem() -> None:
    flow = ProcessFlow(
        id="bad",
        name="Bad",
        record_type="lead",
        stages=[
            Stage(
                id="a",
                name="A",
                steps=[StageStep(id="x", label="X", kind="checkbox")],
                jumps_to=["a", "nowhere", "o"],
            ),
            Stage(id="a", name="A again", steps=[StageStep(id="x", label="X", kind="checkbox")]),
            Stage(id="o", name="O", record_type="opportunity"),
            Stage(id="back", name="Back on the lead", record_type="lead"),
        ],
    )
    codes = [p.code for p in validate(flow)]
    assert codes == [
        ProblemCode.DUPLICATE_STAGE,
        ProblemCode.DUPLICATE_STEP,
        ProblemCode.RECORD_TYPE_RETURNS,
        ProblemCode.JUMP_TO_SELF,
        ProblemCode.MISSING_JUMP_TARGET,
        ProblemCode.JUMP_ACROSS_RECORDS,
    ]
    with pytest.raises(InvalidDefinition) as info:
        require_valid(flow)
    assert len(info.value.problems) == 6
    assert "'nowhere', which does not exist" in str(info.value)


def test_validate_empty_flow_and_first_stage_type() -> None:
    assert [p.code for p in validate(simple_flow(stages=[]))] == [ProblemCode.NO_STAGES]
    flow = simple_flow(stages=[Stage(id="o", name="O", record_type="opportunity")])
    assert [p.code for p in validate(flow)] == [ProblemCode.FIRST_STAGE_RECORD_TYPE]


def test_field_may_repeat_on_another_record_type_but_a_checkbox_may_not() -> None:
    field = StageStep(id="description", label="Summary", kind="field")
    box = StageStep(id="done", label="Done", kind="checkbox")
    ok = simple_flow(
        stages=[
            Stage(id="q", name="Q", steps=[field, box]),
            Stage(id="d", name="D", record_type="opportunity", steps=[field]),
        ]
    )
    assert validate(ok) == []
    bad = simple_flow(
        stages=[
            Stage(id="q", name="Q", steps=[box]),
            Stage(id="d", name="D", record_type="opportunity", steps=[box]),
        ]
    )
    assert [p.code for p in validate(bad)] == [ProblemCode.DUPLICATE_STEP]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: StageStep(id="", label="X", kind="field"), "StageStep.id"),
        (lambda: StageStep(id="x", label="X", kind="radio"), "StageStep.kind"),
        (lambda: StageStep(id="x", label="X", kind="field", required=1), "StageStep.required"),
        (lambda: Stage(id="s", name=" "), "Stage.name"),
        (lambda: Stage(id="s", name="S", steps="x"), "Stage.steps"),
        (lambda: Stage(id="s", name="S", record_type="activity"), "Stage.record_type"),
        (lambda: simple_flow(version=0), "ProcessFlow.version"),
        (lambda: simple_flow(record_type="activity"), "ProcessFlow.record_type"),
        (lambda: simple_flow(stages=["a"]), "ProcessFlow.stages"),
    ],
)
def test_bad_values_are_refused_when_built(make: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        make()  # type: ignore[operator]
    assert info.value.field == field


def test_lookups_name_what_exists() -> None:
    with pytest.raises(ValidationError, match="its stages are 'a', 'b', 'c'"):
        simple_flow().stage("zzz")
    with pytest.raises(ValidationError, match="no step 'zzz'"):
        simple_flow().step("zzz")
    assert simple_flow().index("c") == 2


# --- the generic moves -------------------------------------------------------------


def test_start_puts_the_record_on_the_first_stage() -> None:
    outcome = start(simple_flow(), LEAD, by="u1", now=T0)
    state = outcome.state
    assert (state.stage, state.flow_id, state.flow_version, state.record) == (
        "a",
        "simple",
        1,
        LEAD,
    )
    assert state.checked == frozenset()
    assert len(state.history) == 1
    assert state.history[0].from_stage is None
    assert state.history[0].reason is ChangeReason.STARTED
    assert outcome.events == (
        ProcessStarted(
            occurred_at=T0, flow_id="simple", flow_version=1, record=LEAD, stage="a", by="u1"
        ),
    )


def test_start_refusals() -> None:
    with pytest.raises(ValidationError, match="runs on lead records"):
        start(simple_flow(), OPPORTUNITY, by=None, now=T0)
    with pytest.raises(InvalidDefinition):
        start(simple_flow(stages=[]), LEAD, by=None, now=T0)
    with pytest.raises(ValidationError, match="timezone-aware"):
        start(simple_flow(), LEAD, by=None, now=datetime(2026, 3, 2))
    with pytest.raises(ValidationError, match="user id"):
        start(simple_flow(), LEAD, by="", now=T0)


def test_next_stage_names_every_missing_required_step() -> None:
    flow = simple_flow()
    state = start(flow, LEAD, by="u1", now=T0).state
    with pytest.raises(InvalidTransition) as info:
        next_stage(flow, state, {"email": "  "}, by="u1", now=at(1))
    message = str(info.value)
    assert "'Email' (set the field 'email')" in message
    assert "'OK' (tick)" in message
    assert "Maybe" not in message  # optional steps are not asked for
    assert info.value.state == "a"
    assert info.value.event == "next"

    state = check(flow, state, "ok", True, by="u1", now=at(2)).state
    outcome = next_stage(flow, state, {"email": "a@example.com"}, by="u2", now=at(3))
    assert outcome.state.stage == "b"
    change = outcome.state.history[-1]
    assert (change.from_stage, change.to_stage, change.by, change.at) == ("a", "b", "u2", at(3))
    assert change.reason is ChangeReason.NEXT
    assert outcome.events == (
        StageChanged(
            occurred_at=at(3),
            flow_id="simple",
            flow_version=1,
            record=LEAD,
            from_stage="a",
            to_stage="b",
            by="u2",
            reason=ChangeReason.NEXT,
        ),
    )


def test_next_from_the_last_stage_and_back_from_the_first_are_refused() -> None:
    flow = simple_flow()
    state = start(flow, LEAD, by=None, now=T0).state
    with pytest.raises(InvalidTransition, match="first stage"):
        previous_stage(flow, state, by=None, now=T0)
    state = jump(flow, state, "c", by="u1", now=at(1)).state
    with pytest.raises(InvalidTransition, match="last stage"):
        next_stage(flow, state, {}, by=None, now=at(2))


def test_back_follows_the_flow_order_and_keeps_checkboxes() -> None:
    flow = simple_flow()
    state = start(flow, LEAD, by=None, now=T0).state
    state = check(flow, state, "ok", True, by="u1", now=at(1)).state
    state = jump(flow, state, "c", by="u1", now=at(2)).state
    state = previous_stage(flow, state, by="u1", now=at(3)).state
    assert state.stage == "b"  # the stage before c, though the record never was on b
    assert state.history[-1].reason is ChangeReason.BACK
    assert "ok" in state.checked
    assert consistent(state)


def test_jump_only_where_allowed() -> None:
    flow = simple_flow()
    state = start(flow, LEAD, by=None, now=T0).state
    with pytest.raises(InvalidTransition, match="it may jump to 'c'"):
        jump(flow, state, "b", by="u1", now=at(1))
    # A jump does not ask for the current stage's steps.
    state = jump(flow, state, "c", by="u1", now=at(1)).state
    assert state.stage == "c"
    state = jump(flow, state, "a", by="u1", now=at(2)).state
    assert state.stage == "a"
    state = check(flow, state, "ok", True, by="u1", now=at(3)).state
    state = next_stage(flow, state, {"email": "x@example.com"}, by="u1", now=at(4)).state
    with pytest.raises(InvalidTransition, match="allows no jumps"):
        jump(flow, state, "a", by="u1", now=at(5))


def test_check_ticks_and_clears_only_reached_checkboxes() -> None:
    flow = simple_flow()
    state = start(flow, LEAD, by=None, now=T0).state
    with pytest.raises(InvalidTransition, match="comes after the current stage"):
        check(flow, state, "b_ok", True, by="u1", now=at(1))
    with pytest.raises(InvalidTransition, match="setting the record's field 'email'"):
        check(flow, state, "email", True, by="u1", now=at(1))
    with pytest.raises(ValidationError, match="no step"):
        check(flow, state, "nope", True, by="u1", now=at(1))
    with pytest.raises(ValidationError, match="True"):
        check(flow, state, "ok", 1, by="u1", now=at(1))  # type: ignore[arg-type]

    ticked = check(flow, state, "ok", True, by="u1", now=at(1))
    assert ticked.state.checked == {"ok"}
    assert ticked.events == (
        StepChecked(
            occurred_at=at(1), flow_id="simple", record=LEAD, step_id="ok", value=True, by="u1"
        ),
    )
    again = check(flow, ticked.state, "ok", True, by="u1", now=at(2))
    assert again.state is ticked.state
    assert again.events == ()
    assert not again.changed
    moved = jump(flow, ticked.state, "c", by="u1", now=at(3)).state
    cleared = check(flow, moved, "ok", False, by="u1", now=at(4))  # an earlier stage's box
    assert cleared.state.checked == frozenset()
    assert cleared.state.stage == "c"  # checking never moves the stage


def test_refused_moves_change_nothing() -> None:
    flow = simple_flow()
    state = start(flow, LEAD, by=None, now=T0).state
    before = FlowState(
        flow_id=state.flow_id,
        flow_version=state.flow_version,
        record=state.record,
        stage=state.stage,
        checked=state.checked,
        history=state.history,
    )
    attempts = [
        lambda: next_stage(flow, state, {}, by=None, now=at(1)),
        lambda: previous_stage(flow, state, by=None, now=at(1)),
        lambda: jump(flow, state, "b", by=None, now=at(1)),
        lambda: check(flow, state, "b_ok", True, by=None, now=at(1)),
        lambda: switch_flow(flow, state, by=None, now=at(1)),
        lambda: continue_on(flow, state, OPPORTUNITY, by=None, now=at(1)),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidTransition):
            attempt()
        assert state == before


def test_state_of_another_flow_version_is_refused() -> None:
    flow = simple_flow()
    state = start(flow, LEAD, by=None, now=T0).state
    with pytest.raises(ValidationError, match="version 1, not 'simple' version 2"):
        next_stage(simple_flow(version=2), state, {}, by=None, now=at(1))


def test_times_are_kept_in_utc() -> None:
    flow = simple_flow()
    paris = timezone(timedelta(hours=1))
    state = start(flow, LEAD, by=None, now=datetime(2026, 3, 2, 10, tzinfo=paris)).state
    assert state.history[0].at == T0
    assert state.history[0].at.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("  ", False), ((), False), ("x", True), (0, True), (False, True)],
)
def test_what_counts_as_set(value: object, expected: bool) -> None:
    assert is_set(value) is expected


# --- switching flows ---------------------------------------------------------------


def test_switch_keeps_the_stage_of_the_same_id() -> None:
    flow = simple_flow()
    other = simple_flow(
        id="other",
        name="Other",
        stages=[
            Stage(id="x", name="X"),
            Stage(id="b", name="B too", steps=[StageStep(id="b_ok", label="B", kind="checkbox")]),
        ],
    )
    state = start(flow, LEAD, by=None, now=T0).state
    state = check(flow, state, "ok", True, by="u1", now=at(1)).state
    state = next_stage(flow, state, {"email": "e@example.com"}, by="u1", now=at(2)).state
    state = check(flow, state, "b_ok", True, by="u1", now=at(3)).state
    outcome = switch_flow(other, state, by="u9", now=at(4))
    new = outcome.state
    assert (new.flow_id, new.flow_version, new.stage) == ("other", 1, "b")
    assert new.checked == {"b_ok"}  # 'ok' does not exist in the other flow
    assert new.history[:-1] == state.history
    last = new.history[-1]
    assert (last.flow_id, last.from_stage, last.to_stage, last.reason) == (
        "other",
        "b",
        "b",
        ChangeReason.SWITCHED,
    )
    assert consistent(new)
    assert isinstance(outcome.events[0], ProcessSwitched)
    assert outcome.events[0].from_flow_id == "simple"
    assert isinstance(outcome.events[1], StageChanged)


def test_switch_without_a_matching_stage_starts_at_the_first() -> None:
    flow = simple_flow()
    state = jump(flow, start(flow, LEAD, by=None, now=T0).state, "c", by=None, now=at(1)).state
    new = switch_flow(MARKETING, state, by="u1", now=at(2)).state
    assert new.stage == INQUIRY
    assert new.flow_id == MARKETING.id


def test_switch_to_a_new_version_and_refusals() -> None:
    flow = simple_flow()
    state = start(flow, LEAD, by=None, now=T0).state
    assert switch_flow(simple_flow(version=2), state, by=None, now=at(1)).state.flow_version == 2
    with pytest.raises(InvalidTransition, match="already follows"):
        switch_flow(flow, state, by=None, now=at(1))
    opportunity_only = ProcessFlow(
        id="opp", name="Opp", record_type="opportunity", stages=[Stage(id="o", name="O")]
    )
    with pytest.raises(InvalidTransition, match="no stage on lead records"):
        switch_flow(opportunity_only, state, by=None, now=at(1))
    with pytest.raises(InvalidDefinition):
        switch_flow(simple_flow(id="broken", stages=[]), state, by=None, now=at(1))


# --- Lead to opportunity sales process ---------------------------------------------


def test_lead_to_opportunity_end_to_end() -> None:
    state = start(SALES, LEAD, by="tom", now=T0).state
    assert state.stage == QUALIFY
    with pytest.raises(InvalidTransition, match="when the lead is qualified"):
        next_stage(SALES, state, {}, by="tom", now=at(1))
    with pytest.raises(InvalidTransition, match="goes on to 'Develop' on a opportunity"):
        continue_on(SALES, state, RecordRef(kind="contact", id="c-1"), by="tom", now=at(1))

    outcome = on_lead_qualified(SALES, state, OPPORTUNITY, by="tom", now=at(2))
    state = outcome.state
    assert (state.stage, state.record, state.continued_from) == (DEVELOP, OPPORTUNITY, LEAD)
    assert state.history[-1].reason is ChangeReason.CONTINUED
    assert outcome.events[0] == ProcessContinued(
        occurred_at=at(2),
        flow_id=SALES.id,
        from_record=LEAD,
        to_record=OPPORTUNITY,
        stage=DEVELOP,
        by="tom",
    )
    with pytest.raises(InvalidTransition, match="which is closed"):
        previous_stage(SALES, state, by="tom", now=at(3))
    with pytest.raises(InvalidTransition, match="does not hand over"):
        continue_on(SALES, state, OPPORTUNITY, by="tom", now=at(3))

    with pytest.raises(InvalidTransition, match="'Customer need'"):
        next_stage(SALES, state, {}, by="tom", now=at(3))
    opportunity = {"description": "New CRM", "estimated_close_date": None}
    state = next_stage(SALES, state, opportunity, by="tom", now=at(4)).state
    assert state.stage == PROPOSE
    for box in ("proposal_developed", "proposal_presented"):
        state = check(SALES, state, box, True, by="tom", now=at(5)).state
    state = next_stage(SALES, state, opportunity, by="tom", now=at(6)).state
    assert state.stage == CLOSE
    state = check(SALES, state, "final_proposal_presented", True, by="tom", now=at(7)).state
    # Close is the last stage: what is left is shown, the opportunity lifecycle closes it.
    missing = missing_steps(SALES.stage(CLOSE), state, opportunity)
    assert [step.label for step in missing] == ["Confirm decision date"]
    assert [c.to_stage for c in state.history] == [QUALIFY, DEVELOP, PROPOSE, CLOSE]
    assert consistent(state)


# --- marketing lead process --------------------------------------------------------


def marketing_start() -> FlowState:
    return start(MARKETING, LEAD, by=None, now=T0).state


def test_marketing_through_teleprospecting() -> None:
    state = marketing_start()
    outcome = on_first_score(MARKETING, state, now=at(1))
    state = outcome.state
    assert state.stage == AUTOMATED_MARKETING_QUALIFICATION
    assert state.history[-1].by is None
    assert state.history[-1].reason is ChangeReason.FIRST_SCORE
    assert on_first_score(MARKETING, state, now=at(2)).events == ()  # only the first score

    state = mark_teleprospecting_ready(MARKETING, state, by="mia", now=at(3)).state
    assert state.stage == TELEPROSPECTING_ACCEPTANCE
    assert TELEPROSPECTING_READY in state.checked

    outcome = accept_teleprospect(MARKETING, state, by="tele", now=at(4))
    state = outcome.state
    assert state.stage == TELEPROSPECTING_QUALIFICATION
    assert TELEPROSPECT_ACCEPTED in state.checked
    assert [type(e) for e in outcome.events] == [StepChecked, StageChanged]
    assert state.history[-1].reason is ChangeReason.GATE

    # Ticking "Sales ready" in teleprospecting qualification is marking it by hand.
    state = on_sales_ready(MARKETING, state, by_score=False, by="tele", now=at(5)).state
    assert state.stage == SALES_ACCEPTANCE
    assert SALES_READY in state.checked

    outcome = accept_for_sales(MARKETING, state, seller_id="seller-7", by="manager", now=at(6))
    assert outcome.assign_to == "seller-7"
    assert SALES_ACCEPTED in outcome.state.checked
    assert outcome.events[-1] == SalesAccepted(
        occurred_at=at(6), flow_id=MARKETING.id, record=LEAD, seller_id="seller-7", by="manager"
    )
    assert [c.to_stage for c in outcome.state.history] == [s.id for s in MARKETING.stages]
    assert consistent(outcome.state)


@pytest.mark.parametrize("by_score", [True, False])
def test_sales_ready_skips_both_teleprospecting_stages(by_score: bool) -> None:
    state = on_first_score(MARKETING, marketing_start(), now=at(1)).state
    by = None if by_score else "mia"
    outcome = on_sales_ready(MARKETING, state, by_score=by_score, by=by, now=at(2))
    assert outcome.state.stage == SALES_ACCEPTANCE
    assert SALES_READY in outcome.state.checked
    change = outcome.state.history[-1]
    assert (change.from_stage, change.to_stage, change.by, change.reason) == (
        AUTOMATED_MARKETING_QUALIFICATION,
        SALES_ACCEPTANCE,
        by,
        ChangeReason.SALES_READY,
    )
    visited = {c.to_stage for c in outcome.state.history}
    assert TELEPROSPECTING_ACCEPTANCE not in visited
    assert TELEPROSPECTING_QUALIFICATION not in visited
    # Marking it again changes nothing.
    assert on_sales_ready(MARKETING, outcome.state, by_score=True, by=None, now=at(3)).events == ()


def test_sales_ready_by_hand_from_inquiry_and_teleprospecting_acceptance() -> None:
    state = on_sales_ready(MARKETING, marketing_start(), by_score=False, by="u", now=at(1)).state
    assert state.stage == SALES_ACCEPTANCE
    assert on_first_score(MARKETING, state, now=at(2)).events == ()  # no step back

    state = on_first_score(MARKETING, marketing_start(), now=at(1)).state
    state = mark_teleprospecting_ready(MARKETING, state, by="u", now=at(2)).state
    state = on_sales_ready(MARKETING, state, by_score=True, by=None, now=at(3)).state
    assert state.stage == SALES_ACCEPTANCE
    assert TELEPROSPECTING_QUALIFICATION not in state.visited


def test_marketing_switches() -> None:
    off = MarketingSettings(automated_marketing_qualification=False, automatic_sales_ready=False)
    state = marketing_start()
    assert on_first_score(MARKETING, state, now=at(1), settings=off).state is state
    assert (
        on_sales_ready(MARKETING, state, by_score=True, by=None, now=at(1), settings=off).events
        == ()
    )
    # By hand still works with the automatic switch off.
    by_hand = on_sales_ready(MARKETING, state, by_score=False, by="u", now=at(1), settings=off)
    assert by_hand.state.stage == SALES_ACCEPTANCE
    assert MarketingSettings() == MarketingSettings(
        automated_marketing_qualification=True, automatic_sales_ready=True
    )
    with pytest.raises(ValidationError):
        MarketingSettings(automatic_sales_ready="yes")  # type: ignore[arg-type]


def test_marketing_gates_refuse_out_of_place() -> None:
    state = marketing_start()
    with pytest.raises(InvalidTransition, match="move the lead there first"):
        accept_teleprospect(MARKETING, state, by="tele", now=at(1))
    with pytest.raises(InvalidTransition, match="mark it sales-ready first"):
        accept_for_sales(MARKETING, state, seller_id="s", by="m", now=at(1))
    state = on_sales_ready(MARKETING, state, by_score=False, by="u", now=at(1)).state
    with pytest.raises(ValidationError, match="seller_id"):
        accept_for_sales(MARKETING, state, seller_id="", by="m", now=at(2))
    state = accept_for_sales(MARKETING, state, seller_id="s", by="m", now=at(2)).state
    with pytest.raises(InvalidTransition, match="reassign it"):
        accept_for_sales(MARKETING, state, seller_id="s2", by="m", now=at(3))
    with pytest.raises(InvalidTransition, match="last stage"):
        next_stage(MARKETING, state, {}, by="m", now=at(3))


def test_manual_moves_work_on_every_marketing_stage() -> None:
    state = marketing_start()
    state = next_stage(MARKETING, state, {}, by="u", now=at(1)).state
    assert state.stage == AUTOMATED_MARKETING_QUALIFICATION
    with pytest.raises(InvalidTransition, match="'Teleprospecting ready' \\(tick\\)"):
        next_stage(MARKETING, state, {}, by="u", now=at(2))
    state = jump(MARKETING, state, SALES_ACCEPTANCE, by="u", now=at(2)).state
    state = previous_stage(MARKETING, state, by="u", now=at(3)).state
    assert state.stage == TELEPROSPECTING_QUALIFICATION


def test_marketing_rules_need_the_marketing_stages() -> None:
    state = start(simple_flow(), LEAD, by=None, now=T0).state
    with pytest.raises(InvalidDefinition, match="marketing rules need the stages"):
        on_first_score(simple_flow(), state, now=at(1))
    no_box = ProcessFlow(
        id="custom",
        name="Custom marketing",
        record_type="lead",
        stages=[
            *MARKETING.stages[:4],
            Stage(id=SALES_ACCEPTANCE, name="Sales acceptance"),
        ],
    )
    assert marketing_problems(no_box) == [
        "stage 'sales_acceptance' of process flow 'custom' has no checkbox 'sales_accepted'; "
        "add it (the marketing rules tick it)"
    ]
    shuffled = ProcessFlow(
        id="shuffled",
        name="Shuffled",
        record_type="lead",
        stages=[MARKETING.stages[1], MARKETING.stages[0], *MARKETING.stages[2:]],
    )
    assert "out of order" in marketing_problems(shuffled)[0]


# --- JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize("flow", [SALES, MARKETING, simple_flow()], ids=lambda f: f.id)
def test_json_round_trip(flow: ProcessFlow) -> None:
    assert from_dict(to_dict(flow)) == flow
    assert loads_json(dumps_json(flow)) == flow
    assert json.loads(dumps_json(flow)) == to_dict(flow)


def test_json_document_shape() -> None:
    doc = to_dict(SALES)
    assert doc["schema"] == 1
    assert doc["kind"] == "process_flow"
    assert doc["stages"][1]["record_type"] == "opportunity"
    assert "record_type" not in doc["stages"][0]
    assert doc["stages"][2]["steps"][1] == {
        "id": "proposal_developed",
        "label": "Develop proposal",
        "kind": "checkbox",
        "required": True,
    }


def test_json_defaults_for_optional_keys() -> None:
    flow = from_dict(
        {
            "schema": 1,
            "kind": "process_flow",
            "id": "f",
            "name": "F",
            "record_type": "lead",
            "stages": [
                {"id": "s", "name": "S", "steps": [{"id": "x", "label": "X", "kind": "checkbox"}]}
            ],
        }
    )
    assert flow.version == 1
    assert flow.stages[0].steps[0].required is True
    assert flow.stages[0].jumps_to == ()


def test_an_invalid_flow_can_be_loaded() -> None:
    doc = to_dict(simple_flow())
    doc["stages"][0]["jumps_to"] = ["nowhere"]
    flow = from_dict(doc)
    assert [p.code for p in validate(flow)] == [ProblemCode.MISSING_JUMP_TARGET]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.update(schema=2), "schema"),
        (lambda d: d.update(kind="sequence"), "kind"),
        (lambda d: d.update(version=True), "version"),
        (lambda d: d.pop("name"), "name"),
        (lambda d: d["stages"][1].update(steps="x"), "stages[1].steps"),
        (lambda d: d["stages"][0]["steps"][0].update(kind="radio"), "stages[0].steps[0]"),
        (
            lambda d: d["stages"][0]["steps"][0].update(required="yes"),
            "stages[0].steps[0].required",
        ),
        (lambda d: d["stages"][0].update(jumps_to=[1]), "stages[0].jumps_to[0]"),
        (lambda d: d["stages"].append("x"), "stages[3]"),
    ],
)
def test_malformed_documents_name_the_path(change: object, path: str) -> None:
    doc = to_dict(simple_flow())
    change(doc)  # type: ignore[operator]
    with pytest.raises(ValidationError) as info:
        from_dict(doc)
    assert str(info.value).startswith(path)


def test_loads_json_refuses_bad_text() -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        loads_json("{")
    with pytest.raises(ValidationError, match="expected a table"):
        loads_json("[]")


# --- Mermaid -----------------------------------------------------------------------


def test_mermaid_draws_stages_left_to_right() -> None:
    assert mermaid(SALES) == (
        "flowchart LR\n"
        '    p0["Qualify"]\n'
        '    p1["Develop (opportunity): 1 required step"]\n'
        '    p2["Propose (opportunity): 2 required steps"]\n'
        '    p3["Close (opportunity): 2 required steps"]\n'
        '    p0 ==>|"hand-over"| p1\n'
        "    p1 --> p2\n"
        "    p2 --> p3\n"
    )


def test_mermaid_highlights_the_current_stage_and_skipped_ones() -> None:
    state = on_first_score(MARKETING, marketing_start(), now=at(1)).state
    state = on_sales_ready(MARKETING, state, by_score=True, by=None, now=at(2)).state
    text = mermaid(MARKETING, state)
    assert '    p1 -.->|"jump"| p4\n' in text
    assert "    class p0,p1 done\n" in text
    assert "    class p2,p3 skipped\n" in text
    assert text.endswith("    class p4 current\n")
    assert text.count("current") == 2  # the classDef and the class line


def test_mermaid_escapes_labels() -> None:
    flow = simple_flow(stages=[Stage(id="a", name='Say "hi" <b>#1</b> `x`')])
    assert '    p0["Say #quot;hi#quot; #lt;b#gt;#35;1#lt;/b#gt; #96;x#96;"]\n' in mermaid(flow)


def test_mermaid_refuses_a_state_of_another_flow() -> None:
    state = marketing_start()
    with pytest.raises(ValidationError, match="draw that flow version"):
        mermaid(SALES, state)
