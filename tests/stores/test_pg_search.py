"""Quick find's bounded count on the SQL stores: a prefix search over every lead asks
each search key's index first, and must count exactly what the memory store counts.

The key-by-key count (`SQLUnit._count_upto`) stops as soon as one key alone has the
bound's worth of matches; otherwise it counts every key's matches together, each
lead once. The pages and totals here are compared with the memory store's on
SQLite and, with ``SALESFLOW_PG_DSN`` set, on PostgreSQL, for bounds that one key
reaches, that only the keys together reach, that the keys would pass only if a lead
matching on two keys were counted twice, and that nothing reaches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from salesflow.conditions import field
from salesflow.lead import Lead, LeadStatus
from salesflow.stores.base import Query, SortKey, Store
from salesflow.stores.memory import MemoryStore
from salesflow.stores.sql import SQLUnit

DSN = os.environ.get("SALESFLOW_PG_DSN", "")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# Last names, companies and e-mail names, in turn: "smi" matches a third of the leads by
# last name, more by company and e-mail; "ko" matches three by last name and three
# by company, one lead on both (five leads); "zz" matches none.
LAST = ["Smith", "Olsen", "Ruiz"]
COMPANIES = ["Smithfield", "Acme", "Globex", "Initech"]


def lead(n: int) -> Lead:
    last = "Kowalski" if n in (5, 10, 15) else LAST[n % 3]
    company = "Kodak" if n in (15, 20, 25) else COMPANIES[n % 4]
    return Lead(
        id=f"lead-{n:04d}",
        created_at=T0 + timedelta(hours=n % 17, minutes=n),
        modified_at=T0,
        topic=f"Topic {n}",
        first_name=f"S{n % 2}",
        last_name=last,
        company_name=company,
        email=f"{last.lower()}.{n}@example.com" if n % 5 else None,
        status=LeadStatus.OPEN if n % 2 else LeadStatus.QUALIFIED,
        status_reason="new" if n % 2 else "qualified",
    )


LEADS = [lead(n) for n in range(1, 61)]


def put(store: Store, *records: Any) -> None:
    with store.unit_of_work() as uow:
        for record in records:
            uow.add(record)
        uow.commit()


@contextmanager
def postgres_store() -> Iterator[Store]:
    """A PostgreSQL store holding `LEADS`, in a schema of its own (dropped after)."""
    if not DSN:
        pytest.skip("SALESFLOW_PG_DSN is not set; PostgreSQL store tests need a server")
    import psycopg
    from psycopg import sql

    from salesflow.stores.postgres import PostgresStore

    schema = f"sf_test_{uuid4().hex[:8]}"
    opened = PostgresStore(DSN, schema=schema)
    try:
        put(opened, *LEADS)
        yield opened
    finally:
        opened.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A SQL store holding `LEADS`."""
    if request.param == "postgres":
        with postgres_store() as opened:
            yield opened
        return
    from salesflow.stores.sqlite import SQLiteStore

    opened = SQLiteStore(tmp_path / "search.db")
    put(opened, *LEADS)
    yield opened
    opened.close()


@pytest.fixture
def reference() -> MemoryStore:
    memory = MemoryStore()
    put(memory, *LEADS)
    return memory


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, int, int]]:
    """Every bounded count the SQL store answers: (search, bound, count)."""
    seen: list[tuple[str | None, int, int]] = []
    original = SQLUnit._count_upto

    def spy(self: SQLUnit, table: Any, query: Query, most: int, **options: Any) -> int:
        found = original(self, table, query, most, **options)
        seen.append((query.search, most, found))
        return found

    monkeypatch.setattr(SQLUnit, "_count_upto", spy)
    return seen


def same_page(store: Store, reference: Store, query: Query) -> None:
    with store.unit_of_work() as uow, reference.unit_of_work() as memory:
        got, want = uow.query(Lead, query), memory.query(Lead, query)
    assert [r.id for r in got.items] == [r.id for r in want.items], query
    assert (got.total, got.total_exact) == (want.total, want.total_exact), query


def test_the_memory_store_sees_the_matches_the_cases_need(reference: MemoryStore) -> None:
    with reference.unit_of_work() as uow:
        ko = uow.query(Lead, Query(search="ko", limit=100))
        smi = uow.query(Lead, Query(search="smi", limit=100))
        smiths = uow.query(Lead, Query(where=field("last_name").eq("Smith"), limit=100))
    assert sorted(r.id for r in ko.items) == [f"lead-{n:04d}" for n in (5, 10, 15, 20, 25)]
    # "smi": 19 by last name alone (the most of any key), 28 by every key together.
    assert (smi.total, smiths.total) == (28, 19)


@pytest.mark.parametrize("term", ["smi", "SMI", "ko", "kod", "s", "zz", "smith.1"])
@pytest.mark.parametrize("count_limit", [None, 0, 1, 2, 3, 4, 5, 6, 18, 19, 27, 28, 100])
def test_a_search_over_every_lead_counts_what_the_memory_store_counts(
    store: Store,
    reference: MemoryStore,
    counts: list[tuple[str | None, int, int]],
    term: str,
    count_limit: int | None,
) -> None:
    newest = (SortKey(field="created_at", descending=True),)
    for order in (newest, ()):
        for offset, limit in ((0, 1), (0, 2), (2, 2), (4, 1), (10, 5), (70, 5)):
            query = Query(
                search=term, order_by=order, offset=offset, limit=limit, count_limit=count_limit
            )
            same_page(store, reference, query)
    assert counts or count_limit is None or term == "zz"


def test_the_bounds_that_tell_the_ways_of_counting_apart(
    store: Store, reference: MemoryStore, counts: list[tuple[str | None, int, int]]
) -> None:
    # A page of one; a bound of b counts up to b + 1 matches.
    cases = [
        # "ko": three leads by last name and three by company, lead 15 by both: five.
        ("ko", 2, (2, False)),  # the last name alone has 3
        ("ko", 3, (3, False)),  # 4 only with both keys
        ("ko", 4, (4, False)),  # 5 with both keys
        ("ko", 5, (5, True)),  # 6 only if lead 15 counted twice
        ("smi", 5, (5, False)),
        ("zz", 3, (0, True)),
    ]
    for term, count_limit, (total, exact) in cases:
        query = Query(search=term, limit=1, count_limit=count_limit)
        same_page(store, reference, query)
        with store.unit_of_work() as uow:
            page = uow.query(Lead, query)
        assert (page.total, page.total_exact) == (total, exact), (term, count_limit)
    # No key has 4, 5 or 6 "ko" matches alone: every key together counted them.
    assert {("ko", 4, 4), ("ko", 5, 5), ("ko", 6, 5)} <= set(counts)


@pytest.mark.parametrize(
    "query",
    [
        Query(search="*mit", limit=2, count_limit=3),  # contains: no index, one count
        Query(search="smi", where=field("status").eq("open"), limit=2, count_limit=3),
        Query(search="ko", where=field("status").eq("qualified"), limit=1, count_limit=1),
        Query(search="smi", where=field("last_name").eq("Smith"), limit=3, count_limit=17),
        Query(search="  smi ", limit=1, count_limit=18),
    ],
)
def test_a_search_within_a_condition_or_by_contents_counts_the_same(
    store: Store, reference: MemoryStore, query: Query
) -> None:
    same_page(store, reference, query)


def test_grouped_searches_count_their_groups_as_the_memory_store_does(
    store: Store, reference: MemoryStore
) -> None:
    query = Query(search="smi", order_by=(SortKey(field="status"),), limit=3, count_limit=4)
    same_page(store, reference, query)
    with store.unit_of_work() as uow, reference.unit_of_work() as memory:
        got = uow.group_counts(Lead, query, "status")
        want = memory.group_counts(Lead, query, "status")
    assert [(g.value, g.count, g.exact) for g in got] == [(g.value, g.count, g.exact) for g in want]


def test_a_key_with_the_bound_reached_spares_counting_every_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psycopg

    from salesflow.stores import postgres as postgres_module

    seen: list[tuple[str, list[Any]]] = []
    original = postgres_module._Session.fetch

    def fetch(self: Any, text: str, params: Any = ()) -> list[tuple[Any, ...]]:
        seen.append((text, list(params)))
        return original(self, text, params)

    with postgres_store() as store:
        monkeypatch.setattr(postgres_module._Session, "fetch", fetch)
        with store.unit_of_work() as uow:
            page = uow.query(Lead, Query(search="smi", limit=1, count_limit=5))
        monkeypatch.undo()
        assert (page.total, page.total_exact) == (5, False)
        counted = next(s for s in seen if '"bounded"' in s[0])
        with psycopg.connect(DSN) as conn:
            rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + counted[0], counted[1])
            found = [str(row[0]) for row in rows.fetchall()]
            conn.rollback()
    # One part per key (full name, last name, company, e-mail, topic), then the count
    # of every key together. The full name has no match; the last name has six, which
    # answers: the other keys and the count of every match are never run.
    parts = "\n".join(found).split("InitPlan")[1:]
    assert len(parts) == 6
    assert ["never executed" in part for part in parts] == [False, False, True, True, True, True]
    assert "sf_lead__search_last_name" in parts[1]
    assert parts[5].count("search_topic >=") == 1
    assert "search_name >=" in parts[5]
