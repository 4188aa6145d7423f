"""Automation rules under random moves, field changes, triggers and time: every rule
runs at most once per stage entry, nothing runs for a stage the item has left, and
every rule that has not finished is either scheduled or waiting for its predecessor."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow.clock import FakeClock
from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.events import ListSink
from salesflow.pipeline_events import AutomationRuleFinished, PipelineStageChanged
from salesflow.pipeline_state import RuleStatus
from salesflow.pipelines import Pipeline, Stage, Trigger
from salesflow.pipelines_io import from_dict, to_dict
from salesflow.rules import (
    After,
    AutomationRule,
    ChangeStage,
    CopyDeal,
    Delay,
    Notify,
    UpdateField,
)
from salesflow.testing.simulate import simulate
from salesflow.values import RecordKind, RecordRef

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
STAGES = ["new", "talks", "offer", "won", "lost"]
RULES = [
    AutomationRule(id="hello", stage="talks", action=Notify(message="{name} in talks")),
    AutomationRule(
        id="nudge", stage="talks", timing=After(delay=Delay(days=1)), action=Notify(message="nudge")
    ),
    AutomationRule(
        id="again",
        stage="talks",
        run="after_previous",
        timing=After(delay=Delay(hours=2)),
        action=UpdateField(field="probability", value=40),
    ),
    AutomationRule(
        id="push",
        stage="offer",
        timing=After(delay=Delay(hours=30)),
        condition=field("probability").lt(50),
        action=ChangeStage(stage="won"),
    ),
    AutomationRule(id="deliver", stage="won", action=CopyDeal(pipeline="delivery")),
    AutomationRule(
        id="renew", stage="won", timing=After(delay=Delay(months=1)), action=Notify(message="renew")
    ),
]
SALES = Pipeline(
    id="sales",
    name="Sales",
    stages=[
        Stage(id=s, name=s.title(), kind=s if s in ("won", "lost") else "open") for s in STAGES
    ],
    rules=RULES,
    triggers=[
        Trigger(event="email_replied", stage="talks"),
        Trigger(event="field_changed", stage="offer", field="probability"),
        Trigger(event="payment_received", stage="new", allow_backwards=True),
    ],
)
DELIVERY = Pipeline(
    id="delivery",
    name="Delivery",
    stages=[Stage(id="prep", name="Prep"), Stage(id="done", name="Done", kind="won")],
    rules=[
        AutomationRule(
            id="close",
            stage="prep",
            timing=After(delay=Delay(days=2)),
            action=ChangeStage(stage="done"),
        )
    ],
)

actions = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 2), st.integers(0, 4), st.integers(1, 60)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_every_rule_runs_at_most_once_per_stage_entry(
    script: list[tuple[int, int, int, int]],
) -> None:
    clock = FakeClock(T0)
    sink = ListSink()
    engine = Salesflow(clock=clock, sink=sink)
    engine.publish_pipeline(DELIVERY)
    engine.publish_pipeline(SALES)
    deals = [engine.create_deal("sales", name=f"Deal {i}", owner_id="u1") for i in range(3)]
    for op, which, stage, hours in script:
        deal = deals[which]
        if op == 0:
            engine.move_stage(deal, STAGES[stage])
        elif op == 1:
            simulate(engine, until=clock.now() + timedelta(hours=hours))
        elif op == 2:
            if engine.get(type(deal), deal.id).status.value == "open":
                engine.update_opportunity(deal.id, probability=hours)
        elif op == 3:
            engine.fire_trigger(deal, ["email_replied", "payment_received", "call"][stage % 3])
        else:
            clock.advance(timedelta(hours=hours))
            engine.run_due()
        check(engine, sink)
    simulate(engine, until=clock.now() + timedelta(days=70))
    check(engine, sink)


def check(engine: Salesflow, sink: ListSink) -> None:
    finished = Counter(
        (e.record, e.entry, e.rule_id) for e in sink.events if isinstance(e, AutomationRuleFinished)
    )
    assert max(finished.values(), default=0) <= 1, finished.most_common(3)
    due_keys = {item.key for item in engine.due_items()}
    now = engine.now()
    entries = Counter(e.record for e in sink.events if isinstance(e, PipelineStageChanged))
    for record in entries:
        kind, _, record_id = record.partition(":")
        item = engine.pipeline_item(RecordRef(kind=RecordKind(kind), id=record_id))
        assert item is not None
        assert item.entry == entries[record]  # one entry per stage change, none lost
        for run in item.runs:
            key = f"pipeline:{record}:{run.entry}:{run.rule}"
            if run.entry != item.entry:
                assert run.status not in (RuleStatus.PENDING, RuleStatus.WAITING)
            elif run.status is RuleStatus.PENDING:
                assert key in due_keys
                assert run.due_at is not None
                assert run.due_at > now
            if run.status is not RuleStatus.PENDING:
                assert key not in due_keys
            assert finished[(record, run.entry, run.rule)] == (
                run.status not in (RuleStatus.PENDING, RuleStatus.WAITING)
            )


pipelines_docs = st.sampled_from([SALES, DELIVERY])


@given(pipelines_docs)
def test_pipeline_documents_round_trip(pipeline: Pipeline) -> None:
    assert from_dict(to_dict(pipeline)) == pipeline
