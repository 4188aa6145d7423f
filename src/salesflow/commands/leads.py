"""Lead commands of `Salesflow`: create, edit, assign, mark contacted, qualify
(convert), disqualify and reactivate.
"""

from __future__ import annotations

from typing import TypeVar, Unpack

import attrs

from salesflow import events as ev
from salesflow import lead as leads
from salesflow.commands.core import EngineCore
from salesflow.commands.work import Work
from salesflow.errors import ValidationError
from salesflow.fields import LeadFields
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.qualification import Qualification, QualifyOptions, qualify
from salesflow.values import (
    OwnerType,
    Record,
    RecordKind,
    normalize_name,
    to_enum,
)

__all__ = ["LeadCommands"]


R = TypeVar("R", bound=Record)


class LeadCommands(EngineCore):
    """The lead lifecycle, from creation to qualification or disqualification."""

    def create_lead(self, **fields: Unpack[LeadFields]) -> Lead:
        """Create an open lead (status reason New).

        ``topic`` and ``last_name`` are required; see `LeadFields` for the rest.

        Raises:
            ValidationError: a field is unknown, missing or malformed.
            NotFound: a parent contact/account or stakeholder does not exist.
        """
        with self._command() as work:
            lead, created = leads.new_lead(
                lead_id=self._ids(RecordKind.LEAD), fields=dict(fields), now=work.now
            )
            work.check_references(lead)
            work.add(lead)
            work.events.append(created)
        return lead

    def update_lead(
        self, lead_id: str, *, expected_version: int | None = None, **changes: Unpack[LeadFields]
    ) -> Lead:
        """Change fields of an open lead.

        Args:
            lead_id: The lead.
            expected_version: If given, the version you read; a newer stored
                version raises `VersionConflict`.
            **changes: The fields to set.

        Raises:
            InvalidTransition: the lead is closed (reactivate it first).
            ValidationError, NotFound, VersionConflict.
        """
        with self._command() as work:
            lead = work.get(Lead, lead_id, expected_version)
            updated, changed = leads.edit(lead, dict(changes), now=work.now)
            work.check_references(updated)
            saved = work.update(updated)
            work.events.append(changed)
            if updated.owner_id != lead.owner_id:
                self._owner_changed(work, lead.ref, updated.owner_id)
        assert isinstance(saved, Lead)
        return saved

    def mark_lead_contacted(self, lead_id: str) -> Lead:
        """Set an open lead's status reason to Contacted."""
        with self._command() as work:
            updated, changed = leads.mark_contacted(work.get(Lead, lead_id), now=work.now)
            saved = work.update(updated)
            work.events.append(changed)
        assert isinstance(saved, Lead)
        return saved

    def assign_lead(
        self, lead_id: str, owner_id: str, *, owner_type: OwnerType | str = OwnerType.USER
    ) -> Lead:
        """Give an open lead to another user or team."""
        kind: OwnerType = to_enum(OwnerType, owner_type, "owner_type", optional=False)
        with self._command() as work:
            return self._assign_in(work, work.get(Lead, lead_id), owner_id, kind)

    def _assign_in(
        self, work: Work, lead: Lead, owner_id: str, owner_type: OwnerType = OwnerType.USER
    ) -> Lead:
        """`assign_lead` inside ``work`` (also routing and sales acceptance): the lead
        is saved, `LeadAssigned` appended, and its sequences follow the new owner."""
        updated = leads.assign(lead, owner_id, owner_type, now=work.now)
        saved = work.update(updated)
        work.events.append(
            ev.LeadAssigned(
                occurred_at=work.now,
                lead_id=lead.id,
                owner_id=owner_id,
                previous_owner_id=lead.owner_id,
            )
        )
        if owner_id != lead.owner_id:
            self._owner_changed(work, lead.ref, owner_id)
        assert isinstance(saved, Lead)
        return saved

    def qualify_lead(self, lead_id: str, options: QualifyOptions | None = None) -> Qualification:
        """Qualify an open lead: close it and convert it into account, contact and
        opportunity, each linked back to the lead.

        Before creating, an existing contact with the lead's email and an existing
        account with the lead's company name (case and spaces ignored) are linked
        instead (unless ``options.match_existing`` is false). The lead's parent
        contact/account, when set, are used as the existing ones. Re-qualifying a
        reactivated lead whose opportunity is still open reuses that opportunity.
        All of it happens in one unit of work.

        Raises:
            InvalidTransition: the lead is not open.
            NotFound: an ``use_existing_*`` record does not exist.
        """
        options = options if options is not None else QualifyOptions()
        if not isinstance(options, QualifyOptions):
            raise ValidationError(
                f"options={options!r} must be a QualifyOptions(...), not {type(options).__name__}",
                field="options",
                value=options,
            )
        with self._command() as work:
            return self._qualify_in(work, lead_id, options)

    def _qualify_in(self, work: Work, lead_id: str, options: QualifyOptions) -> Qualification:
        """`qualify_lead` inside ``work`` (also a sequence's ``set_status`` step)."""
        lead = work.get(Lead, lead_id)
        leads.require_open(lead, "qualified")
        account = self._account_for(work, lead, options)
        contact = self._contact_for(work, lead, options)
        earlier = None
        if lead.qualifying_opportunity_id is not None:
            found = work.uow.find(Opportunity, lead.qualifying_opportunity_id)
            earlier = found if found is not None and found.is_open else None
        result, happened = qualify(
            lead,
            options,
            existing_account=account,
            existing_contact=contact,
            existing_opportunity=earlier,
            new_id=self._ids,
            now=work.now,
        )
        for record in result.created:
            work.add(record)
        saved = work.update(result.lead)
        assert isinstance(saved, Lead)
        result = attrs.evolve(result, lead=saved)
        work.events.extend(happened)
        self._record_closed(work, lead.ref, "record_qualified")
        self._lead_qualified(
            work, lead.ref, None if result.opportunity is None else result.opportunity.ref
        )
        return result

    def _account_for(self, work: Work, lead: Lead, options: QualifyOptions) -> Account | None:
        name = normalize_name(lead.company_name) if lead.company_name else None
        return _existing(
            work,
            Account,
            chosen=options.use_existing_account or lead.parent_account_id,
            creating=options.create_account,
            earlier=lead.qualified_account_id,
            match=("name_key", name) if options.match_existing else None,
        )

    def _contact_for(self, work: Work, lead: Lead, options: QualifyOptions) -> Contact | None:
        chosen = _existing(
            work,
            Contact,
            chosen=options.use_existing_contact or lead.parent_contact_id,
            creating=options.create_contact,
            earlier=lead.qualified_contact_id,
            match=None,
        )
        if chosen is not None or not options.create_contact or not options.match_existing:
            return chosen
        # the same person as intake would match: the default contact strategy
        return self._contact_like(work, lead)

    def disqualify_lead(self, lead_id: str, reason: str = "lost") -> Lead:
        """Close an open lead as disqualified with ``reason`` (a standard reason
        such as ``"cannot_contact"`` or one the host registered).

        Raises:
            InvalidTransition: the lead is closed, or its qualifying opportunity is
                still open.
            ValidationError: ``reason`` is not registered.
        """
        with self._command() as work:
            return self._disqualify_in(work, lead_id, reason)

    def _disqualify_in(self, work: Work, lead_id: str, reason: str) -> Lead:
        """`disqualify_lead` inside ``work`` (also a sequence's ``set_status`` step)."""
        lead = work.get(Lead, lead_id)
        opportunity = (
            work.uow.find(Opportunity, lead.qualifying_opportunity_id)
            if lead.qualifying_opportunity_id
            else None
        )
        updated, happened = leads.disqualify(
            lead,
            reason,
            reasons=self.reasons,
            qualifying_opportunity=opportunity,
            now=work.now,
        )
        saved = work.update(updated)
        work.events.append(happened)
        self._record_closed(work, lead.ref, "record_disqualified")
        assert isinstance(saved, Lead)
        return saved

    def reactivate_lead(self, lead_id: str) -> Lead:
        """Reopen a qualified or disqualified lead (back to Open/New)."""
        with self._command() as work:
            updated, happened = leads.reactivate(work.get(Lead, lead_id), now=work.now)
            saved = work.update(updated)
            work.events.append(happened)
        assert isinstance(saved, Lead)
        return saved


def _existing(
    work: Work,
    cls: type[R],
    *,
    chosen: str | None,
    creating: bool,
    earlier: str | None,
    match: tuple[str, str | None] | None,
) -> R | None:
    """The record a qualification links instead of creating one: the record chosen
    (explicitly or as the lead's parent), else the one this lead became when it was
    qualified before, else the most recently modified match by ``match`` key."""
    if chosen is not None:
        return work.get(cls, chosen)
    if not creating:
        return None
    if earlier is not None:
        found = work.uow.find(cls, earlier)
        if found is not None:
            return found
    if match is not None and match[1] is not None:
        matches = work.uow.find_by(cls, match[0], match[1])
        return matches[0] if matches else None
    return None
