"""Lookups every store keeps alike (part of `StoreContract`): contacts by normalized
email and accounts by normalized name, newest first, many values at once, and lookups
that follow a changed key and see their unit's own writes."""

from __future__ import annotations

import abc
from datetime import timedelta

import attrs
import pytest

from salesflow.errors import StoreError
from salesflow.party import Account, Contact
from salesflow.stores.base import Store
from salesflow.testing.contract_records import T0
from salesflow.values import Record

__all__ = ["LookupContract"]


class LookupContract(abc.ABC):
    """Lookups by key (part of `StoreContract`, which supplies the ``store`` fixture
    and `put`)."""

    @abc.abstractmethod
    def put(self, store: Store, *records: Record) -> None:
        """Add ``records`` in one committed unit of work (see `StoreContract.put`)."""

    def test_contacts_are_found_by_normalized_email_newest_first(self, store: Store) -> None:
        older = Contact(
            id="c1", created_at=T0, modified_at=T0, last_name="A", email="Pat@Example.com"
        )
        newer = Contact(
            id="c2",
            created_at=T0,
            modified_at=T0 + timedelta(days=1),
            last_name="B",
            email=" pat@example.COM",
        )
        other = Contact(id="c3", created_at=T0, modified_at=T0, last_name="C", email="x@y.io")
        self.put(store, older, newer, other)
        with store.unit_of_work() as uow:
            found = uow.find_by(Contact, "email_key", "pat@example.com")
        assert [c.id for c in found] == ["c2", "c1"]

    def test_accounts_are_found_by_normalized_name(self, store: Store) -> None:
        self.put(
            store,
            Account(id="a1", created_at=T0, modified_at=T0, name="  Contoso   Ltd "),
            Account(id="a2", created_at=T0, modified_at=T0, name="Fabrikam"),
        )
        with store.unit_of_work() as uow:
            assert [a.id for a in uow.find_by(Account, "name_key", "contoso ltd")] == ["a1"]

    def test_lookups_follow_a_changed_key(self, store: Store) -> None:
        self.put(
            store,
            Contact(id="c1", created_at=T0, modified_at=T0, last_name="A", email="old@x.example"),
        )
        with store.unit_of_work() as uow:
            contact = uow.get(Contact, "c1")
            uow.update(attrs.evolve(contact, email="new@x.example"))
            # inside the unit, the change is already visible to lookups
            assert uow.find_by(Contact, "email_key", "old@x.example") == []
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find_by(Contact, "email_key", "old@x.example") == []
            assert [c.id for c in uow.find_by(Contact, "email_key", "new@x.example")] == ["c1"]
            uow.update(attrs.evolve(uow.get(Contact, "c1"), email=None))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find_by(Contact, "email_key", "new@x.example") == []

    def test_many_values_are_looked_up_at_once(self, store: Store) -> None:
        contacts = [
            Contact(
                id=f"c{i}",
                created_at=T0,
                modified_at=T0 + timedelta(minutes=i),
                last_name="A",
                email=f"p{i % 3}@x.example",
            )
            for i in range(7)
        ]
        self.put(store, *contacts)
        with store.unit_of_work() as uow:
            uow.add(
                Contact(
                    id="new",
                    created_at=T0,
                    modified_at=T0 + timedelta(days=1),
                    last_name="N",
                    email="p0@x.example",
                )
            )
            wanted = [f"p{i}@x.example" for i in (0, 1, 9, 0)] + [
                f"q{i}@x.example"
                for i in range(1200)  # more than one IN (...) chunk
            ]
            found = uow.find_many_by(Contact, "email_key", wanted)
            assert [c.id for c in found["p0@x.example"]] == ["new", "c6", "c3", "c0"]
            assert [c.id for c in found["p1@x.example"]] == ["c4", "c1"]
            assert found["p9@x.example"] == []
            assert len(found) == 3 + 1200
            ids = uow.find_ids_by(Contact, "email_key", wanted)
            assert ids == {value: [c.id for c in records] for value, records in found.items()}
            with pytest.raises(StoreError, match="no lookup key"):
                uow.find_many_by(Contact, "name_key", ["x"])
            with pytest.raises(StoreError, match="no lookup key"):
                uow.find_ids_by(Contact, "name_key", ["x"])
        with store.unit_of_work() as uow:  # committed records only: the fast path
            ids = uow.find_ids_by(Contact, "email_key", ["p0@x.example", "p2@x.example", "z"])
            assert ids == {
                "p0@x.example": ["c6", "c3", "c0"],
                "p2@x.example": ["c5", "c2"],
                "z": [],
            }

    def test_lookups_see_the_units_own_writes(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.add(Account(id="a1", created_at=T0, modified_at=T0, name="Northwind"))
            assert [a.id for a in uow.find_by(Account, "name_key", "northwind")] == ["a1"]
