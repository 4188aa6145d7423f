"""Pipelines and automation rules in the engine: the three seed-004 scenarios and the
rules' timing, conditions, ordering, cancelation, triggers and guards, on every store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from salesflow.activity import Activity, ActivityState
from salesflow.clock import FakeClock
from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.errors import InvalidDefinition, InvalidTransition, NotFound, ValidationError
from salesflow.events import ListSink
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.pipeline_events import (
    AutomationRuleFinished,
    DealCopied,
    PipelineStageChanged,
    RepeatLeadCreated,
    RuleNotification,
)
from salesflow.pipeline_state import RuleStatus
from salesflow.pipelines import Pipeline, Stage, Trigger
from salesflow.pricing import OpportunityLine, PriceList, Product
from salesflow.rules import (
    ActivityDue,
    After,
    AutomationRule,
    ChangeStage,
    ConnectSequence,
    CopyDeal,
    CreateRepeatLead,
    Delay,
    FromField,
    Notify,
    Responsible,
    ScheduleActivity,
    UpdateField,
)
from salesflow.sequences.enrollment import RuntimeConfig
from salesflow.stores.base import Query, Store
from salesflow.stores.url import open_store
from salesflow.testing.simulate import simulate
from salesflow.values import Money, RecordKind
from salesflow.worktime import Calendars, OrganizationCalendar

T0 = datetime(2026, 1, 30, 10, 0, tzinfo=UTC)  # a Friday
SALES_STAGES = [
    Stage(id="new", name="New"),
    Stage(id="approval", name="Contract approval"),
    Stage(id="invoice", name="Invoice"),
    Stage(id="won", name="Closed won", kind="won"),
    Stage(id="lost", name="Closed lost", kind="lost"),
]
DELIVERY = Pipeline(
    id="delivery",
    name="Delivery",
    stages=[Stage(id="prep", name="Preparation"), Stage(id="shipped", name="Shipped", kind="won")],
)


class World:
    """An engine on one store with a fake clock, its events, and a contact at Contoso."""

    def __init__(self, url: str, tmp: Path, *, calendars: Calendars | None = None) -> None:
        self.url = url
        self.clock = FakeClock(T0)
        self.sink = ListSink()
        self.calendars = calendars
        self.counter = 0
        self.engine = self.open()
        self.account = self.engine.create_account(name="Contoso")
        self.contact = self.engine.create_contact(
            first_name="Ana",
            last_name="Ruiz",
            account_id=self.account.id,
            email="ana@contoso.example",
        )

    def ids(self, kind: RecordKind) -> str:
        self.counter += 1
        return f"{kind.value}-{self.counter}"

    def open(self, store: Store | None = None) -> Salesflow:
        config = RuntimeConfig(calendars=self.calendars) if self.calendars else None
        return Salesflow(
            store or open_store(self.url),
            clock=self.clock,
            sink=self.sink,
            ids=self.ids,
            sequences=config,
        )

    def restart(self) -> None:
        """A new engine on the same database (what survives is what was stored); a
        memory store is handed to the new engine, since it lives in the process."""
        if self.url.startswith("memory"):
            self.engine = self.open(self.engine.store)
            return
        self.engine.close()
        self.engine = self.open()

    def events(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.sink.events if isinstance(e, kind)]

    def deal(self, pipeline: str = "sales", **fields: object) -> Opportunity:
        values: dict[str, object] = {
            "name": "10 laptops",
            "account_id": self.account.id,
            "contact_id": self.contact.id,
            "owner_id": "u1",
        }
        values.update(fields)
        return self.engine.create_deal(pipeline, **values)  # type: ignore[arg-type]

    def run_until(self, when: datetime) -> None:
        simulate(self.engine, until=when)
        self.clock.set(when)


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    w = World(store_url, tmp_path)
    yield w
    w.engine.close()


def publish_sales(w: World, *rules: AutomationRule, triggers: tuple[Trigger, ...] = ()) -> Pipeline:
    w.engine.publish_pipeline(DELIVERY)
    return w.engine.publish_pipeline(
        Pipeline(id="sales", name="Sales", stages=SALES_STAGES, rules=rules, triggers=triggers)
    )


RENEWAL = AutomationRule(
    id="renewal",
    stage="won",
    name="Service contract renewal",
    timing=After(delay=Delay(months=6)),
    action=CreateRepeatLead(
        name="Service contract renewal: {name} ({account.name})",
        responsible=Responsible(users=["u9"]),
    ),
)
TO_DELIVERY = AutomationRule(id="to_delivery", stage="won", action=CopyDeal(pipeline="delivery"))
CALL = AutomationRule(
    id="call",
    stage="approval",
    action=ScheduleActivity(
        kind="phone_call",
        subject="Call {contact.first_name} about the contract for {name}",
        description="Discuss the terms with {account.name}",
        due=ActivityDue(days=1, at=time(14)),
        complete_on_stage_change=True,
    ),
)


# --- the three seed scenarios ------------------------------------------------------------


def test_repeat_lead_six_months_after_a_won_deal(world: World) -> None:
    publish_sales(world, RENEWAL)
    deal = world.deal()
    world.engine.move_stage(deal, "won", by="u1")
    assert world.engine.get(Opportunity, deal.id).status is OpportunityStatus.WON
    run = world.engine.pipeline_item(deal).runs_of_entry()[0]  # type: ignore[union-attr]
    assert (run.status, run.due_at) == (RuleStatus.PENDING, datetime(2026, 7, 30, 10, tzinfo=UTC))

    world.run_until(datetime(2026, 7, 30, 9, 59, tzinfo=UTC))
    assert world.events(RepeatLeadCreated) == []
    world.restart()  # the delayed rule is a stored due item: it survives
    world.run_until(datetime(2026, 8, 30, tzinfo=UTC))

    [made] = world.events(RepeatLeadCreated)
    lead = world.engine.get(Lead, made.lead_id)
    assert lead.topic == "Service contract renewal: 10 laptops (Contoso)"
    assert (lead.owner_id, lead.parent_contact_id, lead.parent_account_id) == (
        "u9",
        world.contact.id,
        world.account.id,
    )
    assert (lead.first_name, lead.last_name, lead.email, lead.company_name) == (
        "Ana",
        "Ruiz",
        "ana@contoso.example",
        "Contoso",
    )
    assert lead.custom["repeat_of"] == f"opportunity:{deal.id}"
    assert made.occurred_at == datetime(2026, 7, 30, 10, tzinfo=UTC)
    run = world.engine.pipeline_item(deal).runs_of_entry()[0]  # type: ignore[union-attr]
    assert run.status is RuleStatus.DONE
    assert run.reason == f"created repeat lead {lead.id}"


def test_moved_back_out_of_closed_won_before_six_months_no_repeat_lead(world: World) -> None:
    publish_sales(world, RENEWAL)
    deal = world.deal()
    world.engine.move_stage(deal, "won", by="u1")
    world.run_until(T0 + timedelta(days=60))
    now_in = world.engine.move_stage(deal, "invoice", by="u2")
    assert (now_in.stage, now_in.entry, len(now_in.history)) == ("invoice", 3, 1)
    assert world.engine.get(Opportunity, deal.id).status is OpportunityStatus.OPEN  # reopened
    item = world.engine.pipeline_item(deal)
    assert item is not None
    [run] = item.runs_of_entry(2)
    assert (run.status, run.reason) == (RuleStatus.CANCELED, "the item left the stage")
    assert world.engine.due_items() == []
    world.run_until(datetime(2027, 1, 1, tzinfo=UTC))
    assert world.events(RepeatLeadCreated) == []
    # the history says who moved it, when and from where
    moves = [(m.from_stage, m.to_stage, m.by, m.via) for m in item.history]
    assert moves == [
        (None, "new", None, "created"),
        ("new", "won", "u1", "user"),
        ("won", "invoice", "u2", "user"),
    ]


def test_a_won_deal_is_copied_to_the_first_stage_of_delivery(world: World) -> None:
    publish_sales(world, TO_DELIVERY)
    deal = world.deal(
        probability=80,
        estimated_close_date=date(2026, 3, 1),
        description="Ten laptops with docks",
        custom={"tier": "gold", "seats": 10},
    )
    world.engine.save_product(Product(id="laptop", name="Laptop"))
    price = Money(amount="999", currency="EUR")
    world.engine.save_price_list(
        PriceList(id="eu", name="EU", currency="EUR", items={"laptop": price})
    )
    deal = world.engine.set_opportunity_lines(
        deal.id,
        [OpportunityLine(product_id="laptop", quantity=Decimal(10))],
        price_list_id="eu",
    )
    world.engine.move_stage(deal, "won", by="u1")
    [copied] = world.events(DealCopied)
    copy = world.engine.get(Opportunity, copied.copy_id)
    assert copy.name == "10 laptops (Copy)"
    assert (copy.lines, copy.price_list_id, copy.estimated_value) == (
        deal.lines,
        "eu",
        Money(amount="9990.00", currency="EUR"),
    )
    assert (copy.status, copy.stage, copy.owner_id) == (OpportunityStatus.OPEN, "prep", "u1")
    for name in (
        "account_id",
        "contact_id",
        "probability",
        "estimated_close_date",
        "description",
        "custom",
    ):
        assert getattr(copy, name) == getattr(deal, name), name
    item = world.engine.pipeline_item(copy)
    assert item is not None
    assert (item.pipeline, item.stage, item.copy_of, item.lineage) == (
        "delivery",
        "prep",
        deal.ref,
        ("sales/to_delivery",),
    )


def test_contract_approval_plans_a_call_that_closes_when_the_deal_moves_on(world: World) -> None:
    publish_sales(world, CALL)
    deal = world.deal()
    world.engine.move_stage(deal, "approval", by="u1")
    [call] = [a for a in world.engine.timeline(deal.ref) if isinstance(a, Activity)]
    assert call.subject == "Call Ana about the contract for 10 laptops"
    assert call.description == "Discuss the terms with Contoso"
    assert (call.owner_id, call.due_at, call.state) == (
        "u1",
        datetime(2026, 1, 31, 14, tzinfo=UTC),  # tomorrow at 14:00
        ActivityState.OPEN,
    )
    world.engine.move_stage(deal, "invoice", by="u1")
    assert world.engine.get(Activity, call.id).state is ActivityState.COMPLETED


def test_the_call_is_due_in_the_responsible_users_time_zone(store_url: str, tmp_path: Path) -> None:
    tokyo = OrganizationCalendar(timezone="Asia/Tokyo")
    w = World(store_url, tmp_path, calendars=Calendars(owners={"u7": tokyo}))
    try:
        rule = AutomationRule(
            id="call",
            stage="approval",
            action=ScheduleActivity(
                kind="appointment",
                subject="Meet",
                due=ActivityDue(days=2, at=time(12)),
                responsible=Responsible(users=["u7"]),
            ),
        )
        publish_sales(w, rule)
        deal = w.deal()
        w.engine.move_stage(deal, "approval")
        [meeting] = w.engine.timeline(deal.ref)
        assert isinstance(meeting, Activity)
        # Friday 19:00 in Tokyo; two days later at 12:00 JST is Sunday 03:00 UTC
        assert (meeting.owner_id, meeting.due_at) == ("u7", datetime(2026, 2, 1, 3, tzinfo=UTC))
        w.engine.move_stage(deal, "invoice")
        assert w.engine.get(Activity, meeting.id).state is ActivityState.OPEN  # not flagged
    finally:
        w.engine.close()


# --- rules --------------------------------------------------------------------------------


def test_a_repeat_lead_needs_a_contact_or_a_company(world: World) -> None:
    publish_sales(world, RENEWAL)
    deal = world.deal(account_id=None, contact_id=None)
    world.engine.move_stage(deal, "won")
    world.run_until(datetime(2026, 8, 1, tzinfo=UTC))
    run = world.engine.pipeline_item(deal).runs_of_entry()[0]  # type: ignore[union-attr]
    assert run.status is RuleStatus.FAILED
    assert run.reason is not None
    assert "neither a contact nor a company" in run.reason
    assert world.engine.query(Lead, Query()).total == 0
    [finished] = world.events(AutomationRuleFinished)
    assert finished.status == "failed"


def test_conditions_are_checked_when_the_rule_is_due(world: World) -> None:
    rule = AutomationRule(
        id="nudge",
        stage="approval",
        timing=After(delay=Delay(days=3)),
        condition=field("probability").lt(50),
        action=Notify(message="{name} is stuck at {probability} %"),
    )
    publish_sales(world, rule)
    sure, unsure = world.deal(probability=20), world.deal(name="Docks", probability=20)
    world.engine.move_stage(sure, "approval")
    world.engine.move_stage(unsure, "approval")
    world.engine.update_opportunity(sure.id, probability=90)  # after scheduling, before due
    world.run_until(T0 + timedelta(days=4))
    [note] = world.events(RuleNotification)
    assert (note.record, note.users, note.message) == (
        f"opportunity:{unsure.id}",
        ("u1",),
        "Docks is stuck at 20 %",
    )
    statuses = {
        deal.id: world.engine.pipeline_item(deal).runs_of_entry()[0].status  # type: ignore[union-attr]
        for deal in (sure, unsure)
    }
    assert statuses == {sure.id: RuleStatus.SKIPPED, unsure.id: RuleStatus.DONE}


def test_rules_after_the_previous_one_count_from_its_end(world: World) -> None:
    first = AutomationRule(
        id="first",
        stage="approval",
        timing=After(delay=Delay(days=1)),
        action=Notify(message="one"),
    )
    second = AutomationRule(
        id="second",
        stage="approval",
        run="after_previous",
        timing=After(delay=Delay(hours=2)),
        action=Notify(message="two"),
    )
    parallel = AutomationRule(
        id="third",
        stage="approval",
        timing=After(delay=Delay(hours=1)),
        action=Notify(message="three"),
    )
    publish_sales(world, first, second, parallel)
    deal = world.deal()
    item = world.engine.move_stage(deal, "approval")
    assert [r.status for r in item.runs_of_entry()] == [
        RuleStatus.PENDING,
        RuleStatus.WAITING,
        RuleStatus.PENDING,
    ]
    world.run_until(T0 + timedelta(days=2))
    times = {e.message: e.occurred_at for e in world.events(RuleNotification)}
    assert times == {
        "one": T0 + timedelta(days=1),
        "two": T0 + timedelta(days=1, hours=2),
        "three": T0 + timedelta(hours=1),
    }


def test_leaving_the_stage_cancels_the_waiting_rules_too(world: World) -> None:
    first = AutomationRule(
        id="first", stage="approval", timing=After(delay=Delay(days=1)), action=Notify(message="1")
    )
    second = AutomationRule(
        id="second", stage="approval", run="after_previous", action=Notify(message="2")
    )
    publish_sales(world, first, second)
    deal = world.deal()
    world.engine.move_stage(deal, "approval")
    world.engine.move_stage(deal, "new")
    item = world.engine.pipeline_item(deal)
    assert item is not None
    assert [(r.rule, r.status) for r in item.runs_of_entry(2)] == [
        ("first", RuleStatus.CANCELED),
        ("second", RuleStatus.CANCELED),
    ]
    world.run_until(T0 + timedelta(days=3))
    assert world.events(RuleNotification) == []
    canceled = [e.rule_id for e in world.events(AutomationRuleFinished) if e.status == "canceled"]
    assert canceled == ["first", "second"]


def test_a_late_item_runs_at_once(world: World) -> None:
    rule = AutomationRule(
        id="before_close",
        stage="approval",
        timing=FromField(field="estimated_close_date", delay=Delay(days=7), before=True),
        action=UpdateField(field="probability", value=75),
    )
    publish_sales(world, rule)
    late = world.deal(estimated_close_date=date(2026, 2, 2))  # 7 days before is already past
    early = world.deal(name="Docks", estimated_close_date=date(2026, 3, 20))
    none = world.deal(name="Mice")
    for deal in (late, early, none):
        world.engine.move_stage(deal, "approval")
    assert world.engine.get(Opportunity, late.id).probability == 75
    assert world.engine.get(Opportunity, early.id).probability is None
    world.run_until(datetime(2026, 3, 13, 9, tzinfo=UTC))
    assert world.engine.get(Opportunity, early.id).probability == 75
    [run] = world.engine.pipeline_item(none).runs_of_entry()  # type: ignore[union-attr]
    assert run.status is RuleStatus.FAILED
    assert run.reason == "its timing counts from 'estimated_close_date', which is empty"


def test_only_in_working_time(world: World) -> None:
    rule = AutomationRule(
        id="chase",
        stage="approval",
        timing=After(delay=Delay(hours=8)),
        working_time="organization",
        action=Notify(message="chase"),
    )
    publish_sales(world, rule)
    deal = world.deal()
    item = world.engine.move_stage(deal, "approval")  # Friday 10:00 + 8 h = 18:00, after hours
    assert item.runs_of_entry()[0].due_at == datetime(2026, 2, 2, 8, tzinfo=UTC)  # Monday 08:00


def test_delayed_rules_run_exactly_once(world: World) -> None:
    publish_sales(world, RENEWAL)
    deal = world.deal()
    world.engine.move_stage(deal, "won")
    world.clock.set(datetime(2026, 8, 1, tzinfo=UTC))
    assert world.engine.run_due() == 1
    assert world.engine.run_due() == 0
    world.restart()
    assert world.engine.run_due() == 0
    assert len(world.events(RepeatLeadCreated)) == 1


def test_the_copy_loop_guard_stops_an_endless_chain(world: World) -> None:
    world.engine.publish_pipeline(
        Pipeline(id="delivery", name="Delivery", stages=[Stage(id="prep", name="Prep")])
    )
    ping = AutomationRule(id="ping", stage="won", action=CopyDeal(pipeline="delivery"))
    world.engine.publish_pipeline(
        Pipeline(id="sales", name="Sales", stages=SALES_STAGES, rules=[ping])
    )
    pong = AutomationRule(id="pong", stage="prep", action=CopyDeal(pipeline="sales", stage="won"))
    world.engine.publish_pipeline(
        Pipeline(
            id="delivery", name="Delivery", stages=[Stage(id="prep", name="Prep")], rules=[pong]
        )
    )
    deal = world.deal()
    world.engine.move_stage(deal, "won")
    copies = world.events(DealCopied)
    # sales → delivery → sales, then "ping" would run a second time in one lineage
    assert [(c.rule_id, c.pipeline_id) for c in copies] == [("ping", "delivery"), ("pong", "sales")]
    failed = [e for e in world.events(AutomationRuleFinished) if e.status == "failed"]
    assert [e.rule_id for e in failed] == ["ping"]
    assert failed[0].reason is not None
    assert "endless chain of copies" in failed[0].reason
    assert world.engine.query(Opportunity, Query()).total == 3


def test_a_copy_into_its_own_stage_is_made_once(world: World) -> None:
    again = AutomationRule(id="again", stage="won", action=CopyDeal(pipeline="sales", stage="won"))
    publish_sales(world, again)
    world.engine.move_stage(world.deal(), "won")
    assert len(world.events(DealCopied)) == 1


def test_stage_changing_rules_cannot_loop_forever(world: World) -> None:
    there = AutomationRule(id="there", stage="new", action=ChangeStage(stage="approval"))
    back = AutomationRule(id="back", stage="approval", action=ChangeStage(stage="new"))
    publish_sales(world, there, back)
    deal = world.deal()
    item = world.engine.pipeline_item(deal)
    assert item is not None
    failed = [r for r in item.runs if r.status is RuleStatus.FAILED]
    assert len(failed) == 1
    assert failed[0].reason is not None
    assert "moved 20 times" in failed[0].reason
    assert item.entry == 20


def test_rules_added_later_do_not_reach_items_already_in_the_stage(world: World) -> None:
    publish_sales(world)
    deal = world.deal()
    world.engine.move_stage(deal, "won")
    publish_sales(world, RENEWAL)
    world.run_until(datetime(2027, 1, 1, tzinfo=UTC))
    assert world.events(RepeatLeadCreated) == []
    other = world.deal(name="Docks")
    world.engine.move_stage(other, "won")
    assert world.engine.pipeline_item(other).runs_of_entry()[0].rule == "renewal"  # type: ignore[union-attr]


def test_moving_over_several_stages_runs_only_the_target_stages_rules(world: World) -> None:
    publish_sales(world, CALL, TO_DELIVERY)
    deal = world.deal()
    world.engine.move_stage(deal, "won")
    assert world.engine.timeline(deal.ref) == []
    assert len(world.events(DealCopied)) == 1


# --- triggers -----------------------------------------------------------------------------


def test_triggers_move_forward_but_not_back_unless_allowed(world: World) -> None:
    publish_sales(
        world,
        triggers=(
            Trigger(event="email_replied", stage="approval"),
            Trigger(event="payment_received", stage="won"),
            Trigger(event="form_submitted", stage="new", allow_backwards=True),
        ),
    )
    deal = world.deal()
    item = world.engine.fire_trigger(deal, "email_replied")
    assert item is not None
    assert item.stage == "approval"
    assert item.history[-1].via == "trigger:email_replied"
    assert world.engine.fire_trigger(deal, "email_replied") is None  # already there
    world.engine.move_stage(deal, "invoice")
    assert world.engine.fire_trigger(deal, "email_replied") is None  # would go back
    assert world.engine.fire_trigger(deal, "call") is None  # no trigger for it
    item = world.engine.fire_trigger(deal, "form_submitted")
    assert item is not None
    assert item.stage == "new"
    item = world.engine.fire_trigger(deal, "payment_received")
    assert item is not None
    assert item.stage == "won"
    assert world.engine.get(Opportunity, deal.id).status is OpportunityStatus.WON
    with pytest.raises(ValidationError, match="not a trigger event"):
        world.engine.fire_trigger(deal, "sneezed")


def test_a_changed_field_fires_its_trigger(world: World) -> None:
    publish_sales(
        world, triggers=(Trigger(event="field_changed", stage="invoice", field="probability"),)
    )
    deal = world.deal()
    world.engine.update_opportunity(deal.id, description="no move")
    assert world.engine.pipeline_item(deal).stage == "new"  # type: ignore[union-attr]
    world.engine.update_opportunity(deal.id, probability=90)
    assert world.engine.pipeline_item(deal).stage == "invoice"  # type: ignore[union-attr]
    assert world.engine.get(Opportunity, deal.id).stage == "invoice"


def test_a_lead_pipeline_follows_the_leads_interactions(world: World) -> None:
    world.engine.publish_pipeline(
        Pipeline(
            id="leads",
            name="Leads",
            record_type="lead",
            stages=[Stage(id="fresh", name="Fresh"), Stage(id="engaged", name="Engaged")],
            triggers=[Trigger(event="form_submitted", stage="engaged")],
        )
    )
    lead = world.engine.create_pipeline_lead("leads", topic="Docks", last_name="Kim")
    assert world.engine.pipeline_item(lead).history[0].via == "created"  # type: ignore[union-attr]
    world.engine.record_interaction(kind="landing_page_submitted", lead_id=lead.id, occurred_at=T0)
    assert world.engine.pipeline_item(lead).stage == "engaged"  # type: ignore[union-attr]


# --- refusals -----------------------------------------------------------------------------


def test_refusals_change_nothing(world: World) -> None:
    publish_sales(world)
    deal = world.deal()
    with pytest.raises(InvalidTransition, match="already in pipeline 'sales'"):
        world.engine.place_in_pipeline(deal, "sales")
    with pytest.raises(NotFound, match="paid"):
        world.engine.move_stage(deal, "paid")
    loose = world.engine.create_opportunity(name="Loose")
    with pytest.raises(InvalidTransition, match="in no pipeline"):
        world.engine.move_stage(loose, "won")
    with pytest.raises(NotFound, match="Pipeline"):
        world.engine.create_deal("nope", name="x")
    with pytest.raises(ValidationError, match="for opportunity records"):
        world.engine.place_in_pipeline(world.engine.create_lead(topic="t", last_name="l"), "sales")
    with pytest.raises(InvalidDefinition, match="not published"):
        world.engine.publish_pipeline(
            Pipeline(
                id="x",
                name="X",
                stages=SALES_STAGES,
                rules=[AutomationRule(id="c", stage="won", action=CopyDeal(pipeline="nowhere"))],
            )
        )
    assert world.engine.pipeline_item(loose) is None
    assert [p.id for p in world.engine.pipelines()] == ["delivery", "sales"]
    assert world.engine.pipeline("sales", 1).version == 1
    stage_events = world.events(PipelineStageChanged)
    assert len(stage_events) == 1


def test_an_items_document_holds_only_its_current_entry(world: World) -> None:
    publish_sales(world, CALL)
    deal = world.deal()
    for n in range(30):
        world.engine.move_stage(deal, "approval" if n % 2 == 0 else "new")
    with world.engine.store.unit_of_work() as uow:
        current = uow.get_state("pipeline", str(deal.ref))
    assert current is not None
    assert len(current.document["history"]) == 1  # past entries live in archives
    assert len(current.document["runs"]) == 0  # the last move entered "new": no rules
    item = world.engine.pipeline_item(deal)
    assert item is not None
    assert len(item.history) == 31
    assert [r.status for r in item.runs] == [RuleStatus.DONE] * 15
    calls = [a for a in world.engine.timeline(deal.ref) if isinstance(a, Activity)]
    assert len(calls) == 15
    assert all(c.state is ActivityState.COMPLETED for c in calls)  # each left entry closed it


def test_two_workers_run_each_delayed_rule_once(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("memory"):
        pytest.skip("two workers share a database; a MemoryStore lives in one process")
    import threading

    first = World(store_url, tmp_path)
    try:
        publish_sales(first, RENEWAL)
        deals = [first.deal(name=f"Deal {n}") for n in range(60)]
        for deal in deals:
            first.engine.move_stage(deal, "won")
        first.clock.set(datetime(2026, 8, 1, tzinfo=UTC))
        sinks = [ListSink(), ListSink()]
        workers = [
            Salesflow(open_store(store_url), clock=first.clock, sink=sink, ids=first.ids)
            for sink in sinks
        ]
        errors: list[BaseException] = []

        def work(engine: Salesflow) -> None:
            try:
                while engine.run_due(limit=7):
                    pass
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for worker in workers:
            worker.close()
        assert errors == []
        made = [e for sink in sinks for e in sink.events if isinstance(e, RepeatLeadCreated)]
        assert sorted(e.source for e in made) == sorted(f"opportunity:{d.id}" for d in deals)
        assert first.engine.query(Lead, Query(limit=1000)).total == 60
        assert first.engine.due_items() == []
    finally:
        first.engine.close()


def test_a_rule_connects_the_deal_to_a_sequence(world: World) -> None:
    from salesflow.sequences.definition import (
        ActivityStep,
        EndStep,
        SequenceDefinition,
        Span,
        WaitStep,
    )

    world.engine.publish_sequence(
        SequenceDefinition(
            id="closing",
            name="Closing",
            record_type="opportunity",
            entry="call",
            steps=[
                ActivityStep(id="call", kind="call", subject="Call about the contract", next="w"),
                WaitStep(id="w", span=Span(days=1), next="task"),
                ActivityStep(id="task", kind="task", subject="Send the contract", next="done"),
                EndStep(id="done", outcome="done"),
            ],
        )
    )
    publish_sales(
        world,
        AutomationRule(id="seq", stage="approval", action=ConnectSequence(sequence="closing")),
        AutomationRule(
            id="nowhere", stage="invoice", action=ConnectSequence(sequence="not-published")
        ),
    )
    deal = world.deal()
    world.engine.move_stage(deal, "approval")
    [enrollment] = world.engine.enrollments(deal)
    assert (enrollment.sequence_id, enrollment.owner_id) == ("closing", "u1")
    world.engine.move_stage(deal, "invoice")
    item = world.engine.pipeline_item(deal)
    assert item is not None
    [failed] = [r for r in item.runs if r.rule == "nowhere"]
    assert failed.status is RuleStatus.FAILED
    assert failed.reason is not None
    assert "not-published" in failed.reason


def test_only_in_the_owners_working_time(store_url: str, tmp_path: Path) -> None:
    tokyo = OrganizationCalendar(timezone="Asia/Tokyo")  # Monday to Friday 08:00-17:00 JST
    w = World(store_url, tmp_path, calendars=Calendars(owners={"u1": tokyo}))
    try:
        rule = AutomationRule(
            id="chase",
            stage="approval",
            timing=After(delay=Delay(hours=1)),
            working_time="owner",
            action=Notify(message="chase"),
        )
        publish_sales(w, rule)
        deal = w.deal()  # owned by u1
        item = w.engine.move_stage(deal, "approval")  # Friday 10:00 UTC is 19:00 in Tokyo
        # 20:00 JST Friday is after hours: Monday 08:00 JST is Sunday 23:00 UTC
        assert item.runs_of_entry()[0].due_at == datetime(2026, 2, 1, 23, tzinfo=UTC)
    finally:
        w.engine.close()
