"""Savepoints every store keeps alike (part of `StoreContract`): a block of a unit of
work whose changes are undone, and only those, when it raises."""

from __future__ import annotations

import abc

import pytest

from salesflow.due import DueItem
from salesflow.lead import Lead
from salesflow.stores.base import Query, Store, UnitOfWork
from salesflow.testing.contract_records import T0
from salesflow.testing.contract_sequences import enrollment

__all__ = ["SavepointContract"]


def _lead(n: int) -> Lead:
    return Lead(id=f"lead-{n:04d}", created_at=T0, modified_at=T0, topic="t", last_name=f"L{n}")


def _fail_after_writes(uow: UnitOfWork, *, nested: bool = False) -> None:
    """Write through every kind of write in a savepoint, then fail."""
    with uow.savepoint():
        uow.add(_lead(2))
        if not nested:
            uow.schedule(DueItem(id="due-1", kind="k", due_at=T0, key="k-1"))
            uow.put_state("kind", "key", {"a": 1}, expected_version=None, now=T0)
            uow.add_enrollment(enrollment(1))
        raise RuntimeError("the action failed")


class SavepointContract(abc.ABC):
    """Savepoints (part of `StoreContract`, which supplies the ``store`` fixture)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    def test_a_failed_savepoint_undoes_its_own_changes_only(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.add(_lead(1))
            with pytest.raises(RuntimeError, match="the action failed"):
                _fail_after_writes(uow)
            assert uow.find(Lead, "lead-0002") is None
            assert uow.find(Lead, "lead-0001") == _lead(1)
            assert uow.due_items() == []
            assert uow.get_state("kind", "key") is None
            assert uow.enrollments() == []
            uow.add(_lead(3))  # the unit goes on after the rolled-back block
            uow.commit()
        with store.unit_of_work() as uow:
            found = uow.query(Lead, Query())
        assert [lead.id for lead in found.items] == ["lead-0001", "lead-0003"]

    def test_a_savepoint_that_ends_well_keeps_its_changes(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            with uow.savepoint():
                uow.add(_lead(1))
                with pytest.raises(RuntimeError, match="the action failed"):
                    _fail_after_writes(uow, nested=True)  # a nested savepoint, undone
                uow.put_state("kind", "key", {"a": 1}, expected_version=None, now=T0)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find(Lead, "lead-0001") == _lead(1)
            assert uow.find(Lead, "lead-0002") is None
            state = uow.get_state("kind", "key")
            assert state is not None
            assert state.document == {"a": 1}
