"""Plain record commands of `Salesflow`: create and update contacts, accounts and
opportunities; win, lose and reopen opportunities.
"""

from __future__ import annotations

from typing import Any, TypeVar, Unpack

import attrs

from salesflow import events as ev
from salesflow.commands.core import EngineCore
from salesflow.commands.work import CREATED, UPDATED, Work, fields_changed, require_editable
from salesflow.fields import AccountFields, ContactFields, OpportunityFields
from salesflow.lifecycle import fire
from salesflow.opportunity import (
    SYSTEM_FIELDS,
    Opportunity,
    OpportunityLifecycle,
    OpportunityStatus,
)
from salesflow.party import Account, Contact
from salesflow.values import Record, check_fields

__all__ = ["RECORD_SYSTEM", "RecordCommands"]

R = TypeVar("R", bound=Record)

RECORD_SYSTEM = frozenset({"id", "version", "created_at", "modified_at"})
"""The fields every record has that only the engine sets."""
_OPPORTUNITY_SYSTEM = SYSTEM_FIELDS  # lines change only through set_opportunity_lines & co.


class RecordCommands(EngineCore):
    """Records without a lead's lifecycle: the generic create and update, and the
    opportunity's close and reopen."""

    def _create(self, cls: type[R], fields: dict[str, Any], system: frozenset[str]) -> R:
        with self._command() as work:
            check_fields(cls, fields, system, creating=True)
            record = cls(
                id=self._ids(cls.KIND), created_at=work.now, modified_at=work.now, **fields
            )
            work.check_references(record)
            work.add(record)
            work.events.append(CREATED[cls.KIND](work.now, record.id))
        return record

    def _update(
        self,
        cls: type[R],
        record_id: str,
        expected_version: int | None,
        changes: dict[str, Any],
        system: frozenset[str],
    ) -> R:
        with self._command() as work:
            check_fields(cls, changes, system, creating=False)
            record = work.get(cls, record_id, expected_version)
            require_editable(record)
            updated = attrs.evolve(record, modified_at=work.now, **changes)
            work.check_references(updated)
            saved = work.update(updated)
            changed = fields_changed(record, updated, list(changes))
            work.events.append(UPDATED[cls.KIND](work.now, record_id, changed))
            if "owner_id" in changed:
                self._owner_changed(work, record.ref, getattr(updated, "owner_id", None))
            if "active" in changed and not getattr(updated, "active", True):
                # a deactivated contact or account is closed: its sequences end
                self._record_closed(work, record.ref, "record_closed")
        assert isinstance(saved, cls)
        return saved

    def create_contact(self, **fields: Unpack[ContactFields]) -> Contact:
        """Create a contact (``last_name`` required).

        Raises:
            ValidationError: a field is unknown, missing or malformed.
            NotFound: ``account_id`` names no account.
        """
        return self._create(Contact, dict(fields), RECORD_SYSTEM)

    def update_contact(
        self,
        contact_id: str,
        *,
        expected_version: int | None = None,
        **changes: Unpack[ContactFields],
    ) -> Contact:
        """Change fields of a contact (see `update_lead` for ``expected_version``)."""
        return self._update(Contact, contact_id, expected_version, dict(changes), RECORD_SYSTEM)

    def create_account(self, **fields: Unpack[AccountFields]) -> Account:
        """Create an account (``name`` required).

        Raises:
            ValidationError: a field is unknown, missing or malformed.
            NotFound: ``primary_contact_id`` names no contact.
        """
        return self._create(Account, dict(fields), RECORD_SYSTEM)

    def update_account(
        self,
        account_id: str,
        *,
        expected_version: int | None = None,
        **changes: Unpack[AccountFields],
    ) -> Account:
        """Change fields of an account (see `update_lead` for ``expected_version``)."""
        return self._update(Account, account_id, expected_version, dict(changes), RECORD_SYSTEM)

    def create_opportunity(self, **fields: Unpack[OpportunityFields]) -> Opportunity:
        """Create an open opportunity directly (qualifying a lead also makes one).

        Raises:
            ValidationError: a field is unknown, missing or malformed.
            NotFound: the account, contact or originating lead does not exist.
        """
        return self._create(Opportunity, dict(fields), _OPPORTUNITY_SYSTEM)

    def update_opportunity(
        self,
        opportunity_id: str,
        *,
        expected_version: int | None = None,
        **changes: Unpack[OpportunityFields],
    ) -> Opportunity:
        """Change fields of an open opportunity.

        Raises:
            InvalidTransition: the opportunity is won or lost (reopen it first).
        """
        return self._update(
            Opportunity, opportunity_id, expected_version, dict(changes), _OPPORTUNITY_SYSTEM
        )

    def _close_opportunity(
        self, opportunity_id: str, event: str, reason: str | None
    ) -> Opportunity:
        with self._command() as work:
            return self._close_opportunity_in(work, opportunity_id, event, reason)

    def _close_opportunity_in(
        self, work: Work, opportunity_id: str, event: str, reason: str | None
    ) -> Opportunity:
        """`win_opportunity` / `lose_opportunity` / `reopen_opportunity` inside ``work``."""
        opportunity = work.get(Opportunity, opportunity_id)
        status = fire(
            OpportunityLifecycle,
            opportunity.status.value,
            event,
            what=f"Opportunity {opportunity_id!r}",
        )
        reopened = status == OpportunityStatus.OPEN.value
        updated = attrs.evolve(
            opportunity,
            status=status,
            close_reason=None if reopened else reason,
            actual_close_date=None
            if reopened
            else work.now.astimezone(self.calendar.timezone).date(),
            modified_at=work.now,
        )
        saved = work.update(updated)
        if reopened:
            work.events.append(
                ev.OpportunityReopened(occurred_at=work.now, opportunity_id=opportunity_id)
            )
        else:
            work.events.append(
                ev.OpportunityClosed(
                    occurred_at=work.now,
                    opportunity_id=opportunity_id,
                    status=status,
                    reason=updated.close_reason,
                )
            )
            self._record_closed(work, opportunity.ref, "record_closed")
        assert isinstance(saved, Opportunity)
        return saved

    def win_opportunity(self, opportunity_id: str, reason: str | None = None) -> Opportunity:
        """Close an open opportunity as won."""
        return self._close_opportunity(opportunity_id, "win", reason)

    def lose_opportunity(self, opportunity_id: str, reason: str | None = None) -> Opportunity:
        """Close an open opportunity as lost."""
        return self._close_opportunity(opportunity_id, "lose", reason)

    def reopen_opportunity(self, opportunity_id: str) -> Opportunity:
        """Reopen a won or lost opportunity."""
        return self._close_opportunity(opportunity_id, "reopen", None)
