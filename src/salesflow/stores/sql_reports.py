"""The report queries of the SQL stores (`UnitOfWork.span_stats` and
`UnitOfWork.sequence_conversions`), computed by the database."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from salesflow.stores.base import (
    ColumnType,
    Query,
    SequenceConversion,
    SpanStats,
    check_conversion_window,
    check_span,
    sort_order,
)
from salesflow.stores.sql_dialect import Session, quote
from salesflow.stores.sql_query import Params, where_clause
from salesflow.stores.sql_sequences import SequenceTables
from salesflow.values import Record, RecordKind

__all__ = ["ReportUnit"]

R = TypeVar("R", bound=Record)


class ReportUnit:
    """The report methods of `UnitOfWork`, for `salesflow.stores.sql.SQLUnit` to
    inherit. The inheriting class sets ``_session``, ``_tables`` (the record tables
    by kind) and ``_sequences``."""

    _session: Session
    _tables: Mapping[RecordKind, Any]
    _sequences: SequenceTables

    def span_stats(
        self, cls: type[R], query: Query, start: str, end: str, group_by: str | None = None
    ) -> list[SpanStats]:
        """See `UnitOfWork.span_stats`."""
        kind = cls.KIND
        check_span(kind, start, end, group_by)
        query.check(kind)
        table = self._tables[kind]
        dialect = table.dialect
        params = Params(dialect.placeholder)
        where = where_clause(query, table, params)
        both = f"{quote(start)} IS NOT NULL AND {quote(end)} IS NOT NULL"
        where = f"{where} AND {both}" if where else f" WHERE {both}"
        seconds = dialect.seconds_between(quote(start), quote(end))
        measures = f"COUNT(*), AVG({seconds}), MIN({seconds}), MAX({seconds})"
        if group_by is None:
            rows = self._session.fetch(f"SELECT {measures} FROM {table.name}{where}", params.values)
            count = int(rows[0][0]) if rows else 0
            if count == 0:
                return []
            return [_stats(None, rows[0])]
        operand = table.operand(group_by)
        terms = ", ".join(operand.group)
        positions = ", ".join(str(i + 1) for i in range(len(operand.group)))
        rows = self._session.fetch(
            f"SELECT {terms}, {measures} FROM {table.name}{where} GROUP BY {positions}",
            params.values,
        )
        width = len(operand.group)
        found = [_stats(operand.decode(row[:width]), row[width:]) for row in rows]
        order = sort_order(kind, group_by)
        return sorted(found, key=lambda s: order(s.value))

    def sequence_conversions(
        self,
        kind: RecordKind,
        since: datetime,
        until: datetime,
        *,
        owners: frozenset[str] | None = None,
        unowned: bool = True,
    ) -> list[SequenceConversion]:
        """See `UnitOfWork.sequence_conversions`."""
        check_conversion_window(kind, since, until)
        table = self._tables[kind]
        dialect = table.dialect
        p = dialect.placeholder
        if kind is RecordKind.LEAD:
            converted = f'r."status" = {p} AND r."qualifying_opportunity_id" IS NOT NULL'
            values: list[Any] = ["qualified"]
        else:
            converted = f'r."status" = {p}'
            values = ["won"]
        when = [dialect.store_value(ColumnType.DATETIME, t) for t in (since, until)]
        reach, reach_values = _owned_by(p, owners, unowned)
        rows = self._session.fetch(
            f'SELECT e."sequence_id", COUNT(*), SUM(CASE WHEN {converted} THEN 1 ELSE 0 END) '
            f'FROM {self._sequences.enrollments} e JOIN {table.name} r ON r."id" = e."record_id" '
            f'WHERE e."record_kind" = {p} AND e."connected_at" >= {p} AND e."connected_at" < {p}'
            f'{reach} GROUP BY e."sequence_id" ORDER BY e."sequence_id"',
            [*values, kind.value, *when, *reach_values],
        )
        return [
            SequenceConversion(sequence_id=row[0], connected=int(row[1]), converted=int(row[2]))
            for row in rows
        ]


def _owned_by(
    placeholder: str, owners: frozenset[str] | None, unowned: bool
) -> tuple[str, list[Any]]:
    """The ``AND …`` on the record's owner that `sequence_conversions`' ``owners``
    asks for, and its values ("" when every record counts)."""
    if owners is None:
        return "", []
    terms = []
    if owners:
        terms.append(f'r."owner_id" IN ({", ".join([placeholder] * len(owners))})')
    if unowned:
        terms.append('r."owner_id" IS NULL')
    if not terms:
        return " AND 1 = 0", []
    return f" AND ({' OR '.join(terms)})", sorted(owners)


def _stats(value: Any, measures: tuple[Any, ...] | list[Any]) -> SpanStats:
    return SpanStats(
        value=value,
        count=int(measures[0]),
        mean_seconds=float(measures[1]),
        min_seconds=float(measures[2]),
        max_seconds=float(measures[3]),
    )
