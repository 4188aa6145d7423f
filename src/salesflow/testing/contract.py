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
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow.activity import Activity, ActivityKind, ActivityState
from salesflow.conditions import Condition, all_of, any_of, evaluate, field, not_
from salesflow.due import DueItem
from salesflow.errors import AlreadyExists, NotFound, StoreError, ValidationError, VersionConflict
from salesflow.lead import (
    Budget,
    Lead,
    LeadSource,
    Need,
    PurchaseProcess,
    PurchaseTimeframe,
    Rating,
)
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.party import Account, Competitor, Contact, Stakeholder
from salesflow.stores.base import Query, SortKey, Store, record_value, search_keys
from salesflow.stores.codec import Codec
from salesflow.testing.contract_interactions import InteractionContract
from salesflow.testing.contract_outbox import OutboxContract
from salesflow.testing.contract_phones import PhoneLookupContract
from salesflow.testing.contract_readonly import ReadOnlyContract
from salesflow.testing.contract_reports import ReportContract
from salesflow.testing.contract_savepoints import SavepointContract
from salesflow.testing.contract_scores import ScoreContract
from salesflow.testing.contract_sequences import SequenceContract
from salesflow.testing.contract_states import StateContract
from salesflow.testing.contract_worklist import WorkListContract
from salesflow.values import Money, Record, RecordKind, RecordRef

__all__ = ["StoreContract"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def lead(n: int, **fields: Any) -> Lead:
    """A valid lead numbered ``n``; ``fields`` override the defaults."""
    base: dict[str, Any] = {
        "id": f"lead-{n:04d}",
        "created_at": T0 + timedelta(hours=n),
        "modified_at": T0 + timedelta(hours=n),
        "topic": f"Topic {n}",
        "last_name": f"Name{n}",
    }
    base.update(fields)
    return Lead(**base)


def _values(record: Record) -> Any:
    return lambda name: record_value(record, name)


RATING_ORDER = {None: -1, "hot": 0, "warm": 1, "cold": 2}
"""The rule for sorting ratings, stated by hand: empty first, then the option set's
declaration order (hot, warm, cold), not alphabetical order (cold, hot, warm)."""


def tier_to_segment(doc: dict[str, Any]) -> dict[str, Any]:
    """Lead documents 1 → 2: custom "tier" is now "segment", and an unrated gold
    lead is rated hot (so both a custom field and a typed column change)."""
    custom = dict(doc["custom"])
    if "tier" in custom:
        custom["segment"] = custom.pop("tier")
    rating = doc["rating"]
    if rating is None and custom.get("segment") == "gold":
        rating = Rating.HOT.value
    return {**doc, "custom": custom, "rating": rating}


def upgraded_codec() -> Codec:
    """A codec at lead schema 2 that migrates schema-1 leads with `tier_to_segment`."""
    return Codec(migrations={(RecordKind.LEAD, 1): tier_to_segment}, current={RecordKind.LEAD: 2})


class StoreContract(
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

    The definition and enrollment tests come from `SequenceContract`."""

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

    # --- lookups ----------------------------------------------------------------------

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

    # --- queries ----------------------------------------------------------------------

    def sample(self) -> list[Lead]:
        """Twelve leads with a spread of values, used by the query tests."""
        ratings = [Rating.HOT, Rating.WARM, Rating.COLD, None]
        return [
            lead(
                n,
                first_name=["Ana", "Bo", "Chen", None][n % 4],
                last_name=["Smith", "Smithers", "Jones", "Żak"][n % 4],
                company_name=[None, "Contoso", "contoso east", "Fabrikam"][n % 4],
                email=f"user{n}@{['contoso', 'fabrikam'][n % 2]}.example",
                rating=ratings[n % 4],
                employees=None if n % 5 == 0 else n * 10,
                estimated_value=None
                if n % 3 == 0
                else Money(amount=Decimal(n) * Decimal("100.5"), currency="EUR"),
                estimated_close_date=date(2026, 4, 1) + timedelta(days=n),
                do_not_email=n % 2 == 0,
                owner_id=["u1", "u2", None][n % 3],
                custom={
                    "region": ["EMEA", "APAC", None][n % 3],
                    "seats": n,
                    "budget": Decimal(n) / 4,
                    "seen": T0 + timedelta(days=n),
                },
            )
            for n in range(1, 13)
        ]

    def ids(self, store: Store, query: Query) -> list[str]:
        """The ids a lead query returns, in order."""
        with store.unit_of_work() as uow:
            return [r.id for r in uow.query(Lead, query).items]

    def expected(self, records: list[Lead], condition: Condition) -> list[str]:
        """Reference answer: the ids of ``records`` that satisfy ``condition``."""
        return sorted(r.id for r in records if evaluate(condition, _values(r)))

    @pytest.mark.parametrize(
        "condition",
        [
            field("rating").eq("hot"),
            field("rating").eq(Rating.WARM),
            field("rating").ne("hot"),
            field("rating").is_null(),
            field("rating").not_null(),
            field("employees").gt(50),
            field("employees").le(30),
            field("employees").in_([10, 20, 999]),
            field("employees").not_in([10, 20]),
            field("estimated_value").ge(Decimal("402")),
            field("estimated_value_currency").eq("EUR"),
            field("estimated_close_date").lt(date(2026, 4, 6)),
            field("created_at").ge(T0 + timedelta(hours=6)),
            field("do_not_email").eq(True),
            field("company_name").starts_with("CONTOSO"),
            field("company_name").contains("east"),
            field("last_name").eq("Żak"),
            field("custom.region").eq("EMEA"),
            field("custom.region").is_null(),
            field("custom.seats").ge(7),
            field("custom.budget").lt(Decimal("1.5")),
            field("custom.seen").gt(T0 + timedelta(days=9)),
            not_(field("rating").eq("hot")),
            not_(field("custom.region").eq("EMEA")),
            all_of(field("owner_id").eq("u1"), field("rating").not_null()),
            any_of(field("owner_id").eq("u2"), field("employees").is_null()),
            all_of(),
            any_of(),
        ],
        ids=lambda c: c.describe(),
    )
    def test_filters_mean_the_same_in_every_store(self, store: Store, condition: Condition) -> None:
        records = self.sample()
        self.put(store, *records)
        got = self.ids(store, Query(where=condition, limit=100))
        assert got == self.expected(records, condition)

    def test_sorting_puts_empty_values_first_ascending_and_last_descending(
        self, store: Store
    ) -> None:
        records = self.sample()
        self.put(store, *records)
        up = self.ids(store, Query(order_by=SortKey(field="employees"), limit=100))
        down = self.ids(store, Query(order_by=SortKey(field="employees", descending=True)))
        empties = sorted(r.id for r in records if r.employees is None)
        assert up[: len(empties)] == empties
        assert down[-len(empties) :] == empties
        by_value = sorted(
            (r for r in records if r.employees is not None), key=lambda r: r.employees or 0
        )
        assert up[len(empties) :] == [r.id for r in by_value]

    def test_sorting_by_several_keys_breaks_ties_by_id(self, store: Store) -> None:
        records = self.sample()
        self.put(store, *records)
        got = self.ids(
            store,
            Query(order_by=(SortKey(field="rating"), SortKey(field="last_name", descending=True))),
        )
        want = sorted(records, key=lambda r: r.id)
        want.sort(key=lambda r: r.last_name, reverse=True)
        want.sort(key=lambda r: RATING_ORDER[r.rating])  # option order, empty first
        assert got == [r.id for r in want]
        # In sample(), n % 4 picks both the rating and the last name, so each rating
        # has one last name and its leads come in id order.
        assert got == [
            "lead-0003",  # no rating (Żak)
            "lead-0007",
            "lead-0011",
            "lead-0004",  # hot (Smith)
            "lead-0008",
            "lead-0012",
            "lead-0001",  # warm (Smithers)
            "lead-0005",
            "lead-0009",
            "lead-0002",  # cold (Jones)
            "lead-0006",
            "lead-0010",
        ]

    def test_option_sets_sort_in_option_order(self, store: Store) -> None:
        ratings = [Rating.COLD, None, Rating.HOT, Rating.WARM, Rating.COLD, Rating.HOT]
        self.put(store, *[lead(n, rating=r) for n, r in enumerate(ratings, start=1)])
        with store.unit_of_work() as uow:
            up = uow.query(Lead, Query(order_by=SortKey(field="rating")))
            down = uow.query(Lead, Query(order_by=SortKey(field="rating", descending=True)))
        assert [(r.rating, r.id) for r in up.items] == [
            (None, "lead-0002"),
            ("hot", "lead-0003"),
            ("hot", "lead-0006"),
            ("warm", "lead-0004"),
            ("cold", "lead-0001"),
            ("cold", "lead-0005"),
        ]
        assert [(r.rating, r.id) for r in down.items] == [
            ("cold", "lead-0001"),  # ties still by id ascending
            ("cold", "lead-0005"),
            ("warm", "lead-0004"),
            ("hot", "lead-0003"),
            ("hot", "lead-0006"),
            (None, "lead-0002"),
        ]

    @pytest.mark.parametrize(
        ("name", "options"),
        [
            ("source", tuple(LeadSource)),
            ("budget", tuple(Budget)),
            ("purchase_timeframe", tuple(PurchaseTimeframe)),
            ("purchase_process", tuple(PurchaseProcess)),
            ("need", tuple(Need)),
        ],
    )
    def test_every_option_set_sorts_and_groups_in_declaration_order(
        self, store: Store, name: str, options: tuple[Any, ...]
    ) -> None:
        # Stored in reverse declaration order, so neither id nor insertion order helps.
        values = [*reversed(options), None]
        self.put(store, *[lead(n, **{name: v}) for n, v in enumerate(values, start=1)])
        want = [None, *(o.value for o in options)]
        with store.unit_of_work() as uow:
            up = uow.query(Lead, Query(order_by=SortKey(field=name)))
            down = uow.query(Lead, Query(order_by=SortKey(field=name, descending=True)))
            groups = uow.group_counts(Lead, Query(), name)
        assert [record_value(r, name) for r in up.items] == want
        assert [record_value(r, name) for r in down.items] == want[::-1]
        assert [(g.value, g.count) for g in groups] == [(v, 1) for v in want]

    def test_option_set_filters_still_compare_text(self, store: Store) -> None:
        records = self.sample()
        self.put(store, *records)
        # Ordering follows the option set, but lt/ge compare the stored text:
        # "cold" < "hot" < "warm", as for any text field.
        below_hot = self.ids(store, Query(where=field("rating").lt("hot"), limit=100))
        assert below_hot == sorted(r.id for r in records if r.rating == "cold")
        from_hot = self.ids(store, Query(where=field("rating").ge("hot"), limit=100))
        assert from_hot == sorted(r.id for r in records if r.rating in ("hot", "warm"))

    def test_text_sorts_by_code_point(self, store: Store) -> None:
        names = ["b", "B", "a", "Á", "ä", "Z", "z"]
        self.put(store, *[lead(i, last_name=name) for i, name in enumerate(names)])
        with store.unit_of_work() as uow:
            got = [
                r.last_name
                for r in uow.query(Lead, Query(order_by=SortKey(field="last_name"))).items
            ]
        assert got == sorted(names)

    def test_paging_returns_windows_and_the_total(self, store: Store) -> None:
        self.put(store, *self.sample())
        order = SortKey(field="created_at", descending=True)
        with store.unit_of_work() as uow:
            first = uow.query(Lead, Query(order_by=order, limit=5))
            last = uow.query(Lead, Query(order_by=order, limit=5, offset=10))
        assert first.total == last.total == 12
        assert [r.id for r in first.items] == [f"lead-{n:04d}" for n in range(12, 7, -1)]
        assert [r.id for r in last.items] == ["lead-0002", "lead-0001"]
        assert first.has_more
        assert not last.has_more

    @pytest.mark.parametrize(
        ("term", "expected_count"),
        [("smith", 6), ("SMITHERS", 3), ("contoso", 6), ("*oso", 9), ("*ithe", 3), ("zzz", 0)],
    )
    def test_search_matches_name_company_email_ignoring_case(
        self, store: Store, term: str, expected_count: int
    ) -> None:
        records = self.sample()
        self.put(store, *records)
        with store.unit_of_work() as uow:
            page = uow.query(Lead, Query(search=term, limit=100))
        folded = term.lstrip("*").casefold()

        def hit(r: Lead) -> bool:
            values = [k.read(r) for k in search_keys(RecordKind.LEAD)]
            if term.startswith("*"):
                return any(v is not None and folded in v for v in values)
            return any(v is not None and v.startswith(folded) for v in values)

        assert sorted(r.id for r in page.items) == sorted(r.id for r in records if hit(r))
        assert page.total == expected_count

    def test_search_and_filter_combine(self, store: Store) -> None:
        self.put(store, *self.sample())
        got = self.ids(store, Query(search="smith", where=field("owner_id").eq("u1")))
        assert got
        assert got == sorted(
            r.id
            for r in self.sample()
            if r.owner_id == "u1" and r.last_name.casefold().startswith("smith")
        )

    def test_group_counts_per_value_with_empty_first(self, store: Store) -> None:
        records = self.sample()
        self.put(store, *records)
        with store.unit_of_work() as uow:
            groups = uow.group_counts(Lead, Query(), "rating")
        assert [(g.value, g.count) for g in groups] == [
            (None, 3),
            ("hot", 3),  # option order, not alphabetical
            ("warm", 3),
            ("cold", 3),
        ]

    def test_group_counts_of_other_kinds_follow_option_order(self, store: Store) -> None:
        def opportunity(n: int, status: OpportunityStatus) -> Opportunity:
            return Opportunity(
                id=f"opp-{n}",
                created_at=T0,
                modified_at=T0,
                name=f"Deal {n}",
                status=status,
            )

        statuses = [OpportunityStatus.LOST, OpportunityStatus.WON, OpportunityStatus.LOST]
        self.put(store, *[opportunity(n, s) for n, s in enumerate(statuses, start=1)])
        self.put(store, opportunity(4, OpportunityStatus.OPEN))
        with store.unit_of_work() as uow:
            groups = uow.group_counts(Opportunity, Query(), "status")
            page = uow.query(Opportunity, Query(order_by=SortKey(field="status")))
        assert [(g.value, g.count) for g in groups] == [("open", 1), ("won", 1), ("lost", 2)]
        assert [r.id for r in page.items] == ["opp-4", "opp-2", "opp-1", "opp-3"]

    def test_unknown_query_fields_are_refused(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(ValidationError, match="no queryable field 'colour'"):
                uow.query(Lead, Query(where=field("colour").eq("red")))
            with pytest.raises(ValidationError, match="shoe_size"):
                uow.query(Lead, Query(order_by=SortKey(field="shoe_size")))
            with pytest.raises(ValidationError):
                uow.group_counts(Lead, Query(), "colour")

    def test_queries_see_the_units_own_writes(self, store: Store) -> None:
        self.put(store, lead(1, rating="hot"))
        with store.unit_of_work() as uow:
            uow.add(lead(2, rating="hot"))
            uow.update(attrs.evolve(uow.get(Lead, "lead-0001"), rating=Rating.COLD))
            page = uow.query(Lead, Query(where=field("rating").eq("hot")))
        assert [r.id for r in page.items] == ["lead-0002"]

    # --- migration --------------------------------------------------------------------

    def test_migrate_rewrites_old_documents_so_queries_see_them(self) -> None:
        store = self.make_store()
        leads = [lead(n, custom={"tier": ["gold", "silver"][n % 2]}) for n in range(1, 6)]
        contact = Contact(id="con-1", created_at=T0, modified_at=T0, last_name="Ruiz")
        self.put(store, *leads, contact)
        with store.unit_of_work() as uow:
            edited = uow.update(attrs.evolve(uow.get(Lead, "lead-0001"), topic="Edited"))
            uow.commit()
        assert isinstance(edited, Lead)
        leads[0] = edited
        want = [
            attrs.evolve(
                r,
                custom={"segment": r.custom["tier"]},
                rating=Rating.HOT if r.custom["tier"] == "gold" else None,
            )
            for r in leads
        ]
        gold = sorted(r.id for r in want if r.custom["segment"] == "gold")
        store = self.reopen(store, upgraded_codec())
        try:
            with store.unit_of_work() as uow:  # reads migrate before migrate() does
                assert [uow.get(Lead, r.id) for r in want] == want
            assert store.migrate() == (0 if self.migrates_when_opened else len(leads))
            assert store.migrate() == 0
            for _ in range(2):  # and the rewritten documents are stored
                with store.unit_of_work() as uow:
                    # Versions and modification times are kept: a migration is no edit.
                    assert [uow.get(Lead, r.id) for r in want] == want
                    assert uow.get(Contact, "con-1") == contact
                    segment = Query(where=field("custom.segment").eq("gold"))
                    assert [r.id for r in uow.query(Lead, segment).items] == gold
                    hot = Query(where=field("rating").eq("hot"))
                    assert [r.id for r in uow.query(Lead, hot).items] == gold
                    tier = Query(where=field("custom.tier").not_null())
                    assert uow.query(Lead, tier).total == 0
                store = self.reopen(store, upgraded_codec())
                assert store.migrate() == 0
        finally:
            store.close()

    def test_migrate_refuses_documents_newer_than_the_codec(self) -> None:
        store = self.make_store()
        self.put(store, lead(1, custom={"tier": "gold"}))
        store = self.reopen(store, upgraded_codec())
        try:
            self.put(store, lead(2, custom={"segment": "silver"}))  # written at schema 2
            store.migrate()
        except BaseException:
            store.close()
            raise

        def migrate_as_older_salesflow() -> None:
            older = self.reopen(store, Codec())  # a store may refuse already here
            try:
                older.migrate()
            finally:
                older.close()

        # The default codec (an older salesflow) must not rewrite what it cannot read.
        with pytest.raises(StoreError, match="newer than this salesflow"):
            migrate_as_older_salesflow()

    # --- timeline ---------------------------------------------------------------------

    def test_timeline_lists_a_records_activities_in_time_order(self, store: Store) -> None:
        ref = RecordRef(kind=RecordKind.LEAD, id="lead-0001")
        other = RecordRef(kind=RecordKind.CONTACT, id="lead-0001")

        def act(n: int, regarding: RecordRef, **fields: Any) -> Activity:
            return Activity(
                id=f"act-{n}",
                created_at=T0 + timedelta(minutes=n),
                modified_at=T0 + timedelta(minutes=n),
                kind=ActivityKind.TASK,
                subject=f"Task {n}",
                regarding=regarding,
                **fields,
            )

        self.put(
            store,
            act(1, ref, due_at=T0 + timedelta(days=3)),
            act(2, ref),
            act(3, ref, state=ActivityState.COMPLETED, closed_at=T0 + timedelta(days=1)),
            act(4, other),
            act(5, ref, due_at=T0 + timedelta(days=3)),
        )
        with store.unit_of_work() as uow:
            assert [a.id for a in uow.timeline(ref)] == ["act-2", "act-3", "act-1", "act-5"]
            assert [a.id for a in uow.timeline(other)] == ["act-4"]

    # --- the same answers as a reference evaluation, for random data ------------------

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        data=st.lists(
            st.tuples(
                st.sampled_from(["hot", "warm", "cold", None]),
                st.one_of(st.none(), st.integers(0, 50)),
                st.sampled_from(["Ana", "ana", "Bo", "Ábel", None]),
            ),
            max_size=15,
        ),
        threshold=st.integers(0, 50),
        descending=st.booleans(),
    )
    def test_random_queries_agree_with_the_reference(
        self,
        data: list[tuple[str | None, int | None, str | None]],
        threshold: int,
        descending: bool,
    ) -> None:
        store = self.make_store()
        try:
            records = [
                lead(i, rating=r, employees=e, first_name=f) for i, (r, e, f) in enumerate(data)
            ]
            self.put(store, *records)
            condition = any_of(
                not_(field("employees").lt(threshold)), field("first_name").starts_with("a")
            )
            got = self.ids(
                store,
                Query(
                    where=condition,
                    order_by=(SortKey(field="rating", descending=descending),),
                    limit=100,
                ),
            )
            matching = [r for r in records if evaluate(condition, _values(r))]
            matching.sort(key=lambda r: r.id)
            # Ratings in option order (hot, warm, cold), empty first ascending and
            # last descending; equal ratings stay in id order either way.
            present = [r for r in matching if r.rating is not None]
            empty = [r for r in matching if r.rating is None]
            present.sort(key=lambda r: RATING_ORDER[r.rating], reverse=descending)
            ordered = present + empty if descending else empty + present
            assert got == [r.id for r in ordered]
        finally:
            store.close()

    # --- due items ---------------------------------------------------------------------

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


def due(n: int, *, minutes: int = 0, **fields: Any) -> DueItem:
    """A due item numbered ``n``, due ``minutes`` after ``T0``; ``fields`` override."""
    base: dict[str, Any] = {
        "id": f"due-{n:04d}",
        "kind": "test.kind",
        "due_at": T0 + timedelta(minutes=minutes),
    }
    base.update(fields)
    return DueItem(**base)
