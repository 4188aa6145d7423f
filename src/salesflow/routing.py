"""Lead routing (R3.3): assignment rules that give each new or imported lead an owner
and create its follow-up activities, as pure functions.

`route` takes a `RoutingPolicy` (see `salesflow.routing_policy`), one lead, the
current teams, each seller's open-lead count, the `RoutingState` and ``now``, and
returns a `RoutingDecision`: the owner, the rule that placed the lead, a readable
reason, the follow-up activities with their due times, and the new state. Nothing
is read from a store or a clock, so the same inputs always give the same decision.
`route_many` routes a list of leads in order (bulk assignment, CSV import), threading
the state and the loads through.

How a lead is placed:

1. The rules are tried in order; the first whose condition holds for the lead is
   the candidate.
2. Its target picks a member: `ToUser` always assigns to that user; `RoundRobin`,
   `Weighted` and `LeastLoaded` skip members who are inactive, away, or whose open
   leads have reached their capacity.
3. When no member of the team can take the lead, the policy's `Overflow` decides:
   by default the later rules are tried (so "Baltics team, else Europe team" is two
   rules), else the fallback owner gets it at once. The seeds do not say what a
   full team does; an overflow chain lets a host express both behaviours, and the
   fallback owner guarantees every lead an owner.
4. No rule placed it: the fallback owner gets it.

The round-robin pointer is the last member assigned, not an index, together with
the member order at that time: adding or removing members never makes the
rotation skip or repeat anyone who stayed (see `RoutingState`).

Example:
    >>> from datetime import UTC, datetime
    >>> from salesflow.conditions import field
    >>> from salesflow.routing_policy import Member, RoundRobin, RoutingPolicy, RoutingRule, Team
    >>> from salesflow.worktime import OrganizationCalendar
    >>> policy = RoutingPolicy(
    ...     id="default", name="Default", fallback_owner_id="manager",
    ...     rules=[RoutingRule(id="baltics", name="Baltics",
    ...                        condition=field("country").eq("Lithuania"),
    ...                        target=RoundRobin(team_id="baltic"))])
    >>> team = Team(id="baltic", members=[Member(user_id="ana"), Member(user_id="jonas")])
    >>> decision = route(policy, {"country": "Lithuania"}, teams=[team],
    ...                  now=datetime(2026, 1, 5, 9, tzinfo=UTC),
    ...                  calendar=OrganizationCalendar())
    >>> decision.owner_id, decision.rule_id
    ('ana', 'baltics')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs

from salesflow.conditions import AllOf, evaluate
from salesflow.errors import InvalidDefinition, ValidationError
from salesflow.lead import Lead
from salesflow.routing_policy import (
    FollowUp,
    LeastLoaded,
    Member,
    Overflow,
    RoundRobin,
    RoutingPolicy,
    RoutingRule,
    Team,
    ToUser,
    Weighted,
    validate,
)
from salesflow.routing_state import (
    BulkRouting,
    PlannedActivity,
    Rotation,
    RoutingDecision,
    RoutingState,
)
from salesflow.stores.base import record_value
from salesflow.values import Money
from salesflow.worktime import Calendars, OrganizationCalendar

__all__ = [
    "BulkRouting",
    "LeadFacts",
    "LeadInput",
    "PlannedActivity",
    "Rotation",
    "RoutingDecision",
    "RoutingState",
    "route",
    "route_many",
]

LeadInput: TypeAlias = Lead | Mapping[str, Any]
"""What can be routed: a `Lead` record, or a mapping of field name to value (for
example a CSV row after mapping, or `LeadFacts` of a lead plus its score)."""


# --- reading a lead --------------------------------------------------------------------


class LeadFacts(Mapping[str, Any]):
    """A lead's field values as a mapping, plus facts that are not fields.

    Conditions read ``country``, ``source``, ``annual_revenue`` (the amount),
    ``custom.<name>``, … from the record, and names in ``extra`` (``score``,
    ``grade``) from there first. Iterating yields only the ``extra`` names; reading
    any queryable lead field works.

    Args:
        lead: The lead.
        extra: Facts that override or add to the lead's fields.
    """

    def __init__(self, lead: Lead, extra: Mapping[str, Any] | None = None) -> None:
        self._lead = lead
        self._extra = dict(extra or {})

    def __getitem__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        return record_value(self._lead, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._extra)

    def __len__(self) -> int:
        return len(self._extra)


def _reader(lead: LeadInput) -> Any:
    if isinstance(lead, Lead):
        return lambda name: record_value(lead, name)
    if isinstance(lead, LeadFacts):
        return lead.__getitem__
    if not isinstance(lead, Mapping):
        raise ValidationError(
            f"cannot route {lead!r}: pass a Lead or a mapping of field name to value",
            field="lead",
            value=lead,
        )

    def read(name: str) -> Any:
        value = lead.get(name)
        # Money compares by amount, as it does in the stores.
        return value.amount if isinstance(value, Money) else value

    return read


# --- picking a member -------------------------------------------------------------------


def _why_not(member: Member, load: int) -> str | None:
    if not member.active:
        return "inactive"
    if member.away:
        return "away"
    if member.capacity is not None and load >= member.capacity:
        return f"at capacity ({load} of {member.capacity} open leads)"
    return None


@attrs.frozen
class _Pick:
    user_id: str | None  # None: nobody in the team can take the lead
    text: str
    state: RoutingState


def _skips(skipped: list[tuple[str, str]]) -> str:
    return "; ".join(f"{user!r} skipped: {why}" for user, why in skipped)


def _rotation_from(team: Team, rotation: Rotation | None) -> tuple[list[str], str]:
    """The members in the order the rotation offers them, and how it continues."""
    ids = list(team.member_ids)
    if rotation is None:
        return ids, "first in turn"
    if rotation.last in ids:
        start = ids.index(rotation.last) + 1
        note = f"next after {rotation.last!r}"
    else:
        # The last member assigned left: continue with whoever followed them then.
        old = rotation.order
        at = old.index(rotation.last) if rotation.last in old else -1
        present = set(ids)
        start = 0
        for step in range(1, len(old) + 1):
            candidate = old[(at + step) % len(old)]
            if candidate in present:
                start = ids.index(candidate)
                break
        note = f"next after {rotation.last!r}, who has left the team"
    return ids[start:] + ids[:start], note


def _round_robin(team: Team, label: str, loads: Mapping[str, int], state: RoutingState) -> _Pick:
    members = {m.user_id: m for m in team.members}
    order, note = _rotation_from(team, state.rotations.get(team.id))
    skipped: list[tuple[str, str]] = []
    for user_id in order:
        why = _why_not(members[user_id], loads.get(user_id, 0))
        if why is not None:
            skipped.append((user_id, why))
            continue
        rotations = dict(state.rotations)
        rotations[team.id] = Rotation(last=user_id, order=team.member_ids)
        text = f"round robin of team {label!r} picked {user_id!r} ({note})"
        # Name everyone who cannot take a lead now, not only those passed over, so the
        # explanation is the same whichever way round the rotation stands.
        _, unavailable = _eligible(team, loads)
        if unavailable:
            text += "; " + _skips(unavailable)
        return _Pick(user_id, text, attrs.evolve(state, rotations=rotations))
    return _Pick(None, _skips(skipped), state)


def _eligible(team: Team, loads: Mapping[str, int]) -> tuple[list[Member], list[tuple[str, str]]]:
    eligible: list[Member] = []
    skipped: list[tuple[str, str]] = []
    for member in team.members:
        why = _why_not(member, loads.get(member.user_id, 0))
        if why is None:
            eligible.append(member)
        else:
            skipped.append((member.user_id, why))
    return eligible, skipped


def _weighted(
    team: Team, target: Weighted, label: str, loads: Mapping[str, int], state: RoutingState
) -> _Pick:
    eligible, skipped = _eligible(team, loads)
    if not eligible:
        return _Pick(None, _skips(skipped), state)
    overrides = target.weights or {}
    weight = {m.user_id: overrides.get(m.user_id, m.weight) for m in eligible}
    total = sum(weight.values())
    # Counters of members who left are dropped; those who cannot take a lead now keep
    # theirs unchanged, so they neither gain nor lose turns while away.
    old = state.weighted.get(team.id, {})
    counters = {u: old[u] for u in team.member_ids if u in old}
    for member in eligible:
        counters[member.user_id] = counters.get(member.user_id, 0) + weight[member.user_id]
    position = {m.user_id: i for i, m in enumerate(eligible)}
    pick = max(weight, key=lambda u: (counters[u], -position[u]))
    counters[pick] -= total
    weighted = dict(state.weighted)
    weighted[team.id] = counters
    text = (
        f"weighted round robin of team {label!r} picked {pick!r} (weight {weight[pick]} of {total})"
    )
    if skipped:
        text += "; " + _skips(skipped)
    return _Pick(pick, text, attrs.evolve(state, weighted=weighted))


def _least_loaded(team: Team, label: str, loads: Mapping[str, int], state: RoutingState) -> _Pick:
    eligible, skipped = _eligible(team, loads)
    if not eligible:
        return _Pick(None, _skips(skipped), state)
    # min() keeps the first of equals, so ties go by team order.
    pick = min(eligible, key=lambda m: loads.get(m.user_id, 0)).user_id
    text = f"least loaded member of team {label!r} is {pick!r} ({loads.get(pick, 0)} open leads)"
    if skipped:
        text += "; " + _skips(skipped)
    return _Pick(pick, text, state)


def _pick(
    rule: RoutingRule, teams: Mapping[str, Team], loads: Mapping[str, int], state: RoutingState
) -> _Pick:
    target = rule.target
    if isinstance(target, ToUser):
        return _Pick(target.user_id, f"assigned to {target.user_id!r}", state)
    team = teams.get(target.team_id)
    if team is None:
        known = ", ".join(repr(t) for t in sorted(teams)) or "none"
        raise InvalidDefinition(
            [
                f"rule {rule.id!r} routes to team {target.team_id!r}, which is not among "
                f"the teams given ({known}); pass it in teams= or change the rule"
            ]
        )
    label = team.name or team.id
    if not team.members:
        return _Pick(None, f"team {label!r} has no members", state)
    if isinstance(target, RoundRobin):
        return _round_robin(team, label, loads, state)
    if isinstance(target, Weighted):
        return _weighted(team, target, label, loads, state)
    assert isinstance(target, LeastLoaded)
    return _least_loaded(team, label, loads, state)


# --- follow-ups -------------------------------------------------------------------------


def _due(follow_up: FollowUp, now: datetime, calendar: OrganizationCalendar) -> datetime:
    span = follow_up.due_in
    if not follow_up.business_time:
        return calendar.schedule_after(now, span)
    start = calendar.add_working_days(now, span.days) if span.days else now
    return calendar.add_working_time(start, timedelta(hours=span.hours))


def _plan(
    follow_ups: tuple[FollowUp, ...],
    owner_id: str,
    now: datetime,
    calendar: OrganizationCalendar | Calendars,
    cache: dict[tuple[FollowUp, int], datetime],
) -> tuple[PlannedActivity, ...]:
    own = calendar.for_owner(owner_id) if isinstance(calendar, Calendars) else calendar
    planned = []
    for follow_up in follow_ups:
        # route_many routes every lead at the same instant, so a due time depends only
        # on the follow-up and the owner's calendar: compute it once.
        key = (follow_up, id(own))
        due = cache.get(key)
        if due is None:
            due = cache[key] = _due(follow_up, now, own)
        planned.append(
            PlannedActivity(
                kind=follow_up.kind,
                subject=follow_up.subject.strip(),
                owner_id=owner_id,
                due_at=due,
            )
        )
    return tuple(planned)


# --- routing ------------------------------------------------------------------------------


def _describe(rule: RoutingRule) -> str:
    condition = rule.condition
    if isinstance(condition, AllOf) and not condition.conditions:
        return "every lead"
    return condition.describe()


def _check_now(now: object) -> datetime:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValidationError(
            f"now={now!r} must be an aware datetime (with a tzinfo such as datetime.UTC); "
            f"naive times are ambiguous",
            field="now",
            value=now,
        )
    return now


def _check_calendar(calendar: object) -> None:
    if not isinstance(calendar, OrganizationCalendar | Calendars):
        raise ValidationError(
            f"calendar={calendar!r} must be an OrganizationCalendar or Calendars; follow-ups "
            f"are due in the owner's working time",
            field="calendar",
            value=calendar,
        )


def _check_loads(loads: object) -> Mapping[str, int]:
    if loads is None:
        return {}
    if not isinstance(loads, Mapping) or not all(
        isinstance(u, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 0
        for u, n in loads.items()
    ):
        raise ValidationError(
            f"loads={loads!r} must map user ids to their open-lead counts (whole numbers >= 0)",
            field="loads",
            value=loads,
        )
    return loads


def _prepare(
    policy: RoutingPolicy, teams: Iterable[Team], state: RoutingState | None
) -> tuple[dict[str, Team], RoutingState]:
    if not isinstance(policy, RoutingPolicy):
        raise ValidationError(
            f"policy={policy!r} must be a RoutingPolicy", field="policy", value=policy
        )
    team_list = list(teams)
    if not all(isinstance(t, Team) for t in team_list):
        raise ValidationError(
            f"teams={team_list!r} must be Team values", field="teams", value=team_list
        )
    problems = validate(policy, teams=team_list)
    # A team the rules do not use may be mid-edit; only the teams routed to must be sound.
    if problems:
        raise InvalidDefinition([p.message for p in problems])
    if state is not None and not isinstance(state, RoutingState):
        raise ValidationError(
            f"state={state!r} must be a RoutingState (or None to start fresh)",
            field="state",
            value=state,
        )
    return {t.id: t for t in team_list}, state or RoutingState()


def _route(
    policy: RoutingPolicy,
    lead: LeadInput,
    teams: Mapping[str, Team],
    loads: Mapping[str, int],
    state: RoutingState,
    now: datetime,
    calendar: OrganizationCalendar | Calendars,
    cache: dict[tuple[FollowUp, int], datetime],
) -> RoutingDecision:
    read = _reader(lead)
    notes: list[str] = []
    for rule in policy.rules:
        if not evaluate(rule.condition, read):
            continue
        matched = f"rule {rule.name!r} matched: {_describe(rule)}"
        pick = _pick(rule, teams, loads, state)
        if pick.user_id is not None:
            return RoutingDecision(
                owner_id=pick.user_id,
                rule_id=rule.id,
                policy_id=policy.id,
                policy_version=policy.version,
                reason="; ".join([*notes, matched, pick.text]),
                follow_ups=_plan(rule.follow_ups, pick.user_id, now, calendar, cache),
                state=pick.state,
            )
        label = getattr(rule.target, "team_id", "")
        notes.append(f"{matched}, but no member of team {label!r} can take it ({pick.text})")
        if policy.overflow is Overflow.FALLBACK:
            break
    if not notes:
        notes.append("no rule matched")
    elif policy.overflow is Overflow.NEXT_RULE:
        notes.append("no later rule could place it")
    owner = policy.fallback_owner_id
    notes.append(f"assigned to the fallback owner {owner!r}")
    return RoutingDecision(
        owner_id=owner,
        rule_id=None,
        policy_id=policy.id,
        policy_version=policy.version,
        reason="; ".join(notes),
        follow_ups=_plan(policy.fallback_follow_ups, owner, now, calendar, cache),
        state=state,
    )


def route(
    policy: RoutingPolicy,
    lead: LeadInput,
    *,
    teams: Iterable[Team],
    loads: Mapping[str, int] | None = None,
    state: RoutingState | None = None,
    now: datetime,
    calendar: OrganizationCalendar | Calendars,
) -> RoutingDecision:
    """Decide who gets ``lead`` (see the module docstring for the rules).

    Args:
        policy: The routing policy.
        lead: A `Lead`, or a mapping of field name to value; wrap a lead in
            `LeadFacts` to add facts such as its score.
        teams: The current teams (at least every team the rules route to).
        loads: User id → open leads they own now; missing users own none.
        state: The routing state from the previous decision; ``None`` starts fresh.
        now: The routing instant (aware); follow-ups are due relative to it.
        calendar: The organization calendar, or `Calendars` to schedule each
            owner's follow-ups in their own working time.

    Returns:
        The decision, with the new state; the inputs are unchanged.

    Raises:
        InvalidDefinition: The policy or a team it routes to is invalid (every
            problem is listed), or a rule names a team not in ``teams``.
        ValidationError: ``now`` is naive, or an argument has the wrong type, or a
            condition reads a field a `Lead` does not have.
    """
    index, start = _prepare(policy, teams, state)
    _check_calendar(calendar)
    moment = _check_now(now)
    return _route(policy, lead, index, _check_loads(loads), start, moment, calendar, {})


def route_many(
    policy: RoutingPolicy,
    leads: Iterable[LeadInput],
    *,
    teams: Iterable[Team],
    loads: Mapping[str, int] | None = None,
    state: RoutingState | None = None,
    now: datetime,
    calendar: OrganizationCalendar | Calendars,
) -> BulkRouting:
    """Route ``leads`` in order, as `route` would one after another: each decision
    starts from the previous one's state, and each assignment adds one open lead to
    its owner's load (so capacities and least-loaded picks see the earlier leads).

    Args:
        policy: The routing policy.
        leads: The leads, in the order to assign them.
        teams: As for `route`.
        loads: As for `route`; not changed (the result carries the new loads).
        state: As for `route`.
        now: As for `route`; every lead is routed at this instant.
        calendar: As for `route`.

    Returns:
        The decisions in order, the final state and the final loads.

    Raises:
        InvalidDefinition: As for `route`, before any lead is routed.
        ValidationError: As for `route`.
    """
    index, current = _prepare(policy, teams, state)
    _check_calendar(calendar)
    moment = _check_now(now)
    counts = dict(_check_loads(loads))
    decisions: list[RoutingDecision] = []
    cache: dict[tuple[FollowUp, int], datetime] = {}
    for lead in leads:
        decision = _route(policy, lead, index, counts, current, moment, calendar, cache)
        decisions.append(decision)
        counts[decision.owner_id] = counts.get(decision.owner_id, 0) + 1
        current = decision.state
    return BulkRouting(decisions=tuple(decisions), state=current, loads=MappingProxyType(counts))
