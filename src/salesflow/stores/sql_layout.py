"""The SQL stores' table layout: the record tables and their indexes (`Table`), the
due items' table (`DueTable`), the `Layout` of one database, creating and upgrading
the schema (`open_schema`, `STORE_SCHEMA_VERSION`) and rewriting old documents
(`migrate_documents`). `salesflow.stores.sql` re-exports every public name; its
module docstring describes the layout as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import attrs

from salesflow.due import DueItem
from salesflow.errors import StoreError, ValidationError
from salesflow.stores.base import (
    Column,
    ColumnType,
    LookupKey,
    columns_of,
    derived_columns,
    lookup_keys,
    search_keys,
)
from salesflow.stores.codec import RECORD_TYPES, Codec, decode_due_item, encode_due_item
from salesflow.stores.sql_dialect import Dialect, Operand, Session, Transaction, dump_json, quote
from salesflow.stores.sql_interactions import InteractionTable
from salesflow.stores.sql_outbox import OutboxTable
from salesflow.stores.sql_rows import document_decoder, document_encoder, row_writer
from salesflow.stores.sql_scores import ScoreTable
from salesflow.stores.sql_sequences import SequenceTables
from salesflow.stores.sql_states import StateTable
from salesflow.values import Record, RecordKind

__all__ = [
    "MIGRATION_BATCH_SIZE",
    "STORE_SCHEMA_VERSION",
    "DueTable",
    "Layout",
    "Table",
    "backfill_lookup_keys",
    "leads_an_index",
    "migrate_documents",
    "open_schema",
]


STORE_SCHEMA_VERSION = 13
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
id)`` over the leads that have that parent; 13, adds the phone lookup keys
``mobile_phone_key`` and ``business_phone_key`` to ``sf_lead`` and ``sf_contact``,
each with a partial index ``(key, modified_at, id)`` over the rows that have it, and
computes them for the rows already there (`backfill_lookup_keys`)."""

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
    sparse: list[tuple[str, ...]] = []
    for lookup in lookup_keys(kind):
        # Sparse keys (layout 13's phones) get partial indexes, added below.
        (sparse if lookup.sparse else wanted).append((lookup.name, "modified_at", "id"))
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
    # Only the rows that have the key; an equality or IN lookup on it implies that,
    # so both engines use the index for `find_by` and `find_ids_by`.
    indexes += [_Index(f"sf_{kind.value}__{'__'.join(c)}", c, partial=True) for c in sparse]
    if kind is RecordKind.LEAD:
        # The children of a contact or account (layout 12): scoring re-scores them when
        # their parent changes or acts. Most leads have neither parent.
        indexes += [
            _Index(f"sf_lead__{name}__id", (name, "id"), partial=True)
            for name in ("parent_contact_id", "parent_account_id")
        ]
    return tuple(indexes)


def leads_an_index(kind: RecordKind, name: str) -> bool:
    """Whether an index of ``kind``'s table starts with column ``name``: then a count
    of one value, or a test for other text, seeks it instead of reading the rows."""
    return any(index.columns[0] == name for index in _indexes(kind))


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
        self._marks = marks
        self.insert_sql = self.insert_sql_for(marks)
        self.update_sql = self.update_sql_for(marks)
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

    def insert_sql_for(self, marks: list[str]) -> str:
        """The statement inserting a row with ``marks`` as its values (one per
        column: this table's placeholders, or a literal such as ``NULL``)."""
        # ON CONFLICT keeps the transaction usable (PostgreSQL aborts it on errors)
        # and is safe against a concurrent insert of the same id.
        return (
            f"INSERT INTO {self.name} ({', '.join(quote(n) for n in self.column_names)}) "
            f'VALUES ({", ".join(marks)}) ON CONFLICT ("id") DO NOTHING'
        )

    def insert_sql_without(self, present: tuple[bool, ...]) -> str:
        """`insert_sql` with a literal ``NULL`` for each value of `row` whose
        ``present`` is False (see `SQLUnit`'s ``inline_nulls``)."""
        return self.insert_sql_for(
            [m if has else "NULL" for m, has in zip(self._marks, present, strict=True)]
        )

    def update_sql_for(self, marks: list[str]) -> str:
        """The statement storing a row with ``marks`` as its values (one per column,
        as in `insert_sql_for`; the id's is not used) over a given id and version."""
        p = self.dialect.placeholder
        sets = ", ".join(
            f"{quote(n)} = {m}" for n, m in zip(self.column_names, marks, strict=True) if n != "id"
        )
        return f'UPDATE {self.name} SET {sets} WHERE "id" = {p} AND "version" = {p}'

    def update_sql_without(self, present: tuple[bool, ...]) -> str:
        """`update_sql` with a literal ``NULL`` for each of `update_params` whose
        ``present`` is False (the id and version at its end are never None)."""
        values = iter(present)
        marks = [
            m if name == "id" or next(values) else "NULL"
            for name, m in zip(self.column_names, self._marks, strict=True)
        ]
        return self.update_sql_for(marks)

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
    1 to 8, ``sf_outbox`` for layouts 1 to 10, the phone lookup keys' columns and
    indexes for layouts 1 to 12) is created, what a newer index replaces is
    dropped, the lookup keys a column was added for are computed for the rows
    already there (`backfill_lookup_keys`), and the new layout number is stamped,
    all in the one transaction: an interrupted upgrade leaves the old layout.

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
    added: dict[Table, list[str]] = {}
    for table in tables:
        create, *indexes = table.ddl()
        session.change(create)
        if found is not None:
            # Before the indexes: a newer index may cover a column the table lacks.
            added[table] = _add_missing_columns(session, dialect, table)
        for statement in indexes:
            session.change(statement)
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
    for table, columns in added.items():
        # Layout 13's phone keys (and any lookup key added later): the rows written
        # before the key existed have it empty until computed here.
        backfill_lookup_keys(session, table, columns, batch_size=MIGRATION_BATCH_SIZE)
    session.change(
        f'INSERT INTO {meta} ("key", "value") VALUES ({p}, {p}) '
        f'ON CONFLICT ("key") DO UPDATE SET "value" = excluded."value"',
        ["schema_version", str(STORE_SCHEMA_VERSION)],
    )


def _add_missing_columns(session: Session, dialect: Dialect, table: Table) -> list[str]:
    """Give an existing record table the columns a newer layout has (layout 7 added
    ``sf_opportunity.price_list_id``, layout 13 the phone lookup keys). A new column
    is empty on the old rows, which is right for a field that did not exist when
    they were written (it decodes to its default); a new lookup key is computed
    for them afterwards (`backfill_lookup_keys`).

    Returns:
        The names of the columns added.
    """
    raw = f"sf_{table.kind.value}"
    have = {row[0] for row in session.fetch(*dialect.table_columns(raw))}
    types = {c.name: c.type for c in table.columns}
    added: list[str] = []
    for name in table.column_names:
        if name in have:
            continue
        added.append(name)
        sql_type = (
            dialect.doc_type
            if name in ("folded", "doc")
            else dialect.sql_type(types.get(name, ColumnType.TEXT))
        )
        session.change(f"ALTER TABLE {table.name} ADD COLUMN {quote(name)} {sql_type}")
    return added


def backfill_lookup_keys(
    session: Session,
    table: Table,
    columns: Iterable[str],
    *,
    batch_size: int = MIGRATION_BATCH_SIZE,
) -> int:
    """Compute the lookup keys named in ``columns`` for the rows ``table`` holds: the
    keys a layout upgrade adds (13: ``mobile_phone_key`` and ``business_phone_key``)
    are empty on the rows written before it.

    A key is computed in Python, as a write computes it (`LookupKey.of`), from the
    column of the one field it derives from (`LookupKey.field`), so no document is
    decoded. Rows are read in ``id`` order, ``batch_size`` at a time, and only those
    whose source field is set; runs in the caller's transaction (opening the store
    runs it in the upgrade's own, so the new layout is stamped with every key).

    Returns:
        How many rows got a key.

    Raises:
        StoreError: a key in ``columns`` does not derive from one field.
    """
    wanted = set(columns)
    keys = [k for k in lookup_keys(table.kind) if k.name in wanted]
    if not keys:
        return 0
    for key in keys:
        if key.field is None or key.of is None:
            raise StoreError(
                f"lookup key {table.kind.value}.{key.name} is not computed from one field, "
                f"so the rows stored before it cannot get it when the database is upgraded"
            )
    sources = list(dict.fromkeys(k.field for k in keys if k.field is not None))
    p = table.dialect.placeholder
    has_source = " OR ".join(f"{quote(f)} IS NOT NULL" for f in sources)
    select = (
        f'SELECT "id", {", ".join(quote(f) for f in sources)} FROM {table.name} '
        f'WHERE "id" > {p} AND ({has_source}) ORDER BY "id" LIMIT {int(batch_size)}'
    )
    update = (
        f"UPDATE {table.name} SET {', '.join(f'{quote(k.name)} = {p}' for k in keys)} "
        f'WHERE "id" = {p}'
    )
    position = {f: i + 1 for i, f in enumerate(sources)}
    done = 0
    after = ""  # ids are non-empty text
    while True:
        rows = session.fetch(select, [after])
        for row in rows:
            values = [k.of(row[position[k.field]]) for k in keys if k.of and k.field]
            if any(v is not None for v in values):
                done += session.change(update, [*values, row[0]])
        if len(rows) < batch_size:
            return done
        after = rows[-1][0]


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
