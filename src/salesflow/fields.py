"""Typed keyword arguments of the create and update commands.

One `TypedDict` per record kind lists the fields a host may set, so
``engine.create_lead(topic=..., last_name=...)`` is checked by mypy. A unit test
keeps these in step with the record classes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypedDict

from salesflow.activity import LinkedInAction
from salesflow.lead import Budget, LeadSource, Need, PurchaseProcess, PurchaseTimeframe, Rating
from salesflow.party import Competitor, Stakeholder
from salesflow.values import CustomValue, Money, OwnerType

__all__ = ["AccountFields", "ActivityFields", "ContactFields", "LeadFields", "OpportunityFields"]


class LeadFields(TypedDict, total=False):
    """The fields a host may set on a lead."""

    custom: dict[str, CustomValue]
    topic: str
    salutation: str | None
    first_name: str | None
    last_name: str
    job_title: str | None
    email: str | None
    business_phone: str | None
    mobile_phone: str | None
    website: str | None
    company_name: str | None
    industry: str | None
    employees: int | None
    annual_revenue: Money | None
    street: str | None
    city: str | None
    state_province: str | None
    postal_code: str | None
    country: str | None
    description: str | None
    source: LeadSource | str | None
    rating: Rating | str | None
    budget: Budget | str | None
    budget_amount: Money | None
    purchase_timeframe: PurchaseTimeframe | str | None
    purchase_process: PurchaseProcess | str | None
    need: Need | str | None
    estimated_value: Money | None
    estimated_close_date: date | None
    do_not_email: bool
    do_not_phone: bool
    do_not_bulk_email: bool
    do_not_postal_mail: bool
    do_not_fax: bool
    owner_id: str | None
    owner_type: OwnerType | str
    campaign_id: str | None
    form_id: str | None
    parent_contact_id: str | None
    parent_account_id: str | None
    stakeholders: tuple[Stakeholder, ...]
    competitors: tuple[Competitor, ...]


class ContactFields(TypedDict, total=False):
    """The fields a host may set on a contact."""

    custom: dict[str, CustomValue]
    first_name: str | None
    last_name: str
    email: str | None
    business_phone: str | None
    mobile_phone: str | None
    job_title: str | None
    account_id: str | None
    street: str | None
    city: str | None
    state_province: str | None
    postal_code: str | None
    country: str | None
    do_not_email: bool
    do_not_phone: bool
    do_not_bulk_email: bool
    owner_id: str | None
    owner_type: OwnerType | str
    originating_lead_id: str | None
    active: bool
    description: str | None


class AccountFields(TypedDict, total=False):
    """The fields a host may set on an account."""

    custom: dict[str, CustomValue]
    name: str
    website: str | None
    email: str | None
    phone: str | None
    industry: str | None
    employees: int | None
    annual_revenue: Money | None
    street: str | None
    city: str | None
    state_province: str | None
    postal_code: str | None
    country: str | None
    primary_contact_id: str | None
    owner_id: str | None
    owner_type: OwnerType | str
    originating_lead_id: str | None
    active: bool
    description: str | None


class OpportunityFields(TypedDict, total=False):
    """The fields a host may set on an opportunity."""

    custom: dict[str, CustomValue]
    name: str
    account_id: str | None
    contact_id: str | None
    estimated_value: Money | None
    estimated_close_date: date | None
    probability: int | None
    stage: str | None
    owner_id: str | None
    owner_type: OwnerType | str
    originating_lead_id: str | None
    stakeholders: tuple[Stakeholder, ...]
    competitors: tuple[Competitor, ...]
    description: str | None


class ActivityFields(TypedDict, total=False):
    """The fields a host may set on an activity (besides its kind, subject and regarding record)."""

    custom: dict[str, CustomValue]
    description: str | None
    owner_id: str | None
    owner_type: OwnerType | str
    due_at: datetime | None
    linkedin_action: LinkedInAction | str | None
    outcome: str | None
