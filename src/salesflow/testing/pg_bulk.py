"""Copy a `MemoryStore`'s whole contents into a fresh `PostgresStore` schema in bulk.

Large multi-process tests and benchmarks (``tests/scenarios/test_workers_exactly_once.py``,
``bench/workers.py``) need tens of thousands of leads connected to a sequence in
PostgreSQL before the workers start. Built through the engine's commands on
PostgreSQL that setup costs a round trip per statement and a commit per command
(about 750 leads/s and 750 connects/s on a 2-core machine); built on the memory
store it takes a few seconds. This module writes what the memory engine built into
PostgreSQL with the PostgreSQL store's own row encoders and column lists (the rows are
those its units of work would have written) and one ``COPY`` per table, in one
transaction, then runs ``ANALYZE`` so the planner knows the tables'
sizes as autovacuum would after a bulk load.

The copy reads the memory store's and the PostgreSQL store's internals; it is test
and benchmark support, not a migration tool. The target schema must hold no rows
of its own (a fresh ``?schema=``): ``COPY`` refuses a row whose key exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from salesflow.stores.memory import MemoryStore
from salesflow.stores.postgres import PostgresStore
from salesflow.stores.sql import SQLUnit

__all__ = ["copy_to_postgres"]


def _insert(conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> int:
    """Run ``sql`` (one of the store's ``INSERT INTO t (columns) VALUES ...``
    statements) for every row, as one ``COPY t (columns) FROM STDIN``: the same
    columns and values, without a round trip per row. JSON documents arrive as text,
    which the ``jsonb`` columns parse as the ``%s::jsonb`` casts do."""
    head, values, _ = sql.partition(" VALUES ")
    if not values or not head.startswith("INSERT INTO "):
        raise ValueError(f"not an INSERT ... VALUES statement: {sql!r}")
    count = 0
    with conn.cursor() as cursor, cursor.copy(f"COPY {head[12:]} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def copy_to_postgres(source: MemoryStore, target: PostgresStore) -> dict[str, int]:
    """Insert every record, due item, definition, enrollment, interaction, score and
    state document of ``source`` into ``target``, in one transaction.

    Returns:
        How many rows went into each table (keys: the record kinds' values, ``due``,
        ``definitions``, ``enrollments``, ``interactions``, ``scores``, ``states``).
        Scores go through the store's own `UnitOfWork.add_score`, a statement each
        (it keeps the derived tables of scores up to date).
    """
    layout = target._layout
    counts: dict[str, int] = {}
    with source._lock, target._transaction() as session:
        conn = session._conn
        for kind, records in source._records.items():
            table = layout.records[kind]
            counts[kind.value] = _insert(conn, table.insert_sql, map(table.row, records.values()))
        due = layout.due
        counts["due"] = _insert(conn, due.insert_sql, map(due.row, source._due.values()))
        sequences = layout.sequences
        counts["definitions"] = _insert(
            conn,
            sequences.insert_definition_sql,
            (
                sequences.definition_row(d)
                for versions in source._definitions.values()
                for d in versions
            ),
        )
        counts["enrollments"] = _insert(
            conn,
            sequences.insert_enrollment_sql,
            map(sequences.enrollment_row, source._enrollments.values()),
        )
        interactions = layout.interactions
        counts["interactions"] = _insert(
            conn, interactions.insert_sql, map(interactions.row, source._interactions.values())
        )
        # through the store's own unit: adding a score maintains other tables too
        unit = SQLUnit(layout, session, session.commit)
        history = [score for scores in source._scores.values() for score in scores]
        for score in history:
            unit.add_score(score)
        counts["scores"] = len(history)
        states = layout.states
        counts["states"] = _insert(
            conn,
            states.insert_sql,
            (
                [state.kind, state.key, state.version, *states.values(state)]
                for state in source._states.values()
            ),
        )
        session.commit()
        # after the commit: ANALYZE in the copy's transaction would not see its rows
        # as committed, and it takes no lock that blocks writers
        conn.execute(f"ANALYZE {', '.join(_tables(target))}")
        conn.commit()
    return counts


def _tables(target: PostgresStore) -> list[str]:
    layout = target._layout
    return [
        *(table.name for table in layout.records.values()),
        layout.due.name,
        layout.sequences.definitions,
        layout.sequences.enrollments,
        layout.interactions.name,
        layout.scores.name,
        layout.states.name,
    ]
