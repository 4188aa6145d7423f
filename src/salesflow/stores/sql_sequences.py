"""The SQL stores' tables of definitions and enrollments, and their unit-of-work methods.

``sf_definitions`` keeps every published version of every definition (a sequence,
a segment, …), one row per ``(kind, id, version)``; ``sf_enrollments`` keeps one
row per enrollment. As in the record tables, ``doc`` (`encode_definition`,
`encode_enrollment`) is the only thing read back; the columns beside it serve the
keys and indexes. Both documents carry their own schema number, checked when they
are read; they are not part of `salesflow.stores.sql.migrate_documents`, which
rewrites records only.

`SequenceTables` builds the statements once per store; `SequenceUnit` is the part
of `salesflow.stores.sql.SQLUnit` that implements the definition and enrollment
methods of `UnitOfWork` with them.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from salesflow.definitions import StoredDefinition
from salesflow.errors import AlreadyExists, NotFound, ValidationError, VersionConflict
from salesflow.sequences.enrollment import Enrollment, EnrollmentStatus
from salesflow.stores.base import ColumnType, check_key
from salesflow.stores.codec import (
    decode_definition,
    decode_enrollment,
    encode_definition,
    encode_enrollment,
)
from salesflow.stores.sql_dialect import Dialect, Session, dump_json, quote
from salesflow.values import RecordRef

__all__ = ["SequenceTables", "SequenceUnit"]

_ENDED = (EnrollmentStatus.COMPLETED.value, EnrollmentStatus.EXITED.value)

_DEFINITION_COLUMNS = ("kind", "id", "version", "state", "published_at", "doc")
_ENROLLMENT_COLUMNS = (
    "id",
    "sequence_id",
    "sequence_version",
    "record_kind",
    "record_id",
    "status",
    "due_at",
    "version",
    "connected_at",
    "doc",
)


def _definition_json(definition: StoredDefinition) -> str:
    """The ``doc`` text of ``definition``.

    Raises:
        ValidationError: its document holds a value JSON cannot carry.
    """
    try:
        return json.dumps(
            encode_definition(definition),
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        # dump_json's message is about custom fields; a definition needs its own.
        raise ValidationError(
            f"{definition.kind} definition {definition.id!r} version {definition.version} "
            f"cannot be stored: {exc}; its document may hold only dicts, lists, text, "
            f"whole numbers, finite floats, booleans and None",
            field="StoredDefinition.document",
            value=definition.document,
        ) from None


class SequenceTables:
    """The ``sf_definitions`` and ``sf_enrollments`` tables of one store: their DDL,
    statements and rows.

    Args:
        dialect: The SQL engine (for PostgreSQL, it names the schema of the tables).
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.definitions = dialect.table("sf_definitions")
        self.enrollments = dialect.table("sf_enrollments")
        p = dialect.placeholder

        def marks(columns: tuple[str, ...]) -> str:
            return ", ".join(dialect.json_placeholder if c == "doc" else p for c in columns)

        def names(columns: tuple[str, ...]) -> str:
            return ", ".join(quote(c) for c in columns)

        # ON CONFLICT DO NOTHING keeps PostgreSQL's transaction usable on a duplicate,
        # and holds against a concurrent insert of the same key.
        self.insert_definition_sql = (
            f"INSERT INTO {self.definitions} ({names(_DEFINITION_COLUMNS)}) "
            f"VALUES ({marks(_DEFINITION_COLUMNS)}) ON CONFLICT DO NOTHING"
        )
        self.set_state_sql = (
            f'UPDATE {self.definitions} SET "state" = {p}, "doc" = {dialect.json_placeholder} '
            f'WHERE "kind" = {p} AND "id" = {p} AND "version" = {p}'
        )
        self.insert_enrollment_sql = (
            f"INSERT INTO {self.enrollments} ({names(_ENROLLMENT_COLUMNS)}) "
            f"VALUES ({marks(_ENROLLMENT_COLUMNS)}) ON CONFLICT DO NOTHING"
        )
        changed = _ENROLLMENT_COLUMNS[1:]
        sets = ", ".join(
            f"{quote(c)} = {dialect.json_placeholder if c == 'doc' else p}" for c in changed
        )
        # One conditional statement: the version check and the write cannot be split
        # by a concurrent update (a read-then-write could lose one).
        self.update_enrollment_sql = (
            f'UPDATE {self.enrollments} SET {sets} WHERE "id" = {p} AND "version" = {p}'
        )

    def ddl(self) -> list[str]:
        """The statements that create both tables and their indexes if missing."""
        d = self.dialect
        text = d.sql_type(ColumnType.TEXT)
        number = d.sql_type(ColumnType.INT)
        when = d.sql_type(ColumnType.DATETIME)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.definitions} ("
            f'"kind" {text} NOT NULL, "id" {text} NOT NULL, "version" {number} NOT NULL, '
            f'"state" {text} NOT NULL, "published_at" {when} NOT NULL, '
            f'"doc" {d.doc_type} NOT NULL, PRIMARY KEY ("kind", "id", "version"))',
            f"CREATE TABLE IF NOT EXISTS {self.enrollments} ("
            f'"id" {text} PRIMARY KEY, "sequence_id" {text} NOT NULL, '
            f'"sequence_version" {number} NOT NULL, "record_kind" {text} NOT NULL, '
            f'"record_id" {text} NOT NULL, "status" {text} NOT NULL, "due_at" {when}, '
            f'"version" {number} NOT NULL, "connected_at" {when}, '
            f'"doc" {d.doc_type} NOT NULL)',
            # Ending in "id", the indexes also give the order the lookups return.
            f'CREATE INDEX IF NOT EXISTS "sf_enrollments__record" ON {self.enrollments} '
            f'("record_kind", "record_id", "id")',
            f'CREATE INDEX IF NOT EXISTS "sf_enrollments__sequence" ON {self.enrollments} '
            f'("sequence_id", "status", "id")',
        ]

    def upgrade(self) -> list[str]:
        """What a table from before layout 8 needs, after `ddl`: the ``connected_at``
        column (enrollments stored before it stay without one) and its index."""
        when = self.dialect.sql_type(ColumnType.DATETIME)
        return [
            f'ALTER TABLE {self.enrollments} ADD COLUMN "connected_at" {when}',
        ]

    def connected_index(self) -> str:
        """The index the sequence reports read enrollments by: kind and connection."""
        return (
            f'CREATE INDEX IF NOT EXISTS "sf_enrollments__connected" ON {self.enrollments} '
            f'("record_kind", "connected_at")'
        )

    def definition_row(self, definition: StoredDefinition) -> list[Any]:
        """The values of the ``sf_definitions`` columns for ``definition``."""
        return [
            definition.kind,
            definition.id,
            definition.version,
            definition.state,
            self.dialect.store_value(ColumnType.DATETIME, definition.published_at),
            _definition_json(definition),
        ]

    def enrollment_row(self, enrollment: Enrollment) -> list[Any]:
        """The values of the ``sf_enrollments`` columns for ``enrollment``."""
        e = enrollment
        return [
            e.id,
            e.sequence_id,
            e.sequence_version,
            e.record.kind.value,
            e.record.id,
            e.status.value,
            None if e.due_at is None else self.dialect.store_value(ColumnType.DATETIME, e.due_at),
            e.version,
            None
            if e.connected_at is None
            else self.dialect.store_value(ColumnType.DATETIME, e.connected_at),
            dump_json(encode_enrollment(e), f"enrollment {e.id!r}"),
        ]

    def decode_definition(self, raw_doc: Any) -> StoredDefinition:
        """The definition stored in a ``doc`` value."""
        return decode_definition(self.dialect.load_json(raw_doc))

    def decode_enrollment(self, raw_doc: Any) -> Enrollment:
        """The enrollment stored in a ``doc`` value."""
        return decode_enrollment(self.dialect.load_json(raw_doc))


class SequenceUnit:
    """The definition and enrollment methods of `UnitOfWork`, for `SQLUnit` to inherit.

    The inheriting class sets ``_session`` (the unit's transaction) and
    ``_sequences`` (the store's `SequenceTables`).
    """

    _session: Session
    _sequences: SequenceTables

    # --- definitions ---------------------------------------------------------------------

    def add_definition(self, definition: StoredDefinition) -> None:
        """Store a new version of a definition, or raise `AlreadyExists`."""
        if not isinstance(definition, StoredDefinition):
            raise ValidationError(
                f"add_definition() takes a StoredDefinition, not {type(definition).__name__}",
                field="definition",
                value=definition,
            )
        t = self._sequences
        if self._session.change(t.insert_definition_sql, t.definition_row(definition)) == 0:
            raise AlreadyExists(
                f"{definition.kind} definition", f"{definition.id} version {definition.version}"
            )

    def set_definition_state(
        self, kind: str, definition_id: str, version: int, state: str
    ) -> StoredDefinition:
        """Change the ``state`` of a stored version; return it as stored now.

        Raises:
            NotFound: no such version.
            ValidationError: ``state`` is not a valid state text.
        """
        stored = self.find_definition(kind, definition_id, version)
        if stored is None:
            raise NotFound(f"{kind} definition", f"{definition_id} version {version}")
        changed = attrs.evolve(stored, state=state)
        self._session.change(
            self._sequences.set_state_sql,
            [state, _definition_json(changed), kind, definition_id, version],
        )
        return changed

    def find_definition(
        self, kind: str, definition_id: str, version: int | None = None
    ) -> StoredDefinition | None:
        """The stored ``version`` of a definition (the latest when None), or None."""
        check_key(definition_id, "definition_id")
        t = self._sequences
        p = t.dialect.placeholder
        params: list[Any] = [kind, definition_id]
        where = f'"kind" = {p} AND "id" = {p}'
        if version is not None:
            where += f' AND "version" = {p}'
            params.append(version)
        # The primary key (kind, id, version) read backwards gives the latest first.
        rows = self._session.fetch(
            f'SELECT "doc" FROM {t.definitions} WHERE {where} ORDER BY "version" DESC LIMIT 1',
            params,
        )
        return t.decode_definition(rows[0][0]) if rows else None

    def definitions(self, kind: str) -> list[StoredDefinition]:
        """The latest version of every definition of ``kind``, ordered by id."""
        t = self._sequences
        p = t.dialect.placeholder
        rows = self._session.fetch(
            f'SELECT d."doc" FROM {t.definitions} d WHERE d."kind" = {p} AND d."version" = '
            f'(SELECT MAX(m."version") FROM {t.definitions} m '
            f'WHERE m."kind" = d."kind" AND m."id" = d."id") ORDER BY d."id"',
            [kind],
        )
        return [t.decode_definition(row[0]) for row in rows]

    # --- enrollments ---------------------------------------------------------------------

    def _enrollment_version(self, enrollment_id: str) -> int | None:
        t = self._sequences
        rows = self._session.fetch(
            f'SELECT "version" FROM {t.enrollments} WHERE "id" = {t.dialect.placeholder}',
            [enrollment_id],
        )
        return int(rows[0][0]) if rows else None

    def add_enrollment(self, enrollment: Enrollment) -> None:
        """Store a new enrollment (its ``version`` must be 1).

        Raises:
            AlreadyExists: an enrollment with its id is stored.
            VersionConflict: its version is not 1.
        """
        if not isinstance(enrollment, Enrollment):
            raise ValidationError(
                f"add_enrollment() takes an Enrollment, not {type(enrollment).__name__}",
                field="enrollment",
                value=enrollment,
            )
        if enrollment.version != 1:
            if self._enrollment_version(enrollment.id) is not None:
                raise AlreadyExists("Enrollment", enrollment.id)
            raise VersionConflict(
                "Enrollment", enrollment.id, expected=enrollment.version - 1, actual=0
            )
        t = self._sequences
        if self._session.change(t.insert_enrollment_sql, t.enrollment_row(enrollment)) == 0:
            raise AlreadyExists("Enrollment", enrollment.id)

    def update_enrollment(self, enrollment: Enrollment) -> None:
        """Store the next state of an enrollment over its ``version - 1``.

        Raises:
            NotFound: no such enrollment.
            VersionConflict: the stored version is not ``enrollment.version - 1``.
        """
        if not isinstance(enrollment, Enrollment):
            raise ValidationError(
                f"update_enrollment() takes an Enrollment, not {type(enrollment).__name__}",
                field="enrollment",
                value=enrollment,
            )
        t = self._sequences
        params = t.enrollment_row(enrollment)[1:]
        params.extend([enrollment.id, enrollment.version - 1])
        if self._session.change(t.update_enrollment_sql, params) == 0:
            stored = self._enrollment_version(enrollment.id)
            if stored is None:
                raise NotFound("Enrollment", enrollment.id)
            raise VersionConflict(
                "Enrollment", enrollment.id, expected=enrollment.version - 1, actual=stored
            )

    def find_enrollment(self, enrollment_id: str) -> Enrollment | None:
        """The enrollment with ``enrollment_id``, or None."""
        check_key(enrollment_id, "enrollment_id")
        t = self._sequences
        rows = self._session.fetch(
            f'SELECT "doc" FROM {t.enrollments} WHERE "id" = {t.dialect.placeholder}',
            [enrollment_id],
        )
        return t.decode_enrollment(rows[0][0]) if rows else None

    def enrollments(
        self,
        *,
        record: RecordRef | None = None,
        sequence_id: str | None = None,
        running: bool = False,
    ) -> list[Enrollment]:
        """The enrollments of ``record`` and/or ``sequence_id`` (all when both are None),
        only those not ended when ``running``, ordered by id."""
        t = self._sequences
        p = t.dialect.placeholder
        terms: list[str] = []
        params: list[Any] = []
        if record is not None:
            terms.append(f'"record_kind" = {p} AND "record_id" = {p}')
            params.extend([record.kind.value, record.id])
        if sequence_id is not None:
            terms.append(f'"sequence_id" = {p}')
            params.append(sequence_id)
        if running:
            terms.append(f'"status" NOT IN ({p}, {p})')
            params.extend(_ENDED)
        where = f" WHERE {' AND '.join(terms)}" if terms else ""
        rows = self._session.fetch(
            f'SELECT "doc" FROM {t.enrollments}{where} ORDER BY "id"', params
        )
        return [t.decode_enrollment(row[0]) for row in rows]
