"""The work list: open records with open activities, their next best action, order
and owner filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from salesflow.activity import ActivityKind
from salesflow.engine import Salesflow
from salesflow.errors import ValidationError
from salesflow.sequences import load_template
from salesflow.values import RecordRef
from salesflow.worklist import WorkListOrder, work_list_rows

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the fixtures' clock


def test_the_work_list_shows_each_open_record_once_with_its_next_action(engine: Salesflow) -> None:
    ana = engine.create_lead(topic="Laptops", first_name="Ana", last_name="Ruiz", owner_id="u1")
    bo = engine.create_lead(topic="Docks", first_name="Bo", last_name="Lind", owner_id="u2")
    closed = engine.create_lead(topic="Mice", last_name="Gone", owner_id="u1")
    contoso = engine.create_account(name="Contoso")
    kim = engine.create_contact(first_name="Kim", last_name="Park", account_id=contoso.id)
    deal = engine.create_opportunity(name="Fleet", contact_id=kim.id, owner_id="u1")

    engine.add_activity(ana, "phone_call", "Call Ana", owner_id="u1", due_at=T0 + timedelta(days=2))
    engine.add_activity(
        ana, "task", "Send the offer", owner_id="u1", due_at=T0 - timedelta(hours=1)
    )
    engine.add_activity(bo, "task", "Research Bo", owner_id="u2", due_at=T0 + timedelta(hours=3))
    engine.add_activity(deal, "appointment", "Demo", owner_id="u1")  # no due time: last
    engine.add_activity(closed, "task", "Never mind", owner_id="u1", due_at=T0)
    engine.disqualify_lead(closed.id, "no_longer_interested")
    done = engine.add_activity(bo, "phone_call", "Done already", owner_id="u2", due_at=T0)
    engine.complete_activity(done.id)

    rows = engine.work_list()
    assert [(r.record, r.next_action.subject, r.open_activities) for r in rows] == [
        (ana.ref, "Send the offer", 2),
        (bo.ref, "Research Bo", 1),
        (deal.ref, "Demo", 1),
    ]
    first = rows[0]
    assert (first.name, first.primary_contact, first.next_action.overdue) == (
        "Ana Ruiz (Laptops)",
        "Ana Ruiz",
        True,
    )
    assert first.next_action.kind is ActivityKind.TASK
    assert (rows[2].name, rows[2].primary_contact) == ("Fleet", "Kim Park")
    assert not rows[1].next_action.overdue

    mine = engine.work_list(owner_id="u1")
    assert [r.record for r in mine] == [ana.ref, deal.ref]
    assert engine.work_list(owner_id="u1", limit=1)[0].record == ana.ref


def test_sequence_steps_are_on_the_work_list(engine: Salesflow) -> None:
    engine.publish_sequence(load_template("high_volume_outbound_prospecting"))
    lead = engine.create_lead(
        topic="Pilot", last_name="Kim", email="kim@example.com", owner_id="u3"
    )
    engine.connect(lead, "high_volume_outbound_prospecting")
    [row] = engine.work_list(owner_id="u3")
    assert row.record == lead.ref
    assert row.next_action.kind is ActivityKind.LINKEDIN


def test_rows_sort_by_score_then_due() -> None:
    from salesflow.activity import Activity
    from salesflow.lead import Lead

    leads = [
        Lead(id=f"l{i}", created_at=T0, modified_at=T0, topic="t", last_name=f"L{i}")
        for i in range(3)
    ]
    acts = [
        Activity(
            id=f"a{i}",
            created_at=T0,
            modified_at=T0,
            kind="task",
            subject=f"do {i}",
            regarding=lead.ref,
            due_at=T0 + timedelta(hours=i),
        )
        for i, lead in enumerate(leads)
    ]
    records: dict[RecordRef, object] = {lead.ref: lead for lead in leads}
    rows = work_list_rows(
        acts,
        records,  # type: ignore[arg-type]
        lambda r: None,
        {"l1": 40, "l2": 80},
        now=T0,
        order=WorkListOrder.SCORE,
    )
    assert [r.record.id for r in rows] == ["l2", "l1", "l0"]
    assert [r.score for r in rows] == [80, 40, None]


def test_bad_arguments_are_refused(engine: Salesflow) -> None:
    with pytest.raises(ValidationError, match="order"):
        engine.work_list(order="alphabetical")
    with pytest.raises(ValidationError, match="limit"):
        engine.work_list(limit=0)
