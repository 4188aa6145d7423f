"""Routing policies, teams and routing state to and from plain JSON-able dicts.

The policy document (schema 1)::

    {
      "schema": 1, "kind": "routing_policy",
      "id": "default", "version": 1, "name": "Default routing",
      "fallback_owner_id": "manager", "overflow": "next_rule",
      "fallback_follow_ups": [],
      "rules": [
        {"id": "baltics", "name": "Baltics",
         "condition": {"field": "country", "op": "in", "value": ["Lithuania", "Latvia"]},
         "target": {"kind": "round_robin", "team_id": "baltic"},
         "follow_ups": [{"kind": "phone_call", "subject": "Call the new lead",
                         "due_in": {"days": 0, "hours": 1}, "business_time": true}]}
      ]
    }

A target is ``{"kind": "user", "user_id": U}``, ``{"kind": "round_robin",
"team_id": T}``, ``{"kind": "weighted", "team_id": T, "weights": {U: W, ...}}``
(``weights`` optional) or ``{"kind": "least_loaded", "team_id": T}``. A condition is
the shared format of `salesflow.sequences.io.condition_to_dict`; a rule without one
matches every lead. A team is ``{"schema": 1, "kind": "team", "id", "name",
"members": [{"user_id", "weight", "capacity", "active", "away"}]}`` and the state is
``{"schema": 1, "kind": "routing_state", "rotations": {T: {"last", "order"}},
"weighted": {T: {U: N}}}``.

Reading is strict: unknown keys, missing keys and values of the wrong type raise
`ValidationError` naming the path (``rules[2].target.team_id``); a newer schema is
refused. Round trips are exact: ``from_dict(to_dict(p)) == p``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from salesflow.conditions import AllOf
from salesflow.documents import Table, check_document, describe, fail, join
from salesflow.errors import ValidationError
from salesflow.routing import Rotation, RoutingState
from salesflow.routing_policy import (
    ROUTING_POLICY,
    FollowUp,
    LeastLoaded,
    Member,
    RoundRobin,
    RoutingPolicy,
    RoutingRule,
    Target,
    Team,
    ToUser,
    Weighted,
)
from salesflow.sequences.definition import Span
from salesflow.sequences.io import condition_from_dict, condition_to_dict

__all__ = [
    "SCHEMA",
    "from_dict",
    "state_from_dict",
    "state_to_dict",
    "team_from_dict",
    "team_to_dict",
    "to_dict",
]

SCHEMA = 1
"""The schema number this version writes."""

Document = dict[str, Any]
T = TypeVar("T")

_TARGET_KINDS = ("user", "round_robin", "weighted", "least_loaded")


# --- writing -------------------------------------------------------------------------------


def _span(span: Span) -> Document:
    return {"days": span.days, "hours": span.hours}


def _follow_up(follow_up: FollowUp) -> Document:
    return {
        "kind": follow_up.kind.value,
        "subject": follow_up.subject,
        "due_in": _span(follow_up.due_in),
        "business_time": follow_up.business_time,
    }


def _target(target: Target) -> Document:
    if isinstance(target, ToUser):
        return {"kind": "user", "user_id": target.user_id}
    if isinstance(target, RoundRobin):
        return {"kind": "round_robin", "team_id": target.team_id}
    if isinstance(target, Weighted):
        doc: Document = {"kind": "weighted", "team_id": target.team_id}
        if target.weights is not None:
            doc["weights"] = dict(target.weights)
        return doc
    return {"kind": "least_loaded", "team_id": target.team_id}


def _rule(rule: RoutingRule) -> Document:
    doc: Document = {"id": rule.id, "name": rule.name}
    if not (isinstance(rule.condition, AllOf) and not rule.condition.conditions):
        doc["condition"] = condition_to_dict(rule.condition)
    doc["target"] = _target(rule.target)
    doc["follow_ups"] = [_follow_up(f) for f in rule.follow_ups]
    return doc


def to_dict(policy: RoutingPolicy) -> Document:
    """The policy as JSON values (see the module docstring).

    Raises:
        ValidationError: A condition holds a value JSON cannot carry.
    """
    return {
        "schema": SCHEMA,
        "kind": ROUTING_POLICY,
        "id": policy.id,
        "version": policy.version,
        "name": policy.name,
        "fallback_owner_id": policy.fallback_owner_id,
        "overflow": policy.overflow.value,
        "fallback_follow_ups": [_follow_up(f) for f in policy.fallback_follow_ups],
        "rules": [_rule(r) for r in policy.rules],
    }


def team_to_dict(team: Team) -> Document:
    """The team as JSON values (see the module docstring)."""
    return {
        "schema": SCHEMA,
        "kind": "team",
        "id": team.id,
        "name": team.name,
        "members": [
            {
                "user_id": m.user_id,
                "weight": m.weight,
                "capacity": m.capacity,
                "active": m.active,
                "away": m.away,
            }
            for m in team.members
        ],
    }


def state_to_dict(state: RoutingState) -> Document:
    """The routing state as JSON values, for the host to keep between routings."""
    return {
        "schema": SCHEMA,
        "kind": "routing_state",
        "rotations": {
            team_id: {"last": r.last, "order": list(r.order)}
            for team_id, r in state.rotations.items()
        },
        "weighted": {team_id: dict(c) for team_id, c in state.weighted.items()},
    }


# --- reading -------------------------------------------------------------------------------


def _build(path: str, make: Callable[[], T]) -> T:
    try:
        return make()
    except ValidationError as exc:
        fail(path, str(exc))


def _header(
    data: object,
    kind: str,
    keys: tuple[str, ...],
    optional: tuple[str, ...],
    *,
    imported: bool = False,
) -> Table:
    # only a policy is imported from users; teams and the state are written by the
    # engine from typed values, and read on every routing, so they skip the bounds walk
    if imported:
        check_document(data)
    required = ("schema", "kind", *keys)
    table = Table(data, "", (*required, *optional), required=required)
    schema = table.get("schema", int)
    if schema > SCHEMA or schema < 1:
        fail("schema", f"schema {schema} is not supported; this version reads 1 to {SCHEMA}")
    if table.get("kind", str) != kind:
        fail("kind", f"expected {kind!r}, got {describe(table.data['kind'])}")
    return table


def _span_from(data: object, path: str) -> Span:
    table = Table(data, path, ("days", "hours"))
    days, hours = table.get("days", int, 0), table.get("hours", int, 0)
    return _build(path, lambda: Span(days=days, hours=hours))


def _follow_up_from(data: object, path: str) -> FollowUp:
    table = Table(
        data, path, ("kind", "subject", "due_in", "business_time"), required=("kind", "subject")
    )
    kind, subject = table.get("kind", str), table.get("subject", str)
    due_in = _span_from(table.data.get("due_in", {}), table.where("due_in"))
    business = table.get("business_time", bool, True)
    return _build(
        path, lambda: FollowUp(kind=kind, subject=subject, due_in=due_in, business_time=business)
    )


def _target_from(data: object, path: str) -> Target:
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind not in _TARGET_KINDS:
        fail(
            join(path, "kind"),
            f"unknown target kind {describe(kind)}; expected one of {', '.join(_TARGET_KINDS)}",
        )
    if kind == "user":
        table = Table(data, path, ("kind", "user_id"), required=("kind", "user_id"))
        return ToUser(user_id=table.get("user_id", str))
    if kind == "weighted":
        table = Table(data, path, ("kind", "team_id", "weights"), required=("kind", "team_id"))
        weights = table.optional("weights", dict)
        team_id = table.get("team_id", str)
        return _build(path, lambda: Weighted(team_id=team_id, weights=weights))
    table = Table(data, path, ("kind", "team_id"), required=("kind", "team_id"))
    if kind == "round_robin":
        return RoundRobin(team_id=table.get("team_id", str))
    return LeastLoaded(team_id=table.get("team_id", str))


def _rule_from(data: object, path: str) -> RoutingRule:
    table = Table(
        data,
        path,
        ("id", "name", "target", "condition", "follow_ups"),
        required=("id", "name", "target"),
    )
    rule_id, name = table.get("id", str), table.get("name", str)
    condition = (
        AllOf(conditions=())
        if table.data.get("condition") is None
        else condition_from_dict(table.data["condition"])
    )
    target = _target_from(table.data["target"], table.where("target"))
    follow_ups = tuple(
        _follow_up_from(item, join(table.where("follow_ups"), i))
        for i, item in enumerate(table.get("follow_ups", list, []))
    )
    return RoutingRule(
        id=rule_id, name=name, condition=condition, target=target, follow_ups=follow_ups
    )


def from_dict(data: object) -> RoutingPolicy:
    """The policy of a document written by `to_dict`.

    The result is built but not validated; call
    `salesflow.routing_policy.require_valid` before using it.

    Raises:
        ValidationError: The document is malformed (the message names where).
    """
    table = _header(
        data,
        ROUTING_POLICY,
        ("id", "version", "name", "fallback_owner_id"),
        ("overflow", "fallback_follow_ups", "rules"),
        imported=True,
    )
    rules = tuple(
        _rule_from(item, join("rules", i)) for i, item in enumerate(table.get("rules", list, []))
    )
    fallback = tuple(
        _follow_up_from(item, join("fallback_follow_ups", i))
        for i, item in enumerate(table.get("fallback_follow_ups", list, []))
    )
    policy_id, version = table.get("id", str), table.get("version", int)
    name, owner = table.get("name", str), table.get("fallback_owner_id", str)
    overflow = table.get("overflow", str, "next_rule")
    return _build(
        "",
        lambda: RoutingPolicy(
            id=policy_id,
            version=version,
            name=name,
            rules=rules,
            fallback_owner_id=owner,
            fallback_follow_ups=fallback,
            overflow=overflow,
        ),
    )


def _member_from(data: object, path: str) -> Member:
    table = Table(
        data, path, ("user_id", "weight", "capacity", "active", "away"), required=("user_id",)
    )
    user_id, weight = table.get("user_id", str), table.get("weight", int, 1)
    capacity = table.optional("capacity", int)
    active, away = table.get("active", bool, True), table.get("away", bool, False)
    return Member(user_id=user_id, weight=weight, capacity=capacity, active=active, away=away)


def team_from_dict(data: object) -> Team:
    """The team of a document written by `team_to_dict`.

    Raises:
        ValidationError: The document is malformed (the message names where).
    """
    table = _header(data, "team", ("id",), ("name", "members"))
    members = tuple(
        _member_from(item, join("members", i))
        for i, item in enumerate(table.get("members", list, []))
    )
    return Team(id=table.get("id", str), name=table.optional("name", str), members=members)


def state_from_dict(data: object) -> RoutingState:
    """The routing state of a document written by `state_to_dict`.

    Raises:
        ValidationError: The document is malformed (the message names where).
    """
    table = _header(data, "routing_state", (), ("rotations", "weighted"))
    rotations: dict[str, Rotation] = {}
    for team_id, raw in table.get("rotations", dict, {}).items():
        path = join("rotations", str(team_id))
        entry = Table(raw, path, ("last", "order"), required=("last", "order"))
        last, order = entry.get("last", str), entry.get("order", list)
        rotations[team_id] = _build(path, partial(Rotation, last=last, order=order))
    weighted = table.get("weighted", dict, {})
    return _build("", lambda: RoutingState(rotations=rotations, weighted=weighted))
