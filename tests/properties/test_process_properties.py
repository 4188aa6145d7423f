"""Process flows under random streams of moves (issue 4 items 5 and 8).

Random valid flows and the standard marketing process are driven by random moves
(next with random field values, back, jump, tick/clear, switch flows, and the
marketing rules). Whatever happens:

* the current stage is always a stage of the flow the record is on;
* the history is consistent: it starts with the start, each change leaves the stage
  the one before entered, and the last one entered the current stage; each move's
  `StageChanged` events match the history entries it added;
* a refused move raises and leaves the state exactly as it was;
* the marketing skip rule: the automatic rules (first score, sales-ready by score)
  never put a lead on a teleprospecting stage, and a lead marked sales-ready, by
  score or by hand, is on Sales acceptance right after.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.errors import InvalidTransition
from salesflow.process import ProcessFlow, Stage, StageStep, StepKind, validate
from salesflow.process_runtime import (
    FlowState,
    Outcome,
    StageChanged,
    check,
    jump,
    next_stage,
    previous_stage,
    start,
    switch_flow,
)
from salesflow.process_standard import (
    MARKETING_LEAD_PROCESS,
    SALES_ACCEPTANCE,
    SALES_READY,
    TELEPROSPECTING_STAGES,
    MarketingSettings,
    accept_for_sales,
    accept_teleprospect,
    mark_teleprospecting_ready,
    on_first_score,
    on_sales_ready,
)
from salesflow.values import RecordKind, RecordRef

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEAD = RecordRef(kind=RecordKind.LEAD, id="lead-1")
FIELDS = ("email", "budget", "need")
USERS = st.sampled_from([None, "u1", "u2"])


@st.composite
def flows(draw: st.DrawFn, flow_id: str = "random") -> ProcessFlow:
    """A valid lead flow: 1 to 6 stages, each with a few steps and jumps."""
    count = draw(st.integers(1, 6))
    stage_ids = [f"s{i}" for i in range(count)]
    fields = list(FIELDS)
    stages = []
    for i, stage_id in enumerate(stage_ids):
        steps = []
        if fields and draw(st.booleans()):
            steps.append(
                StageStep(
                    id=fields.pop(), label="Field", kind="field", required=draw(st.booleans())
                )
            )
        for j in range(draw(st.integers(0, 2))):
            steps.append(
                StageStep(
                    id=f"box{i}_{j}", label="Box", kind="checkbox", required=draw(st.booleans())
                )
            )
        others = [s for s in stage_ids if s != stage_id]
        jumps = draw(st.lists(st.sampled_from(others), unique=True, max_size=2)) if others else []
        stages.append(Stage(id=stage_id, name=stage_id.upper(), steps=steps, jumps_to=jumps))
    flow = ProcessFlow(id=flow_id, name=flow_id, record_type="lead", stages=stages)
    assert validate(flow) == []
    return flow


def consistent(flows_by_id: dict[str, ProcessFlow], state: FlowState) -> None:
    flow = flows_by_id[state.flow_id]
    assert state.stage in {s.id for s in flow.stages}
    history = state.history
    assert history[0].from_stage is None
    assert all(b.from_stage == a.to_stage for a, b in itertools.pairwise(history))
    assert history[-1].to_stage == state.stage
    assert all(a.at <= b.at for a, b in itertools.pairwise(history))


def apply(state: FlowState, move: Callable[..., Outcome], *args: Any, **kwargs: Any) -> FlowState:
    """Run ``move(*args, **kwargs)`` on ``state``; a refusal must leave it as it was."""
    snapshot = FlowState(
        flow_id=state.flow_id,
        flow_version=state.flow_version,
        record=state.record,
        stage=state.stage,
        checked=frozenset(state.checked),
        history=tuple(state.history),
    )
    try:
        outcome = move(*args, **kwargs)
    except InvalidTransition:
        assert state == snapshot
        return state
    added = outcome.state.history[len(state.history) :]
    assert outcome.state.history[: len(state.history)] == state.history
    changes = [e for e in outcome.events if isinstance(e, StageChanged)]
    assert [(e.from_stage, e.to_stage) for e in changes] == [
        (c.from_stage, c.to_stage) for c in added
    ]
    return outcome.state


@settings(max_examples=150, deadline=None)
@given(data=st.data(), flow=flows(), other=flows("other"))
def test_random_moves_keep_the_state_consistent(
    data: st.DataObject, flow: ProcessFlow, other: ProcessFlow
) -> None:
    by_id = {flow.id: flow, other.id: other}
    state = start(flow, LEAD, by=None, now=T0).state
    stage_ids = sorted({s.id for f in by_id.values() for s in f.stages})
    box_ids = sorted(
        {
            step.id
            for f in by_id.values()
            for s in f.stages
            for step in s.steps
            if step.kind is StepKind.CHECKBOX
        }
    )
    for minute in range(1, data.draw(st.integers(1, 40)) + 1):
        current = by_id[state.flow_id]
        now, by = T0 + timedelta(minutes=minute), data.draw(USERS)
        action = data.draw(st.sampled_from(["next", "back", "jump", "check", "switch"]))
        before = state
        if action == "next":
            fields = data.draw(
                st.dictionaries(st.sampled_from(FIELDS), st.sampled_from([None, "", "x", 0]))
            )
            state = apply(state, next_stage, current, before, fields, by=by, now=now)
        elif action == "back":
            state = apply(state, previous_stage, current, before, by=by, now=now)
        elif action == "jump":
            target = data.draw(st.sampled_from(stage_ids))
            state = apply(state, jump, current, before, target, by=by, now=now)
            if state is not before:
                assert target in current.stage(before.stage).jumps_to
        elif action == "check" and box_ids:
            box, value = data.draw(st.sampled_from(box_ids)), data.draw(st.booleans())
            if any(box == step.id for s in current.stages for step in s.steps):
                state = apply(state, check, current, before, box, value, by=by, now=now)
                assert state.stage == before.stage
        elif action == "switch":
            target_flow = by_id[data.draw(st.sampled_from(sorted(by_id)))]
            state = apply(state, switch_flow, target_flow, before, by=by, now=now)
            if state is not before:
                assert state.flow_id == target_flow.id
                if before.stage in {s.id for s in target_flow.stages}:
                    assert state.stage == before.stage
                else:
                    assert state.stage == target_flow.stages[0].id
        consistent(by_id, state)
        assert state.checked <= set(box_ids)


MARKETING_ACTIONS = [
    "first_score",
    "score_ready",
    "hand_ready",
    "teleprospecting_ready",
    "teleprospect_accepted",
    "sales_accepted",
    "next",
    "back",
    "jump",
    "clear_sales_ready",
]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), qualification=st.booleans(), automatic=st.booleans())
def test_marketing_skip_rule(data: st.DataObject, qualification: bool, automatic: bool) -> None:
    flow = MARKETING_LEAD_PROCESS
    settings_ = MarketingSettings(
        automated_marketing_qualification=qualification, automatic_sales_ready=automatic
    )
    by_id = {flow.id: flow}
    state = start(flow, LEAD, by=None, now=T0).state
    for minute in range(1, data.draw(st.integers(1, 30)) + 1):
        now, before = T0 + timedelta(minutes=minute), state
        action = data.draw(st.sampled_from(MARKETING_ACTIONS))
        if action == "first_score":
            state = apply(state, on_first_score, flow, before, now=now, settings=settings_)
            assert state.stage not in TELEPROSPECTING_STAGES or state is before
            if state is not before:
                assert settings_.automated_marketing_qualification
        elif action in ("score_ready", "hand_ready"):
            by_score = action == "score_ready"
            state = apply(
                state,
                on_sales_ready,
                flow,
                before,
                by_score=by_score,
                by=None if by_score else "u1",
                now=now,
                settings=settings_,
            )
            if by_score and not automatic:
                assert state is before
            else:  # Sales acceptance is the last stage, so every lead goes there
                assert state.stage == SALES_ACCEPTANCE
                assert SALES_READY in state.checked
            # An automatic rule never enters a teleprospecting stage.
            new = state.history[len(before.history) :]
            assert all(c.to_stage not in TELEPROSPECTING_STAGES for c in new)
        elif action == "teleprospecting_ready":
            state = apply(state, mark_teleprospecting_ready, flow, before, by="u", now=now)
        elif action == "teleprospect_accepted":
            state = apply(state, accept_teleprospect, flow, before, by="u", now=now)
        elif action == "sales_accepted":
            state = apply(state, accept_for_sales, flow, before, seller_id="s", by="m", now=now)
        elif action == "next":
            state = apply(state, next_stage, flow, before, {}, by="u", now=now)
        elif action == "back":
            state = apply(state, previous_stage, flow, before, by="u", now=now)
        elif action == "jump":
            target = data.draw(st.sampled_from([s.id for s in flow.stages]))
            state = apply(state, jump, flow, before, target, by="u", now=now)
        else:
            state = apply(state, check, flow, before, SALES_READY, False, by="u", now=now)
        consistent(by_id, state)
        # The automatic rules alone never move a sales-ready lead onto a teleprospecting
        # stage: running both of them now leaves it off teleprospecting.
        if SALES_READY in state.checked and state.stage not in TELEPROSPECTING_STAGES:
            after = on_first_score(flow, state, now=now, settings=settings_).state
            after = on_sales_ready(
                flow, after, by_score=True, by=None, now=now, settings=settings_
            ).state
            assert after.stage not in TELEPROSPECTING_STAGES
