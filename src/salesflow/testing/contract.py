"""`StoreContract`: the one test suite every store must pass.

Each store's test module subclasses it and says how to build the store::

    class TestMyStore(StoreContract):
        def make_store(self) -> Store:
            return MyStore(...)

        def reopen(self, store: Store, codec: Codec | None = None) -> Store:
            store.close()
            return MyStore(..., codec=codec)  # the same database again

A third-party store proves it conforms by running the same suite. Needs pytest
and hypothesis (the ``test`` extra).

The tests of each topic live in a mixin of their own (the ``contract_*`` modules),
which `StoreContract` composes; this module keeps the class with its fixtures and the
identity and unit-of-work tests, and re-exports the builders store tests use (`lead`,
`due`, `upgraded_codec`, `tier_to_segment`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from salesflow.activity import Activity, ActivityKind
from salesflow.errors import AlreadyExists, NotFound, StoreError, VersionConflict
from salesflow.lead import Lead, LeadSource, Rating
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Competitor, Contact, Stakeholder
from salesflow.stores.base import Store
from salesflow.stores.codec import Codec
from salesflow.testing.contract_due import DueContract, due
from salesflow.testing.contract_interactions import InteractionContract
from salesflow.testing.contract_lookups import LookupContract
from salesflow.testing.contract_migration import (
    MigrationContract,
    tier_to_segment,
    upgraded_codec,
)
from salesflow.testing.contract_outbox import OutboxContract
from salesflow.testing.contract_phones import PhoneLookupContract
from salesflow.testing.contract_queries import QueryContract
from salesflow.testing.contract_readonly import ReadOnlyContract
from salesflow.testing.contract_records import T0, lead
from salesflow.testing.contract_reports import ReportContract
from salesflow.testing.contract_savepoints import SavepointContract
from salesflow.testing.contract_scores import ScoreContract
from salesflow.testing.contract_sequences import SequenceContract
from salesflow.testing.contract_states import StateContract
from salesflow.testing.contract_timeline import TimelineContract
from salesflow.testing.contract_worklist import WorkListContract
from salesflow.values import Money, Record

__all__ = ["StoreContract", "due", "lead", "tier_to_segment", "upgraded_codec"]


class StoreContract(
    LookupContract,
    QueryContract,
    MigrationContract,
    TimelineContract,
    DueContract,
    SequenceContract,
    InteractionContract,
    ScoreContract,
    StateContract,
    ReportContract,
    SavepointContract,
    WorkListContract,
    OutboxContract,
    ReadOnlyContract,
    PhoneLookupContract,
    abc.ABC,
):
    """Behaviour every `Store` must have. Subclass it in a ``Test*`` class.

    Each topic's tests come from a mixin: lookups from `LookupContract`, queries from
    `QueryContract`, due items from `DueContract`, definitions and enrollments from
    `SequenceContract`, and so on."""

    migrates_when_opened: bool = False
    """True for a store that decodes, and so migrates, every document when it is
    opened (`MemoryStore.load`): its `Store.migrate` finds nothing left to rewrite."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (with the default codec)."""

    @abc.abstractmethod
    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        """Close ``store`` and return a store over the same data.

        Args:
            store: The store to close.
            codec: The codec the reopened store reads and writes with (the
                default codec when ``None``), as after an upgrade of the host.

        Returns:
            The reopened store.
        """

    def other_store(self, store: Store) -> Store:
        """A second store object over the same data, for a second claimer in another
        thread (a second connection for SQL stores). The default is ``store`` itself,
        right for a store whose data lives in the object (`MemoryStore`). Closed by
        the test when it is not ``store``."""
        return store

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A fresh store, closed after the test."""
        made = self.make_store()
        yield made
        made.close()

    def put(self, store: Store, *records: Record) -> None:
        """Add ``records`` in one committed unit of work."""
        with store.unit_of_work() as uow:
            for record in records:
                uow.add(record)
            uow.commit()

    # --- identity, versions, units of work ------------------------------------------

    def test_every_kind_round_trips_exactly(self, store: Store) -> None:
        account = Account(
            id="acc-1",
            created_at=T0,
            modified_at=T0,
            name="Contoso Ltd",
            annual_revenue=Money(amount=Decimal("1250000.50"), currency="EUR"),
            employees=120,
        )
        contact = Contact(
            id="con-1",
            created_at=T0,
            modified_at=T0,
            first_name="Ana",
            last_name="Ruiz",
            email="Ana.Ruiz@Contoso.com",
            account_id="acc-1",
        )
        full = lead(
            1,
            email="ana@example.com",
            company_name="Contoso",
            rating=Rating.HOT,
            source=LeadSource.TRADE_SHOW,
            estimated_value=Money(amount="99.90", currency="USD"),
            estimated_close_date=date(2026, 6, 30),
            stakeholders=(Stakeholder(contact_id="con-1", role="Decision maker"),),
            competitors=(Competitor(name="Fabrikam", website="fabrikam.example"),),
            custom={
                "region": "EMEA",
                "seats": 12,
                "ratio": 0.25,
                "vip": True,
                "budget": Decimal("10.10"),
                "renewal": date(2027, 1, 1),
                "seen": datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC),
                "gone": None,
            },
        )
        opportunity = Opportunity(
            id="opp-1",
            created_at=T0,
            modified_at=T0,
            name="Topic 1",
            account_id="acc-1",
            contact_id="con-1",
            originating_lead_id=full.id,
            probability=40,
        )
        activity = Activity(
            id="act-1",
            created_at=T0,
            modified_at=T0,
            kind=ActivityKind.PHONE_CALL,
            subject="Call Ana",
            regarding=full.ref,
            due_at=T0 + timedelta(days=1),
        )
        self.put(store, account, contact, full, opportunity, activity)
        with store.unit_of_work() as uow:
            assert uow.get(Account, "acc-1") == account
            assert uow.get(Contact, "con-1") == contact
            assert uow.get(Lead, full.id) == full
            assert uow.get(Opportunity, "opp-1") == opportunity
            assert uow.get(Activity, "act-1") == activity

    def test_unknown_id_is_not_found(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            assert uow.find(Lead, "nope") is None
            with pytest.raises(NotFound, match="nope"):
                uow.get(Lead, "nope")

    def test_adding_an_existing_id_is_refused(self, store: Store) -> None:
        self.put(store, lead(1))
        with store.unit_of_work() as uow, pytest.raises(AlreadyExists):
            uow.add(lead(1, topic="again"))
        with store.unit_of_work() as uow:
            assert uow.get(Lead, "lead-0001").topic == "Topic 1"

    def test_update_bumps_the_version(self, store: Store) -> None:
        self.put(store, lead(1))
        with store.unit_of_work() as uow:
            stored = uow.get(Lead, "lead-0001")
            saved = uow.update(attrs.evolve(stored, topic="Changed"))
            uow.commit()
        assert saved.version == 2
        with store.unit_of_work() as uow:
            again = uow.get(Lead, "lead-0001")
        assert (again.version, again.topic) == (2, "Changed")

    def test_stale_update_conflicts_and_changes_nothing(self, store: Store) -> None:
        self.put(store, lead(1))
        with store.unit_of_work() as uow:
            first = uow.get(Lead, "lead-0001")
        with store.unit_of_work() as uow:
            uow.update(attrs.evolve(first, topic="Winner"))
            uow.commit()
        with store.unit_of_work() as uow, pytest.raises(VersionConflict) as caught:
            uow.update(attrs.evolve(first, topic="Loser"))
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        with store.unit_of_work() as uow:
            assert uow.get(Lead, "lead-0001").topic == "Winner"

    def test_update_of_a_missing_record_is_not_found(self, store: Store) -> None:
        with store.unit_of_work() as uow, pytest.raises(NotFound):
            uow.update(lead(9))

    def test_uncommitted_work_is_rolled_back(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.add(lead(1))
            assert uow.get(Lead, "lead-0001").topic == "Topic 1"  # reads its own write
        with store.unit_of_work() as uow:
            assert uow.find(Lead, "lead-0001") is None

    def test_an_exception_rolls_back_every_write(self, store: Store) -> None:
        self.put(store, lead(1))

        class BoomError(Exception):
            pass

        def half_done() -> None:
            with store.unit_of_work() as uow:
                uow.add(lead(2))
                uow.update(attrs.evolve(uow.get(Lead, "lead-0001"), topic="Half"))
                raise BoomError

        with pytest.raises(BoomError):
            half_done()
        with store.unit_of_work() as uow:
            assert uow.find(Lead, "lead-0002") is None
            assert uow.get(Lead, "lead-0001").topic == "Topic 1"

    def test_a_nested_unit_in_one_thread_is_refused(self, store: Store) -> None:
        with store.unit_of_work():
            inner = store.unit_of_work()
            with pytest.raises(StoreError, match="already open"):
                inner.__enter__()
        with store.unit_of_work() as uow:  # the outer unit ended cleanly
            assert uow.find(Lead, "lead-0001") is None

    def test_returned_records_are_copies(self, store: Store) -> None:
        self.put(store, lead(1, custom={"a": 1}))
        with store.unit_of_work() as uow:
            got = uow.get(Lead, "lead-0001")
            got.topic = "Mutated"
            got.custom["a"] = 2
        with store.unit_of_work() as uow:
            again = uow.get(Lead, "lead-0001")
        assert (again.topic, again.custom) == ("Topic 1", {"a": 1})

    def test_data_survives_reopening(self) -> None:
        store = self.make_store()
        self.put(store, lead(1, email="a@b.example"), lead(2))
        with store.unit_of_work() as uow:
            uow.update(attrs.evolve(uow.get(Lead, "lead-0002"), topic="Edited"))
            uow.commit()
        store = self.reopen(store)
        try:
            with store.unit_of_work() as uow:
                assert uow.get(Lead, "lead-0001").email == "a@b.example"
                edited = uow.get(Lead, "lead-0002")
                assert (edited.topic, edited.version) == ("Edited", 2)
                assert [r.id for r in uow.find_by(Lead, "email_key", "a@b.example")] == [
                    "lead-0001"
                ]
        finally:
            store.close()
