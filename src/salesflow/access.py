"""Access control: who may do what to which records.

An `Actor` is a signed-in user: an id, the teams they belong to, their business unit
and their roles. A `Policy` answers one question: for this actor and this
`Privilege`, which records are in reach (a `Scope`)? Everything else follows:

* a command that needs a privilege over no record (publishing a sequence, running
  due items) is refused when the scope is empty;
* a command on a record is refused when the record's owner is outside the scope;
* views, the work list and reports add the scope to their store query, so the
  database returns only what the actor may see.

`RolePolicy` is the default policy, with the standard roles of the seeds (`ROLES`):
system administrator; sales manager and sequence manager (manage sequences, scoring
models, routing, pipelines and their rules; see and change everything in their
business unit); salesperson (sees and changes the records they or their teams own,
connects them to active sequences, cannot publish definitions). A host plugs in its
own policy by implementing `Policy.scope`.

Work that no user started (due items run by a worker, the CLI) runs as `SYSTEM`,
which is not an `Actor`: no value read from input can become it.

Example:
    >>> from salesflow import Salesflow
    >>> from salesflow.access import Actor, RolePolicy
    >>> engine = Salesflow(policy=RolePolicy(business_units={"ana": "east", "bo": "east"}))
    >>> ana = engine.as_actor(Actor(user_id="ana", roles={"salesperson"}, business_unit="east"))
    >>> lead = ana.create_lead(topic="10 laptops", last_name="Ruiz")
    >>> lead.owner_id
    'ana'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum, StrEnum
from typing import Any, Final, Protocol, runtime_checkable

import attrs

from salesflow.conditions import Condition, any_of, field
from salesflow.errors import ValidationError
from salesflow.values import identifier

__all__ = [
    "ROLES",
    "SALESPERSON",
    "SALES_MANAGER",
    "SEQUENCE_MANAGER",
    "SYSTEM",
    "SYSTEM_ADMINISTRATOR",
    "Actor",
    "Depth",
    "Policy",
    "Privilege",
    "Role",
    "RolePolicy",
    "Scope",
    "SystemContext",
]


class Privilege(StrEnum):
    """What a command needs. Record privileges (`READ` to `ENROLL`) are checked
    against each record's owner; the others are about the organization as a whole."""

    READ = "read"
    """See a record: get it, its timeline, scores, process and pipeline state; views,
    the work list and queries list only the records in reach."""
    CREATE = "create"
    """Create a record (it is checked with the owner it will have)."""
    WRITE = "write"
    """Change a record: its fields, status, process stage, pipeline stage,
    activities, lines, quotes, orders and invoices."""
    ASSIGN = "assign"
    """Give a record another owner (by hand or by routing)."""
    ENROLL = "enroll"
    """Connect a record to a sequence and work its steps."""
    VIEW_REPORTS = "view_reports"
    """Run reports (over the leads in reach of `READ` at this privilege's depth)."""
    READ_DEFINITIONS = "read_definitions"
    """Read sequences, pipelines, process flows, scoring models, the routing policy,
    teams, segments and settings."""
    IMPORT = "import"
    """Run intake and CSV imports (they match against every record)."""
    MANAGE_SEQUENCES = "manage_sequences"
    """Publish, activate and deactivate sequences."""
    MANAGE_SCORING = "manage_scoring"
    """Publish and deactivate scoring models; re-score every lead."""
    MANAGE_ROUTING = "manage_routing"
    """Publish the routing policy, save teams, read the routing state."""
    MANAGE_AUTOMATION = "manage_automation"
    """Publish pipelines and their automation rules."""
    MANAGE_PROCESSES = "manage_processes"
    """Publish business process flows."""
    MANAGE_SEGMENTS = "manage_segments"
    """Save and deactivate segments."""
    MANAGE_CATALOG = "manage_catalog"
    """Save products and price lists."""
    MANAGE_SETTINGS = "manage_settings"
    """Configure marketing and the matching strategies."""
    RUN_DUE = "run_due"
    """Perform, schedule, list and cancel due items; register their handlers."""


RECORD_PRIVILEGES: Final = frozenset(
    {Privilege.READ, Privilege.CREATE, Privilege.WRITE, Privilege.ASSIGN, Privilege.ENROLL}
)
"""The privileges checked against a record's owner."""


class Depth(IntEnum):
    """How far a role's privilege reaches (as in the seeds' security roles)."""

    NONE = 0
    """Not at all."""
    USER = 1
    """Records the actor or one of their teams owns."""
    BUSINESS_UNIT = 2
    """Records owned by anyone in the actor's business unit, and unowned records."""
    ORGANIZATION = 3
    """Every record."""


def _user_id(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    identifier(instance, attribute, value)


def _names(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{value!r} must be a collection of ids, e.g. {{'team-east'}}",
            field="Actor",
            value=value,
        )
    items = frozenset(value)
    for item in items:
        if not isinstance(item, str) or not item or item != item.strip():
            raise ValidationError(
                f"{item!r} is not an id: ids are non-empty strings without surrounding spaces",
                field="Actor",
                value=item,
            )
    return items


@attrs.frozen(kw_only=True)
class Actor:
    """A user on whose behalf commands run.

    Attributes:
        user_id: The user's id (the ``owner_id`` of what they own).
        roles: The names of their roles (keys of the policy's roles, e.g.
            ``"salesperson"``).
        teams: The ids of the teams they belong to (team-owned records are theirs).
        business_unit: Their business unit, for business-unit-wide privileges.
    """

    user_id: str = attrs.field(validator=_user_id)
    roles: frozenset[str] = attrs.field(converter=_names)
    teams: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    business_unit: str | None = attrs.field(default=None)

    @business_unit.validator
    def _check_unit(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            identifier(self, attribute, value)

    def __str__(self) -> str:
        return f"user {self.user_id!r} ({', '.join(sorted(self.roles)) or 'no roles'})"


@attrs.frozen
class SystemContext:
    """The authority of work no user started: due items, workers, the CLI, the
    host's own setup. There is one, `SYSTEM`; it is not an `Actor` and nothing
    read from input is turned into it."""

    def __str__(self) -> str:
        return "the system"


SYSTEM: Final = SystemContext()
"""The system context (every privilege, every record)."""


@attrs.frozen(kw_only=True)
class Scope:
    """The records in reach for one privilege.

    Attributes:
        owners: The owner ids whose records are in reach; None for every record.
        unowned: Whether records without an owner are in reach too.
    """

    owners: frozenset[str] | None
    unowned: bool = False

    @property
    def everything(self) -> bool:
        """Every record is in reach."""
        return self.owners is None

    @property
    def nothing(self) -> bool:
        """No record is in reach (the privilege is not granted at all)."""
        return self.owners is not None and not self.owners and not self.unowned

    def allows(self, owner_id: str | None) -> bool:
        """Whether a record owned by ``owner_id`` (None: unowned) is in reach."""
        if self.owners is None:
            return True
        if owner_id is None:
            return self.unowned
        return owner_id in self.owners

    def condition(self) -> Condition | None:
        """The store condition on ``owner_id`` that selects the records in reach
        (None when every record is)."""
        if self.owners is None:
            return None
        owned = field("owner_id").in_(sorted(self.owners))
        return any_of(owned, field("owner_id").is_null()) if self.unowned else owned


EVERYTHING: Final = Scope(owners=None)
"""Every record in reach."""
NOTHING: Final = Scope(owners=frozenset())
"""No record in reach."""


@runtime_checkable
class Policy(Protocol):
    """Decides what an actor may reach. Implement `scope` to plug in your own rules."""

    def scope(self, actor: Actor, privilege: Privilege) -> Scope:
        """The records ``actor`` reaches with ``privilege``: `NOTHING` refuses the
        privilege, `EVERYTHING` grants it without limit. For the privileges that
        concern no record, only "nothing" or "not nothing" matters."""
        ...


def _depths(value: Mapping[Any, Any]) -> Mapping[Privilege, Depth]:
    result: dict[Privilege, Depth] = {}
    for key, depth in dict(value).items():
        try:
            result[Privilege(key)] = Depth(depth)
        except ValueError:
            raise ValidationError(
                f"{key!r}: {depth!r} is not a privilege and a depth; use Privilege "
                f"members and Depth members (e.g. Privilege.READ: Depth.USER)",
                field="Role.privileges",
                value=key,
            ) from None
    return result


@attrs.frozen
class Role:
    """A named set of privileges, each with how far it reaches."""

    name: str = attrs.field(validator=identifier)
    privileges: Mapping[Privilege, Depth] = attrs.field(converter=_depths)

    def depth(self, privilege: Privilege) -> Depth:
        """How far ``privilege`` reaches for this role (`Depth.NONE` if not granted)."""
        return self.privileges.get(privilege, Depth.NONE)


SYSTEM_ADMINISTRATOR: Final = "system_administrator"
SALES_MANAGER: Final = "sales_manager"
SEQUENCE_MANAGER: Final = "sequence_manager"
SALESPERSON: Final = "salesperson"

_RECORDS = (Privilege.READ, Privilege.CREATE, Privilege.WRITE, Privilege.ASSIGN, Privilege.ENROLL)
_MANAGE = (
    Privilege.MANAGE_SEQUENCES,
    Privilege.MANAGE_SCORING,
    Privilege.MANAGE_ROUTING,
    Privilege.MANAGE_AUTOMATION,
    Privilege.MANAGE_PROCESSES,
    Privilege.MANAGE_SEGMENTS,
    Privilege.MANAGE_CATALOG,
    Privilege.MANAGE_SETTINGS,
)
_MANAGER = {
    **{p: Depth.BUSINESS_UNIT for p in _RECORDS},
    Privilege.VIEW_REPORTS: Depth.BUSINESS_UNIT,
    Privilege.READ_DEFINITIONS: Depth.ORGANIZATION,
    Privilege.IMPORT: Depth.ORGANIZATION,
    **{p: Depth.ORGANIZATION for p in _MANAGE},
}

ROLES: Final[Mapping[str, Role]] = {
    SYSTEM_ADMINISTRATOR: Role(SYSTEM_ADMINISTRATOR, {p: Depth.ORGANIZATION for p in Privilege}),
    SALES_MANAGER: Role(SALES_MANAGER, _MANAGER),
    SEQUENCE_MANAGER: Role(SEQUENCE_MANAGER, _MANAGER),
    SALESPERSON: Role(
        SALESPERSON,
        {
            **{p: Depth.USER for p in _RECORDS},
            Privilege.VIEW_REPORTS: Depth.USER,
            Privilege.READ_DEFINITIONS: Depth.ORGANIZATION,
        },
    ),
}
"""The standard roles: the system administrator has every privilege everywhere;
sales and sequence managers manage every kind of definition and reach every record of
their business unit; a salesperson reaches the records they or their teams own and
manages nothing."""


class RolePolicy:
    """The default `Policy`: an actor's reach is the widest any of their roles gives.

    Args:
        roles: The roles by name; `ROLES` by default. Add your own, e.g.
            ``{**ROLES, "auditor": Role("auditor", {Privilege.READ: Depth.ORGANIZATION})}``.
        business_units: The business unit of each owner (user or team id), for
            `Depth.BUSINESS_UNIT`: a manager reaches the records of every owner of
            their unit. Owners not listed belong to no unit.

    An actor naming a role the policy does not know is refused (`ValidationError`):
    a typo must not quietly take privileges away or give them.
    """

    def __init__(
        self,
        *,
        roles: Mapping[str, Role] = ROLES,
        business_units: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(roles, Mapping):
            raise ValidationError(
                f"roles must map each role name to its Role, e.g. {{**ROLES, 'auditor': "
                f"Role('auditor', ...)}}, not {type(roles).__name__}",
                field="roles",
                value=roles,
            )
        for name, role in roles.items():
            if not isinstance(role, Role) or role.name != name:
                raise ValidationError(
                    f"roles[{name!r}] must be a Role named {name!r}, not {role!r}",
                    field="roles",
                    value=name,
                )
        self.roles: Mapping[str, Role] = dict(roles)
        units = business_units or {}
        if not isinstance(units, Mapping):
            raise ValidationError(
                f"business_units must map each owner id to its business unit, e.g. "
                f'{{"ana": "east"}}, not {type(units).__name__}',
                field="business_units",
                value=units,
            )
        for owner, unit in units.items():
            if not isinstance(owner, str) or not owner or not isinstance(unit, str) or not unit:
                raise ValidationError(
                    f"business_units[{owner!r}] = {unit!r}: each owner id (user or team) "
                    f'maps to the name of its business unit, both text, e.g. {{"ana": "east"}}',
                    field="business_units",
                    value=owner,
                )
        self.business_units: Mapping[str, str] = dict(units)
        self._members: dict[str, frozenset[str]] = {}
        for owner, unit in self.business_units.items():
            self._members[unit] = self._members.get(unit, frozenset()) | {owner}

    def depth(self, actor: Actor, privilege: Privilege) -> Depth:
        """The widest depth of ``privilege`` among ``actor``'s roles."""
        unknown = sorted(actor.roles - self.roles.keys())
        if unknown:
            known = ", ".join(sorted(self.roles))
            raise ValidationError(
                f"{actor} has roles this policy does not know: {', '.join(unknown)}; "
                f"known roles: {known}",
                field="Actor.roles",
                value=unknown,
            )
        return max((self.roles[r].depth(privilege) for r in actor.roles), default=Depth.NONE)

    def scope(self, actor: Actor, privilege: Privilege) -> Scope:
        """See `Policy.scope`."""
        depth = self.depth(actor, privilege)
        if depth is Depth.NONE:
            return NOTHING
        if depth is Depth.ORGANIZATION:
            return EVERYTHING
        own = actor.teams | {actor.user_id}
        if depth is Depth.USER:
            return Scope(owners=own)
        unit = actor.business_unit
        members = self._members.get(unit, frozenset()) if unit is not None else frozenset()
        return Scope(owners=own | members, unowned=True)
