"""The SQL stores' shared core: the table layout and the unit of work.

`SQLiteStore` and `PostgresStore` keep the same tables and answer the same
queries; what differs between the two engines (column types, JSON access,
parameter style) is a `Dialect` (`salesflow.stores.sql_dialect`), and queries
compile to SQL in `salesflow.stores.sql_query`. This module implements the unit of
work over a `Session` (one database transaction); `salesflow.stores.sql_layout`
turns records into rows, builds and upgrades the schema and migrates old documents
(its public names are re-exported here).

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
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from salesflow.activity import Activity
from salesflow.conditions import Condition, all_of
from salesflow.conditions import field as fields
from salesflow.due import DueItem
from salesflow.errors import AlreadyExists, NotFound, StoreError, ValidationError, VersionConflict
from salesflow.stores.base import (
    ColumnType,
    GroupCount,
    Page,
    Query,
    SortKey,
    bounded_group,
    check_claim,
    check_fields,
    counted_total,
    group_count_bound,
    lookup_keys,
    search_keys,
    sort_order,
)
from salesflow.stores.sql_dialect import Session, quote
from salesflow.stores.sql_groups import option_groups, other_values
from salesflow.stores.sql_interactions import InteractionTable, InteractionUnit
from salesflow.stores.sql_layout import (
    MIGRATION_BATCH_SIZE,
    STORE_SCHEMA_VERSION,
    DueTable,
    Layout,
    Table,
    leads_an_index,
    migrate_documents,
    open_schema,
)
from salesflow.stores.sql_outbox import OutboxTable, OutboxUnit
from salesflow.stores.sql_query import (
    Params,
    documents_by_id,
    order_clause,
    prefix_range,
    where_clause,
)
from salesflow.stores.sql_reports import ReportUnit
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


def _and(where: Condition | None, condition: Condition) -> Condition:
    return condition if where is None else all_of(where, condition)


class SQLUnit(SequenceUnit, InteractionUnit, ScoreUnit, StateUnit, OutboxUnit, ReportUnit):
    """The `UnitOfWork` operations on one transaction of a SQL store (the definition
    and enrollment ones are inherited from `SequenceUnit`, the interaction ones from
    `InteractionUnit`, the lead-score ones from `ScoreUnit`, the running-state ones
    from `StateUnit`, the outbox ones from `OutboxUnit`).

    Args:
        layout: The store's tables.
        session: Runs the statements in the unit's transaction.
        commit: Commits that transaction.
        inline_nulls: Bind no None parameter when inserting or updating a record:
            write each as a literal ``NULL`` in the statement instead. For SQLite:
            Python 3.11's ``sqlite3`` binds None about ten times slower than a
            value (it raises and discards an error on the way), and a new lead has
            ~35 empty columns, an eighth of a CSV import's work. A unit writes few
            shapes of rows (which columns are empty): each shape's statement is
            built once per unit, and ``sqlite3`` prepares it once per connection.
    """

    def __init__(
        self,
        layout: Layout,
        session: Session,
        commit: Callable[[], None],
        *,
        inline_nulls: bool = False,
    ) -> None:
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
        self._shapes: dict[tuple[str, bool, tuple[bool, ...]], str] | None = (
            {} if inline_nulls else None
        )

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
        inserted = self._session.change(*self._statement(table, False, table.row(record)))
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
        changed = self._session.change(*self._statement(table, True, table.update_params(saved)))
        if changed == 0:
            stored = self._stored_version(table, record.id)
            kind = type(record).__name__
            if stored is None:
                raise NotFound(kind, record.id)
            raise VersionConflict(kind, record.id, expected=record.version, actual=stored)
        return saved

    def _statement(self, table: Table, update: bool, values: list[Any]) -> tuple[str, list[Any]]:
        """The insert (or update) of ``values`` and its parameters: as they are, or
        with each None written into the statement (see ``inline_nulls``)."""
        if self._shapes is None:
            return (table.update_sql if update else table.insert_sql), values
        present = tuple(map(operator.is_not, values, itertools.repeat(None)))
        key = (table.name, update, present)
        sql = self._shapes.get(key)
        if sql is None:
            build = table.update_sql_without if update else table.insert_sql_without
            sql = self._shapes[key] = build(present)
        return sql, list(itertools.compress(values, present))

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
        if bound is not None and leads_an_index(cls.KIND, field):
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
