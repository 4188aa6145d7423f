"""One command's unit of work: the store transaction, ``now``, the events the
command has produced, and the integrity checks every command runs (links point
at existing records, closed records stay read-only).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from salesflow import activity as act
from salesflow import events as ev
from salesflow.definitions import ACTIVE, StoredDefinition
from salesflow.due import DueItem
from salesflow.errors import InvalidTransition, NotFound, ValidationError, VersionConflict
from salesflow.interactions import Interaction
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.stores.base import UnitOfWork
from salesflow.values import Record, RecordKind, RecordRef, ref_of

__all__ = [
    "CREATED",
    "REFERENCES",
    "UPDATED",
    "DueIdFactory",
    "Work",
    "as_ref",
    "fields_changed",
    "require_editable",
    "uuid_due_ids",
]

R = TypeVar("R", bound=Record)

DueIdFactory = Callable[[], str]
"""Makes the id of a new due item."""


def uuid_due_ids() -> str:
    """The default due item ids: ``due-`` and a random UUID."""
    return f"due-{uuid.uuid4().hex}"


class Work:
    """A command's unit of work plus the events it has produced so far.

    Due item handlers get one too (`salesflow.engine.DueHandler`): the unit that
    claimed the item.

    Args:
        uow: The store's unit of work the command runs in.
        now: The command's instant (one per command).
        due_ids: Makes the ids of the due items `schedule_due` creates.
    """

    def __init__(
        self, uow: UnitOfWork, now: datetime, *, due_ids: DueIdFactory = uuid_due_ids
    ) -> None:
        self.uow = uow
        self.now = now
        self.events: list[ev.Event] = []
        self._due_ids = due_ids
        # Each record as first read in this unit, and every record written, so that
        # segments can see which records started matching (`written`).
        self._read: dict[RecordRef, Record] = {}
        self.written: dict[RecordRef, tuple[Record | None, Record]] = {}
        # The kinds of the records in `written`: the commit hooks run on every unit
        # and most units write activities only, which a set test tells them at once.
        self.written_kinds: set[RecordKind] = set()
        # Enrollments this unit is moving right now: hooks that the move triggers
        # (its own set_status closing the record) leave them alone.
        self.in_hand: set[str] = set()
        # Interactions this unit recorded: scoring re-scores the people they concern.
        self.recorded: list[Interaction] = []
        # Settings and definitions read once per unit (an import creates hundreds of
        # leads in one), by whoever reads them; a command that changes one drops it.
        self.memo: dict[str, Any] = {}
        # The due item `run_due` is performing in this unit, and the performed items
        # a handler already deleted (see `cancel_due_by_key`).
        self.performing: DueItem | None = None
        self.completed: set[str] = set()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A block whose effects are undone when it raises, while the unit goes on:
        the store's writes (`UnitOfWork.savepoint`) and this unit's events, written
        records, recorded interactions and memo."""
        events = list(self.events)
        written = dict(self.written)
        written_kinds = set(self.written_kinds)
        read = dict(self._read)
        recorded = list(self.recorded)
        in_hand = set(self.in_hand)
        memo = dict(self.memo)
        completed = set(self.completed)
        try:
            with self.uow.savepoint():
                yield
        except BaseException:
            self.events[:] = events
            self.written = written
            self.written_kinds = written_kinds
            self._read = read
            self.recorded[:] = recorded
            self.in_hand = in_hand
            self.memo = memo
            self.completed = completed
            raise

    def add(self, record: Record) -> None:
        """Store a new record in this unit (see `UnitOfWork.add`)."""
        self.uow.add(record)
        self.written[ref_of(record)] = (None, record)
        self.written_kinds.add(record.KIND)

    def update(self, record: Record) -> Record:
        """Store a changed record in this unit (see `UnitOfWork.update`); the unit
        remembers the record as it was first read, for `written`."""
        saved = self.uow.update(record)
        ref = ref_of(record)
        earlier = self.written.get(ref)
        before = earlier[0] if earlier is not None else self._read.get(ref)
        self.written[ref] = (before, saved)
        self.written_kinds.add(record.KIND)
        return saved

    def schedule_due(
        self,
        kind: str,
        due_at: datetime,
        *,
        subject: RecordRef | None = None,
        payload: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> DueItem:
        """Schedule a due item in this unit: it is stored if, and when, the unit commits.

        Args:
            kind: The handler that performs it.
            due_at: When (aware; a past instant means due at once).
            subject: The record it is about.
            payload: What the handler needs (JSON values only).
            key: The logical item's uniqueness key (see `DueItem.key`).

        Returns:
            The new item, or the stored item with the same ``key`` (then nothing
            changes).

        Raises:
            ValidationError: an argument is malformed (see `DueItem`).
        """
        item = DueItem(
            id=self._due_ids(),
            kind=kind,
            due_at=due_at,
            subject=subject,
            payload=payload,
            key=key,
        )
        return self.uow.schedule(item)

    def cancel_due_by_key(self, key: str) -> bool:
        """Cancel the due item with ``key`` in this unit (see
        `UnitOfWork.cancel_due_by_key`).

        When that is the item being performed (a step that schedules its own next
        step under the same key), it is deleted by id and remembered, so that
        `run_due` does not delete it a second time: one statement fewer per
        performed item on the SQL stores.
        """
        item = self.performing
        if item is not None and item.key == key and item.id not in self.completed:
            self.completed.add(item.id)
            return self.uow.complete_due(item.id)
        return self.uow.cancel_due_by_key(key)

    def publish(
        self, kind: str, definition_id: str, version: int, document: dict[str, Any]
    ) -> StoredDefinition:
        """Store ``version`` of a definition, active, and append `DefinitionPublished`
        (every kind of definition is published this one way)."""
        stored = StoredDefinition(
            kind=kind,
            id=definition_id,
            version=version,
            state=ACTIVE,
            document=document,
            published_at=self.now,
        )
        self.uow.add_definition(stored)
        self.events.append(
            ev.DefinitionPublished(
                occurred_at=self.now, kind=kind, definition_id=definition_id, version=version
            )
        )
        return stored

    def set_definition_state(
        self, kind: str, definition_id: str, version: int, state: str
    ) -> StoredDefinition:
        """Change a stored definition's state and append `DefinitionStateChanged`."""
        stored = self.uow.set_definition_state(kind, definition_id, version, state)
        self.events.append(
            ev.DefinitionStateChanged(
                occurred_at=self.now, kind=kind, definition_id=definition_id, state=state
            )
        )
        return stored

    def get(self, cls: type[R], record_id: str, expected_version: int | None = None) -> R:
        """The record, checked to be at ``expected_version`` when that is given.

        Raises:
            ValidationError: ``record_id`` is not a non-empty string.
            NotFound: no such record.
            VersionConflict: the record is at another version.
        """
        if not isinstance(record_id, str) or not record_id:
            raise ValidationError(
                f"{cls.__name__} id {record_id!r} must be a non-empty string",
                field="id",
                value=record_id,
            )
        record = self.uow.get(cls, record_id)
        self._read.setdefault(ref_of(record), record)
        if expected_version is not None and record.version != expected_version:
            raise VersionConflict(
                cls.__name__, record_id, expected=expected_version, actual=record.version
            )
        return record

    def check_references(self, record: Record) -> None:
        """Refuse a record whose links point at records that do not exist."""
        for name, target in REFERENCES[record.KIND]:
            target_id = getattr(record, name)
            if target_id is not None and self.uow.find(target, target_id) is None:
                raise NotFound(target.__name__, target_id, field=f"{type(record).__name__}.{name}")
        for stakeholder in getattr(record, "stakeholders", ()):
            if self.uow.find(Contact, stakeholder.contact_id) is None:
                raise NotFound(
                    "Contact", stakeholder.contact_id, field=f"{type(record).__name__}.stakeholders"
                )


def as_ref(record: object) -> RecordRef:
    """A `RecordRef` from a record or a reference; anything else is refused."""
    if isinstance(record, Record):
        return record.ref
    if isinstance(record, RecordRef):
        return record
    raise ValidationError(
        f"regarding={record!r} must be a record or a RecordRef (e.g. lead.ref or "
        f"RecordRef(kind='lead', id=...)), not {type(record).__name__}",
        field="regarding",
        value=record,
    )


REFERENCES: dict[RecordKind, tuple[tuple[str, type[Record]], ...]] = {
    RecordKind.LEAD: (("parent_contact_id", Contact), ("parent_account_id", Account)),
    RecordKind.CONTACT: (("account_id", Account),),
    RecordKind.ACCOUNT: (("primary_contact_id", Contact),),
    RecordKind.OPPORTUNITY: (
        ("account_id", Account),
        ("contact_id", Contact),
        ("originating_lead_id", Lead),
    ),
    RecordKind.ACTIVITY: (),
}
"""The fields of each kind that must point at an existing record."""

CREATED: dict[RecordKind, Callable[[datetime, str], ev.Event]] = {
    RecordKind.CONTACT: lambda now, rid: ev.ContactCreated(occurred_at=now, contact_id=rid),
    RecordKind.ACCOUNT: lambda now, rid: ev.AccountCreated(occurred_at=now, account_id=rid),
    RecordKind.OPPORTUNITY: lambda now, rid: ev.OpportunityCreated(
        occurred_at=now, opportunity_id=rid
    ),
}

UPDATED: dict[RecordKind, Callable[[datetime, str, tuple[str, ...]], ev.Event]] = {
    RecordKind.CONTACT: lambda now, rid, f: ev.ContactUpdated(
        occurred_at=now, contact_id=rid, fields=f
    ),
    RecordKind.ACCOUNT: lambda now, rid, f: ev.AccountUpdated(
        occurred_at=now, account_id=rid, fields=f
    ),
    RecordKind.OPPORTUNITY: lambda now, rid, f: ev.OpportunityUpdated(
        occurred_at=now, opportunity_id=rid, fields=f
    ),
    RecordKind.ACTIVITY: lambda now, rid, f: ev.ActivityUpdated(
        occurred_at=now, activity_id=rid, fields=f
    ),
}


def require_editable(record: Record) -> None:
    """Refuse edits of a closed opportunity or activity (leads check their own)."""
    if isinstance(record, Opportunity) and not record.is_open:
        raise InvalidTransition(
            f"Opportunity {record.id!r} is {record.status.value} and read-only; reopen it first",
            state=record.status.value,
            event="edit",
        )
    if isinstance(record, act.Activity) and record.state is not act.ActivityState.OPEN:
        raise InvalidTransition(
            f"Activity {record.id!r} is {record.state.value}; only open activities can be changed",
            state=record.state.value,
            event="edit",
        )


def fields_changed(before: Record, after: Record, names: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(n for n in names if getattr(before, n) != getattr(after, n)))
