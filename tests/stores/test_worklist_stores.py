"""The work list reads one page through indexes on every store, yet lists exactly
what reading every open activity and sorting would (`work_list_rows` over all of
them), for either order, any owner, any limit; and a SQL database from before
layout 9 gets the work list's indexes and best scores when opened."""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.conftest import T0, counting_ids

from salesflow.activity import Activity
from salesflow.clock import FakeClock
from salesflow.commands import worklist as worklist_command
from salesflow.conditions import Condition, all_of, field
from salesflow.engine import Salesflow
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.stores.base import Query, Store, UnitOfWork
from salesflow.stores.memory import MemoryStore
from salesflow.stores.sql import STORE_SCHEMA_VERSION
from salesflow.stores.sqlite import SQLiteStore
from salesflow.testing.contract_scores import score
from salesflow.values import Record, RecordRef
from salesflow.worklist import WorkItem, WorkListOrder, work_list_rows

PG_DSN = os.environ.get("SALESFLOW_PG_DSN")
STORES = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = SQLiteStore(tmp_path / "worklist.db")
    else:
        if not PG_DSN:
            pytest.skip("SALESFLOW_PG_DSN is not set; PostgreSQL store tests need a server")
        from salesflow.stores.postgres import PostgresStore

        schema = f"sf_worklist_{os.getpid()}_{random.randrange(10**9)}"
        made = PostgresStore(PG_DSN, schema=schema)
    try:
        yield made
    finally:
        made.close()
        if request.param == "postgres":
            import psycopg

            assert PG_DSN
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _book(engine: Salesflow, store: Store, clock: FakeClock, seed: int) -> None:
    """Leads, an opportunity and an account with activities due at a few shared
    instants (ties), without a due time, done, on closed leads, and some scores."""
    rng = random.Random(seed)
    owners = ["u1", "u2", "u3"]
    account = engine.create_account(name="Contoso")
    kim = engine.create_contact(first_name="Kim", last_name="Park", account_id=account.id)
    deal = engine.create_opportunity(name="Fleet", contact_id=kim.id, owner_id="u1")
    records: list[Record] = [deal, account]
    for n in range(rng.randint(8, 16)):
        records.append(
            engine.create_lead(topic=f"T{n}", last_name=f"L{n}", owner_id=rng.choice(owners))
        )
    dues = [None, T0 - timedelta(days=1), T0, T0 + timedelta(hours=2), T0 + timedelta(days=3)]
    for n in range(rng.randint(20, 40)):
        record = rng.choice(records)
        activity = engine.add_activity(
            record,
            rng.choice(["task", "phone_call", "email"]),
            f"Do {n}",
            owner_id=rng.choice(owners),
            due_at=rng.choice(dues),
        )
        clock.advance(timedelta(minutes=rng.choice([0, 1])))
        if rng.random() < 0.15:
            engine.complete_activity(activity.id)
    leads = [r for r in records if isinstance(r, Lead)]
    for lead in rng.sample(leads, 2):
        engine.disqualify_lead(lead.id, "lost")
    with store.unit_of_work() as uow:
        for n, lead in enumerate(rng.sample(leads, len(leads) // 2)):
            uow.add_score(score(rng.choice([10, 40, 40, 80]), n, lead_id=lead.id))
            if rng.random() < 0.5:
                uow.add_score(score(rng.choice([5, 90]), n, lead_id=lead.id, model_id="m2"))
        uow.commit()


def _reference(uow: UnitOfWork, owner_id: str | None, order: WorkListOrder) -> list[WorkItem]:
    """The work list as the engine computed it before: every open activity in scope,
    every record, every score, then `work_list_rows`."""
    conditions: list[Condition] = [field("state").eq("open")]
    if owner_id is not None:
        conditions.append(field("owner_id").eq(owner_id))
    activities = uow.query(Activity, Query(where=all_of(*conditions), limit=10_000)).items
    classes: dict[str, type[Record]] = {
        "lead": Lead,
        "opportunity": Opportunity,
        "account": Account,
        "contact": Contact,
    }
    records: dict[RecordRef, Record] = {}
    for activity in activities:
        found = uow.find(classes[activity.regarding.kind.value], activity.regarding.id)
        if found is not None:
            records[activity.regarding] = found
    scores = {}
    for ref in records:
        current = uow.scores(ref.id) if ref.kind.value == "lead" else []
        if current:
            scores[ref.id] = max(s.points for s in current)

    def contact_of(record: Record) -> Contact | None:
        if isinstance(record, Opportunity) and record.contact_id:
            return uow.find(Contact, record.contact_id)
        if isinstance(record, Account) and record.primary_contact_id:
            return uow.find(Contact, record.primary_contact_id)
        return record if isinstance(record, Contact) else None

    return work_list_rows(activities, records, contact_of, scores, now=T0, order=order)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("first", "most"), [(2, 5), (1, 2)])
def test_the_paged_work_list_equals_reading_everything(
    store: Store, seed: int, first: int, most: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny reads, so a page takes several and the paging itself is exercised.
    monkeypatch.setattr(worklist_command, "_FIRST_CHUNK", first)
    monkeypatch.setattr(worklist_command, "_MAX_CHUNK", most)
    clock = FakeClock(T0 - timedelta(hours=1))
    engine = Salesflow(store, clock=clock, ids=counting_ids())
    _book(engine, store, clock, seed)
    clock.set(T0)
    for order in WorkListOrder:
        for owner in (None, "u1", "u2", "nobody"):
            with store.unit_of_work() as uow:
                expected = _reference(uow, owner, order)
            for limit in (1, 3, 7, 50):
                got = engine.work_list(owner_id=owner, order=order, limit=limit)
                assert got == expected[:limit], (order, owner, limit)


def test_leads_with_the_same_score_are_listed_by_their_next_action(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worklist_command, "_MAX_CHUNK", 3)
    clock = FakeClock(T0)
    engine = Salesflow(store, clock=clock, ids=counting_ids())
    leads = [engine.create_lead(topic="T", last_name=f"L{n}", owner_id="u1") for n in range(7)]
    # All score 50 but the last (90); due times in an order unrelated to ids.
    for n, hours in enumerate([5, 3, 6, 1, 4, 2, 9]):
        engine.add_activity(
            leads[n], "task", f"Do {n}", owner_id="u1", due_at=T0 + timedelta(hours=hours)
        )
    with store.unit_of_work() as uow:
        for n, lead in enumerate(leads):
            uow.add_score(score(90 if n == 6 else 50, lead_id=lead.id))
        uow.commit()
    rows = engine.work_list(order="score", limit=3)
    assert [(r.record.id, r.score) for r in rows] == [
        (leads[6].id, 90),
        (leads[3].id, 50),
        (leads[5].id, 50),
    ]
    assert [r.record for r in engine.work_list(order="score", owner_id="u1")] == [
        leads[n].ref for n in (6, 3, 5, 1, 4, 0, 2)
    ]


def test_groups_read_together_keep_the_better_score_first(store: Store) -> None:
    clock = FakeClock(T0)
    engine = Salesflow(store, clock=clock, ids=counting_ids())
    leads = [engine.create_lead(topic="T", last_name=f"L{n}", owner_id="u1") for n in range(4)]
    # One lead per score; the worse the score, the sooner its action is due, so an
    # order by due time alone would pick the wrong lead for the second place.
    for lead, points, hours in zip(leads, (90, 80, 70, 60), (9, 3, 2, 1), strict=True):
        engine.add_activity(lead, "task", "Do", owner_id="u1", due_at=T0 + timedelta(hours=hours))
        with store.unit_of_work() as uow:
            uow.add_score(score(points, lead_id=lead.id))
            uow.commit()
    # The 90 group alone cannot fill 3 rows, so 80 and 70 are read in one query.
    rows = engine.work_list(order="score", limit=3, owner_id="u1")
    assert [(r.record.id, r.score) for r in rows] == [
        (leads[0].id, 90),
        (leads[1].id, 80),
        (leads[2].id, 70),
    ]
    rows = engine.work_list(order="score", limit=2, owner_id="u1")
    assert [r.score for r in rows] == [90, 80]


def _sqlite_layout(path: Path) -> Callable[[str], list[tuple[object, ...]]]:
    def run(sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return run


def test_a_layout_8_sqlite_database_gets_the_work_list_indexes_and_best_scores(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    with store.unit_of_work() as uow:
        uow.add_score(score(20, lead_id="a"))
        uow.add_score(score(60, 1, lead_id="a", model_id="m2"))
        uow.add_score(score(35, 2, lead_id="b"))
        uow.commit()
    store.close()
    run = _sqlite_layout(path)
    # Take the database back to layout 8: no work-list indexes, no best scores,
    # the old index led by owner_id.
    for (name,) in run(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'sf_activity__worklist%'"
    ):
        run(f'DROP INDEX "{name}"')
    run('DROP TABLE "sf_best_scores"')
    run('CREATE INDEX "sf_activity__owner_id__id" ON "sf_activity" ("owner_id", "id")')
    run('DROP INDEX "sf_lead__created_at__status__id"')  # and layout 9's lead index
    run('CREATE INDEX "sf_lead__created_at__id" ON "sf_lead" ("created_at", "id")')
    run("UPDATE sf_meta SET value = '8' WHERE key = 'schema_version'")

    reopened = SQLiteStore(path)
    try:
        with reopened.unit_of_work() as uow:
            assert uow.top_scored_leads(5) == [("a", 60), ("b", 35)]
    finally:
        reopened.close()
    indexes = {str(r[0]) for r in run("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {
        "sf_activity__worklist",
        "sf_activity__worklist_by_owner",
        "sf_best_scores__rank__lead_id",
    } <= indexes
    assert "sf_activity__owner_id__id" not in indexes
    assert "sf_lead__created_at__status__id" in indexes
    assert "sf_lead__created_at__id" not in indexes
    assert run("SELECT value FROM sf_meta WHERE key = 'schema_version'") == [
        (str(STORE_SCHEMA_VERSION),)
    ]


def test_the_work_list_page_reads_an_index_on_sqlite(tmp_path: Path) -> None:
    """The query the work list pages with is answered from the work-list index in
    order (no temporary sort), for everyone's list and one owner's."""
    store = SQLiteStore(tmp_path / "plan.db")
    store.close()
    run = _sqlite_layout(tmp_path / "plan.db")
    order = ", ".join(
        f'"{c}" ASC NULLS FIRST' for c in ("due_at", "regarding_kind", "regarding_id", "created_at")
    )
    for extra in ("", ' AND ("owner_id" IS NOT NULL AND "owner_id" = \'u1\')'):
        plan = run(
            f'EXPLAIN QUERY PLAN SELECT "doc" FROM "sf_activity" WHERE ("state" IS NOT NULL '
            f'AND "state" = \'open\'){extra} AND ("due_at" IS NOT NULL) '
            f'ORDER BY {order}, "id" ASC LIMIT 50'
        )
        text = " ".join(str(row[-1]) for row in plan)
        assert "USING INDEX sf_activity__worklist" in text, text
        assert "TEMP B-TREE" not in text, text


def test_a_layout_8_postgres_schema_gets_the_work_list_indexes_and_best_scores() -> None:
    if not PG_DSN:
        pytest.skip("SALESFLOW_PG_DSN is not set; PostgreSQL store tests need a server")
    import psycopg

    from salesflow.stores.postgres import PostgresStore

    schema = f"sf_worklist_layout_{os.getpid()}_{random.randrange(10**9)}"
    store = PostgresStore(PG_DSN, schema=schema)
    try:
        with store.unit_of_work() as uow:
            uow.add_score(score(20, lead_id="a"))
            uow.add_score(score(60, 1, lead_id="a", model_id="m2"))
            uow.add_score(score(35, 2, lead_id="b"))
            uow.commit()
        store.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for (name,) in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s "
                "AND indexname LIKE 'sf_activity__worklist%%'",
                (schema,),
            ).fetchall():
                conn.execute(f'DROP INDEX "{schema}"."{name}"')
            conn.execute(f'DROP TABLE "{schema}"."sf_best_scores"')
            conn.execute(
                f'CREATE INDEX "sf_activity__owner_id__id" ON "{schema}"."sf_activity" '
                '("owner_id", "id")'
            )
            conn.execute(f'DROP INDEX "{schema}"."sf_lead__created_at__status__id"')
            conn.execute(
                f'CREATE INDEX "sf_lead__created_at__id" ON "{schema}"."sf_lead" '
                '("created_at", "id")'
            )
            conn.execute(
                f"UPDATE \"{schema}\".sf_meta SET value = '8' WHERE key = 'schema_version'"
            )
        store = PostgresStore(PG_DSN, schema=schema)
        with store.unit_of_work() as uow:
            assert uow.top_scored_leads(5) == [("a", 60), ("b", 35)]
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            indexes = {
                str(r[0])
                for r in conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
                ).fetchall()
            }
            version = conn.execute(
                f"SELECT value FROM \"{schema}\".sf_meta WHERE key = 'schema_version'"
            ).fetchone()
        assert {
            "sf_activity__worklist",
            "sf_activity__worklist_by_owner",
            "sf_best_scores__rank__lead_id",
        } <= indexes
        assert "sf_activity__owner_id__id" not in indexes
        assert "sf_lead__created_at__status__id" in indexes
        assert "sf_lead__created_at__id" not in indexes
        assert version == (str(STORE_SCHEMA_VERSION),)
    finally:
        store.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
