"""The SQL stores' table of lead scores, and its unit-of-work methods.

``sf_scores`` keeps every `ScoreResult` ever added, one row each: the history.
``doc`` (`encode_score`) is the only thing read back; ``lead_id``, ``model_id``
and ``scored_at`` serve the index ``(lead_id, model_id, scored_at, seq)``, and
``seq`` numbers the scores of one lead in the order they were added (the key is
``(lead_id, seq)``), which breaks ties between scores with the same
``scored_at``. The document carries its own schema number, checked when it is
read; it is not part of `salesflow.stores.sql.migrate_documents`, which rewrites
records only.

``sf_best_scores`` keeps each scored lead's best current score (the highest
points among its current scores, one per model), rewritten by every `add_score`,
so the work list's score order and a page of leads' scores are one indexed
query: ``rank`` is the negated score, and the index ``(rank, lead_id)`` lists
the best first (layout 9; a database from before it is filled from
``sf_scores`` when opened, see `ScoreTable.backfill`). The score-ordered work
list joins it to the open activities in scope
(`ScoreUnit.scored_lead_activities`).

`ScoreTable` builds the statements once per store; `ScoreUnit` is the part of
`salesflow.stores.sql.SQLUnit` that implements the score methods of `UnitOfWork`
with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from salesflow.activity import Activity
from salesflow.conditions import Condition, all_of, field
from salesflow.errors import StoreError, ValidationError
from salesflow.scoring_compile import ScoreResult
from salesflow.stores.base import (
    ColumnType,
    check_remove_scores,
    check_scored_activities,
    check_top_scored,
)
from salesflow.stores.codec import decode_score, encode_score
from salesflow.stores.sql_dialect import Dialect, Session, dump_json
from salesflow.stores.sql_query import Params, compile_condition, documents_by_id
from salesflow.values import RecordKind

if TYPE_CHECKING:
    from salesflow.stores.sql_layout import Table

__all__ = ["ScoreTable", "ScoreUnit"]

_IN_CHUNK = 500
"""How many lead ids one ``IN (…)`` lookup carries."""

_INSERT_ATTEMPTS = 100
"""How often `ScoreUnit.add_score` takes the next ``seq`` again after another unit
committed a score of the same lead with the one it took (PostgreSQL only)."""


class ScoreTable:
    """The ``sf_scores`` table of one store: its DDL, statements and rows.

    Args:
        dialect: The SQL engine (for PostgreSQL, it names the schema of the table).
    """

    INDEX = "sf_scores__lead_id__model_id__scored_at__seq"
    """The index every score query of a lead reads."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.name = dialect.table("sf_scores")
        p = dialect.placeholder
        # ``seq`` is the lead's highest plus one, taken in the statement that inserts,
        # so it needs no engine-specific auto-increment column, and it orders the
        # lead's scores as they were committed. When two PostgreSQL units take the
        # same one, the second waits on the key until the first ends; ON CONFLICT
        # DO NOTHING then inserts nothing rather than aborting its transaction, and
        # `ScoreUnit.add_score` takes the next one again.
        self.insert_sql = (
            f'INSERT INTO {self.name} ("lead_id", "seq", "model_id", "scored_at", "doc") '
            f'SELECT {p}, COALESCE(MAX("seq"), 0) + 1, {p}, {p}, {dialect.json_placeholder} '
            f'FROM {self.name} WHERE "lead_id" = {p} ON CONFLICT DO NOTHING'
        )
        # The last row of each model in (scored_at, seq) order is the current score:
        # the one no row follows. The index holds the lead's rows in the window's
        # order, so reading it needs no sort (for a handful of rows PostgreSQL may
        # still prefer a bitmap scan and a small sort), and only the current rows
        # leave the database. SQLite sorts those few again for the final order.
        self.current_sql = (
            f'SELECT "doc" FROM (SELECT "doc", "model_id", LEAD("seq") OVER '
            f'(PARTITION BY "model_id" ORDER BY "scored_at", "seq") AS "next" '
            f'FROM {self.name} WHERE "lead_id" = {p}) AS "history" '
            f'WHERE "next" IS NULL ORDER BY "model_id"'
        )

        self.best = dialect.table("sf_best_scores")
        self.best_sql = (
            f'INSERT INTO {self.best} ("lead_id", "rank") VALUES ({p}, {p}) '
            f'ON CONFLICT ("lead_id") DO UPDATE SET "rank" = excluded."rank"'
        )

    def ddl(self) -> list[str]:
        """The statements that create the tables and their indexes if missing."""
        d = self.dialect
        text = d.sql_type(ColumnType.TEXT)
        number = d.sql_type(ColumnType.INT)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.name} ("
            f'"lead_id" {text} NOT NULL, "seq" {number} NOT NULL, '
            f'"model_id" {text} NOT NULL, "scored_at" {d.sql_type(ColumnType.DATETIME)} '
            f'NOT NULL, "doc" {d.doc_type} NOT NULL, PRIMARY KEY ("lead_id", "seq"))',
            f'CREATE INDEX IF NOT EXISTS "{self.INDEX}" ON {self.name} '
            f'("lead_id", "model_id", "scored_at", "seq")',
            f"CREATE TABLE IF NOT EXISTS {self.best} ("
            f'"lead_id" {text} PRIMARY KEY, "rank" {number} NOT NULL)',
            f'CREATE INDEX IF NOT EXISTS "sf_best_scores__rank__lead_id" ON {self.best} '
            f'("rank", "lead_id")',
            # A stopped model's clean-up finds its leads here (layout 11).
            f'CREATE INDEX IF NOT EXISTS "sf_scores__model_id__lead_id" ON {self.name} '
            f'("model_id", "lead_id")',
        ]

    def backfill(self, session: Session) -> None:
        """Fill ``sf_best_scores`` from the history of a database from before layout 9
        (run once, when such a database is opened)."""
        rows = session.fetch(f'SELECT DISTINCT "lead_id" FROM {self.name}')
        for (lead_id,) in rows:
            current = session.fetch(self.current_sql, [lead_id])
            best = max(self.decode(row[0]).points for row in current)
            session.change(self.best_sql, [lead_id, -best])

    def row(self, score: ScoreResult) -> list[Any]:
        """The parameters of `insert_sql` that store ``score``."""
        return [
            score.lead_id,
            score.model_id,
            self.dialect.store_value(ColumnType.DATETIME, score.scored_at),
            dump_json(encode_score(score), f"score of lead {score.lead_id!r}"),
            score.lead_id,
        ]

    def decode(self, raw_doc: Any) -> ScoreResult:
        """The score stored in a ``doc`` value."""
        return decode_score(self.dialect.load_json(raw_doc))


class ScoreUnit:
    """The lead-score methods of `UnitOfWork`, for `SQLUnit` to inherit.

    The inheriting class sets ``_session`` (the unit's transaction), ``_scores``
    (the store's `ScoreTable`) and ``_tables`` (its record tables).
    """

    _session: Session
    _scores: ScoreTable
    _tables: Mapping[RecordKind, Table]

    def add_score(self, score: ScoreResult) -> None:
        """Keep a lead's new score under one model (see `UnitOfWork.add_score`)."""
        if not isinstance(score, ScoreResult):
            raise ValidationError(
                f"add_score() takes a ScoreResult, not {type(score).__name__}",
                field="score",
                value=score,
            )
        t = self._scores
        row = t.row(score)
        for _ in range(_INSERT_ATTEMPTS):
            # Read committed: each attempt sees the score that took the seq before.
            if self._session.change(t.insert_sql, row) == 1:
                best = max(s.points for s in self.scores(score.lead_id))
                self._session.change(t.best_sql, [score.lead_id, -best])
                return
        raise StoreError(
            f"the score of lead {score.lead_id!r} could not be stored: other units kept "
            f"adding scores of the lead at the same time; retry"
        )

    def scores(self, lead_id: str) -> list[ScoreResult]:
        """The current score of the lead under each model, ordered by model id (see
        `UnitOfWork.scores`), in one query on the lead's index range."""
        t = self._scores
        rows = self._session.fetch(t.current_sql, [lead_id])
        return [t.decode(row[0]) for row in rows]

    def best_scores(self, lead_ids: Iterable[str]) -> dict[str, int]:
        """Each lead's best current score, for those of ``lead_ids`` with one
        (primary-key lookups, `_IN_CHUNK` at a time)."""
        t = self._scores
        wanted = list(dict.fromkeys(lead_ids))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            marks = ", ".join([t.dialect.placeholder] * len(chunk))
            rows = self._session.fetch(
                f'SELECT "lead_id", "rank" FROM {t.best} WHERE "lead_id" IN ({marks})', chunk
            )
            found.update((str(lead_id), -int(rank)) for lead_id, rank in rows)
        return found

    def top_scored_leads(
        self, limit: int, after: tuple[str, int] | None = None
    ) -> list[tuple[str, int]]:
        """The best-scored leads from the ``(rank, lead_id)`` index, after ``after``."""
        check_top_scored(limit)
        t = self._scores
        p = t.dialect.placeholder
        where, params = "", []
        if after is not None:
            where = f' WHERE ("rank", "lead_id") > ({p}, {p})'
            params = [-after[1], after[0]]
        rows = self._session.fetch(
            f'SELECT "lead_id", "rank" FROM {t.best}{where} '
            f'ORDER BY "rank", "lead_id" LIMIT {int(limit)}',
            params,
        )
        return [(str(lead_id), -int(rank)) for lead_id, rank in rows]

    def remove_model_scores(self, model_id: str, limit: int) -> list[str]:
        """Delete a model's scores of up to ``limit`` leads and recompute their best
        scores (see `UnitOfWork.remove_model_scores`)."""
        check_remove_scores(model_id, limit)
        t = self._scores
        p = t.dialect.placeholder
        rows = self._session.fetch(
            f'SELECT DISTINCT "lead_id" FROM {t.name} WHERE "model_id" = {p} '
            f'ORDER BY "lead_id" LIMIT {int(limit)}',
            [model_id],
        )
        leads = [str(row[0]) for row in rows]
        for start in range(0, len(leads), _IN_CHUNK):
            chunk = leads[start : start + _IN_CHUNK]
            marks = ", ".join([p] * len(chunk))
            self._session.change(
                f'DELETE FROM {t.name} WHERE "model_id" = {p} AND "lead_id" IN ({marks})',
                [model_id, *chunk],
            )
        for lead_id in leads:
            left = self.scores(lead_id)
            if left:
                self._session.change(t.best_sql, [lead_id, -max(s.points for s in left)])
            else:
                self._session.change(f'DELETE FROM {t.best} WHERE "lead_id" = {p}', [lead_id])
        return leads

    def scored_lead_activities(
        self, where: Condition, limit: int, offset: int = 0
    ) -> list[tuple[Activity, int]]:
        """The activities in ``where`` of scored leads, best score first (see
        `UnitOfWork.scored_lead_activities`): their ids and ranks from one join,
        then the page's documents."""
        check_scored_activities(where, limit, offset)
        table = self._tables[RecordKind.ACTIVITY]
        d = table.dialect
        params = Params(d.placeholder)
        scope = compile_condition(
            all_of(where, field("regarding_kind").eq(RecordKind.LEAD.value)), table, params
        )
        # Only the columns the join and its order read leave the scope, so the join
        # sees no activity column that could clash with the scores' names. The
        # planners pick the join by the scope's size: one seller's activities are read
        # from their index and hashed against the scores; everyone's walk the scores
        # best first and probe each lead's activities, stopping after the page.
        inner = (
            f'SELECT "id", "regarding_id", "due_at", "created_at" FROM {table.name} WHERE {scope}'
        )
        source = f'SELECT "a"."id", "b"."rank" FROM ({inner}) AS "a"'
        setting, before = d.parallel_setting, None
        if setting is not None:
            # Serial for this query alone: everyone's page takes ~6 ms in one process
            # and 15-40 ms when PostgreSQL starts workers for it.
            p = d.placeholder
            before = self._session.fetch(
                f"SELECT current_setting({p}), set_config({p}, '0', true)", [setting, setting]
            )[0][0]
        rows = self._session.fetch(
            f'{source} JOIN {self._scores.best} AS "b" ON "b"."lead_id" = "a"."regarding_id"'
            f' ORDER BY "b"."rank", "a"."due_at" IS NULL, "a"."due_at", '
            f'"a"."regarding_id", "a"."created_at", "a"."id" '
            f"LIMIT {int(limit)} OFFSET {int(offset)}",
            params.values,
        )
        if setting is not None:
            p = d.placeholder
            self._session.fetch(f"SELECT set_config({p}, {p}, true)", [setting, before])
        by_id = documents_by_id(self._session, table, [str(row[0]) for row in rows])
        found: list[tuple[Activity, int]] = []
        for activity_id, rank in rows:
            activity = table.decode(by_id[str(activity_id)])
            assert isinstance(activity, Activity)
            found.append((activity, -int(rank)))
        return found

    def score_history(self, lead_id: str, model_id: str | None = None) -> list[ScoreResult]:
        """Every score the lead had (under ``model_id`` when given), oldest first:
        ``scored_at``, then model id, then the order they were added."""
        t = self._scores
        p = t.dialect.placeholder
        where = f'"lead_id" = {p}'
        params: list[Any] = [lead_id]
        if model_id is not None:
            where += f' AND "model_id" = {p}'
            params.append(model_id)
        rows = self._session.fetch(
            f'SELECT "doc" FROM {t.name} WHERE {where} ORDER BY "scored_at", "model_id", "seq"',
            params,
        )
        return [t.decode(row[0]) for row in rows]
