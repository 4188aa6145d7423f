"""Queries every store answers alike (part of `StoreContract`): filters, sorting
(option sets in declaration order, empty values first ascending), paging, search,
group counts, and random queries checked against a reference evaluation."""

from __future__ import annotations

import abc
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow.conditions import Condition, all_of, any_of, evaluate, field, not_
from salesflow.errors import ValidationError
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
from salesflow.stores.base import Query, SortKey, Store, record_value, search_keys
from salesflow.testing.contract_records import T0, lead
from salesflow.values import Money, Record, RecordKind

__all__ = ["QueryContract"]


def _values(record: Record) -> Any:
    return lambda name: record_value(record, name)


RATING_ORDER = {None: -1, "hot": 0, "warm": 1, "cold": 2}
"""The rule for sorting ratings, stated by hand: empty first, then the option set's
declaration order (hot, warm, cold), not alphabetical order (cold, hot, warm)."""


class QueryContract(abc.ABC):
    """Queries (part of `StoreContract`, which supplies the ``store`` fixture and
    `put`)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    @abc.abstractmethod
    def put(self, store: Store, *records: Record) -> None:
        """Add ``records`` in one committed unit of work (see `StoreContract.put`)."""

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
