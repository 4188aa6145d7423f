"""The base every command area of `Salesflow` stands on: its ports, its id factory,
and the unit of work of one command or one read.

`Salesflow`'s constructor sets the attributes declared here; the command mixins of
this package use them and the methods below, nothing else of the facade.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from salesflow import activity as act
from salesflow import events as ev
from salesflow.access import EVERYTHING, Actor, Policy, Privilege, Scope, SystemContext
from salesflow.clock import Clock, require_aware
from salesflow.commands.authorization import authorize_pending
from salesflow.commands.work import DueIdFactory, Work
from salesflow.due import RetryPolicy
from salesflow.errors import StoreError
from salesflow.lead import Lead, StatusReasons
from salesflow.opportunity import Opportunity
from salesflow.outbox import OutboxEntry
from salesflow.party import Account, Contact
from salesflow.stores.base import Store, UnitOfWork
from salesflow.stores.codec import encode_event
from salesflow.values import Record, RecordKind, RecordRef, normalize_email
from salesflow.worktime import OrganizationCalendar

__all__ = ["RECORD_CLASSES", "EngineCore", "IdFactory", "sequential_ids", "uuid_ids"]

_log = logging.getLogger("salesflow.outbox")

IdFactory = Callable[[RecordKind], str]
"""Makes the id of a new record of the given kind."""


def uuid_ids(kind: RecordKind) -> str:
    """An id factory: the kind and a random UUID, e.g. ``lead-3f2a…``."""
    return f"{kind.value}-{uuid.uuid4().hex}"


class _Sequence:
    """80 random bits drawn per process, then a rising counter."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prefix = secrets.token_hex(10)
        self.counter = itertools.count()


_SEQUENCE = _Sequence()
if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork
    # a forked worker must not repeat its parent's ids
    os.register_at_fork(after_in_child=_SEQUENCE.reset)


def sequential_ids(kind: RecordKind) -> str:
    """The default id factory: the kind and 32 hex digits, 20 drawn at random once per
    process and 12 of a counter, e.g. ``lead-9c41…0000002a``.

    Ids one process makes sort in the order it made them, so a database appends new
    rows to the end of its id indexes instead of touching a random page for each
    (random UUIDs made a 100,000-lead import 11 % slower and doubled its system
    time); 80 random bits per process keep the ids of different processes (and of a
    forked child, which draws anew) apart.
    """
    return f"{kind.value}-{_SEQUENCE.prefix}{next(_SEQUENCE.counter):012x}"


RECORD_CLASSES: dict[RecordKind, type[Record]] = {
    RecordKind.LEAD: Lead,
    RecordKind.CONTACT: Contact,
    RecordKind.ACCOUNT: Account,
    RecordKind.OPPORTUNITY: Opportunity,
    RecordKind.ACTIVITY: act.Activity,
}
"""The record class of each kind, to load the record a `RecordRef` names."""


class EngineCore:
    """The ports of `Salesflow` and the unit of work of a command or a read.

    Set by `Salesflow.__init__`; see there for what each one is.
    """

    store: Store
    clock: Clock
    sink: ev.EventSink
    calendar: OrganizationCalendar
    reasons: StatusReasons
    retry: RetryPolicy
    _ids: IdFactory
    _due_ids: DueIdFactory
    policy: Policy
    _actor: Actor | SystemContext
    _scopes: dict[Privilege, Scope]
    _outbox: bool

    @property
    def actor(self) -> Actor | SystemContext:
        """Whom commands run for: an `Actor` on an engine from `as_actor`, else `SYSTEM`."""
        return self._actor

    @property
    def outbox(self) -> bool:
        """Whether this engine keeps each unit's events in the store's outbox until its
        sink has them (``Salesflow(outbox=True)``, see `salesflow.outbox`)."""
        return self._outbox

    def _scope(self, privilege: Privilege) -> Scope:
        """The records this engine's actor reaches with ``privilege`` (all for the system)."""
        actor = self._actor
        if isinstance(actor, SystemContext):
            return EVERYTHING
        known = self._scopes.get(privilege)
        if known is None:
            known = self._scopes[privilege] = self.policy.scope(actor, privilege)
        return known

    def now(self) -> datetime:
        """The clock's current instant (checked to be timezone-aware)."""
        return require_aware(self.clock.now(), "clock.now()")

    # --- hooks the sequence commands fill in (no-ops here) -----------------------------

    def _record_closed(self, work: Work, record: RecordRef, reason: str) -> None:
        """``record`` was qualified, disqualified or closed in ``work``: end what runs on it."""

    def _owner_changed(self, work: Work, record: RecordRef, owner_id: str | None) -> None:
        """``record`` has a new owner in ``work``: later sequence steps go to them."""

    def _activity_closed(self, work: Work, activity: act.Activity, event: str) -> None:
        """A seller completed or canceled ``activity`` by hand in ``work``."""

    def _lead_qualified(self, work: Work, lead: RecordRef, opportunity: RecordRef | None) -> None:
        """``lead`` was qualified in ``work`` into ``opportunity`` (None when no
        opportunity was made): a process flow on the lead goes on there."""

    def _contact_like(self, work: Work, lead: Lead) -> Contact | None:
        """The existing contact a qualified ``lead`` is the same person as, or None:
        here the most recently modified contact with its email (intake overrides it
        with the default contact matching strategy)."""
        if not lead.email:
            return None
        found = work.uow.find_by(Contact, "email_key", normalize_email(lead.email))
        return found[0] if found else None

    def _lead_created_by_intake(self, work: Work, lead: Lead, *, route: bool) -> None:
        """Intake (a form, an import) created ``lead`` in ``work``; ``route`` says
        whether the intake options ask for it to be routed."""

    def _before_commit(self, work: Work) -> None:
        """Last work of a unit before it commits (segments see the records written)."""

    @contextmanager
    def _command(self) -> Iterator[Work]:
        now = self.now()
        with self.store.unit_of_work() as uow:
            authorize_pending(uow)
            work = Work(uow, now, due_ids=self._due_ids)
            yield work
            self._before_commit(work)
            kept = self._keep_events(uow, work.events, now)
            uow.commit()
        self._publish(work.events, kept)

    # --- events: published after the commit, kept in the outbox until then ------------

    def _keep_events(
        self, uow: UnitOfWork, events: Sequence[ev.Event], now: datetime
    ) -> str | None:
        """With the outbox on, store ``events`` in ``uow`` (the unit that made them, at
        ``now``) and return the entry's id; else None."""
        if not self._outbox or not events:
            return None
        entry = OutboxEntry(
            id=f"outbox-{_SEQUENCE.prefix}{next(_SEQUENCE.counter):012x}",
            created_at=now,
            events=[encode_event(event) for event in events],
        )
        uow.put_outbox(entry)
        return entry.id

    def _publish(
        self, events: Sequence[ev.Event], kept: str | None, later: list[str] | None = None
    ) -> None:
        """Hand a committed unit's ``events`` to the sink, then drop its outbox entry
        ``kept``: at once in a unit of its own, or, given ``later``, by adding the id
        to it for the caller to drop with others (`_forget`)."""
        if not events:
            return
        self.sink.publish(tuple(events))
        if kept is None:
            return
        if later is not None:
            later.append(kept)
        else:
            self._forget([kept])

    def _forget(self, entry_ids: list[str]) -> None:
        """Remove delivered outbox entries. A store failure here is logged, not raised:
        the command itself committed, and an entry left behind is only published
        again by `deliver_outbox` (at least once, as promised)."""
        if not entry_ids:
            return
        try:
            with self.store.unit_of_work() as uow:
                uow.remove_outbox(entry_ids)
                uow.commit()
        except StoreError as exc:
            _log.warning(
                "%d delivered outbox entr%s kept after a store error (%s); "
                "deliver_outbox() will publish them again",
                len(entry_ids),
                "y" if len(entry_ids) == 1 else "ies",
                exc,
            )

    @contextmanager
    def _read(self) -> Iterator[UnitOfWork]:
        """A read-only unit (queries): it refuses writes, and SQLite takes no write lock."""
        with self.store.unit_of_work(read_only=True) as uow:
            authorize_pending(uow)
            yield uow

    @contextmanager
    def _write(self) -> Iterator[UnitOfWork]:
        """A writing unit without a `Work` (no events, no hooks), for maintenance such
        as delivering the outbox; the caller commits."""
        with self.store.unit_of_work() as uow:
            authorize_pending(uow)
            yield uow
