"""Routing run by the engine: the active policy, teams and routing state in the store,
assignments through the assign path, follow-up activities, bulk and intake routing."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from salesflow.activity import ActivityKind
from salesflow.clock import FakeClock
from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.errors import InvalidDefinition, InvalidTransition, NotFound, ValidationError
from salesflow.events import LeadAssigned, LeadRouted, ListSink
from salesflow.intake import IntakeOptions, Submission
from salesflow.routing_policy import (
    FollowUp,
    LeastLoaded,
    Member,
    RoundRobin,
    RoutingPolicy,
    RoutingRule,
    Team,
)
from salesflow.scoring import ScoringModel, ScoringRule
from salesflow.sequences.definition import Span
from salesflow.stores.memory import MemoryStore

FRIDAY_EVENING = datetime(2026, 3, 6, 18, tzinfo=UTC)
MONDAY = datetime(2026, 3, 2, 9, tzinfo=UTC)

BALTIC = Team(
    id="baltic",
    name="Baltic team",
    members=[Member(user_id="ana"), Member(user_id="jonas"), Member(user_id="rita")],
)
CALL = FollowUp(kind="phone_call", subject="Call the new lead", due_in=Span(hours=1))


def policy(*rules: RoutingRule, **changes: object) -> RoutingPolicy:
    fields: dict[str, object] = {
        "id": "default",
        "name": "Default routing",
        "fallback_owner_id": "manager",
        "rules": rules
        or [
            RoutingRule(
                id="baltics",
                name="Baltics",
                condition=field("country").in_(["Lithuania", "Latvia"]),
                target=RoundRobin(team_id="baltic"),
                follow_ups=[CALL],
            )
        ],
    }
    fields.update(changes)
    return RoutingPolicy(**fields)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY)


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def make_engine(
    store: MemoryStore, clock: FakeClock, sink: ListSink, prefix: str = ""
) -> Salesflow:
    ids = itertools.count(1)
    return Salesflow(
        store, clock=clock, sink=sink, ids=lambda kind: f"{prefix}{kind.value}-{next(ids)}"
    )


@pytest.fixture
def engine(store: MemoryStore, clock: FakeClock, sink: ListSink) -> Salesflow:
    return make_engine(store, clock, sink)


def new_lead(engine: Salesflow, country: str = "Lithuania", **fields: object) -> str:
    return engine.create_lead(
        topic="t",
        last_name="Kim",
        country=country,
        **fields,  # type: ignore[arg-type]
    ).id


def test_round_robin_turns_persist_across_commands_and_stores(
    engine: Salesflow, store: MemoryStore, clock: FakeClock, sink: ListSink
) -> None:
    engine.save_team(BALTIC)
    engine.publish_routing_policy(policy())
    owners = [engine.route_lead(new_lead(engine)).owner_id for _ in range(2)]
    assert owners == ["ana", "jonas"]

    again = make_engine(MemoryStore.load(store.dump()), clock, sink, prefix="again-")
    assert again.routing_state().rotations["baltic"].last == "jonas"
    lead_id = again.create_lead(topic="t", last_name="Lee", country="Latvia").id
    decision = again.route_lead(lead_id)
    assert decision.owner_id == "rita"
    assert again.get_lead(lead_id).owner_id == "rita"


def test_routing_assigns_and_explains(engine: Salesflow, sink: ListSink) -> None:
    engine.save_team(BALTIC)
    engine.publish_routing_policy(policy())
    lead_id = new_lead(engine)
    sink.events.clear()
    decision = engine.route_lead(lead_id)
    assigned = [e for e in sink.events if isinstance(e, LeadAssigned)]
    routed = [e for e in sink.events if isinstance(e, LeadRouted)]
    assert [(e.lead_id, e.owner_id, e.previous_owner_id) for e in assigned] == [
        (lead_id, "ana", None)
    ]
    (event,) = routed
    assert (event.lead_id, event.owner_id, event.rule_id) == (lead_id, "ana", "baltics")
    assert event.reason == decision.reason
    assert "rule 'Baltics' matched" in event.reason
    assert "round robin of team 'Baltic team' picked 'ana'" in event.reason

    other = new_lead(engine, country="Spain")
    fallback = engine.route_lead(other)
    assert (fallback.owner_id, fallback.rule_id) == ("manager", None)
    assert "no rule matched" in fallback.reason
    assert engine.timeline(engine.get_lead(other)) == []  # the fallback has no follow-ups


def test_follow_ups_are_on_the_timeline_in_working_time(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.save_team(BALTIC)
    engine.publish_routing_policy(policy())
    clock.set(FRIDAY_EVENING)
    lead_id = new_lead(engine)
    engine.route_lead(lead_id)
    (call,) = engine.timeline(engine.get_lead(lead_id))
    assert (call.kind, call.subject, call.owner_id) == (
        ActivityKind.PHONE_CALL,
        "Call the new lead",
        "ana",
    )
    # one working hour after Friday 18:00 is Monday one hour after work starts (08:00)
    assert call.due_at == datetime(2026, 3, 9, 9, tzinfo=UTC)


def test_capacity_counts_the_open_leads_in_the_store(engine: Salesflow) -> None:
    team = Team(
        id="baltic",
        members=[Member(user_id="ana", capacity=2), Member(user_id="jonas", capacity=1)],
    )
    engine.save_team(team)
    rule = RoutingRule(id="all", name="Everyone", target=LeastLoaded(team_id="baltic"))
    engine.publish_routing_policy(policy(rule))
    # owned before routing existed: ana has two open leads, one closed
    for _ in range(2):
        engine.assign_lead(new_lead(engine), "ana")
    closed = new_lead(engine)
    engine.assign_lead(closed, "ana")
    engine.disqualify_lead(closed)

    first = engine.route_lead(new_lead(engine))
    assert first.owner_id == "jonas"
    second = engine.route_lead(new_lead(engine))
    assert second.owner_id == "manager"  # both at capacity: the fallback owner
    assert "'ana' skipped: at capacity (2 of 2 open leads)" in second.reason
    assert "'jonas' skipped: at capacity (1 of 1 open leads)" in second.reason

    (jonas_lead,) = engine.lead_view("open_leads", where=field("owner_id").eq("jonas")).items
    engine.disqualify_lead(jonas_lead.id)  # a closed lead frees its place
    assert engine.route_lead(new_lead(engine)).owner_id == "jonas"


def test_bulk_routing_threads_the_state(engine: Salesflow, sink: ListSink) -> None:
    engine.save_team(BALTIC)
    engine.publish_routing_policy(policy())
    ids = [new_lead(engine) for _ in range(5)]
    decisions = engine.route_leads(ids)
    assert [d.owner_id for d in decisions] == ["ana", "jonas", "rita", "ana", "jonas"]
    assert [engine.get_lead(i).owner_id for i in ids] == [d.owner_id for d in decisions]
    routed = [e.lead_id for e in sink.events if isinstance(e, LeadRouted)]
    assert routed == ids
    assert engine.route_lead(new_lead(engine)).owner_id == "rita"


def test_refused_routing_changes_nothing(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    lead_id = new_lead(engine)
    with pytest.raises(InvalidTransition, match="publish_routing_policy"):
        engine.route_lead(lead_id)
    with pytest.raises(InvalidDefinition, match="'baltic', which does not exist"):
        engine.publish_routing_policy(policy())
    engine.save_team(BALTIC)
    engine.publish_routing_policy(policy())
    closed = new_lead(engine)
    engine.disqualify_lead(closed)
    before, published = store.dump(), len(sink.events)
    with pytest.raises(InvalidTransition, match="read-only"):
        engine.route_leads([lead_id, closed])
    with pytest.raises(NotFound):
        engine.route_lead("lead-404")
    with pytest.raises(ValidationError, match="more than once"):
        engine.route_leads([lead_id, lead_id])
    with pytest.raises(InvalidDefinition, match="no members"):
        engine.save_team(Team(id="baltic"))
    assert store.dump() == before
    assert len(sink.events) == published
    assert engine.get_lead(lead_id).owner_id is None


def test_one_policy_is_active(engine: Salesflow) -> None:
    engine.save_team(BALTIC)
    first = engine.publish_routing_policy(policy())
    assert first.version == 1
    assert engine.publish_routing_policy(policy()).version == 2
    other = engine.publish_routing_policy(policy(id="simple", rules=[]))
    assert engine.routing_policy() == other
    assert engine.route_lead(new_lead(engine)).owner_id == "manager"
    engine.deactivate_routing_policy()
    assert engine.routing_policy() is None
    assert [t.id for t in engine.teams()] == ["baltic"]
    assert engine.team("baltic") == BALTIC


def test_intake_routes_new_leads(engine: Salesflow, sink: ListSink) -> None:
    engine.save_team(BALTIC)
    engine.publish_routing_policy(policy())
    form = Submission(
        channel="landing_page",
        form_id="spring",
        fields={"last_name": "Kim", "email": "kim@x.example", "country": "Lithuania"},
    )
    created = engine.intake(form).lead
    assert created is not None
    assert engine.get_lead(created.id).owner_id == "ana"
    assert len(engine.timeline(created)) == 1
    # the same submission again matches the lead: nothing is routed again
    engine.intake(form)
    assert [e.lead_id for e in sink.events if isinstance(e, LeadRouted)] == [created.id]

    quiet = Submission(channel="typed", fields={"last_name": "Lee", "country": "Latvia"})
    unrouted = engine.intake(quiet, IntakeOptions(route=False)).lead
    assert unrouted is not None
    assert engine.get_lead(unrouted.id).owner_id is None


def test_import_routes_every_new_row(engine: Salesflow) -> None:
    engine.save_team(BALTIC)
    engine.publish_routing_policy(policy())
    rows = "last_name,email,country\n" + "".join(
        f"P{i},p{i}@x.example,Lithuania\n" for i in range(4)
    )
    report = engine.import_csv(io.StringIO(rows))
    assert report.created == 4
    owners = sorted(
        (lead.last_name, lead.owner_id) for lead in engine.lead_view("open_leads").items
    )
    assert owners == [("P0", "ana"), ("P1", "jonas"), ("P2", "rita"), ("P3", "ana")]


def test_rules_on_the_score_see_the_new_leads_score(engine: Salesflow) -> None:
    engine.publish_scoring_model(
        ScoringModel(
            id="m",
            name="M",
            sales_ready_threshold=20,
            score_leads_without_parent=True,
            rules=[
                ScoringRule(
                    id="lt",
                    name="LT",
                    conditions=[field("lead.country").eq("Lithuania")],
                    points=20,
                )
            ],
        )
    )
    engine.save_team(BALTIC)
    engine.publish_routing_policy(
        policy(
            RoutingRule(
                id="hot",
                name="Hot leads",
                condition=field("score").ge(20),
                target=RoundRobin(team_id="baltic"),
            )
        )
    )
    form = Submission(channel="typed", fields={"last_name": "Kim", "country": "Lithuania"})
    lead = engine.intake(form).lead
    assert lead is not None
    assert engine.lead_scores(lead.id)[0].points == 20
    assert engine.get_lead(lead.id).owner_id == "ana"
    cold = engine.intake(Submission(channel="typed", fields={"last_name": "Lee"})).lead
    assert cold is not None
    assert engine.get_lead(cold.id).owner_id == "manager"


def test_a_late_policy_leaves_existing_leads_alone(engine: Salesflow) -> None:
    lead_id = new_lead(engine)
    engine.save_team(BALTIC)
    engine.publish_routing_policy(policy())
    assert engine.get_lead(lead_id).owner_id is None
    assert engine.route_lead(lead_id).follow_ups[0].due_at == MONDAY + timedelta(hours=1)


def test_saving_a_team_publishes_who_takes_leads(engine: Salesflow, sink: ListSink) -> None:
    from salesflow.events import TeamSaved

    away = Team(
        id="baltic",
        name="Baltic team",
        members=[Member(user_id="ana"), Member(user_id="jonas", away=True), Member(user_id="rita")],
    )
    engine.save_team(away)
    [saved] = [e for e in sink.events if isinstance(e, TeamSaved)]
    assert (saved.team_id, saved.members, saved.available) == (
        "baltic",
        ("ana", "jonas", "rita"),
        ("ana", "rita"),
    )
