"""SQLiteStore runs the store contract, plus what only SQLite has: the file, WAL,
the write lock, query plans and the layout version."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from tests.stores.sql_checks import check_option_walk

from salesflow.activity import Activity, ActivityKind
from salesflow.conditions import any_of, field
from salesflow.definitions import StateDocument
from salesflow.errors import StoreError, ValidationError
from salesflow.lead import Lead, LeadStatus
from salesflow.party import Contact
from salesflow.stores import sqlite as sqlite_module
from salesflow.stores.base import Query, SortKey, Store, sort_order
from salesflow.stores.codec import Codec
from salesflow.stores.memory import MemoryStore
from salesflow.stores.sql import STORE_SCHEMA_VERSION, SQLUnit
from salesflow.stores.sql_dialect import option_rank
from salesflow.stores.sqlite import SQLiteStore
from salesflow.stores.url import open_store
from salesflow.testing.contract import StoreContract, due, tier_to_segment, upgraded_codec
from salesflow.testing.contract_interactions import interaction
from salesflow.testing.contract_records import T0, lead
from salesflow.testing.contract_scores import score
from salesflow.testing.contract_sequences import definition, enrollment
from salesflow.values import RecordKind
from salesflow.views import LeadView, lead_view_query
from salesflow.worktime import OrganizationCalendar

_names = itertools.count()


class TestSQLiteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path

    def make_store(self) -> Store:
        return SQLiteStore(self.folder / f"store-{next(_names)}.db")

    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        assert isinstance(store, SQLiteStore)
        store.close()
        return SQLiteStore(store.path, codec=codec)

    def other_store(self, store: Store) -> Store:
        assert isinstance(store, SQLiteStore)
        return SQLiteStore(store.path)  # a second connection: waits for the write lock


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(path)
    yield opened
    opened.close()


def put(store: Store, *records: Any) -> None:
    with store.unit_of_work() as uow:
        for record in records:
            uow.add(record)
        uow.commit()


def test_the_database_is_in_wal_mode(store: SQLiteStore, path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_unit_holds_the_write_lock_from_its_start(store: SQLiteStore, path: Path) -> None:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with store.unit_of_work() as uow:
            uow.find(Lead, "lead-0001")  # a writing unit holds it even while it reads
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_read_only_unit_takes_no_write_lock(store: SQLiteStore, path: Path) -> None:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with store.unit_of_work(read_only=True) as uow:
            uow.find(Lead, "lead-0001")
            other.execute("BEGIN IMMEDIATE")  # the write lock is free
            other.execute("ROLLBACK")
    finally:
        other.close()


def test_the_engines_queries_run_while_another_process_holds_the_write_lock(
    path: Path,
) -> None:
    from salesflow import FakeClock, Salesflow
    from salesflow.views import LeadView

    engine = Salesflow(SQLiteStore(path, busy_timeout=0), clock=FakeClock(T0))
    made = engine.create_lead(topic="Kiosk", last_name="Berg")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a worker's write batch, say
    try:
        assert engine.get_lead(made.id) == made
        assert [lead.id for lead in engine.lead_view(LeadView.ALL_LEADS).items] == [made.id]
        assert engine.timeline(made) == []
        with pytest.raises(StoreError, match="write lock"):
            engine.create_lead(topic="Kiosk 2", last_name="Berg")  # writes still wait
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.close()


def test_other_connections_see_only_committed_units(store: SQLiteStore, path: Path) -> None:
    reader = sqlite3.connect(path)
    try:
        with store.unit_of_work() as uow:
            uow.add(lead(1))
            assert reader.execute('SELECT COUNT(*) FROM "sf_lead"').fetchone() == (0,)
            uow.commit()
        assert reader.execute('SELECT COUNT(*) FROM "sf_lead"').fetchone() == (1,)
    finally:
        reader.close()


def test_a_unit_gives_up_when_another_process_keeps_the_write_lock(path: Path) -> None:
    impatient = SQLiteStore(path, busy_timeout=0)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="write lock"), impatient.unit_of_work():
            pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with impatient.unit_of_work() as uow:
        assert uow.find(Lead, "lead-0001") is None
    impatient.close()


def test_work_after_commit_needs_another_commit(store: SQLiteStore) -> None:
    with store.unit_of_work() as uow:
        uow.add(lead(1))
        uow.commit()
        uow.add(lead(2))
    with store.unit_of_work() as uow:
        assert uow.find(Lead, "lead-0001") is not None
        assert uow.find(Lead, "lead-0002") is None


def test_a_nested_unit_in_one_thread_is_refused(store: SQLiteStore) -> None:
    with store.unit_of_work(), pytest.raises(StoreError, match="already open"):
        store.unit_of_work().__enter__()


def test_a_closed_store_refuses_work(store: SQLiteStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"), store.unit_of_work():
        pass
    store.close()  # closing twice is harmless


def test_a_database_from_a_newer_salesflow_is_refused(store: SQLiteStore, path: Path) -> None:
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE sf_meta SET value = ? WHERE key = 'schema_version'",
            [str(STORE_SCHEMA_VERSION + 1)],
        )
    with pytest.raises(StoreError, match="newer salesflow"):
        SQLiteStore(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("these are not the records you are looking for\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.txt"):
        SQLiteStore(junk)


def test_non_finite_custom_numbers_are_refused_and_nothing_is_stored(store: SQLiteStore) -> None:
    with store.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="finite"):
            uow.add(lead(1, custom={"score": float("nan")}))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.find(Lead, "lead-0001") is None


def test_an_in_memory_database_works() -> None:
    store = SQLiteStore(":memory:")
    put(store, lead(1, rating="hot"))
    with store.unit_of_work() as uow:
        assert uow.query(Lead, Query(where=field("rating").eq("hot"))).total == 1
    store.close()


def test_mixed_custom_values_group_like_the_memory_store(store: SQLiteStore) -> None:
    values: list[Any] = [1, 1.0, True, 2, "2", None, 0.5, False, 0]
    records = [lead(i, custom={"x": v}) for i, v in enumerate(values)]
    memory = MemoryStore()
    for target in (store, memory):
        put(target, *records)
    query = Query(where=field("custom.x").not_in([0.5]))
    with store.unit_of_work() as uow, memory.unit_of_work() as reference:
        with pytest.raises(TypeError):  # str and int cannot be ordered, in either store
            reference.group_counts(Lead, query, "custom.x")
        with pytest.raises(TypeError):
            uow.group_counts(Lead, query, "custom.x")
        numbers = Query(where=field("custom.x").ge(0))
        assert uow.group_counts(Lead, numbers, "custom.x") == reference.group_counts(
            Lead, numbers, "custom.x"
        )


def test_values_outside_an_option_set_sort_after_it_by_text(store: SQLiteStore, path: Path) -> None:
    ratings = ["cold", "hot", None, "warm", "hot", "cold"]
    put(store, *[lead(n, rating=r) for n, r in enumerate(ratings, start=1)])
    # Only a newer salesflow (with more options) could write these; order stays total.
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sf_lead SET rating = 'zebra' WHERE id = 'lead-0005'")
        conn.execute("UPDATE sf_lead SET rating = 'aardvark' WHERE id = 'lead-0006'")
    up = ["lead-0003", "lead-0002", "lead-0004", "lead-0001", "lead-0006", "lead-0005"]
    values = [None, "hot", "warm", "cold", "aardvark", "zebra"]
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


def test_pages_and_bounded_counts_by_option_keep_values_outside_the_set(
    store: SQLiteStore, path: Path
) -> None:
    # status leads an index, so pages sorted by it and bounded group counts go one
    # value at a time (`option_groups`); text a newer salesflow wrote stays in both.
    statuses = ["open", "qualified", "open", "disqualified", "open", "open"]
    put(store, *[lead(n, status=s) for n, s in enumerate(statuses, start=1)])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sf_lead SET status = 'zebra' WHERE id = 'lead-0005'")
        conn.execute("UPDATE sf_lead SET status = 'aardvark' WHERE id = 'lead-0006'")
    check_option_walk(store)


def test_a_wide_search_walks_the_sort_and_finds_the_same_page(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from salesflow.stores.memory import MemoryStore

    names = ["Smith", "Smirnov", "Olsen", "Smart", "Kowalski", "Ruiz"]
    leads = [
        lead(n, last_name=names[n % 6], company_name=f"Co {n % 7}", first_name=f"S{n % 3}")
        for n in range(1, 301)
    ]
    memory = MemoryStore()
    put(store, *leads)
    put(memory, *leads)
    walked: list[str] = []
    original = SQLUnit._wide_search

    def spy(self: SQLUnit, table: Any, query: Query) -> bool:
        wide = original(self, table, query)
        walked.append(f"{query.search}:{wide}")
        return wide

    monkeypatch.setattr(SQLUnit, "_wide_search", spy)
    for term in ("smi", "sm", "s", "smith", "ru", "co 3"):
        for order in (
            (SortKey(field="created_at", descending=True),),
            (SortKey(field="last_name"), SortKey(field="created_at")),
        ):
            for offset, limit in ((0, 5), (7, 3), (40, 10), (290, 20)):
                query = Query(search=term, order_by=order, offset=offset, limit=limit)
                with store.unit_of_work() as uow, memory.unit_of_work() as reference:
                    got, want = uow.query(Lead, query), reference.query(Lead, query)
                assert [r.id for r in got.items] == [r.id for r in want.items], (term, offset)
                assert got.total == want.total
    # Both plans ran: the walk for the common prefixes, the index lookup for the rare.
    assert "smi:True" in walked
    assert any(entry.endswith(":False") for entry in walked)


def test_option_ranks_quote_their_options() -> None:
    rank = option_rank('"x"', ["it's", "a"])
    with sqlite3.connect(":memory:") as conn:
        got = [
            conn.execute(f'SELECT {rank} FROM (SELECT ? AS "x")', [x]).fetchone()[0]
            for x in ["it's", "a", "b", "it", None]
        ]
    assert got == [0, 1, 2, 2, None]


# --- query plans ---------------------------------------------------------------------


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any]]]:
    """Every query the SQLite store runs, with its parameters."""
    seen: list[tuple[str, list[Any]]] = []
    original = sqlite_module._Session.fetch

    def fetch(self: Any, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        seen.append((sql, list(params)))
        return original(self, sql, params)

    monkeypatch.setattr(sqlite_module._Session, "fetch", fetch)
    return seen


def plan(path: Path, sql: str, params: list[Any]) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "\n".join(row[3] for row in rows)


def fill(store: SQLiteStore) -> None:
    statuses = [LeadStatus.OPEN, LeadStatus.QUALIFIED, LeadStatus.DISQUALIFIED]
    reasons = {
        LeadStatus.OPEN: "new",
        LeadStatus.QUALIFIED: "qualified",
        LeadStatus.DISQUALIFIED: "lost",
    }
    records: list[Any] = []
    for n in range(300):
        status = statuses[n % 3]
        records.append(
            lead(
                n,
                first_name="Ana",
                email=f"ana{n}@contoso.example",
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


@pytest.mark.parametrize(
    ("view", "index"),
    [
        (LeadView.OPEN_LEADS, "sf_lead__status__created_at__id"),
        (LeadView.MY_OPEN_LEADS, "sf_lead__owner_id__status__created_at__id"),
        (LeadView.OPENED_THIS_WEEK, "sf_lead__created_at__status__id"),
        (LeadView.ALL_LEADS, "sf_lead__created_at__status__id"),
    ],
)
def test_views_run_on_an_index(
    store: SQLiteStore,
    path: Path,
    statements: list[tuple[str, list[Any]]],
    view: LeadView,
    index: str,
) -> None:
    fill(store)
    query = lead_view_query(
        view, now=T0 + timedelta(days=2), calendar=OrganizationCalendar(), user_id="u1"
    )
    statements.clear()
    with store.unit_of_work() as uow:
        uow.query(Lead, query)
    page_sql, params = statements[0]
    page_plan = plan(path, page_sql, params)
    assert f"INDEX {index}" in page_plan
    for sql, params in statements:
        assert "SCAN sf_lead\n" not in plan(path, sql, params) + "\n"  # never a full scan


def test_quick_find_by_prefix_searches_each_key_on_its_index(
    store: SQLiteStore, path: Path, statements: list[tuple[str, list[Any]]]
) -> None:
    fill(store)
    statements.clear()
    with store.unit_of_work() as uow:
        uow.query(Lead, Query(search="ana", order_by=SortKey(field="created_at")))
    # Counting the matches (here, whether the search is wide) seeks each key's index.
    counted = next(s for s in statements if '"bounded"' in s[0])
    found = plan(path, *counted)
    assert "MULTI-INDEX OR" in found
    for key in ("search_name", "search_company", "search_email", "search_topic"):
        assert f"INDEX sf_lead__{key} ({key}>? AND {key}<?)" in found
    # Every lead matches "ana": the page walks the creation-time index instead.
    page = plan(path, *next(s for s in statements if s[0].startswith('SELECT "doc"')))
    assert "sf_lead__created_at__status__id" in page
    assert "MULTI-INDEX OR" not in page


def test_lookups_and_timelines_use_their_indexes(
    store: SQLiteStore, path: Path, statements: list[tuple[str, list[Any]]]
) -> None:
    fill(store)
    statements.clear()
    with store.unit_of_work() as uow:
        uow.find_by(Lead, "email_key", "ana7@contoso.example")
        uow.timeline(lead(7).ref)
    lookup, timeline = (plan(path, sql, params) for sql, params in statements)
    assert "INDEX sf_lead__email_key__modified_at__id (email_key=?)" in lookup
    assert "INDEX sf_activity__regarding_kind__regarding_id__timeline_at__id" in timeline
    assert "TEMP B-TREE" not in timeline  # the index gives the order too


def test_a_lead_query_by_parent_reads_the_partial_parent_indexes(
    store: SQLiteStore, path: Path, statements: list[tuple[str, list[Any]]]
) -> None:
    put(store, lead(1, parent_contact_id="c1"), lead(2, parent_account_id="a1"), lead(3))
    statements.clear()
    either = any_of(
        field("parent_contact_id").in_(["c1", "c2"]), field("parent_account_id").eq("a1")
    )
    with store.unit_of_work() as uow:
        found = uow.query(Lead, Query(where=either, count_limit=0))
    assert sorted(x.id for x in found.items) == ["lead-0001", "lead-0002"]
    (sql, params) = statements[-1]
    shown = plan(path, sql, params)
    assert "sf_lead__parent_contact_id__id" in shown
    assert "sf_lead__parent_account_id__id" in shown
    with sqlite3.connect(path) as conn:
        (entries,) = conn.execute(
            "SELECT COUNT(*) FROM sf_lead INDEXED BY sf_lead__parent_contact_id__id "
            "WHERE parent_contact_id IS NOT NULL"
        ).fetchone()
    assert entries == 1  # leads without the parent are not in the index


def test_a_database_at_layout_11_gets_the_parent_indexes(store: SQLiteStore, path: Path) -> None:
    put(store, lead(1, parent_contact_id="c1"))
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX sf_lead__parent_contact_id__id")
        conn.execute("DROP INDEX sf_lead__parent_account_id__id")
        conn.execute("UPDATE sf_meta SET value = '11' WHERE key = 'schema_version'")
    SQLiteStore(path).close()
    version, _, indexes = layout(path)
    assert version == str(STORE_SCHEMA_VERSION) == "13"
    assert {"sf_lead__parent_contact_id__id", "sf_lead__parent_account_id__id"} <= indexes


# --- open_store -----------------------------------------------------------------------


def test_open_store_understands_each_url_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    memory = open_store("memory://")
    assert isinstance(memory, MemoryStore)
    relative = open_store("sqlite:///data/crm.db")
    assert isinstance(relative, SQLiteStore)
    assert (tmp_path / "data" / "crm.db").exists()
    absolute = open_store(f"sqlite:///{tmp_path / 'deep' / 'er' / 'crm.db'}")
    assert (tmp_path / "deep" / "er" / "crm.db").exists()
    in_memory = open_store("sqlite:///:memory:")
    assert isinstance(in_memory, SQLiteStore)
    for opened in (memory, relative, absolute, in_memory):
        put(opened, lead(1))
        opened.close()
    again = open_store("sqlite:///data/crm.db")
    with again.unit_of_work() as uow:
        assert uow.get(Lead, "lead-0001") == lead(1)
    again.close()


@pytest.mark.parametrize("url", ["", "sqlite://", "sqlite:///", "mysql://db", "crm.db", "memory:"])
def test_open_store_refuses_other_urls_naming_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValidationError, match=r"memory://.*sqlite:///.*postgresql://"):
        open_store(url)


def test_update_returns_the_stored_version(store: SQLiteStore) -> None:
    put(store, lead(1))
    with store.unit_of_work() as uow:
        saved = uow.update(attrs.evolve(uow.get(Lead, "lead-0001"), topic="New"))
        assert uow.get(Lead, "lead-0001") == saved
        uow.commit()


# --- migrate ----------------------------------------------------------------------------


def stored_schemas(path: Path, table: str = "sf_lead") -> dict[str, int]:
    """The schema number of every stored document of ``table``, by id."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT id, json_extract(doc, '$.schema') FROM {table}").fetchall()
    return dict(rows)


def test_migrate_commits_every_batch_of_at_most_batch_size_records(
    store: SQLiteStore, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(store, *[lead(n, custom={"tier": "gold"}) for n in range(7)])
    store.close()
    upgraded = SQLiteStore(path, codec=upgraded_codec())
    per_commit = [0]
    original_change = sqlite_module._Session.change
    original_commit = sqlite_module._Session.commit

    def change(self: Any, sql: str, params: Any = ()) -> int:
        changed = original_change(self, sql, params)
        if sql.startswith("UPDATE"):
            per_commit[-1] += changed
        return changed

    def commit(self: Any) -> None:
        original_commit(self)
        per_commit.append(0)

    monkeypatch.setattr(sqlite_module._Session, "change", change)
    monkeypatch.setattr(sqlite_module._Session, "commit", commit)
    try:
        assert upgraded.migrate(batch_size=3) == 7
    finally:
        upgraded.close()
    assert [n for n in per_commit if n] == [3, 3, 1]
    assert set(stored_schemas(path).values()) == {2}


def test_migrate_finds_old_documents_on_the_schema_index(
    store: SQLiteStore, path: Path, statements: list[tuple[str, list[Any]]]
) -> None:
    fill(store)
    statements.clear()
    assert store.migrate() == 0
    lead_queries = [(sql, params) for sql, params in statements if '"sf_lead"' in sql]
    assert len(lead_queries) == 3  # newer documents, documents without a number, old ones
    for sql, params in lead_queries:
        found = plan(path, sql, params)
        assert "INDEX sf_lead__doc_schema__id" in found
        assert "SCAN" not in found  # a sort of the few (usually no) rows found is fine


def test_migrate_adds_the_schema_index_to_a_database_made_without_it(
    store: SQLiteStore, path: Path
) -> None:
    put(store, lead(1))
    with sqlite3.connect(path) as conn:
        conn.execute('DROP INDEX "sf_lead__doc_schema__id"')
    assert store.migrate() == 0
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
            ["sf_lead__doc_schema__id"],
        ).fetchall()
    assert found == [(1,)]


def test_a_newer_document_stops_migrate_before_anything_is_rewritten(
    store: SQLiteStore, path: Path
) -> None:
    put(store, lead(1, custom={"tier": "gold"}))
    store.close()
    newer = SQLiteStore(path, codec=Codec(current={RecordKind.CONTACT: 2}))
    put(newer, Contact(id="con-1", created_at=T0, modified_at=T0, last_name="Ruiz"))
    newer.close()
    upgraded = SQLiteStore(path, codec=upgraded_codec())
    try:
        with pytest.raises(StoreError, match=r"'con-1' has schema 2, newer than"):
            upgraded.migrate()
    finally:
        upgraded.close()
    assert stored_schemas(path) == {"lead-0001": 1}


def test_a_document_without_a_schema_number_stops_migrate(store: SQLiteStore, path: Path) -> None:
    put(store, lead(1), lead(2))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sf_lead SET doc = json_remove(doc, '$.schema') WHERE id = 'lead-0002'")
    with pytest.raises(StoreError, match="no schema number"):
        store.migrate()


def test_a_failed_batch_keeps_the_batches_before_it_and_migrate_carries_on(
    store: SQLiteStore, path: Path
) -> None:
    put(store, *[lead(n, custom={"tier": "gold"}) for n in range(1, 7)])
    store.close()

    def fails_on_lead_5(doc: dict[str, Any]) -> dict[str, Any]:
        if doc["id"] == "lead-0005":
            raise StoreError("lead-0005 cannot be migrated yet")
        return tier_to_segment(doc)

    codec = Codec(migrations={(RecordKind.LEAD, 1): fails_on_lead_5}, current={RecordKind.LEAD: 2})
    broken = SQLiteStore(path, codec=codec)
    try:
        with pytest.raises(StoreError, match="cannot be migrated yet"):
            broken.migrate(batch_size=2)
    finally:
        broken.close()
    schemas = stored_schemas(path)
    assert [schemas[f"lead-{n:04d}"] for n in range(1, 7)] == [2, 2, 2, 2, 1, 1]
    fixed = SQLiteStore(path, codec=upgraded_codec())
    try:
        assert fixed.migrate(batch_size=2) == 2
        assert fixed.migrate() == 0
    finally:
        fixed.close()


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_migrate_refuses_a_batch_size_that_is_not_a_positive_whole_number(
    store: SQLiteStore, size: Any
) -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        store.migrate(batch_size=size)


def test_migrate_takes_its_turn_like_a_unit_of_work(store: SQLiteStore) -> None:
    with store.unit_of_work(), pytest.raises(StoreError, match="already open"):
        store.migrate()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.migrate()


# --- due items --------------------------------------------------------------------------


SEQUENCE_INDEXES = {"sf_enrollments__record", "sf_enrollments__sequence"}
INTERACTION_INDEXES = {
    "sf_interactions__contact_id",
    "sf_interactions__lead_id",
    "sf_interactions__account_id",
}
SCORE_INDEXES = {"sf_scores__lead_id__model_id__scored_at__seq"}


def layout(path: Path) -> tuple[str, set[str], set[str]]:
    """The stamped layout version, the tables and the indexes of the database."""
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute(
            "SELECT value FROM sf_meta WHERE key = 'schema_version'"
        ).fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    return version, tables, indexes


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


def test_a_database_at_layout_1_gets_the_newer_tables_when_opened(
    store: SQLiteStore, path: Path
) -> None:
    put(store, lead(1))
    store.close()
    with sqlite3.connect(path) as conn:
        for table in (
            "sf_due",
            "sf_definitions",
            "sf_enrollments",
            "sf_interactions",
            "sf_scores",
            "sf_states",
        ):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE sf_meta SET value = '1' WHERE key = 'schema_version'")
    upgraded = SQLiteStore(path)
    try:
        with upgraded.unit_of_work() as uow:
            assert uow.get(Lead, "lead-0001") == lead(1)  # what layout 1 held stays
            uow.schedule(due(1, key="k"))
            uow.commit()
        with upgraded.unit_of_work() as uow:
            assert [i.id for i in uow.claim_due(T0, 1)] == ["due-0001"]
        use_sequences(upgraded)
        use_interactions(upgraded)
        use_scores(upgraded)
        use_states(upgraded)
    finally:
        upgraded.close()
    version, _, indexes = layout(path)
    assert version == str(STORE_SCHEMA_VERSION)
    assert {"sf_due__due_at__id", "sf_due__key", "sf_due__subject"} <= indexes
    assert indexes >= SEQUENCE_INDEXES | INTERACTION_INDEXES | SCORE_INDEXES


def test_a_database_at_layout_2_gets_the_definition_enrollment_interaction_score_state_tables(
    store: SQLiteStore, path: Path
) -> None:
    put(store, lead(1))
    with store.unit_of_work() as uow:
        uow.schedule(due(1))
        uow.commit()
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE sf_definitions")
        conn.execute("DROP TABLE sf_enrollments")
        conn.execute("DROP TABLE sf_interactions")
        conn.execute("DROP TABLE sf_scores")
        conn.execute("DROP TABLE sf_states")
        conn.execute("UPDATE sf_meta SET value = '2' WHERE key = 'schema_version'")
    newer = {"sf_definitions", "sf_enrollments", "sf_interactions", "sf_scores", "sf_states"}
    assert layout(path)[1].isdisjoint(newer)
    upgraded = SQLiteStore(path)
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
    version, tables, indexes = layout(path)
    assert version == str(STORE_SCHEMA_VERSION)
    assert newer <= tables
    assert indexes >= SEQUENCE_INDEXES | INTERACTION_INDEXES | SCORE_INDEXES


def test_a_database_at_layout_3_gets_the_interaction_score_and_state_tables(
    store: SQLiteStore, path: Path
) -> None:
    put(store, lead(1))
    use_sequences(store)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE sf_interactions")
        conn.execute("DROP TABLE sf_scores")
        conn.execute("DROP TABLE sf_states")
        conn.execute("UPDATE sf_meta SET value = '3' WHERE key = 'schema_version'")
    assert layout(path)[1].isdisjoint({"sf_interactions", "sf_scores", "sf_states"})
    upgraded = SQLiteStore(path)
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
    version, tables, indexes = layout(path)
    assert version == str(STORE_SCHEMA_VERSION)
    assert {"sf_interactions", "sf_scores", "sf_states"} <= tables
    assert indexes >= INTERACTION_INDEXES | SCORE_INDEXES


def test_a_database_at_layout_4_gets_the_score_and_state_tables(
    store: SQLiteStore, path: Path
) -> None:
    put(store, lead(1))
    use_sequences(store)
    use_interactions(store)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE sf_scores")
        conn.execute("DROP TABLE sf_states")
        conn.execute("UPDATE sf_meta SET value = '4' WHERE key = 'schema_version'")
    assert layout(path)[1].isdisjoint({"sf_scores", "sf_states"})
    upgraded = SQLiteStore(path)
    try:
        with upgraded.unit_of_work() as uow:  # what layout 4 held stays
            assert uow.get(Lead, "lead-0001") == lead(1)
            assert uow.enrollments() == [enrollment(1)]
            assert uow.find_interaction("int-0002") == interaction(2, contact_id="c2")
        use_scores(upgraded)
        use_states(upgraded)
    finally:
        upgraded.close()
    version, tables, indexes = layout(path)
    assert version == str(STORE_SCHEMA_VERSION)
    assert {"sf_scores", "sf_states"} <= tables
    assert indexes >= SCORE_INDEXES


def test_a_database_at_layout_5_gets_the_state_table(store: SQLiteStore, path: Path) -> None:
    put(store, lead(1))
    use_sequences(store)
    use_interactions(store)
    use_scores(store)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE sf_states")
        conn.execute("UPDATE sf_meta SET value = '5' WHERE key = 'schema_version'")
    assert "sf_states" not in layout(path)[1]
    upgraded = SQLiteStore(path)
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
    version, tables, _ = layout(path)
    assert version == str(STORE_SCHEMA_VERSION)
    assert "sf_states" in tables


def test_a_database_at_layout_10_gets_the_outbox(store: SQLiteStore, path: Path) -> None:
    from salesflow.outbox import OutboxEntry

    put(store, lead(1))
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE sf_outbox")
        conn.execute("UPDATE sf_meta SET value = '10' WHERE key = 'schema_version'")
    assert "sf_outbox" not in layout(path)[1]
    upgraded = SQLiteStore(path)
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
    version, tables, indexes = layout(path)
    assert version == str(STORE_SCHEMA_VERSION) == "13"
    assert "sf_outbox" in tables
    assert "sf_outbox__created_at__id" in indexes
    assert "sf_scores__model_id__lead_id" in indexes


@pytest.mark.parametrize("value", [T0, float("nan"), {1, 2}])
def test_a_definition_document_that_is_not_json_is_refused(store: SQLiteStore, value: Any) -> None:
    with store.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="seq-a' version 1 cannot be stored"):
            uow.add_definition(definition("seq-a", document={"x": [value]}))
        assert uow.find_definition("sequence", "seq-a") is None


def test_migrate_leaves_definitions_enrollments_interactions_scores_and_states_alone(
    store: SQLiteStore, path: Path
) -> None:
    put(store, lead(1, custom={"tier": "gold"}))
    use_sequences(store)
    use_interactions(store)
    use_scores(store)
    use_states(store)
    store.close()
    upgraded = SQLiteStore(path, codec=upgraded_codec())
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


def test_claiming_reads_the_due_index(store: SQLiteStore, path: Path) -> None:
    with store.unit_of_work() as uow:
        for n in range(50):
            uow.schedule(due(n, minutes=n))
        uow.commit()
    text = plan(
        path,
        'SELECT "doc" FROM "sf_due" WHERE "due_at" <= ? ORDER BY "due_at", "id" LIMIT 5',
        ["2026-03-02T10:00:00.000000+00:00"],
    )
    assert "sf_due__due_at__id" in text
    assert "TEMP B-TREE" not in text


def test_enrollment_lookups_read_their_indexes(
    store: SQLiteStore, path: Path, statements: list[tuple[str, list[Any]]]
) -> None:
    with store.unit_of_work() as uow:
        for n in range(200):
            uow.add_enrollment(enrollment(n, sequence_id=f"seq-{n % 10}"))
        uow.commit()
    statements.clear()
    with store.unit_of_work() as uow:
        uow.enrollments(record=enrollment(7).record)
        uow.enrollments(record=enrollment(7).record, running=True)
        uow.enrollments(sequence_id="seq-3")
        uow.enrollments(sequence_id="seq-3", running=True)
    by_record, by_record_running, by_sequence, by_sequence_running = (
        plan(path, sql, params) for sql, params in statements
    )
    for found in (by_record, by_record_running):
        assert "INDEX sf_enrollments__record (record_kind=? AND record_id=?)" in found
        assert "TEMP B-TREE" not in found  # the index gives the id order too
    for found in (by_sequence, by_sequence_running):
        assert "INDEX sf_enrollments__sequence (sequence_id=?" in found


def test_interaction_lookups_read_their_indexes(
    store: SQLiteStore, path: Path, statements: list[tuple[str, list[Any]]]
) -> None:
    with store.unit_of_work() as uow:
        for n in range(300):
            uow.add_interaction(
                interaction(
                    n, contact_id=f"c{n % 30}", lead_id=f"l{n % 40}", account_id=f"a{n % 10}"
                )
            )
        uow.commit()
    statements.clear()
    since = T0 + timedelta(hours=2)
    with store.unit_of_work() as uow:
        uow.interactions(contact_ids=["c1", "c2"])
        uow.interactions(lead_id="l3", since=since)
        uow.interactions(account_id="a4")
        uow.interactions(contact_ids=["c1", "c2"], lead_id="l3", account_id="a4")
        uow.interactions(contact_ids=["c1"], lead_id="l3", account_id="a4", since=since)
    by_contacts, by_lead, by_account, union, union_since = (
        plan(path, sql, params) for sql, params in statements
    )
    assert "INDEX sf_interactions__contact_id (contact_id=?)" in by_contacts
    assert "INDEX sf_interactions__lead_id (lead_id=? AND occurred_at>?)" in by_lead
    assert "INDEX sf_interactions__account_id (account_id=?)" in by_account
    assert "TEMP B-TREE" not in by_lead + by_account  # one index gives the order too
    for found in (union, union_since):
        # One query, each term of the OR on its own index (no UNION to dedupe).
        assert "MULTI-INDEX OR" in found
        assert "SCAN sf_interactions\n" not in found + "\n"
    assert "INDEX sf_interactions__contact_id (contact_id=?)" in union
    for column in ("contact_id", "lead_id", "account_id"):
        assert f"INDEX sf_interactions__{column} ({column}=? AND occurred_at>?)" in union_since


def test_score_reads_use_the_score_index(
    store: SQLiteStore, path: Path, statements: list[tuple[str, list[Any]]]
) -> None:
    with store.unit_of_work() as uow:
        for n in range(600):
            uow.add_score(score(n, n % 7, lead_id=f"l{n % 40}", model_id=f"m{n % 3}"))
        uow.commit()
    statements.clear()
    with store.unit_of_work() as uow:
        current = uow.scores("l3")
        uow.score_history("l3")
        uow.score_history("l3", "m1")
    assert len(current) == 3
    by_lead, history, by_model = (plan(path, sql, params) for sql, params in statements)
    assert "INDEX sf_scores__lead_id__model_id__scored_at__seq (lead_id=?)" in by_lead
    # The windows read the index in order; only the outer ORDER BY (over the current
    # rows, one per model) is sorted.
    assert by_lead.count("TEMP B-TREE") == 1
    assert "(lead_id=?)" in history
    assert (
        "INDEX sf_scores__lead_id__model_id__scored_at__seq (lead_id=? AND model_id=?)" in by_model
    )
    assert "TEMP B-TREE" not in by_model  # the index gives the order too
    for found in (by_lead, history, by_model):
        assert "SCAN sf_scores\n" not in found + "\n"  # never a full scan


def test_state_reads_use_the_primary_key(
    store: SQLiteStore, path: Path, statements: list[tuple[str, list[Any]]]
) -> None:
    with store.unit_of_work() as uow:
        for n in range(300):
            kind = ("process_flow", "routing", "other")[n % 3]
            uow.put_state(kind, f"key-{n:04d}", {"n": n}, expected_version=None, now=T0)
        uow.commit()
    statements.clear()
    with store.unit_of_work() as uow:
        found = uow.get_state("routing", "key-0004")
        listed = uow.states("routing")
    assert found is not None
    assert [s.key for s in listed] == [f"key-{n:04d}" for n in range(1, 300, 3)]
    one, every = (plan(path, sql, params) for sql, params in statements)
    assert "USING INDEX sqlite_autoindex_sf_states_1 (kind=? AND key=?)" in one
    assert "USING INDEX sqlite_autoindex_sf_states_1 (kind=?)" in every
    assert "TEMP B-TREE" not in every  # the key gives the order too


def test_a_database_at_layout_6_gets_the_new_opportunity_column(
    store: SQLiteStore, path: Path
) -> None:
    from decimal import Decimal

    from salesflow.opportunity import Opportunity, set_lines
    from salesflow.pricing import OpportunityLine, PriceList
    from salesflow.values import Money

    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    old = Opportunity(id="opp-1", created_at=t0, modified_at=t0, name="Before lines")
    put(store, old)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute('ALTER TABLE sf_opportunity DROP COLUMN "price_list_id"')
        conn.execute("UPDATE sf_meta SET value = '6' WHERE key = 'schema_version'")
    upgraded = SQLiteStore(path)
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
    assert layout(path)[0] == str(STORE_SCHEMA_VERSION)


def test_a_database_at_layout_7_gets_the_enrollment_connection_column(
    store: SQLiteStore, path: Path
) -> None:
    use_sequences(store)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute('DROP INDEX "sf_enrollments__connected"')
        conn.execute('ALTER TABLE sf_enrollments DROP COLUMN "connected_at"')
        conn.execute("UPDATE sf_meta SET value = '7' WHERE key = 'schema_version'")
    upgraded = SQLiteStore(path)
    try:
        with upgraded.unit_of_work() as uow:
            assert uow.enrollments() == [enrollment(1)]  # what layout 7 held stays
            connected = attrs.evolve(enrollment(2), connected_at=datetime(2026, 3, 2, tzinfo=UTC))
            uow.add_enrollment(connected)
            uow.commit()
        with upgraded.unit_of_work() as uow:
            assert uow.find_enrollment(connected.id) == connected
    finally:
        upgraded.close()
    version, _, indexes = layout(path)
    assert version == str(STORE_SCHEMA_VERSION)
    assert "sf_enrollments__connected" in indexes


def test_statements_with_inline_nulls_are_the_plain_ones_when_nothing_is_empty() -> None:
    # SQLite units write each None of a row as a literal NULL (`SQLUnit`'s
    # ``inline_nulls``); with no None the statement must be the plain one, and each
    # None must take exactly its own column's place.
    from salesflow.stores.codec import Codec
    from salesflow.stores.sql import Layout
    from salesflow.stores.sqlite import SQLiteDialect

    for table in Layout.build(SQLiteDialect(), Codec()).records.values():
        n = len(table.column_names)
        assert table.insert_sql_without((True,) * n) == table.insert_sql
        assert table.update_sql_without((True,) * (n + 1)) == table.update_sql
        last = table.column_names[-1]
        only_last = table.insert_sql_without((True,) * (n - 1) + (False,))
        assert only_last.count("NULL") == 1
        assert only_last.endswith('NULL) ON CONFLICT ("id") DO NOTHING')
        last_empty = (True,) * (n - 2) + (False, True, True)  # then the id and version
        assert f'"{last}" = NULL' in table.update_sql_without(last_empty)
