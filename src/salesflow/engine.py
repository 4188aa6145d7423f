"""`Salesflow`: the facade a host application creates and drives.

Every command opens one unit of work on the store, reads what it needs, calls
the pure domain functions with ``now`` from the injected clock, writes the
result and commits; the events it produced are published to the sink only
after the commit, in order. A command that fails changes nothing and publishes
nothing.

This module holds the facade, its constructor and its reads and views; the
commands live in `salesflow.commands`, one mixin per area, over `EngineCore`.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from typing import TypeVar
from weakref import WeakKeyDictionary

import attrs

from salesflow import activity as act
from salesflow import events as ev
from salesflow.access import SYSTEM, Actor, Policy, Privilege, RolePolicy
from salesflow.clock import Clock, SystemClock
from salesflow.commands.ab_tests import AB_DUE, ABTestDecided, ABTestResult
from salesflow.commands.activities import ActivityCommands
from salesflow.commands.core import RECORD_CLASSES, IdFactory, sequential_ids, uuid_ids
from salesflow.commands.due import DueHandler
from salesflow.commands.guards import install_guards
from salesflow.commands.imports import ImportCommands
from salesflow.commands.pipelines import RULE_DUE, PipelineCommands
from salesflow.commands.process import ProcessCommands
from salesflow.commands.routing import RoutingCommands
from salesflow.commands.sales import SalesCommands
from salesflow.commands.scoring import CLEANUP_DUE, RESCORE_DUE, ScoringCommands
from salesflow.commands.segments import SegmentCommands
from salesflow.commands.sequence_runs import STEP_DUE, EnrollmentIdFactory
from salesflow.commands.sequences import PublishedSequence
from salesflow.commands.work import DueIdFactory, as_ref, uuid_due_ids
from salesflow.commands.worklist import WorkListCommands
from salesflow.conditions import Condition, all_of
from salesflow.due import RetryPolicy
from salesflow.errors import PermissionDenied, ValidationError
from salesflow.lead import Lead, StatusReasons
from salesflow.sequences.enrollment import RuntimeConfig
from salesflow.stores.base import GroupCount, Page, Query, SortKey, Store
from salesflow.stores.memory import MemoryStore
from salesflow.values import Record, RecordRef
from salesflow.views import COUNT_LIMIT, LeadView, ViewResult, lead_view_query, read_lead_view
from salesflow.worktime import Calendars, OrganizationCalendar

__all__ = [
    "ABTestDecided",
    "ABTestResult",
    "DueHandler",
    "EnrollmentIdFactory",
    "IdFactory",
    "PublishedSequence",
    "Salesflow",
    "sequential_ids",
    "uuid_enrollment_ids",
    "uuid_ids",
]


_PORTS: dict[str, tuple[str, str]] = {
    "store": ("unit_of_work", "a Store, e.g. MemoryStore() or open_store('sqlite:///crm.db')"),
    "clock": ("now", "a Clock, e.g. SystemClock() or FakeClock(start)"),
    "sink": ("publish", "an EventSink: an object with publish(events), e.g. ListSink()"),
}
"""The ports checked by the method they must have, and what to pass instead."""


def _check_ports(**given: object) -> None:
    """Refuse constructor arguments of `Salesflow` that cannot work, before any is used,
    with what to pass instead (a wrong store would otherwise fail on the first command
    with an ``AttributeError``)."""
    for name, value in given.items():
        if value is None:
            continue
        if name in _PORTS:
            method, instead = _PORTS[name]
            ok = callable(getattr(value, method, None))
        elif name == "calendar":
            ok, instead = isinstance(value, OrganizationCalendar), "an OrganizationCalendar(...)"
        elif name == "reasons":
            ok, instead = isinstance(value, StatusReasons), "a StatusReasons(...)"
        else:  # the id factories
            ok, instead = callable(value), "a function that returns a new id (see uuid_ids)"
        if not ok:
            raise ValidationError(
                f"{name}={value!r} cannot be used: pass {instead}", field=name, value=value
            )


def uuid_enrollment_ids() -> str:
    """The default enrollment ids: ``enr-`` and a random UUID."""
    return f"enr-{uuid.uuid4().hex}"


R = TypeVar("R", bound=Record)


class Salesflow(
    SalesCommands,
    PipelineCommands,
    WorkListCommands,
    ProcessCommands,
    RoutingCommands,
    ScoringCommands,
    SegmentCommands,
    ImportCommands,
    ActivityCommands,
):
    """The engine: commands and queries over one store.

    Args:
        store: Where records live; an in-memory store by default.
        clock: Where ``now`` comes from; the system clock by default. Tests pass
            a `FakeClock`.
        sink: Receives the events of each committed command; none by default.
        calendar: The organization's time zone and week start (for the weekly
            views); UTC weeks starting Monday by default.
        reasons: The status reasons leads may carry; add your own disqualify
            reasons with ``StatusReasons().with_disqualify_reasons(...)``.
        ids: Makes ids for new records; `sequential_ids` by default (a random
            prefix per process, then a counter), `uuid_ids` for random UUIDs.
        retry: How failed due items are retried (`RetryPolicy`): 1, 2, 4, 8 minutes,
            then deleted after 5 failed attempts, by default.
        due_ids: Makes ids for new due items; ``due-`` and a random UUID by default
            (simulations pass a counter so that runs repeat exactly).
        sequences: How sequences schedule and judge steps (`RuntimeConfig`): the
            sellers' calendars, counting waits in working days, which call outcomes
            count as answered. By default waits are calendar days on ``calendar``.
        enrollment_ids: Makes ids for new enrollments; ``enr-`` and a random UUID
            by default.
        policy: Decides what each actor may do (`salesflow.access.Policy`); a
            `RolePolicy` with the standard roles by default. It applies to the
            engines `as_actor` returns; this engine itself runs as `SYSTEM`.
        outbox: Keep each unit's events in the store, in that unit, until the sink
            has them (`salesflow.outbox`): a process killed between a commit and its
            sink loses no event, `deliver_outbox` publishes it later (at least once).
            Off by default: events are published after the commit, at most once.

    Due items are performed by handlers registered per kind with `register_handler`.

    Example:
        >>> from salesflow import Salesflow
        >>> engine = Salesflow()
        >>> lead = engine.create_lead(topic="10 laptops", last_name="Ruiz", company_name="Contoso")
        >>> engine.qualify_lead(lead.id).account.name
        'Contoso'
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        sink: ev.EventSink | None = None,
        calendar: OrganizationCalendar | None = None,
        reasons: StatusReasons | None = None,
        ids: IdFactory | None = None,
        retry: RetryPolicy | None = None,
        due_ids: DueIdFactory | None = None,
        sequences: RuntimeConfig | None = None,
        enrollment_ids: EnrollmentIdFactory | None = None,
        policy: Policy | None = None,
        outbox: bool = False,
    ) -> None:
        _check_ports(
            store=store,
            clock=clock,
            sink=sink,
            calendar=calendar,
            reasons=reasons,
            ids=ids,
            due_ids=due_ids,
            enrollment_ids=enrollment_ids,
        )
        self.store: Store = store if store is not None else MemoryStore()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.sink: ev.EventSink = sink if sink is not None else ev.NullSink()
        self.calendar = calendar if calendar is not None else OrganizationCalendar()
        self.reasons = reasons if reasons is not None else StatusReasons()
        self._ids: IdFactory = ids if ids is not None else sequential_ids
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError(
                f"retry={retry!r} must be a RetryPolicy(...)", field="retry", value=retry
            )
        self.retry = retry if retry is not None else RetryPolicy()
        self._due_ids: DueIdFactory = due_ids if due_ids is not None else uuid_due_ids
        self._handlers: dict[str, DueHandler] = {
            STEP_DUE: self._step_due,
            AB_DUE: self._ab_due,
            RESCORE_DUE: self._rescore_due,
            CLEANUP_DUE: self._cleanup_due,
            RULE_DUE: self._rule_due,
        }
        if sequences is not None and not isinstance(sequences, RuntimeConfig):
            raise ValidationError(
                f"sequences={sequences!r} must be a RuntimeConfig(...)",
                field="sequences",
                value=sequences,
            )
        self.sequence_config = (
            sequences
            if sequences is not None
            else RuntimeConfig(calendars=Calendars(organization=self.calendar))
        )
        self._enrollment_ids = enrollment_ids if enrollment_ids is not None else uuid_enrollment_ids
        self._definition_cache = {}
        self._step_activities = {}
        self._segment_cache = {}
        self._ab_winners: dict[str, str] = {}
        self._scoring_cache = {}
        self._process_cache = {}
        self._routing_cache = {}
        self._pipeline_cache = {}
        self._pending_routes = WeakKeyDictionary()
        if policy is not None and not isinstance(policy, Policy):
            raise ValidationError(
                f"policy={policy!r} must implement salesflow.access.Policy (a scope() method)",
                field="policy",
                value=policy,
            )
        self.policy = policy if policy is not None else RolePolicy()
        if not isinstance(outbox, bool):
            raise ValidationError(
                f"outbox={outbox!r} must be True or False", field="outbox", value=outbox
            )
        self._outbox = outbox
        self._actor = SYSTEM
        self._scopes = {}

    def as_actor(self, actor: Actor) -> Salesflow:
        """This engine acting for ``actor``: the same store, clock, sink, settings and
        caches, but every command checks ``actor``'s privileges with the policy and
        raises `PermissionDenied` (changing nothing) when one is missing, and views,
        queries, the work list and reports return only the records ``actor`` reaches.
        See [Security](security.md) and `salesflow.access`.

        Creating a record without an ``owner_id`` makes ``actor`` its owner; commands
        that record who acted (``by=``) record ``actor``. The returned engine asks the
        policy once per privilege and remembers the answer: make one per request, so
        that a change of the actor's roles or teams takes effect on the next.

        Raises:
            ValidationError: ``actor`` is not an `Actor`, or names a role the policy
                does not know.
            PermissionDenied: this engine is itself bound to an actor (only the
                system engine binds, so a bound engine cannot make a mightier one).
        """
        if isinstance(self._actor, Actor):
            raise PermissionDenied(
                f"this engine acts for {self._actor}; call as_actor on the system engine "
                f"(the one the host created) to act for {actor}",
                privilege="as_actor",
                actor=self._actor.user_id,
            )
        if not isinstance(actor, Actor):
            raise ValidationError(
                f"actor={actor!r} must be a salesflow.access.Actor(user_id=..., roles=...)",
                field="actor",
                value=actor,
            )
        self.policy.scope(actor, Privilege.READ)  # an unknown role fails here, not later
        bound = copy.copy(self)
        bound._actor = actor
        bound._scopes = {}  # the policy's answers for this actor, asked once each
        return bound

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    # --- reads ------------------------------------------------------------------------

    def get(self, cls: type[R], record_id: str) -> R:
        """Return the record of class ``cls`` with ``record_id``.

        Raises:
            NotFound: no such record.
        """
        with self._read() as uow:
            return uow.get(cls, record_id)

    def get_lead(self, lead_id: str) -> Lead:
        """Return the lead with ``lead_id`` (`NotFound` if there is none)."""
        return self.get(Lead, lead_id)

    def query(self, cls: type[R], query: Query) -> Page[R]:
        """Run ``query`` over records of ``cls`` (leads, contacts, …)."""
        narrowed = self._narrowed(query.where)
        if narrowed is not query.where:
            query = attrs.evolve(query, where=narrowed)
        with self._read() as uow:
            return uow.query(cls, query)

    def _narrowed(self, where: Condition | None) -> Condition | None:
        """``where`` and the actor's read scope (``where`` itself for the system)."""
        scope = self._scope(Privilege.READ).condition()
        if scope is None:
            return where
        return scope if where is None else all_of(where, scope)

    def timeline(self, record: RecordRef | Record) -> list[act.Activity]:
        """The activities of ``record`` in time order (see `timeline_key`)."""
        ref = as_ref(record)
        with self._read() as uow:
            uow.get(RECORD_CLASSES[ref.kind], ref.id)
            return uow.timeline(ref)

    def lead_view(
        self,
        view: LeadView | str,
        *,
        user_id: str | None = None,
        search: str | None = None,
        where: Condition | None = None,
        order_by: Sequence[SortKey] = (),
        group_by: str | None = None,
        page: int = 1,
        page_size: int = 50,
        count_limit: int | None = COUNT_LIMIT,
    ) -> ViewResult[Lead]:
        """One page of a standard lead view.

        Args:
            view: Which view (`LeadView` or its value, e.g. ``"open_leads"``).
            user_id: The current user, for ``my_open_leads``; on an engine bound to
                an actor (`as_actor`), that user by default.
            search: Quick find on name, company, email and topic (prefix; a
                leading ``*`` searches inside).
            where: A further filter (`salesflow.conditions`).
            order_by: Sort keys; newest first by default.
            group_by: A field to group by: rows are sorted by it and ``groups``
                counts every group of the whole view.
            page: Page number from 1.
            page_size: Rows per page (1–10000).
            count_limit: Count the view's rows up to this many (5,000 by default):
                a bigger view reports ``total=5000`` and ``total_exact=False``
                ("5,000+"), so a page of a million-lead view is not held up by
                counting it. None counts every row.

        Raises:
            ValidationError: unknown view or field, bad page, missing user_id.
        """
        query = lead_view_query(
            view,
            now=self.now(),
            calendar=self.calendar,
            user_id=self._current_user(user_id),
            search=search,
            where=self._narrowed(where),
            order_by=order_by,
            group_by=group_by,
            page=page,
            page_size=page_size,
            count_limit=count_limit,
        )
        with self._read() as uow:
            return read_lead_view(uow, query, view=view, group_by=group_by)

    def _current_user(self, user_id: str | None) -> str | None:
        """``user_id``, or on an engine bound to an actor (`as_actor`) that user."""
        if user_id is None and isinstance(self._actor, Actor):
            return self._actor.user_id
        return user_id

    def lead_view_counts(
        self, view: LeadView | str, group_by: str, *, user_id: str | None = None
    ) -> list[GroupCount]:
        """How many leads of ``view`` have each value of ``group_by``."""
        query = lead_view_query(
            view,
            now=self.now(),
            calendar=self.calendar,
            user_id=self._current_user(user_id),
            where=self._narrowed(None),
            group_by=group_by,
        )
        with self._read() as uow:
            return uow.group_counts(Lead, query, group_by)


install_guards(Salesflow)
