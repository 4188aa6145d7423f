"""PostgresStore runs the store contract, plus what only PostgreSQL has: schemas,
query plans, a lost connection, and psycopg being optional.

Needs a server: set ``SALESFLOW_PG_DSN`` (``.ci/run`` does). Every store lives in
its own schema, dropped after the test, so runs never see each other's data.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import attrs
import pytest
from tests.stores.sql_checks import check_option_walk

from salesflow.activity import Activity, ActivityKind
from salesflow.conditions import field
from salesflow.definitions import StateDocument
from salesflow.errors import AlreadyExists, StoreError, ValidationError, VersionConflict
from salesflow.lead import Lead, LeadStatus
from salesflow.party import Contact
from salesflow.stores import postgres as postgres_module
from salesflow.stores.base import Query, SortKey, Store, sort_order
from salesflow.stores.codec import Codec
from salesflow.stores.postgres import PostgresStore
from salesflow.stores.sql import STORE_SCHEMA_VERSION
from salesflow.stores.url import open_store
from salesflow.testing.contract import StoreContract, due, upgraded_codec
from salesflow.testing.contract_interactions import interaction
from salesflow.testing.contract_records import T0, lead
from salesflow.testing.contract_scores import score
from salesflow.testing.contract_sequences import definition, enrollment
from salesflow.values import RecordKind
from salesflow.views import LeadView, lead_view_query
from salesflow.worktime import OrganizationCalendar

DSN = os.environ.get("SALESFLOW_PG_DSN", "")
needs_server = pytest.mark.skipif(
    not DSN, reason="SALESFLOW_PG_DSN is not set; PostgreSQL store tests need a server"
)


def put(store: Store, *records: Any) -> None:
    with store.unit_of_work() as uow:
        for record in records:
            uow.add(record)
        uow.commit()


def drop_schemas(names: list[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(DSN, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def schemas() -> Iterator[list[str]]:
    """Schema names for this test; each is dropped afterwards."""
    names: list[str] = []
    yield names
    drop_schemas(names)


def private_schema(names: list[str]) -> str:
    name = f"sf_test_{uuid4().hex[:8]}"
    names.append(name)
    return name


@needs_server
class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _schemas(self, schemas: list[str]) -> None:
        self.schemas = schemas

    def make_store(self) -> Store:
        return PostgresStore(DSN, schema=private_schema(self.schemas))

    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        assert isinstance(store, PostgresStore)
        store.close()
        return PostgresStore(DSN, schema=store.schema, codec=codec)

    def other_store(self, store: Store) -> Store:
        assert isinstance(store, PostgresStore)
        return PostgresStore(DSN, schema=store.schema)  # a second connection


@pytest.fixture
def store(schemas: list[str]) -> Iterator[PostgresStore]:
    opened = PostgresStore(DSN, schema=private_schema(schemas))
    yield opened
    opened.close()


@needs_server
def test_two_stores_on_one_schema_see_each_others_commits_and_conflicts(
    store: PostgresStore,
) -> None:
    other = PostgresStore(DSN, schema=store.schema)
    try:
        put(store, lead(1))
        with store.unit_of_work() as uow:
            stale = uow.get(Lead, "lead-0001")
        with other.unit_of_work() as uow:
            uow.update(attrs.evolve(uow.get(Lead, "lead-0001"), topic="Theirs"))
            uow.commit()
        with store.unit_of_work() as uow, pytest.raises(VersionConflict):
            uow.update(attrs.evolve(stale, topic="Mine"))
    finally:
        other.close()


@needs_server
def test_workers_opening_a_fresh_schema_at_once_all_succeed(schemas: list[str]) -> None:
    name = private_schema(schemas)
    with ThreadPoolExecutor(max_workers=4) as pool:
        opened = list(pool.map(lambda _: PostgresStore(DSN, schema=name), range(4)))
    put(opened[0], lead(1))
    for store in opened:
        with store.unit_of_work() as uow:
            assert uow.get(Lead, "lead-0001") == lead(1)
        store.close()


@needs_server
def test_a_database_from_a_newer_salesflow_is_refused(store: PostgresStore) -> None:
    import psycopg

    store.close()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{store.schema}".sf_meta SET value = %s WHERE key = %s',
            [str(STORE_SCHEMA_VERSION + 1), "schema_version"],
        )
    with pytest.raises(StoreError, match="newer salesflow"):
        PostgresStore(DSN, schema=store.schema)


@needs_server
def test_a_lost_connection_is_replaced_by_the_next_unit(store: PostgresStore) -> None:
    import psycopg

    put(store, lead(1))
    assert store._conn is not None
    backend = store._conn.info.backend_pid
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])
    with pytest.raises(StoreError), store.unit_of_work() as uow:
        uow.get(Lead, "lead-0001")
    with store.unit_of_work() as uow:
        assert uow.get(Lead, "lead-0001").topic == "Topic 1"


@needs_server
def test_a_closed_store_refuses_work(store: PostgresStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"), store.unit_of_work():
        pass


@needs_server
def test_a_nested_unit_in_one_thread_is_refused(store: PostgresStore) -> None:
    with store.unit_of_work(), pytest.raises(StoreError, match="already open"):
        store.unit_of_work().__enter__()


@needs_server
def test_open_store_takes_the_schema_from_the_url(schemas: list[str]) -> None:
    name = private_schema(schemas)
    separator = "&" if "?" in DSN else "?"
    opened = open_store(f"{DSN}{separator}schema={name}")
    assert isinstance(opened, PostgresStore)
    assert opened.schema == name
    put(opened, lead(1))
    opened.close()
    again = PostgresStore(DSN, schema=name)
    with again.unit_of_work() as uow:
        assert uow.get(Lead, "lead-0001") == lead(1)
    again.close()


def test_an_unreachable_server_is_a_store_error() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        PostgresStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_without_psycopg_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'salesflow\[postgres\]'"):
        PostgresStore("postgresql://localhost/db")


def test_a_bad_schema_name_is_refused() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(ValidationError, match="schema"):
        PostgresStore("postgresql://localhost/db", schema="")


@needs_server
def test_values_outside_an_option_set_sort_after_it_by_text(store: PostgresStore) -> None:
    import psycopg

    ratings = ["cold", "hot", None, "warm", "hot", "cold"]
    put(store, *[lead(n, rating=r) for n, r in enumerate(ratings, start=1)])
    # Only a newer salesflow (with more options) could write these; order stays total.
    with psycopg.connect(DSN, autocommit=True) as conn:
        for record_id, rating in [("lead-0005", "zebra"), ("lead-0006", "Zebra")]:
            conn.execute(
                f'UPDATE "{store.schema}".sf_lead SET rating = %s WHERE id = %s',
                [rating, record_id],
            )
    up = ["lead-0003", "lead-0002", "lead-0004", "lead-0001", "lead-0006", "lead-0005"]
    values = [None, "hot", "warm", "cold", "Zebra", "zebra"]  # by code point: Z < z
    with store.unit_of_work() as uow:
        ascending = uow.query(Lead, Query(order_by=SortKey(field="rating")))
        descending = uow.query(Lead, Query(order_by=SortKey(field="rating", descending=True)))
        groups = uow.group_counts(Lead, Query(), "rating")
        zebra = uow.query(Lead, Query(where=field("rating").eq("zebra")))  # filters: text
    assert [r.id for r in ascending.items] == up
    assert [r.id for r in descending.items] == up[::-1]
    assert [(g.value, g.count) for g in groups] == [(v, 1) for v in values]
    assert sorted(values, key=sort_order(RecordKind.LEAD, "rating")) == values  # as memory
    assert [r.id for r in zebra.items] == ["lead-0005"]


@needs_server
def test_pages_and_bounded_counts_by_option_keep_values_outside_the_set(
    store: PostgresStore,
) -> None:
    import psycopg

    statuses = ["open", "qualified", "open", "disqualified", "open", "open"]
    put(store, *[lead(n, status=s) for n, s in enumerate(statuses, start=1)])
    with psycopg.connect(DSN, autocommit=True) as conn:
        for record_id, status in [("lead-0005", "zebra"), ("lead-0006", "aardvark")]:
            conn.execute(
                f'UPDATE "{store.schema}".sf_lead SET status = %s WHERE id = %s',
                [status, record_id],
            )
    check_option_walk(store)


# --- query plans ---------------------------------------------------------------------


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    """Every query the PostgreSQL store runs, with its parameters."""
    seen: list[tuple[str, list[Any]]] = []
    original = postgres_module._Session.fetch

    def fetch(self: Any, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        seen.append((sql, list(params)))
        return original(self, sql, params)

    monkeypatch.setattr(postgres_module._Session, "fetch", fetch)
    return seen


def plan(sql: str, params: list[Any]) -> str:
    """The plan PostgreSQL picks when it must use an index if one fits at all."""
    import psycopg

    with psycopg.connect(DSN) as conn:
        conn.execute("SET enable_seqscan = off")
        rows = conn.execute("EXPLAIN " + sql, params).fetchall()
        conn.rollback()
    return "\n".join(row[0] for row in rows)


def fill(store: PostgresStore) -> None:
    reasons = {
        LeadStatus.OPEN: "new",
        LeadStatus.QUALIFIED: "qualified",
        LeadStatus.DISQUALIFIED: "lost",
    }
    records: list[Any] = []
    for n in range(60):
        status = list(reasons)[n % 3]
        records.append(
            lead(
                n,
                first_name="Ana" if n % 20 == 0 else "Bo",
                email=f"{'ana' if n % 20 == 0 else 'bo'}{n}@contoso.example",
                owner_id=f"u{n % 7}",
                status=status,
                status_reason=reasons[status],
            )
        )
        records.append(
            Activity(
                id=f"act-{n}",
                created_at=T0,
                modified_at=T0,
                kind=ActivityKind.TASK,
                subject="Call",
                regarding=records[-1].ref,
            )
        )
    put(store, *records)
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:  # statistics, as autovacuum would
        conn.execute(f'ANALYZE "{store.schema}".sf_lead')
        conn.execute(f'ANALYZE "{store.schema}".sf_activity')


@needs_server
@pytest.mark.parametrize(
    ("view", "index"),
    [
        (LeadView.OPEN_LEADS, "sf_lead__status__created_at__id"),
        (LeadView.MY_OPEN_LEADS, "sf_lead__owner_id__status__created_at__id"),
        (LeadView.OPENED_THIS_WEEK, "sf_lead__created_at__status__id"),
    ],
)
def test_views_run_on_an_index(
    store: PostgresStore, statements: list[tuple[str, list[Any]]], view: LeadView, index: str
) -> None:
    fill(store)
    query = lead_view_query(
        view, now=T0 + timedelta(days=2), calendar=OrganizationCalendar(), user_id="u1"
    )
    statements.clear()
    with store.unit_of_work() as uow:
        uow.query(Lead, query)
    assert f" {index} " in plan(*statements[0]) + " "
    for sql, params in statements:
        assert "Seq Scan" not in plan(sql, params)


@needs_server
def test_quick_find_by_prefix_searches_each_key_on_its_index(
    store: PostgresStore, statements: list[tuple[str, list[Any]]]
) -> None:
    fill(store)
    statements.clear()
    with store.unit_of_work() as uow:
        uow.query(Lead, Query(search="ana", order_by=SortKey(field="created_at")))
    found = plan(*statements[0])
    assert "BitmapOr" in found
    for key in ("search_name", "search_company", "search_email", "search_topic"):
        assert f"on sf_lead__{key}" in found


@needs_server
def test_lookups_and_timelines_use_their_indexes(
    store: PostgresStore, statements: list[tuple[str, list[Any]]]
) -> None:
    fill(store)
    statements.clear()
    with store.unit_of_work() as uow:
        uow.find_by(Lead, "email_key", "bo7@contoso.example")
        uow.timeline(lead(7).ref)
    lookup, timeline = (plan(sql, params) for sql, params in statements)
    assert "sf_lead__email_key__modified_at__id" in lookup
    assert "sf_activity__regarding_kind__regarding_id__timeline_at__id" in timeline
    assert "Seq Scan" not in lookup + timeline


# --- migrate ----------------------------------------------------------------------------


def stored_schemas(schema: str) -> dict[str, Any]:
    """The ``"schema"`` of every stored lead document, by id."""
    import psycopg

    with psycopg.connect(DSN) as conn:
        rows = conn.execute(f"SELECT id, doc -> 'schema' FROM \"{schema}\".sf_lead").fetchall()
    return dict(rows)


@needs_server
def test_migrate_finds_old_documents_on_the_schema_index(
    store: PostgresStore, statements: list[tuple[str, list[Any]]]
) -> None:
    fill(store)
    statements.clear()
    assert store.migrate() == 0
    lead_queries = [(sql, params) for sql, params in statements if '"sf_lead"' in sql]
    assert len(lead_queries) == 3  # newer documents, documents without a number, old ones
    for sql, params in lead_queries:
        found = plan(sql, params)
        assert "sf_lead__doc_schema__id" in found
        assert "Seq Scan" not in found


@needs_server
def test_migrate_adds_the_schema_index_to_a_database_made_without_it(
    store: PostgresStore,
) -> None:
    import psycopg

    put(store, lead(1))
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'DROP INDEX "{store.schema}".sf_lead__doc_schema__id')
    assert store.migrate() == 0
    with psycopg.connect(DSN) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
            [store.schema, "sf_lead__doc_schema__id"],
        ).fetchall()
    assert found == [(1,)]


@needs_server
def test_stores_migrating_at_once_rewrite_each_record_once(store: PostgresStore) -> None:
    put(store, *[lead(n, custom={"tier": "gold"}) for n in range(40)])
    upgraded = [PostgresStore(DSN, schema=store.schema, codec=upgraded_codec()) for _ in range(3)]
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            counts = list(pool.map(lambda s: s.migrate(batch_size=5), upgraded))
        assert sum(counts) == 40
        assert upgraded[0].migrate() == 0
    finally:
        for opened in upgraded:
            opened.close()
    assert set(stored_schemas(store.schema).values()) == {2}


@needs_server
def test_a_newer_document_stops_migrate_before_anything_is_rewritten(
    store: PostgresStore,
) -> None:
    put(store, lead(1, custom={"tier": "gold"}))
    newer = PostgresStore(DSN, schema=store.schema, codec=Codec(current={RecordKind.CONTACT: 2}))
    put(newer, Contact(id="con-1", created_at=T0, modified_at=T0, last_name="Ruiz"))
    newer.close()
    upgraded = PostgresStore(DSN, schema=store.schema, codec=upgraded_codec())
    try:
        with pytest.raises(StoreError, match=r"'con-1' has schema 2, newer than"):
            upgraded.migrate()
    finally:
        upgraded.close()
    assert stored_schemas(store.schema) == {"lead-0001": 1}


@needs_server
@pytest.mark.parametrize("bad", ["'\"1\"'::jsonb", "'null'::jsonb", "'1.5'::jsonb", None])
def test_a_document_without_a_whole_schema_number_stops_migrate(
    store: PostgresStore, bad: str | None
) -> None:
    import psycopg

    put(store, lead(1), lead(2))
    change = "doc - 'schema'" if bad is None else f"jsonb_set(doc, '{{schema}}', {bad})"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"UPDATE \"{store.schema}\".sf_lead SET doc = {change} WHERE id = 'lead-0002'")
    upgraded = PostgresStore(DSN, schema=store.schema, codec=upgraded_codec())
    try:
        with pytest.raises(StoreError, match="no schema number"):
            upgraded.migrate()
    finally:
        upgraded.close()


# --- due items --------------------------------------------------------------------------


@needs_server
def test_a_second_connection_skips_the_items_a_unit_has_claimed(store: PostgresStore) -> None:
    other = PostgresStore(DSN, schema=store.schema)
    try:
        with store.unit_of_work() as uow:
            for n in range(1, 6):
                uow.schedule(due(n))
            uow.commit()
        with store.unit_of_work() as mine:
            assert [i.id for i in mine.claim_due(T0, 2)] == ["due-0001", "due-0002"]
            # In the same thread: SKIP LOCKED returns the other items at once, no waiting.
            with other.unit_of_work() as theirs:
                assert [i.id for i in theirs.claim_due(T0, 10)] == [
                    "due-0003",
                    "due-0004",
                    "due-0005",
                ]
                assert theirs.next_due_at() == T0  # it still counts claimed items
            # their unit rolled back: its items are claimable again, mine still are not
            with other.unit_of_work() as theirs:
                assert [i.id for i in theirs.claim_due(T0, 1)] == ["due-0003"]
            mine.complete_due("due-0001")
            mine.commit()
        with other.unit_of_work() as theirs:  # my unit ended: due-0002 is back, 0001 gone
            assert [i.id for i in theirs.claim_due(T0, 10)][:2] == ["due-0002", "due-0003"]
    finally:
        other.close()


@needs_server
def test_two_connections_scheduling_one_key_at_once_store_one_item(store: PostgresStore) -> None:
    other = PostgresStore(DSN, schema=store.schema)
    try:
        with store.unit_of_work() as mine:
            assert mine.schedule(due(1, key="k")) == due(1, key="k")
            with ThreadPoolExecutor(max_workers=1) as pool:

                def theirs() -> Any:
                    with other.unit_of_work() as uow:
                        got = uow.schedule(due(2, key="k"))  # waits on the unique index
                        uow.commit()
                        return got

                future = pool.submit(theirs)
                mine.commit()
                assert future.result(timeout=30) == due(1, key="k")
        with store.unit_of_work() as uow:
            assert [i.id for i in uow.due_items()] == ["due-0001"]
    finally:
        other.close()


@needs_server
def test_claiming_reads_the_due_index(store: PostgresStore) -> None:
    import psycopg

    with store.unit_of_work() as uow:
        for n in range(200):
            uow.schedule(due(n, minutes=n))
        uow.commit()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{store.schema}".sf_due')
        conn.execute("SET enable_seqscan = off")
        rows = conn.execute(
            f'EXPLAIN SELECT "doc" FROM "{store.schema}"."sf_due" WHERE "due_at" <= %s '
            'ORDER BY "due_at", "id" LIMIT 5 FOR UPDATE SKIP LOCKED',
            [T0],
        ).fetchall()
    assert "sf_due__due_at__id" in "\n".join(r[0] for r in rows)


def stamp_layout(schema: str, version: int, *drop: str) -> None:
    """Make the schema look like an older layout: drop ``drop`` and stamp ``version``."""
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        for table in drop:
            conn.execute(f'DROP TABLE "{schema}".{table}')
        conn.execute(
            f'UPDATE "{schema}".sf_meta SET value = %s WHERE key = %s',
            [str(version), "schema_version"],
        )


def layout(schema: str) -> tuple[str, set[str], set[str]]:
    """The stamped layout version, the tables and the indexes of ``schema``."""
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        row = conn.execute(
            f'SELECT value FROM "{schema}".sf_meta WHERE key = %s', ["schema_version"]
        ).fetchone()
        version = "" if row is None else str(row[0])
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]
            ).fetchall()
        }
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", [schema]
            ).fetchall()
        }
    return version, tables, indexes


SEQUENCE_INDEXES = {"sf_enrollments__record", "sf_enrollments__sequence"}
INTERACTION_INDEXES = {
    "sf_interactions__contact_id",
    "sf_interactions__lead_id",
    "sf_interactions__account_id",
}
SCORE_INDEXES = {"sf_scores__lead_id__model_id__scored_at__seq"}


def use_sequences(store: Store) -> None:
    """Store and read back a definition and an enrollment (the layout 3 tables)."""
    with store.unit_of_work() as uow:
        uow.add_definition(definition("seq-a"))
        uow.add_enrollment(enrollment(1))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.definitions("sequence") == [definition("seq-a")]
        assert uow.enrollments(running=True) == [enrollment(1)]


def use_interactions(store: Store) -> None:
    """Store and read back interactions (the layout 4 table)."""
    with store.unit_of_work() as uow:
        uow.add_interaction(interaction(1, lead_id="l1", account_id="a1"))
        uow.add_interaction(interaction(2, contact_id="c2"))
        uow.commit()
    with store.unit_of_work() as uow:
        found = uow.interactions(contact_ids=["c2"], lead_id="l1", account_id="a1", since=T0)
        assert found == [
            interaction(1, lead_id="l1", account_id="a1"),
            interaction(2, contact_id="c2"),
        ]


def use_scores(store: Store) -> None:
    """Store and read back lead scores (the layout 5 table)."""
    with store.unit_of_work() as uow:
        uow.add_score(score(1, 0))
        uow.add_score(score(2, 0))
        uow.add_score(score(3, 5, model_id="m2", lead_id="l2"))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.scores("l1") == [score(2, 0)]
        assert uow.score_history("l1") == [score(1, 0), score(2, 0)]
        assert uow.scores("l2") == [score(3, 5, model_id="m2", lead_id="l2")]


def use_states(store: Store) -> None:
    """Create, change and read back running state (the layout 6 table)."""
    with store.unit_of_work() as uow:
        uow.put_state("process_flow", "lead/l1", {"stage": "a"}, expected_version=None, now=T0)
        uow.put_state("routing", "team", {"next": [1]}, expected_version=None, now=T0)
        uow.commit()
    with store.unit_of_work() as uow:
        uow.put_state("process_flow", "lead/l1", {"stage": "b"}, expected_version=1, now=T0)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.states("process_flow") == [
            StateDocument(
                kind="process_flow",
                key="lead/l1",
                version=2,
                document={"stage": "b"},
                updated_at=T0,
            )
        ]
        assert uow.get_state("routing", "team") == StateDocument(
            kind="routing", key="team", version=1, document={"next": [1]}, updated_at=T0
        )


@needs_server
def test_a_database_at_layout_1_gets_the_newer_tables_when_opened(store: PostgresStore) -> None:
    put(store, lead(1))
    store.close()
    stamp_layout(
        store.schema,
        1,
        "sf_due",
        "sf_definitions",
        "sf_enrollments",
        "sf_interactions",
        "sf_scores",
        "sf_states",
    )
    upgraded = PostgresStore(DSN, schema=store.schema)
    try:
        with upgraded.unit_of_work() as uow:
            assert uow.get(Lead, "lead-0001") == lead(1)  # what layout 1 held stays
            uow.schedule(due(1))
            uow.commit()
        with upgraded.unit_of_work() as uow:
            assert [i.id for i in uow.claim_due(T0, 1)] == ["due-0001"]
        use_sequences(upgraded)
        use_interactions(upgraded)
        use_scores(upgraded)
        use_states(upgraded)
    finally:
        upgraded.close()
    version, _, indexes = layout(store.schema)
    assert version == str(STORE_SCHEMA_VERSION)
    assert indexes >= {"sf_due__due_at__id", "sf_due__key", "sf_due__subject"}
    assert indexes >= SEQUENCE_INDEXES | INTERACTION_INDEXES | SCORE_INDEXES


@needs_server
def test_a_database_at_layout_2_gets_the_definition_enrollment_interaction_score_state_tables(
    store: PostgresStore,
) -> None:
    put(store, lead(1))
    with store.unit_of_work() as uow:
        uow.schedule(due(1))
        uow.commit()
    store.close()
    newer = {"sf_definitions", "sf_enrollments", "sf_interactions", "sf_scores", "sf_states"}
    stamp_layout(store.schema, 2, *sorted(newer))
    assert layout(store.schema)[1].isdisjoint(newer)
    upgraded = PostgresStore(DSN, schema=store.schema)
    try:
        with upgraded.unit_of_work() as uow:  # what layout 2 held stays
            assert uow.get(Lead, "lead-0001") == lead(1)
            assert [i.id for i in uow.due_items()] == ["due-0001"]
        use_sequences(upgraded)
        use_interactions(upgraded)
        use_scores(upgraded)
        use_states(upgraded)
    finally:
        upgraded.close()
    version, tables, indexes = layout(store.schema)
    assert version == str(STORE_SCHEMA_VERSION)
    assert tables >= newer
    assert indexes >= SEQUENCE_INDEXES | INTERACTION_INDEXES | SCORE_INDEXES


@needs_server
def test_a_database_at_layout_3_gets_the_interaction_score_and_state_tables(
    store: PostgresStore,
) -> None:
    put(store, lead(1))
    use_sequences(store)
    store.close()
    stamp_layout(store.schema, 3, "sf_interactions", "sf_scores", "sf_states")
    assert layout(store.schema)[1].isdisjoint({"sf_interactions", "sf_scores", "sf_states"})
    upgraded = PostgresStore(DSN, schema=store.schema)
    try:
        with upgraded.unit_of_work() as uow:  # what layout 3 held stays
            assert uow.get(Lead, "lead-0001") == lead(1)
            assert uow.definitions("sequence") == [definition("seq-a")]
            assert uow.enrollments() == [enrollment(1)]
        use_interactions(upgraded)
        use_scores(upgraded)
        use_states(upgraded)
    finally:
        upgraded.close()
    version, tables, indexes = layout(store.schema)
    assert version == str(STORE_SCHEMA_VERSION)
    assert tables >= {"sf_interactions", "sf_scores", "sf_states"}
    assert indexes >= INTERACTION_INDEXES | SCORE_INDEXES


@needs_server
def test_a_database_at_layout_4_gets_the_score_and_state_tables(store: PostgresStore) -> None:
    put(store, lead(1))
    use_sequences(store)
    use_interactions(store)
    store.close()
    stamp_layout(store.schema, 4, "sf_scores", "sf_states")
    assert layout(store.schema)[1].isdisjoint({"sf_scores", "sf_states"})
    upgraded = PostgresStore(DSN, schema=store.schema)
    try:
        with upgraded.unit_of_work() as uow:  # what layout 4 held stays
            assert uow.get(Lead, "lead-0001") == lead(1)
            assert uow.enrollments() == [enrollment(1)]
            assert uow.find_interaction("int-0002") == interaction(2, contact_id="c2")
        use_scores(upgraded)
        use_states(upgraded)
    finally:
        upgraded.close()
    version, tables, indexes = layout(store.schema)
    assert version == str(STORE_SCHEMA_VERSION)
    assert tables >= {"sf_scores", "sf_states"}
    assert indexes >= SCORE_INDEXES


@needs_server
def test_a_database_at_layout_5_gets_the_state_table(store: PostgresStore) -> None:
    put(store, lead(1))
    use_sequences(store)
    use_interactions(store)
    use_scores(store)
    store.close()
    stamp_layout(store.schema, 5, "sf_states")
    assert "sf_states" not in layout(store.schema)[1]
    upgraded = PostgresStore(DSN, schema=store.schema)
    try:
        with upgraded.unit_of_work() as uow:  # what layout 5 held stays
            assert uow.get(Lead, "lead-0001") == lead(1)
            assert uow.enrollments() == [enrollment(1)]
            assert uow.find_interaction("int-0002") == interaction(2, contact_id="c2")
            assert uow.score_history("l1") == [score(1, 0), score(2, 0)]
            assert uow.states("process_flow") == []
        use_states(upgraded)
    finally:
        upgraded.close()
    version, tables, _ = layout(store.schema)
    assert version == str(STORE_SCHEMA_VERSION)
    assert "sf_states" in tables


def test_a_database_at_layout_10_gets_the_outbox(store: PostgresStore) -> None:
    from salesflow.outbox import OutboxEntry

    put(store, lead(1))
    store.close()
    stamp_layout(store.schema, 10, "sf_outbox")
    assert "sf_outbox" not in layout(store.schema)[1]
    upgraded = PostgresStore(DSN, schema=store.schema)
    kept = OutboxEntry(id="o1", created_at=T0, events=[{"type": "LeadCreated", "lead_id": "x"}])
    try:
        with upgraded.unit_of_work() as uow:
            assert uow.get(Lead, "lead-0001") == lead(1)  # what layout 10 held stays
            uow.put_outbox(kept)
            uow.commit()
        with upgraded.unit_of_work() as uow:
            assert uow.claim_outbox(T0, 5) == [kept]
    finally:
        upgraded.close()
    version, tables, indexes = layout(store.schema)
    assert version == str(STORE_SCHEMA_VERSION) == "13"
    assert "sf_outbox" in tables
    assert "sf_outbox__created_at__id" in indexes
    assert "sf_scores__model_id__lead_id" in indexes


def test_two_deliverers_never_claim_the_same_outbox_entry(store: PostgresStore) -> None:
    from salesflow.outbox import OutboxEntry

    with store.unit_of_work() as uow:
        for n in range(4):
            uow.put_outbox(OutboxEntry(id=f"o{n}", created_at=T0, events=[{"type": "LeadCreated"}]))
        uow.commit()
    other = PostgresStore(DSN, schema=store.schema)
    try:
        with store.unit_of_work() as first, other.unit_of_work() as second:
            mine = [e.id for e in first.claim_outbox(T0, 3)]
            theirs = [e.id for e in second.claim_outbox(T0, 3)]
            assert (mine, theirs) == (["o0", "o1", "o2"], ["o3"])
    finally:
        other.close()


@needs_server
def test_definitions_enrollments_and_interactions_live_in_the_stores_schema(
    schemas: list[str],
) -> None:
    first = PostgresStore(DSN, schema=private_schema(schemas))
    second = PostgresStore(DSN, schema=private_schema(schemas))
    try:
        use_sequences(first)
        use_interactions(first)
        use_scores(first)
        use_states(first)
        with second.unit_of_work() as uow:
            assert uow.definitions("sequence") == []
            assert uow.enrollments() == []
            assert uow.find_interaction("int-0001") is None
            assert uow.score_history("l1") == []
            assert uow.states("process_flow") == []
        use_sequences(second)  # the same ids again, in another schema
        use_interactions(second)
        use_scores(second)
        use_states(second)
    finally:
        first.close()
        second.close()
    for name in schemas:
        assert layout(name)[1] >= {
            "sf_definitions",
            "sf_enrollments",
            "sf_interactions",
            "sf_scores",
            "sf_states",
        }


@needs_server
def test_migrate_leaves_definitions_enrollments_interactions_scores_and_states_alone(
    store: PostgresStore,
) -> None:
    put(store, lead(1, custom={"tier": "gold"}))
    use_sequences(store)
    use_interactions(store)
    use_scores(store)
    use_states(store)
    upgraded = PostgresStore(DSN, schema=store.schema, codec=upgraded_codec())
    try:
        assert upgraded.migrate() == 1  # the lead only
        assert upgraded.migrate() == 0
        with upgraded.unit_of_work() as uow:
            assert uow.find_definition("sequence", "seq-a") == definition("seq-a")
            assert uow.find_enrollment("enr-0001") == enrollment(1)
            assert uow.find_interaction("int-0002") == interaction(2, contact_id="c2")
            assert uow.score_history("l1") == [score(1, 0), score(2, 0)]
            found = uow.get_state("process_flow", "lead/l1")
            assert found is not None
            assert (found.version, found.document) == (2, {"stage": "b"})
    finally:
        upgraded.close()


def wait_for_a_lock_on_scores(schema: str) -> None:
    """Return once a statement on ``schema``'s sf_scores waits for a lock (or after 10 s)."""
    import psycopg

    deadline = time.monotonic() + 10
    with psycopg.connect(DSN, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND strpos(query, %s) > 0",
                [f'"{schema}"."sf_scores"'],
            ).fetchall()
            if waiting:
                return
            time.sleep(0.02)
    pytest.fail("the second unit never waited for the first one's seq")


@needs_server
def test_two_connections_scoring_one_lead_at_once_keep_both_in_commit_order(
    store: PostgresStore,
) -> None:
    other = PostgresStore(DSN, schema=store.schema)
    try:
        with store.unit_of_work() as uow:
            uow.add_score(score(1))
            uow.commit()
        with store.unit_of_work() as mine:
            mine.add_score(score(2))  # takes the lead's next seq and holds it
            with ThreadPoolExecutor(max_workers=1) as pool:

                def theirs() -> None:
                    with other.unit_of_work() as uow:
                        # waits on the seq `mine` took, then takes the one after it
                        uow.add_score(score(3))
                        uow.add_score(score(4, lead_id="l2"))
                        uow.commit()

                future = pool.submit(theirs)
                wait_for_a_lock_on_scores(store.schema)
                mine.commit()
                future.result(timeout=30)
        with store.unit_of_work() as uow:
            # All three tie on scored_at: the one committed last is current.
            assert [s.points for s in uow.score_history("l1")] == [1, 2, 3]
            assert uow.scores("l1") == [score(3)]
            assert uow.scores("l2") == [score(4, lead_id="l2")]
    finally:
        other.close()


@needs_server
def test_of_two_connections_updating_one_enrollment_the_second_conflicts(
    store: PostgresStore,
) -> None:
    other = PostgresStore(DSN, schema=store.schema)
    try:
        with store.unit_of_work() as uow:
            uow.add_enrollment(enrollment(1))
            uow.commit()
        with store.unit_of_work() as mine:
            mine.update_enrollment(enrollment(1, current_step="mine", version=2))
            with ThreadPoolExecutor(max_workers=1) as pool:

                def theirs() -> Any:
                    with other.unit_of_work() as uow:
                        # waits on the row lock, then finds version 2, not 1
                        uow.update_enrollment(enrollment(1, current_step="theirs", version=2))
                        uow.commit()

                future = pool.submit(theirs)
                mine.commit()
                with pytest.raises(VersionConflict) as caught:
                    future.result(timeout=30)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        with store.unit_of_work() as uow:
            found = uow.find_enrollment("enr-0001")
        assert found is not None
        assert found.current_step == "mine"
    finally:
        other.close()


@needs_server
def test_enrollment_lookups_read_their_indexes(
    store: PostgresStore, statements: list[tuple[str, list[Any]]]
) -> None:
    import psycopg

    with store.unit_of_work() as uow:
        for n in range(200):
            uow.add_enrollment(enrollment(n, sequence_id=f"seq-{n % 10}"))
        uow.commit()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{store.schema}".sf_enrollments')
    statements.clear()
    with store.unit_of_work() as uow:
        uow.enrollments(record=enrollment(7).record)
        uow.enrollments(record=enrollment(7).record, running=True)
        uow.enrollments(sequence_id="seq-3")
        uow.enrollments(sequence_id="seq-3", running=True)
    found = [plan(sql, params) for sql, params in statements]
    assert len(found) == 4
    for by_record in found[:2]:
        assert "sf_enrollments__record" in by_record
    for by_sequence in found[2:]:
        assert "sf_enrollments__sequence" in by_sequence


@needs_server
def test_interaction_lookups_read_their_indexes(
    store: PostgresStore, statements: list[tuple[str, list[Any]]]
) -> None:
    import psycopg

    with store.unit_of_work() as uow:
        for n in range(300):
            uow.add_interaction(
                interaction(
                    n, contact_id=f"c{n % 30}", lead_id=f"l{n % 40}", account_id=f"a{n % 10}"
                )
            )
        uow.commit()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{store.schema}".sf_interactions')
    statements.clear()
    since = T0 + timedelta(hours=2)
    with store.unit_of_work() as uow:
        uow.interactions(contact_ids=["c1", "c2"])
        uow.interactions(lead_id="l3", since=since)
        uow.interactions(account_id="a4")
        uow.interactions(contact_ids=["c1", "c2"], lead_id="l3", account_id="a4")
        uow.interactions(contact_ids=["c1"], lead_id="l3", account_id="a4", since=since)
    by_contacts, by_lead, by_account, union, union_since = (
        plan(sql, params) for sql, params in statements
    )
    assert "sf_interactions__contact_id" in by_contacts
    assert "sf_interactions__lead_id" in by_lead
    assert "occurred_at >=" in by_lead  # `since` is a range on the index
    assert "sf_interactions__account_id" in by_account
    for found in (union, union_since):
        # One query, each term of the OR on its own index (no UNION to dedupe).
        assert "BitmapOr" in found
        for column in ("contact_id", "lead_id", "account_id"):
            assert f"sf_interactions__{column}" in found
    index_conds = [line for line in union_since.splitlines() if "Index Cond" in line]
    assert len(index_conds) == 3
    assert all("occurred_at >=" in line for line in index_conds)


@needs_server
def test_score_reads_use_the_score_index(
    store: PostgresStore, statements: list[tuple[str, list[Any]]]
) -> None:
    import psycopg

    with store.unit_of_work() as uow:
        for n in range(600):
            uow.add_score(score(n, n % 7, lead_id=f"l{n % 40}", model_id=f"m{n % 3}"))
        uow.commit()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{store.schema}".sf_scores')
    statements.clear()
    with store.unit_of_work() as uow:
        current = uow.scores("l3")
        uow.score_history("l3")
        uow.score_history("l3", "m1")
    assert len(current) == 3
    by_lead, history, by_model = (plan(sql, params) for sql, params in statements)
    for found in (by_lead, history):
        assert "sf_scores__lead_id__model_id__scored_at__seq" in found
    assert "WindowAgg" in by_lead  # one query: the current rows are picked in the database
    # One lead's rows of one model: either index that leads with both columns serves it.
    assert (
        "Index Cond: ((lead_id = 'l3'::text) AND (model_id = 'm1'::text))" in by_model
        or "Index Cond: ((model_id = 'm1'::text) AND (lead_id = 'l3'::text))" in by_model
    ), by_model


def wait_for_a_lock_on_states(schema: str) -> None:
    """Return once a statement on ``schema``'s sf_states waits for a lock (or fail
    after 10 s)."""
    import psycopg

    deadline = time.monotonic() + 10
    with psycopg.connect(DSN, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND strpos(query, %s) > 0",
                [f'"{schema}"."sf_states"'],
            ).fetchall()
            if waiting:
                return
            time.sleep(0.02)
    pytest.fail("the second unit never waited for the first one's row")


@needs_server
def test_of_two_connections_updating_one_state_at_one_version_the_second_conflicts(
    store: PostgresStore,
) -> None:
    other = PostgresStore(DSN, schema=store.schema)
    try:
        with store.unit_of_work() as uow:
            uow.put_state("routing", "team", {"next": 0}, expected_version=None, now=T0)
            uow.commit()
        with store.unit_of_work() as mine:
            read = mine.get_state("routing", "team")
            assert read is not None
            mine.put_state("routing", "team", {"next": 1}, expected_version=read.version, now=T0)
            with ThreadPoolExecutor(max_workers=1) as pool:

                def theirs() -> Any:
                    with other.unit_of_work() as uow:
                        seen = uow.get_state("routing", "team")
                        assert seen is not None
                        assert seen.version == 1  # my change is not committed yet
                        # waits on the row lock, then finds version 2, not 1
                        uow.put_state("routing", "team", {"next": 2}, expected_version=1, now=T0)
                        uow.commit()

                future = pool.submit(theirs)
                wait_for_a_lock_on_states(store.schema)
                assert not future.done()
                mine.commit()
                with pytest.raises(VersionConflict) as caught:
                    future.result(timeout=30)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        with other.unit_of_work() as uow:
            found = uow.get_state("routing", "team")
            assert found is not None
            assert (found.version, found.document) == (2, {"next": 1})
            # read again, their change goes through
            uow.put_state("routing", "team", {"next": 2}, expected_version=2, now=T0)
            uow.commit()
        with store.unit_of_work() as uow:
            found = uow.get_state("routing", "team")
            assert found is not None
            assert (found.version, found.document) == (3, {"next": 2})
    finally:
        other.close()


@needs_server
def test_of_two_connections_creating_one_state_the_second_finds_it_exists(
    store: PostgresStore,
) -> None:
    other = PostgresStore(DSN, schema=store.schema)
    try:
        with store.unit_of_work() as mine:
            mine.put_state("process_flow", "lead/l1", {"by": "me"}, expected_version=None, now=T0)
            with ThreadPoolExecutor(max_workers=1) as pool:

                def theirs() -> Any:
                    with other.unit_of_work() as uow:
                        with pytest.raises(AlreadyExists):
                            # waits on the primary key, then inserts nothing
                            uow.put_state(
                                "process_flow",
                                "lead/l1",
                                {"by": "them"},
                                expected_version=None,
                                now=T0,
                            )
                        # the refusal left their transaction usable
                        uow.put_state(
                            "process_flow", "lead/l2", {"by": "them"}, expected_version=None, now=T0
                        )
                        uow.commit()

                future = pool.submit(theirs)
                wait_for_a_lock_on_states(store.schema)
                mine.commit()
                future.result(timeout=30)
        with store.unit_of_work() as uow:
            found = uow.states("process_flow")
        assert [(s.key, s.version, s.document) for s in found] == [
            ("lead/l1", 1, {"by": "me"}),
            ("lead/l2", 1, {"by": "them"}),
        ]
    finally:
        other.close()


@needs_server
def test_state_reads_use_the_primary_key(
    store: PostgresStore, statements: list[tuple[str, list[Any]]]
) -> None:
    import psycopg

    with store.unit_of_work() as uow:
        for n in range(300):
            kind = ("process_flow", "routing", "other")[n % 3]
            uow.put_state(kind, f"key-{n:04d}", {"n": n}, expected_version=None, now=T0)
        uow.commit()
    statements.clear()
    with store.unit_of_work() as uow:
        assert uow.get_state("routing", "key-0004") is not None
        assert len(uow.states("routing")) == 100
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{store.schema}".sf_states')
    assert len(statements) == 2
    # For a hundred rows PostgreSQL may prefer a bitmap scan and a small sort to
    # reading the key in order; either way it reads the primary key, not the table.
    for sql, params in statements:
        assert "sf_states_pkey" in plan(sql, params)


@needs_server
def test_a_database_at_layout_6_gets_the_new_opportunity_column(store: PostgresStore) -> None:
    import psycopg

    from salesflow.opportunity import Opportunity, set_lines
    from salesflow.pricing import OpportunityLine, PriceList
    from salesflow.values import Money

    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    old = Opportunity(id="opp-1", created_at=t0, modified_at=t0, name="Before lines")
    put(store, old)
    store.close()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{store.schema}".sf_opportunity DROP COLUMN "price_list_id"')
    stamp_layout(store.schema, 6)
    upgraded = PostgresStore(DSN, schema=store.schema)
    try:
        with upgraded.unit_of_work() as uow:
            assert uow.get(Opportunity, "opp-1") == old  # what layout 6 held stays
            prices = PriceList(id="eu", name="EU", currency="EUR", items={})
            fee = Money(amount="100", currency="EUR")
            line = OpportunityLine(description="Setup", quantity=Decimal(1), unit_price=fee)
            lined, _ = set_lines(old, [line], price_list=prices, now=t0)
            uow.update(lined)
            uow.commit()
        with upgraded.unit_of_work() as uow:
            assert uow.get(Opportunity, "opp-1").price_list_id == "eu"
            found = uow.query(Opportunity, Query(where=field("price_list_id").eq("eu")))
            assert [o.id for o in found.items] == ["opp-1"]
    finally:
        upgraded.close()
    assert layout(store.schema)[0] == str(STORE_SCHEMA_VERSION)
