"""Routing commands of `Salesflow`: publish a routing policy, keep teams, route leads.

One routing policy is active at a time: the latest one published (publishing a
policy deactivates the others). Teams are running state rather than definitions:
members join, leave and go away far more often than rules change, so each team
is a state document (kind ``team``, key the team id) that `save_team` replaces.
The routing state of a policy (round-robin pointers, weighted counters) is a state
document too (kind ``routing``, key the policy id), read and written in the same
unit of work as the assignments it decided, with optimistic versions: two workers
routing at once never hand out the same turn twice (one of them fails with
`VersionConflict` and changes nothing).

Routing a lead assigns it through the same path as `assign_lead` (``LeadAssigned``,
sequences follow the new owner), creates the rule's follow-up activities on the
lead's timeline for the new owner, and publishes `LeadRouted` with the rule and the
reason. Capacities are checked against the open leads each member owns now: one
grouped count over the open leads of the members of the policy's teams per unit of
work (so `route_leads` counts once per batch, and the batch's own assignments are
added as it goes).

Leads created by intake (forms, CSV import) are routed automatically in the unit
that creates them while a policy is active, unless ``IntakeOptions(route=False)``.
They are routed after scoring, so rules on ``score`` see the new lead's score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from weakref import WeakKeyDictionary

import attrs

from salesflow import activity as act
from salesflow import events as ev
from salesflow import lead as leads
from salesflow.commands.leads import LeadCommands
from salesflow.commands.process import lead_is_sales_ready
from salesflow.commands.work import Work
from salesflow.conditions import all_of, field
from salesflow.definitions import ACTIVE, INACTIVE, StoredDefinition
from salesflow.errors import (
    AlreadyExists,
    InvalidDefinition,
    InvalidTransition,
    NotFound,
    ValidationError,
    VersionConflict,
)
from salesflow.lead import Lead
from salesflow.routing import LeadFacts, RoutingDecision, route_many
from salesflow.routing_io import (
    from_dict,
    state_from_dict,
    state_to_dict,
    team_from_dict,
    team_to_dict,
    to_dict,
)
from salesflow.routing_policy import (
    ROUTING_POLICY,
    RoutingPolicy,
    Team,
    require_valid,
    team_problems,
)
from salesflow.routing_state import RoutingState
from salesflow.sequences.enrollment import RuntimeConfig
from salesflow.stores.base import Query
from salesflow.values import RecordKind

__all__ = ["ROUTING_POLICY", "ROUTING_STATE", "TEAM", "RoutingCommands"]

ROUTING_STATE = "routing"
"""The state document kind of a policy's routing state (key: the policy id)."""

TEAM = "team"
"""The state document kind of teams (key: the team id)."""

ROUTE_BATCH = 500
"""How many leads `RoutingCommands.route_leads` routes per unit of work."""


class RoutingCommands(LeadCommands):
    """Routing policies, teams, and routing leads by the active policy."""

    sequence_config: RuntimeConfig
    _routing_cache: dict[tuple[str, int], RoutingPolicy]
    _pending_routes: WeakKeyDictionary[Work, list[str]]

    # --- policies -------------------------------------------------------------------

    def publish_routing_policy(self, policy: RoutingPolicy) -> RoutingPolicy:
        """Publish ``policy`` as the next version of its id and make it the active
        policy (any other active policy is deactivated).

        The routing state (round-robin turns) belongs to the policy id, so a new
        version goes on where the previous one stood.

        Returns:
            The published policy (its ``version`` set).

        Raises:
            InvalidDefinition: the policy has problems, or routes to a team that
                was not saved (`save_team`) or is not usable.
            ValidationError: ``policy`` is not a `RoutingPolicy`.
        """
        if not isinstance(policy, RoutingPolicy):
            raise ValidationError(
                f"publish_routing_policy() takes a RoutingPolicy, not {type(policy).__name__}",
                field="policy",
                value=policy,
            )
        with self._command() as work:
            latest = work.uow.find_definition(ROUTING_POLICY, policy.id)
            version = 1 if latest is None else latest.version + 1
            published = attrs.evolve(policy, version=version)
            require_valid(published, teams=self._stored_teams(work))
            for other in work.uow.definitions(ROUTING_POLICY):
                if other.state == ACTIVE and other.id != policy.id:
                    work.set_definition_state(ROUTING_POLICY, other.id, other.version, INACTIVE)
            work.publish(ROUTING_POLICY, policy.id, version, to_dict(published))
        self._routing_cache[(policy.id, version)] = published
        return published

    def deactivate_routing_policy(self) -> None:
        """Stop routing: no policy is active afterwards (intake leaves new leads as
        they are). Publish a policy again to resume.

        Raises:
            InvalidTransition: no policy is active.
        """
        with self._command() as work:
            stored = self._active_stored(work.uow)
            if stored is None:
                raise _no_policy()
            work.set_definition_state(ROUTING_POLICY, stored.id, stored.version, INACTIVE)

    def routing_policy(self) -> RoutingPolicy | None:
        """The active routing policy, or None."""
        with self._read() as uow:
            active = [d for d in uow.definitions(ROUTING_POLICY) if d.state == ACTIVE]
        if not active:
            return None
        return self._policy_of(max(active, key=lambda d: d.published_at))

    def routing_state(self) -> RoutingState:
        """Where the active policy's round robins and weighted counters stand (an
        empty state when nothing was routed yet)."""
        with self._read() as uow:
            stored = self._active_stored(uow)
            doc = None if stored is None else uow.get_state(ROUTING_STATE, stored.id)
        return RoutingState() if doc is None else state_from_dict(doc.document)

    def _active_stored(self, uow: Any) -> StoredDefinition | None:
        active = [d for d in uow.definitions(ROUTING_POLICY) if d.state == ACTIVE]
        # publishing deactivates the others, so there is one; the newest wins anyway
        return max(active, key=lambda d: d.published_at) if active else None

    def _policy_of(self, stored: StoredDefinition) -> RoutingPolicy:
        key = (stored.id, stored.version)
        policy = self._routing_cache.get(key)
        if policy is None:
            # versions never change once stored, so the parsed policy is kept
            policy = self._routing_cache[key] = from_dict(stored.document)
        return policy

    # --- teams ----------------------------------------------------------------------

    def save_team(self, team: Team) -> Team:
        """Store ``team`` (replacing the team with its id): its members, their order
        (the round-robin order), weights, capacities and availability.

        Changing members never makes a round robin skip or repeat anyone who stayed
        (see `RoutingState`).

        Raises:
            InvalidDefinition: the team has problems (no members, repeated members,
                weights below 1, negative capacities).
            ValidationError: ``team`` is not a `Team`.
        """
        if not isinstance(team, Team):
            raise ValidationError(
                f"save_team() takes a Team, not {type(team).__name__}", field="team", value=team
            )
        problems = team_problems(team)
        if problems:
            raise InvalidDefinition([p.message for p in problems])
        with self._command() as work:
            stored = work.uow.get_state(TEAM, team.id)
            work.uow.put_state(
                TEAM,
                team.id,
                team_to_dict(team),
                expected_version=None if stored is None else stored.version,
                now=work.now,
            )
            work.events.append(
                ev.TeamSaved(
                    occurred_at=work.now,
                    team_id=team.id,
                    members=tuple(m.user_id for m in team.members),
                    available=tuple(m.user_id for m in team.members if m.active and not m.away),
                )
            )
        return team

    def teams(self) -> list[Team]:
        """Every saved team, by id."""
        with self._read() as uow:
            return [team_from_dict(doc.document) for doc in uow.states(TEAM)]

    def team(self, team_id: str) -> Team:
        """The saved team ``team_id``.

        Raises:
            NotFound: no such team.
        """
        with self._read() as uow:
            doc = uow.get_state(TEAM, team_id)
        if doc is None:
            raise NotFound("Team", team_id)
        return team_from_dict(doc.document)

    def _stored_teams(self, work: Work) -> list[Team]:
        return [team_from_dict(doc.document) for doc in work.uow.states(TEAM)]

    # --- routing --------------------------------------------------------------------

    def route_lead(self, lead_id: str) -> RoutingDecision:
        """Route one open lead by the active policy, in one unit of work.

        The lead is assigned to the owner the policy picks, the rule's follow-up
        activities are put on its timeline for that owner, and `LeadAssigned` (when
        the owner changes) and `LeadRouted` are published.

        Returns:
            The decision: owner, rule, reason, follow-ups and the new state.

        Raises:
            NotFound: no such lead.
            InvalidTransition: the lead is closed, or no policy is active.
            VersionConflict: another worker routed at the same time; try again.
        """
        with self._command() as work:
            policy = self._require_policy(work)
            lead = work.get(Lead, lead_id)
            leads.require_open(lead, "routed")
            return self._route_in(work, policy, [lead])[0]

    def route_leads(self, lead_ids: Iterable[str]) -> list[RoutingDecision]:
        """Route several open leads by the active policy, in the order given (bulk
        assignment of selected leads).

        Every lead is checked first, so a closed or missing lead refuses the whole
        call before anything is routed. Then the leads are routed
        `ROUTE_BATCH` per unit of work; each batch goes on from the routing state
        and the loads the previous one left.

        Returns:
            One decision per lead, in order.

        Raises:
            ValidationError: ``lead_ids`` repeats a lead or is not a list of ids.
            NotFound: a lead does not exist.
            InvalidTransition: a lead is closed, or no policy is active.
        """
        if isinstance(lead_ids, str) or not isinstance(lead_ids, Iterable):
            raise ValidationError(
                f"lead_ids={lead_ids!r} must be a list of lead ids",
                field="lead_ids",
                value=lead_ids,
            )
        ids = list(lead_ids)
        repeated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) < len(ids) else []
        if repeated:
            raise ValidationError(
                f"lead_ids lists {', '.join(map(repr, repeated))} more than once; list each "
                f"lead once",
                field="lead_ids",
                value=repeated,
            )
        with self._read() as uow:
            if self._active_stored(uow) is None:
                raise _no_policy()
            for lead_id in ids:
                leads.require_open(uow.get(Lead, lead_id), "routed")
        decisions: list[RoutingDecision] = []
        for start in range(0, len(ids), ROUTE_BATCH):
            with self._command() as work:
                policy = self._require_policy(work)
                batch = [work.get(Lead, lead_id) for lead_id in ids[start : start + ROUTE_BATCH]]
                for lead in batch:
                    leads.require_open(lead, "routed")
                decisions.extend(self._route_in(work, policy, batch))
        return decisions

    def _require_policy(self, work: Work) -> RoutingPolicy:
        stored = self._active_stored(work.uow)
        if stored is None:
            raise _no_policy()
        return self._policy_of(stored)

    def _route_in(
        self, work: Work, policy: RoutingPolicy, batch: Sequence[Lead]
    ) -> list[RoutingDecision]:
        """Route ``batch`` in ``work``: decide, assign, plan follow-ups, keep the state."""
        teams = self._stored_teams(work)
        loads = self._loads(work, policy, teams, batch)
        doc = work.uow.get_state(ROUTING_STATE, policy.id)
        state = None if doc is None else state_from_dict(doc.document)
        facts = [LeadFacts(lead, self._score_facts(work, lead.id)) for lead in batch]
        result = route_many(
            policy,
            facts,
            teams=teams,
            loads=loads,
            state=state,
            now=work.now,
            calendar=self.sequence_config.calendars,
        )
        for lead, decision in zip(batch, result.decisions, strict=True):
            self._apply_route(work, lead, decision)
        if result.state != (state or RoutingState()):
            try:
                work.uow.put_state(
                    ROUTING_STATE,
                    policy.id,
                    state_to_dict(result.state),
                    expected_version=None if doc is None else doc.version,
                    now=work.now,
                )
            except AlreadyExists:
                # another unit routed the policy's first lead at the same time: the
                # same race as a version conflict, and the caller retries it the same way
                raise VersionConflict("routing state", policy.id, expected=0, actual=1) from None
        return list(result.decisions)

    def _loads(
        self, work: Work, policy: RoutingPolicy, teams: list[Team], batch: Sequence[Lead]
    ) -> dict[str, int]:
        """Open leads per member of the teams the policy routes to: one grouped count."""
        used = set(policy.team_ids())
        members = sorted({m.user_id for t in teams if t.id in used for m in t.members})
        if not members:
            return {}
        query = Query(where=all_of(field("status").eq("open"), field("owner_id").in_(members)))
        loads = {
            g.value: g.count
            for g in work.uow.group_counts(Lead, query, "owner_id")
            if isinstance(g.value, str)
        }
        # A lead being routed again leaves its owner: it must not count against them.
        for lead in batch:
            if lead.owner_id in loads:
                loads[lead.owner_id] -= 1
        return loads

    def _score_facts(self, work: Work, lead_id: str) -> Mapping[str, Any]:
        """``score`` (the best current points), ``grade`` (of that score) and
        ``sales_ready`` (once any model's score reached its threshold, for good: see
        `lead_is_sales_ready`) for rule conditions; None when unscored."""
        scores = work.uow.scores(lead_id)
        ready = lead_is_sales_ready(work.uow, lead_id)
        if not scores:
            return {"score": None, "grade": None, "sales_ready": ready}
        best = max(scores, key=lambda s: s.points)
        return {"score": best.points, "grade": best.grade, "sales_ready": ready}

    def _apply_route(self, work: Work, lead: Lead, decision: RoutingDecision) -> None:
        if decision.owner_id != lead.owner_id:
            self._assign_in(work, lead, decision.owner_id)
        work.events.append(
            ev.LeadRouted(
                occurred_at=work.now,
                lead_id=lead.id,
                owner_id=decision.owner_id,
                rule_id=decision.rule_id,
                reason=decision.reason,
                policy_id=decision.policy_id,
                policy_version=decision.policy_version,
            )
        )
        for planned in decision.follow_ups:
            activity = act.Activity(
                id=self._ids(RecordKind.ACTIVITY),
                created_at=work.now,
                modified_at=work.now,
                kind=planned.kind,
                subject=planned.subject,
                regarding=lead.ref,
                owner_id=planned.owner_id,
                due_at=planned.due_at,
            )
            work.add(activity)
            work.events.append(
                ev.ActivityCreated(
                    occurred_at=work.now, activity_id=activity.id, regarding=str(lead.ref)
                )
            )

    # --- automatic routing of leads intake creates ----------------------------------

    def _lead_created_by_intake(self, work: Work, lead: Lead, *, route: bool) -> None:
        super()._lead_created_by_intake(work, lead, route=route)
        if route:
            self._pending_routes.setdefault(work, []).append(lead.id)

    def _before_commit(self, work: Work) -> None:
        super()._before_commit(work)
        # most units route nothing: an empty mapping is cheaper to test than to pop from
        pending = self._pending_routes.pop(work, None) if self._pending_routes else None
        if not pending:
            return
        stored = self._active_stored(work.uow)
        if stored is None:
            return
        batch = [lead for lead_id in pending if (lead := work.get(Lead, lead_id)).is_open]
        if not batch:
            return
        self._route_in(work, self._policy_of(stored), batch)
        # Scoring and segments ran before the leads had owners: let them see the
        # owners (unchanged scores are not kept again; connected records are skipped).
        super()._before_commit(work)


def _no_policy() -> InvalidTransition:
    return InvalidTransition(
        "no routing policy is active; publish one with publish_routing_policy(...)",
        state=None,
        event="route",
    )
