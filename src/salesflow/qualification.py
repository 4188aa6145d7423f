"""Qualifying a lead: converting it into an account, a contact and an
opportunity, each optional, linking existing records instead of duplicating
them, and closing the lead as qualified.

Pure: the engine finds the existing records to link and passes them in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from salesflow import events as ev
from salesflow.lead import Lead, LeadLifecycle, LeadStatusReason, describe
from salesflow.lifecycle import fire
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.values import Record, RecordKind, flag, optional_identifier

__all__ = ["Qualification", "QualifyOptions", "qualify"]


@attrs.frozen(kw_only=True)
class QualifyOptions:
    """What qualifying a lead creates or links.

    Each of account, contact and opportunity is created by default. Instead of
    creating, ``use_existing_account`` / ``use_existing_contact`` name a record to
    link. With ``match_existing`` (the default) an existing contact with the lead's
    email and an existing account with the lead's company name (case and spaces
    ignored) are linked instead of creating duplicates; set it to ``False`` to force
    creation. An account is only created when the lead has a company name.
    """

    create_account: bool = attrs.field(default=True, validator=flag)
    create_contact: bool = attrs.field(default=True, validator=flag)
    create_opportunity: bool = attrs.field(default=True, validator=flag)
    use_existing_account: str | None = attrs.field(default=None, validator=optional_identifier)
    use_existing_contact: str | None = attrs.field(default=None, validator=optional_identifier)
    match_existing: bool = attrs.field(default=True, validator=flag)


@attrs.frozen(kw_only=True)
class Qualification:
    """What qualifying a lead produced.

    ``account``/``contact``/``opportunity`` are the records the lead was converted
    into (``None`` when skipped); the ``*_created`` flags tell whether each was
    created now or an existing record was linked.
    """

    lead: Lead
    account: Account | None
    contact: Contact | None
    opportunity: Opportunity | None
    account_created: bool
    contact_created: bool
    opportunity_created: bool

    @property
    def created(self) -> tuple[Record, ...]:
        """The records created by this qualification."""
        made: list[Record] = []
        if self.account_created and self.account is not None:
            made.append(self.account)
        if self.contact_created and self.contact is not None:
            made.append(self.contact)
        if self.opportunity_created and self.opportunity is not None:
            made.append(self.opportunity)
        return tuple(made)


def qualify(
    lead: Lead,
    options: QualifyOptions,
    *,
    existing_account: Account | None,
    existing_contact: Contact | None,
    existing_opportunity: Opportunity | None,
    new_id: Callable[[RecordKind], str],
    now: datetime,
) -> tuple[Qualification, list[ev.Event]]:
    """Close an open lead as qualified, converting it into account, contact and
    opportunity as ``options`` ask.

    The ``existing_*`` records are those the engine found to link instead of
    creating (by explicit choice, the lead's parents, or matching); an
    ``existing_opportunity`` is the lead's earlier qualifying opportunity that is
    still open, which a re-qualification reuses instead of duplicating.

    Raises:
        InvalidTransition: the lead is not open.
    """
    status = fire(LeadLifecycle, lead.status.value, "qualify", what=describe(lead))

    # what every record converted from the lead carries over from it
    carried: dict[str, Any] = {
        "created_at": now,
        "modified_at": now,
        "street": lead.street,
        "city": lead.city,
        "state_province": lead.state_province,
        "postal_code": lead.postal_code,
        "country": lead.country,
        "owner_id": lead.owner_id,
        "owner_type": lead.owner_type,
        "originating_lead_id": lead.id,
    }
    account, account_created = existing_account, False
    if account is None and options.create_account and lead.company_name:
        account = Account(
            id=new_id(RecordKind.ACCOUNT),
            **carried,
            name=lead.company_name,
            website=lead.website,
            phone=lead.business_phone,
            industry=lead.industry,
            employees=lead.employees,
            annual_revenue=lead.annual_revenue,
        )
        account_created = True

    contact, contact_created = existing_contact, False
    if contact is None and options.create_contact:
        contact = Contact(
            id=new_id(RecordKind.CONTACT),
            **carried,
            first_name=lead.first_name,
            last_name=lead.last_name,
            email=lead.email,
            business_phone=lead.business_phone,
            mobile_phone=lead.mobile_phone,
            job_title=lead.job_title,
            account_id=account.id if account is not None else None,
            do_not_email=lead.do_not_email,
            do_not_phone=lead.do_not_phone,
            do_not_bulk_email=lead.do_not_bulk_email,
        )
        contact_created = True
    if account_created and contact is not None and account is not None:
        account = attrs.evolve(account, primary_contact_id=contact.id)

    opportunity, opportunity_created = existing_opportunity, False
    if opportunity is None and options.create_opportunity:
        opportunity = Opportunity(
            id=new_id(RecordKind.OPPORTUNITY),
            created_at=now,
            modified_at=now,
            name=lead.topic,
            account_id=account.id if account is not None else None,
            contact_id=contact.id if contact is not None else None,
            estimated_value=lead.estimated_value,
            estimated_close_date=lead.estimated_close_date,
            owner_id=lead.owner_id,
            owner_type=lead.owner_type,
            originating_lead_id=lead.id,
            stakeholders=lead.stakeholders,
            competitors=lead.competitors,
            description=lead.description,
        )
        opportunity_created = True

    updated = attrs.evolve(
        lead,
        status=status,
        status_reason=LeadStatusReason.QUALIFIED.value,
        qualifying_opportunity_id=opportunity.id
        if opportunity is not None
        else lead.qualifying_opportunity_id,
        qualified_account_id=account.id if account is not None else None,
        qualified_contact_id=contact.id if contact is not None else None,
        closed_at=now,
        modified_at=now,
    )
    result = Qualification(
        lead=updated,
        account=account,
        contact=contact,
        opportunity=opportunity,
        account_created=account_created,
        contact_created=contact_created,
        opportunity_created=opportunity_created,
    )
    happened: list[ev.Event] = []
    if account_created and account is not None:
        happened.append(ev.AccountCreated(occurred_at=now, account_id=account.id))
    if contact_created and contact is not None:
        happened.append(ev.ContactCreated(occurred_at=now, contact_id=contact.id))
    if opportunity_created and opportunity is not None:
        happened.append(ev.OpportunityCreated(occurred_at=now, opportunity_id=opportunity.id))
    happened.append(
        ev.LeadQualified(
            occurred_at=now,
            lead_id=lead.id,
            account_id=result.account.id if result.account else None,
            contact_id=result.contact.id if result.contact else None,
            opportunity_id=result.opportunity.id if result.opportunity else None,
        )
    )
    return result, happened
