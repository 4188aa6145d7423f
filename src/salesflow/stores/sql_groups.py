"""Paging a query whose first sort key is an option-set field, one value at a time.

An option-set column (`Column.options`, a field whose values come from an enum:
a lead's status, rating, source …) sorts by the position of its value among the
options (`salesflow.stores.sql_dialect.option_rank`), an expression no index
holds: sorted that way, a page of a big view (grouped by status, say) sorts every
matching row. But the order is a fixed sequence of groups, each of one value
(empty first, then each option in order, then any other text), and inside a group
the rest of the sort keys order the rows, which the indexes led by that field
serve (``(status, created_at, id)``). `option_groups` lists the groups of a query
in its order, each as a condition and the sort keys left; the SQL stores page
through them (`salesflow.stores.sql.SQLUnit.query`), reading counts of at most
the offset to skip whole groups, so a page reads about what it shows.
"""

from __future__ import annotations

from itertools import pairwise

from salesflow.conditions import Condition, all_of, any_of, field
from salesflow.stores.columns import columns_of
from salesflow.stores.query import Query, SortKey
from salesflow.values import RecordKind

__all__ = ["option_groups", "other_values"]


def option_groups(kind: RecordKind, query: Query) -> list[tuple[Condition, tuple[SortKey, ...]]]:
    """The groups of ``query``'s rows in its order when its first sort key is an
    option-set field of ``kind``, each with the sort keys that order it; empty when
    the first key is not such a field (the query is paged as one).

    Ascending: the rows without a value, then each option in order, then other
    text (by the text); descending: the reverse, empty last, as the one query
    orders them (``NULLS FIRST`` ascending, ``NULLS LAST`` descending).
    """
    if not query.order_by:
        return []
    first, rest = query.order_by[0], query.order_by[1:]
    column = {c.name: c for c in columns_of(kind)}.get(first.field)
    if column is None or column.options is None:
        return []
    name, options = column.name, column.options
    groups: list[tuple[Condition, tuple[SortKey, ...]]] = [(field(name).is_null(), rest)]
    groups += [(field(name).eq(option), rest) for option in options]
    groups.append((other_values(name, options), (first, *rest)))  # by its own text
    return groups[::-1] if first.descending else groups


def other_values(name: str, options: tuple[str, ...]) -> Condition:
    """Text of field ``name`` that is none of ``options``, as the ranges between them
    (below the first, between neighbours, above the last): each range is a seek in
    an index on the field, where ``NOT IN`` would read all of it. Records hold only
    their options, so these ranges are empty and each costs a seek."""
    ordered = sorted(options)
    ranges: list[Condition] = [field(name).lt(ordered[0])]
    ranges += [all_of(field(name).gt(low), field(name).lt(high)) for low, high in pairwise(ordered)]
    ranges.append(field(name).gt(ordered[-1]))
    return any_of(*ranges)
