"""Routing definitions: policies, rules, targets, follow-ups, teams, and their validation.

A `RoutingPolicy` is an immutable, versioned definition (DESIGN §1.3): ordered
`RoutingRule` values, each a condition on lead fields (the shared predicate language
of `salesflow.conditions`), a target (`ToUser`, `RoundRobin`, `Weighted`,
`LeastLoaded`) and optional `FollowUp` activities, plus a fallback owner. Teams
(`Team`, `Member`) are not part of the policy: members join, leave and go away far
more often than the rules change, so the host passes its current teams to
`salesflow.routing.route` each time.

Building a value checks only types (so an editor can hold a half-finished policy);
`validate` reports every semantic problem at once (duplicate ids, empty teams,
non-positive weights, …) and `require_valid` turns them into one
`InvalidDefinition`. Routing validates before it picks anyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs

from salesflow.activity import ActivityKind, to_kind
from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Not
from salesflow.errors import InvalidDefinition, ValidationError
from salesflow.sequences.definition import Span
from salesflow.values import to_enum

__all__ = [
    "FOLLOW_UP_KINDS",
    "ROUTING_POLICY",
    "FollowUp",
    "LeastLoaded",
    "Member",
    "Overflow",
    "RoundRobin",
    "RoutingPolicy",
    "RoutingProblem",
    "RoutingProblemCode",
    "RoutingRule",
    "Target",
    "Team",
    "ToUser",
    "Weighted",
    "require_valid",
    "team_problems",
    "validate",
]

ROUTING_POLICY = "routing_policy"
"""The definition kind of routing policies in the store."""

FOLLOW_UP_KINDS = frozenset(
    {
        ActivityKind.PHONE_CALL,
        ActivityKind.TASK,
        ActivityKind.EMAIL,
        ActivityKind.APPOINTMENT,
        ActivityKind.LINKEDIN,
        ActivityKind.SMS,
    }
)
"""Activity kinds a follow-up may create: the ones a seller still has to do (notes
and posts are created completed, so they cannot be "due")."""

_MAX_SUBJECT = 200  # the limit of Activity.subject


# --- type checks (construction) -------------------------------------------------------


def _where(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _is_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        where = _where(instance, attribute)
        raise ValidationError(f"{where}={value!r} must be text (a str)", field=where, value=value)


def _is_optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _is_text(instance, attribute, value)


def _is_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        where = _where(instance, attribute)
        raise ValidationError(
            f"{where}={value!r} must be a whole number (an int)", field=where, value=value
        )


def _is_optional_int(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _is_int(instance, attribute, value)


def _is_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        where = _where(instance, attribute)
        raise ValidationError(f"{where}={value!r} must be True or False", field=where, value=value)


def _is_condition(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Compare | AllOf | AnyOf | Not):
        where = _where(instance, attribute)
        raise ValidationError(
            f"{where}={value!r} must be a condition built with salesflow.conditions "
            f"(field('country').eq('Lithuania'), all_of(...), ...)",
            field=where,
            value=value,
        )


def _is_span(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Span):
        where = _where(instance, attribute)
        raise ValidationError(
            f"{where}={value!r} must be a Span(days=..., hours=...)", field=where, value=value
        )


def _tuple_of(value: object, kind: type, where: str) -> tuple[Any, ...]:
    items = tuple(value) if isinstance(value, list | tuple) else None
    if items is None or not all(isinstance(item, kind) for item in items):
        raise ValidationError(
            f"{where}={value!r} must be a list of {kind.__name__} values",
            field=where,
            value=value,
        )
    return items


def _members(value: object) -> tuple[Member, ...]:
    return _tuple_of(value, Member, "Team.members")


def _rules(value: object) -> tuple[RoutingRule, ...]:
    return _tuple_of(value, RoutingRule, "RoutingPolicy.rules")


def _follow_ups(value: object) -> tuple[FollowUp, ...]:
    return _tuple_of(value, FollowUp, "follow_ups")


def _weights(value: object) -> Mapping[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        raise ValidationError(
            f"Weighted.weights={value!r} must map user ids (str) to whole-number weights, "
            f"or be None to use each member's own weight",
            field="Weighted.weights",
            value=value,
        )
    # A read-only copy keeps the frozen value immutable.
    return MappingProxyType(dict(value))


def _overflow(value: object) -> Overflow:
    result: Overflow = to_enum(Overflow, value, "RoutingPolicy.overflow", optional=False)
    return result


# --- teams ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Member:
    """One seller in a team.

    Attributes:
        user_id: The seller's user id (the owner id leads get).
        weight: Their share under `Weighted` routing (a member with weight 2 gets
            twice the leads of one with weight 1); must be positive.
        capacity: The most open leads they may own; ``None`` for no limit. A
            member whose open-lead count has reached it is skipped.
        active: False for a user who no longer takes leads (left, disabled).
        away: True while they are away (holiday, sick); skipped until back.
    """

    user_id: str = attrs.field(validator=_is_text)
    weight: int = attrs.field(default=1, validator=_is_int)
    capacity: int | None = attrs.field(default=None, validator=_is_optional_int)
    active: bool = attrs.field(default=True, validator=_is_bool)
    away: bool = attrs.field(default=False, validator=_is_bool)


@attrs.frozen(kw_only=True)
class Team:
    """A team of sellers; the member order is the round-robin order.

    Attributes:
        id: The team's id, which targets name.
        members: The members, in rotation order.
        name: A display name; defaults to the id in explanations.
    """

    id: str = attrs.field(validator=_is_text)
    members: tuple[Member, ...] = attrs.field(default=(), converter=_members)
    name: str | None = attrs.field(default=None, validator=_is_optional_text)

    @property
    def member_ids(self) -> tuple[str, ...]:
        """The members' user ids, in rotation order."""
        return tuple(m.user_id for m in self.members)


# --- targets ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ToUser:
    """Assign to one named user, always.

    A named user is not checked for availability or capacity (no team says
    whether they are away); route to a one-member team to get those checks.
    """

    user_id: str = attrs.field(validator=_is_text)


@attrs.frozen(kw_only=True)
class RoundRobin:
    """Assign to the team's members in turn, skipping those who cannot take a lead."""

    team_id: str = attrs.field(validator=_is_text)


@attrs.frozen(kw_only=True)
class Weighted:
    """Assign to the team's members in proportion to their weights (smooth weighted
    round robin: deterministic, and spread out rather than in bursts).

    Attributes:
        team_id: The team.
        weights: User id → weight for this rule, overriding `Member.weight`;
            members left out keep their own weight. ``None`` uses the members'
            weights.
    """

    team_id: str = attrs.field(validator=_is_text)
    weights: Mapping[str, int] | None = attrs.field(default=None, converter=_weights, hash=False)


@attrs.frozen(kw_only=True)
class LeastLoaded:
    """Assign to the member with the fewest open leads (ties: team order)."""

    team_id: str = attrs.field(validator=_is_text)


Target: TypeAlias = ToUser | RoundRobin | Weighted | LeastLoaded
_TARGETS = (ToUser, RoundRobin, Weighted, LeastLoaded)


def _is_target(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, _TARGETS):
        where = _where(instance, attribute)
        raise ValidationError(
            f"{where}={value!r} must be ToUser, RoundRobin, Weighted or LeastLoaded",
            field=where,
            value=value,
        )


# --- rules and policies -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FollowUp:
    """An activity created for the new owner when a rule assigns a lead.

    Attributes:
        kind: What to create (phone call, task, email, appointment, LinkedIn, SMS).
        subject: Its subject line.
        due_in: How long after routing it is due.
        business_time: True (the default) counts ``due_in`` in the owner's working
            time: the days are working days and the hours working hours, so "1 hour"
            on a Friday evening is Monday one hour after work starts. False counts
            calendar days (same local wall time) plus elapsed hours.
    """

    kind: ActivityKind = attrs.field(converter=to_kind)
    subject: str = attrs.field(validator=_is_text)
    due_in: Span = attrs.field(factory=Span, validator=_is_span)
    business_time: bool = attrs.field(default=True, validator=_is_bool)


_ALWAYS = AllOf(conditions=())


@attrs.frozen(kw_only=True)
class RoutingRule:
    """One assignment rule: when the condition holds, the target gets the lead.

    Attributes:
        id: Unique within the policy.
        name: A display name used in explanations.
        condition: A condition on lead fields (``country``, ``source``,
            ``industry``, ``annual_revenue``, ``custom.<name>``, and facts the host
            adds such as ``score``); the default matches every lead.
        target: Who gets the lead.
        follow_ups: Activities to create for the new owner.
    """

    id: str = attrs.field(validator=_is_text)
    name: str = attrs.field(validator=_is_text)
    condition: Condition = attrs.field(default=_ALWAYS, validator=_is_condition)
    target: Target = attrs.field(validator=_is_target)
    follow_ups: tuple[FollowUp, ...] = attrs.field(default=(), converter=_follow_ups)


class Overflow(StrEnum):
    """What happens when a rule matches but none of its team's members can take the lead."""

    NEXT_RULE = "next_rule"
    """Try the later rules in order (an overflow chain), then the fallback owner."""
    FALLBACK = "fallback"
    """Give it to the fallback owner at once."""


@attrs.frozen(kw_only=True)
class RoutingPolicy:
    """An ordered list of assignment rules: the first rule that matches and can place
    the lead wins; otherwise the fallback owner gets it.

    Attributes:
        id: The policy's id (the same for all its versions).
        version: 1, 2, … in publication order.
        name: A display name.
        rules: The rules, in the order they are tried.
        fallback_owner_id: Who gets a lead no rule places (a user or a queue
            owner), so every routed lead has an owner.
        fallback_follow_ups: Activities created when the fallback owner gets a lead.
        overflow: What a matching rule whose team cannot take the lead does;
            `Overflow.NEXT_RULE` by default.
    """

    id: str = attrs.field(validator=_is_text)
    version: int = attrs.field(default=1, validator=_is_int)
    name: str = attrs.field(validator=_is_text)
    rules: tuple[RoutingRule, ...] = attrs.field(default=(), converter=_rules)
    fallback_owner_id: str = attrs.field(validator=_is_text)
    fallback_follow_ups: tuple[FollowUp, ...] = attrs.field(default=(), converter=_follow_ups)
    overflow: Overflow = attrs.field(default=Overflow.NEXT_RULE, converter=_overflow)

    def team_ids(self) -> tuple[str, ...]:
        """The ids of the teams the rules route to, first use first, without repeats."""
        seen: dict[str, None] = {}
        for rule in self.rules:
            if not isinstance(rule.target, ToUser):
                seen.setdefault(rule.target.team_id, None)
        return tuple(seen)


# --- validation ---------------------------------------------------------------------


class RoutingProblemCode(StrEnum):
    """What is wrong; the ``code`` of a `RoutingProblem`, stable for hosts to match on."""

    EMPTY_ID = "empty_id"
    BAD_VERSION = "bad_version"
    DUPLICATE_RULE = "duplicate_rule"
    EMPTY_TEAM = "empty_team"
    UNKNOWN_TEAM = "unknown_team"
    DUPLICATE_TEAM = "duplicate_team"
    DUPLICATE_MEMBER = "duplicate_member"
    BAD_WEIGHT = "bad_weight"
    BAD_CAPACITY = "bad_capacity"
    WEIGHT_FOR_NON_MEMBER = "weight_for_non_member"
    BAD_FOLLOW_UP = "bad_follow_up"


@attrs.frozen
class RoutingProblem:
    """One thing wrong with a policy or a team.

    Attributes:
        where: What is at fault: ``"rule 'baltics'"``, ``"team 'baltic'"`` or
            ``"policy 'default'"``.
        code: A `RoutingProblemCode` value.
        message: A complete sentence naming the culprit and saying how to fix it.
    """

    where: str
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def _blank(value: str) -> bool:
    return not value.strip() or value != value.strip()


def team_problems(team: Team) -> list[RoutingProblem]:
    """Every problem of one team: no members, blank or repeated user ids, weights
    below 1, negative capacities.

    Args:
        team: The team to check.

    Returns:
        The problems in member order; empty when the team is usable.
    """
    where = f"team {team.id!r}"
    problems: list[RoutingProblem] = []
    if _blank(team.id):
        problems.append(
            RoutingProblem(
                where,
                RoutingProblemCode.EMPTY_ID,
                f"team id {team.id!r} is blank or has surrounding spaces; give it a plain id",
            )
        )
    if not team.members:
        problems.append(
            RoutingProblem(
                where,
                RoutingProblemCode.EMPTY_TEAM,
                f"team {team.id!r} has no members; add at least one, or route its rules elsewhere",
            )
        )
    seen: set[str] = set()
    for member in team.members:
        who = f"member {member.user_id!r} of team {team.id!r}"
        if _blank(member.user_id):
            problems.append(
                RoutingProblem(
                    where,
                    RoutingProblemCode.EMPTY_ID,
                    f"{who}: the user id is blank or has surrounding spaces; use the user's id",
                )
            )
        if member.user_id in seen:
            problems.append(
                RoutingProblem(
                    where,
                    RoutingProblemCode.DUPLICATE_MEMBER,
                    f"{who} is listed more than once; list each member once",
                )
            )
        seen.add(member.user_id)
        if member.weight < 1:
            problems.append(
                RoutingProblem(
                    where,
                    RoutingProblemCode.BAD_WEIGHT,
                    f"{who} has weight {member.weight}; weights must be 1 or more (mark the "
                    f"member away or remove them to stop their leads)",
                )
            )
        if member.capacity is not None and member.capacity < 0:
            problems.append(
                RoutingProblem(
                    where,
                    RoutingProblemCode.BAD_CAPACITY,
                    f"{who} has capacity {member.capacity}; use 0 or more open leads, or "
                    f"None for no limit",
                )
            )
    return problems


def _follow_up_problems(follow_ups: tuple[FollowUp, ...], where: str) -> list[RoutingProblem]:
    problems: list[RoutingProblem] = []
    for i, follow_up in enumerate(follow_ups):
        if follow_up.kind not in FOLLOW_UP_KINDS:
            allowed = ", ".join(sorted(k.value for k in FOLLOW_UP_KINDS))
            problems.append(
                RoutingProblem(
                    where,
                    RoutingProblemCode.BAD_FOLLOW_UP,
                    f"{where}: follow-up {i + 1} is a {follow_up.kind.value!r}, which is "
                    f"never due; use one of {allowed}",
                )
            )
        if not follow_up.subject.strip() or len(follow_up.subject.strip()) > _MAX_SUBJECT:
            problems.append(
                RoutingProblem(
                    where,
                    RoutingProblemCode.BAD_FOLLOW_UP,
                    f"{where}: follow-up {i + 1} has subject {follow_up.subject!r}; give it a "
                    f"subject of 1 to {_MAX_SUBJECT} characters",
                )
            )
    return problems


def _rule_problems(
    rule: RoutingRule, teams: Mapping[str, Team] | None, seen: set[str]
) -> list[RoutingProblem]:
    where = f"rule {rule.id!r}"
    problems: list[RoutingProblem] = []
    if _blank(rule.id):
        problems.append(
            RoutingProblem(
                where,
                RoutingProblemCode.EMPTY_ID,
                f"rule id {rule.id!r} is blank or has surrounding spaces; give it a plain id",
            )
        )
    if rule.id in seen:
        problems.append(
            RoutingProblem(
                where,
                RoutingProblemCode.DUPLICATE_RULE,
                f"rule id {rule.id!r} is used by more than one rule; give each rule its own id",
            )
        )
    seen.add(rule.id)
    target = rule.target
    if isinstance(target, ToUser):
        if _blank(target.user_id):
            problems.append(
                RoutingProblem(
                    where,
                    RoutingProblemCode.EMPTY_ID,
                    f"{where} assigns to user {target.user_id!r}; name a user id",
                )
            )
    else:
        team = None if teams is None else teams.get(target.team_id)
        if teams is not None and team is None:
            known = ", ".join(repr(t) for t in sorted(teams)) or "none"
            problems.append(
                RoutingProblem(
                    where,
                    RoutingProblemCode.UNKNOWN_TEAM,
                    f"{where} routes to team {target.team_id!r}, which does not exist; use "
                    f"one of the teams ({known}) or create it",
                )
            )
        if isinstance(target, Weighted) and target.weights is not None:
            for user_id, weight in target.weights.items():
                if weight < 1:
                    problems.append(
                        RoutingProblem(
                            where,
                            RoutingProblemCode.BAD_WEIGHT,
                            f"{where} gives {user_id!r} weight {weight}; weights must be 1 or more",
                        )
                    )
                if team is not None and user_id not in team.member_ids:
                    problems.append(
                        RoutingProblem(
                            where,
                            RoutingProblemCode.WEIGHT_FOR_NON_MEMBER,
                            f"{where} gives a weight to {user_id!r}, who is not a member of "
                            f"team {target.team_id!r}; remove the weight or add the member",
                        )
                    )
    problems.extend(_follow_up_problems(rule.follow_ups, where))
    return problems


def _team_index(teams: Iterable[Team]) -> tuple[dict[str, Team], list[RoutingProblem]]:
    index: dict[str, Team] = {}
    problems: list[RoutingProblem] = []
    for team in teams:
        if team.id in index:
            problems.append(
                RoutingProblem(
                    f"team {team.id!r}",
                    RoutingProblemCode.DUPLICATE_TEAM,
                    f"team id {team.id!r} is given more than once; give each team its own id",
                )
            )
        index.setdefault(team.id, team)
    return index, problems


def validate(policy: RoutingPolicy, *, teams: Iterable[Team] | None = None) -> list[RoutingProblem]:
    """Every problem of ``policy`` (and of the teams it routes to), never stopping at
    the first.

    The rules: ids are plain and non-blank, the version is 1 or more, rule ids are
    unique, follow-ups are activities a seller does with a subject of 1 to 200
    characters, `Weighted` weights are 1 or more; when ``teams`` is given, every
    team a rule names exists, team ids are unique, and each team used has members,
    with unique user ids, weights of 1 or more, capacities of 0 or more, and
    `Weighted` weights only for its members.

    Args:
        policy: The policy to check.
        teams: The current teams; ``None`` checks the policy on its own.

    Returns:
        The problems in a stable order (policy, then rule by rule, then teams in the
        order the rules first use them); empty when all is well.
    """
    where = f"policy {policy.id!r}"
    problems: list[RoutingProblem] = []
    if _blank(policy.id):
        problems.append(
            RoutingProblem(
                where,
                RoutingProblemCode.EMPTY_ID,
                f"policy id {policy.id!r} is blank or has surrounding spaces; give it a plain id",
            )
        )
    if policy.version < 1:
        problems.append(
            RoutingProblem(
                where,
                RoutingProblemCode.BAD_VERSION,
                f"{where} has version {policy.version}; versions count from 1",
            )
        )
    if _blank(policy.fallback_owner_id):
        problems.append(
            RoutingProblem(
                where,
                RoutingProblemCode.EMPTY_ID,
                f"{where} has fallback owner {policy.fallback_owner_id!r}; name the user who "
                f"gets leads no rule places",
            )
        )
    problems.extend(_follow_up_problems(policy.fallback_follow_ups, f"{where} (fallback)"))
    index: dict[str, Team] | None = None
    if teams is not None:
        index, duplicates = _team_index(teams)
        problems.extend(duplicates)
    seen: set[str] = set()
    for rule in policy.rules:
        problems.extend(_rule_problems(rule, index, seen))
    if index is not None:
        for team_id in policy.team_ids():
            if team_id in index:
                problems.extend(team_problems(index[team_id]))
    return problems


def require_valid(policy: RoutingPolicy, *, teams: Iterable[Team] | None = None) -> None:
    """Raise unless ``policy`` (and the teams it uses) are valid.

    Args:
        policy: The policy to check.
        teams: As for `validate`.

    Raises:
        InvalidDefinition: With every problem's message, when `validate` finds any.
    """
    problems = validate(policy, teams=teams)
    if problems:
        raise InvalidDefinition(problems=[p.message for p in problems])
