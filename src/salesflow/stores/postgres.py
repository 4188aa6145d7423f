"""`PostgresStore`: records in PostgreSQL (psycopg 3), for many processes and machines.

Each unit of work is one transaction (READ COMMITTED); concurrent changes to
one record are caught by the version check of `UnitOfWork.update`. psycopg is
imported only when a store is opened, so salesflow works without it (install
the ``postgres`` extra). Tables live in one schema (``public`` by default) and
share their layout (`salesflow.stores.sql`) and query compilation
(`salesflow.stores.sql_query`) with SQLite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from salesflow.errors import StoreError, ValidationError
from salesflow.stores.base import ColumnType, UnitOfWork
from salesflow.stores.codec import Codec, decode_custom_value
from salesflow.stores.readonly import read_only as read_only_unit
from salesflow.stores.sql import (
    MIGRATION_BATCH_SIZE,
    Layout,
    SQLUnit,
    migrate_documents,
    open_schema,
)
from salesflow.stores.sql_dialect import (
    Category,
    Dialect,
    Operand,
    Session,
    dump_json,
    number_value,
    quote,
    sql_string,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresDialect", "PostgresStore"]

_TYPES = {
    # Collation "C" orders text by code point, like Python, and lets plain b-tree
    # indexes serve prefix ranges.
    ColumnType.TEXT: 'TEXT COLLATE "C"',
    ColumnType.INT: "BIGINT",
    ColumnType.BOOL: "BOOLEAN",
    ColumnType.DECIMAL: "NUMERIC",
    ColumnType.DATETIME: "TIMESTAMPTZ",
    ColumnType.DATE: "DATE",
}


class PostgresDialect(Dialect):
    """PostgreSQL: native types, JSONB documents, text in collation "C".

    Args:
        schema: The schema that holds the tables.
    """

    placeholder = "%s"
    doc_type = "JSONB"
    json_placeholder = "%s::jsonb"
    parallel_setting = "max_parallel_workers_per_gather"
    claim_lock = " FOR UPDATE SKIP LOCKED"

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def table(self, name: str) -> str:
        """The schema-qualified, quoted table name."""
        return f"{quote(self.schema)}.{quote(name)}"

    def table_exists(self, name: str) -> tuple[str, list[Any]]:
        """Look ``name`` up in the catalogue, in this dialect's schema."""
        return (
            "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = %s",
            [self.schema, name],
        )

    def index_exists(self, name: str) -> tuple[str, list[Any]]:
        """Look index ``name`` up in the catalogue, in this dialect's schema."""
        return (
            "SELECT 1 FROM pg_catalog.pg_indexes WHERE schemaname = %s AND indexname = %s",
            [self.schema, name],
        )

    def seconds_between(self, start: str, end: str) -> str:
        """Seconds from ``start`` to ``end`` (``timestamptz``)."""
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"

    def table_columns(self, name: str) -> tuple[str, list[Any]]:
        """The columns of table ``name`` in this dialect's schema."""
        return (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [self.schema, name],
        )

    def sql_type(self, ctype: ColumnType) -> str:
        """The PostgreSQL column type of ``ctype``."""
        return _TYPES[ctype]

    def document_schema(self) -> str:
        """The JSONB value itself: a cast to a number could fail while indexing an odd
        document, and JSONB numbers compare by value."""
        return "(\"doc\" -> 'schema')"

    def schema_param(self, schema: int) -> tuple[str, Any]:
        """The number as JSONB, to compare with the JSONB `document_schema`."""
        return self.json_placeholder, dump_json(schema, "schema number")

    def index_term(self, column: str) -> str:
        """Empty values sort first ascending (and last descending), as in every store;
        an index built that way serves both directions."""
        return f"{quote(column)} NULLS FIRST"

    def store_value(self, ctype: ColumnType, value: Any) -> Any:
        """psycopg adapts every field type itself."""
        return value

    def store_converter(self, ctype: ColumnType) -> Callable[[Any], Any] | None:
        """None: psycopg adapts every field type itself."""
        return None

    def load_value(self, ctype: ColumnType, raw: Any) -> Any:
        """The Python value of a column; datetimes in UTC like the records."""
        if ctype is ColumnType.DATETIME:
            return raw.astimezone(UTC)
        return raw

    def number(self, value: int | float | Decimal) -> Any:
        """An int when integral (uses BIGINT indexes), else an exact decimal.

        A float goes through its shortest text (``0.1`` as ``Decimal("0.1")``), so it
        equals the same float stored in a custom field.
        """
        result = number_value(value)
        return Decimal(repr(result)) if isinstance(result, float) else result

    def bool_number(self, expr: str) -> str:
        """A boolean column as 0 or 1."""
        return f"CAST({expr} AS INTEGER)"

    def load_json(self, raw: Any) -> Any:
        """psycopg already parsed the JSONB value."""
        return raw

    def fold(self, text_expr: str, folded_key: str) -> str:
        """The stored fold for non-ASCII text, else ``lower()`` in collation "C" (ASCII)."""
        return f'COALESCE("folded" ->> {sql_string(folded_key)}, lower({text_expr} COLLATE "C"))'

    def starts_with(self, text_expr: str, placeholder: str, length: int) -> str:
        """``left`` counts characters, like Python."""
        return f"left({text_expr}, {int(length)}) = {placeholder}"

    def contains(self, text_expr: str, placeholder: str) -> str:
        """``strpos`` finds the part anywhere (an empty part is found at 1)."""
        return f"strpos({text_expr}, {placeholder}) > 0"

    def custom(self, name: str) -> Operand:
        """Custom field ``name`` read from the JSONB ``doc`` by type."""
        key = sql_string(name)
        value = f"(\"doc\" -> 'custom' -> {key})"
        kind = f"jsonb_typeof({value})"
        text = f"(CASE WHEN {kind} = 'string' THEN \"doc\" -> 'custom' ->> {key} END)"
        number = (
            f"(CASE {kind} WHEN 'number' THEN ({value})::numeric "
            f"WHEN 'boolean' THEN (CASE WHEN ({value})::boolean THEN 1 ELSE 0 END) "
            f"WHEN 'object' THEN ({value} ->> '$decimal')::numeric END)"
        )
        when = f"({value} ->> '$datetime')"
        day = f"({value} ->> '$date')"

        return Operand(
            present=f"({value} IS NOT NULL AND {kind} <> 'null')",
            typed={
                Category.TEXT: f'{text} COLLATE "C"',
                Category.NUMBER: number,
                # Stored as fixed-width UTC text, so text order is time order.
                Category.DATETIME: f'{when} COLLATE "C"',
                Category.DATE: f'{day} COLLATE "C"',
            },
            folded=self.fold(text, f"custom.{name}"),
            order=(number, f'COALESCE({text}, {when}, {day}) COLLATE "C"'),
            group=(value,),
            decode=lambda row: decode_custom_value(row[0]),
            param=self.custom_param,
        )


class _Session:
    """Statements on the store's connection, inside its current transaction."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store failed: {exc}") from exc

    def change(self, sql: str, params: Sequence[Any] = ()) -> int:
        import psycopg

        try:
            return self._conn.execute(sql, params).rowcount
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store failed: {exc}") from exc

    def commit(self) -> None:
        import psycopg

        try:
            self._conn.commit()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store could not commit: {exc}") from exc


class PostgresStore:
    """Keeps records in a PostgreSQL database.

    Opening creates the schema, tables and indexes if missing. One connection
    serves the store; units of work from several threads take turns, and a
    broken connection is replaced at the start of the next unit.

    Args:
        dsn: A libpq connection string or URL (``postgresql://user@host/db``).
        schema: The schema that holds the tables; created if missing.
        codec: Encodes and decodes (and migrates) the stored documents.

    Raises:
        StoreError: psycopg is not installed, the server cannot be reached, or
            the database was written by a newer salesflow.
        ValidationError: ``schema`` is not a usable schema name.
    """

    def __init__(self, dsn: str, *, schema: str = "public", codec: Codec | None = None) -> None:
        try:
            import psycopg  # noqa: F401  (fail early with the fix, not at first use)
        except ImportError:
            raise StoreError(
                "PostgresStore needs psycopg 3; install it with: pip install 'salesflow[postgres]'"
            ) from None
        if not isinstance(schema, str) or not schema or len(schema.encode()) > 63:
            raise ValidationError(
                f"schema={schema!r} must be a non-empty name of at most 63 bytes",
                field="schema",
                value=schema,
            )
        self._dsn = dsn
        self._schema = schema
        dialect = PostgresDialect(schema)
        codec = codec or Codec()
        self._layout = Layout.build(dialect, codec)
        self._tables = self._layout.records
        self._lock = threading.RLock()
        self._busy = False
        self._conn: psycopg.Connection[Any] | None = self._connect()
        self._create_schema(self._conn, dialect)

    @property
    def schema(self) -> str:
        """The schema that holds the tables."""
        return self._schema

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            conn = psycopg.connect(self._dsn, autocommit=False)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            # Only affects how the server prints times; records come back in UTC anyway.
            conn.execute("SET TIME ZONE 'UTC'")
            conn.commit()
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"cannot set up the PostgreSQL session: {exc}") from exc
        return conn

    def _create_schema(self, conn: psycopg.Connection[Any], dialect: PostgresDialect) -> None:
        import psycopg

        session = _Session(conn)

        def before_changes() -> None:
            self._lock_ddl(session)
            # CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the
            # schema exists, so look first.
            if not session.fetch("SELECT 1 FROM pg_namespace WHERE nspname = %s", [self._schema]):
                session.change(f"CREATE SCHEMA {quote(self._schema)}")

        try:
            open_schema(session, dialect, self._tables.values(), before_changes=before_changes)
            session.commit()
        except BaseException:
            with suppress(psycopg.Error):
                conn.rollback()
            conn.close()
            raise

    def _lock_ddl(self, session: Session) -> None:
        # Two processes creating the same tables or indexes at once must not race.
        session.fetch("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"salesflow:{self._schema}"])

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        """Open a unit of work: one transaction, rolled back unless committed.

        Args:
            read_only: Start it with ``BEGIN READ ONLY``; the unit refuses every
                write (`salesflow.stores.readonly`), and so would the server.

        Raises:
            StoreError: the store is closed, a unit is already open in this thread,
                or the server cannot be reached.
        """
        with self._transaction(read_only=read_only) as session:
            unit = SQLUnit(self._layout, session, session.commit)
            yield read_only_unit(unit, "PostgresStore") if read_only else unit

    def migrate(self, *, batch_size: int = MIGRATION_BATCH_SIZE) -> int:
        """Rewrite every stored document older than the codec's current schema.

        Each record is decoded (migrated by the codec) and stored again with all
        its columns refreshed, at its own version. Every ``batch_size`` records are
        one transaction, so no long transaction holds a big table; a row that
        another process changes meanwhile is left as that process wrote it.
        Several processes may migrate at once. A database created before the
        schema index existed gets it first, which needs the tables' owner.

        Args:
            batch_size: How many records one transaction rewrites at most.

        Returns:
            How many records were rewritten; 0 when every document was current.

        Raises:
            StoreError: the database holds a document from a newer schema (found
                before anything is rewritten), or one that cannot be migrated or
                read, or the server cannot be reached.
            ValidationError: ``batch_size`` is not a whole number of at least 1.
        """
        return migrate_documents(
            self._tables.values(),
            self._transaction,
            batch_size=batch_size,
            before_changes=self._lock_ddl,
        )

    @contextmanager
    def _transaction(self, *, read_only: bool = False) -> Iterator[_Session]:
        import psycopg

        with self._lock:
            if self._conn is None:
                raise StoreError("this PostgresStore is closed; open a new one")
            if self._busy:
                raise StoreError(
                    "a unit of work is already open on this PostgresStore in this thread; "
                    "finish it before opening another"
                )
            if self._conn.broken:
                self._conn.close()
                self._conn = self._connect()
            conn = self._conn
            if conn.read_only != read_only:
                # Outside a transaction (the last unit rolled back) this only changes
                # the BEGIN psycopg sends next: no round trip.
                conn.read_only = read_only
            session = _Session(conn)
            self._busy = True
            try:
                yield session
            finally:
                self._busy = False
                if not conn.broken:
                    try:
                        conn.rollback()  # a no-op after commit
                    except psycopg.Error as exc:
                        raise StoreError(f"PostgreSQL store could not roll back: {exc}") from exc

    def close(self) -> None:
        """Close the connection. The store cannot be used afterwards."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
