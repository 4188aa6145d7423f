"""Leads: the record, its standard option sets, the lead lifecycle, and the pure
commands on it (create, edit, assign, qualify, disqualify, reactivate).

The functions here take the current records and ``now`` and return new records
and events; they never touch a store or a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

import attrs
from statemachine import State, StateMachine

from salesflow import events as ev
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.lifecycle import fire
from salesflow.opportunity import Opportunity, OpportunityStatus, items_of
from salesflow.party import Competitor, Stakeholder
from salesflow.values import (
    Money,
    OwnerType,
    Record,
    RecordKind,
    check_fields_fast,
    count,
    email,
    evolve_fields,
    flag,
    normalize_email,
    optional_aware,
    optional_date,
    optional_identifier,
    optional_money,
    optional_text,
    required_text,
    text,
    to_enum,
    utc,
)

__all__ = [
    "Budget",
    "Lead",
    "LeadLifecycle",
    "LeadSource",
    "LeadStatus",
    "LeadStatusReason",
    "Need",
    "PurchaseProcess",
    "PurchaseTimeframe",
    "Rating",
    "StatusReasons",
]


class LeadStatus(StrEnum):
    """The lead's state: open, or closed as qualified or disqualified."""

    OPEN = "open"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"


class LeadStatusReason(StrEnum):
    """The standard status reasons; hosts may register more disqualify reasons."""

    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    LOST = "lost"
    CANNOT_CONTACT = "cannot_contact"
    NO_LONGER_INTERESTED = "no_longer_interested"
    CANCELED = "canceled"


class Rating(StrEnum):
    """How promising the seller judges the lead."""

    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


class LeadSource(StrEnum):
    """Where the lead came from: Dynamics 365's ten sources, then the channels SPEC R1.1
    names besides them (campaign, purchased list, event, import, LinkedIn form), with
    ``other`` last. Intake sets the source of the leads it creates from its channel
    (`salesflow.intake.CHANNEL_SOURCES`) unless the submission gives one."""

    ADVERTISEMENT = "advertisement"
    EMPLOYEE_REFERRAL = "employee_referral"
    EXTERNAL_REFERRAL = "external_referral"
    PARTNER = "partner"
    PUBLIC_RELATIONS = "public_relations"
    SEMINAR = "seminar"
    TRADE_SHOW = "trade_show"
    WEB = "web"
    WORD_OF_MOUTH = "word_of_mouth"
    CAMPAIGN = "campaign"
    PURCHASED_LIST = "purchased_list"
    EVENT = "event"
    IMPORT = "import"
    LINKEDIN_FORM = "linkedin_form"
    OTHER = "other"


class Budget(StrEnum):
    """Whether the prospect has money for the purchase."""

    NO_COMMITTED_BUDGET = "no_committed_budget"
    MAY_BUY = "may_buy"
    CAN_BUY = "can_buy"
    WILL_BUY = "will_buy"


class PurchaseTimeframe(StrEnum):
    """When the prospect expects to buy."""

    IMMEDIATE = "immediate"
    THIS_QUARTER = "this_quarter"
    NEXT_QUARTER = "next_quarter"
    THIS_YEAR = "this_year"
    UNKNOWN = "unknown"


class PurchaseProcess(StrEnum):
    """Who decides the purchase."""

    INDIVIDUAL = "individual"
    COMMITTEE = "committee"
    UNKNOWN = "unknown"


class Need(StrEnum):
    """How much the prospect needs the offering."""

    MUST_HAVE = "must_have"
    SHOULD_HAVE = "should_have"
    GOOD_TO_HAVE = "good_to_have"
    NO_NEED = "no_need"


class LeadLifecycle(StateMachine):
    """The lead's status: Open → Qualified | Disqualified, and back by reactivation.

    A lead whose qualifying opportunity is still open cannot be disqualified.
    """

    open = State("Open", initial=True, value="open")
    qualified = State("Qualified", value="qualified")
    disqualified = State("Disqualified", value="disqualified")

    qualify = open.to(qualified)
    disqualify = open.to(disqualified, unless="has_open_opportunity")
    reactivate = qualified.to(open) | disqualified.to(open)

    def has_open_opportunity(self, has_open_opportunity: bool = False) -> bool:
        """Guard: the lead's qualifying opportunity is still open."""
        return has_open_opportunity


@attrs.frozen(kw_only=True)
class StatusReasons:
    """The status reasons a lead may carry in each status.

    Hosts register their own disqualify reasons with `with_disqualify_reasons`.
    """

    open: tuple[str, ...] = (LeadStatusReason.NEW.value, LeadStatusReason.CONTACTED.value)
    qualified: tuple[str, ...] = (LeadStatusReason.QUALIFIED.value,)
    disqualified: tuple[str, ...] = (
        LeadStatusReason.LOST.value,
        LeadStatusReason.CANNOT_CONTACT.value,
        LeadStatusReason.NO_LONGER_INTERESTED.value,
        LeadStatusReason.CANCELED.value,
    )

    def with_disqualify_reasons(self, *reasons: str) -> StatusReasons:
        """Return a copy that also accepts ``reasons`` when disqualifying."""
        for reason in reasons:
            if not isinstance(reason, str) or not reason.strip() or len(reason) > 100:
                raise ValidationError(
                    f"disqualify reason {reason!r} must be non-empty text of at most 100 "
                    f"characters",
                    field="StatusReasons.disqualified",
                    value=reason,
                )
        extra = tuple(r.strip() for r in reasons if r.strip() not in self.disqualified)
        return attrs.evolve(self, disqualified=self.disqualified + extra)

    def for_status(self, status: LeadStatus) -> tuple[str, ...]:
        """The reasons allowed in ``status``."""
        return {
            LeadStatus.OPEN: self.open,
            LeadStatus.QUALIFIED: self.qualified,
            LeadStatus.DISQUALIFIED: self.disqualified,
        }[status]

    def check(self, status: LeadStatus, reason: str) -> str:
        """Return ``reason`` if ``status`` allows it, else raise `ValidationError`."""
        allowed = self.for_status(status)
        if reason not in allowed:
            raise ValidationError(
                f"status reason {reason!r} is not valid for a {status.value} lead; choose one "
                f"of {', '.join(repr(r) for r in allowed)} (hosts can register more with "
                f"StatusReasons.with_disqualify_reasons)",
                field="Lead.status_reason",
                value=reason,
            )
        return reason


def _lead_source(value: object) -> LeadSource | None:
    result: LeadSource | None = to_enum(LeadSource, value, "Lead.source")
    return result


def _lead_rating(value: object) -> Rating | None:
    result: Rating | None = to_enum(Rating, value, "Lead.rating")
    return result


def _lead_budget(value: object) -> Budget | None:
    result: Budget | None = to_enum(Budget, value, "Lead.budget")
    return result


def _lead_purchase_timeframe(value: object) -> PurchaseTimeframe | None:
    result: PurchaseTimeframe | None = to_enum(PurchaseTimeframe, value, "Lead.purchase_timeframe")
    return result


def _lead_purchase_process(value: object) -> PurchaseProcess | None:
    result: PurchaseProcess | None = to_enum(PurchaseProcess, value, "Lead.purchase_process")
    return result


def _lead_need(value: object) -> Need | None:
    result: Need | None = to_enum(Need, value, "Lead.need")
    return result


def _lead_owner_type(value: object) -> OwnerType:
    result: OwnerType = to_enum(OwnerType, value, "Lead.owner_type", optional=False)
    return result


def _lead_status(value: object) -> LeadStatus:
    result: LeadStatus = to_enum(LeadStatus, value, "Lead.status", optional=False)
    return result


def _lead_stakeholders(value: object) -> tuple[Stakeholder, ...]:
    return items_of(value, Stakeholder, "Lead.stakeholders")


def _lead_competitors(value: object) -> tuple[Competitor, ...]:
    return items_of(value, Competitor, "Lead.competitors")


@attrs.define(kw_only=True)
class Lead(Record):
    """A prospective customer: the start of a sale.

    ``topic`` and ``last_name`` are required; ``company_name`` becomes the account
    name when the lead is qualified. ``status`` and ``status_reason`` change only
    through the lifecycle commands; a closed lead is read-only until reactivated.
    """

    KIND: ClassVar[RecordKind] = RecordKind.LEAD

    topic: str = attrs.field(converter=text, validator=required_text(300))
    salutation: str | None = attrs.field(default=None, converter=text, validator=optional_text(20))
    first_name: str | None = attrs.field(default=None, converter=text, validator=optional_text(50))
    last_name: str = attrs.field(converter=text, validator=required_text(50))
    job_title: str | None = attrs.field(default=None, converter=text, validator=optional_text(100))
    email: str | None = attrs.field(default=None, converter=text, validator=email)
    business_phone: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(50)
    )
    mobile_phone: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(50)
    )
    website: str | None = attrs.field(default=None, converter=text, validator=optional_text(200))
    company_name: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(100)
    )
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
    description: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(2000)
    )
    source: LeadSource | None = attrs.field(default=None, converter=_lead_source)
    rating: Rating | None = attrs.field(default=None, converter=_lead_rating)
    budget: Budget | None = attrs.field(default=None, converter=_lead_budget)
    budget_amount: Money | None = attrs.field(default=None, validator=optional_money)
    purchase_timeframe: PurchaseTimeframe | None = attrs.field(
        default=None, converter=_lead_purchase_timeframe
    )
    purchase_process: PurchaseProcess | None = attrs.field(
        default=None, converter=_lead_purchase_process
    )
    need: Need | None = attrs.field(default=None, converter=_lead_need)
    estimated_value: Money | None = attrs.field(default=None, validator=optional_money)
    estimated_close_date: date | None = attrs.field(default=None, validator=optional_date)
    do_not_email: bool = attrs.field(default=False, validator=flag)
    do_not_phone: bool = attrs.field(default=False, validator=flag)
    do_not_bulk_email: bool = attrs.field(default=False, validator=flag)
    do_not_postal_mail: bool = attrs.field(default=False, validator=flag)
    do_not_fax: bool = attrs.field(default=False, validator=flag)
    owner_id: str | None = attrs.field(default=None, validator=optional_identifier)
    owner_type: OwnerType = attrs.field(
        default=OwnerType.USER,
        converter=_lead_owner_type,
    )
    campaign_id: str | None = attrs.field(default=None, validator=optional_identifier)
    form_id: str | None = attrs.field(default=None, validator=optional_identifier)
    parent_contact_id: str | None = attrs.field(default=None, validator=optional_identifier)
    parent_account_id: str | None = attrs.field(default=None, validator=optional_identifier)
    stakeholders: tuple[Stakeholder, ...] = attrs.field(default=(), converter=_lead_stakeholders)
    competitors: tuple[Competitor, ...] = attrs.field(default=(), converter=_lead_competitors)
    status: LeadStatus = attrs.field(
        default=LeadStatus.OPEN,
        converter=_lead_status,
    )
    status_reason: str = attrs.field(default=LeadStatusReason.NEW.value)
    qualifying_opportunity_id: str | None = attrs.field(default=None, validator=optional_identifier)
    qualified_account_id: str | None = attrs.field(default=None, validator=optional_identifier)
    qualified_contact_id: str | None = attrs.field(default=None, validator=optional_identifier)
    closed_at: datetime | None = attrs.field(default=None, converter=utc, validator=optional_aware)

    @property
    def full_name(self) -> str:
        """First and last name joined with a space."""
        first, last = self.first_name, self.last_name
        if first and last:
            return f"{first} {last}"
        return first or last or ""

    @property
    def is_open(self) -> bool:
        """True while the lead is open (editable, in the open views)."""
        return self.status is LeadStatus.OPEN


SYSTEM_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "version",
        "created_at",
        "modified_at",
        "status",
        "status_reason",
        "qualifying_opportunity_id",
        "qualified_account_id",
        "qualified_contact_id",
        "closed_at",
    }
)
"""Lead fields that only lifecycle commands set."""

EDITABLE_FIELDS: frozenset[str] = frozenset(
    a.name for a in attrs.fields(Lead) if a.name not in SYSTEM_FIELDS
)
"""Lead fields a host may set on create and change with an edit."""


def describe(lead: Lead) -> str:
    """How errors name a lead: ``Lead 'lead-1'``."""
    return f"Lead {lead.id!r}"


_BLANK = Lead(
    id="blank",
    created_at=datetime(2000, 1, 1, tzinfo=UTC),
    modified_at=datetime(2000, 1, 1, tzinfo=UTC),
    topic="-",
    last_name="-",
)
"""A valid lead with every default: new leads are copies of it with the given fields
set (`evolve_fields` checks exactly those), since an import builds thousands and the
50 defaults need no checking each time."""


def new_lead(*, lead_id: str, fields: Mapping[str, Any], now: datetime) -> tuple[Lead, ev.Event]:
    """Build a new open lead from host-supplied fields.

    Raises:
        ValidationError: a field is unknown, missing or malformed.
    """
    # the required fields are among ``fields`` (checked here), so nothing of the
    # blank lead's placeholders is left
    check_fields_fast(Lead, fields, SYSTEM_FIELDS, creating=True)
    blank = _blank_at(now)
    if blank is None:  # ``now`` is refused: with the same error as ever
        lead = evolve_fields(_BLANK, id=lead_id, created_at=now, modified_at=now, **fields)
    else:
        lead = evolve_fields(blank, id=lead_id, **fields)
    return lead, ev.LeadCreated(occurred_at=now, lead_id=lead.id)


_BLANK_AT: list[tuple[object, Lead | None]] = [(object(), None)]
"""The last instant `new_lead` was given, and the blank lead created and modified
then (one tuple, so threads never see half an update)."""


def _blank_at(now: datetime) -> Lead | None:
    """The blank lead with ``now`` as its created and modified times (None when
    ``now`` is refused): the leads of one unit of work share its instant, so the
    instant is converted and checked once, not once per lead."""
    seen, blank = _BLANK_AT[0]
    if seen is not now:
        try:
            blank = evolve_fields(_BLANK, created_at=now, modified_at=now)
        except ValidationError:
            blank = None
        _BLANK_AT[0] = (now, blank)
    return blank


def require_open(lead: Lead, doing: str) -> None:
    """Raise `InvalidTransition` if ``lead`` is closed (read-only)."""
    if not lead.is_open:
        raise InvalidTransition(
            f"{describe(lead)} is {lead.status.value} and read-only, so it cannot be {doing}; "
            f"reactivate it first",
            state=lead.status.value,
            event=doing,
        )


def edit(lead: Lead, changes: Mapping[str, Any], *, now: datetime) -> tuple[Lead, ev.Event]:
    """Change editable fields of an open lead.

    Raises:
        InvalidTransition: the lead is closed.
        ValidationError: a field is unknown or a value malformed.
    """
    check_fields_fast(Lead, changes, SYSTEM_FIELDS, creating=False)
    require_open(lead, "edited")
    updated = evolve_fields(lead, modified_at=now, **changes)
    changed = tuple(sorted(k for k in changes if getattr(lead, k) != getattr(updated, k)))
    return updated, ev.LeadUpdated(occurred_at=now, lead_id=lead.id, fields=changed)


def mark_contacted(lead: Lead, *, now: datetime) -> tuple[Lead, ev.Event]:
    """Set an open lead's reason from New to Contacted."""
    require_open(lead, "marked contacted")
    updated = evolve_fields(lead, status_reason=LeadStatusReason.CONTACTED.value, modified_at=now)
    return updated, ev.LeadUpdated(occurred_at=now, lead_id=lead.id, fields=("status_reason",))


def disqualify(
    lead: Lead,
    reason: str,
    *,
    reasons: StatusReasons,
    qualifying_opportunity: Opportunity | None,
    now: datetime,
) -> tuple[Lead, ev.Event]:
    """Close an open lead as disqualified with ``reason``.

    Raises:
        ValidationError: ``reason`` is not a registered disqualify reason.
        InvalidTransition: the lead is closed, or its qualifying opportunity is open.
    """
    reasons.check(LeadStatus.DISQUALIFIED, reason)
    has_open = (
        qualifying_opportunity is not None
        and qualifying_opportunity.status is OpportunityStatus.OPEN
    )
    try:
        status = fire(
            LeadLifecycle,
            lead.status.value,
            "disqualify",
            what=describe(lead),
            has_open_opportunity=has_open,
        )
    except InvalidTransition as refused:
        if not (lead.is_open and qualifying_opportunity is not None):
            raise
        raise InvalidTransition(
            f"{describe(lead)} cannot be disqualified: the opportunity "
            f"{qualifying_opportunity.id!r} it was qualified into is still open; close that "
            f"opportunity as won or lost first",
            state=lead.status.value,
            event="disqualify",
        ) from refused
    updated = evolve_fields(
        lead, status=status, status_reason=reason, closed_at=now, modified_at=now
    )
    return updated, ev.LeadDisqualified(occurred_at=now, lead_id=lead.id, reason=reason)


def reactivate(lead: Lead, *, now: datetime) -> tuple[Lead, ev.Event]:
    """Return a closed lead to Open/New; its links to earlier records stay.

    Raises:
        InvalidTransition: the lead is already open.
    """
    previous = lead.status
    status = fire(LeadLifecycle, lead.status.value, "reactivate", what=describe(lead))
    updated = evolve_fields(
        lead,
        status=status,
        status_reason=LeadStatusReason.NEW.value,
        closed_at=None,
        modified_at=now,
    )
    return updated, ev.LeadReactivated(occurred_at=now, lead_id=lead.id, previous=previous.value)


def assign(lead: Lead, owner_id: str, owner_type: OwnerType, *, now: datetime) -> Lead:
    """Give an open lead to another user or team."""
    require_open(lead, "assigned")
    return evolve_fields(lead, owner_id=owner_id, owner_type=owner_type, modified_at=now)


def matching_email(lead: Lead) -> str | None:
    """The lead's email as a matching key, or ``None``."""
    return normalize_email(lead.email) if lead.email else None
