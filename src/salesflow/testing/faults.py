"""Fault injection for stores: prove that a failed unit of work leaves nothing behind.

`FaultyStore` wraps any `Store` (the three of salesflow, or a host's own) and makes
its units of work raise `StoreError` on the Nth *write* call, as a full disk, a lost
connection or a refused constraint would. Running a command once per N, on the same
stored state, and comparing `store_snapshot` before and after, shows that every
write of the command is undone when any one of them fails::

    faulty = FaultyStore(open_store("sqlite:///crm.db"))
    engine = Salesflow(faulty, clock=clock)
    ...  # build the world through the engine
    before = store_snapshot(faulty.inner, **faulty.kinds_seen())
    faulty.fail_at(1)  # the first write from now on fails
    with pytest.raises(StoreError):
        engine.create_lead(last_name="Ruiz")
    assert store_snapshot(faulty.inner, **faulty.kinds_seen()) == before

Every `UnitOfWork` method is classified in `READS` or `WRITES`; a method the
protocol gains later and nobody classified raises `AttributeError` on first use
instead of silently passing through uncounted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from salesflow.activity import Activity
from salesflow.definitions import StateDocument, StoredDefinition
from salesflow.due import DueItem
from salesflow.errors import StoreError, ValidationError
from salesflow.interactions import Interaction
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.scoring_compile import ScoreResult
from salesflow.sequences.enrollment import Enrollment
from salesflow.stores.base import Query, Store, UnitOfWork, iter_kinds
from salesflow.stores.readonly import READ_METHODS, WRITE_METHODS
from salesflow.values import Record

__all__ = ["READS", "WRITES", "FaultyStore", "StoreSnapshot", "store_snapshot"]

_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
"""Later than any outbox entry (the snapshot lists them all)."""

_CLAIMS = frozenset({"claim_due", "claim_outbox"})
"""Claiming locks rows until the unit ends but stores nothing: a read to the fault
counter, though a read-only unit refuses it."""

WRITES: frozenset[str] = WRITE_METHODS - _CLAIMS
"""The `UnitOfWork` methods that change what the store holds (counted by `FaultyStore`):
`salesflow.stores.readonly.WRITE_METHODS` but the claims.

``commit`` and ``savepoint`` are in neither set: they end or mark the unit and are
passed through."""

READS: frozenset[str] = (READ_METHODS - {"commit", "savepoint"}) | _CLAIMS
"""The `UnitOfWork` methods that only read (passed through, never fail)."""


class FaultyStore:
    """A `Store` whose units of work fail on the Nth write call.

    Writes (see `WRITES`) are counted across the store's whole life, over every unit
    of work; the call that makes the count reach `fail_on` raises
    ``StoreError("injected fault at write N")`` inside the unit, which then ends
    without commit like any failed command. Reads pass through untouched.

    Args:
        inner: The store that really keeps the data.
        fail_on: The number of the write (counted from 1 over the store's life)
            that fails; None counts writes and never fails (see `fail_at`).
        persistent: Every write from ``fail_on`` on fails too, as on a store that
            went away; without it only that one call fails (a transient fault).
            A command that retries in new units (`Salesflow.run_due`, a CSV import
            redoing a batch row by row) meets the fault again only when persistent.
        after_write: Perform the failing write on ``inner`` first, then raise, so
            the unit must undo that write as well; by default the failing call
            raises before it reaches ``inner``.

    Attributes:
        writes: How many write calls were made so far (failed ones included).
        faults: How many faults were raised so far.
    """

    def __init__(
        self,
        inner: Store,
        fail_on: int | None = None,
        *,
        persistent: bool = False,
        after_write: bool = False,
    ) -> None:
        if fail_on is not None and (
            isinstance(fail_on, bool) or not isinstance(fail_on, int) or fail_on < 1
        ):
            raise ValidationError(
                f"fail_on={fail_on!r} must be a whole number >= 1 (writes are counted from "
                f"1), or None to count writes without failing",
                field="fail_on",
                value=fail_on,
            )
        self.inner = inner
        self.fail_on = fail_on
        self.persistent = persistent
        self.after_write = after_write
        self.writes = 0
        self.faults = 0
        self._definition_kinds: set[str] = set()
        self._state_kinds: set[str] = set()

    def fail_at(self, n: int | None) -> None:
        """Fail on the ``n``-th write from now on (1 = the next write); None disarms.

        Raises:
            ValidationError: ``n`` is not a whole number >= 1 or None.
        """
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValidationError(
                f"n={n!r} must be a whole number >= 1 (1 = the next write), or None",
                field="n",
                value=n,
            )
        self.fail_on = None if n is None else self.writes + n

    def kinds_seen(self) -> dict[str, frozenset[str]]:
        """The definition and state kinds any unit wrote or read so far, as keyword
        arguments of `store_snapshot` (its reads need the kinds by name)."""
        return {
            "definition_kinds": frozenset(self._definition_kinds),
            "state_kinds": frozenset(self._state_kinds),
        }

    def unit_of_work(self, *, read_only: bool = False) -> AbstractContextManager[UnitOfWork]:
        """A unit of work of ``inner`` whose writes are counted and may fail
        (``read_only``: one of ``inner``'s read-only units, which has none)."""
        return self._unit(read_only)

    @contextmanager
    def _unit(self, read_only: bool) -> Iterator[UnitOfWork]:
        with self.inner.unit_of_work(read_only=read_only) as uow:
            yield cast(UnitOfWork, _FaultyUnit(self, uow))

    def migrate(self) -> int:
        """``inner.migrate()``: a maintenance rewrite, not a unit of work (not counted)."""
        return self.inner.migrate()

    def close(self) -> None:
        """Close ``inner``."""
        self.inner.close()

    def _note(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Remember the kind a definition or state call names, for `kinds_seen`."""
        if name == "add_definition" and args and isinstance(args[0], StoredDefinition):
            self._definition_kinds.add(args[0].kind)
        elif name in ("set_definition_state", "find_definition", "definitions"):
            kind = args[0] if args else kwargs.get("kind")
            if isinstance(kind, str):
                self._definition_kinds.add(kind)
        elif name in ("put_state", "get_state", "states"):
            kind = args[0] if args else kwargs.get("kind")
            if isinstance(kind, str):
                self._state_kinds.add(kind)

    def _write(self, name: str, call: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        self.writes += 1
        number = self.writes
        failing = self.fail_on is not None and (
            number == self.fail_on or (self.persistent and number > self.fail_on)
        )
        if not failing:
            return call(*args, **kwargs)
        if self.after_write:
            call(*args, **kwargs)
        self.faults += 1
        raise StoreError(f"injected fault at write {number} ({name})")


class _FaultyUnit:
    """Passes reads to the inner unit and counts (and maybe fails) its writes."""

    def __init__(self, store: FaultyStore, inner: UnitOfWork) -> None:
        self._store = store
        self._inner = inner

    def commit(self) -> None:
        self._inner.commit()

    def savepoint(self) -> AbstractContextManager[None]:
        return self._inner.savepoint()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        store = self._store
        if name in WRITES:

            def write(*args: Any, **kwargs: Any) -> Any:
                store._note(name, args, kwargs)
                return store._write(name, target, args, kwargs)

            return write
        if name in READS:

            def read(*args: Any, **kwargs: Any) -> Any:
                store._note(name, args, kwargs)
                return target(*args, **kwargs)

            return read
        raise AttributeError(
            f"FaultyStore does not know whether UnitOfWork.{name} writes; add it to "
            f"salesflow.testing.faults.READS or WRITES"
        )


StoreSnapshot = dict[str, Any]
"""Everything a store holds, as plain comparable values (see `store_snapshot`)."""

_PAGE = 10_000


def _all_records(uow: UnitOfWork, cls: type[Record]) -> list[Record]:
    found: list[Record] = []
    while True:
        page = uow.query(cls, Query(limit=_PAGE, offset=len(found)))
        found.extend(page.items)
        if not page.has_more:
            return found


def store_snapshot(
    store: Store,
    *,
    definition_kinds: frozenset[str] | set[str] | tuple[str, ...] = (),
    state_kinds: frozenset[str] | set[str] | tuple[str, ...] = (),
) -> StoreSnapshot:
    """Read everything ``store`` holds through the `UnitOfWork` read API, in one unit.

    Records of every kind (by id), due items, every version of the definitions of
    ``definition_kinds``, enrollments, the interactions and score histories of every
    lead, contact and account, and the state documents of ``state_kinds``. Two
    snapshots are equal exactly when those contents are. Definitions and states are
    only listed per kind, so pass the kinds in use (`FaultyStore.kinds_seen`).
    Meant for small test worlds: it reads every record.
    """
    with store.unit_of_work() as uow:
        records = {kind.value: _all_records(uow, cls) for kind, cls in iter_kinds()}
        definitions: dict[str, list[StoredDefinition | None]] = {}
        for kind in sorted(definition_kinds):
            for latest in uow.definitions(kind):
                definitions[f"{kind}:{latest.id}"] = [
                    uow.find_definition(kind, latest.id, version)
                    for version in range(1, latest.version + 1)
                ]
        interactions: dict[str, Interaction] = {}
        for record in records["lead"]:
            interactions.update((i.id, i) for i in uow.interactions(lead_id=record.id))
        for record in records["contact"]:
            interactions.update((i.id, i) for i in uow.interactions(contact_ids=[record.id]))
        for record in records["account"]:
            interactions.update((i.id, i) for i in uow.interactions(account_id=record.id))
        scores: dict[str, list[ScoreResult]] = {
            record.id: uow.score_history(record.id) for record in records["lead"]
        }
        states: dict[str, list[StateDocument]] = {}
        for kind in sorted(state_kinds):
            documents = uow.states(kind)
            if documents:  # a kind with none is left out: more kinds asked, same snapshot
                states[kind] = documents
        due: list[DueItem] = uow.due_items()
        enrollments: list[Enrollment] = uow.enrollments()
        timelines: dict[str, list[Activity]] = {
            str(record.ref): uow.timeline(record.ref)
            for cls in (Lead, Contact, Account, Opportunity)
            for record in records[cls.KIND.value]
        }
        return {
            "records": records,
            "due_items": due,
            "next_due_at": uow.next_due_at(),
            "definitions": definitions,
            "enrollments": enrollments,
            "interactions": dict(sorted(interactions.items())),
            "scores": scores,
            "states": states,
            "timelines": timelines,
            "outbox": uow.claim_outbox(_END_OF_TIME, 10_000),
        }
