"""The SQL stores' table of interactions, and its unit-of-work methods.

``sf_interactions`` keeps one row per `Interaction`. As in the other tables, ``doc``
(`encode_interaction`) is the only thing read back; the columns beside it serve the
key and the three lookups, each on an index that ends in ``(occurred_at, id)``: by
contact, by lead and by account. The document carries its own schema number,
checked when it is read; it is not part of `salesflow.stores.sql.migrate_documents`,
which rewrites records only.

`InteractionTable` builds the statements once per store; `InteractionUnit` is the
part of `salesflow.stores.sql.SQLUnit` that implements the interaction methods of
`UnitOfWork` with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from salesflow.errors import AlreadyExists, ValidationError
from salesflow.interactions import Interaction
from salesflow.stores.base import ColumnType, check_interaction_lookup
from salesflow.stores.codec import decode_interaction, encode_interaction
from salesflow.stores.sql_dialect import Dialect, Session, dump_json, quote

__all__ = ["InteractionTable", "InteractionUnit"]

_COLUMNS = ("id", "kind", "occurred_at", "contact_id", "lead_id", "account_id", "doc")


class InteractionTable:
    """The ``sf_interactions`` table of one store: its DDL, statements and rows.

    Args:
        dialect: The SQL engine (for PostgreSQL, it names the schema of the table).
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.name = dialect.table("sf_interactions")
        marks = ", ".join(
            dialect.json_placeholder if c == "doc" else dialect.placeholder for c in _COLUMNS
        )
        # ON CONFLICT DO NOTHING keeps PostgreSQL's transaction usable on a duplicate
        # id, and holds against a concurrent insert of the same id.
        self.insert_sql = (
            f"INSERT INTO {self.name} ({', '.join(quote(c) for c in _COLUMNS)}) "
            f"VALUES ({marks}) ON CONFLICT DO NOTHING"
        )

    def ddl(self) -> list[str]:
        """The statements that create the table and its indexes if missing."""
        d = self.dialect
        text = d.sql_type(ColumnType.TEXT)
        when = d.sql_type(ColumnType.DATETIME)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.name} ("
            f'"id" {text} PRIMARY KEY, "kind" {text} NOT NULL, "occurred_at" {when} NOT NULL, '
            f'"contact_id" {text}, "lead_id" {text}, "account_id" {text}, '
            f'"doc" {d.doc_type} NOT NULL)'
        ]
        # Ending in (occurred_at, id), each index serves `since` as a range and gives
        # one lookup's rows in the order the lookups return.
        for column in ("contact_id", "lead_id", "account_id"):
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {quote(f'sf_interactions__{column}')} "
                f'ON {self.name} ({quote(column)}, "occurred_at", "id")'
            )
        return statements

    def row(self, interaction: Interaction) -> list[Any]:
        """The values of the ``sf_interactions`` columns for ``interaction``."""
        i = interaction
        return [
            i.id,
            i.kind.value,
            self.dialect.store_value(ColumnType.DATETIME, i.occurred_at),
            i.contact_id,
            i.lead_id,
            i.account_id,
            dump_json(encode_interaction(i), f"interaction {i.id!r}"),
        ]

    def decode(self, raw_doc: Any) -> Interaction:
        """The interaction stored in a ``doc`` value."""
        return decode_interaction(self.dialect.load_json(raw_doc))


class InteractionUnit:
    """The interaction methods of `UnitOfWork`, for `SQLUnit` to inherit.

    The inheriting class sets ``_session`` (the unit's transaction) and
    ``_interactions`` (the store's `InteractionTable`).
    """

    _session: Session
    _interactions: InteractionTable

    def add_interaction(self, interaction: Interaction) -> None:
        """Store an interaction, or raise `AlreadyExists` when its id is stored."""
        if not isinstance(interaction, Interaction):
            raise ValidationError(
                f"add_interaction() takes an Interaction, not {type(interaction).__name__}",
                field="interaction",
                value=interaction,
            )
        t = self._interactions
        if self._session.change(t.insert_sql, t.row(interaction)) == 0:
            raise AlreadyExists("Interaction", interaction.id)

    def find_interaction(self, interaction_id: str) -> Interaction | None:
        """The interaction with ``interaction_id``, or None."""
        t = self._interactions
        rows = self._session.fetch(
            f'SELECT "doc" FROM {t.name} WHERE "id" = {t.dialect.placeholder}', [interaction_id]
        )
        return t.decode(rows[0][0]) if rows else None

    def interactions(
        self,
        *,
        contact_ids: Sequence[str] = (),
        lead_id: str | None = None,
        account_id: str | None = None,
        since: datetime | None = None,
    ) -> list[Interaction]:
        """The interactions of any of ``contact_ids``, of ``lead_id`` or of
        ``account_id``, at or after ``since`` when given, ordered by
        ``(occurred_at, id)`` (see `UnitOfWork.interactions`).

        One query: each term of the OR is answered from its own index (with
        ``since`` as a range on it), and a row matching several terms is still
        one row of the result.
        """
        check_interaction_lookup(contact_ids, lead_id, account_id, since)
        t = self._interactions
        p = t.dialect.placeholder
        terms: list[str] = []
        params: list[Any] = []
        # Duplicates would only lengthen the IN list.
        contacts = list(dict.fromkeys(contact_ids))
        if contacts:
            terms.append(f'"contact_id" IN ({", ".join(p for _ in contacts)})')
            params.extend(contacts)
        if lead_id is not None:
            terms.append(f'"lead_id" = {p}')
            params.append(lead_id)
        if account_id is not None:
            terms.append(f'"account_id" = {p}')
            params.append(account_id)
        where = f"({' OR '.join(terms)})"
        if since is not None:
            where += f' AND "occurred_at" >= {p}'
            params.append(t.dialect.store_value(ColumnType.DATETIME, since))
        rows = self._session.fetch(
            f'SELECT "doc" FROM {t.name} WHERE {where} ORDER BY "occurred_at", "id"', params
        )
        return [t.decode(row[0]) for row in rows]
