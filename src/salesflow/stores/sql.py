"""The SQL stores' shared core: the table layout and the unit of work.

`SQLiteStore` and `PostgresStore` keep the same tables and answer the same
queries; what differs between the two engines (column types, JSON access,
parameter style) is a `Dialect` (`salesflow.stores.sql_dialect`), and queries
compile to SQL in `salesflow.stores.sql_query`. This module turns records into
rows, builds the schema, migrates old documents and implements the unit of work
over a `Session` (one database transaction).

Layout: one table per record kind (``sf_lead``, ``sf_contact``, …). ``doc`` is
the codec document and the only thing read back; every queryable field (see
`columns_of`), the derived columns, the lookup keys and the search keys are
copied into typed, indexed columns at write time, so filters, sorts and
searches run as indexed SQL. (An option-set field sorts by the position of its
value among the options, a ``CASE`` expression the database sorts by instead of
reading an index in order.) ``folded`` holds the case-folded form of every
non-ASCII text value, because neither engine folds case the way Python's
`str.casefold` does; ASCII text is folded by SQL ``lower()`` in the "C" locale,
which is exact for ASCII. The document's ``"schema"`` number is indexed too:
after a codec upgrade, `migrate_documents` finds the rows that still hold an
older document and rewrites them, so the copied columns agree with the records.
Beside the record tables, ``sf_due`` keeps due items, ``sf_definitions`` and
``sf_enrollments`` (`salesflow.stores.sql_sequences`) definitions and enrollments,
``sf_interactions`` (`salesflow.stores.sql_interactions`) interactions, and
``sf_scores`` (`salesflow.stores.sql_scores`) the history of lead scores, and
``sf_states`` (`salesflow.stores.sql_states`) the engine's running state.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, TypeVar

import attrs

from salesflow.activity import Activity
from salesflow.conditions import Condition, all_of
from salesflow.conditions import field as fields
from salesflow.due import DueItem
from salesflow.errors import AlreadyExists, NotFound, StoreError, ValidationError, VersionConflict
from salesflow.stores.base import (
    Column,
    ColumnType,
    GroupCount,
    LookupKey,
    Page,
    Query,
    SortKey,
    bounded_group,
    check_claim,
    check_fields,
    columns_of,
    counted_total,
    derived_columns,
    group_count_bound,
    lookup_keys,
    search_keys,
    sort_order,
)
from salesflow.stores.codec import RECORD_TYPES, Codec, decode_due_item, encode_due_item
from salesflow.stores.sql_dialect import Dialect, Operand, Session, Transaction, dump_json, quote
from salesflow.stores.sql_groups import option_groups, other_values
from salesflow.stores.sql_interactions import InteractionTable, InteractionUnit
from salesflow.stores.sql_outbox import OutboxTable, OutboxUnit
from salesflow.stores.sql_query import (
    Params,
    documents_by_id,
    order_clause,
    prefix_range,
    where_clause,
)
from salesflow.stores.sql_reports import ReportUnit
from salesflow.stores.sql_rows import document_decoder, document_encoder, row_writer
from salesflow.stores.sql_scores import ScoreTable, ScoreUnit
from salesflow.stores.sql_sequences import SequenceTables, SequenceUnit
from salesflow.stores.sql_states import StateTable, StateUnit
from salesflow.values import Record, RecordKind, RecordRef

_IN_CHUNK = 500
"""How many values one ``IN (…)`` lookup carries (well under every parameter limit)."""

__all__ = [
    "MIGRATION_BATCH_SIZE",
    "STORE_SCHEMA_VERSION",
    "DueTable",
    "InteractionTable",
    "Layout",
    "OutboxTable",
    "SQLUnit",
    "ScoreTable",
    "SequenceTables",
    "StateTable",
    "Table",
    "migrate_documents",
    "open_schema",
]

R = TypeVar("R", bound=Record)

STORE_SCHEMA_VERSION = 12
"""The table layout this salesflow writes; a database stamped newer is refused, one
stamped older is upgraded when opened (the missing tables and indexes are created).

Layouts: 1, the record tables; 2, adds ``sf_due`` (due items); 3, adds
``sf_definitions`` and ``sf_enrollments`` (`salesflow.stores.sql_sequences`); 4, adds
``sf_interactions`` (`salesflow.stores.sql_interactions`); 5, adds ``sf_scores``
(`salesflow.stores.sql_scores`); 6, adds ``sf_states`` (`salesflow.stores.sql_states`);
7, adds ``sf_opportunity.price_list_id``; 8, adds ``sf_enrollments.connected_at`` and
its index; 9, adds the work list's indexes on ``sf_activity`` (``state`` and
``owner_id, state``, then due time, regarding record, created_at and id), which
replace ``(owner_id, id)``, and ``sf_best_scores`` (`salesflow.stores.sql_scores`);
10, replaces ``sf_lead (created_at, id)`` with ``(created_at, status, id)``; 11, adds
``sf_outbox`` (`salesflow.stores.sql_outbox`) and ``sf_scores (model_id, lead_id)``; 12,
adds the partial indexes ``sf_lead (parent_contact_id, id)`` and ``(parent_account_id,
id)`` over the leads that have that parent."""

MIGRATION_BATCH_SIZE = 1000
"""How many records `migrate_documents` rewrites per transaction unless told otherwise."""


@attrs.frozen
class _Index:
    name: str
    columns: tuple[str, ...]
    partial: bool = False
    """Only rows whose first column is set (``WHERE col IS NOT NULL``): for a column
    most rows leave empty, which then costs those rows' writes nothing."""


def _indexes(kind: RecordKind) -> tuple[_Index, ...]:
    names = {c.name for c in columns_of(kind)}
    wanted: list[tuple[str, ...]] = []
    named: dict[tuple[str, ...], str] = {}
    for lookup in lookup_keys(kind):
        wanted.append((lookup.name, "modified_at", "id"))
    for search in search_keys(kind):
        wanted.append((search.name,))
    # The standard lead views: open / mine, newest first.
    if kind is RecordKind.LEAD:
        wanted.append(("status", "created_at", "id"))
        wanted.append(("owner_id", "status", "created_at", "id"))
        # Newest first with the status in the index (layout 10): closed leads (two
        # statuses, so no one range of the index above) walk this one without
        # reading a row per entry to test its status.
        wanted.append(("created_at", "status", "id"))
    if kind is RecordKind.ACTIVITY:
        wanted.append(("regarding_kind", "regarding_id", "timeline_at", "id"))
        # The work list (layout 9): open activities, everyone's or one owner's, in
        # the order `salesflow.commands.worklist` reads them, so a page reads an
        # index range from its start instead of every open activity.
        order = ("due_at", "regarding_kind", "regarding_id", "created_at", "id")
        wanted.append(("state", *order))
        wanted.append(("owner_id", "state", *order))
        # Named, not spelled out: PostgreSQL cuts names at 63 bytes.
        named[("state", *order)] = "sf_activity__worklist"
        named[("owner_id", "state", *order)] = "sf_activity__worklist_by_owner"
    for name in ("status", "owner_id", "created_at", "modified_at"):
        # A longer index led by the same column already serves it.
        if name in names and not any(cols[0] == name for cols in wanted):
            wanted.append((name, "id"))
    kept = [
        cols
        for cols in wanted
        if not any(other != cols and other[: len(cols)] == cols for other in wanted)
    ]
    unique = list(dict.fromkeys(kept))
    indexes = [_Index(named.get(c, f"sf_{kind.value}__{'__'.join(c)}"), c) for c in unique]
    if kind is RecordKind.LEAD:
        # The children of a contact or account (layout 12): scoring re-scores them when
        # their parent changes or acts. Most leads have neither parent.
        indexes += [
            _Index(f"sf_lead__{name}__id", (name, "id"), partial=True)
            for name in ("parent_contact_id", "parent_account_id")
        ]
    return tuple(indexes)


def _leads_an_index(kind: RecordKind, name: str) -> bool:
    """Whether an index of ``kind``'s table starts with column ``name``: then a count
    of one value, or a test for other text, seeks it instead of reading the rows."""
    return any(index.columns[0] == name for index in _indexes(kind))


def _and(where: Condition | None, condition: Condition) -> Condition:
    return condition if where is None else all_of(where, condition)


class Table:
    """The table of one record kind: its columns, rows and statements.

    Args:
        kind: The record kind stored.
        dialect: The SQL engine.
        codec: Encodes records to the ``doc`` column and decodes them back.
    """

    def __init__(self, kind: RecordKind, dialect: Dialect, codec: Codec) -> None:
        self.kind = kind
        self.dialect = dialect
        self.codec = codec
        self.name = dialect.table(f"sf_{kind.value}")
        self.columns: tuple[Column, ...] = columns_of(kind) + derived_columns(kind)
        self.keys: tuple[LookupKey, ...] = lookup_keys(kind) + search_keys(kind)
        names = [c.name for c in self.columns] + [k.name for k in self.keys] + ["folded", "doc"]
        if len(set(names)) != len(names):
            raise StoreError(f"{kind.value} has clashing column names: {names}")
        self.column_names = tuple(names)
        self._operands = {c.name: dialect.column(c) for c in columns_of(kind)}
        self.indexes = _indexes(kind)
        p = dialect.placeholder
        marks = [dialect.json_placeholder if n in ("folded", "doc") else p for n in names]
        # ON CONFLICT keeps the transaction usable (PostgreSQL aborts it on errors)
        # and is safe against a concurrent insert of the same id.
        self.insert_sql = (
            f"INSERT INTO {self.name} ({', '.join(quote(n) for n in names)}) "
            f'VALUES ({", ".join(marks)}) ON CONFLICT ("id") DO NOTHING'
        )
        sets = ", ".join(
            f"{quote(n)} = {m}" for n, m in zip(names, marks, strict=True) if n != "id"
        )
        self.update_sql = f'UPDATE {self.name} SET {sets} WHERE "id" = {p} AND "version" = {p}'
        self._id_position = names.index("id")
        self.encode = document_encoder(codec, kind)
        self._decode = document_decoder(codec, kind)
        self._row = row_writer(kind, dialect, self.columns, self.keys, self.encode)
        # The index `migrate_documents` walks: the document's schema number, then id.
        self.schema_index = f"sf_{kind.value}__doc_schema__id"
        self.schema_index_sql = (
            f"CREATE INDEX IF NOT EXISTS {quote(self.schema_index)} ON {self.name} "
            f'(({dialect.document_schema()}), "id")'
        )

    def ddl(self) -> list[str]:
        """The statements that create the table and its indexes if missing."""
        d = self.dialect
        defs = []
        for column in self.columns:
            extra = ""
            if column.name == "id":
                extra = " PRIMARY KEY"
            elif column.name == "version":
                extra = " NOT NULL"
            defs.append(f"{quote(column.name)} {d.sql_type(column.type)}{extra}")
        defs.extend(f"{quote(k.name)} {d.sql_type(ColumnType.TEXT)}" for k in self.keys)
        defs.append(f'"folded" {d.doc_type}')
        defs.append(f'"doc" {d.doc_type} NOT NULL')
        statements = [f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(defs)})"]
        for index in self.indexes:
            terms = ", ".join(d.index_term(c) for c in index.columns)
            only = f" WHERE {quote(index.columns[0])} IS NOT NULL" if index.partial else ""
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {quote(index.name)} ON {self.name} ({terms}){only}"
            )
        statements.append(self.schema_index_sql)
        return statements

    def row(self, record: Record) -> list[Any]:
        """The values of every column for ``record``, in `column_names` order."""
        return self._row(record)

    def update_params(self, record: Record) -> list[Any]:
        """The parameters of `update_sql` that store ``record`` over its ``version - 1``."""
        values = self.row(record)
        del values[self._id_position]
        values.extend([record.id, record.version - 1])
        return values

    def rewrite(self, record: Record) -> tuple[str, list[Any]]:
        """The statement (and parameters) that stores ``record`` again at its own version.

        Every column is written as `row` writes it. The row is only changed while
        it still holds ``record.version`` and a document older than the current
        schema, so a concurrent update (or migration) of the row is never undone.
        """
        values = self.row(record)
        del values[self._id_position]
        mark, below = self.dialect.schema_param(self.current_schema())
        values.extend([record.id, record.version, below])
        return f"{self.update_sql} AND {self.dialect.document_schema()} < {mark}", values

    def current_schema(self) -> int:
        """The schema number the codec writes for this kind."""
        return self.codec.current_schema(self.kind)

    def decode(self, raw_doc: Any) -> Record:
        """The record stored in a ``doc`` column value."""
        return self._decode(self.dialect.load_json(raw_doc))

    def operand(self, name: str) -> Operand:
        """The operand of queryable field ``name`` (checked by the caller)."""
        if name.startswith("custom."):
            return self.dialect.custom(name[len("custom.") :])
        return self._operands[name]


class DueTable:
    """The ``sf_due`` table of due items and its statements.

    ``doc`` holds the item (`encode_due_item`) and is the only thing read back; the
    columns beside it serve the indexes: ``(due_at, id)`` for claiming in order, a
    unique index on ``key`` where it is set, and ``(subject_kind, subject_id)``.
    """

    COLUMNS = ("id", "kind", "due_at", "subject_kind", "subject_id", "key", "attempts", "doc")

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.name = dialect.table("sf_due")
        p = dialect.placeholder
        marks = [dialect.json_placeholder if c == "doc" else p for c in self.COLUMNS]
        # No conflict target: a clash on the id or on the key inserts nothing, and
        # PostgreSQL's transaction stays usable.
        self.insert_sql = (
            f"INSERT INTO {self.name} ({', '.join(quote(c) for c in self.COLUMNS)}) "
            f"VALUES ({', '.join(marks)}) ON CONFLICT DO NOTHING"
        )

    def ddl(self) -> list[str]:
        """The statements that create the table and its indexes if missing."""
        d = self.dialect
        text = d.sql_type(ColumnType.TEXT)
        when = d.sql_type(ColumnType.DATETIME)
        number = d.sql_type(ColumnType.INT)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.name} ("
            f'"id" {text} PRIMARY KEY, "kind" {text} NOT NULL, "due_at" {when} NOT NULL, '
            f'"subject_kind" {text}, "subject_id" {text}, "key" {text}, '
            f'"attempts" {number} NOT NULL, "doc" {d.doc_type} NOT NULL)',
            f'CREATE INDEX IF NOT EXISTS "sf_due__due_at__id" ON {self.name} ("due_at", "id")',
            f'CREATE UNIQUE INDEX IF NOT EXISTS "sf_due__key" ON {self.name} ("key") '
            f'WHERE "key" IS NOT NULL',
            f'CREATE INDEX IF NOT EXISTS "sf_due__subject" ON {self.name} '
            f'("subject_kind", "subject_id", "due_at", "id")',
        ]

    def row(self, item: DueItem) -> list[Any]:
        """The values of `COLUMNS` for ``item``."""
        subject = item.subject
        return [
            item.id,
            item.kind,
            self.dialect.store_value(ColumnType.DATETIME, item.due_at),
            None if subject is None else subject.kind.value,
            None if subject is None else subject.id,
            item.key,
            item.attempts,
            dump_json(encode_due_item(item), f"due item {item.id!r}"),
        ]

    def decode(self, raw_doc: Any) -> DueItem:
        """The item stored in a ``doc`` value."""
        return decode_due_item(self.dialect.load_json(raw_doc))


# --- schema ---------------------------------------------------------------------------


def open_schema(
    session: Session,
    dialect: Dialect,
    tables: Iterable[Table],
    *,
    before_changes: Callable[[], None] | None = None,
) -> None:
    """Create the tables and indexes if missing and stamp the layout version.

    Run inside one transaction, before any unit of work. A database already at
    this layout is only read: opening it needs no privilege to create objects
    and takes no table locks, which matters when many workers open one database.
    A database at an older layout is upgraded: every statement is ``IF NOT
    EXISTS``, so what the old layout has stays and what it lacks (``sf_due`` for
    layout 1, ``sf_definitions`` and ``sf_enrollments`` for layouts 1 and 2,
    ``sf_interactions`` for layouts 1 to 3, ``sf_scores`` for layouts 1 to 4,
    ``sf_states`` for layouts 1 to 5, the work list's activity indexes for layouts
    1 to 8, ``sf_outbox`` for layouts 1 to 10) is created, what a newer index
    replaces is dropped, and the new layout number is stamped.

    Args:
        session: The transaction to run in.
        dialect: The SQL engine.
        tables: The table of every record kind.
        before_changes: Called once before anything is created (PostgreSQL
            takes a lock there so that concurrent openers do not race).

    Raises:
        StoreError: the database was written by a newer salesflow.
    """
    meta = dialect.table("sf_meta")
    p = dialect.placeholder
    found: int | None = None
    if session.fetch(*dialect.table_exists("sf_meta")):
        rows = session.fetch(f'SELECT "value" FROM {meta} WHERE "key" = {p}', ["schema_version"])
        found = int(rows[0][0]) if rows else None
    if found is not None and found > STORE_SCHEMA_VERSION:
        raise StoreError(
            f"this database was written by a newer salesflow (store schema {found}; this "
            f"version understands up to {STORE_SCHEMA_VERSION}); upgrade salesflow to open it"
        )
    if found == STORE_SCHEMA_VERSION:
        return
    if before_changes is not None:
        before_changes()
    text = dialect.sql_type(ColumnType.TEXT)
    session.change(
        f'CREATE TABLE IF NOT EXISTS {meta} ("key" {text} PRIMARY KEY, "value" {text} NOT NULL)'
    )
    for table in tables:
        for statement in table.ddl():
            session.change(statement)
        if found is not None:
            _add_missing_columns(session, dialect, table)
    upgrading_to_9 = found is not None and found < 9
    if upgrading_to_9:
        # Layout 9's work-list index led by ``owner_id`` serves what this one did.
        session.change(f"DROP INDEX IF EXISTS {dialect.table('sf_activity__owner_id__id')}")
    if found is not None and found < 10:
        # Layout 10's (created_at, status, id) serves what this one did.
        session.change(f"DROP INDEX IF EXISTS {dialect.table('sf_lead__created_at__id')}")
    had_scores = upgrading_to_9 and bool(session.fetch(*dialect.table_exists("sf_scores")))
    sequences = SequenceTables(dialect)
    enrollment_columns = set()
    if found is not None and session.fetch(*dialect.table_exists("sf_enrollments")):
        enrollment_columns = {r[0] for r in session.fetch(*dialect.table_columns("sf_enrollments"))}
    extra = DueTable(dialect).ddl() + sequences.ddl()
    if enrollment_columns and "connected_at" not in enrollment_columns:
        extra += sequences.upgrade()
    extra.append(sequences.connected_index())
    extra += InteractionTable(dialect).ddl() + ScoreTable(dialect).ddl()
    extra += StateTable(dialect).ddl() + OutboxTable(dialect).ddl()
    for statement in extra:
        session.change(statement)
    if had_scores:
        ScoreTable(dialect).backfill(session)
    session.change(
        f'INSERT INTO {meta} ("key", "value") VALUES ({p}, {p}) '
        f'ON CONFLICT ("key") DO UPDATE SET "value" = excluded."value"',
        ["schema_version", str(STORE_SCHEMA_VERSION)],
    )


def _add_missing_columns(session: Session, dialect: Dialect, table: Table) -> None:
    """Give an existing record table the columns a newer record class has (layout 7
    added ``sf_opportunity.price_list_id``). A new column is empty on the old rows,
    which is right for a field that did not exist when they were written (it
    decodes to its default); no index covers it."""
    raw = f"sf_{table.kind.value}"
    have = {row[0] for row in session.fetch(*dialect.table_columns(raw))}
    types = {c.name: c.type for c in table.columns}
    for name in table.column_names:
        if name in have:
            continue
        sql_type = (
            dialect.doc_type
            if name in ("folded", "doc")
            else dialect.sql_type(types.get(name, ColumnType.TEXT))
        )
        session.change(f"ALTER TABLE {table.name} ADD COLUMN {quote(name)} {sql_type}")


# --- migration ------------------------------------------------------------------------


def migrate_documents(
    tables: Iterable[Table],
    transaction: Callable[[], AbstractContextManager[Transaction]],
    *,
    batch_size: int = MIGRATION_BATCH_SIZE,
    before_changes: Callable[[Session], None] | None = None,
) -> int:
    """Rewrite every row whose document is older than its codec's current schema.

    Rows are found by an index range on the document's schema number (the index is
    created first if the database predates it), so a database with nothing to
    migrate costs a few index probes. Each row is decoded (migrated) and written
    again with every column refreshed, at its own version (see `Table.rewrite`).

    Args:
        tables: The table of every record kind.
        transaction: Opens a new transaction; leaving it without commit rolls back.
        batch_size: How many rows one transaction rewrites at most, so a big table
            is never held in one long transaction.
        before_changes: Called in the transaction that creates a missing schema
            index, before it does (PostgreSQL takes a lock there, as on opening).

    Returns:
        How many rows were rewritten.

    Raises:
        ValidationError: ``batch_size`` is not a whole number of at least 1.
        StoreError: a row holds a document from a newer schema, or without a
            schema number (found before anything is rewritten), or one that
            cannot be migrated or read (batches committed before it stay).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(
            f"batch_size={batch_size!r} must be a whole number >= 1",
            field="batch_size",
            value=batch_size,
        )
    tables = list(tables)
    with transaction() as session:
        missing = [t for t in tables if not session.fetch(*t.dialect.index_exists(t.schema_index))]
        if missing and before_changes is not None:
            before_changes(session)
        for table in missing:
            session.change(table.schema_index_sql)
        for table in tables:
            _refuse_unmigratable(session, table)
        session.commit()
    total = 0
    for table in tables:
        after: tuple[Any, str] | None = None
        while True:
            with transaction() as session:
                rewritten, after, full = _migrate_batch(session, table, after, batch_size)
                session.commit()
            total += rewritten
            if not full:
                break
    return total


def _refuse_unmigratable(session: Session, table: Table) -> None:
    """Raise `StoreError` if ``table`` holds a document newer than the codec, or one
    without a schema number; the codec's own message names the record."""
    dialect = table.dialect
    expr = dialect.document_schema()
    mark, current = dialect.schema_param(table.current_schema())
    # ORDER BY follows the schema index, so the planner reads it even without statistics.
    for where, params in ((f"{expr} > {mark}", [current]), (f"{expr} IS NULL", [])):
        rows = session.fetch(
            f'SELECT "doc" FROM {table.name} WHERE {where} ORDER BY {expr}, "id" LIMIT 1', params
        )
        if rows:
            # The codec's error names the record and its schema. It reads a few odd
            # values (a JSON ``true`` is 1 to Python), which are refused all the same.
            table.decode(rows[0][0])
            raise StoreError(
                f"a stored {table.kind.value} document has a schema number this salesflow "
                f"cannot migrate to {table.current_schema()}: {rows[0][0]!r:.200}"
            )


def _migrate_batch(
    session: Session, table: Table, after: tuple[Any, str] | None, limit: int
) -> tuple[int, tuple[Any, str] | None, bool]:
    """Rewrite up to ``limit`` old rows of ``table`` that follow ``after`` in the index.

    Returns:
        The rows rewritten, the (schema, id) position to continue after, and
        whether the batch was full (more old rows may follow).
    """
    dialect = table.dialect
    expr = dialect.document_schema()
    mark, current = dialect.schema_param(table.current_schema())
    where = f"{expr} < {mark}"
    params: list[Any] = [current]
    if after is not None:
        # Continue after the last row seen rather than from the start, so a row that
        # stays old (rewritten concurrently by an older salesflow) is not met again.
        after_mark, after_schema = dialect.schema_param(after[0])
        where += f' AND ({expr}, "id") > ({after_mark}, {dialect.placeholder})'
        params.extend([after_schema, after[1]])
    rows = session.fetch(
        f'SELECT {expr}, "id", "doc" FROM {table.name} WHERE {where} '
        f'ORDER BY {expr}, "id" LIMIT {int(limit)}',
        params,
    )
    rewritten = 0
    for _, _, raw_doc in rows:
        rewritten += session.change(*table.rewrite(table.decode(raw_doc)))
    last = (rows[-1][0], rows[-1][1]) if rows else after
    return rewritten, last, len(rows) == limit


# --- the unit of work -----------------------------------------------------------------


@attrs.frozen
class Layout:
    """Every table of a SQL store, built once per store for its dialect and codec.

    Attributes:
        records: The table of every record kind.
        due: The table of due items.
        sequences: The tables of definitions and enrollments.
        interactions: The table of interactions.
        scores: The table of lead scores.
        states: The table of running state documents.
        outbox: The outbox table.
    """

    records: Mapping[RecordKind, Table]
    due: DueTable
    sequences: SequenceTables
    interactions: InteractionTable
    scores: ScoreTable
    states: StateTable
    outbox: OutboxTable

    @classmethod
    def build(cls, dialect: Dialect, codec: Codec) -> Layout:
        """The tables of a store speaking ``dialect`` and encoding with ``codec``."""
        return cls(
            records={kind: Table(kind, dialect, codec) for kind in RECORD_TYPES},
            due=DueTable(dialect),
            sequences=SequenceTables(dialect),
            interactions=InteractionTable(dialect),
            scores=ScoreTable(dialect),
            states=StateTable(dialect),
            outbox=OutboxTable(dialect),
        )


class SQLUnit(SequenceUnit, InteractionUnit, ScoreUnit, StateUnit, OutboxUnit, ReportUnit):
    """The `UnitOfWork` operations on one transaction of a SQL store (the definition
    and enrollment ones are inherited from `SequenceUnit`, the interaction ones from
    `InteractionUnit`, the lead-score ones from `ScoreUnit`, the running-state ones
    from `StateUnit`, the outbox ones from `OutboxUnit`).

    Args:
        layout: The store's tables.
        session: Runs the statements in the unit's transaction.
        commit: Commits that transaction.
    """

    def __init__(self, layout: Layout, session: Session, commit: Callable[[], None]) -> None:
        self._tables = layout.records
        self._session = session
        self._commit = commit
        self._due = layout.due
        self._sequences = layout.sequences
        self._interactions = layout.interactions
        self._scores = layout.scores
        self._states = layout.states
        self._outbox = layout.outbox
        self._claimed: set[str] = set()
        self._savepoints = 0

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """``SAVEPOINT``: the block's statements are rolled back alone when it raises."""
        self._savepoints += 1
        name = f"sf_sp_{self._savepoints}"
        claimed = set(self._claimed)
        self._session.change(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._session.change(f"ROLLBACK TO SAVEPOINT {name}")
            self._session.change(f"RELEASE SAVEPOINT {name}")
            self._claimed = claimed
            raise
        self._session.change(f"RELEASE SAVEPOINT {name}")

    def find(self, cls: type[R], record_id: str) -> R | None:
        """Return the record or ``None``."""
        table = self._tables[cls.KIND]
        p = table.dialect.placeholder
        rows = self._session.fetch(f'SELECT "doc" FROM {table.name} WHERE "id" = {p}', [record_id])
        if not rows:
            return None
        record = table.decode(rows[0][0])
        assert isinstance(record, cls)
        return record

    def get(self, cls: type[R], record_id: str) -> R:
        """Return the record, or raise `NotFound`."""
        record = self.find(cls, record_id)
        if record is None:
            raise NotFound(cls.__name__, record_id)
        return record

    def _stored_version(self, table: Table, record_id: str) -> int | None:
        p = table.dialect.placeholder
        rows = self._session.fetch(
            f'SELECT "version" FROM {table.name} WHERE "id" = {p}', [record_id]
        )
        return int(rows[0][0]) if rows else None

    def add(self, record: Record) -> None:
        """Store a new record (its ``version`` must be 1), or raise `AlreadyExists`."""
        table = self._tables[record.KIND]
        kind = type(record).__name__
        if record.version != 1:
            if self._stored_version(table, record.id) is not None:
                raise AlreadyExists(kind, record.id)
            raise VersionConflict(kind, record.id, expected=1, actual=0)
        inserted = self._session.change(table.insert_sql, table.row(record))
        if inserted == 0:
            raise AlreadyExists(kind, record.id)

    def update(self, record: Record) -> Record:
        """Store a changed record read at ``record.version``; return it at version + 1.

        Raises:
            NotFound: no such record.
            VersionConflict: the stored version is not ``record.version``.
        """
        table = self._tables[record.KIND]
        saved = copy.copy(record)
        saved.custom = dict(record.custom)  # the caller's record stays untouched
        saved.version = record.version + 1
        changed = self._session.change(table.update_sql, table.update_params(saved))
        if changed == 0:
            stored = self._stored_version(table, record.id)
            kind = type(record).__name__
            if stored is None:
                raise NotFound(kind, record.id)
            raise VersionConflict(kind, record.id, expected=record.version, actual=stored)
        return saved

    def find_by(self, cls: type[R], key: str, value: str) -> list[R]:
        """Records whose lookup key ``key`` equals ``value``, most recently modified first."""
        if key not in {k.name for k in lookup_keys(cls.KIND)}:
            raise StoreError(f"{cls.__name__} has no lookup key {key!r}")
        table = self._tables[cls.KIND]
        p = table.dialect.placeholder
        rows = self._session.fetch(
            f'SELECT "doc" FROM {table.name} WHERE {quote(key)} = {p} '
            f'ORDER BY "modified_at" DESC, "id" DESC',
            [value],
        )
        return [self._as(cls, table, row[0]) for row in rows]

    def find_many_by(self, cls: type[R], key: str, values: Iterable[str]) -> dict[str, list[R]]:
        """`find_by` for many values in few statements (chunks of `_IN_CHUNK`)."""
        if key not in {k.name for k in lookup_keys(cls.KIND)}:
            raise StoreError(f"{cls.__name__} has no lookup key {key!r}")
        wanted = list(dict.fromkeys(values))
        found: dict[str, list[R]] = {v: [] for v in wanted}
        table = self._tables[cls.KIND]
        p = table.dialect.placeholder
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            rows = self._session.fetch(
                f'SELECT {quote(key)}, "doc" FROM {table.name} '
                f"WHERE {quote(key)} IN ({', '.join([p] * len(chunk))}) "
                f'ORDER BY "modified_at" DESC, "id" DESC',
                chunk,
            )
            for value, raw_doc in rows:
                found[value].append(self._as(cls, table, raw_doc))
        return found

    def find_ids_by(self, cls: type[R], key: str, values: Iterable[str]) -> dict[str, list[str]]:
        """The ids `find_many_by` would return, without reading the records."""
        if key not in {k.name for k in lookup_keys(cls.KIND)}:
            raise StoreError(f"{cls.__name__} has no lookup key {key!r}")
        wanted = list(dict.fromkeys(values))
        found: dict[str, list[str]] = {v: [] for v in wanted}
        table = self._tables[cls.KIND]
        p = table.dialect.placeholder
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            rows = self._session.fetch(
                f'SELECT {quote(key)}, "id" FROM {table.name} '
                f"WHERE {quote(key)} IN ({', '.join([p] * len(chunk))}) "
                f'ORDER BY "modified_at" DESC, "id" DESC',
                chunk,
            )
            for value, record_id in rows:
                found[value].append(record_id)
        return found

    @staticmethod
    def _as(cls: type[R], table: Table, raw_doc: Any) -> R:
        record = table.decode(raw_doc)
        assert isinstance(record, cls)
        return record

    def query(self, cls: type[R], query: Query) -> Page[R]:
        """Answer ``query`` over records of ``cls`` with one indexed query (plus a count)."""
        query.check(cls.KIND)
        table = self._tables[cls.KIND]
        params = Params(table.dialect.placeholder)
        where = where_clause(query, table, params)
        groups = option_groups(cls.KIND, query)
        if groups:
            items = self._group_walk(cls, table, query, groups)
        else:
            order = order_clause(query, table)
            page_params, page_where = params, where
            if self._wide_search(table, query):
                page_params = Params(table.dialect.placeholder)
                page_where = where_clause(query, table, page_params, wide_search=True)
            # The page's ids first, then their documents: the sort, the offset and the
            # filters read only narrow rows (index entries where they can), and only
            # the page's documents (kilobytes each) are read at all.
            rows = self._session.fetch(
                f'SELECT "doc" FROM {table.name} WHERE "id" IN (SELECT "id" FROM {table.name}'
                f"{page_where}{order} LIMIT {int(query.limit)} OFFSET {int(query.offset)})"
                f"{order}",
                page_params.values,
            )
            items = tuple(self._as(cls, table, row[0]) for row in rows)

        def count(most: int | None) -> int:
            if most is not None:  # a bounded count reads at most ``most`` rows
                return self._count_upto(table, query, most)
            sql = f"SELECT COUNT(*) FROM {table.name}{where}"
            return int(self._session.fetch(sql, params.values)[0][0])

        total, exact = counted_total(query, len(items), count)
        return Page(
            items=items, total=total, offset=query.offset, limit=query.limit, total_exact=exact
        )

    def _group_walk(
        self,
        cls: type[R],
        table: Table,
        query: Query,
        groups: list[tuple[Condition, tuple[SortKey, ...]]],
    ) -> tuple[R, ...]:
        """The page of ``query`` read one option group at a time (`option_groups`):
        empty groups and groups wholly before the page are passed over with counts
        bounded by what is left to skip, the others read in their own order."""
        skip, need = query.offset, query.limit
        ids: list[str] = []
        for condition, order_by in groups:
            part = Query(where=_and(query.where, condition), search=query.search, order_by=order_by)
            # One more than is left to skip tells whether the page starts here; with
            # nothing to skip, whether the group has a row at all. Asked without an
            # order, the database finds a group's rows through the field's index; a
            # page of an empty group, sorted by time, could walk the whole time index.
            found = self._count_upto(table, part, skip + 1)
            if found <= skip:
                skip -= found
                continue
            params = Params(table.dialect.placeholder)
            rows = self._session.fetch(
                f'SELECT "id" FROM {table.name}{where_clause(part, table, params)}'
                f"{order_clause(part, table)} LIMIT {int(need)} OFFSET {int(skip)}",
                params.values,
            )
            skip = 0
            ids.extend(str(row[0]) for row in rows)
            need -= len(rows)
            if not need:
                break
        docs = documents_by_id(self._session, table, ids)
        return tuple(self._as(cls, table, docs[record_id]) for record_id in ids)

    def group_counts(self, cls: type[R], query: Query, field: str) -> list[GroupCount]:
        """Count the records matching ``query`` (ignoring its paging) per value of
        ``field``, ordered as sorting by ``field`` orders them (`sort_order`)."""
        check_fields(cls.KIND, [field])
        query.check(cls.KIND)
        table = self._tables[cls.KIND]
        operand = table.operand(field)
        bound = group_count_bound(cls.KIND, field, query)
        counts: dict[Any, int] = {}
        grouped = query
        if bound is not None and _leads_an_index(cls.KIND, field):
            # Each known group on its own, up to one past the bound: the field's
            # index stops each count early, where GROUP BY would read every matching
            # row. Other text, if any, is grouped below. (A field no index leads
            # is grouped in one pass: counting a group would read the rows anyway.)
            limit, options = bound
            known: list[tuple[Any, Condition]] = [(None, fields(field).is_null())]
            known += [(option, fields(field).eq(option)) for option in options]
            for value, condition in known:
                part = Query(where=_and(query.where, condition), search=query.search)
                found = self._count_upto(table, part, limit + 1)
                if found:
                    counts[value] = found
            other = other_values(field, options)
            grouped = Query(where=_and(query.where, other), search=query.search)
            # Grouping would read the whole index; asking whether there is any row
            # seeks each range (and there is none but in foreign data).
            if not self._count_upto(table, grouped, 1):
                return [bounded_group(v, n, bound) for v, n in self._ranked(cls, field, counts)]
        params = Params(table.dialect.placeholder)
        where = where_clause(grouped, table, params)
        terms = ", ".join(operand.group)
        positions = ", ".join(str(i + 1) for i in range(len(operand.group)))
        rows = self._session.fetch(
            f"SELECT {terms}, COUNT(*) FROM {table.name}{where} GROUP BY {positions}",
            params.values,
        )
        # Values the database keeps apart may be equal in Python (1.10 and 1.1,
        # True and 1 in a custom field): merge them as the memory store does.
        for row in rows:
            value = operand.decode(row[:-1])
            counts[value] = counts.get(value, 0) + int(row[-1])
        ranked = self._ranked(cls, field, counts)
        if bound is None:
            return [GroupCount(value=v, count=n) for v, n in ranked]
        return [bounded_group(v, n, bound) for v, n in ranked]

    def _wide_search(self, table: Table, query: Query) -> bool:
        """Whether ``query``'s prefix search matches so many rows that its page is
        found sooner by walking the sort's index and testing rows than by
        collecting every match and sorting them.

        With ``n`` rows, a page reaching row ``k`` and ``m`` matches, the walk reads
        about ``k * n / m`` rows and the other plan at least ``m``. The matches are
        counted up to ``sqrt(k * n)``: past it, the walk reads fewer rows than that
        count, so neither plan reads much more than ``sqrt(k * n)`` rows before its
        sort. Asked only of a dialect that takes the hint and estimates a table's
        size (an engine that estimates none takes no hint either)."""
        term = query.search_term
        if term is None or term[1] or not query.order_by:
            return False
        dialect = table.dialect
        estimate = dialect.size_estimate(table.name)
        if estimate is None:
            return False
        reach = query.offset + query.limit
        rows = int(self._session.fetch(estimate)[0][0])
        threshold = max(reach, math.isqrt(reach * rows))
        # Not key by key: this bound is large (100,001 for page 200 of a million, which
        # no key reaches alone for "smi"), and SQLite, the one engine asked, counts
        # every key's matches from the indexes alone (18 ms; 24 ms key by key first).
        return self._count_upto(table, query, threshold + 1, by_key=False) > threshold

    def _count_upto(self, table: Table, query: Query, most: int, *, by_key: bool = True) -> int:
        """How many records match ``query`` (its condition and search), counting no
        further than ``most``: the LIMIT stops the scan.

        With ``by_key``, a prefix search over every record of a kind with several
        search keys (quick find) is asked key by key first, within the same
        statement: when one key alone starts with the text in ``most`` records, so
        many records match, and that count reads only the key's index. Counting the
        matches of every key together reads each matching row on PostgreSQL (a row
        may match on several keys): ~27 ms for 5,001 of a million leads, against
        ~1 ms for a key's index. It runs only when no key reached ``most``, and each
        key is asked only when the ones before it fell short, so a search no key
        answers alone reads at most ``most`` more index entries per key. A search
        within a condition is counted in one pass: a key's index does not tell which
        of its rows meet the condition."""
        params = Params(table.dialect.placeholder)
        limit = int(most)
        tests = []
        term = query.search_term
        keys = search_keys(table.kind)
        if by_key and term is not None and not term[1] and query.where is None and len(keys) > 1:
            for i, key in enumerate(keys):
                found = prefix_range(quote(key.name), term[0], params)
                tests.append(
                    f"WHEN (SELECT COUNT(*) FROM (SELECT 1 FROM {table.name} WHERE {found} "
                    f'LIMIT {limit}) AS "key{i}") >= {limit} THEN {limit} '
                )
        counted = (
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {table.name}"
            f'{where_clause(query, table, params)} LIMIT {limit}) AS "bounded"'
        )
        sql = f"SELECT CASE {''.join(tests)}ELSE ({counted}) END" if tests else counted
        return int(self._session.fetch(sql, params.values)[0][0])

    @staticmethod
    def _ranked(cls: type[R], field: str, counts: dict[Any, int]) -> list[tuple[Any, int]]:
        """``counts`` by value, ordered as sorting by ``field`` orders the values."""
        order = sort_order(cls.KIND, field)
        return sorted(counts.items(), key=lambda item: order(item[0]))

    def timeline(self, ref: RecordRef) -> list[Activity]:
        """The activities regarding ``ref`` in timeline order (`timeline_key`)."""
        table = self._tables[RecordKind.ACTIVITY]
        p = table.dialect.placeholder
        rows = self._session.fetch(
            f'SELECT "doc" FROM {table.name} WHERE "regarding_kind" = {p} '
            f'AND "regarding_id" = {p} ORDER BY "timeline_at" ASC, "id" ASC',
            [ref.kind.value, ref.id],
        )
        return [self._as(Activity, table, row[0]) for row in rows]

    # --- due items ----------------------------------------------------------------------

    def _due_where(self, where: str, params: list[Any], tail: str = "") -> list[DueItem]:
        due = self._due
        rows = self._session.fetch(
            f'SELECT "doc" FROM {due.name} {where} ORDER BY "due_at", "id"{tail}', params
        )
        return [due.decode(row[0]) for row in rows]

    def _due_by_key(self, key: str) -> DueItem | None:
        found = self._due_where(f'WHERE "key" = {self._due.dialect.placeholder}', [key])
        return found[0] if found else None

    def schedule(self, item: DueItem) -> DueItem:
        """Store a new due item; with a key already stored, return that item instead."""
        if not isinstance(item, DueItem):
            raise ValidationError(
                f"schedule() takes a DueItem, not {type(item).__name__}", field="item", value=item
            )
        # The insert skips a row whose key (or id) is stored, so it goes first: the
        # key is looked up only when nothing was inserted, one statement fewer for
        # the usual new item.
        if self._session.change(self._due.insert_sql, self._due.row(item)) == 1:
            return item
        if item.key is not None:
            existing = self._due_by_key(item.key)
            if existing is not None:
                return existing
        raise AlreadyExists("DueItem", item.id)

    def _delete_due(self, where: str, params: list[Any]) -> bool:
        return self._session.change(f"DELETE FROM {self._due.name} WHERE {where}", params) > 0

    def cancel_due(self, item_id: str) -> bool:
        """Delete the item with ``item_id``; False when there is none."""
        return self._delete_due(f'"id" = {self._due.dialect.placeholder}', [item_id])

    def cancel_due_by_key(self, key: str) -> bool:
        """Delete the item with uniqueness key ``key``; False when there is none."""
        return self._delete_due(f'"key" = {self._due.dialect.placeholder}', [key])

    def claim_due(self, now: datetime, limit: int) -> list[DueItem]:
        """Take up to ``limit`` due items in (due_at, id) order (see `UnitOfWork`)."""
        check_claim(now, limit)
        dialect = self._due.dialect
        p = dialect.placeholder
        when = dialect.store_value(ColumnType.DATETIME, now)
        # Rows this unit claimed before are locked by it, so PostgreSQL would return
        # them again: ask for that many more and leave them out.
        wanted = limit + len(self._claimed)
        found = self._due_where(
            f'WHERE "due_at" <= {p}', [when], f" LIMIT {int(wanted)}{dialect.claim_lock}"
        )
        claimed = [item for item in found if item.id not in self._claimed][:limit]
        self._claimed.update(item.id for item in claimed)
        return claimed

    def complete_due(self, item_id: str) -> bool:
        """Delete a performed item; False when there is none."""
        return self.cancel_due(item_id)

    def replace_due(self, current: DueItem, new: DueItem | None) -> bool:
        """Swap ``current`` for ``new`` if it is stored unchanged (see `UnitOfWork`)."""
        if new is not None and (new.id != current.id or new.key != current.key):
            raise ValidationError(
                f"replace_due() keeps the item's id and key: {current.id!r}/{current.key!r} "
                f"cannot become {new.id!r}/{new.key!r}",
                field="new",
                value=new,
            )
        dialect = self._due.dialect
        p = dialect.placeholder
        deleted = self._delete_due(
            f'"id" = {p} AND "due_at" = {p} AND "attempts" = {p}',
            [
                current.id,
                dialect.store_value(ColumnType.DATETIME, current.due_at),
                current.attempts,
            ],
        )
        if deleted and new is not None:
            self._session.change(self._due.insert_sql, self._due.row(new))
        return deleted

    def next_due_at(self) -> datetime | None:
        """The earliest ``due_at`` of any stored item, or None."""
        dialect = self._due.dialect
        # ORDER BY … LIMIT 1 reads the (due_at, id) index from its start.
        rows = self._session.fetch(
            f'SELECT "due_at" FROM {self._due.name} ORDER BY "due_at", "id" LIMIT 1'
        )
        if not rows:
            return None
        value: datetime = dialect.load_value(ColumnType.DATETIME, rows[0][0])
        return value

    def due_items(self, subject: RecordRef | None = None) -> list[DueItem]:
        """Every stored item, or those about ``subject``, in (due_at, id) order."""
        if subject is None:
            return self._due_where("", [])
        p = self._due.dialect.placeholder
        return self._due_where(
            f'WHERE "subject_kind" = {p} AND "subject_id" = {p}', [subject.kind.value, subject.id]
        )

    def commit(self) -> None:
        """Make every change of this unit durable and visible."""
        self._commit()
