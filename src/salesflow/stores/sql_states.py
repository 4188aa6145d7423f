"""The SQL stores' table of running state, and its unit-of-work methods.

``sf_states`` keeps one row per `StateDocument`, keyed by ``(kind, key)``: its
``version``, ``updated_at`` and, in ``doc``, the document itself (plain JSON values,
with no envelope or schema number of its own: what it means is up to its kind). The
primary key also gives `StateUnit.states` its order. The table is not part of
`salesflow.stores.sql.migrate_documents`, which rewrites records only.

`StateTable` builds the statements once per store; `StateUnit` is the part of
`salesflow.stores.sql.SQLUnit` that implements the running-state methods of
`UnitOfWork` with them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from salesflow.definitions import StateDocument
from salesflow.due import check_payload
from salesflow.errors import AlreadyExists, NotFound, ValidationError, VersionConflict
from salesflow.stores.base import ColumnType
from salesflow.stores.sql_dialect import Dialect, Session, dump_json

__all__ = ["StateTable", "StateUnit"]


class StateTable:
    """The ``sf_states`` table of one store: its DDL, statements and rows.

    Args:
        dialect: The SQL engine (for PostgreSQL, it names the schema of the table).
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.name = dialect.table("sf_states")
        p = dialect.placeholder
        j = dialect.json_placeholder
        # ON CONFLICT DO NOTHING keeps PostgreSQL's transaction usable when the state
        # exists, and holds against a concurrent create of the same one (which waits
        # for the first to end, then inserts nothing).
        self.insert_sql = (
            f'INSERT INTO {self.name} ("kind", "key", "version", "updated_at", "doc") '
            f"VALUES ({p}, {p}, {p}, {p}, {j}) ON CONFLICT DO NOTHING"
        )
        # One conditional statement: the version check and the write cannot be split
        # by a concurrent update (a read-then-write could lose one). On PostgreSQL a
        # second updater waits on the row lock, then sees the new version and changes
        # nothing.
        self.update_sql = (
            f'UPDATE {self.name} SET "version" = {p}, "updated_at" = {p}, "doc" = {j} '
            f'WHERE "kind" = {p} AND "key" = {p} AND "version" = {p}'
        )
        self.select_sql = f'SELECT "kind", "key", "version", "updated_at", "doc" FROM {self.name}'

    def ddl(self) -> list[str]:
        """The statements that create the table if missing."""
        d = self.dialect
        text = d.sql_type(ColumnType.TEXT)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.name} ("
            f'"kind" {text} NOT NULL, "key" {text} NOT NULL, '
            f'"version" {d.sql_type(ColumnType.INT)} NOT NULL, '
            f'"updated_at" {d.sql_type(ColumnType.DATETIME)} NOT NULL, '
            f'"doc" {d.doc_type} NOT NULL, PRIMARY KEY ("kind", "key"))'
        ]

    def values(self, state: StateDocument) -> tuple[Any, str]:
        """The ``updated_at`` and ``doc`` column values of ``state``."""
        return (
            self.dialect.store_value(ColumnType.DATETIME, state.updated_at),
            dump_json(state.document, f"{state.kind} state {state.key!r}"),
        )

    def decode(self, row: tuple[Any, ...]) -> StateDocument:
        """The state stored in a row of `select_sql`."""
        kind, key, version, updated_at, raw_doc = row
        return StateDocument(
            kind=kind,
            key=key,
            version=int(version),
            document=self.dialect.load_json(raw_doc),
            updated_at=self.dialect.load_value(ColumnType.DATETIME, updated_at),
        )


class StateUnit:
    """The running-state methods of `UnitOfWork`, for `SQLUnit` to inherit.

    The inheriting class sets ``_session`` (the unit's transaction) and ``_states``
    (the store's `StateTable`).
    """

    _session: Session
    _states: StateTable

    def get_state(self, kind: str, key: str) -> StateDocument | None:
        """The state document ``(kind, key)``, or None."""
        t = self._states
        p = t.dialect.placeholder
        rows = self._session.fetch(
            f'{t.select_sql} WHERE "kind" = {p} AND "key" = {p}', [kind, key]
        )
        return t.decode(rows[0]) if rows else None

    def put_state(
        self,
        kind: str,
        key: str,
        document: dict[str, Any],
        *,
        expected_version: int | None,
        now: datetime,
    ) -> StateDocument:
        """Store a state document: a new one when ``expected_version`` is None, else
        the next version of the stored one read at ``expected_version`` (see
        `UnitOfWork.put_state`).

        Raises:
            AlreadyExists: ``expected_version`` is None but the state exists.
            NotFound: ``expected_version`` is given but there is no such state.
            VersionConflict: the stored version is not ``expected_version``.
            ValidationError: ``document`` is not JSON values, ``now`` is naive, or
                ``expected_version`` is neither None nor a whole number.
        """
        if expected_version is not None and (
            isinstance(expected_version, bool) or not isinstance(expected_version, int)
        ):
            # PostgreSQL would refuse a bool or text compared with the version column,
            # aborting the unit's transaction: refuse it here, leaving the unit usable.
            raise ValidationError(
                f"expected_version={expected_version!r} must be None (a new state) or the "
                f"whole-number version the state was read at",
                field="expected_version",
                value=expected_version,
            )
        version = 1 if expected_version is None else expected_version + 1
        # Built (and so checked) before anything is written; the document is a copy, so
        # the caller may go on changing the dict it passed. An expected_version below 1
        # matches no row and ends in NotFound or VersionConflict, as in every store,
        # not in the version's own validation error.
        state = StateDocument(
            kind=kind,
            key=key,
            version=max(version, 1),
            document=check_payload(document, field="StateDocument.document"),
            updated_at=now,
        )
        t = self._states
        updated_at, doc = t.values(state)
        if expected_version is None:
            if self._session.change(t.insert_sql, [kind, key, 1, updated_at, doc]) == 0:
                raise AlreadyExists(f"{kind} state", key)
            return state
        params = [version, updated_at, doc, kind, key, expected_version]
        if self._session.change(t.update_sql, params) == 0:
            stored = self._state_version(kind, key)
            if stored is None:
                raise NotFound(f"{kind} state", key)
            raise VersionConflict(f"{kind} state", key, expected=expected_version, actual=stored)
        return state

    def _state_version(self, kind: str, key: str) -> int | None:
        t = self._states
        p = t.dialect.placeholder
        rows = self._session.fetch(
            f'SELECT "version" FROM {t.name} WHERE "kind" = {p} AND "key" = {p}', [kind, key]
        )
        return int(rows[0][0]) if rows else None

    def states(self, kind: str) -> list[StateDocument]:
        """Every state document of ``kind``, ordered by key (the primary key's order)."""
        t = self._states
        rows = self._session.fetch(
            f'{t.select_sql} WHERE "kind" = {t.dialect.placeholder} ORDER BY "key"', [kind]
        )
        return [t.decode(row) for row in rows]
