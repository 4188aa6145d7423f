"""The pure lead commands: create, edit, mark contacted, qualify, disqualify, reactivate,
and the status reasons. No store, no clock: records and ``now`` go in, records and
events come out."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from salesflow import events as ev
from salesflow import lead as leads
from salesflow import qualification
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.lead import (
    Lead,
    LeadStatus,
    LeadStatusReason,
    StatusReasons,
)
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.party import Account, Competitor, Contact, Stakeholder
from salesflow.qualification import QualifyOptions
from salesflow.values import Money, OwnerType, RecordKind

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def fresh(**fields: Any) -> Lead:
    base: dict[str, Any] = {"topic": "10 laptops", "last_name": "Ruiz"}
    base.update(fields)
    lead, _ = leads.new_lead(lead_id="lead-1", fields=base, now=T0)
    return lead


def counting() -> Callable[[RecordKind], str]:
    counter = itertools.count(1)
    return lambda kind: f"{kind.value}-{next(counter)}"


def qualify(lead: Lead, options: QualifyOptions | None = None, **existing: Any) -> Any:
    return qualification.qualify(
        lead,
        options or QualifyOptions(),
        existing_account=existing.get("account"),
        existing_contact=existing.get("contact"),
        existing_opportunity=existing.get("opportunity"),
        new_id=counting(),
        now=T1,
    )


def opportunity(status: OpportunityStatus = OpportunityStatus.OPEN) -> Opportunity:
    return Opportunity(
        id="opportunity-9",
        created_at=T0,
        modified_at=T0,
        name="10 laptops",
        originating_lead_id="lead-1",
        status=status,
    )


# --- new_lead ------------------------------------------------------------------------


def test_new_lead_is_open_and_new_and_says_so() -> None:
    lead, created = leads.new_lead(
        lead_id="lead-1",
        fields={"topic": "10 laptops", "last_name": "Ruiz", "rating": "hot"},
        now=T0,
    )
    assert (lead.status, lead.status_reason) == (LeadStatus.OPEN, "new")
    assert lead.is_open
    assert (lead.version, lead.created_at, lead.modified_at, lead.closed_at) == (1, T0, T0, None)
    assert created == ev.LeadCreated(occurred_at=T0, lead_id="lead-1")


def test_new_lead_refuses_system_fields() -> None:
    with pytest.raises(ValidationError, match="no editable field 'status'") as caught:
        leads.new_lead(
            lead_id="lead-1",
            fields={"topic": "t", "last_name": "l", "status": "qualified"},
            now=T0,
        )
    assert caught.value.field == "Lead.status"


def test_new_lead_refuses_unknown_fields_and_lists_the_editable_ones() -> None:
    with pytest.raises(ValidationError, match="no editable field 'colour'") as caught:
        leads.new_lead(
            lead_id="lead-1", fields={"topic": "t", "last_name": "l", "colour": "red"}, now=T0
        )
    assert "company_name" in str(caught.value)
    assert "custom=" in str(caught.value)


def test_full_name() -> None:
    assert fresh(first_name="Ana").full_name == "Ana Ruiz"
    assert fresh().full_name == "Ruiz"


def test_editable_fields_are_every_field_but_the_system_ones() -> None:
    expected_system = {
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
    every = {a.name for a in attrs.fields(Lead)}
    assert every - leads.EDITABLE_FIELDS == expected_system
    assert {"topic", "last_name", "company_name", "custom", "stakeholders"} <= (
        leads.EDITABLE_FIELDS
    )


# --- edit and mark_contacted ---------------------------------------------------------


def test_edit_changes_fields_and_names_only_the_changed_ones() -> None:
    lead = fresh(rating="cold", city="Vilnius")
    updated, event = leads.edit(lead, {"rating": "hot", "city": "Vilnius"}, now=T1)
    assert updated.rating == "hot"
    assert updated.modified_at == T1
    assert updated.created_at == T0
    assert event == ev.LeadUpdated(occurred_at=T1, lead_id="lead-1", fields=("rating",))
    assert lead.rating == "cold"  # the input is not mutated


def test_edit_does_not_report_a_field_whose_stored_value_is_unchanged() -> None:
    # " Contoso " is stored as "Contoso" (the converter strips), so nothing changed.
    lead = fresh(company_name="Contoso")
    updated, event = leads.edit(lead, {"company_name": "  Contoso  "}, now=T1)
    assert updated.company_name == "Contoso"
    assert isinstance(event, ev.LeadUpdated)
    assert event.fields == ()


def test_edit_validates_the_new_values() -> None:
    with pytest.raises(ValidationError, match=r"Lead\.email"):
        leads.edit(fresh(), {"email": "not-an-address"}, now=T1)


def test_edit_refuses_system_fields() -> None:
    with pytest.raises(ValidationError, match="no editable field 'status_reason'"):
        leads.edit(fresh(), {"status_reason": "contacted"}, now=T1)


@pytest.mark.parametrize("status", [LeadStatus.QUALIFIED, LeadStatus.DISQUALIFIED])
def test_a_closed_lead_is_read_only(status: LeadStatus) -> None:
    closed = attrs.evolve(fresh(), status=status, closed_at=T0)
    with pytest.raises(InvalidTransition, match=r"read-only.*reactivate it first") as caught:
        leads.edit(closed, {"rating": "hot"}, now=T1)
    assert caught.value.state == status.value
    with pytest.raises(InvalidTransition, match="read-only"):
        leads.mark_contacted(closed, now=T1)
    with pytest.raises(InvalidTransition, match="read-only"):
        leads.assign(closed, "user-2", OwnerType.USER, now=T1)


def test_mark_contacted_moves_new_to_contacted() -> None:
    updated, event = leads.mark_contacted(fresh(), now=T1)
    assert (updated.status, updated.status_reason) == (LeadStatus.OPEN, "contacted")
    assert updated.modified_at == T1
    assert event == ev.LeadUpdated(occurred_at=T1, lead_id="lead-1", fields=("status_reason",))


def test_assign_sets_the_owner() -> None:
    updated = leads.assign(fresh(owner_id="user-1"), "team-9", OwnerType.TEAM, now=T1)
    assert (updated.owner_id, updated.owner_type, updated.modified_at) == (
        "team-9",
        OwnerType.TEAM,
        T1,
    )


# --- status reasons ------------------------------------------------------------------


def test_standard_status_reasons() -> None:
    reasons = StatusReasons()
    assert reasons.for_status(LeadStatus.OPEN) == ("new", "contacted")
    assert reasons.for_status(LeadStatus.QUALIFIED) == ("qualified",)
    assert reasons.for_status(LeadStatus.DISQUALIFIED) == (
        "lost",
        "cannot_contact",
        "no_longer_interested",
        "canceled",
    )


def test_reason_check_refuses_a_reason_of_another_status() -> None:
    with pytest.raises(ValidationError, match="'new' is not valid for a disqualified lead"):
        StatusReasons().check(LeadStatus.DISQUALIFIED, "new")
    assert StatusReasons().check(LeadStatus.DISQUALIFIED, "lost") == "lost"


def test_hosts_register_extra_disqualify_reasons_without_changing_the_original() -> None:
    base = StatusReasons()
    extended = base.with_disqualify_reasons(" duplicate ", "lost", "budget_cut")
    assert extended.disqualified[-2:] == ("duplicate", "budget_cut")
    assert extended.disqualified.count("lost") == 1
    assert extended.check(LeadStatus.DISQUALIFIED, "duplicate") == "duplicate"
    with pytest.raises(ValidationError):
        base.check(LeadStatus.DISQUALIFIED, "duplicate")


@pytest.mark.parametrize("reason", ["", "   ", "x" * 101, 5])
def test_malformed_extra_reasons_are_refused(reason: Any) -> None:
    with pytest.raises(ValidationError, match="disqualify reason"):
        StatusReasons().with_disqualify_reasons(reason)


# --- disqualify ----------------------------------------------------------------------


def test_disqualify_closes_an_open_lead_with_the_reason() -> None:
    updated, event = leads.disqualify(
        fresh(), "cannot_contact", reasons=StatusReasons(), qualifying_opportunity=None, now=T1
    )
    assert (updated.status, updated.status_reason) == (LeadStatus.DISQUALIFIED, "cannot_contact")
    assert (updated.closed_at, updated.modified_at) == (T1, T1)
    assert not updated.is_open
    assert event == ev.LeadDisqualified(occurred_at=T1, lead_id="lead-1", reason="cannot_contact")


def test_disqualify_refuses_an_unregistered_reason() -> None:
    with pytest.raises(ValidationError, match="'bored'") as caught:
        leads.disqualify(
            fresh(), "bored", reasons=StatusReasons(), qualifying_opportunity=None, now=T1
        )
    assert caught.value.field == "Lead.status_reason"


def test_disqualify_accepts_a_registered_host_reason() -> None:
    reasons = StatusReasons().with_disqualify_reasons("duplicate")
    updated, _ = leads.disqualify(
        fresh(), "duplicate", reasons=reasons, qualifying_opportunity=None, now=T1
    )
    assert updated.status_reason == "duplicate"


def test_a_lead_whose_qualifying_opportunity_is_open_cannot_be_disqualified() -> None:
    lead = attrs.evolve(fresh(), qualifying_opportunity_id="opportunity-9")
    with pytest.raises(InvalidTransition, match=r"'opportunity-9'.*still open") as caught:
        leads.disqualify(
            lead,
            "lost",
            reasons=StatusReasons(),
            qualifying_opportunity=opportunity(),
            now=T1,
        )
    assert (caught.value.state, caught.value.event) == ("open", "disqualify")


@pytest.mark.parametrize("status", [OpportunityStatus.WON, OpportunityStatus.LOST])
def test_a_lead_whose_qualifying_opportunity_is_closed_can_be_disqualified(
    status: OpportunityStatus,
) -> None:
    lead = attrs.evolve(fresh(), qualifying_opportunity_id="opportunity-9")
    updated, _ = leads.disqualify(
        lead, "lost", reasons=StatusReasons(), qualifying_opportunity=opportunity(status), now=T1
    )
    assert updated.status is LeadStatus.DISQUALIFIED


@pytest.mark.parametrize("status", [LeadStatus.QUALIFIED, LeadStatus.DISQUALIFIED])
def test_a_closed_lead_cannot_be_disqualified(status: LeadStatus) -> None:
    closed = attrs.evolve(fresh(), status=status, closed_at=T0)
    with pytest.raises(InvalidTransition, match="cannot disqualify") as caught:
        leads.disqualify(
            closed, "lost", reasons=StatusReasons(), qualifying_opportunity=None, now=T1
        )
    assert caught.value.state == status.value


# --- reactivate ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [LeadStatus.QUALIFIED, LeadStatus.DISQUALIFIED])
def test_reactivate_returns_a_closed_lead_to_open_new_and_keeps_its_links(
    status: LeadStatus,
) -> None:
    closed = attrs.evolve(
        fresh(),
        status=status,
        status_reason="qualified" if status is LeadStatus.QUALIFIED else "lost",
        closed_at=T0,
        qualifying_opportunity_id="opportunity-9",
        qualified_account_id="account-7",
    )
    updated, event = leads.reactivate(closed, now=T1)
    assert (updated.status, updated.status_reason, updated.closed_at) == (
        LeadStatus.OPEN,
        "new",
        None,
    )
    assert updated.qualifying_opportunity_id == "opportunity-9"
    assert updated.qualified_account_id == "account-7"
    assert event == ev.LeadReactivated(occurred_at=T1, lead_id="lead-1", previous=status.value)


def test_an_open_lead_cannot_be_reactivated() -> None:
    with pytest.raises(InvalidTransition, match="cannot reactivate while open"):
        leads.reactivate(fresh(), now=T1)


# --- qualify -------------------------------------------------------------------------


def rich_lead() -> Lead:
    return fresh(
        first_name="Ana",
        email="Ana@Contoso.com",
        company_name="Contoso",
        job_title="CTO",
        business_phone="+370 600 00000",
        website="contoso.example",
        industry="Retail",
        employees=120,
        annual_revenue=Money(amount="1000000", currency="EUR"),
        city="Vilnius",
        country="Lithuania",
        estimated_value=Money(amount=Decimal("25000.00"), currency="EUR"),
        estimated_close_date=date(2026, 6, 30),
        description="Wants laptops",
        owner_id="user-1",
        do_not_phone=True,
        stakeholders=(Stakeholder(contact_id="contact-77", role="Buyer"),),
        competitors=(Competitor(name="Fabrikam"),),
    )


def test_qualify_creates_account_contact_and_opportunity_linked_to_each_other_and_the_lead() -> (
    None
):
    lead = rich_lead()
    result, happened = qualify(lead)
    account, contact, opp = result.account, result.contact, result.opportunity
    assert isinstance(account, Account)
    assert isinstance(contact, Contact)
    assert isinstance(opp, Opportunity)
    assert (account.id, contact.id, opp.id) == ("account-1", "contact-2", "opportunity-3")
    assert (result.account_created, result.contact_created, result.opportunity_created) == (
        True,
        True,
        True,
    )
    assert result.created == (account, contact, opp)
    # every created record points back at the lead
    assert {r.originating_lead_id for r in (account, contact, opp)} == {"lead-1"}
    # company name -> account name; topic -> opportunity name; the lead's people copied
    assert account.name == "Contoso"
    assert (account.website, account.industry, account.employees) == (
        "contoso.example",
        "Retail",
        120,
    )
    assert account.primary_contact_id == contact.id
    assert (contact.first_name, contact.last_name, contact.email) == ("Ana", "Ruiz", lead.email)
    assert contact.account_id == account.id
    assert contact.do_not_phone is True
    assert opp.name == "10 laptops"
    assert (opp.account_id, opp.contact_id) == (account.id, contact.id)
    assert opp.estimated_value == Money(amount="25000.00", currency="EUR")
    assert opp.estimated_close_date == date(2026, 6, 30)
    assert opp.stakeholders == lead.stakeholders
    assert opp.competitors == lead.competitors
    assert {r.owner_id for r in (account, contact, opp)} == {"user-1"}
    assert {r.created_at for r in (account, contact, opp)} == {T1}
    # the lead is closed as qualified and points at what it became
    closed = result.lead
    assert (closed.status, closed.status_reason, closed.closed_at) == (
        LeadStatus.QUALIFIED,
        "qualified",
        T1,
    )
    assert (
        closed.qualified_account_id,
        closed.qualified_contact_id,
        closed.qualifying_opportunity_id,
    ) == (account.id, contact.id, opp.id)
    assert happened == [
        ev.AccountCreated(occurred_at=T1, account_id="account-1"),
        ev.ContactCreated(occurred_at=T1, contact_id="contact-2"),
        ev.OpportunityCreated(occurred_at=T1, opportunity_id="opportunity-3"),
        ev.LeadQualified(
            occurred_at=T1,
            lead_id="lead-1",
            account_id="account-1",
            contact_id="contact-2",
            opportunity_id="opportunity-3",
        ),
    ]
    assert lead.is_open  # the input is not mutated


def test_qualify_without_a_company_name_creates_no_account() -> None:
    result, happened = qualify(fresh())
    assert result.account is None
    assert result.contact is not None
    assert result.contact.account_id is None
    assert result.opportunity is not None
    assert result.opportunity.account_id is None
    assert result.lead.qualified_account_id is None
    assert not any(isinstance(e, ev.AccountCreated) for e in happened)


@pytest.mark.parametrize(
    ("options", "made"),
    [
        (QualifyOptions(create_account=False), {"contact", "opportunity"}),
        (QualifyOptions(create_contact=False), {"account", "opportunity"}),
        (QualifyOptions(create_opportunity=False), {"account", "contact"}),
        (
            QualifyOptions(create_account=False, create_contact=False, create_opportunity=False),
            set(),
        ),
    ],
)
def test_qualify_creates_only_what_the_options_ask_for(
    options: QualifyOptions, made: set[str]
) -> None:
    result, happened = qualify(rich_lead(), options)
    created = {r.KIND.value for r in result.created}
    assert created == made
    assert (result.account is not None) == ("account" in made)
    assert (result.contact is not None) == ("contact" in made)
    assert (result.opportunity is not None) == ("opportunity" in made)
    assert result.lead.status is LeadStatus.QUALIFIED
    assert isinstance(happened[-1], ev.LeadQualified)
    assert len(happened) == len(made) + 1


def test_qualify_without_a_contact_leaves_the_account_without_a_primary_contact() -> None:
    result, _ = qualify(rich_lead(), QualifyOptions(create_contact=False))
    assert result.account is not None
    assert result.account.primary_contact_id is None
    assert result.opportunity is not None
    assert result.opportunity.contact_id is None


def test_qualify_links_existing_account_and_contact_instead_of_creating() -> None:
    account = Account(id="account-50", created_at=T0, modified_at=T0, name="CONTOSO")
    contact = Contact(id="contact-60", created_at=T0, modified_at=T0, last_name="Ruiz")
    result, happened = qualify(rich_lead(), account=account, contact=contact)
    assert (result.account, result.contact) == (account, contact)
    assert (result.account_created, result.contact_created) == (False, False)
    assert result.created == (result.opportunity,)
    assert result.opportunity is not None
    assert (result.opportunity.account_id, result.opportunity.contact_id) == (
        "account-50",
        "contact-60",
    )
    assert account.primary_contact_id is None  # an existing account is not changed
    assert [type(e) for e in happened] == [ev.OpportunityCreated, ev.LeadQualified]


def test_requalify_reuses_the_still_open_opportunity() -> None:
    earlier = opportunity()
    lead = attrs.evolve(rich_lead(), qualifying_opportunity_id=earlier.id)
    result, happened = qualify(lead, opportunity=earlier)
    assert result.opportunity == earlier
    assert not result.opportunity_created
    assert result.lead.qualifying_opportunity_id == "opportunity-9"
    assert not any(isinstance(e, ev.OpportunityCreated) for e in happened)


@pytest.mark.parametrize("status", [LeadStatus.QUALIFIED, LeadStatus.DISQUALIFIED])
def test_a_closed_lead_cannot_be_qualified(status: LeadStatus) -> None:
    closed = attrs.evolve(fresh(), status=status, closed_at=T0)
    with pytest.raises(InvalidTransition, match="cannot qualify") as caught:
        qualify(closed)
    assert caught.value.event == "qualify"


def test_qualify_options_defaults_and_validation() -> None:
    options = QualifyOptions()
    assert (
        options.create_account,
        options.create_contact,
        options.create_opportunity,
        options.match_existing,
        options.use_existing_account,
        options.use_existing_contact,
    ) == (True, True, True, True, None, None)
    with pytest.raises(ValidationError, match=r"QualifyOptions\.match_existing"):
        QualifyOptions(match_existing="no")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"QualifyOptions\.use_existing_account"):
        QualifyOptions(use_existing_account="")


def test_matching_email_is_the_normalized_address() -> None:
    assert leads.matching_email(fresh(email=" Ana@Contoso.COM ")) == "ana@contoso.com"
    assert leads.matching_email(fresh()) is None


def test_status_reason_values_are_the_documented_ones() -> None:
    assert [r.value for r in LeadStatusReason] == [
        "new",
        "contacted",
        "qualified",
        "lost",
        "cannot_contact",
        "no_longer_interested",
        "canceled",
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"topic": "Laptops", "last_name": "Ruiz"},
        {
            "topic": " Laptops ",
            "last_name": "Ruiz",
            "first_name": "Ana",
            "email": "ana@contoso.example",
            "rating": "hot",
            "source": "web",
            "custom": {"tier": "gold"},
            "estimated_close_date": date(2026, 5, 1),
            "do_not_email": True,
        },
    ],
)
def test_new_lead_is_the_lead_the_constructor_builds(fields: dict[str, object]) -> None:
    from salesflow.lead import new_lead

    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    made, _ = new_lead(lead_id="lead-1", fields=fields, now=now)
    assert made == Lead(id="lead-1", created_at=now, modified_at=now, **fields)  # type: ignore[arg-type]
    if "custom" in fields:
        assert made.custom is not fields["custom"]


@pytest.mark.parametrize(
    "fields",
    [
        {"topic": "t", "last_name": "x" * 51},
        {"topic": "t", "last_name": "x", "email": "not an email"},
        {"topic": "t", "last_name": "x", "rating": "lukewarm"},
        {"topic": "", "last_name": "x"},
    ],
)
def test_new_lead_refuses_what_the_constructor_refuses(fields: dict[str, object]) -> None:
    from salesflow.lead import new_lead

    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with pytest.raises(ValidationError) as by_constructor:
        Lead(id="lead-1", created_at=now, modified_at=now, **fields)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as by_new_lead:
        new_lead(lead_id="lead-1", fields=fields, now=now)
    assert str(by_new_lead.value) == str(by_constructor.value)
