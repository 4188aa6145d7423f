"""Properties of lead routing: round robin is fair and survives member changes,
capacity is never exceeded, weighted routing follows the weights, and routing is a
deterministic function of its inputs.

What exactly is claimed:

* **Fairness.** For a team whose members are all available and below capacity, from
  any starting state, over *every* window of consecutive round-robin assignments the
  members' counts differ by at most one.
* **Member changes.** Take any state and team ``T1``; change the team to ``T2`` by
  removing any members (the last one assigned included) and inserting new ones
  anywhere, keeping the relative order of those who stay. Then the assignments under
  ``T2``, restricted to the members who stayed, are exactly the assignments ``T1``
  would have made, restricted to the same members: the change never makes the
  rotation skip or repeat anyone who stayed. New members are the only addition, and
  by fairness each gets their turn within one round of ``T2``.
* **Capacity.** A member with a capacity who starts at or below it never ends above
  it, whatever the targets and loads; a member who is away, inactive or at capacity
  is never picked.
* **Weights.** Smooth weighted round robin from a fresh state: after any ``N``
  assignments each member's count is within one of ``N * weight / total``, and
  after ``k * total`` assignments it is exactly ``k * weight``.
* **Determinism.** The same inputs give the same decision, and `route_many` equals
  `route` applied lead by lead with the state and loads threaded through.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from salesflow.routing import Rotation, RoutingState, route, route_many
from salesflow.routing_policy import (
    LeastLoaded,
    Member,
    RoundRobin,
    RoutingPolicy,
    RoutingRule,
    Team,
    ToUser,
    Weighted,
)
from salesflow.worktime import OrganizationCalendar

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CALENDAR = OrganizationCalendar()
NAMES = [f"u{i}" for i in range(12)]


def single_rule(target: Any) -> RoutingPolicy:
    return RoutingPolicy(
        id="p",
        name="P",
        fallback_owner_id="fallback",
        rules=[RoutingRule(id="r", name="R", target=target)],
    )


def picks(team: Team, count: int, state: RoutingState | None = None) -> list[str]:
    result = route_many(
        single_rule(RoundRobin(team_id=team.id)),
        [{}] * count,
        teams=[team],
        state=state,
        now=NOW,
        calendar=CALENDAR,
    )
    return [d.owner_id for d in result.decisions]


def team_of(ids: list[str]) -> Team:
    return Team(id="t", members=[Member(user_id=u) for u in ids])


member_ids = st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True)


@st.composite
def rotations(draw: st.DrawFn, ids: list[str]) -> RoutingState:
    """Any state a team could be in: fresh, or after any member (present or gone)."""
    if draw(st.booleans()):
        return RoutingState()
    order = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    last = draw(st.sampled_from(order))
    return RoutingState(rotations={"t": Rotation(last=last, order=tuple(order))})


@given(data=st.data(), ids=member_ids, count=st.integers(1, 30))
def test_round_robin_is_fair_over_every_window(
    data: st.DataObject, ids: list[str], count: int
) -> None:
    state = data.draw(rotations(ids))
    owners = picks(team_of(ids), count, state)
    for start in range(count):
        for end in range(start + 1, count + 1):
            counts = Counter(owners[start:end])
            low = min(counts[u] for u in ids)
            assert max(counts.values()) - low <= 1, (owners, start, end)


@st.composite
def membership_change(draw: st.DrawFn) -> tuple[list[str], list[str], int]:
    before = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    kept = [u for u in before if draw(st.booleans())]
    if not kept:
        kept = [draw(st.sampled_from(before))]
    newcomers = draw(
        st.lists(st.sampled_from([n for n in NAMES if n not in before]), max_size=3, unique=True)
    )
    after = list(kept)
    for user in newcomers:
        after.insert(draw(st.integers(0, len(after))), user)
    return before, after, draw(st.integers(0, 8))


@given(change=membership_change(), more=st.integers(1, 20))
def test_member_changes_never_skip_or_repeat_those_who_stay(
    change: tuple[list[str], list[str], int], more: int
) -> None:
    before, after, warm_up = change
    state = route_many(
        single_rule(RoundRobin(team_id="t")),
        [{}] * warm_up,
        teams=[team_of(before)],
        now=NOW,
        calendar=CALENDAR,
    ).state
    stayed = set(before) & set(after)
    # Enough picks under both teams for `more` picks of members who stayed.
    rounds = more * max(len(before), len(after))
    old = [u for u in picks(team_of(before), rounds, state) if u in stayed][:more]
    new = [u for u in picks(team_of(after), rounds, state) if u in stayed][:more]
    assert new == old


teams_with_limits = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.integers(1, 4),  # weight
        st.one_of(st.none(), st.integers(0, 4)),  # capacity
        st.booleans(),  # active
        st.booleans(),  # away
        st.integers(0, 5),  # starting load
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda row: row[0],
)
targets = st.sampled_from(
    [RoundRobin(team_id="t"), Weighted(team_id="t"), LeastLoaded(team_id="t")]
)


@given(rows=teams_with_limits, target=targets, count=st.integers(1, 25))
def test_capacity_is_never_exceeded_and_unavailable_members_never_picked(
    rows: list[tuple[str, int, int | None, bool, bool, int]], target: Any, count: int
) -> None:
    team = Team(
        id="t",
        members=[
            Member(user_id=u, weight=w, capacity=c, active=a, away=away)
            for u, w, c, a, away, _ in rows
        ],
    )
    loads = {row[0]: row[5] for row in rows}
    policy = RoutingPolicy(
        id="p",
        name="P",
        fallback_owner_id="fallback",
        rules=[
            RoutingRule(id="r", name="R", target=target),
            RoutingRule(id="spill", name="Spill", target=ToUser(user_id="overflow")),
        ],
    )
    result = route_many(policy, [{}] * count, teams=[team], loads=loads, now=NOW, calendar=CALENDAR)
    running = dict(loads)
    by_id = {m.user_id: m for m in team.members}
    for decision in result.decisions:
        member = by_id.get(decision.owner_id)
        if member is not None:
            assert member.active
            assert not member.away
            assert member.capacity is None or running[member.user_id] < member.capacity
        else:
            assert decision.owner_id == "overflow"
        running[decision.owner_id] = running.get(decision.owner_id, 0) + 1
    assert running == dict(result.loads)
    for member in team.members:
        start = loads[member.user_id]
        if member.capacity is not None and start <= member.capacity:
            assert result.loads[member.user_id] <= member.capacity


@given(
    weights=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    count=st.integers(1, 60),
)
def test_weighted_converges_to_the_weights(weights: list[int], count: int) -> None:
    team = Team(id="t", members=[Member(user_id=NAMES[i], weight=w) for i, w in enumerate(weights)])
    result = route_many(
        single_rule(Weighted(team_id="t")), [{}] * count, teams=[team], now=NOW, calendar=CALENDAR
    )
    owners = [d.owner_id for d in result.decisions]
    total = sum(weights)
    for n in range(1, count + 1):
        counts = Counter(owners[:n])
        for i, weight in enumerate(weights):
            # within one lead of the exact share: an exhaustive check of every team of
            # up to 5 members with weights 1-6 found exactly 1 as the worst case
            # (weights 1, 1, 1, 6, 6 after 10 leads), so "< 1" was too strict
            assert abs(counts[NAMES[i]] - n * weight / total) <= 1
        if n % total == 0:
            assert all(counts[NAMES[i]] == n // total * w for i, w in enumerate(weights))


@given(
    rows=teams_with_limits,
    target=targets,
    countries=st.lists(st.sampled_from(["LT", "LV", "PL", None]), max_size=10),
)
def test_routing_is_deterministic_and_route_many_is_route_in_a_loop(
    rows: list[tuple[str, int, int | None, bool, bool, int]],
    target: Any,
    countries: list[str | None],
) -> None:
    from salesflow.conditions import field

    team = Team(
        id="t",
        members=[
            Member(user_id=u, weight=w, capacity=c, active=a, away=away)
            for u, w, c, a, away, _ in rows
        ],
    )
    loads = {row[0]: row[5] for row in rows}
    policy = RoutingPolicy(
        id="p",
        name="P",
        fallback_owner_id="fallback",
        rules=[
            RoutingRule(id="lt", name="LT", condition=field("country").eq("LT"), target=target),
            RoutingRule(
                id="lv",
                name="LV",
                condition=field("country").in_(["LV", "LT"]),
                target=RoundRobin(team_id="t"),
            ),
        ],
    )
    leads = [{"country": c} for c in countries]
    bulk = route_many(policy, leads, teams=[team], loads=loads, now=NOW, calendar=CALENDAR)
    again = route_many(policy, leads, teams=[team], loads=loads, now=NOW, calendar=CALENDAR)
    assert bulk == again
    state, running = RoutingState(), dict(loads)
    for lead, expected in zip(leads, bulk.decisions, strict=True):
        decision = route(
            policy, lead, teams=[team], loads=running, state=state, now=NOW, calendar=CALENDAR
        )
        assert decision == expected
        state = decision.state
        running[decision.owner_id] = running.get(decision.owner_id, 0) + 1
    assert state == bulk.state
