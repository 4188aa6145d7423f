"""Compiling `Query` and `Condition` to SQL over a `Table`, with bound parameters.

Filters, sorts and searches read the typed, indexed columns that the table
layout (`salesflow.stores.sql`) copies from every record, through each field's
`Operand` (`salesflow.stores.sql_dialect`); values are never written into the
SQL text but bound through `Params`.

Semantics equal `salesflow.conditions.evaluate`: every comparison compiles to a
two-valued SQL expression (a missing value makes it false, never NULL), so
``NOT`` means what it means in Python; values of a type the field can never
equal (text against a number, a date against a datetime, a naive datetime)
make the comparison false and ``ne`` / ``not_in`` true for present values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Not, Op
from salesflow.stores.base import Query, search_keys
from salesflow.stores.sql_dialect import Category, Dialect, Operand, Session, category_of, quote

if TYPE_CHECKING:
    from salesflow.stores.sql_layout import Table

__all__ = [
    "Params",
    "compile_condition",
    "documents_by_id",
    "order_clause",
    "prefix_range",
    "where_clause",
]

_IN_CHUNK = 500
"""How many ids one ``IN (…)`` lookup of `documents_by_id` carries."""

_TRUE = "(1 = 1)"
_FALSE = "(1 = 0)"


class Params:
    """Collects bound parameters while SQL text is built left to right."""

    def __init__(self, placeholder: str) -> None:
        self.values: list[Any] = []
        self._placeholder = placeholder

    def add(self, value: Any) -> str:
        """Bind ``value`` and return its placeholder."""
        self.values.append(value)
        return self._placeholder


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
    if isinstance(condition, AllOf | AnyOf):
        if not condition.conditions:
            return _TRUE if isinstance(condition, AllOf) else _FALSE
        joiner = " AND " if isinstance(condition, AllOf) else " OR "
        parts = [compile_condition(c, table, params) for c in condition.conditions]
        return "(" + joiner.join(parts) + ")"
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
        if operand.single:
            # The plain column itself: an index on it finds the empty rows, which
            # NOT (… IS NOT NULL) would make the database test row by row.
            (column,) = operand.typed.values()
            return f"({column} IS NULL)"
        return f"(NOT ({operand.present}))"
    if op is Op.NOT_NULL:
        return f"({operand.present})"
    if op in (Op.STARTS_WITH, Op.CONTAINS):
        folded = operand.folded
        if folded is None:
            return _FALSE
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
            return "(" + " OR ".join(parts) + ")" if parts else _FALSE
        if not parts:
            return f"({operand.present})"
        if operand.single:
            return parts[0]
        return f"(({operand.present}) AND NOT ({' OR '.join(parts)}))"
    cat = category_of(compare.value)
    target = operand.typed.get(cat) if cat is not None else None
    if cat is None or target is None:
        return f"({operand.present})" if op is Op.NE else _FALSE
    mark = params.add(operand.param(cat, compare.value))
    if op is Op.NE:
        if operand.single:
            return f"({target} IS NOT NULL AND {target} <> {mark})"
        return f"(({operand.present}) AND NOT ({target} IS NOT NULL AND {target} = {mark}))"
    symbol = {Op.EQ: "=", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}[op]
    return f"({target} IS NOT NULL AND {target} {symbol} {mark})"


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


def prefix_range(column: str, text: str, params: Params) -> str:
    """SQL: the stored folded key ``column`` starts with ``text`` (already folded),
    written as a range, which the key's index answers."""
    upper = _successor(text)
    low = f"{column} >= {params.add(text)}"
    return f"({low} AND {column} < {params.add(upper)})" if upper else f"({low})"


def _compile_search(
    term: tuple[str, bool], table: Table, params: Params, *, walk: bool = False
) -> str:
    text, contains = term
    parts = []
    for key in search_keys(table.kind):
        column = quote(key.name)
        if walk and not contains:
            column = table.dialect.walk_order_for_wide_search(column) or column
        if contains:
            parts.append(
                f"({column} IS NOT NULL AND {table.dialect.contains(column, params.add(text))})"
            )
            continue
        parts.append(prefix_range(column, text, params))
    return "(" + " OR ".join(parts) + ")"


def where_clause(query: Query, table: Table, params: Params, *, wide_search: bool = False) -> str:
    """The ``" WHERE …"`` clause of ``query`` (its condition and search term) over
    ``table``, or ``""`` when it has neither; the bound values go to ``params``.
    ``wide_search``: the search matches many rows, so the ORDER BY's index walk
    should serve the page (`Dialect.walk_order_for_wide_search`)."""
    clauses = []
    if query.where is not None:
        clauses.append(compile_condition(query.where, table, params))
    term = query.search_term
    if term is not None:
        clauses.append(_compile_search(term, table, params, walk=wide_search))
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def order_clause(query: Query, table: Table) -> str:
    """The ``" ORDER BY …"`` clause of ``query`` over ``table``: its sort keys, each
    ordered as `sort_order` orders the field, then ``"id"``, so the order is total."""
    terms: list[str] = []
    for key in query.order_by:
        direction = " DESC NULLS LAST" if key.descending else " ASC NULLS FIRST"
        terms.extend(f"{t}{direction}" for t in table.operand(key.field).order)
    terms.append('"id" ASC')
    return " ORDER BY " + ", ".join(terms)


def documents_by_id(session: Session, table: Table, ids: Sequence[str]) -> dict[str, Any]:
    """The stored ``doc`` of each of ``ids`` that ``table`` holds, by id: the second
    step of a page whose ids (and their order) one query picked."""
    found: dict[str, Any] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = list(ids[start : start + _IN_CHUNK])
        marks = ", ".join([table.dialect.placeholder] * len(chunk))
        for record_id, raw_doc in session.fetch(
            f'SELECT "id", "doc" FROM {table.name} WHERE "id" IN ({marks})', chunk
        ):
            found[str(record_id)] = raw_doc
    return found
