"""The SQL stores' outbox table, and its unit-of-work methods.

``sf_outbox`` keeps one row per `OutboxEntry`: its ``id`` (the key),
``created_at`` and, in ``doc``, the entry's event documents (``{"events": [...]}``).
The index ``(created_at, id)`` gives `OutboxUnit.claim_outbox` its order and range.
Rows live from the commit of the unit that wrote them until the sink has their
events, so the table stays small (layout 11).

`OutboxTable` builds the statements once per store; `OutboxUnit` is the part of
`salesflow.stores.sql.SQLUnit` that implements the outbox methods of `UnitOfWork`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from salesflow.errors import AlreadyExists, StoreError, ValidationError
from salesflow.outbox import OutboxEntry, check_outbox_claim
from salesflow.stores.base import ColumnType
from salesflow.stores.sql_dialect import Dialect, Session, dump_json

__all__ = ["OutboxTable", "OutboxUnit"]

_IN_CHUNK = 500
"""How many ids one ``DELETE … IN (…)`` carries."""


class OutboxTable:
    """The ``sf_outbox`` table of one store: its DDL, statements and rows.

    Args:
        dialect: The SQL engine (for PostgreSQL, it names the schema of the table).
    """

    INDEX = "sf_outbox__created_at__id"

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.name = dialect.table("sf_outbox")
        p = dialect.placeholder
        # ON CONFLICT DO NOTHING keeps PostgreSQL's transaction usable when the id is
        # taken; the row count tells.
        self.insert_sql = (
            f'INSERT INTO {self.name} ("id", "created_at", "doc") '
            f"VALUES ({p}, {p}, {dialect.json_placeholder}) ON CONFLICT DO NOTHING"
        )
        self.claim_sql = (
            f'SELECT "id", "created_at", "doc" FROM {self.name} WHERE "created_at" <= {p} '
            f'ORDER BY "created_at", "id"'
        )

    def ddl(self) -> list[str]:
        """The statements that create the table and its index if missing."""
        d = self.dialect
        text = d.sql_type(ColumnType.TEXT)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.name} ("
            f'"id" {text} PRIMARY KEY, '
            f'"created_at" {d.sql_type(ColumnType.DATETIME)} NOT NULL, '
            f'"doc" {d.doc_type} NOT NULL)',
            f'CREATE INDEX IF NOT EXISTS "{self.INDEX}" ON {self.name} ("created_at", "id")',
        ]

    def row(self, entry: OutboxEntry) -> list[Any]:
        """The parameters of `insert_sql` that store ``entry``."""
        return [
            entry.id,
            self.dialect.store_value(ColumnType.DATETIME, entry.created_at),
            dump_json({"events": list(entry.events)}, f"outbox entry {entry.id!r}"),
        ]

    def decode(self, row: tuple[Any, ...]) -> OutboxEntry:
        """The entry stored in a row of `claim_sql`."""
        entry_id, created_at, raw_doc = row
        try:
            return OutboxEntry(
                id=entry_id,
                created_at=self.dialect.load_value(ColumnType.DATETIME, created_at),
                events=self.dialect.load_json(raw_doc)["events"],
            )
        except (KeyError, TypeError, ValidationError) as exc:
            raise StoreError(f"the stored outbox entry {entry_id!r} is not valid: {exc}") from exc


class OutboxUnit:
    """The outbox methods of `UnitOfWork`, for `SQLUnit` to inherit.

    The inheriting class sets ``_session`` (the unit's transaction) and ``_outbox``
    (the store's `OutboxTable`).
    """

    _session: Session
    _outbox: OutboxTable

    def put_outbox(self, entry: OutboxEntry) -> None:
        """Keep ``entry`` in this unit (see `UnitOfWork.put_outbox`)."""
        if not isinstance(entry, OutboxEntry):
            raise ValidationError(
                f"put_outbox() takes an OutboxEntry, not {type(entry).__name__}",
                field="entry",
                value=entry,
            )
        if self._session.change(self._outbox.insert_sql, self._outbox.row(entry)) != 1:
            raise AlreadyExists("outbox entry", entry.id)

    def claim_outbox(self, before: datetime, limit: int) -> list[OutboxEntry]:
        """The oldest entries up to ``before`` (see `UnitOfWork.claim_outbox`)."""
        check_outbox_claim(before, limit)
        t = self._outbox
        rows = self._session.fetch(
            f"{t.claim_sql} LIMIT {int(limit)}{t.dialect.claim_lock}",
            [t.dialect.store_value(ColumnType.DATETIME, before)],
        )
        return [t.decode(row) for row in rows]

    def remove_outbox(self, ids: Iterable[str]) -> int:
        """Delete the entries with these ids (see `UnitOfWork.remove_outbox`)."""
        t = self._outbox
        wanted = [i for i in dict.fromkeys(ids) if isinstance(i, str)]
        removed = 0
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            marks = ", ".join([t.dialect.placeholder] * len(chunk))
            removed += self._session.change(f'DELETE FROM {t.name} WHERE "id" IN ({marks})', chunk)
        return removed
