"""The automation-rules part of ``salesflow demo``: a won deal is copied into the
Delivery pipeline at once and brings a repeat lead six simulated months later."""

from __future__ import annotations

from datetime import timedelta
from typing import TextIO

from salesflow.clock import FakeClock
from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.opportunity import Opportunity
from salesflow.pipelines import Pipeline, Stage
from salesflow.rules import After, AutomationRule, CopyDeal, CreateRepeatLead, Delay, Responsible
from salesflow.stores.base import Query
from salesflow.testing.simulate import simulate

__all__ = ["show_rules"]

DELIVERY = Pipeline(
    id="delivery",
    name="Delivery",
    stages=[Stage(id="prep", name="Preparation"), Stage(id="shipped", name="Shipped", kind="won")],
)
SALES = Pipeline(
    id="sales",
    name="Sales",
    stages=[
        Stage(id="new", name="New"),
        Stage(id="approval", name="Contract approval"),
        Stage(id="won", name="Closed won", kind="won"),
        Stage(id="lost", name="Closed lost", kind="lost"),
    ],
    rules=[
        AutomationRule(id="to_delivery", stage="won", action=CopyDeal(pipeline="delivery")),
        AutomationRule(
            id="renewal",
            stage="won",
            timing=After(delay=Delay(months=6)),
            action=CreateRepeatLead(
                name="Service contract renewal: {name} ({account.name})",
                responsible=Responsible(users=["bob"]),
            ),
        ),
    ],
)


def show_rules(engine: Salesflow, clock: FakeClock, out: TextIO) -> None:
    """Publish Sales and Delivery, win a deal, print its copy; move the fake clock six
    months on and print the repeat lead."""
    engine.publish_pipeline(DELIVERY)
    engine.publish_pipeline(SALES)
    account = engine.create_account(name="Baltic Freight")
    contact = engine.create_contact(first_name="Rasa", last_name="Petraitė", account_id=account.id)
    deal = engine.create_deal(
        "sales",
        name="Fleet tracking, 40 trucks",
        account_id=account.id,
        contact_id=contact.id,
        owner_id="alice",
    )
    engine.move_stage(deal, "approval", by="alice")
    item = engine.move_stage(deal, "won", by="alice")
    won_at = clock.now()
    print(f"\nAutomation rules: {deal.name!r} moved to Closed won by alice.", file=out)
    for run in item.runs_of_entry():
        when = "now" if run.due_at is None or run.due_at <= won_at else f"{run.due_at:%Y-%m-%d}"
        print(
            f"  rule {run.rule:<12} {run.status.value:<8} {when:<11} {run.reason or ''}", file=out
        )
    simulate(engine, until=won_at + timedelta(days=200))
    after = engine.pipeline_item(deal)
    assert after is not None
    for run in after.runs_of_entry():
        if run.rule == "renewal":
            lead_id = (run.reason or "").rsplit(" ", 1)[-1]
            lead = engine.get_lead(lead_id)
            print(
                f"Six months later ({run.finished_at:%Y-%m-%d}): repeat lead {lead.topic!r} "
                f"for {lead.full_name}, owner {lead.owner_id}.",
                file=out,
            )
    in_delivery = engine.query(Opportunity, Query(where=field("stage").eq("prep")))
    for copy in in_delivery.items:
        place = engine.pipeline_item(copy)
        where = f"{place.pipeline}/{place.stage}" if place else "?"
        print(f"The copy {copy.name!r} waits in {where}.", file=out)
