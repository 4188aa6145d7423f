"""The privilege every public method of `Salesflow` needs, and the wrapper that checks it.

`GUARDS` is the whole privilege matrix in one table: each public method names the
`Privilege` it needs and, for a method about records, how to find those records in
its arguments. `install_guards` wraps every method of the class with its guard and
refuses (at import) a public method that has none, so a new command cannot be added
without deciding who may call it.

On the system engine (`SYSTEM`) the wrapper only passes the call through. On an
engine bound to an `Actor`:

1. the privilege must be granted at all (`Policy.scope` is not `NOTHING`);
2. a create command gets the actor as the new record's owner unless the caller
   named one, and the owner is then checked like a record's;
3. a command that records who did something (``by=``) does so as the actor, and
   may not name someone else;
4. the records the command names are read and checked at the start of the
   command's own unit of work (see `salesflow.commands.authorization`), so the
   check and the change see the same data; a method that opens no unit is checked
   in a read unit of its own before its result is returned.

Work a guarded command causes (a qualified lead's new account, a rule's repeat
lead, the next sequence step) is not checked again: the command that caused it was.
A guarded method called from inside another (or from an event sink during one) is
checked on its own, for the same actor.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from salesflow.access import Actor, Privilege, Scope, SystemContext
from salesflow.activity import Activity
from salesflow.commands.authorization import PENDING
from salesflow.commands.core import RECORD_CLASSES
from salesflow.commands.work import Work, as_ref
from salesflow.errors import NotFound, PermissionDenied, ValidationError
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.orders import Invoice, Order
from salesflow.party import Account, Contact
from salesflow.quotes import Quote
from salesflow.stores.base import UnitOfWork
from salesflow.values import Record

__all__ = ["GUARDS", "UNGUARDED", "Guard", "install_guards"]


class _Engine(Protocol):
    """What a guard needs of the engine."""

    _actor: Actor | SystemContext

    def _scope(self, privilege: Privilege) -> Scope: ...


Arguments = Mapping[str, Any]
Subjects = Callable[[Any, UnitOfWork, Arguments], Iterator[Record | None]]
"""Reads, in a unit of work, the records a call names (engine, unit, arguments); None
stands for "every record" (a list over all of them), which needs an unlimited scope."""


@attrs.frozen
class Guard:
    """What one public method needs.

    Attributes:
        privilege: The privilege it needs.
        subjects: Finds the records it acts on (each checked against the actor's
            scope); None for a method about no record.
        creates: The argument holding the new record's fields (``"fields"``): the
            owner defaults to the actor and is checked.
        by: The method records who acted in its ``by`` argument.
        assign_in: The argument holding field changes; changing ``owner_id`` there
            needs `Privilege.ASSIGN` on the record too.
        whole: The argument is an iterable the check reads; it is turned into a
            tuple first so that the method still gets every item.
        owns: The method makes a record (an activity) that belongs to the actor
            unless ``owner_id`` is given, as ``creates`` does, without the owner
            check (the subject's check covers it).
    """

    privilege: Privilege
    subjects: Subjects | None = None
    creates: str | None = None
    by: bool = False
    assign_in: str | None = None
    whole: str | None = None
    owns: bool = False


def _get(uow: UnitOfWork, cls: type[Record], record_id: object) -> Record:
    if not isinstance(record_id, str) or not record_id:
        raise ValidationError(
            f"{cls.__name__} id {record_id!r} must be a non-empty string",
            field="id",
            value=record_id,
        )
    return uow.get(cls, record_id)


def _of_ref(uow: UnitOfWork, value: object) -> Record:
    ref = as_ref(value)
    return _get(uow, RECORD_CLASSES[ref.kind], ref.id)


def record(arg: str, cls: type[Record]) -> Subjects:
    """The record of class ``cls`` whose id is argument ``arg``."""

    def subjects(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record]:
        yield _get(uow, cls, args[arg])

    return subjects


def _listed(arg: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, tuple):
        raise ValidationError(f"{arg}={value!r} must be a list", field=arg, value=value)
    return value


def records(arg: str, cls: type[Record]) -> Subjects:
    """The records of class ``cls`` whose ids argument ``arg`` lists."""

    def subjects(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record]:
        for record_id in _listed(arg, args[arg]):
            yield _get(uow, cls, record_id)

    return subjects


def ref(arg: str) -> Subjects:
    """The record argument ``arg`` names (a record or a `RecordRef`)."""

    def subjects(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record]:
        yield _of_ref(uow, args[arg])

    return subjects


def refs(arg: str) -> Subjects:
    """The records argument ``arg`` lists (records or `RecordRef`s)."""

    def subjects(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record]:
        for value in _listed(arg, args[arg]):
            yield _of_ref(uow, value)

    return subjects


def lead_like(arg: str) -> Subjects:
    """The lead argument ``arg`` names (its id, the lead or its `RecordRef`)."""

    def subjects(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record]:
        value = args[arg]
        yield _get(uow, Lead, value) if isinstance(value, str) else _of_ref(uow, value)

    return subjects


def enrollment(arg: str) -> Subjects:
    """The record the enrollment whose id is argument ``arg`` runs on."""

    def subjects(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record]:
        enrollment_id = args[arg]
        if not isinstance(enrollment_id, str) or not enrollment_id:
            raise ValidationError(
                f"enrollment id {enrollment_id!r} must be a non-empty string",
                field="enrollment_id",
                value=enrollment_id,
            )
        found = uow.find_enrollment(enrollment_id)
        if found is None:
            raise NotFound("Enrollment", enrollment_id)
        yield _of_ref(uow, found.record)

    return subjects


def sales_document(arg: str, cls: type[Quote | Order | Invoice] | None = None) -> Subjects:
    """The opportunity of the quote, order or invoice whose id is argument ``arg``
    (of class ``cls``, or of the class argument ``cls`` names)."""

    def subjects(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record]:
        kind = cls if cls is not None else args["cls"]
        document = engine._load(Work(uow, engine.now()), kind, args[arg])
        opportunity_id = getattr(document, "opportunity_id", None)
        if opportunity_id is not None:  # products and price lists belong to no one
            yield _get(uow, Opportunity, opportunity_id)

    return subjects


def any_given(*pairs: tuple[str, type[Record]]) -> Subjects:
    """The records whose ids the given arguments hold (those not None); every
    record when none is given."""

    def subjects(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record | None]:
        given = [(arg, cls) for arg, cls in pairs if args.get(arg) is not None]
        if not given:
            yield None
        for arg, cls in given:
            yield _get(uow, cls, args[arg])

    return subjects


def optional_ref(arg: str) -> Subjects:
    """The record argument ``arg`` names; every record when it is None."""

    def subjects(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record | None]:
        value = args.get(arg)
        yield None if value is None else _of_ref(uow, value)

    return subjects


def _class_arg(engine: Any, uow: UnitOfWork, args: Arguments) -> Iterator[Record]:
    yield _get(uow, args["cls"], args["record_id"])


_READ = Privilege.READ
_WRITE = Privilege.WRITE
_DEFS = Privilege.READ_DEFINITIONS

GUARDS: dict[str, Guard] = {
    # records
    "create_lead": Guard(Privilege.CREATE, creates="fields"),
    "create_contact": Guard(Privilege.CREATE, creates="fields"),
    "create_account": Guard(Privilege.CREATE, creates="fields"),
    "create_opportunity": Guard(Privilege.CREATE, creates="fields"),
    "update_lead": Guard(_WRITE, record("lead_id", Lead), assign_in="changes"),
    "update_contact": Guard(_WRITE, record("contact_id", Contact), assign_in="changes"),
    "update_account": Guard(_WRITE, record("account_id", Account), assign_in="changes"),
    "update_opportunity": Guard(_WRITE, record("opportunity_id", Opportunity), assign_in="changes"),
    "qualify_lead": Guard(_WRITE, record("lead_id", Lead)),
    "disqualify_lead": Guard(_WRITE, record("lead_id", Lead)),
    "reactivate_lead": Guard(_WRITE, record("lead_id", Lead)),
    "mark_lead_contacted": Guard(_WRITE, record("lead_id", Lead)),
    "assign_lead": Guard(Privilege.ASSIGN, record("lead_id", Lead)),
    "win_opportunity": Guard(_WRITE, record("opportunity_id", Opportunity)),
    "lose_opportunity": Guard(_WRITE, record("opportunity_id", Opportunity)),
    "reopen_opportunity": Guard(_WRITE, record("opportunity_id", Opportunity)),
    "get": Guard(_READ, _class_arg),
    "get_lead": Guard(_READ, record("lead_id", Lead)),
    "timeline": Guard(_READ, ref("record")),
    "query": Guard(_READ),  # filtered by the scope
    "lead_view": Guard(_READ),  # filtered by the scope
    "lead_view_counts": Guard(_READ),  # filtered by the scope
    "work_list": Guard(_READ),  # filtered by the scope
    "report": Guard(Privilege.VIEW_REPORTS),  # filtered by the scope
    # activities
    "add_activity": Guard(_WRITE, ref("regarding"), owns=True),
    "complete_activity": Guard(_WRITE, record("activity_id", Activity)),
    "cancel_activity": Guard(_WRITE, record("activity_id", Activity)),
    "update_activity": Guard(_WRITE, record("activity_id", Activity), assign_in="changes"),
    # interactions, intake and scoring
    "record_interaction": Guard(_WRITE, any_given(("contact_id", Contact), ("lead_id", Lead))),
    "interactions": Guard(
        _READ, any_given(("contact_id", Contact), ("lead_id", Lead), ("account_id", Account))
    ),
    "intake": Guard(Privilege.IMPORT),
    "import_csv": Guard(Privilege.IMPORT),
    "matching_strategies": Guard(_DEFS),
    "save_matching_strategy": Guard(Privilege.MANAGE_SETTINGS),
    "score_lead": Guard(_WRITE, record("lead_id", Lead)),
    "lead_scores": Guard(_READ, record("lead_id", Lead)),
    "score_history": Guard(_READ, record("lead_id", Lead)),
    "is_sales_ready": Guard(_READ, record("lead_id", Lead)),
    "publish_scoring_model": Guard(Privilege.MANAGE_SCORING),
    "deactivate_scoring_model": Guard(Privilege.MANAGE_SCORING),
    "rescore_all": Guard(Privilege.MANAGE_SCORING),
    "scoring_models": Guard(_DEFS),
    # business process flows
    "publish_process_flow": Guard(Privilege.MANAGE_PROCESSES),
    "process_flow": Guard(_DEFS),
    "process_flows": Guard(_DEFS),
    "process_state": Guard(_READ, ref("record")),
    "start_process": Guard(_WRITE, ref("record"), by=True),
    "switch_process": Guard(_WRITE, ref("record"), by=True),
    "next_stage": Guard(_WRITE, ref("record"), by=True),
    "previous_stage": Guard(_WRITE, ref("record"), by=True),
    "jump_to_stage": Guard(_WRITE, ref("record"), by=True),
    "check_step": Guard(_WRITE, ref("record"), by=True),
    "mark_sales_ready": Guard(_WRITE, lead_like("lead"), by=True),
    "accept_for_sales": Guard(Privilege.ASSIGN, lead_like("lead"), by=True),
    "configure_marketing": Guard(Privilege.MANAGE_SETTINGS),
    "set_default_process": Guard(Privilege.MANAGE_SETTINGS),
    "default_processes": Guard(_DEFS),
    "set_qualification_criteria": Guard(Privilege.MANAGE_SETTINGS),
    "qualification_criteria": Guard(_DEFS),
    "marketing_settings": Guard(_DEFS),
    # routing
    "route_lead": Guard(Privilege.ASSIGN, record("lead_id", Lead)),
    "route_leads": Guard(Privilege.ASSIGN, records("lead_ids", Lead), whole="lead_ids"),
    "publish_routing_policy": Guard(Privilege.MANAGE_ROUTING),
    "deactivate_routing_policy": Guard(Privilege.MANAGE_ROUTING),
    "routing_policy": Guard(_DEFS),
    "routing_state": Guard(Privilege.MANAGE_ROUTING),
    "save_team": Guard(Privilege.MANAGE_ROUTING),
    "team": Guard(_DEFS),
    "teams": Guard(_DEFS),
    # sequences and segments
    "publish_sequence": Guard(Privilege.MANAGE_SEQUENCES),
    "activate_sequence": Guard(Privilege.MANAGE_SEQUENCES),
    "deactivate_sequence": Guard(Privilege.MANAGE_SEQUENCES),
    "get_sequence": Guard(_DEFS),
    "sequences": Guard(_DEFS),
    "ab_test_result": Guard(_DEFS),
    "connect": Guard(Privilege.ENROLL, ref("record")),
    "connect_many": Guard(Privilege.ENROLL, refs("records"), whole="records"),
    "disconnect": Guard(Privilege.ENROLL, enrollment("enrollment_id")),
    "pause_enrollment": Guard(Privilege.ENROLL, enrollment("enrollment_id")),
    "resume_enrollment": Guard(Privilege.ENROLL, enrollment("enrollment_id")),
    "complete_step": Guard(Privilege.ENROLL, enrollment("enrollment_id")),
    "skip_step": Guard(Privilege.ENROLL, enrollment("enrollment_id")),
    "snooze_step": Guard(Privilege.ENROLL, enrollment("enrollment_id")),
    # giving the step's work to someone else is an assignment, as for the enrollment
    "assign_step": Guard(Privilege.ASSIGN, enrollment("enrollment_id")),
    "record_email_event": Guard(Privilege.ENROLL, enrollment("enrollment_id")),
    "change_enrollment_owner": Guard(Privilege.ASSIGN, enrollment("enrollment_id")),
    "enrollment": Guard(_READ, enrollment("enrollment_id")),
    "enrollments": Guard(_READ, optional_ref("record")),
    "up_next": Guard(_READ, enrollment("enrollment_id")),
    "sequence_diagram": Guard(_READ, enrollment("enrollment_id")),
    "save_segment": Guard(Privilege.MANAGE_SEGMENTS),
    "deactivate_segment": Guard(Privilege.MANAGE_SEGMENTS),
    "segments": Guard(_DEFS),
    # pipelines and automation rules
    "publish_pipeline": Guard(Privilege.MANAGE_AUTOMATION),
    "pipeline": Guard(_DEFS),
    "pipelines": Guard(_DEFS),
    "pipeline_item": Guard(_READ, ref("record")),
    "create_deal": Guard(Privilege.CREATE, creates="fields", by=True),
    "create_pipeline_lead": Guard(Privilege.CREATE, creates="fields", by=True),
    "place_in_pipeline": Guard(_WRITE, ref("record"), by=True),
    "move_stage": Guard(_WRITE, ref("record"), by=True),
    "fire_trigger": Guard(_WRITE, ref("record")),
    # opportunity to cash
    "save_product": Guard(Privilege.MANAGE_CATALOG),
    "save_price_list": Guard(Privilege.MANAGE_CATALOG),
    "set_opportunity_lines": Guard(_WRITE, record("opportunity_id", Opportunity)),
    "create_quote": Guard(_WRITE, record("opportunity_id", Opportunity)),
    "set_quote_lines": Guard(_WRITE, sales_document("quote_id", Quote)),
    "update_quote": Guard(_WRITE, sales_document("quote_id", Quote)),
    "activate_quote": Guard(_WRITE, sales_document("quote_id", Quote)),
    "revise_quote": Guard(_WRITE, sales_document("quote_id", Quote)),
    "close_quote": Guard(_WRITE, sales_document("quote_id", Quote)),
    "win_quote": Guard(_WRITE, sales_document("quote_id", Quote)),
    "fulfill_order": Guard(_WRITE, sales_document("order_id", Order)),
    "cancel_order": Guard(_WRITE, sales_document("order_id", Order)),
    "invoice_order": Guard(_WRITE, sales_document("order_id", Order)),
    "pay_invoice": Guard(_WRITE, sales_document("invoice_id", Invoice)),
    "cancel_invoice": Guard(_WRITE, sales_document("invoice_id", Invoice)),
    "sales_document": Guard(_READ, sales_document("doc_id")),
    "quotes": Guard(_READ, record("opportunity_id", Opportunity)),
    "orders": Guard(_READ, record("opportunity_id", Opportunity)),
    "invoices": Guard(_READ, record("opportunity_id", Opportunity)),
    # due items
    "run_due": Guard(Privilege.RUN_DUE),
    "schedule_due": Guard(Privilege.RUN_DUE),
    "cancel_due": Guard(Privilege.RUN_DUE),
    "cancel_due_by_key": Guard(Privilege.RUN_DUE),
    "due_items": Guard(Privilege.RUN_DUE),
    "next_due_at": Guard(Privilege.RUN_DUE),
    "deliver_outbox": Guard(Privilege.RUN_DUE),
    "register_handler": Guard(Privilege.RUN_DUE),
}
"""The privilege matrix: every public method of `Salesflow` and what it needs."""

UNGUARDED = frozenset({"now", "close", "as_actor", "actor", "outbox"})
"""Public names that need no privilege: the clock, closing the store, binding an
actor (only the system engine may: `as_actor` refuses on a bound one), and reading
who it is."""


@attrs.define
class _Check:
    """One guarded call's record check (a `PendingCheck`)."""

    engine: Any
    actor: Actor
    guard: Guard
    arguments: dict[str, Any]
    done: bool = False

    def run(self, uow: UnitOfWork) -> None:
        self.done = True
        guard, args = self.guard, self.arguments
        if guard.creates is not None:
            owner = args.get(guard.creates, {}).get("owner_id")
            _require(self.engine, self.actor, guard.privilege, owner, "the new record")
        if guard.subjects is None:
            return
        for found in guard.subjects(self.engine, uow, args):
            if found is None:
                if not self.engine._scope(guard.privilege).everything:
                    raise PermissionDenied(
                        f"{self.actor} may not list every record's "
                        f"{guard.privilege.value!r} data: name the record",
                        privilege=guard.privilege.value,
                        actor=self.actor.user_id,
                    )
                continue
            owner = getattr(found, "owner_id", None)  # every record kind has one
            _require(self.engine, self.actor, guard.privilege, owner, _label(found))
            if guard.assign_in is not None and "owner_id" in args.get(guard.assign_in, {}):
                _require(self.engine, self.actor, Privilege.ASSIGN, owner, _label(found))


def _label(found: Record) -> str:
    return f"{found.KIND.value} {found.id!r}"


def _require(
    engine: _Engine, actor: Actor, privilege: Privilege, owner: object, label: str
) -> None:
    scope = engine._scope(privilege)
    if scope.allows(owner if isinstance(owner, str) else None):
        return
    whose = f"owned by {owner!r}" if isinstance(owner, str) else "owned by no one"
    raise PermissionDenied(
        f"{actor} lacks the {privilege.value!r} privilege on {label} ({whose}): it is "
        f"outside the records their roles reach; its owner or a manager can do this",
        privilege=privilege.value,
        actor=actor.user_id,
        record=label,
    )


def _refuse(actor: Actor, privilege: Privilege, name: str) -> PermissionDenied:
    return PermissionDenied(
        f"{actor} lacks the {privilege.value!r} privilege that {name}() needs; "
        f"ask for a role that grants it",
        privilege=privilege.value,
        actor=actor.user_id,
    )


class _Binder:
    """Names a call's arguments as `inspect.Signature.bind` would, at a fraction of its
    cost (it runs on every call an actor makes), for the methods of `Salesflow`,
    none of which takes ``*args``."""

    def __init__(self, method: Callable[..., Any]) -> None:
        parameters = list(inspect.signature(method).parameters.values())[1:]  # not self
        kinds = inspect.Parameter
        self.positional = [
            p.name
            for p in parameters
            if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        ]
        self.named = {
            p.name for p in parameters if p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL)
        }
        self.required = {
            p.name
            for p in parameters
            if p.default is kinds.empty and p.kind not in (kinds.VAR_KEYWORD, kinds.VAR_POSITIONAL)
        }
        self.rest = next((p.name for p in parameters if p.kind is kinds.VAR_KEYWORD), None)
        if any(p.kind is kinds.VAR_POSITIONAL for p in parameters):
            raise TypeError(f"{method.__qualname__}: guarded methods take no *args")

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The arguments by name (``**`` ones under their parameter's name), or None
        when the call does not fit the signature (the method then says why)."""
        if len(args) > len(self.positional):
            return None
        named = dict(zip(self.positional, args, strict=False))
        rest: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in self.named:
                if key in named:
                    return None
                named[key] = value
            elif self.rest is not None:
                rest[key] = value
            else:
                return None
        if not self.required <= named.keys():
            return None
        if self.rest is not None:
            named[self.rest] = rest
        return named


def _guarded(name: str, method: Callable[..., Any], guard: Guard) -> Callable[..., Any]:
    binder = _Binder(method)
    takes_owner = guard.creates is not None or guard.owns
    whole = guard.whole
    whole_at = binder.positional.index(whole) if whole in binder.positional else None

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        actor = self._actor
        if isinstance(actor, SystemContext):
            return method(self, *args, **kwargs)
        if self._scope(guard.privilege).nothing:
            raise _refuse(actor, guard.privilege, name)
        if takes_owner and "owner_id" not in kwargs:
            kwargs["owner_id"] = actor.user_id
        if guard.by:
            by = kwargs.get("by")
            if by is not None and by != actor.user_id:
                raise PermissionDenied(
                    f"{actor} cannot act as {by!r}: on an engine bound to an actor, "
                    f"by= is the actor; leave it out",
                    privilege=guard.privilege.value,
                    actor=actor.user_id,
                )
            kwargs["by"] = actor.user_id
        arguments = binder.bind(args, kwargs)
        if arguments is None:
            return method(self, *args, **kwargs)  # let the method report its own misuse
        if whole is not None:
            listed = arguments.get(whole)
            if isinstance(listed, Iterable) and not isinstance(listed, str | bytes):
                arguments[whole] = listed = tuple(listed)  # read by the check and the method
                if whole_at is not None and whole_at < len(args):
                    args = (*args[:whole_at], listed, *args[whole_at + 1 :])
                else:
                    kwargs[whole] = listed
        check = _Check(self, actor, guard, arguments)
        token = PENDING.set(check)
        try:
            result = method(self, *args, **kwargs)
            if not check.done:  # the method opened no unit of work: check in one now
                with self.store.unit_of_work(read_only=True) as uow:
                    check.run(uow)
            return result
        finally:
            PENDING.reset(token)

    wrapper.__salesflow_guard__ = guard  # type: ignore[attr-defined]
    return wrapper


def install_guards(cls: type, guards: Mapping[str, Guard] = GUARDS) -> None:
    """Wrap each public method of ``cls`` with its guard.

    Raises:
        TypeError: a public method has no guard, or a guard names no method (a
            programming error, caught when salesflow is imported).
    """
    public = {n for n in dir(cls) if not n.startswith("_")}
    missing = sorted(public - guards.keys() - UNGUARDED)
    stale = sorted(guards.keys() - public)
    if missing or stale:
        raise TypeError(
            f"{cls.__name__}: public methods without a guard: {missing}; "
            f"guards of no method: {stale}; add them to salesflow.commands.guards.GUARDS"
        )
    for name, guard in guards.items():
        setattr(cls, name, _guarded(name, getattr(cls, name), guard))
