"""What differs between SQL engines, and how Python values cross into SQL.

A `Dialect` holds what one engine does its own way: column types, JSON access,
parameter markers, case folding of text and the reading of custom fields. An
`Operand` is how one queryable field reads in SQL, for every comparison
`Category` of value; `Session` and `Transaction` are the statements of a unit of
work. The helpers here quote names and literals (`quote`, `sql_string`), build
the sort key of an option set (`option_rank`) and turn values into parameters
(`number_value`, `dump_json`). The table layout is `salesflow.stores.sql`; the
compilation of queries to SQL is `salesflow.stores.sql_query`.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

import attrs

from salesflow.errors import ValidationError
from salesflow.stores.base import Column, ColumnType
from salesflow.stores.codec import format_datetime

__all__ = [
    "Category",
    "Dialect",
    "Operand",
    "Session",
    "Transaction",
    "category_of",
    "dump_json",
    "number_value",
    "option_rank",
    "quote",
    "sql_string",
]


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
    claim_lock: str = ""
    """What ends the query that claims due items: the row locks that hide them from
    other claimers until the transaction ends, where the engine has such locks."""

    parallel_setting: str | None = None
    """The setting that lets the engine split one query over several processes, where
    it can; `UnitOfWork.scored_lead_activities` sets it to 0 for its join, whose
    parallel plan costs more to start than the serial one takes in all."""

    def walk_order_for_wide_search(self, column: str) -> str | None:
        """``column`` written so that the planner does not look it up in its index,
        for a search that matches so many rows that walking the sort's index and
        testing each row finds a page sooner than collecting every match and
        sorting them; None when the engine's planner needs no such hint."""
        return None

    def size_estimate(self, table: str) -> str | None:
        """A query whose one value estimates the rows of ``table`` cheaply (no scan);
        None when the engine has none. Only `walk_order_for_wide_search` uses it."""
        return None

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
    def seconds_between(self, start: str, end: str) -> str:
        """An expression: the seconds from date-time expression ``start`` to ``end``."""

    @abc.abstractmethod
    def table_columns(self, name: str) -> tuple[str, list[Any]]:
        """A query (and its parameters) that returns one row per column of table
        ``name``, the column's name first."""

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

    def store_converter(self, ctype: ColumnType) -> Callable[[Any], Any] | None:
        """`store_value` for ``ctype`` as one function, or ``None`` when it keeps the
        value as it is; writing a row calls it for every column, so an engine whose
        parameters are mostly the Python values says so here."""
        return lambda value: self.store_value(ctype, value)

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


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# One encoder for every document: `json.dumps` with options builds a new one per call.


def dump_json(value: Any, what: str) -> str:
    """JSON text for ``value``.

    Raises:
        ValidationError: ``value`` holds NaN or infinity, which JSON cannot carry.
    """
    try:
        return _JSON.encode(value)
    except ValueError as exc:
        raise ValidationError(
            f"{what} cannot be stored: {exc}; custom float values must be finite numbers",
            field="custom",
            value=None,
        ) from None
