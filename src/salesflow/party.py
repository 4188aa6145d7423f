"""Contacts and accounts (organizations), and the stakeholders and competitors
that leads and opportunities list.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from salesflow.values import (
    Money,
    OwnerType,
    Record,
    RecordKind,
    count,
    email,
    flag,
    identifier,
    optional_identifier,
    optional_money,
    optional_text,
    required_text,
    text,
    to_enum,
)

__all__ = ["Account", "Competitor", "Contact", "Stakeholder"]


@attrs.frozen(kw_only=True)
class Stakeholder:
    """A contact who has a say in a sale, with their role (decision maker, …)."""

    contact_id: str = attrs.field(validator=identifier)
    role: str | None = attrs.field(default=None, converter=text, validator=optional_text(100))


@attrs.frozen(kw_only=True)
class Competitor:
    """Another vendor competing for the same sale."""

    name: str = attrs.field(converter=text, validator=required_text(100))
    website: str | None = attrs.field(default=None, converter=text, validator=optional_text(200))
    notes: str | None = attrs.field(default=None, converter=text, validator=optional_text(2000))


def _contact_owner_type(value: object) -> OwnerType:
    result: OwnerType = to_enum(OwnerType, value, "Contact.owner_type", optional=False)
    return result


def _account_owner_type(value: object) -> OwnerType:
    result: OwnerType = to_enum(OwnerType, value, "Account.owner_type", optional=False)
    return result


@attrs.define(kw_only=True)
class Contact(Record):
    """A person the organization deals with; ``last_name`` is required."""

    KIND: ClassVar[RecordKind] = RecordKind.CONTACT

    first_name: str | None = attrs.field(default=None, converter=text, validator=optional_text(50))
    last_name: str = attrs.field(converter=text, validator=required_text(50))
    email: str | None = attrs.field(default=None, converter=text, validator=email)
    business_phone: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(50)
    )
    mobile_phone: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(50)
    )
    job_title: str | None = attrs.field(default=None, converter=text, validator=optional_text(100))
    account_id: str | None = attrs.field(default=None, validator=optional_identifier)
    street: str | None = attrs.field(default=None, converter=text, validator=optional_text(250))
    city: str | None = attrs.field(default=None, converter=text, validator=optional_text(80))
    state_province: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(50)
    )
    postal_code: str | None = attrs.field(default=None, converter=text, validator=optional_text(20))
    country: str | None = attrs.field(default=None, converter=text, validator=optional_text(80))
    do_not_email: bool = attrs.field(default=False, validator=flag)
    do_not_phone: bool = attrs.field(default=False, validator=flag)
    do_not_bulk_email: bool = attrs.field(default=False, validator=flag)
    owner_id: str | None = attrs.field(default=None, validator=optional_identifier)
    owner_type: OwnerType = attrs.field(
        default=OwnerType.USER,
        converter=_contact_owner_type,
    )
    originating_lead_id: str | None = attrs.field(default=None, validator=optional_identifier)
    active: bool = attrs.field(default=True, validator=flag)
    description: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(2000)
    )

    @property
    def full_name(self) -> str:
        """First and last name joined with a space."""
        return " ".join(p for p in (self.first_name, self.last_name) if p)


@attrs.define(kw_only=True)
class Account(Record):
    """An organization: a customer, a prospect's company, a partner."""

    KIND: ClassVar[RecordKind] = RecordKind.ACCOUNT

    name: str = attrs.field(converter=text, validator=required_text(160))
    website: str | None = attrs.field(default=None, converter=text, validator=optional_text(200))
    email: str | None = attrs.field(default=None, converter=text, validator=email)
    phone: str | None = attrs.field(default=None, converter=text, validator=optional_text(50))
    industry: str | None = attrs.field(default=None, converter=text, validator=optional_text(100))
    employees: int | None = attrs.field(default=None, validator=count(10_000_000))
    annual_revenue: Money | None = attrs.field(default=None, validator=optional_money)
    street: str | None = attrs.field(default=None, converter=text, validator=optional_text(250))
    city: str | None = attrs.field(default=None, converter=text, validator=optional_text(80))
    state_province: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(50)
    )
    postal_code: str | None = attrs.field(default=None, converter=text, validator=optional_text(20))
    country: str | None = attrs.field(default=None, converter=text, validator=optional_text(80))
    primary_contact_id: str | None = attrs.field(default=None, validator=optional_identifier)
    owner_id: str | None = attrs.field(default=None, validator=optional_identifier)
    owner_type: OwnerType = attrs.field(
        default=OwnerType.USER,
        converter=_account_owner_type,
    )
    originating_lead_id: str | None = attrs.field(default=None, validator=optional_identifier)
    active: bool = attrs.field(default=True, validator=flag)
    description: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(2000)
    )
