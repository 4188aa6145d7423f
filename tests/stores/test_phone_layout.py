"""Layout 13 in the SQL stores: the phone lookup keys' columns and partial indexes, the
upgrade of a layout-12 database (columns, indexes and the keys of the rows it already
holds), and the query plans of phone lookups."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from salesflow import Salesflow
from salesflow.intake import IntakeOptions, RecordAction, Submission
from salesflow.lead import Lead
from salesflow.matching import MatchField, MatchingStrategy
from salesflow.party import Contact
from salesflow.stores import sql_layout
from salesflow.stores.base import Store
from salesflow.stores.sql import STORE_SCHEMA_VERSION
from salesflow.stores.sqlite import SQLiteStore
from salesflow.testing import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DSN = os.environ.get("SALESFLOW_PG_DSN", "")
needs_server = pytest.mark.skipif(
    not DSN, reason="SALESFLOW_PG_DSN is not set; PostgreSQL store tests need a server"
)
PHONE_KEYS = ("mobile_phone_key", "business_phone_key")
PHONE_INDEXES = {
    f"sf_{kind}__{key}__modified_at__id" for kind in ("lead", "contact") for key in PHONE_KEYS
}
BY_PHONE = MatchingStrategy(
    id="lead_by_phone", target="lead", fields=[MatchField(name="mobile_phone")]
)


def old_people() -> list[Any]:
    """What a layout-12 database holds: people with and without phones."""
    people: list[Any] = [
        Lead(
            id=f"lead-{n:04d}",
            created_at=T0,
            modified_at=T0 + timedelta(minutes=n),
            topic="Old",
            last_name=f"Old{n}",
            mobile_phone=f"+370 612 {n:05d}",
            business_phone=f"8 5 {n:07d}" if n % 2 else None,
            country="Lithuania",
        )
        for n in range(1, 8)
    ]
    people.append(Lead(id="lead-none", created_at=T0, modified_at=T0, topic="t", last_name="N"))
    people.append(
        Contact(
            id="c1",
            created_at=T0,
            modified_at=T0,
            last_name="Ruiz",
            business_phone="+370 699 99999",
        )
    )
    return people


def put(store: Store, records: list[Any]) -> None:
    with store.unit_of_work() as uow:
        for record in records:
            uow.add(record)
        uow.commit()


def finds_old_people(store: Store) -> None:
    """The upgraded store finds the old rows by their phone keys, and matching by
    phone finds an old lead written another way."""
    with store.unit_of_work() as uow:
        assert [r.id for r in uow.find_by(Lead, "mobile_phone_key", "61200003")] == ["lead-0003"]
        assert uow.find_ids_by(Lead, "business_phone_key", ["50000005", "50000004"]) == {
            "50000005": ["lead-0005"],
            "50000004": [],  # lead 4 has no business phone
        }
        assert [c.id for c in uow.find_by(Contact, "business_phone_key", "69999999")] == ["c1"]
        assert uow.find_by(Contact, "mobile_phone_key", "69999999") == []
    engine = Salesflow(store=store, clock=FakeClock(T0 + timedelta(days=1)))
    engine.save_matching_strategy(BY_PHONE)
    result = engine.intake(
        Submission(
            channel="event",
            fields={"mobile_phone": "8 612 00006", "country": "Lithuania", "last_name": "Old6"},
        ),
        IntakeOptions(lead_strategy="lead_by_phone"),
    )
    assert result.lead is not None
    assert result.lead.id == "lead-0006"
    # the same number written another way is not a change
    assert result.lead_action is RecordAction.UNCHANGED


# --- SQLite ---------------------------------------------------------------------------


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


def sqlite_layout(path: Path) -> tuple[str, set[str], dict[str, set[str]]]:
    """The stamped layout, the indexes, and the columns of sf_lead and sf_contact."""
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute(
            "SELECT value FROM sf_meta WHERE key = 'schema_version'"
        ).fetchone()
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        columns = {
            table: {r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", [table])}
            for table in ("sf_lead", "sf_contact")
        }
    return version, indexes, columns


def make_sqlite_layout_12(path: Path) -> None:
    """A database as layout 12 left it: no phone key columns or indexes."""
    store = SQLiteStore(path)
    put(store, old_people())
    store.close()
    with sqlite3.connect(path) as conn:
        for index in PHONE_INDEXES:
            conn.execute(f'DROP INDEX "{index}"')
        for table in ("sf_lead", "sf_contact"):
            for key in PHONE_KEYS:
                conn.execute(f'ALTER TABLE {table} DROP COLUMN "{key}"')
        conn.execute("UPDATE sf_meta SET value = '12' WHERE key = 'schema_version'")
    version, indexes, columns = sqlite_layout(path)
    assert version == "12"
    assert not PHONE_INDEXES & indexes
    assert not set(PHONE_KEYS) & columns["sf_lead"]


def test_a_database_at_layout_12_gets_the_phone_keys_of_its_rows(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_sqlite_layout_12(path)
    monkeypatch.setattr(sql_layout, "MIGRATION_BATCH_SIZE", 2)  # several backfill batches
    store = SQLiteStore(path)
    try:
        version, indexes, columns = sqlite_layout(path)
        assert version == str(STORE_SCHEMA_VERSION) == "13"
        assert indexes >= PHONE_INDEXES
        assert set(PHONE_KEYS) <= columns["sf_lead"] & columns["sf_contact"]
        with sqlite3.connect(path) as conn:
            keys = dict(conn.execute('SELECT "id", "mobile_phone_key" FROM sf_lead').fetchall())
        assert keys["lead-0001"] == "61200001"
        assert keys["lead-none"] is None
        finds_old_people(store)
    finally:
        store.close()


def test_a_database_at_layout_13_is_only_read_when_opened(path: Path) -> None:
    store = SQLiteStore(path)
    put(store, old_people())
    store.close()
    watcher = sqlite3.connect(path)
    try:
        # data_version changes when another connection commits anything
        (before,) = watcher.execute("PRAGMA data_version").fetchone()
        SQLiteStore(path).close()
        (after,) = watcher.execute("PRAGMA data_version").fetchone()
    finally:
        watcher.close()
    assert after == before


def sqlite_plan(path: Path, sql: str, params: list[Any]) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "\n".join(row[3] for row in rows)


@pytest.mark.parametrize("key", PHONE_KEYS)
def test_sqlite_phone_lookups_use_the_partial_index(path: Path, key: str) -> None:
    store = SQLiteStore(path)
    put(store, old_people())
    store.close()
    one = sqlite_plan(
        path,
        f'SELECT "doc" FROM sf_contact WHERE "{key}" = ? ORDER BY "modified_at" DESC, "id" DESC',
        ["61200001"],
    )
    many = sqlite_plan(
        path,
        f'SELECT "{key}", "id" FROM sf_lead WHERE "{key}" IN (?, ?) '
        'ORDER BY "modified_at" DESC, "id" DESC',
        ["61200001", "61200002"],
    )
    assert f"INDEX sf_contact__{key}__modified_at__id ({key}=?)" in one
    assert f"INDEX sf_lead__{key}__modified_at__id ({key}=?)" in many
    with sqlite3.connect(path) as conn:
        (entries,) = conn.execute(
            f'SELECT COUNT(*) FROM sf_lead INDEXED BY "sf_lead__{key}__modified_at__id" '
            f'WHERE "{key}" IS NOT NULL'
        ).fetchone()
        (having,) = conn.execute(
            f'SELECT COUNT(*) FROM sf_lead WHERE "{key}" IS NOT NULL'
        ).fetchone()
    assert entries == having < 8  # leads without the phone are not in the index


# --- PostgreSQL -----------------------------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"sf_test_{uuid4().hex[:8]}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def pg_layout(schema: str) -> tuple[str, set[str], set[str]]:
    """The stamped layout, the indexes, and the columns of sf_lead."""
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        row = conn.execute(
            f'SELECT value FROM "{schema}".sf_meta WHERE key = %s', ["schema_version"]
        ).fetchone()
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", [schema]
            ).fetchall()
        }
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'sf_lead'",
                [schema],
            ).fetchall()
        }
    assert row is not None
    return str(row[0]), indexes, columns


@needs_server
def test_a_postgres_database_at_layout_12_gets_the_phone_keys_of_its_rows(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from salesflow.stores.postgres import PostgresStore

    store = PostgresStore(DSN, schema=pg_schema)
    put(store, old_people())
    store.close()
    with psycopg.connect(DSN, autocommit=True) as conn:
        for index in PHONE_INDEXES:
            conn.execute(f'DROP INDEX "{pg_schema}"."{index}"')
        for table in ("sf_lead", "sf_contact"):
            for key in PHONE_KEYS:
                conn.execute(f'ALTER TABLE "{pg_schema}".{table} DROP COLUMN "{key}"')
        conn.execute(
            f'UPDATE "{pg_schema}".sf_meta SET value = %s WHERE key = %s', ["12", "schema_version"]
        )
    assert pg_layout(pg_schema)[0] == "12"
    monkeypatch.setattr(sql_layout, "MIGRATION_BATCH_SIZE", 2)
    store = PostgresStore(DSN, schema=pg_schema)
    try:
        version, indexes, columns = pg_layout(pg_schema)
        assert version == str(STORE_SCHEMA_VERSION)
        assert indexes >= PHONE_INDEXES
        assert set(PHONE_KEYS) <= columns
        finds_old_people(store)
    finally:
        store.close()


@needs_server
@pytest.mark.parametrize("key", PHONE_KEYS)
def test_postgres_phone_lookups_use_the_partial_index(pg_schema: str, key: str) -> None:
    import psycopg

    from salesflow.stores.postgres import PostgresStore

    store = PostgresStore(DSN, schema=pg_schema)
    put(store, old_people())
    store.close()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{pg_schema}".sf_lead')
        conn.execute("SET enable_seqscan = off")
        shown = []
        for where, params in ((f'"{key}" = %s', ["1"]), (f'"{key}" IN (%s, %s)', ["1", "2"])):
            rows = conn.execute(
                f'EXPLAIN SELECT "id" FROM "{pg_schema}".sf_lead WHERE {where} '
                'ORDER BY "modified_at" DESC, "id" DESC',
                params,
            ).fetchall()
            shown.append("\n".join(r[0] for r in rows))
    assert all(f"sf_lead__{key}__modified_at__id" in plan for plan in shown), shown
