"""Routing state and results as values: `RoutingState` (round-robin pointers and
weighted counters per team), `RoutingDecision`, `PlannedActivity` and `BulkRouting`.

`salesflow.routing` produces them; see its docstring for how a lead is placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from salesflow.activity import ActivityKind
from salesflow.errors import ValidationError

__all__ = ["BulkRouting", "PlannedActivity", "Rotation", "RoutingDecision", "RoutingState"]


# --- state ------------------------------------------------------------------------------


def _text_tuple(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationError(
            f"Rotation.order={value!r} must be a list of user ids",
            field="Rotation.order",
            value=value,
        )
    return tuple(value)


def _is_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError(
            f"Rotation.{attribute.name}={value!r} must be a user id (str)",
            field=f"Rotation.{attribute.name}",
            value=value,
        )


@attrs.frozen(kw_only=True)
class Rotation:
    """Where one team's round robin stands.

    Attributes:
        last: The member who got the team's last round-robin lead.
        order: The team's member order when they got it; used only when ``last``
            has since left the team, to continue with whoever followed them.
    """

    last: str = attrs.field(validator=_is_text)
    order: tuple[str, ...] = attrs.field(converter=_text_tuple)


def _rotations(value: object) -> Mapping[str, Rotation]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Rotation) for k, v in value.items()
    ):
        raise ValidationError(
            f"RoutingState.rotations={value!r} must map team ids to Rotation values",
            field="RoutingState.rotations",
            value=value,
        )
    return MappingProxyType(dict(value))


def _counters(value: object) -> Mapping[str, Mapping[str, int]]:
    ok = isinstance(value, Mapping) and all(
        isinstance(team_id, str)
        and isinstance(counters, Mapping)
        and all(
            isinstance(u, str) and isinstance(c, int) and not isinstance(c, bool)
            for u, c in counters.items()
        )
        for team_id, counters in value.items()
    )
    if not ok:
        raise ValidationError(
            f"RoutingState.weighted={value!r} must map team ids to {{user id: int}} counters",
            field="RoutingState.weighted",
            value=value,
        )
    assert isinstance(value, Mapping)
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in value.items()})


@attrs.frozen(kw_only=True)
class RoutingState:
    """What routing remembers between leads, per team; a value, never mutated.

    Round robin keeps the last member assigned (a `Rotation`), not an index: the
    next lead goes to the first member after them in the team's *current* order
    who can take it. So adding a member places them in the rotation at their
    position, and removing one just drops them: among the members who stay, the
    rotation continues exactly where it was. When the last member assigned has left,
    it continues with the first member who followed them in the old order and is
    still in the team.

    Weighted routing keeps the counters of smooth weighted round robin (each pick
    adds every eligible member's weight to their counter, gives the lead to the
    highest counter, and takes the eligible weights' total off the winner).

    The loads (open leads per seller) are not part of the state: the host knows
    them and passes them in.

    Attributes:
        rotations: Team id → `Rotation`.
        weighted: Team id → user id → counter.
    """

    rotations: Mapping[str, Rotation] = attrs.field(factory=dict, converter=_rotations, hash=False)
    weighted: Mapping[str, Mapping[str, int]] = attrs.field(
        factory=dict, converter=_counters, hash=False
    )


# --- results ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PlannedActivity:
    """A follow-up activity the host creates for the new owner.

    Attributes:
        kind: The activity kind.
        subject: Its subject.
        owner_id: Who must do it (the lead's new owner).
        due_at: When it is due (aware, UTC).
    """

    kind: ActivityKind
    subject: str
    owner_id: str
    due_at: datetime


@attrs.frozen(kw_only=True)
class RoutingDecision:
    """Who gets the lead, and why.

    Attributes:
        owner_id: The new owner.
        rule_id: The rule that placed the lead; ``None`` when the fallback owner got it.
        policy_id: The policy routed with.
        policy_version: Its version.
        reason: A readable explanation, e.g. ``rule 'Baltics' matched: country =
            'Lithuania'; round robin of team 'baltic' picked 'jonas' (next after
            'ana'); 'rita' skipped: away``.
        follow_ups: The activities to create, in the rule's order.
        state: The routing state after this lead.
    """

    owner_id: str
    rule_id: str | None
    policy_id: str
    policy_version: int
    reason: str
    follow_ups: tuple[PlannedActivity, ...]
    state: RoutingState

    @property
    def fallback(self) -> bool:
        """True when no rule placed the lead and the fallback owner got it."""
        return self.rule_id is None


@attrs.frozen(kw_only=True)
class BulkRouting:
    """The result of `route_many`.

    Attributes:
        decisions: One decision per lead, in the leads' order.
        state: The routing state after the last lead.
        loads: The open-lead counts after the assignments (each assignment adds one
            to its owner).
    """

    decisions: tuple[RoutingDecision, ...]
    state: RoutingState
    loads: Mapping[str, int] = attrs.field(hash=False)
