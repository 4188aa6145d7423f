"""Due items every store keeps alike (part of `StoreContract`): scheduling (once
per key), claiming in ``(due_at, id)`` order, hidden from a second claimer until the
claiming unit ends, completing, canceling, replacing, and `next_due_at`. `due` builds
the items the tests schedule."""

from __future__ import annotations

import abc
import threading
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest

from salesflow.due import DueItem
from salesflow.errors import AlreadyExists, ValidationError
from salesflow.stores.base import Store
from salesflow.stores.codec import Codec
from salesflow.testing.contract_records import T0
from salesflow.values import RecordRef

__all__ = ["DueContract", "due"]


def due(n: int, *, minutes: int = 0, **fields: Any) -> DueItem:
    """A due item numbered ``n``, due ``minutes`` after ``T0``; ``fields`` override."""
    base: dict[str, Any] = {
        "id": f"due-{n:04d}",
        "kind": "test.kind",
        "due_at": T0 + timedelta(minutes=minutes),
    }
    base.update(fields)
    return DueItem(**base)


class DueContract(abc.ABC):
    """Due items (part of `StoreContract`, which supplies the ``store`` fixture and
    `other_store`)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    @abc.abstractmethod
    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        """Close ``store`` and return a store over the same data (see
        `StoreContract.reopen`)."""

    def other_store(self, store: Store) -> Store:
        """A second store object over the same data (see `StoreContract.other_store`)."""
        return store

    def schedule(self, store: Store, *items: DueItem) -> list[DueItem]:
        """Schedule ``items`` in one committed unit; return what `schedule` returned."""
        with store.unit_of_work() as uow:
            stored = [uow.schedule(item) for item in items]
            uow.commit()
        return stored

    def test_due_items_round_trip_exactly(self, store: Store) -> None:
        item = due(
            1,
            subject=RecordRef(kind="lead", id="lead-0001"),
            payload={
                "step": 3,
                "ratio": 0.1,
                "flag": True,
                "none": None,
                "text": "Grüße ✓",
                "list": [1, "two", [3.5], {"x": None}],
                "nested": {"a": {"b": [False]}},
                "big": 2**62,
            },
            key="enrollment:e1:step:3",
            attempts=2,
        )
        self.schedule(store, item)
        with store.unit_of_work() as uow:
            assert uow.due_items() == [item]

    def test_due_items_are_claimed_in_due_at_then_id_order(self, store: Store) -> None:
        self.schedule(
            store,
            due(3, minutes=10),
            due(1, minutes=20),
            due(2, minutes=10),
            due(4, minutes=0),
            due(5, minutes=30),
        )
        with store.unit_of_work() as uow:
            assert uow.claim_due(T0 + timedelta(minutes=20), 10) == [
                due(4, minutes=0),
                due(2, minutes=10),
                due(3, minutes=10),
                due(1, minutes=20),
            ]
        with store.unit_of_work() as uow:
            first = uow.claim_due(T0 + timedelta(minutes=20), 2)
            second = uow.claim_due(T0 + timedelta(minutes=20), 2)  # not the same again
            assert [i.id for i in first + second] == [
                "due-0004",
                "due-0002",
                "due-0003",
                "due-0001",
            ]
            assert uow.claim_due(T0 + timedelta(minutes=20), 2) == []

    def test_a_unit_claims_the_items_it_scheduled_and_not_those_it_canceled(
        self, store: Store
    ) -> None:
        self.schedule(store, due(1), due(2))
        with store.unit_of_work() as uow:
            uow.schedule(due(3, minutes=-5))
            assert uow.cancel_due("due-0001")
            assert [i.id for i in uow.claim_due(T0, 10)] == ["due-0003", "due-0002"]

    def test_claim_checks_its_arguments(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(ValidationError, match="naive"):
                uow.claim_due(datetime(2026, 1, 1), 1)  # noqa: DTZ001
            for bad in (0, -1, True, 1.5):
                with pytest.raises(ValidationError, match="limit"):
                    uow.claim_due(T0, bad)  # type: ignore[arg-type]

    def test_scheduling_a_key_twice_keeps_the_first_item(self, store: Store) -> None:
        first = due(1, key="k")
        assert self.schedule(store, first) == [first]
        assert self.schedule(store, due(2, minutes=5, key="k")) == [first]
        with store.unit_of_work() as uow:
            # also within one unit, for an item the unit itself scheduled
            new = due(3, key="k3")
            assert uow.schedule(new) == new
            assert uow.schedule(due(4, key="k3")) == new
            uow.commit()
        with store.unit_of_work() as uow:
            assert [i.id for i in uow.due_items()] == ["due-0001", "due-0003"]
            assert uow.cancel_due_by_key("k")
            uow.commit()
        again = due(5, key="k")
        assert self.schedule(store, again) == [again]  # the key is free once the item is gone

    def test_scheduling_an_existing_id_is_refused(self, store: Store) -> None:
        self.schedule(store, due(1))
        with store.unit_of_work() as uow, pytest.raises(AlreadyExists, match="due-0001"):
            uow.schedule(due(1, minutes=5))

    def test_cancel_by_id_and_by_key(self, store: Store) -> None:
        self.schedule(store, due(1), due(2, key="two"))
        with store.unit_of_work() as uow:
            assert uow.cancel_due("due-0001")
            assert not uow.cancel_due("due-0001")
            assert uow.cancel_due_by_key("two")
            assert not uow.cancel_due_by_key("two")
            assert not uow.cancel_due("due-9999")
        with store.unit_of_work() as uow:  # not committed: both are still there
            assert [i.id for i in uow.due_items()] == ["due-0001", "due-0002"]
            uow.cancel_due("due-0001")
            uow.cancel_due_by_key("two")
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.due_items() == []
            assert uow.next_due_at() is None

    def test_an_uncommitted_claim_leaves_the_item_due(self, store: Store) -> None:
        self.schedule(store, due(1))
        with store.unit_of_work() as uow:
            assert [i.id for i in uow.claim_due(T0, 1)] == ["due-0001"]
            assert uow.complete_due("due-0001")
        with store.unit_of_work() as uow:  # rolled back: the item is back
            assert [i.id for i in uow.claim_due(T0, 1)] == ["due-0001"]

    def test_completing_an_item_deletes_it_at_commit(self, store: Store) -> None:
        self.schedule(store, due(1), due(2))
        with store.unit_of_work() as uow:
            (item,) = uow.claim_due(T0, 1)
            assert uow.complete_due(item.id)
            assert not uow.complete_due(item.id)
            assert [i.id for i in uow.due_items()] == ["due-0002"]
            uow.commit()
        with store.unit_of_work() as uow:
            assert [i.id for i in uow.claim_due(T0, 5)] == ["due-0002"]

    def test_next_due_at_is_the_earliest_item(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            assert uow.next_due_at() is None
        self.schedule(store, due(1, minutes=30), due(2, minutes=-90))
        with store.unit_of_work() as uow:
            assert uow.next_due_at() == T0 - timedelta(minutes=90)
            uow.schedule(due(3, minutes=-100))
            assert uow.next_due_at() == T0 - timedelta(minutes=100)  # its own writes
            uow.cancel_due("due-0003")
            uow.cancel_due("due-0002")
            assert uow.next_due_at() == T0 + timedelta(minutes=30)

    def test_due_items_lists_a_subjects_items_in_order(self, store: Store) -> None:
        a = RecordRef(kind="lead", id="lead-a")
        b = RecordRef(kind="contact", id="lead-a")  # same id, other kind
        self.schedule(
            store,
            due(1, minutes=5, subject=a),
            due(2, subject=b),
            due(3, minutes=1, subject=a),
            due(4),
        )
        with store.unit_of_work() as uow:
            assert [i.id for i in uow.due_items(a)] == ["due-0003", "due-0001"]
            assert [i.id for i in uow.due_items(b)] == ["due-0002"]
            assert [i.id for i in uow.due_items()] == [
                "due-0002",
                "due-0004",
                "due-0003",
                "due-0001",
            ]

    def test_replace_due_swaps_only_an_unchanged_item(self, store: Store) -> None:
        item = due(1, key="k")
        self.schedule(store, item)
        retried = attrs.evolve(item, attempts=1, due_at=T0 + timedelta(minutes=1))
        with store.unit_of_work() as uow:
            assert uow.replace_due(item, retried)
            assert not uow.replace_due(item, retried)  # no longer the stored one
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.due_items() == [retried]
            assert not uow.replace_due(item, None)
            with pytest.raises(ValidationError, match="id and key"):
                uow.replace_due(retried, due(2))
            assert uow.replace_due(retried, None)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.due_items() == []

    def test_returned_due_items_are_copies(self, store: Store) -> None:
        self.schedule(store, due(1, payload={"a": [1]}))
        with store.unit_of_work() as uow:
            (item,) = uow.due_items()
            item.payload["a"].append(2)
        with store.unit_of_work() as uow:
            assert uow.due_items()[0].payload == {"a": [1]}

    def test_a_claim_hides_items_from_a_second_claimer_until_the_unit_ends(
        self, store: Store
    ) -> None:
        self.schedule(store, *(due(n) for n in range(1, 6)))
        other = self.other_store(store)
        started = threading.Event()
        got: list[list[str]] = []
        errors: list[BaseException] = []

        def second() -> None:
            try:
                started.set()
                with other.unit_of_work() as uow:
                    got.append([i.id for i in uow.claim_due(T0, 10)])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        try:
            with store.unit_of_work() as uow:
                mine = [i.id for i in uow.claim_due(T0, 2)]
                thread = threading.Thread(target=second)
                thread.start()
                started.wait(10)
                # The second claimer either skips my items (PostgreSQL) or waits for my
                # unit to end (one unit at a time): either way it never gets them.
                for item_id in mine:
                    uow.complete_due(item_id)
                uow.commit()
            thread.join(30)
            assert not errors, errors
            assert mine == ["due-0001", "due-0002"]
            assert got == [["due-0003", "due-0004", "due-0005"]]
        finally:
            if other is not store:
                other.close()

    def test_due_items_survive_reopening(self) -> None:
        store = self.make_store()
        item = due(1, subject=RecordRef(kind="lead", id="x"), payload={"n": 1.5}, key="k")
        self.schedule(store, item, due(2, minutes=-1))
        store = self.reopen(store)
        try:
            with store.unit_of_work() as uow:
                assert uow.due_items() == [due(2, minutes=-1), item]
                assert uow.next_due_at() == T0 - timedelta(minutes=1)
                assert uow.schedule(due(3, key="k")) == item
        finally:
            store.close()
