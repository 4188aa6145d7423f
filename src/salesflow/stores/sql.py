"""The SQL stores' shared core: table layout, record rows, and query compilation.

`SQLiteStore` and `PostgresStore` keep the same tables and answer the same
queries; what differs between the two engines (column types, JSON access,
parameter style) is a `Dialect`. This module turns records into rows, builds
the schema, compiles `Query` and `Condition` to SQL with bound parameters, and
implements the unit of work over a `Session` (one database transaction).

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

Semantics equal `salesflow.conditions.evaluate`: every comparison compiles to a
two-valued SQL expression (a missing value makes it false, never NULL), so
``NOT`` means what it means in Python; values of a type the field can never
equal (text against a number, a date against a datetime, a naive datetime)
make the comparison false and ``ne`` / ``not_in`` true for present values.
"""

from __future__ import annotations

import abc
import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import attrs

from salesflow.activity import Activity
from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Not, Op
from salesflow.errors import AlreadyExists, NotFound, StoreError, ValidationError, VersionConflict
from salesflow.stores.base import (
    Column,
    ColumnType,
    GroupCount,
    LookupKey,
    Page,
    Query,
    check_fields,
    columns_of,
    derived_columns,
    lookup_keys,
    search_keys,
    sort_order,
)
from salesflow.stores.codec import Codec, format_datetime
from salesflow.values import Record, RecordKind, RecordRef

__all__ = [
    "MIGRATION_BATCH_SIZE",
    "STORE_SCHEMA_VERSION",
    "Category",
    "Dialect",
    "Operand",
    "Params",
    "SQLUnit",
    "Session",
    "Table",
    "Transaction",
    "category_of",
    "compile_condition",
    "dump_json",
    "migrate_documents",
    "number_value",
    "open_schema",
    "option_rank",
    "quote",
    "sql_string",
]

R = TypeVar("R", bound=Record)

STORE_SCHEMA_VERSION = 1
"""The table layout this salesflow writes; a database stamped newer is refused."""

MIGRATION_BATCH_SIZE = 1000
"""How many records `migrate_documents` rewrites per transaction unless told otherwise."""

TRUE = "(1 = 1)"
FALSE = "(1 = 0)"


def quote(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    """``text`` as an SQL string literal (for names already checked, never user data)."""
    return "'" + text.replace("'", "''") + "'"


class Category(StrEnum):
    """The kinds of value Python can compare with each other.

    Two values of different categories are never equal and have no order
    (Python raises `TypeError`, which `evaluate` reads as false). ``bool`` is a
    number, as in Python (``True == 1``).
    """

    TEXT = "text"
    NUMBER = "number"
    DATETIME = "datetime"
    DATE = "date"


_COLUMN_CATEGORY = {
    ColumnType.TEXT: Category.TEXT,
    ColumnType.INT: Category.NUMBER,
    ColumnType.BOOL: Category.NUMBER,
    ColumnType.DECIMAL: Category.NUMBER,
    ColumnType.DATETIME: Category.DATETIME,
    ColumnType.DATE: Category.DATE,
}


def category_of(value: Any) -> Category | None:
    """The comparison category of a condition value, or ``None`` if it matches nothing.

    NaN equals nothing and has no order; a naive datetime cannot be compared
    with the stored aware ones.
    """
    if isinstance(value, str):
        return Category.TEXT
    if isinstance(value, bool | int):
        return Category.NUMBER
    if isinstance(value, float):
        return None if math.isnan(value) else Category.NUMBER
    if isinstance(value, Decimal):
        return None if value.is_nan() else Category.NUMBER
    if isinstance(value, datetime):
        return Category.DATETIME if value.utcoffset() is not None else None
    if isinstance(value, date):
        return Category.DATE
    return None


@attrs.frozen
class Operand:
    """How one queryable field reads in SQL.

    Attributes:
        present: SQL that is true when the field has a value (not ``None``).
        typed: Per `Category`, an SQL expression giving the value when it is of
            that category and NULL otherwise; a missing category never matches.
        folded: SQL giving the case-folded text when the value is text, else NULL.
        order: The ORDER BY terms that sort the field like `sort_order` (each
            is NULL exactly when the field is empty, so ``NULLS FIRST`` applies).
        group: The SELECT terms that identify a value when grouping.
        decode: Turns the ``group`` columns of a row into the Python value.
        param: Turns a condition value of a category into a bound parameter.
        single: ``typed`` has one entry that is NULL exactly when the field is
            empty (a plain column), which allows simpler, index-friendly SQL.
    """

    present: str
    typed: Mapping[Category, str]
    folded: str | None
    order: tuple[str, ...]
    group: tuple[str, ...]
    decode: Callable[[Sequence[Any]], Any]
    param: Callable[[Category, Any], Any]
    single: bool = False


class Session(Protocol):
    """The statements of one unit of work, on one database transaction."""

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""
        ...

    def change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement and return how many rows it changed."""
        ...


class Transaction(Session, Protocol):
    """A `Session` on a transaction of its own, committed by whoever opened it."""

    def commit(self) -> None:
        """Make the transaction's changes durable and visible."""
        ...


class Dialect(abc.ABC):
    """What differs between SQL engines: types, JSON access, parameters, text."""

    placeholder: str = "?"
    """The bound-parameter marker."""
    doc_type: str = "TEXT"
    """The column type of ``doc`` and ``folded``."""
    json_placeholder: str = "?"
    """The marker for a JSON text parameter written to a ``doc_type`` column."""

    @abc.abstractmethod
    def table(self, name: str) -> str:
        """The quoted (and qualified) name of table ``name``."""

    @abc.abstractmethod
    def table_exists(self, name: str) -> tuple[str, list[Any]]:
        """A query (and its parameters) that returns a row when table ``name`` exists."""

    @abc.abstractmethod
    def index_exists(self, name: str) -> tuple[str, list[Any]]:
        """A query (and its parameters) that returns a row when index ``name`` exists."""

    @abc.abstractmethod
    def sql_type(self, ctype: ColumnType) -> str:
        """The column type (with collation) that stores ``ctype``."""

    @abc.abstractmethod
    def document_schema(self) -> str:
        """SQL for the ``"schema"`` number of the row's ``doc`` (NULL when missing).

        Each table has an index on it, so `migrate_documents` finds old (and too
        new) documents with an index range instead of reading every document.
        """

    def schema_param(self, schema: int) -> tuple[str, Any]:
        """The placeholder and the parameter that compare `document_schema` with ``schema``."""
        return self.placeholder, schema

    def index_term(self, column: str) -> str:
        """One column of an index definition."""
        return quote(column)

    @abc.abstractmethod
    def store_value(self, ctype: ColumnType, value: Any) -> Any:
        """The parameter that stores Python ``value`` (not ``None``) in a ``ctype`` column."""

    @abc.abstractmethod
    def load_value(self, ctype: ColumnType, raw: Any) -> Any:
        """The Python value of a ``ctype`` column as the driver returned it."""

    @abc.abstractmethod
    def number(self, value: int | float | Decimal) -> Any:
        """The parameter for a number compared with numeric columns or custom numbers."""

    def custom_param(self, category: Category, value: Any) -> Any:
        """The parameter compared with a custom field's value of ``category``.

        Custom datetimes and dates are stored as fixed-width ISO text, so they are
        compared as that text.
        """
        if category is Category.NUMBER:
            return self.number(value)
        if category is Category.DATETIME:
            return format_datetime(value)
        if category is Category.DATE:
            return value.isoformat()
        return value

    def bool_number(self, expr: str) -> str:
        """``expr`` (a bool column) as a number, for comparisons with numbers."""
        return expr

    @abc.abstractmethod
    def load_json(self, raw: Any) -> Any:
        """The Python value of a ``doc_type`` column."""

    @abc.abstractmethod
    def fold(self, text_expr: str, folded_key: str) -> str:
        """SQL for the case-folded text of ``text_expr``.

        ``folded_key`` names the entry of the ``folded`` column that holds the
        folded form when the text is not ASCII.
        """

    @abc.abstractmethod
    def starts_with(self, text_expr: str, placeholder: str, length: int) -> str:
        """SQL: ``text_expr`` starts with the ``length``-character parameter."""

    @abc.abstractmethod
    def contains(self, text_expr: str, placeholder: str) -> str:
        """SQL: ``text_expr`` contains the parameter."""

    @abc.abstractmethod
    def custom(self, name: str) -> Operand:
        """The operand for custom field ``name`` (read from ``doc``)."""

    def column(self, column: Column) -> Operand:
        """The operand for a typed column.

        An option-set column (`Column.options`) sorts by the position of its value
        among the options, then by its text (which only orders values that are not
        options); filters and grouping use the stored text as it is.
        """
        name = quote(column.name)
        ctype = column.type
        category = _COLUMN_CATEGORY[ctype]
        typed = self.bool_number(name) if ctype is ColumnType.BOOL else name
        order: tuple[str, ...] = (name,)
        if column.options is not None:
            order = (option_rank(name, column.options), name)

        def param(cat: Category, value: Any) -> Any:
            return self.number(value) if cat is Category.NUMBER else self.store_value(ctype, value)

        return Operand(
            present=f"{name} IS NOT NULL",
            typed={category: typed},
            folded=self.fold(name, column.name) if ctype is ColumnType.TEXT else None,
            order=order,
            group=(name,),
            decode=lambda row: None if row[0] is None else self.load_value(ctype, row[0]),
            param=param,
            single=True,
        )


def option_rank(expr: str, options: Sequence[str]) -> str:
    """SQL for the position of text ``expr`` among ``options`` (0, 1, …), ``len(options)``
    for any other text, and NULL when ``expr`` is NULL: the sort key of an option set.

    The options are our enums' values, written as quoted literals (`sql_string`),
    so the ORDER BY text is the same for every query and can be prepared once.
    """
    whens = " ".join(
        f"WHEN {expr} = {sql_string(option)} THEN {i}" for i, option in enumerate(options)
    )
    return f"(CASE {whens} WHEN {expr} IS NOT NULL THEN {len(options)} END)"


def number_value(value: int | float | Decimal) -> int | float | Decimal:
    """A number as an ``int`` when it is integral and fits 64 bits (index-friendly)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        whole = int(value)
        if -(2**63) <= whole < 2**63:
            return whole
    return value


def dump_json(value: Any, what: str) -> str:
    """JSON text for ``value``.

    Raises:
        ValidationError: ``value`` holds NaN or infinity, which JSON cannot carry.
    """
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise ValidationError(
            f"{what} cannot be stored: {exc}; custom float values must be finite numbers",
            field="custom",
            value=None,
        ) from None


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # surrogates never occur in stored text
                nxt = 0xE000
            return "".join(chars) + chr(nxt)
    return None


class Params:
    """Collects bound parameters while SQL text is built left to right."""

    def __init__(self, placeholder: str) -> None:
        self.values: list[Any] = []
        self._placeholder = placeholder

    def add(self, value: Any) -> str:
        """Bind ``value`` and return its placeholder."""
        self.values.append(value)
        return self._placeholder


@attrs.frozen
class _Index:
    name: str
    columns: tuple[str, ...]


def _indexes(kind: RecordKind) -> tuple[_Index, ...]:
    names = {c.name for c in columns_of(kind)}
    wanted: list[tuple[str, ...]] = []
    for lookup in lookup_keys(kind):
        wanted.append((lookup.name, "modified_at", "id"))
    for search in search_keys(kind):
        wanted.append((search.name,))
    # The standard lead views: open / mine, newest first.
    if kind is RecordKind.LEAD:
        wanted.append(("status", "created_at", "id"))
        wanted.append(("owner_id", "status", "created_at", "id"))
    if kind is RecordKind.ACTIVITY:
        wanted.append(("regarding_kind", "regarding_id", "timeline_at", "id"))
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
    return tuple(_Index(f"sf_{kind.value}__{'__'.join(c)}", c) for c in unique)


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
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {quote(index.name)} ON {self.name} ({terms})"
            )
        statements.append(self.schema_index_sql)
        return statements

    def row(self, record: Record) -> list[Any]:
        """The values of every column for ``record``, in `column_names` order."""
        store_value = self.dialect.store_value
        values: list[Any] = []
        folded: dict[str, str] = {}
        for column in self.columns:
            value = column.read(record)
            if value is None:
                values.append(None)
                continue
            if column.type is ColumnType.TEXT and not value.isascii():
                folded[column.name] = value.casefold()
            values.append(store_value(column.type, value))
        values.extend(key.read(record) for key in self.keys)
        for name, item in record.custom.items():
            if isinstance(item, str) and not item.isascii():
                folded[f"custom.{name}"] = item.casefold()
        what = f"{type(record).__name__} {record.id!r}"
        values.append(dump_json(folded, what) if folded else None)
        values.append(dump_json(self.codec.encode(record), what))
        return values

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
        return self.codec.decode(self.kind, self.dialect.load_json(raw_doc))

    def operand(self, name: str) -> Operand:
        """The operand of queryable field ``name`` (checked by the caller)."""
        if name.startswith("custom."):
            return self.dialect.custom(name[len("custom.") :])
        return self._operands[name]


# --- conditions ---------------------------------------------------------------------


def compile_condition(condition: Condition, table: Table, params: Params) -> str:
    """``condition`` as a two-valued SQL expression over ``table``.

    Args:
        condition: A checked condition (every field exists).
        table: The table queried.
        params: Receives the bound values, in the order of their placeholders.

    Returns:
        SQL that is true exactly where `salesflow.conditions.evaluate` is.
    """
    if isinstance(condition, Compare):
        return _compile_compare(condition, table.operand(condition.field), table.dialect, params)
    if isinstance(condition, AllOf):
        if not condition.conditions:
            return TRUE
        return (
            "("
            + " AND ".join(compile_condition(c, table, params) for c in condition.conditions)
            + ")"
        )
    if isinstance(condition, AnyOf):
        if not condition.conditions:
            return FALSE
        return (
            "("
            + " OR ".join(compile_condition(c, table, params) for c in condition.conditions)
            + ")"
        )
    assert isinstance(condition, Not)
    return f"(NOT {compile_condition(condition.condition, table, params)})"


def _by_category(values: Iterable[Any]) -> dict[Category, list[Any]]:
    groups: dict[Category, list[Any]] = {}
    for value in values:
        cat = category_of(value)
        if cat is not None:
            groups.setdefault(cat, []).append(value)
    return groups


def _compile_compare(compare: Compare, operand: Operand, dialect: Dialect, params: Params) -> str:
    op = compare.op
    if op is Op.IS_NULL:
        return f"(NOT ({operand.present}))"
    if op is Op.NOT_NULL:
        return f"({operand.present})"
    if op in (Op.STARTS_WITH, Op.CONTAINS):
        folded = operand.folded
        if folded is None:
            return FALSE
        text = str(compare.value).casefold()
        if op is Op.STARTS_WITH:
            test = dialect.starts_with(folded, params.add(text), len(text))
        else:
            test = dialect.contains(folded, params.add(text))
        return f"({folded} IS NOT NULL AND {test})"
    if op in (Op.IN, Op.NOT_IN):
        parts: list[str] = []
        for group, values in _by_category(compare.value).items():
            expr = operand.typed.get(group)
            if expr is None:
                continue
            marks = ", ".join(params.add(operand.param(group, v)) for v in values)
            keyword = "NOT IN" if op is Op.NOT_IN and operand.single else "IN"
            parts.append(f"({expr} IS NOT NULL AND {expr} {keyword} ({marks}))")
        if op is Op.IN:
            return "(" + " OR ".join(parts) + ")" if parts else FALSE
        if not parts:
            return f"({operand.present})"
        if operand.single:
            return parts[0]
        return f"(({operand.present}) AND NOT ({' OR '.join(parts)}))"
    cat = category_of(compare.value)
    target = operand.typed.get(cat) if cat is not None else None
    if cat is None or target is None:
        return f"({operand.present})" if op is Op.NE else FALSE
    mark = params.add(operand.param(cat, compare.value))
    if op is Op.NE:
        if operand.single:
            return f"({target} IS NOT NULL AND {target} <> {mark})"
        return f"(({operand.present}) AND NOT ({target} IS NOT NULL AND {target} = {mark}))"
    symbol = {Op.EQ: "=", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}[op]
    return f"({target} IS NOT NULL AND {target} {symbol} {mark})"


def _compile_search(term: tuple[str, bool], table: Table, params: Params) -> str:
    text, contains = term
    parts = []
    for key in search_keys(table.kind):
        column = quote(key.name)
        if contains:
            parts.append(
                f"({column} IS NOT NULL AND {table.dialect.contains(column, params.add(text))})"
            )
            continue
        # A range on the stored folded key is a prefix test that uses its index.
        upper = _successor(text)
        low = f"{column} >= {params.add(text)}"
        parts.append(f"({low} AND {column} < {params.add(upper)})" if upper else f"({low})")
    return "(" + " OR ".join(parts) + ")"


def _where(query: Query, table: Table, params: Params) -> str:
    clauses = []
    if query.where is not None:
        clauses.append(compile_condition(query.where, table, params))
    term = query.search_term
    if term is not None:
        clauses.append(_compile_search(term, table, params))
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def _order(query: Query, table: Table) -> str:
    terms: list[str] = []
    for key in query.order_by:
        direction = " DESC NULLS LAST" if key.descending else " ASC NULLS FIRST"
        terms.extend(f"{t}{direction}" for t in table.operand(key.field).order)
    terms.append('"id" ASC')
    return " ORDER BY " + ", ".join(terms)


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
    session.change(
        f'INSERT INTO {meta} ("key", "value") VALUES ({p}, {p}) '
        f'ON CONFLICT ("key") DO UPDATE SET "value" = excluded."value"',
        ["schema_version", str(STORE_SCHEMA_VERSION)],
    )


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


class SQLUnit:
    """The `UnitOfWork` operations on one transaction of a SQL store.

    Args:
        tables: The table of every record kind.
        session: Runs the statements in the unit's transaction.
        commit: Commits that transaction.
    """

    def __init__(
        self, tables: Mapping[RecordKind, Table], session: Session, commit: Callable[[], None]
    ) -> None:
        self._tables = tables
        self._session = session
        self._commit = commit

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
        where = _where(query, table, params)
        rows = self._session.fetch(
            f'SELECT "doc" FROM {table.name}{where}{_order(query, table)} '
            f"LIMIT {int(query.limit)} OFFSET {int(query.offset)}",
            params.values,
        )
        items = tuple(self._as(cls, table, row[0]) for row in rows)
        if len(items) < query.limit and (items or query.offset == 0):
            total = query.offset + len(items)  # a short page ends the result: no count needed
        else:
            counted = self._session.fetch(
                f"SELECT COUNT(*) FROM {table.name}{where}", params.values
            )
            total = int(counted[0][0])
        return Page(items=items, total=total, offset=query.offset, limit=query.limit)

    def group_counts(self, cls: type[R], query: Query, field: str) -> list[GroupCount]:
        """Count the records matching ``query`` (ignoring its paging) per value of
        ``field``, ordered as sorting by ``field`` orders them (`sort_order`)."""
        check_fields(cls.KIND, [field])
        query.check(cls.KIND)
        table = self._tables[cls.KIND]
        operand = table.operand(field)
        params = Params(table.dialect.placeholder)
        where = _where(query, table, params)
        terms = ", ".join(operand.group)
        positions = ", ".join(str(i + 1) for i in range(len(operand.group)))
        rows = self._session.fetch(
            f"SELECT {terms}, COUNT(*) FROM {table.name}{where} GROUP BY {positions}",
            params.values,
        )
        # Values the database keeps apart may be equal in Python (1.10 and 1.1,
        # True and 1 in a custom field): merge them as the memory store does.
        counts: dict[Any, int] = {}
        for row in rows:
            value = operand.decode(row[:-1])
            counts[value] = counts.get(value, 0) + int(row[-1])
        order = sort_order(cls.KIND, field)
        return [
            GroupCount(value=v, count=n)
            for v, n in sorted(counts.items(), key=lambda item: order(item[0]))
        ]

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

    def commit(self) -> None:
        """Make every change of this unit durable and visible."""
        self._commit()
