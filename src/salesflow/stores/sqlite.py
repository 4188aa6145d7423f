"""`SQLiteStore`: records in one SQLite file (stdlib ``sqlite3``), WAL mode.

Each unit of work is one ``BEGIN IMMEDIATE`` transaction, so units are
serialized (one at a time, also across processes; the others wait, by default
up to 5 s). A read-only unit (``unit_of_work(read_only=True)``, which the engine's
queries use) is a deferred ``BEGIN`` instead: it reads one snapshot without
waiting for the writer. Other connections see only committed units. The table layout and
`SQLiteStore.migrate` (`salesflow.stores.sql`) and the query compilation
(`salesflow.stores.sql_query`) are shared with PostgreSQL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from salesflow.errors import StoreError
from salesflow.stores.base import ColumnType, UnitOfWork
from salesflow.stores.codec import Codec, decode_custom_value, format_datetime
from salesflow.stores.readonly import read_only as read_only_unit
from salesflow.stores.sql import (
    MIGRATION_BATCH_SIZE,
    Layout,
    SQLUnit,
    migrate_documents,
    open_schema,
)
from salesflow.stores.sql_dialect import Category, Dialect, Operand, number_value, quote, sql_string

__all__ = ["SQLiteDialect", "SQLiteStore"]

BUSY_TIMEOUT_SECONDS = 5.0
"""How long a unit waits, by default, for another process's write transaction to end."""

OPTIMIZE_EVERY_UNITS = 1000
"""How often (in units of work) a long-lived store refreshes planner statistics."""

_TYPES = {
    ColumnType.TEXT: "TEXT",
    ColumnType.INT: "INTEGER",
    ColumnType.BOOL: "INTEGER",
    ColumnType.DECIMAL: "REAL",
    ColumnType.DATETIME: "TEXT",
    ColumnType.DATE: "TEXT",
}


_STORE_CONVERTERS: dict[ColumnType, Callable[[Any], Any] | None] = {
    ColumnType.TEXT: None,
    ColumnType.INT: None,
    ColumnType.BOOL: int,
    ColumnType.DECIMAL: float,
    ColumnType.DATETIME: format_datetime,
    ColumnType.DATE: lambda value: value.isoformat(),
}
"""`SQLiteDialect.store_value` per column type (None: the value as it is)."""


class SQLiteDialect(Dialect):
    """SQLite: bools as 0/1, decimals as REAL, dates and datetimes as sortable ISO text.

    Datetimes are stored with `format_datetime` (fixed-width UTC), so text order
    is time order. Money amounts are REAL: amounts beyond double precision
    (about 15 significant digits) compare and sort approximately.
    """

    def table(self, name: str) -> str:
        """The quoted table name."""
        return quote(name)

    def table_exists(self, name: str) -> tuple[str, list[Any]]:
        """Look ``name`` up in the catalogue."""
        return "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]

    def index_exists(self, name: str) -> tuple[str, list[Any]]:
        """Look index ``name`` up in the catalogue."""
        return "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", [name]

    def seconds_between(self, start: str, end: str) -> str:
        """Seconds from ``start`` to ``end`` (ISO 8601 texts) by Julian day numbers."""
        return f"((julianday({end}) - julianday({start})) * 86400.0)"

    def table_columns(self, name: str) -> tuple[str, list[Any]]:
        """The columns of table ``name``, from its ``table_info`` pragma."""
        return "SELECT name FROM pragma_table_info(?)", [name]

    def sql_type(self, ctype: ColumnType) -> str:
        """The SQLite column type of ``ctype``."""
        return _TYPES[ctype]

    def document_schema(self) -> str:
        """``json_extract`` gives the number as an SQL integer, usable in an index."""
        return "json_extract(\"doc\", '$.schema')"

    def store_value(self, ctype: ColumnType, value: Any) -> Any:
        """The SQLite value of a Python field value."""
        if ctype is ColumnType.BOOL:
            return int(value)
        if ctype is ColumnType.DECIMAL:
            return float(value)
        if ctype is ColumnType.DATETIME:
            return format_datetime(value)
        if ctype is ColumnType.DATE:
            return value.isoformat()
        return value

    def store_converter(self, ctype: ColumnType) -> Callable[[Any], Any] | None:
        """`store_value` as one function; text and whole numbers go in as they are."""
        return _STORE_CONVERTERS[ctype]

    def load_value(self, ctype: ColumnType, raw: Any) -> Any:
        """The Python value of a stored column value."""
        if ctype is ColumnType.BOOL:
            return bool(raw)
        if ctype is ColumnType.DECIMAL:
            # repr is the shortest text that round-trips, so 100.5 reads back as 100.5.
            return Decimal(repr(float(raw)))
        if ctype is ColumnType.DATETIME:
            return datetime.fromisoformat(raw)
        if ctype is ColumnType.DATE:
            return date.fromisoformat(raw)
        return raw

    def number(self, value: int | float | Decimal) -> Any:
        """An int, or a float (SQLite has no decimal type)."""
        result = number_value(value)
        return float(result) if isinstance(result, Decimal) else result

    def load_json(self, raw: Any) -> Any:
        """Parse a JSON text column."""
        return json.loads(raw)

    def fold(self, text_expr: str, folded_key: str) -> str:
        """The stored fold for non-ASCII text, else ``lower()`` (ASCII-only in SQLite)."""
        path = sql_string(f'$."{folded_key}"')
        return f'COALESCE(json_extract("folded", {path}), lower({text_expr}))'

    def starts_with(self, text_expr: str, placeholder: str, length: int) -> str:
        """``substr`` counts characters, like Python."""
        return f"substr({text_expr}, 1, {int(length)}) = {placeholder}"

    def walk_order_for_wide_search(self, column: str) -> str | None:
        """SQLite's unary ``+`` keeps a term from using an index (same value and
        collation): the search ranges are then tested on the rows the ORDER BY's
        index walk meets, instead of an OR over five search indexes and a sort of
        every match."""
        return f"+{column}"

    def size_estimate(self, table: str) -> str | None:
        """The highest rowid: the row count, plus whatever was deleted (one seek)."""
        return f"SELECT COALESCE(MAX(rowid), 0) FROM {table}"

    def contains(self, text_expr: str, placeholder: str) -> str:
        """``instr`` finds the part anywhere (an empty part is found at 1)."""
        return f"instr({text_expr}, {placeholder}) > 0"

    def custom(self, name: str) -> Operand:
        """Custom field ``name`` read from the JSON ``doc`` by type."""
        path = f'$.custom."{name}"'
        value = f'json_extract("doc", {sql_string(path)})'
        kind = f'json_type("doc", {sql_string(path)})'

        def tagged(tag: str) -> str:
            return f'json_extract("doc", {sql_string(f"{path}.{json.dumps(tag)}")})'

        text = f"(CASE WHEN {kind} = 'text' THEN {value} END)"
        number = (
            f"(CASE WHEN {kind} IN ('integer', 'real', 'true', 'false') THEN {value} "
            f"ELSE CAST({tagged('$decimal')} AS REAL) END)"
        )
        when = tagged("$datetime")
        day = tagged("$date")

        return Operand(
            present=f"{value} IS NOT NULL",
            typed={
                Category.TEXT: text,
                Category.NUMBER: number,
                Category.DATETIME: when,
                Category.DATE: day,
            },
            folded=self.fold(text, f"custom.{name}"),
            order=(number, f"COALESCE({text}, {when}, {day})"),
            group=(kind, value),
            decode=_decode_custom,
            param=self.custom_param,
        )


def _decode_custom(row: Sequence[Any]) -> Any:
    kind, raw = row
    if kind is None or kind == "null":
        return None
    if kind == "true":
        return True
    if kind == "false":
        return False
    if kind == "object":
        return decode_custom_value(json.loads(raw))
    return raw


class _Session:
    """Statements on the store's connection, inside a ``BEGIN IMMEDIATE`` transaction,
    or a deferred ``BEGIN`` for a read-only unit (it takes no write lock, so it neither
    waits for nor holds up another process's writes)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        where: str,
        busy_timeout: float,
        *,
        read_only: bool = False,
    ) -> None:
        self._conn = conn
        self._where = where
        self._busy_timeout = busy_timeout
        self._begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    def _fail(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"SQLite store {self._where} failed: {exc}")

    def begin(self) -> None:
        try:
            self._conn.execute(self._begin)
        except sqlite3.OperationalError as exc:
            raise StoreError(
                f"SQLite store {self._where} could not start a transaction: {exc} (another "
                f"process held the write lock for over {self._busy_timeout:g} s; retry)"
            ) from exc

    def _ready(self) -> None:
        # After commit the unit may go on; its next statement opens a new transaction,
        # so nothing it does later is written without another commit.
        if not self._conn.in_transaction:
            self.begin()

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._ready()
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def change(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._ready()
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def commit(self) -> None:
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise self._fail(exc) from exc


class SQLiteStore:
    """Keeps records in a SQLite database file.

    Opening creates the tables and indexes if missing. One connection serves the
    store; units of work from several threads take turns.

    Args:
        path: The database file, or ``":memory:"`` for a private in-memory database.
        codec: Encodes and decodes (and migrates) the stored documents.
        busy_timeout: Seconds a unit of work waits for another process's write
            transaction before failing with `StoreError`.

    Raises:
        StoreError: the file cannot be opened as a SQLite database, or it was
            written by a newer salesflow.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        codec: Codec | None = None,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        self._path = os.fspath(path)
        self._busy_timeout = busy_timeout
        dialect = SQLiteDialect()
        codec = codec or Codec()
        self._layout = Layout.build(dialect, codec)
        self._tables = self._layout.records
        self._lock = threading.RLock()
        self._busy = False
        self._units = 0
        try:
            conn = sqlite3.connect(
                self._path,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self._path!r}: {exc}") from exc
        session = self._session(conn)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL loses no committed data on a crash, only on power loss.
            conn.execute("PRAGMA synchronous = NORMAL")
            # Room for the indexes of a large table (64 MiB, allocated as used): rows
            # written in bulk land all over each index, and pages dropped from a small
            # cache are read back from the file for the next row.
            conn.execute("PRAGMA cache_size = -65536")
            # Checkpoint at ~40 MB of log rather than the default ~4 MB: a unit that
            # writes hundreds of records dirties more pages than that, so each of its
            # commits would copy the log into the file and sync it.
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
            session.begin()
            open_schema(session, dialect, self._tables.values())
            session.commit()
            self._optimize(conn, on_open=True)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open SQLite database {self._path!r}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    def _session(self, conn: sqlite3.Connection, *, read_only: bool = False) -> _Session:
        return _Session(conn, repr(self._path), self._busy_timeout, read_only=read_only)

    @property
    def path(self) -> str:
        """The database file (or ``":memory:"``)."""
        return self._path

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        """Open a unit of work: one ``BEGIN IMMEDIATE`` transaction.

        Args:
            read_only: Open a deferred ``BEGIN`` instead, which takes no write lock:
                the unit reads one snapshot (WAL) while other processes write, and
                refuses every write (`salesflow.stores.readonly`).

        Raises:
            StoreError: the store is closed, a unit is already open in this thread,
                or another process kept the database locked too long.
        """
        with self._transaction(read_only=read_only) as session:
            unit = SQLUnit(self._layout, session, session.commit, inline_nulls=True)
            yield read_only_unit(unit, "SQLiteStore") if read_only else unit

    def migrate(self, *, batch_size: int = MIGRATION_BATCH_SIZE) -> int:
        """Rewrite every stored document older than the codec's current schema.

        Each record is decoded (migrated by the codec) and stored again with all
        its columns refreshed, at its own version. Every ``batch_size`` records are
        one transaction, so other units of work (and processes) get their turn in
        between; a database created before the schema index existed gets it first.

        Args:
            batch_size: How many records one transaction rewrites at most.

        Returns:
            How many records were rewritten; 0 when every document was current.

        Raises:
            StoreError: the database holds a document from a newer schema (found
                before anything is rewritten), or one that cannot be migrated or
                read, or the store is closed.
            ValidationError: ``batch_size`` is not a whole number of at least 1.
        """
        return migrate_documents(self._tables.values(), self._transaction, batch_size=batch_size)

    @contextmanager
    def _transaction(self, *, read_only: bool = False) -> Iterator[_Session]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"this SQLiteStore ({self._path!r}) is closed; open a new one")
            if self._busy:
                raise StoreError(
                    "a unit of work is already open on this SQLiteStore in this thread; "
                    "finish it before opening another"
                )
            session = self._session(conn, read_only=read_only)
            session.begin()
            self._busy = True
            try:
                yield session
            finally:
                self._busy = False
                session.rollback()
                self._units += 1
                if self._units % OPTIMIZE_EVERY_UNITS == 0:
                    self._optimize(conn)

    @staticmethod
    def _optimize(conn: sqlite3.Connection, *, on_open: bool = False) -> None:
        # Query plans depend on table statistics that SQLite only gathers when asked;
        # PRAGMA optimize refreshes them when tables grew a lot. Best effort: a busy
        # database just skips it.
        with suppress(sqlite3.Error):
            conn.execute("PRAGMA optimize = 0x10002" if on_open else "PRAGMA optimize")

    def close(self) -> None:
        """Close the connection. The store cannot be used afterwards."""
        with self._lock:
            if self._conn is not None:
                self._optimize(self._conn)
                self._conn.close()
                self._conn = None
