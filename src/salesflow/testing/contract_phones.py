"""Phone lookups every store keeps alike (part of `StoreContract`): leads and contacts
are found by ``mobile_phone_key`` and ``business_phone_key``, the last 8 digits of the
number (`salesflow.matching.phone_key`), however it is written, as matching by phone
needs."""

from __future__ import annotations

import abc
from datetime import timedelta
from typing import Any

import attrs
import pytest

from salesflow.errors import StoreError
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.stores.base import Store
from salesflow.testing.contract_records import T0
from salesflow.values import Record

__all__ = ["PhoneLookupContract"]


def _contact(n: int, **fields: Any) -> Contact:
    return Contact(
        id=f"c{n}",
        created_at=T0,
        modified_at=T0 + timedelta(minutes=n),
        last_name=f"L{n}",
        **fields,
    )


def _lead(n: int, **fields: Any) -> Lead:
    return Lead(
        id=f"lead-{n:04d}",
        created_at=T0,
        modified_at=T0 + timedelta(minutes=n),
        topic="t",
        last_name=f"L{n}",
        **fields,
    )


class PhoneLookupContract(abc.ABC):
    """Phone lookups (part of `StoreContract`, which supplies the ``store`` fixture)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    def _put(self, store: Store, *records: Record) -> None:
        with store.unit_of_work() as uow:
            for record in records:
                uow.add(record)
            uow.commit()

    def test_people_are_found_by_the_last_8_digits_of_each_phone(self, store: Store) -> None:
        self._put(
            store,
            _contact(1, mobile_phone="+370 612 34567"),
            _contact(2, mobile_phone="8 (612) 34-567", business_phone="+44 20 7946 0018"),
            _contact(3, mobile_phone="+370 699 99999"),
            _contact(4, email="no.phone@x.example"),
            _contact(5, mobile_phone="ext. 12"),  # fewer than 8 digits: all of them
            _lead(1, business_phone="00370 612 34567"),
            _lead(2, mobile_phone="+370 612 34567"),
        )
        with store.unit_of_work() as uow:
            found = uow.find_by(Contact, "mobile_phone_key", "61234567")
            assert [c.id for c in found] == ["c2", "c1"]  # newest first
            assert [c.id for c in uow.find_by(Contact, "business_phone_key", "79460018")] == ["c2"]
            assert uow.find_by(Contact, "business_phone_key", "61234567") == []
            assert [c.id for c in uow.find_by(Contact, "mobile_phone_key", "12")] == ["c5"]
            assert [r.id for r in uow.find_by(Lead, "business_phone_key", "61234567")] == [
                "lead-0001"
            ]
            assert [r.id for r in uow.find_by(Lead, "mobile_phone_key", "61234567")] == [
                "lead-0002"
            ]
            with pytest.raises(StoreError, match="no lookup key"):
                uow.find_by(Account, "mobile_phone_key", "61234567")

    def test_many_phone_keys_are_looked_up_at_once(self, store: Store) -> None:
        contacts = [
            _contact(i, mobile_phone=f"+370 600 0000{i % 3}", business_phone=f"8 5 2000 00{i}")
            for i in range(7)
        ]
        self._put(store, *contacts)
        wanted = ["60000000", "60000001", "99999999", "60000000"] + [
            f"7{i:07d}"
            for i in range(1200)  # more than one IN (...) chunk
        ]
        with store.unit_of_work() as uow:
            found = uow.find_many_by(Contact, "mobile_phone_key", wanted)
            assert [c.id for c in found["60000000"]] == ["c6", "c3", "c0"]
            assert [c.id for c in found["60000001"]] == ["c4", "c1"]
            assert found["99999999"] == []
            assert len(found) == 3 + 1200
            ids = uow.find_ids_by(Contact, "mobile_phone_key", wanted)
            assert ids == {value: [c.id for c in records] for value, records in found.items()}
            business = uow.find_ids_by(Contact, "business_phone_key", ["52000003", "60000000"])
            assert business == {"52000003": ["c3"], "60000000": []}
            # the unit's own writes are found too, before it commits
            uow.add(_contact(9, mobile_phone="860000001"))
            mine = uow.find_ids_by(Contact, "mobile_phone_key", ["60000001"])
            assert mine == {"60000001": ["c9", "c4", "c1"]}
            assert [
                c.id
                for c in uow.find_many_by(Contact, "mobile_phone_key", ["60000001"])["60000001"]
            ] == ["c9", "c4", "c1"]

    def test_phone_keys_follow_a_changed_phone(self, store: Store) -> None:
        self._put(store, _lead(1, mobile_phone="+370 612 34567"))
        with store.unit_of_work() as uow:
            lead = uow.get(Lead, "lead-0001")
            uow.update(
                attrs.evolve(lead, mobile_phone="+370 698 76543", business_phone="812345678")
            )
            # inside the unit, the change is already visible to lookups
            assert uow.find_by(Lead, "mobile_phone_key", "61234567") == []
            assert uow.find_ids_by(Lead, "mobile_phone_key", ["61234567"]) == {"61234567": []}
            assert [r.id for r in uow.find_by(Lead, "mobile_phone_key", "69876543")] == [
                "lead-0001"
            ]
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find_ids_by(Lead, "mobile_phone_key", ["61234567", "69876543"]) == {
                "61234567": [],
                "69876543": ["lead-0001"],
            }
            assert [r.id for r in uow.find_by(Lead, "business_phone_key", "12345678")] == [
                "lead-0001"
            ]
            uow.update(attrs.evolve(uow.get(Lead, "lead-0001"), mobile_phone=None))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find_by(Lead, "mobile_phone_key", "69876543") == []
            assert uow.find_ids_by(Lead, "business_phone_key", ["12345678"]) == {
                "12345678": ["lead-0001"]
            }

    def test_a_unit_finds_the_phones_it_wrote_and_forgets_them_on_rollback(
        self, store: Store
    ) -> None:
        with store.unit_of_work() as uow:
            uow.add(_contact(1, business_phone="+1 (425) 555-0100"))
            uow.add(_lead(1, mobile_phone="+1 425 555 0100"))
            assert [c.id for c in uow.find_by(Contact, "business_phone_key", "55550100")] == ["c1"]
            assert uow.find_ids_by(Lead, "mobile_phone_key", ["55550100"]) == {
                "55550100": ["lead-0001"]
            }
            # not committed: rolled back
        with store.unit_of_work() as uow:
            assert uow.find_by(Contact, "business_phone_key", "55550100") == []
            assert uow.find_ids_by(Lead, "mobile_phone_key", ["55550100"]) == {"55550100": []}
