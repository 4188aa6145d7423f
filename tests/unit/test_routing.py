"""Lead routing (R3.3): rules, targets, availability, capacity, overflow, follow-ups,
explanations, validation and the JSON format."""

from __future__ import annotations

import doctest
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import salesflow.routing
from salesflow.activity import ActivityKind
from salesflow.conditions import all_of, field
from salesflow.errors import InvalidDefinition, ValidationError
from salesflow.lead import Lead, LeadSource
from salesflow.routing import (
    LeadFacts,
    LeadInput,
    Rotation,
    RoutingDecision,
    RoutingState,
    route,
    route_many,
)
from salesflow.routing_io import (
    from_dict,
    state_from_dict,
    state_to_dict,
    team_from_dict,
    team_to_dict,
    to_dict,
)
from salesflow.routing_policy import (
    FollowUp,
    LeastLoaded,
    Member,
    Overflow,
    RoundRobin,
    RoutingPolicy,
    RoutingProblemCode,
    RoutingRule,
    Team,
    ToUser,
    Weighted,
    require_valid,
    team_problems,
    validate,
)
from salesflow.sequences.definition import Span
from salesflow.values import Money
from salesflow.worktime import Calendars, OrganizationCalendar

VILNIUS = ZoneInfo("Europe/Vilnius")
CALENDAR = OrganizationCalendar(timezone=VILNIUS)
MONDAY_10 = datetime(2026, 3, 2, 10, tzinfo=VILNIUS)
FRIDAY_EVENING = datetime(2026, 3, 6, 18, 30, tzinfo=VILNIUS)

BALTIC = Team(
    id="baltic",
    name="Baltic",
    members=[Member(user_id="ana"), Member(user_id="rita"), Member(user_id="jonas")],
)
CALL = FollowUp(kind="phone_call", subject="Call the new lead", due_in=Span(hours=1))


def rule(rule_id: str, target: Any, condition: Any = None, **kwargs: Any) -> RoutingRule:
    if condition is not None:
        kwargs["condition"] = condition
    return RoutingRule(id=rule_id, name=rule_id.title(), target=target, **kwargs)


def policy(*rules: RoutingRule, **kwargs: Any) -> RoutingPolicy:
    return RoutingPolicy(
        id="default", name="Default", rules=rules, fallback_owner_id="manager", **kwargs
    )


BALTICS = rule("baltics", RoundRobin(team_id="baltic"), field("country").eq("Lithuania"))


def decide(
    p: RoutingPolicy,
    lead: LeadInput,
    *,
    teams: tuple[Team, ...] = (BALTIC,),
    loads: Mapping[str, int] | None = None,
    state: RoutingState | None = None,
    now: datetime = MONDAY_10,
    calendar: OrganizationCalendar | Calendars = CALENDAR,
) -> RoutingDecision:
    return route(p, lead, teams=teams, loads=loads, state=state, now=now, calendar=calendar)


def owners(p: RoutingPolicy, count: int, teams: tuple[Team, ...] = (BALTIC,)) -> list[str]:
    result = route_many(
        p, [{"country": "Lithuania"}] * count, teams=teams, now=MONDAY_10, calendar=CALENDAR
    )
    return [d.owner_id for d in result.decisions]


def test_the_module_example_runs() -> None:
    assert doctest.testmod(salesflow.routing, raise_on_error=True).failed == 0


# --- targets ---------------------------------------------------------------------------


def test_to_user_assigns_to_that_user() -> None:
    d = decide(policy(rule("vip", ToUser(user_id="boss"))), {})
    assert (d.owner_id, d.rule_id, d.fallback) == ("boss", "vip", False)
    assert d.reason == "rule 'Vip' matched: every lead; assigned to 'boss'"


def test_round_robin_takes_turns_in_member_order() -> None:
    assert owners(policy(BALTICS), 7) == ["ana", "rita", "jonas"] * 2 + ["ana"]


def test_round_robin_explains_whom_it_continued_after() -> None:
    first = decide(policy(BALTICS), {"country": "Lithuania"})
    second = decide(policy(BALTICS), {"country": "Lithuania"}, state=first.state)
    assert first.reason == (
        "rule 'Baltics' matched: country = 'Lithuania'; round robin of team 'Baltic' "
        "picked 'ana' (first in turn)"
    )
    assert second.reason.endswith("picked 'rita' (next after 'ana')")
    assert second.state.rotations["baltic"] == Rotation(last="rita", order=("ana", "rita", "jonas"))


def test_round_robin_pointer_is_per_team_and_survives_a_new_policy_version() -> None:
    state = decide(policy(BALTICS), {"country": "Lithuania"}).state
    newer = RoutingPolicy(
        id="default", version=2, name="Default", rules=[BALTICS], fallback_owner_id="x"
    )
    assert decide(newer, {"country": "Lithuania"}, state=state).owner_id == "rita"


def test_round_robin_continues_with_the_follower_when_the_last_member_left() -> None:
    state = RoutingState(
        rotations={"baltic": Rotation(last="rita", order=("ana", "rita", "jonas"))}
    )
    smaller = Team(id="baltic", members=[Member(user_id="ana"), Member(user_id="jonas")])
    d = decide(policy(BALTICS), {"country": "Lithuania"}, teams=(smaller,), state=state)
    assert d.owner_id == "jonas"
    assert "(next after 'rita', who has left the team)" in d.reason


def test_a_new_member_takes_their_place_in_the_rotation() -> None:
    state = RoutingState(rotations={"baltic": Rotation(last="ana", order=("ana", "rita", "jonas"))})
    bigger = Team(id="baltic", members=[Member(user_id=u) for u in ("ana", "eva", "rita", "jonas")])
    result = route_many(
        policy(BALTICS),
        [{"country": "Lithuania"}] * 4,
        teams=[bigger],
        state=state,
        now=MONDAY_10,
        calendar=CALENDAR,
    )
    assert [d.owner_id for d in result.decisions] == ["eva", "rita", "jonas", "ana"]


def test_weighted_follows_the_weights_smoothly() -> None:
    team = Team(id="t", members=[Member(user_id="a", weight=3), Member(user_id="b")])
    picks = owners(policy(rule("w", Weighted(team_id="t"))), 8, teams=(team,))
    assert picks == ["a", "a", "b", "a"] * 2


def test_weighted_rule_weights_override_member_weights() -> None:
    team = Team(id="t", members=[Member(user_id="a", weight=3), Member(user_id="b")])
    p = policy(rule("w", Weighted(team_id="t", weights={"a": 1, "b": 2})))
    picks = owners(p, 6, teams=(team,))
    assert picks.count("b") == 4
    assert picks.count("a") == 2
    d = decide(p, {}, teams=(team,))
    assert d.reason.endswith("weighted round robin of team 't' picked 'b' (weight 2 of 3)")


def test_least_loaded_picks_the_fewest_open_leads_ties_by_team_order() -> None:
    team = Team(id="t", members=[Member(user_id=u) for u in ("a", "b", "c")])
    p = policy(rule("l", LeastLoaded(team_id="t")))
    d = decide(p, {}, teams=(team,), loads={"a": 4, "b": 2, "c": 2})
    assert d.owner_id == "b"
    assert d.reason.endswith("least loaded member of team 't' is 'b' (2 open leads)")
    bulk = route_many(
        p, [{}] * 4, teams=[team], loads={"a": 4, "b": 2}, now=MONDAY_10, calendar=CALENDAR
    )
    assert [x.owner_id for x in bulk.decisions] == ["c", "c", "b", "c"]
    assert dict(bulk.loads) == {"a": 4, "b": 3, "c": 3}


# --- rule order, fallback, overflow ----------------------------------------------------


def test_first_matching_rule_wins() -> None:
    p = policy(
        rule("big", ToUser(user_id="kam"), field("annual_revenue").ge(Decimal(1_000_000))),
        rule("lt", ToUser(user_id="lina"), field("country").eq("Lithuania")),
    )
    big = {"country": "Lithuania", "annual_revenue": Money(amount="2000000", currency="EUR")}
    assert decide(p, big).rule_id == "big"
    assert decide(p, {"country": "Lithuania"}).rule_id == "lt"


def test_no_match_goes_to_the_fallback_owner_with_its_follow_ups() -> None:
    p = policy(BALTICS, fallback_follow_ups=[FollowUp(kind="task", subject="Triage")])
    d = decide(p, {"country": "Poland"})
    assert (d.owner_id, d.rule_id, d.fallback) == ("manager", None, True)
    assert d.reason == "no rule matched; assigned to the fallback owner 'manager'"
    assert [(f.kind, f.owner_id) for f in d.follow_ups] == [(ActivityKind.TASK, "manager")]
    assert d.state == RoutingState()


def test_a_full_team_overflows_to_the_next_matching_rule() -> None:
    p = policy(BALTICS, rule("europe", ToUser(user_id="eu")))
    full = {"ana": 5, "rita": 5, "jonas": 5}
    team = Team(id="baltic", members=[Member(user_id=u, capacity=5) for u in full])
    d = decide(p, {"country": "Lithuania"}, teams=(team,), loads=full)
    assert (d.owner_id, d.rule_id) == ("eu", "europe")
    assert d.reason.startswith(
        "rule 'Baltics' matched: country = 'Lithuania', but no member of team 'baltic' can "
        "take it ('ana' skipped: at capacity (5 of 5 open leads)"
    )
    assert d.reason.endswith("rule 'Europe' matched: every lead; assigned to 'eu'")


def test_overflow_fallback_skips_later_rules() -> None:
    p = policy(BALTICS, rule("europe", ToUser(user_id="eu")), overflow=Overflow.FALLBACK)
    team = Team(id="baltic", members=[Member(user_id="ana", away=True)])
    d = decide(p, {"country": "Lithuania"}, teams=(team,))
    assert d.owner_id == "manager"
    assert d.reason == (
        "rule 'Baltics' matched: country = 'Lithuania', but no member of team 'baltic' can "
        "take it ('ana' skipped: away); assigned to the fallback owner 'manager'"
    )


def test_nobody_able_and_no_later_rule_means_fallback() -> None:
    team = Team(id="baltic", members=[Member(user_id="ana", active=False)])
    d = decide(policy(BALTICS), {"country": "Lithuania"}, teams=(team,))
    assert d.fallback
    assert d.reason.endswith(
        "('ana' skipped: inactive); no later rule could place it; assigned to the fallback "
        "owner 'manager'"
    )


# --- availability and capacity ---------------------------------------------------------


def test_away_and_inactive_members_are_skipped_and_named() -> None:
    team = Team(
        id="baltic",
        members=[
            Member(user_id="ana"),
            Member(user_id="rita", away=True),
            Member(user_id="jonas"),
            Member(user_id="old", active=False),
        ],
    )
    state = RoutingState(rotations={"baltic": Rotation(last="ana", order=team.member_ids)})
    d = decide(policy(BALTICS), {"country": "Lithuania"}, teams=(team,), state=state)
    assert d.owner_id == "jonas"
    assert d.reason == (
        "rule 'Baltics' matched: country = 'Lithuania'; round robin of team 'baltic' picked "
        "'jonas' (next after 'ana'); 'rita' skipped: away; 'old' skipped: inactive"
    )


def test_capacity_is_respected_in_bulk() -> None:
    team = Team(id="baltic", members=[Member(user_id="ana", capacity=2), Member(user_id="rita")])
    bulk = route_many(
        policy(BALTICS),
        [{"country": "Lithuania"}] * 6,
        teams=[team],
        loads={"ana": 1},
        now=MONDAY_10,
        calendar=CALENDAR,
    )
    assert [d.owner_id for d in bulk.decisions] == ["ana", "rita", "rita", "rita", "rita", "rita"]
    assert bulk.loads["ana"] == 2
    assert bulk.state == bulk.decisions[-1].state


def test_capacity_zero_means_no_new_leads() -> None:
    team = Team(id="baltic", members=[Member(user_id="ana", capacity=0), Member(user_id="rita")])
    assert owners(policy(BALTICS), 2, teams=(team,)) == ["rita", "rita"]


# --- follow-ups ------------------------------------------------------------------------


def test_one_business_hour_on_friday_evening_is_monday_morning() -> None:
    d = decide(
        policy(rule("all", ToUser(user_id="ana"), follow_ups=[CALL])), {}, now=FRIDAY_EVENING
    )
    (call,) = d.follow_ups
    assert call.kind is ActivityKind.PHONE_CALL
    assert call.owner_id == "ana"
    assert call.subject == "Call the new lead"
    assert call.due_at == datetime(2026, 3, 9, 9, tzinfo=VILNIUS)
    assert call.due_at.tzinfo is UTC


def test_calendar_time_follow_ups_ignore_working_hours() -> None:
    later = FollowUp(
        kind="task", subject="Check", due_in=Span(days=1, hours=2), business_time=False
    )
    d = decide(
        policy(rule("all", ToUser(user_id="ana"), follow_ups=[later])), {}, now=FRIDAY_EVENING
    )
    assert d.follow_ups[0].due_at == datetime(2026, 3, 7, 20, 30, tzinfo=VILNIUS)


def test_business_days_then_hours() -> None:
    soon = FollowUp(kind="email", subject="Intro", due_in=Span(days=1, hours=2))
    d = decide(policy(rule("all", ToUser(user_id="ana"), follow_ups=[soon])), {}, now=MONDAY_10)
    assert d.follow_ups[0].due_at == datetime(2026, 3, 3, 12, tzinfo=VILNIUS)


def test_follow_ups_use_the_owners_own_calendar() -> None:
    calendars = Calendars(organization=CALENDAR).with_owner(
        "ana", OrganizationCalendar(timezone="America/New_York")
    )
    d = decide(
        policy(rule("all", ToUser(user_id="ana"), follow_ups=[CALL])),
        {},
        now=datetime(2026, 3, 2, 10, tzinfo=VILNIUS),  # 03:00 in New York
        calendar=calendars,
    )
    assert d.follow_ups[0].due_at == datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("America/New_York"))


# --- leads as records ------------------------------------------------------------------


def make_lead(**fields: Any) -> Lead:
    return Lead(
        id="lead-1",
        created_at=MONDAY_10,
        modified_at=MONDAY_10,
        topic="Fleet",
        last_name="Petraitis",
        **fields,
    )


def test_routes_a_lead_record_by_its_fields() -> None:
    p = policy(
        rule(
            "web-rich",
            ToUser(user_id="kam"),
            all_of(field("source").eq("web"), field("annual_revenue").gt(Decimal(100))),
        ),
        BALTICS,
    )
    rich = make_lead(source=LeadSource.WEB, annual_revenue=Money(amount="500", currency="EUR"))
    assert decide(p, rich).owner_id == "kam"
    assert decide(p, make_lead(country="Lithuania")).rule_id == "baltics"


def test_lead_facts_add_a_score_to_the_record() -> None:
    p = policy(rule("hot", ToUser(user_id="closer"), field("score").ge(80)))
    lead = make_lead(country="Lithuania")
    assert decide(p, LeadFacts(lead, {"score": 85})).owner_id == "closer"
    assert decide(p, LeadFacts(lead, {"score": 20})).fallback
    facts = LeadFacts(lead, {"score": 85})
    assert (facts["country"], len(facts), list(facts)) == ("Lithuania", 1, ["score"])


def test_a_condition_on_a_field_a_lead_lacks_is_refused() -> None:
    p = policy(rule("x", ToUser(user_id="a"), field("shoe_size").eq(42)))
    with pytest.raises(ValidationError, match="shoe_size"):
        decide(p, make_lead())


def test_the_same_inputs_give_the_same_decision() -> None:
    p = policy(BALTICS, rule("eu", Weighted(team_id="baltic")))
    lead = {"country": "Latvia"}
    assert decide(p, lead) == decide(p, lead)


# --- bad input -------------------------------------------------------------------------


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValidationError, match="aware datetime"):
        decide(policy(BALTICS), {}, now=datetime(2026, 3, 2, 10))


def test_an_unknown_team_is_refused_before_routing() -> None:
    with pytest.raises(InvalidDefinition, match="team 'baltic', which does not exist"):
        decide(policy(BALTICS), {"country": "Lithuania"}, teams=())


def test_an_invalid_team_is_refused_before_routing() -> None:
    bad = Team(id="baltic", members=[Member(user_id="ana", weight=0)])
    with pytest.raises(InvalidDefinition, match="weight 0"):
        decide(policy(BALTICS), {"country": "Lithuania"}, teams=(bad,))


def test_bad_loads_are_refused() -> None:
    with pytest.raises(ValidationError, match="loads="):
        decide(policy(BALTICS), {}, loads={"ana": -1})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Member(user_id=1), "Member.user_id=1 must be text"),  # type: ignore[arg-type]
        (lambda: Member(user_id="a", weight=1.5), "must be a whole number"),  # type: ignore[arg-type]
        (lambda: Member(user_id="a", away="yes"), "must be True or False"),  # type: ignore[arg-type]
        (lambda: Team(id="t", members=["ana"]), "Team.members"),
        (lambda: Weighted(team_id="t", weights={"a": "3"}), "Weighted.weights"),
        (lambda: RoutingRule(id="r", name="R", target="ana"), "must be ToUser"),  # type: ignore[arg-type]
        (lambda: RoutingRule(id="r", name="R", target=ToUser(user_id="a"), condition="x"), "cond"),  # type: ignore[arg-type]
        (lambda: FollowUp(kind="fax", subject="x"), "Activity.kind"),
        (lambda: policy(overflow="later"), "RoutingPolicy.overflow"),
    ],
)
def test_construction_checks_types(make: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make()


# --- validation ------------------------------------------------------------------------


def test_validate_reports_every_problem() -> None:
    p = RoutingPolicy(
        id="p",
        version=0,
        name="P",
        fallback_owner_id=" ",
        fallback_follow_ups=[FollowUp(kind="note", subject="n")],
        rules=[
            rule("a", RoundRobin(team_id="empty")),
            rule("a", Weighted(team_id="t", weights={"ghost": 1, "x": 0})),
            rule(
                "c", LeastLoaded(team_id="missing"), follow_ups=[FollowUp(kind="task", subject="")]
            ),
        ],
    )
    teams = [
        Team(id="empty"),
        Team(
            id="t",
            members=[
                Member(user_id="x", weight=-1, capacity=-2),
                Member(user_id="x"),
            ],
        ),
        Team(id="t"),
    ]
    codes = [p.code for p in validate(p, teams=teams)]
    assert codes == [
        RoutingProblemCode.BAD_VERSION,
        RoutingProblemCode.EMPTY_ID,
        RoutingProblemCode.BAD_FOLLOW_UP,
        RoutingProblemCode.DUPLICATE_TEAM,
        RoutingProblemCode.DUPLICATE_RULE,
        RoutingProblemCode.WEIGHT_FOR_NON_MEMBER,
        RoutingProblemCode.BAD_WEIGHT,
        RoutingProblemCode.UNKNOWN_TEAM,
        RoutingProblemCode.BAD_FOLLOW_UP,
        RoutingProblemCode.EMPTY_TEAM,
        RoutingProblemCode.BAD_WEIGHT,
        RoutingProblemCode.BAD_CAPACITY,
        RoutingProblemCode.DUPLICATE_MEMBER,
    ]
    with pytest.raises(InvalidDefinition) as caught:
        require_valid(p, teams=teams)
    assert len(caught.value.problems) == len(codes)
    assert "rule id 'a' is used by more than one rule" in str(caught.value)


def test_a_valid_policy_has_no_problems() -> None:
    p = policy(BALTICS, rule("vip", ToUser(user_id="boss"), follow_ups=[CALL]))
    assert validate(p) == []
    assert validate(p, teams=[BALTIC]) == []
    require_valid(p, teams=[BALTIC])
    assert team_problems(BALTIC) == []
    assert p.team_ids() == ("baltic",)


def test_validation_without_teams_checks_the_policy_alone() -> None:
    p = policy(rule("w", Weighted(team_id="nowhere", weights={"a": 0})))
    assert [x.code for x in validate(p)] == [RoutingProblemCode.BAD_WEIGHT]


# --- JSON ------------------------------------------------------------------------------


def full_policy() -> RoutingPolicy:
    return RoutingPolicy(
        id="default",
        version=3,
        name="Default routing",
        fallback_owner_id="manager",
        overflow="fallback",
        fallback_follow_ups=[FollowUp(kind="task", subject="Triage", due_in=Span(days=1))],
        rules=[
            rule(
                "big",
                ToUser(user_id="kam"),
                all_of(field("annual_revenue").ge(Decimal("1000000.50")), field("score").gt(10)),
                follow_ups=[CALL],
            ),
            BALTICS,
            rule("w", Weighted(team_id="t", weights={"a": 2})),
            rule("w2", Weighted(team_id="t")),
            rule(
                "rest",
                LeastLoaded(team_id="t"),
                follow_ups=[
                    FollowUp(kind="email", subject="Hi", due_in=Span(days=2), business_time=False)
                ],
            ),
        ],
    )


def test_policy_round_trips_through_json() -> None:
    p = full_policy()
    doc = json.loads(json.dumps(to_dict(p)))
    assert doc["kind"] == "routing_policy"
    assert doc["rules"][2]["target"] == {"kind": "weighted", "team_id": "t", "weights": {"a": 2}}
    assert "condition" not in doc["rules"][4]
    assert from_dict(doc) == p
    assert to_dict(from_dict(doc)) == to_dict(p)


def test_team_and_state_round_trip_through_json() -> None:
    team = Team(
        id="t",
        members=[Member(user_id="a", weight=2, capacity=5, away=True), Member(user_id="b")],
    )
    assert team_from_dict(json.loads(json.dumps(team_to_dict(team)))) == team
    state = RoutingState(
        rotations={"t": Rotation(last="a", order=("a", "b"))}, weighted={"t": {"a": -1, "b": 1}}
    )
    assert state_from_dict(json.loads(json.dumps(state_to_dict(state)))) == state
    assert state_from_dict(state_to_dict(RoutingState())) == RoutingState()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema=2), "schema 2 is not supported"),
        (lambda d: d.update(kind="sequence"), "expected 'routing_policy'"),
        (lambda d: d.update(colour="red"), "unknown key 'colour'"),
        (lambda d: d.pop("fallback_owner_id"), "'fallback_owner_id' is missing"),
        (lambda d: d.update(version="3"), "version: expected int"),
        (lambda d: d.update(version=True), "version: expected int"),
        (lambda d: d["rules"][1]["target"].update(kind="random"), r"rules\[1\].target.kind"),
        (lambda d: d["rules"][1]["target"].update(team_id=7), r"rules\[1\].target.team_id"),
        (
            lambda d: d["rules"][0]["follow_ups"][0]["due_in"].update(hours=-1),
            r"rules\[0\].follow_ups\[0\].due_in",
        ),
        (lambda d: d["rules"][0]["follow_ups"][0].update(kind="fax"), r"rules\[0\].follow_ups"),
        (lambda d: d.update(overflow="later"), "overflow"),
    ],
)
def test_malformed_documents_are_refused_with_their_path(change: Any, message: str) -> None:
    doc = json.loads(json.dumps(to_dict(full_policy())))
    change(doc)
    with pytest.raises(ValidationError, match=message):
        from_dict(doc)


def test_malformed_team_and_state_documents_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"members\[0\].capacity"):
        team_from_dict(
            {
                "schema": 1,
                "kind": "team",
                "id": "t",
                "members": [{"user_id": "a", "capacity": True}],
            }
        )
    with pytest.raises(ValidationError, match=r"rotations\.t"):
        state_from_dict({"schema": 1, "kind": "routing_state", "rotations": {"t": {"last": "a"}}})
    with pytest.raises(ValidationError, match=r"RoutingState\.weighted"):
        state_from_dict({"schema": 1, "kind": "routing_state", "weighted": {"t": {"a": "1"}}})


def test_bulk_follow_ups_are_due_in_each_owners_calendar() -> None:
    calendars = Calendars(organization=CALENDAR).with_owner(
        "rita", OrganizationCalendar(timezone="America/New_York")
    )
    p = policy(rule("baltics", RoundRobin(team_id="baltic"), follow_ups=[CALL]))
    bulk = route_many(p, [{}] * 3, teams=[BALTIC], now=FRIDAY_EVENING, calendar=calendars)
    due = {d.owner_id: d.follow_ups[0].due_at for d in bulk.decisions}
    assert due == {
        "ana": datetime(2026, 3, 9, 9, tzinfo=VILNIUS),
        "jonas": datetime(2026, 3, 9, 9, tzinfo=VILNIUS),
        # 18:30 in Vilnius is 11:30 in New York: rita is still at work.
        "rita": datetime(2026, 3, 6, 12, 30, tzinfo=ZoneInfo("America/New_York")),
    }
    single = route(p, {}, teams=[BALTIC], now=FRIDAY_EVENING, calendar=calendars)
    assert single.follow_ups == bulk.decisions[0].follow_ups
