"""`ReadOnlyContract`: the store contract for read-only units of work
(``store.unit_of_work(read_only=True)``, `salesflow.stores.readonly`).

`salesflow.testing.contract.StoreContract` inherits these tests, so every store's
test module runs them with the store it builds.
"""

from __future__ import annotations

import abc

import pytest

from salesflow.due import DueItem
from salesflow.errors import StoreError
from salesflow.lead import Lead
from salesflow.stores.base import Query, Store, UnitOfWork
from salesflow.stores.readonly import WRITE_METHODS
from salesflow.testing.contract_records import T0
from salesflow.testing.contract_sequences import enrollment

__all__ = ["ReadOnlyContract"]


def _lead(n: int) -> Lead:
    return Lead(id=f"lead-{n:04d}", created_at=T0, modified_at=T0, topic="t", last_name=f"L{n}")


def _seen(uow: UnitOfWork) -> tuple[object, ...]:
    """What a unit reads of the data `_fill` writes, through several read methods."""
    return (
        [lead.id for lead in uow.query(Lead, Query()).items],
        uow.find(Lead, "lead-0001"),
        [item.id for item in uow.due_items()],
        uow.next_due_at(),
        uow.get_state("kind", "key"),
        [e.id for e in uow.enrollments()],
    )


def _fill(uow: UnitOfWork) -> None:
    uow.add(_lead(1))
    uow.add(_lead(2))
    uow.schedule(DueItem(id="due-1", kind="k", due_at=T0, key="k-1"))
    uow.put_state("kind", "key", {"a": 1}, expected_version=None, now=T0)
    uow.add_enrollment(enrollment(1))


def _filled(store: Store) -> tuple[object, ...]:
    """Commit `_fill` to ``store``; return what a writing unit then sees (`_seen`)."""
    with store.unit_of_work() as uow:
        _fill(uow)
        uow.commit()
    with store.unit_of_work() as uow:
        return _seen(uow)


class ReadOnlyContract(abc.ABC):
    """Read-only units (part of `StoreContract`, which supplies the ``store`` fixture
    and `other_store`)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    def other_store(self, store: Store) -> Store:
        """A second store object over the same data (see `StoreContract.other_store`)."""
        return store

    def test_a_read_only_unit_reads_what_a_writing_unit_reads(self, store: Store) -> None:
        expected = _filled(store)
        with store.unit_of_work(read_only=True) as uow:
            assert _seen(uow) == expected
        assert expected[0] == ["lead-0001", "lead-0002"]

    def test_a_read_only_unit_refuses_every_write_and_changes_nothing(self, store: Store) -> None:
        before = _filled(store)
        with store.unit_of_work(read_only=True) as uow:
            for name in sorted(WRITE_METHODS):
                write = getattr(uow, name)
                # The refusal comes before the arguments are looked at.
                with pytest.raises(StoreError, match=rf"{name}\(\) writes.*read-only"):
                    write(_lead(3))
            assert _seen(uow) == before  # the unit goes on reading
            uow.commit()  # ends the transaction; there is nothing to write
        with store.unit_of_work() as uow:
            assert _seen(uow) == before

    def test_units_of_both_kinds_take_turns(self, store: Store) -> None:
        # A store that switches its connection's mode per unit must switch it back.
        for n in range(1, 4):
            with store.unit_of_work(read_only=True) as uow:
                assert uow.find(Lead, f"lead-{n:04d}") is None
            with store.unit_of_work() as uow:
                uow.add(_lead(n))
                uow.commit()
            with store.unit_of_work(read_only=True) as uow:
                assert uow.get(Lead, f"lead-{n:04d}") == _lead(n)
        with store.unit_of_work(read_only=True) as uow:
            assert uow.query(Lead, Query()).total == 3

    def test_a_read_only_unit_neither_waits_for_a_writer_nor_holds_one_up(
        self, store: Store
    ) -> None:
        other = self.other_store(store)
        if other is store:
            pytest.skip("one store object: its units take turns in one thread")
        try:
            with store.unit_of_work() as uow:
                uow.add(_lead(1))
                uow.commit()
            with store.unit_of_work() as writing:
                writing.add(_lead(2))  # holds the write lock, not committed
                with other.unit_of_work(read_only=True) as reading:
                    found = reading.query(Lead, Query())
                assert [lead.id for lead in found.items] == ["lead-0001"]
                writing.commit()
            with other.unit_of_work(read_only=True) as reading:
                assert reading.query(Lead, Query()).total == 2
                with store.unit_of_work() as writing:  # nor holds up a writer
                    writing.add(_lead(3))
                    writing.commit()
            with other.unit_of_work(read_only=True) as reading:
                assert reading.query(Lead, Query()).total == 3
        finally:
            other.close()
