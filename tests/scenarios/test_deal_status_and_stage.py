"""A deal's status and its pipeline stage stay in step whichever way it closes: a stage
move sets the status, and winning, losing or reopening it directly (a command, a won
quote, a sequence's set_status step) moves it to a stage of that kind, whose rules
run as after a move (SPEC R8.2: "after a deal reaches 'Closed won', create a new
lead")."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.events import ListSink
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.pipeline_events import PipelineStageChanged, RepeatLeadCreated
from salesflow.pipelines import Pipeline, Stage, StageKind
from salesflow.pricing import OpportunityLine, PriceList, Product
from salesflow.rules import AutomationRule, CreateRepeatLead, Notify, Responsible
from salesflow.sequences import ActivityStep, EndStep, SequenceDefinition, SetStatusStep
from salesflow.stores.base import Query
from salesflow.stores.url import open_store
from salesflow.values import Money

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
STAGES = [
    Stage(id="new", name="New"),
    Stage(id="offer", name="Offer"),
    Stage(id="won", name="Closed won", kind="won"),
    Stage(id="paid", name="Paid", kind="won"),
    Stage(id="lost", name="Closed lost", kind="lost"),
]
REPEAT = AutomationRule(
    id="repeat",
    stage="won",
    action=CreateRepeatLead(name="Renewal: {name}", responsible=Responsible(users=["u9"])),
)
SAD = AutomationRule(id="sad", stage="lost", action=Notify(message="lost {name}"))


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Salesflow:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'd.db'}"
    made = Salesflow(open_store(url), clock=FakeClock(T0), sink=ListSink())
    made.publish_pipeline(Pipeline(id="sales", name="Sales", stages=STAGES, rules=[REPEAT, SAD]))
    return made


def _deal(engine: Salesflow, pipeline: str, name: str) -> Opportunity:
    """A deal in ``pipeline`` for a new account (a repeat lead needs one)."""
    account = engine.create_account(name=f"{name} Inc")
    return engine.create_deal(pipeline, name=name, account_id=account.id)


def _stage(engine: Salesflow, deal: Opportunity) -> tuple[str, str]:
    item = engine.pipeline_item(deal)
    assert item is not None
    stored = engine.get(Opportunity, deal.id)
    assert stored.stage == item.stage  # the record's field follows the item
    return item.stage, item.history[-1].via


def _repeat_leads(engine: Salesflow) -> list[str]:
    with engine.store.unit_of_work(read_only=True) as uow:
        return [lead.topic or "" for lead in uow.query(Lead, Query()).items]


def test_winning_a_deal_moves_it_to_the_first_won_stage_and_runs_its_rules(
    engine: Salesflow,
) -> None:
    deal = _deal(engine, "sales", "Docks")
    engine.move_stage(deal, "offer")
    won = engine.win_opportunity(deal.id)
    assert (won.status, won.stage) == (OpportunityStatus.WON, "won")
    assert _stage(engine, deal) == ("won", "status")
    assert _repeat_leads(engine) == ["Renewal: Docks"]
    sink = engine.sink
    assert isinstance(sink, ListSink)
    moves = [e for e in sink.events if isinstance(e, PipelineStageChanged)]
    assert [(m.from_stage, m.to_stage, m.via) for m in moves][-1] == ("offer", "won", "status")
    assert sum(isinstance(e, RepeatLeadCreated) for e in sink.events) == 1


def test_reopening_returns_the_deal_to_the_open_stage_it_closed_from(engine: Salesflow) -> None:
    deal = _deal(engine, "sales", "Docks")
    engine.move_stage(deal, "offer")
    engine.lose_opportunity(deal.id, "budget")
    assert _stage(engine, deal) == ("lost", "status")
    reopened = engine.reopen_opportunity(deal.id)
    assert (reopened.status, reopened.stage) == (OpportunityStatus.OPEN, "offer")
    assert _stage(engine, deal) == ("offer", "status")
    # A deal moved into a closed stage by hand reopens the same way.
    engine.move_stage(deal, "paid")
    assert engine.reopen_opportunity(deal.id).stage == "offer"


def test_a_deal_in_a_stage_of_its_status_stays_there(engine: Salesflow) -> None:
    deal = _deal(engine, "sales", "Docks")
    engine.move_stage(deal, "paid")  # a won stage, not the first one
    engine.reopen_opportunity(deal.id)
    engine.move_stage(deal, "paid")
    assert engine.get(Opportunity, deal.id).status is OpportunityStatus.WON
    assert _stage(engine, deal) == ("paid", "user")
    assert _repeat_leads(engine) == []  # the won stage's rule never ran


def test_a_won_quote_moves_the_deal_and_starts_the_won_stage_rules(engine: Salesflow) -> None:
    engine.save_product(Product(id="laptop", name="Laptop"))
    engine.save_price_list(
        PriceList(
            id="eu",
            name="Europe",
            currency="EUR",
            items={"laptop": Money(amount="1199.00", currency="EUR")},
        )
    )
    deal = _deal(engine, "sales", "Laptops")
    engine.set_opportunity_lines(
        deal.id, [OpportunityLine(product_id="laptop", quantity=Decimal(2))], price_list_id="eu"
    )
    quote = engine.activate_quote(engine.create_quote(deal.id).id)
    engine.win_quote(quote.id)
    assert _stage(engine, deal) == ("won", "status")
    assert _repeat_leads(engine) == ["Renewal: Laptops"]


def test_a_sequence_step_that_closes_a_deal_moves_it(engine: Salesflow) -> None:
    engine.publish_sequence(
        SequenceDefinition(
            id="last_try",
            name="Last try",
            record_type="opportunity",
            entry="mail",
            steps=[
                ActivityStep(id="mail", kind="auto_email", subject="Still there?", next="lose"),
                SetStatusStep(id="lose", status="lost", reason="no answer", next="end"),
                EndStep(id="end", outcome="lost"),
            ],
        )
    )
    deal = _deal(engine, "sales", "Docks")
    # the automated email goes to the deal's contact
    kim = engine.create_contact(last_name="Kim", email="kim@docks.example")
    engine.update_opportunity(deal.id, contact_id=kim.id)
    engine.connect(deal, "last_try")
    engine.run_due()
    assert engine.get(Opportunity, deal.id).status is OpportunityStatus.LOST
    assert _stage(engine, deal) == ("lost", "status")


def test_a_pipeline_without_a_stage_of_that_kind_keeps_the_deal_where_it_is(
    engine: Salesflow,
) -> None:
    engine.publish_pipeline(
        Pipeline(id="open_only", name="Open only", stages=[Stage(id="a", name="A")])
    )
    deal = _deal(engine, "open_only", "Docks")
    assert engine.win_opportunity(deal.id).stage == "a"
    assert _stage(engine, deal) == ("a", "created")


def test_a_deal_in_no_pipeline_just_changes_status(engine: Salesflow) -> None:
    deal = engine.create_opportunity(name="Loose")
    won = engine.win_opportunity(deal.id)
    assert (won.status, won.stage, engine.pipeline_item(deal)) == (
        OpportunityStatus.WON,
        None,
        None,
    )


_KIND_STATUS = {
    StageKind.OPEN: OpportunityStatus.OPEN,
    StageKind.WON: OpportunityStatus.WON,
    StageKind.LOST: OpportunityStatus.LOST,
}
_STEPS = st.lists(
    st.one_of(
        st.sampled_from(["win", "lose", "reopen"]),
        st.sampled_from([s.id for s in STAGES]),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_STEPS)
def test_status_and_stage_never_disagree(steps: list[str]) -> None:
    sink = ListSink()
    engine = Salesflow(clock=FakeClock(T0), sink=sink)
    engine.publish_pipeline(Pipeline(id="sales", name="Sales", stages=STAGES, rules=[REPEAT]))
    deal = _deal(engine, "sales", "Docks")
    kinds = {stage.id: stage.kind for stage in STAGES}
    for step in steps:
        status = engine.get(Opportunity, deal.id).status
        if step == "win" and status is OpportunityStatus.OPEN:
            engine.win_opportunity(deal.id)
        elif step == "lose" and status is OpportunityStatus.OPEN:
            engine.lose_opportunity(deal.id)
        elif step == "reopen" and status is not OpportunityStatus.OPEN:
            engine.reopen_opportunity(deal.id)
        elif step in kinds:
            engine.move_stage(deal, step)
        else:
            continue
        item = engine.pipeline_item(deal)
        assert item is not None
        stored = engine.get(Opportunity, deal.id)
        assert stored.stage == item.stage
        assert stored.status is _KIND_STATUS[kinds[item.stage]]
    # Every entry into the won stage ran its rule once, whichever way it came.
    entries = sum(isinstance(e, PipelineStageChanged) and e.to_stage == "won" for e in sink.events)
    assert sum(isinstance(e, RepeatLeadCreated) for e in sink.events) == entries
