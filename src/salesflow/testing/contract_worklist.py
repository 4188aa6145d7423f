"""`WorkListContract`: the store contract for what the work list and the views read
at scale: bounded counts (`Query.count_limit`) and the best-score index
(`UnitOfWork.best_scores`, `UnitOfWork.top_scored_leads`) and the join of a scope's
lead activities to it (`UnitOfWork.scored_lead_activities`).

`salesflow.testing.contract.StoreContract` inherits these tests.
"""

from __future__ import annotations

import abc
from datetime import timedelta
from typing import Any

import pytest
from attrs import evolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow.activity import Activity, ActivityKind, ActivityState
from salesflow.conditions import all_of, field
from salesflow.errors import ValidationError
from salesflow.lead import Lead
from salesflow.stores.base import Query, SortKey, Store
from salesflow.stores.codec import Codec
from salesflow.testing.contract_records import T0
from salesflow.testing.contract_scores import score
from salesflow.values import RecordKind, RecordRef

__all__ = ["WorkListContract"]


def _leads(store: Store, count: int) -> None:
    with store.unit_of_work() as uow:
        for n in range(count):
            at = T0 + timedelta(minutes=n)
            uow.add(
                Lead(
                    id=f"l{n:02d}",
                    created_at=at,
                    modified_at=at,
                    topic="t",
                    last_name=f"L{n}",
                    owner_id="u1" if n % 2 else "u2",
                )
            )
        uow.commit()


class WorkListContract(abc.ABC):
    """Bounded counts and best scores, the same in every store."""

    def test_a_count_limit_bounds_the_total_and_says_so(self, store: Store) -> None:
        _leads(store, 12)
        order = (SortKey(field="created_at"),)

        def page(**options: int | None) -> tuple[int, bool, int]:
            with store.unit_of_work() as uow:
                found = uow.query(Lead, Query(order_by=order, limit=4, **options))  # type: ignore[arg-type]
            return found.total, found.total_exact, len(found.items)

        assert page() == (12, True, 4)
        assert page(count_limit=20) == (12, True, 4)  # under the bound: exact
        assert page(count_limit=12) == (12, True, 4)
        assert page(count_limit=11) == (11, False, 4)  # "11+"
        assert page(count_limit=5, offset=8) == (12, True, 4)  # a short last page
        assert page(count_limit=5, offset=4) == (8, False, 4)  # at least what was paged
        assert page(count_limit=0) == (4, False, 4)  # no count at all
        assert page(count_limit=0, offset=12) == (12, True, 0)
        with store.unit_of_work() as uow:
            few = uow.query(Lead, Query(where=field("owner_id").eq("u1"), count_limit=0))
        assert (few.total, few.total_exact, len(few.items)) == (6, True, 6)

    def test_a_bad_count_limit_is_refused(self) -> None:
        for bad in (-1, True, 1.5, "5"):
            with pytest.raises(ValidationError, match="count_limit"):
                Query(count_limit=bad)  # type: ignore[arg-type]

    def test_best_scores_are_the_highest_current_score_of_each_lead(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.add_score(score(30, lead_id="a"))
            uow.add_score(score(70, 1, lead_id="a", model_id="m2"))
            uow.add_score(score(90, 2, lead_id="b"))
            uow.add_score(score(10, 3, lead_id="b"))  # b's current m1 score falls to 10
            uow.add_score(score(70, 4, lead_id="c"))
            # A unit sees its own scores before it commits.
            assert uow.best_scores(["a", "b"]) == {"a": 70, "b": 10}
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.best_scores(["a", "b", "c", "nobody"]) == {"a": 70, "b": 10, "c": 70}
            assert uow.best_scores([]) == {}
            assert uow.top_scored_leads(10) == [("a", 70), ("c", 70), ("b", 10)]
            assert uow.top_scored_leads(2) == [("a", 70), ("c", 70)]
            assert uow.top_scored_leads(5, ("a", 70)) == [("c", 70), ("b", 10)]
            assert uow.top_scored_leads(5, ("b", 10)) == []

    def test_best_scores_survive_reopening(self) -> None:
        store = self.make_store()
        with store.unit_of_work() as uow:
            uow.add_score(score(55, lead_id="a"))
            uow.commit()
        store = self.reopen(store)
        try:
            with store.unit_of_work() as uow:
                assert uow.top_scored_leads(3) == [("a", 55)]
        finally:
            store.close()

    def test_top_scored_leads_refuses_a_bad_limit(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            for bad in (0, 10_001, True):
                with pytest.raises(ValidationError, match="limit"):
                    uow.top_scored_leads(bad)

    def test_scored_lead_activities_join_scope_and_scores_in_work_list_order(
        self, store: Store
    ) -> None:
        def act(n: int, lead_id: str, hours: int | None, **fields: Any) -> Activity:
            return Activity(
                id=f"a{n}",
                created_at=T0 + timedelta(minutes=n % 3),
                modified_at=T0,
                kind=ActivityKind.TASK,
                subject=f"Task {n}",
                regarding=RecordRef(kind=RecordKind.LEAD, id=lead_id),
                due_at=None if hours is None else T0 + timedelta(hours=hours),
                **fields,
            )

        with store.unit_of_work() as uow:
            for activity in (
                act(1, "b", 5),
                act(2, "a", None),
                act(3, "a", 7),
                act(4, "c", 1),  # c scores less than a and b, though due first
                act(5, "b", 5, owner_id="u2"),  # same due time as a1: by created_at
                act(6, "x", 0),  # x has no score
                act(7, "b", None, state=ActivityState.COMPLETED, closed_at=T0),
                act(8, "a", 5),  # due with b's: lead a first
            ):
                uow.add(activity)
            uow.add(
                Activity(
                    id="a9",
                    created_at=T0,
                    modified_at=T0,
                    kind=ActivityKind.TASK,
                    subject="Not a lead",
                    regarding=RecordRef(kind=RecordKind.CONTACT, id="a"),
                    due_at=T0,
                )
            )
            uow.add_score(score(60, lead_id="a"))
            uow.add_score(score(60, lead_id="b"))
            uow.add_score(score(20, lead_id="c"))
            uow.commit()
        open_ = field("state").eq("open")
        with store.unit_of_work() as uow:
            found = uow.scored_lead_activities(open_, 50)
            assert [(a.id, points) for a, points in found] == [
                ("a8", 60),  # score 60, due in 5 h: lead a, then b's by created_at …
                ("a1", 60),
                ("a5", 60),
                ("a3", 60),  # … then due in 7 h …
                ("a2", 60),  # … then undated
                ("a4", 20),
            ]
            assert found[0][0] == uow.get(Activity, "a8")
            assert [a.id for a, _ in uow.scored_lead_activities(open_, 2, 3)] == ["a3", "a2"]
            assert uow.scored_lead_activities(open_, 5, 6) == []
            tasks = uow.scored_lead_activities(field("subject").starts_with("Task"), 50)
            # The done one is in this scope: undated, lead b after lead a.
            assert [a.id for a, _ in tasks][3:6] == ["a3", "a2", "a7"]
            mine = all_of(open_, field("owner_id").eq("u2"))
            assert [a.id for a, _ in uow.scored_lead_activities(mine, 50)] == ["a5"]
            # A unit sees its own new scores.
            uow.add_score(score(99, 1, lead_id="c"))
            assert [a.id for a, _ in uow.scored_lead_activities(open_, 1)] == ["a4"]

    def test_scored_lead_activities_refuse_bad_arguments(self, store: Store) -> None:
        open_ = field("state").eq("open")
        with store.unit_of_work() as uow:
            for limit in (0, 10_001, True):
                with pytest.raises(ValidationError, match="limit"):
                    uow.scored_lead_activities(open_, limit)
            for offset in (-1, 1.5, False):
                with pytest.raises(ValidationError, match="offset"):
                    uow.scored_lead_activities(open_, 5, offset)  # type: ignore[arg-type]
            with pytest.raises(ValidationError, match="no_such_field"):
                uow.scored_lead_activities(field("no_such_field").eq(1), 5)

    def test_group_counts_of_an_option_set_stop_at_the_count_limit(self, store: Store) -> None:
        _leads(store, 12)  # l00-l11, owners u2/u1 alternately
        with store.unit_of_work() as uow:
            for n in range(12):
                lead = uow.get(Lead, f"l{n:02d}")
                rating = ["hot", "hot", "hot", "warm", None, "cold"][n % 6]
                status = "open" if n < 9 else "qualified"
                uow.update(evolve(lead, rating=rating, status=status))
            uow.commit()

        def counts(name: str, **options: int | None) -> list[tuple[object, int, bool]]:
            with store.unit_of_work() as uow:
                found = uow.group_counts(Lead, Query(**options), name)  # type: ignore[arg-type]
            return [(g.value, g.count, g.exact) for g in found]

        # status leads an index in the SQL stores, rating does not: the same answer.
        assert counts("status", count_limit=5) == [("open", 5, False), ("qualified", 3, True)]
        assert counts("status", count_limit=9) == [("open", 9, True), ("qualified", 3, True)]
        assert counts("rating", count_limit=3) == [
            (None, 2, True),
            ("hot", 3, False),
            ("warm", 2, True),
            ("cold", 2, True),
        ]
        assert counts("rating") == [
            (None, 2, True),
            ("hot", 6, True),
            ("warm", 2, True),
            ("cold", 2, True),
        ]
        # No bound, a bound of 0, or a field that is no option set: exact counts.
        assert counts("status", count_limit=0) == [("open", 9, True), ("qualified", 3, True)]
        assert counts("owner_id", count_limit=2) == [("u1", 6, True), ("u2", 6, True)]

    @settings(
        max_examples=30,
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
                st.sampled_from(["open", "qualified", "disqualified"]),
                st.integers(0, 5),
            ),
            max_size=14,
        ),
        descending=st.booleans(),
        newest_first=st.booleans(),
        offset=st.integers(0, 16),
        limit=st.integers(1, 6),
        only_open=st.booleans(),
    )
    def test_pages_sorted_by_an_option_set_equal_one_sort_of_everything(
        self,
        data: list[tuple[str | None, str, int]],
        descending: bool,
        newest_first: bool,
        offset: int,
        limit: int,
        only_open: bool,
    ) -> None:
        # The SQL stores page such a sort one option at a time (`option_groups`).
        store = self.make_store()
        try:
            with store.unit_of_work() as uow:
                for n, (rating, status, minutes) in enumerate(data):
                    at = T0 + timedelta(minutes=minutes)
                    uow.add(
                        Lead(
                            id=f"l{n:02d}",
                            created_at=at,
                            modified_at=at,
                            topic="t",
                            last_name="L",
                            rating=rating,
                            status=status,
                        )
                    )
                uow.commit()
            where = field("status").eq("open") if only_open else None
            order = (
                SortKey(field="rating", descending=descending),
                SortKey(field="created_at", descending=newest_first),
            )
            with store.unit_of_work() as uow:
                everything = uow.query(Lead, Query(where=where, order_by=order, limit=100))
                page = uow.query(
                    Lead, Query(where=where, order_by=order, limit=limit, offset=offset)
                )
            rank = {None: -1, "hot": 0, "warm": 1, "cold": 2}
            rows = [
                (rating, status, minutes, f"l{n:02d}")
                for n, (rating, status, minutes) in enumerate(data)
                if not only_open or status == "open"
            ]
            rows.sort(key=lambda row: row[3])
            rows.sort(key=lambda row: row[2], reverse=newest_first)
            present = sorted(
                (row for row in rows if row[0] is not None),
                key=lambda row: rank[row[0]],
                reverse=descending,
            )
            empty = [row for row in rows if row[0] is None]
            want = [row[3] for row in (present + empty if descending else empty + present)]
            assert [lead.id for lead in everything.items] == want
            assert [lead.id for lead in page.items] == want[offset : offset + limit]
            assert page.total == len(want)
        finally:
            store.close()

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    @abc.abstractmethod
    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        """Close ``store`` and return a store over the same data (see
        `StoreContract.reopen`)."""
