"""`InteractionContract`: the store contract for interactions.

`salesflow.testing.contract.StoreContract` inherits these tests, so every store's
test module runs them with the store it builds (``make_store``, ``reopen`` and the
``store`` fixture of `StoreContract`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from salesflow.errors import AlreadyExists, ValidationError
from salesflow.interactions import Interaction, InteractionKind
from salesflow.stores.base import Store
from salesflow.stores.codec import Codec
from salesflow.testing.contract_records import T0

__all__ = ["InteractionContract", "interaction"]

CEST = timezone(timedelta(hours=2))


def interaction(n: int, **fields: Any) -> Interaction:
    """An interaction numbered ``n`` (an email opened by contact ``c1``, ``n`` minutes
    after 09:00 on 2 March 2026); ``fields`` override the defaults."""
    base: dict[str, Any] = {
        "id": f"int-{n:04d}",
        "kind": InteractionKind.EMAIL_OPENED,
        "occurred_at": T0 + timedelta(minutes=n),
        "contact_id": "c1",
    }
    base.update(fields)
    return Interaction(**base)


def _ids(found: Sequence[Interaction]) -> list[str]:
    return [i.id for i in found]


class InteractionContract(abc.ABC):
    """The interaction behaviour every `Store` must have (part of `StoreContract`,
    which supplies the methods and the ``store`` fixture)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    @abc.abstractmethod
    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        """Close ``store`` and return a store over the same data (see
        `StoreContract.reopen`)."""

    def add_interactions(self, store: Store, *interactions: Interaction) -> None:
        """Add ``interactions`` in one committed unit of work."""
        with store.unit_of_work() as uow:
            for item in interactions:
                uow.add_interaction(item)
            uow.commit()

    def people(self) -> list[Interaction]:
        """Interactions of contacts c1..c3 (c1 and c2 at account a1), of leads l1 and
        l2, and of both a contact and a lead, numbered by the minute they occurred."""
        return [
            interaction(1, contact_id="c1", account_id="a1"),
            interaction(2, contact_id="c2", account_id="a1"),
            interaction(3, contact_id="c3", account_id="a2"),
            interaction(4, contact_id=None, lead_id="l1"),
            interaction(5, contact_id="c1", lead_id="l1", account_id="a1"),
            interaction(6, contact_id=None, lead_id="l2"),
            interaction(7, contact_id="c2", lead_id="l2"),
            interaction(8, contact_id="c1", account_id="a1"),
        ]

    def test_interactions_round_trip_exactly(self, store: Store) -> None:
        metadata: dict[str, Any] = {
            "amount": Decimal("12.50"),
            "day": date(2026, 2, 28),
            "at": datetime(2026, 3, 1, 18, 30, 0, 123456, tzinfo=CEST),
            "text": "Grüße ✓",
            "count": 3,
            "ratio": 2.5,
            "flag": True,
            "empty": None,
        }
        full = interaction(
            1,
            kind=InteractionKind.LANDING_PAGE_SUBMITTED,
            occurred_at=datetime(2026, 3, 2, 11, 0, 0, 654321, tzinfo=CEST),
            contact_id="c-ü",
            lead_id="l1",
            account_id="a1",
            source_id="lp-spring",
            metadata=metadata,
        )
        bare = interaction(2, contact_id=None, lead_id="l2")
        self.add_interactions(store, full, bare)
        with store.unit_of_work() as uow:
            found = uow.find_interaction(full.id)
            assert found == full
            assert uow.find_interaction(bare.id) == bare
            assert uow.find_interaction("int-9999") is None
        assert found is not None
        assert found.occurred_at == datetime(2026, 3, 2, 9, 0, 0, 654321, tzinfo=UTC)
        assert found.occurred_at.tzinfo == UTC
        # Equal is not enough: Decimal("12.50") == 12.5 and a date is not a datetime.
        assert {k: type(v) for k, v in found.metadata.items()} == {
            k: type(v) for k, v in metadata.items()
        }
        assert str(found.metadata["amount"]) == "12.50"
        assert found.metadata["at"] == metadata["at"]

    def test_adding_an_existing_interaction_is_refused(self, store: Store) -> None:
        self.add_interactions(store, interaction(1))
        with store.unit_of_work() as uow:
            with pytest.raises(AlreadyExists, match="int-0001"):
                uow.add_interaction(interaction(1, kind=InteractionKind.CALL))
            uow.add_interaction(interaction(2))
            with pytest.raises(AlreadyExists, match="int-0002"):
                uow.add_interaction(interaction(2, lead_id="l1"))  # also one the unit added
            uow.add_interaction(interaction(3))  # the unit carries on after a refusal
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find_interaction("int-0001") == interaction(1)
            assert uow.interactions(contact_ids=["c1"]) == [
                interaction(1),
                interaction(2),
                interaction(3),
            ]
            assert uow.interactions(lead_id="l1") == []

    def test_add_interaction_takes_only_an_interaction(self, store: Store) -> None:
        with store.unit_of_work() as uow, pytest.raises(ValidationError, match="Interaction"):
            uow.add_interaction({"id": "int-0001"})  # type: ignore[arg-type]

    def test_interactions_are_found_by_contact_lead_and_account(self, store: Store) -> None:
        self.add_interactions(store, *self.people())

        def ids(**how: Any) -> list[str]:
            with store.unit_of_work() as uow:
                return _ids(uow.interactions(**how))

        assert ids(contact_ids=["c1"]) == ["int-0001", "int-0005", "int-0008"]
        assert ids(contact_ids=["c2", "c3"]) == ["int-0002", "int-0003", "int-0007"]
        assert ids(contact_ids=("c1", "c1")) == ["int-0001", "int-0005", "int-0008"]
        assert ids(lead_id="l1") == ["int-0004", "int-0005"]
        assert ids(account_id="a1") == ["int-0001", "int-0002", "int-0005", "int-0008"]
        assert ids(contact_ids=["c-none"]) == []
        assert ids(lead_id="l-none", account_id="a-none") == []
        # Ids are looked up in their own column only: no contact is named "l1".
        assert ids(contact_ids=["l1", "a1"]) == []
        # The union: an interaction that matches several lookups is listed once.
        assert ids(contact_ids=["c1"], lead_id="l1", account_id="a1") == [
            "int-0001",
            "int-0002",
            "int-0004",
            "int-0005",
            "int-0008",
        ]
        assert ids(contact_ids=["c3", "c2"], lead_id="l2") == [
            "int-0002",
            "int-0003",
            "int-0006",
            "int-0007",
        ]
        assert ids(lead_id="l2", account_id="a2") == ["int-0003", "int-0006", "int-0007"]

    def test_since_keeps_the_interactions_at_or_after_it(self, store: Store) -> None:
        self.add_interactions(store, *self.people())
        at_5 = T0 + timedelta(minutes=5)
        with store.unit_of_work() as uow:
            assert _ids(uow.interactions(contact_ids=["c1"], since=at_5)) == [
                "int-0005",
                "int-0008",
            ]
            # The same instant in another zone, and a microsecond later.
            assert _ids(uow.interactions(lead_id="l1", since=at_5.astimezone(CEST))) == ["int-0005"]
            later = at_5 + timedelta(microseconds=1)
            assert uow.interactions(lead_id="l1", since=later) == []
            assert _ids(
                uow.interactions(contact_ids=["c2"], lead_id="l1", account_id="a2", since=at_5)
            ) == ["int-0005", "int-0007"]
            assert _ids(uow.interactions(account_id="a1", since=T0)) == [
                "int-0001",
                "int-0002",
                "int-0005",
                "int-0008",
            ]
            assert uow.interactions(account_id="a1", since=T0 + timedelta(days=1)) == []

    def test_interactions_are_ordered_by_time_then_id(self, store: Store) -> None:
        tie = T0 + timedelta(hours=1)
        ids = ["b", "B", "a-1", "ä", "a", "Z"]
        earlier = interaction(0, id="z-earlier", occurred_at=tie - timedelta(microseconds=1))
        later = interaction(0, id="A-later", occurred_at=tie + timedelta(microseconds=1))
        # Added in neither time nor id order; half by contact, half by lead.
        self.add_interactions(
            store,
            later,
            *(
                interaction(0, id=i, occurred_at=tie, lead_id="l1", contact_id=None)
                for i in ids[:3]
            ),
            earlier,
            *(interaction(0, id=i, occurred_at=tie.astimezone(CEST)) for i in ids[3:]),
        )
        ordered = ["z-earlier", "B", "Z", "a", "a-1", "b", "ä", "A-later"]
        with store.unit_of_work() as uow:
            assert _ids(uow.interactions(contact_ids=["c1"], lead_id="l1")) == ordered
            assert (
                _ids(uow.interactions(contact_ids=["c1"], lead_id="l1", since=tie)) == (ordered[1:])
            )
            assert _ids(uow.interactions(lead_id="l1")) == ["B", "a-1", "b"]

    def test_interaction_lookups_check_their_arguments(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(ValidationError, match="contact_ids, lead_id or account_id"):
                uow.interactions()
            with pytest.raises(ValidationError, match="contact_ids, lead_id or account_id"):
                uow.interactions(contact_ids=[], since=T0)
            naive = T0.replace(tzinfo=None)
            with pytest.raises(ValidationError, match="since"):
                uow.interactions(contact_ids=["c1"], since=naive)
            with pytest.raises(ValidationError, match="since"):
                uow.interactions(lead_id="l1", since=naive)
            uow.add_interaction(interaction(1))  # the unit is still usable
            assert uow.interactions(contact_ids=["c1"]) == [interaction(1)]

    def test_interaction_lookups_see_the_units_own_writes(self, store: Store) -> None:
        self.add_interactions(store, interaction(2), interaction(4, contact_id="c2"))
        with store.unit_of_work() as uow:
            uow.add_interaction(interaction(3))
            uow.add_interaction(interaction(1, contact_id=None, lead_id="l1", account_id="a1"))
            uow.add_interaction(interaction(5, contact_id="c2", account_id="a1"))
            assert uow.find_interaction("int-0003") == interaction(3)
            assert _ids(uow.interactions(contact_ids=["c1"])) == ["int-0002", "int-0003"]
            assert _ids(uow.interactions(contact_ids=["c1", "c2"], lead_id="l1")) == [
                "int-0001",
                "int-0002",
                "int-0003",
                "int-0004",
                "int-0005",
            ]
            assert _ids(uow.interactions(account_id="a1")) == ["int-0001", "int-0005"]
            since = T0 + timedelta(minutes=3)
            assert _ids(uow.interactions(contact_ids=["c1", "c2"], since=since)) == [
                "int-0003",
                "int-0004",
                "int-0005",
            ]

    def test_uncommitted_interactions_are_rolled_back(self, store: Store) -> None:
        self.add_interactions(store, interaction(1))
        with store.unit_of_work() as uow:
            uow.add_interaction(interaction(2))
            uow.add_interaction(interaction(3, lead_id="l1"))
            assert len(uow.interactions(contact_ids=["c1"])) == 3
        with store.unit_of_work() as uow:
            assert uow.find_interaction("int-0002") is None
            assert uow.interactions(contact_ids=["c1"], lead_id="l1") == [interaction(1)]
            uow.add_interaction(interaction(2))  # its id is free again
            uow.commit()

    def test_an_exception_rolls_back_interaction_writes(self, store: Store) -> None:
        class BoomError(Exception):
            pass

        def half_done() -> None:
            with store.unit_of_work() as uow:
                uow.add_interaction(interaction(1))
                raise BoomError

        with pytest.raises(BoomError):
            half_done()
        with store.unit_of_work() as uow:
            assert uow.find_interaction("int-0001") is None
            assert uow.interactions(contact_ids=["c1"]) == []

    def test_interactions_survive_reopening(self) -> None:
        store = self.make_store()
        people = self.people()
        noted = interaction(
            9,
            metadata={"amount": Decimal("0.10"), "day": date(2026, 1, 1), "at": T0},
        )
        self.add_interactions(store, *people, noted)
        store = self.reopen(store)
        try:
            with store.unit_of_work() as uow:
                assert uow.find_interaction(noted.id) == noted
                assert uow.interactions(contact_ids=["c1"], lead_id="l1", account_id="a1") == [
                    people[0],
                    people[1],
                    people[3],
                    people[4],
                    people[7],
                    noted,
                ]
                assert uow.interactions(lead_id="l2", since=T0 + timedelta(minutes=7)) == [
                    people[6]
                ]
                with pytest.raises(AlreadyExists):
                    uow.add_interaction(interaction(1))
                uow.add_interaction(interaction(10, contact_id="c3"))
                uow.commit()
            with store.unit_of_work() as uow:
                assert _ids(uow.interactions(contact_ids=["c3"])) == ["int-0003", "int-0010"]
        finally:
            store.close()
