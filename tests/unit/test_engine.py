"""The engine: every command runs in one unit of work, publishes its events after the
commit in order, and when it fails changes nothing and publishes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from salesflow import events as ev
from salesflow.activity import Activity, ActivityKind, ActivityState
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow, sequential_ids, uuid_ids
from salesflow.errors import (
    InvalidTransition,
    NotFound,
    StoreError,
    ValidationError,
    VersionConflict,
)
from salesflow.events import ListSink
from salesflow.lead import Lead, LeadStatus, StatusReasons
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.party import Account, Contact, Stakeholder
from salesflow.qualification import QualifyOptions
from salesflow.stores.base import Query
from salesflow.stores.memory import MemoryStore
from salesflow.values import OwnerType, Record, RecordKind, RecordRef
from salesflow.worktime import OrganizationCalendar

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def count(engine: Salesflow, cls: type[Record]) -> int:
    return engine.query(cls, Query(limit=10_000)).total


def every(engine: Salesflow, cls: type[Record]) -> list[Any]:
    return list(engine.query(cls, Query(limit=10_000)).items)


@contextmanager
def unchanged(store: MemoryStore, sink: ListSink) -> Iterator[None]:
    """The block must change no record and publish no event."""
    before = store.dump()
    published = len(sink.events)
    yield
    assert store.dump() == before
    assert sink.events[published:] == []


def new_lead(engine: Salesflow, **fields: Any) -> Lead:
    base: dict[str, Any] = {"topic": "10 laptops", "last_name": "Ruiz"}
    base.update(fields)
    return engine.create_lead(**base)


def since(sink: ListSink, start: int) -> list[type[ev.Event]]:
    return [type(e) for e in sink.events[start:]]


# --- creating and editing leads ------------------------------------------------------


def test_create_lead_stores_an_open_new_lead_and_publishes_lead_created(
    engine: Salesflow, sink: ListSink
) -> None:
    lead = new_lead(engine, first_name="Ana", company_name=" Contoso ", rating="hot")
    assert lead.id == "lead-1"
    assert (lead.status, lead.status_reason, lead.version) == (LeadStatus.OPEN, "new", 1)
    assert (lead.created_at, lead.modified_at) == (T0, T0)
    assert lead.company_name == "Contoso"
    assert engine.get_lead("lead-1") == lead
    assert sink.events == [ev.LeadCreated(occurred_at=T0, lead_id="lead-1")]


def test_create_lead_refuses_a_missing_parent_and_stores_nothing(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    with unchanged(store, sink), pytest.raises(NotFound, match="'account-404'") as caught:
        new_lead(engine, parent_account_id="account-404")
    assert caught.value.kind == "Account"
    with unchanged(store, sink), pytest.raises(NotFound, match="'contact-404'") as caught:
        new_lead(engine, stakeholders=(Stakeholder(contact_id="contact-404"),))
    assert caught.value.kind == "Contact"


def test_create_lead_accepts_existing_parents_and_stakeholders(engine: Salesflow) -> None:
    account = engine.create_account(name="Contoso")
    contact = engine.create_contact(last_name="Ruiz", account_id=account.id)
    lead = new_lead(
        engine,
        parent_account_id=account.id,
        parent_contact_id=contact.id,
        stakeholders=[Stakeholder(contact_id=contact.id, role="Buyer")],
    )
    assert lead.stakeholders == (Stakeholder(contact_id=contact.id, role="Buyer"),)


def test_update_lead_changes_fields_bumps_the_version_and_names_the_changes(
    engine: Salesflow, clock: FakeClock, sink: ListSink
) -> None:
    lead = new_lead(engine, city="Vilnius")
    clock.advance(MINUTE)
    updated = engine.update_lead(lead.id, rating="warm", city="Vilnius")
    assert (updated.rating, updated.version, updated.modified_at) == ("warm", 2, T0 + MINUTE)
    assert updated.created_at == T0
    assert engine.get_lead(lead.id) == updated
    assert sink.events[-1] == ev.LeadUpdated(
        occurred_at=T0 + MINUTE, lead_id=lead.id, fields=("rating",)
    )


def test_update_lead_with_the_version_read_succeeds(engine: Salesflow) -> None:
    lead = new_lead(engine)
    assert engine.update_lead(lead.id, expected_version=1, rating="hot").version == 2


def test_update_lead_with_a_stale_version_conflicts_and_changes_nothing(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    lead = new_lead(engine)
    engine.update_lead(lead.id, rating="hot")
    with unchanged(store, sink), pytest.raises(VersionConflict) as caught:
        engine.update_lead(lead.id, expected_version=1, rating="cold")
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert "reload it and try again" in str(caught.value)
    assert engine.get_lead(lead.id).rating == "hot"


@pytest.mark.parametrize(
    ("update", "cls"),
    [
        (lambda e, i: e.update_contact(i["contact"], expected_version=1, city="Riga"), Contact),
        (lambda e, i: e.update_account(i["account"], expected_version=1, city="Riga"), Account),
        (
            lambda e, i: e.update_opportunity(i["opportunity"], expected_version=1, stage="x"),
            Opportunity,
        ),
    ],
    ids=["contact", "account", "opportunity"],
)
def test_other_updates_with_a_stale_version_conflict(
    engine: Salesflow,
    store: MemoryStore,
    sink: ListSink,
    update: Callable[[Salesflow, dict[str, str]], Any],
    cls: type[Record],
) -> None:
    made = {
        "contact": engine.create_contact(last_name="Ruiz").id,
        "account": engine.create_account(name="Contoso").id,
        "opportunity": engine.create_opportunity(name="Deal").id,
    }
    update(engine, made)  # version 1 -> 2
    with unchanged(store, sink), pytest.raises(VersionConflict, match=cls.__name__):
        update(engine, made)


def test_mark_contacted(engine: Salesflow, sink: ListSink) -> None:
    lead = new_lead(engine)
    updated = engine.mark_lead_contacted(lead.id)
    assert (updated.status_reason, updated.version) == ("contacted", 2)
    assert sink.events[-1] == ev.LeadUpdated(
        occurred_at=T0, lead_id=lead.id, fields=("status_reason",)
    )


def test_assign_lead_to_a_team(engine: Salesflow, sink: ListSink) -> None:
    lead = new_lead(engine, owner_id="user-1")
    updated = engine.assign_lead(lead.id, "team-7", owner_type="team")
    assert (updated.owner_id, updated.owner_type) == ("team-7", OwnerType.TEAM)
    assert sink.events[-1] == ev.LeadAssigned(
        occurred_at=T0, lead_id=lead.id, owner_id="team-7", previous_owner_id="user-1"
    )


@pytest.mark.parametrize(
    "command",
    [
        lambda e, lead: e.update_lead(lead.id, rating="hot"),
        lambda e, lead: e.assign_lead(lead.id, "user-2"),
        lambda e, lead: e.mark_lead_contacted(lead.id),
        lambda e, lead: e.add_activity(lead, ActivityKind.NOTE, "Too late"),
        lambda e, lead: e.add_activity(lead.ref, "task", "Too late"),
        lambda e, lead: e.qualify_lead(lead.id),
        lambda e, lead: e.disqualify_lead(lead.id, "lost"),
    ],
    ids=["update", "assign", "mark_contacted", "note", "task", "qualify", "disqualify"],
)
@pytest.mark.parametrize("closing", ["qualify", "disqualify"])
def test_a_closed_lead_refuses_every_change_until_reactivated(
    engine: Salesflow,
    store: MemoryStore,
    sink: ListSink,
    command: Callable[[Salesflow, Lead], Any],
    closing: str,
) -> None:
    lead = new_lead(engine, company_name="Contoso", email="ana@contoso.com")
    if closing == "qualify":
        engine.qualify_lead(lead.id, QualifyOptions(create_opportunity=False))
    else:
        engine.disqualify_lead(lead.id, "cannot_contact")
    with unchanged(store, sink), pytest.raises(InvalidTransition) as caught:
        command(engine, lead)
    assert caught.value.state == ("qualified" if closing == "qualify" else "disqualified")
    engine.reactivate_lead(lead.id)
    command(engine, engine.get_lead(lead.id))  # allowed again once reactivated


def test_a_lead_can_carry_activities_of_every_kind_while_open(engine: Salesflow) -> None:
    lead = new_lead(engine)
    for kind in ActivityKind:
        assert engine.add_activity(lead, kind, f"A {kind.value}").kind is kind
    assert len(engine.timeline(lead)) == len(ActivityKind)


# --- qualify -------------------------------------------------------------------------


def test_qualify_creates_account_contact_and_opportunity_in_one_unit_of_work(
    engine: Salesflow, sink: ListSink, clock: FakeClock
) -> None:
    lead = new_lead(
        engine, first_name="Ana", email="Ana@Contoso.com", company_name="Contoso", owner_id="u-1"
    )
    clock.advance(MINUTE)
    start = len(sink.events)
    result = engine.qualify_lead(lead.id)
    now = T0 + MINUTE
    assert (result.account, result.contact, result.opportunity) == (
        engine.get(Account, "account-2"),
        engine.get(Contact, "contact-3"),
        engine.get(Opportunity, "opportunity-4"),
    )
    assert result.lead == engine.get_lead(lead.id)
    assert (result.lead.status, result.lead.version, result.lead.closed_at) == (
        LeadStatus.QUALIFIED,
        2,
        now,
    )
    assert (
        result.lead.qualified_account_id,
        result.lead.qualified_contact_id,
        result.lead.qualifying_opportunity_id,
    ) == ("account-2", "contact-3", "opportunity-4")
    for record in (result.account, result.contact, result.opportunity):
        assert record is not None
        assert record.originating_lead_id == lead.id
    assert result.opportunity is not None
    assert (result.opportunity.account_id, result.opportunity.contact_id) == (
        "account-2",
        "contact-3",
    )
    assert sink.events[start:] == [
        ev.AccountCreated(occurred_at=now, account_id="account-2"),
        ev.ContactCreated(occurred_at=now, contact_id="contact-3"),
        ev.OpportunityCreated(occurred_at=now, opportunity_id="opportunity-4"),
        ev.LeadQualified(
            occurred_at=now,
            lead_id=lead.id,
            account_id="account-2",
            contact_id="contact-3",
            opportunity_id="opportunity-4",
        ),
    ]


def test_qualify_links_an_existing_account_by_name_and_contact_by_email(
    engine: Salesflow,
) -> None:
    account = engine.create_account(name="Contoso  Ltd")
    contact = engine.create_contact(last_name="Ruiz", email="ana@contoso.com")
    lead = new_lead(engine, company_name=" contoso ltd", email="ANA@Contoso.com")
    result = engine.qualify_lead(lead.id)
    assert (result.account, result.contact) == (account, contact)
    assert (result.account_created, result.contact_created, result.opportunity_created) == (
        False,
        False,
        True,
    )
    assert (count(engine, Account), count(engine, Contact)) == (1, 1)
    assert result.opportunity is not None
    assert (result.opportunity.account_id, result.opportunity.contact_id) == (
        account.id,
        contact.id,
    )


def test_qualify_with_match_existing_false_creates_new_records(engine: Salesflow) -> None:
    account = engine.create_account(name="Contoso")
    contact = engine.create_contact(last_name="Ruiz", email="ana@contoso.com")
    lead = new_lead(engine, company_name="CONTOSO", email="ana@contoso.com")
    result = engine.qualify_lead(lead.id, QualifyOptions(match_existing=False))
    assert result.account_created
    assert result.contact_created
    assert result.account is not None
    assert result.contact is not None
    assert result.account.id != account.id
    assert result.contact.id != contact.id
    assert (count(engine, Account), count(engine, Contact)) == (2, 2)


@pytest.mark.parametrize(
    ("options", "made"),
    [
        (QualifyOptions(create_account=False), {Contact, Opportunity}),
        (QualifyOptions(create_contact=False), {Account, Opportunity}),
        (QualifyOptions(create_opportunity=False), {Account, Contact}),
        (QualifyOptions(create_account=False, create_contact=False), {Opportunity}),
        (
            QualifyOptions(create_account=False, create_contact=False, create_opportunity=False),
            set(),
        ),
    ],
)
def test_qualify_creates_only_what_the_options_ask_for(
    engine: Salesflow, options: QualifyOptions, made: set[type[Record]]
) -> None:
    lead = new_lead(engine, company_name="Contoso", email="ana@contoso.com")
    result = engine.qualify_lead(lead.id, options)
    for cls in (Account, Contact, Opportunity):
        assert count(engine, cls) == (1 if cls in made else 0), cls.__name__
    assert (result.lead.qualified_account_id is not None) == (Account in made)
    assert (result.lead.qualified_contact_id is not None) == (Contact in made)
    assert (result.lead.qualifying_opportunity_id is not None) == (Opportunity in made)
    assert result.lead.status is LeadStatus.QUALIFIED


def test_create_account_false_does_not_link_a_matching_account_either(engine: Salesflow) -> None:
    engine.create_account(name="Contoso")
    lead = new_lead(engine, company_name="Contoso")
    result = engine.qualify_lead(lead.id, QualifyOptions(create_account=False))
    assert result.account is None
    assert result.lead.qualified_account_id is None


def test_a_lead_without_a_company_name_gets_no_account(engine: Salesflow) -> None:
    lead = new_lead(engine, email="ana@example.com")
    result = engine.qualify_lead(lead.id)
    assert result.account is None
    assert count(engine, Account) == 0
    assert result.contact is not None
    assert result.contact.account_id is None


def test_a_lead_without_an_email_gets_a_new_contact_even_if_others_lack_one(
    engine: Salesflow,
) -> None:
    engine.create_contact(last_name="Ruiz")
    lead = new_lead(engine)
    assert engine.qualify_lead(lead.id).contact_created


def test_qualify_uses_the_accounts_and_contacts_named_in_the_options(engine: Salesflow) -> None:
    account = engine.create_account(name="Holding")
    contact = engine.create_contact(last_name="Boss")
    lead = new_lead(engine, company_name="Contoso", email="ana@contoso.com")
    result = engine.qualify_lead(
        lead.id, QualifyOptions(use_existing_account=account.id, use_existing_contact=contact.id)
    )
    assert (result.account, result.contact) == (account, contact)
    assert (count(engine, Account), count(engine, Contact)) == (1, 1)


def test_qualify_uses_the_leads_parent_account_and_contact(engine: Salesflow) -> None:
    account = engine.create_account(name="Holding")
    contact = engine.create_contact(last_name="Boss")
    lead = new_lead(
        engine, company_name="Contoso", parent_account_id=account.id, parent_contact_id=contact.id
    )
    result = engine.qualify_lead(lead.id)
    assert (result.account, result.contact) == (account, contact)


@pytest.mark.parametrize(
    "options",
    [
        QualifyOptions(use_existing_account="account-404"),
        QualifyOptions(use_existing_contact="contact-404"),
    ],
)
def test_a_failed_qualify_creates_nothing_publishes_nothing_and_leaves_the_lead_open(
    engine: Salesflow, store: MemoryStore, sink: ListSink, options: QualifyOptions
) -> None:
    lead = new_lead(engine, company_name="Contoso", email="ana@contoso.com")
    with unchanged(store, sink), pytest.raises(NotFound, match="404"):
        engine.qualify_lead(lead.id, options)
    assert engine.get_lead(lead.id).is_open
    assert count(engine, Contact) == count(engine, Opportunity) == count(engine, Account) == 0


def test_qualifying_twice_is_refused_and_duplicates_nothing(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    lead = new_lead(engine, company_name="Contoso", email="ana@contoso.com")
    engine.qualify_lead(lead.id)
    with unchanged(store, sink), pytest.raises(InvalidTransition, match="reactivate it first"):
        engine.qualify_lead(lead.id, QualifyOptions(match_existing=False))


def test_unknown_lead_is_not_found(engine: Salesflow, store: MemoryStore, sink: ListSink) -> None:
    with unchanged(store, sink), pytest.raises(NotFound, match="lead-404"):
        engine.qualify_lead("lead-404")


# --- requalifying after reactivation ---------------------------------------------------


def requalify(engine: Salesflow, lead: Lead, options: QualifyOptions | None = None) -> Any:
    first = engine.qualify_lead(lead.id)
    engine.reactivate_lead(lead.id)
    second = engine.qualify_lead(lead.id, options)
    return first, second


def test_requalify_reuses_the_open_opportunity_account_and_contact(engine: Salesflow) -> None:
    lead = new_lead(engine, company_name="Contoso", email="ana@contoso.com")
    first, second = requalify(engine, lead)
    assert second.opportunity == first.opportunity
    assert second.account == first.account
    assert second.contact == first.contact
    assert second.created == ()
    assert (count(engine, Account), count(engine, Contact), count(engine, Opportunity)) == (1, 1, 1)


def test_requalify_of_a_lead_without_email_does_not_duplicate_its_contact(
    engine: Salesflow,
) -> None:
    # The lead still points at the contact it was converted into; qualifying it again
    # must link that contact, not create a second one (issue 2 item 5).
    lead = new_lead(engine, company_name="Contoso")
    first, second = requalify(engine, lead)
    assert count(engine, Contact) == 1
    assert second.contact == first.contact
    assert not second.contact_created


def test_requalify_with_match_existing_false_does_not_duplicate_the_leads_own_records(
    engine: Salesflow,
) -> None:
    # match_existing=False forces creation instead of matching *other* records; the
    # lead's own account and contact from its first qualification are not duplicates
    # to avoid but the records it already became.
    lead = new_lead(engine, company_name="Contoso", email="ana@contoso.com")
    first, second = requalify(engine, lead, QualifyOptions(match_existing=False))
    assert (count(engine, Account), count(engine, Contact)) == (1, 1)
    assert second.lead.qualified_account_id == first.lead.qualified_account_id
    opportunity = engine.get(Opportunity, second.lead.qualifying_opportunity_id)
    assert opportunity.account_id == second.lead.qualified_account_id


def test_requalify_after_the_opportunity_was_lost_creates_a_new_one(engine: Salesflow) -> None:
    lead = new_lead(engine, company_name="Contoso", email="ana@contoso.com")
    first = engine.qualify_lead(lead.id)
    assert first.opportunity is not None
    engine.lose_opportunity(first.opportunity.id, "price")
    engine.reactivate_lead(lead.id)
    second = engine.qualify_lead(lead.id)
    assert second.opportunity_created
    assert second.opportunity is not None
    assert second.opportunity.id != first.opportunity.id
    assert second.lead.qualifying_opportunity_id == second.opportunity.id
    assert count(engine, Opportunity) == 2
    assert (count(engine, Account), count(engine, Contact)) == (1, 1)


# --- disqualify and reactivate -------------------------------------------------------


def test_disqualify_closes_with_the_reason(engine: Salesflow, sink: ListSink) -> None:
    lead = new_lead(engine)
    closed = engine.disqualify_lead(lead.id, "no_longer_interested")
    assert (closed.status, closed.status_reason, closed.closed_at, closed.version) == (
        LeadStatus.DISQUALIFIED,
        "no_longer_interested",
        T0,
        2,
    )
    assert sink.events[-1] == ev.LeadDisqualified(
        occurred_at=T0, lead_id=lead.id, reason="no_longer_interested"
    )


def test_disqualify_defaults_to_lost(engine: Salesflow) -> None:
    assert engine.disqualify_lead(new_lead(engine).id).status_reason == "lost"


def test_host_registered_reasons_are_accepted(
    store: MemoryStore, clock: FakeClock, sink: ListSink
) -> None:
    engine = Salesflow(
        store, clock=clock, sink=sink, reasons=StatusReasons().with_disqualify_reasons("spam")
    )
    assert engine.disqualify_lead(new_lead(engine).id, "spam").status_reason == "spam"


def test_a_lead_whose_opportunity_is_open_cannot_be_disqualified_until_it_closes(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    lead = new_lead(engine, company_name="Contoso")
    result = engine.qualify_lead(lead.id)
    assert result.opportunity is not None
    engine.reactivate_lead(lead.id)
    with unchanged(store, sink), pytest.raises(InvalidTransition, match="still open"):
        engine.disqualify_lead(lead.id, "lost")
    engine.win_opportunity(result.opportunity.id)
    assert engine.disqualify_lead(lead.id, "lost").status is LeadStatus.DISQUALIFIED


@pytest.mark.parametrize("closing", ["qualify", "disqualify"])
def test_reactivate_returns_the_lead_to_open_new(
    engine: Salesflow, sink: ListSink, closing: str
) -> None:
    lead = new_lead(engine)
    if closing == "qualify":
        engine.qualify_lead(lead.id)
    else:
        engine.disqualify_lead(lead.id)
    reopened = engine.reactivate_lead(lead.id)
    assert (reopened.status, reopened.status_reason, reopened.closed_at) == (
        LeadStatus.OPEN,
        "new",
        None,
    )
    previous = "qualified" if closing == "qualify" else "disqualified"
    assert sink.events[-1] == ev.LeadReactivated(occurred_at=T0, lead_id=lead.id, previous=previous)


def test_an_open_lead_cannot_be_reactivated(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    lead = new_lead(engine)
    with unchanged(store, sink), pytest.raises(InvalidTransition, match="cannot reactivate"):
        engine.reactivate_lead(lead.id)


# --- events --------------------------------------------------------------------------


class CommitCheckingSink:
    """Records, for each published event, whether its lead is already visible committed."""

    def __init__(self) -> None:
        self.engine: Salesflow | None = None
        self.seen: list[tuple[str, str | None]] = []

    def publish(self, events: Sequence[ev.Event]) -> None:
        assert self.engine is not None
        for event in events:
            lead_id = getattr(event, "lead_id", None)
            status = None
            if lead_id is not None:
                status = self.engine.get_lead(lead_id).status.value
            self.seen.append((type(event).__name__, status))


def test_events_are_published_after_the_commit_in_order(
    store: MemoryStore, clock: FakeClock, ids: Callable[[RecordKind], str]
) -> None:
    sink = CommitCheckingSink()
    engine = Salesflow(store, clock=clock, sink=sink, ids=ids)
    sink.engine = engine
    lead = new_lead(engine, company_name="Contoso")
    engine.qualify_lead(lead.id)
    engine.reactivate_lead(lead.id)
    assert sink.seen == [
        ("LeadCreated", "open"),
        ("AccountCreated", None),
        ("ContactCreated", None),
        ("OpportunityCreated", None),
        ("LeadQualified", "qualified"),  # the sink already reads the committed state
        ("LeadReactivated", "open"),
    ]


def test_every_event_carries_the_commands_instant(
    engine: Salesflow, clock: FakeClock, sink: ListSink
) -> None:
    new_lead(engine)
    clock.advance(timedelta(days=1))
    new_lead(engine)
    assert [e.occurred_at for e in sink.events] == [T0, T0 + timedelta(days=1)]


class NaiveClock:
    def now(self) -> datetime:
        return datetime(2026, 3, 2, 9, 0)


def test_a_clock_that_returns_naive_time_is_refused(store: MemoryStore, sink: ListSink) -> None:
    engine = Salesflow(store, clock=NaiveClock(), sink=sink)
    with unchanged(store, sink), pytest.raises(ValidationError, match=r"clock\.now\(\)"):
        new_lead(engine)


# --- contacts and accounts -----------------------------------------------------------


def test_create_and_update_contact(engine: Salesflow, sink: ListSink, clock: FakeClock) -> None:
    account = engine.create_account(name="Contoso")
    contact = engine.create_contact(last_name="Ruiz", email="ana@contoso.com")
    clock.advance(MINUTE)
    updated = engine.update_contact(contact.id, account_id=account.id, email="ana@contoso.com")
    assert (updated.account_id, updated.version, updated.modified_at) == (
        account.id,
        2,
        T0 + MINUTE,
    )
    assert sink.events[-2:] == [
        ev.ContactCreated(occurred_at=T0, contact_id=contact.id),
        ev.ContactUpdated(occurred_at=T0 + MINUTE, contact_id=contact.id, fields=("account_id",)),
    ]


def test_a_contact_of_a_missing_account_is_refused(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    with unchanged(store, sink), pytest.raises(NotFound, match="account-404"):
        engine.create_contact(last_name="Ruiz", account_id="account-404")
    contact = engine.create_contact(last_name="Ruiz")
    with unchanged(store, sink), pytest.raises(NotFound, match="account-404"):
        engine.update_contact(contact.id, account_id="account-404")


def test_create_and_update_account(engine: Salesflow, sink: ListSink) -> None:
    account = engine.create_account(name="Contoso")
    contact = engine.create_contact(last_name="Ruiz", account_id=account.id)
    updated = engine.update_account(account.id, primary_contact_id=contact.id)
    assert (updated.primary_contact_id, updated.version) == (contact.id, 2)
    assert sink.events[0] == ev.AccountCreated(occurred_at=T0, account_id=account.id)
    assert sink.events[-1] == ev.AccountUpdated(
        occurred_at=T0, account_id=account.id, fields=("primary_contact_id",)
    )


def test_an_account_with_a_missing_primary_contact_is_refused(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    with unchanged(store, sink), pytest.raises(NotFound, match="contact-404"):
        engine.create_account(name="Contoso", primary_contact_id="contact-404")


# --- opportunities -------------------------------------------------------------------


def test_create_opportunity_checks_its_links(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    for links in (
        {"account_id": "account-404"},
        {"contact_id": "contact-404"},
        {"originating_lead_id": "lead-404"},
    ):
        with unchanged(store, sink), pytest.raises(NotFound, match="404"):
            engine.create_opportunity(name="Deal", **links)
    opportunity = engine.create_opportunity(name="Deal")
    assert opportunity.status is OpportunityStatus.OPEN
    assert sink.events == [ev.OpportunityCreated(occurred_at=T0, opportunity_id=opportunity.id)]


def test_win_lose_and_reopen(engine: Salesflow, clock: FakeClock, sink: ListSink) -> None:
    opportunity = engine.create_opportunity(name="Deal")
    won = engine.win_opportunity(opportunity.id, "best fit")
    assert (won.status, won.close_reason, won.actual_close_date, won.version) == (
        OpportunityStatus.WON,
        "best fit",
        T0.date(),
        2,
    )
    clock.advance(timedelta(days=2))
    reopened = engine.reopen_opportunity(opportunity.id)
    assert (reopened.status, reopened.close_reason, reopened.actual_close_date) == (
        OpportunityStatus.OPEN,
        None,
        None,
    )
    lost = engine.lose_opportunity(opportunity.id)
    assert (lost.status, lost.close_reason, lost.actual_close_date) == (
        OpportunityStatus.LOST,
        None,
        (T0 + timedelta(days=2)).date(),
    )
    assert since(sink, 1) == [
        ev.OpportunityClosed,
        ev.OpportunityReopened,
        ev.OpportunityClosed,
    ]
    assert sink.events[1] == ev.OpportunityClosed(
        occurred_at=T0, opportunity_id=opportunity.id, status="won", reason="best fit"
    )


def test_the_close_date_is_the_organizations_local_date(store: MemoryStore, sink: ListSink) -> None:
    # 22:30 UTC on 2 March is already 3 March in Vilnius (UTC+2)
    clock = FakeClock(datetime(2026, 3, 2, 22, 30, tzinfo=UTC))
    engine = Salesflow(
        store, clock=clock, sink=sink, calendar=OrganizationCalendar(timezone="Europe/Vilnius")
    )
    opportunity = engine.create_opportunity(name="Deal")
    assert engine.win_opportunity(opportunity.id).actual_close_date == datetime(2026, 3, 3).date()


@pytest.mark.parametrize(
    ("setup", "command"),
    [
        ("won", "win"),
        ("won", "lose"),
        ("lost", "lose"),
        ("lost", "win"),
        ("open", "reopen"),
    ],
)
def test_illegal_opportunity_moves_are_refused(
    engine: Salesflow, store: MemoryStore, sink: ListSink, setup: str, command: str
) -> None:
    opportunity = engine.create_opportunity(name="Deal")
    if setup == "won":
        engine.win_opportunity(opportunity.id)
    elif setup == "lost":
        engine.lose_opportunity(opportunity.id)
    action = {
        "win": engine.win_opportunity,
        "lose": engine.lose_opportunity,
        "reopen": engine.reopen_opportunity,
    }[command]
    with unchanged(store, sink), pytest.raises(InvalidTransition, match=f"cannot {command}"):
        action(opportunity.id)


def test_a_closed_opportunity_is_read_only(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    opportunity = engine.create_opportunity(name="Deal")
    engine.win_opportunity(opportunity.id)
    with unchanged(store, sink), pytest.raises(InvalidTransition, match="reopen it first"):
        engine.update_opportunity(opportunity.id, stage="Close")


def test_update_opportunity(engine: Salesflow, sink: ListSink) -> None:
    opportunity = engine.create_opportunity(name="Deal")
    updated = engine.update_opportunity(opportunity.id, probability=60, stage="Propose")
    assert (updated.probability, updated.stage, updated.version) == (60, "Propose", 2)
    assert sink.events[-1] == ev.OpportunityUpdated(
        occurred_at=T0, opportunity_id=opportunity.id, fields=("probability", "stage")
    )


# --- activities ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [ActivityKind.NOTE, ActivityKind.POST])
def test_notes_and_posts_are_recorded_completed(engine: Salesflow, kind: ActivityKind) -> None:
    lead = new_lead(engine)
    activity = engine.add_activity(lead, kind, "Met at the fair")
    assert (activity.state, activity.closed_at) == (ActivityState.COMPLETED, T0)
    with pytest.raises(InvalidTransition):
        engine.complete_activity(activity.id)


@pytest.mark.parametrize(
    "kind",
    [
        ActivityKind.EMAIL,
        ActivityKind.PHONE_CALL,
        ActivityKind.APPOINTMENT,
        ActivityKind.TASK,
        ActivityKind.LINKEDIN,
    ],
)
def test_other_activities_start_open(engine: Salesflow, kind: ActivityKind) -> None:
    activity = engine.add_activity(new_lead(engine), kind, "Do it")
    assert (activity.state, activity.closed_at) == (ActivityState.OPEN, None)


def test_add_activity_publishes_activity_created(engine: Salesflow, sink: ListSink) -> None:
    lead = new_lead(engine)
    activity = engine.add_activity(lead.ref, "phone_call", "Call Ana", owner_id="user-1")
    assert activity.regarding == RecordRef(kind=RecordKind.LEAD, id=lead.id)
    assert engine.get(Activity, activity.id) == activity
    assert sink.events[-1] == ev.ActivityCreated(
        occurred_at=T0, activity_id=activity.id, regarding=f"lead:{lead.id}"
    )


def test_activities_on_every_kind_of_record(engine: Salesflow) -> None:
    account = engine.create_account(name="Contoso")
    contact = engine.create_contact(last_name="Ruiz")
    opportunity = engine.create_opportunity(name="Deal")
    for record in (account, contact, opportunity):
        engine.add_activity(record, "task", "Follow up")
        assert [a.subject for a in engine.timeline(record)] == ["Follow up"]


def test_an_activity_on_a_missing_record_is_refused(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    ref = RecordRef(kind=RecordKind.CONTACT, id="contact-404")
    with unchanged(store, sink), pytest.raises(NotFound, match="contact-404"):
        engine.add_activity(ref, "task", "Call")


def test_complete_with_an_outcome(engine: Salesflow, clock: FakeClock, sink: ListSink) -> None:
    activity = engine.add_activity(new_lead(engine), "phone_call", "Call Ana")
    clock.advance(MINUTE)
    done = engine.complete_activity(activity.id, outcome="left voicemail")
    assert (done.state, done.outcome, done.closed_at, done.version) == (
        ActivityState.COMPLETED,
        "left voicemail",
        T0 + MINUTE,
        2,
    )
    assert sink.events[-1] == ev.ActivityCompleted(occurred_at=T0 + MINUTE, activity_id=activity.id)


def test_cancel(engine: Salesflow, sink: ListSink) -> None:
    activity = engine.add_activity(new_lead(engine), "appointment", "Demo")
    canceled = engine.cancel_activity(activity.id)
    assert (canceled.state, canceled.closed_at) == (ActivityState.CANCELED, T0)
    assert sink.events[-1] == ev.ActivityCanceled(occurred_at=T0, activity_id=activity.id)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("complete", "complete"),
        ("complete", "cancel"),
        ("cancel", "cancel"),
        ("cancel", "complete"),
    ],
)
def test_a_closed_activity_cannot_be_closed_again(
    engine: Salesflow, store: MemoryStore, sink: ListSink, first: str, second: str
) -> None:
    activity = engine.add_activity(new_lead(engine), "task", "Send quote")
    actions = {"complete": engine.complete_activity, "cancel": engine.cancel_activity}
    actions[first](activity.id)
    with unchanged(store, sink), pytest.raises(InvalidTransition, match="no move is allowed"):
        actions[second](activity.id)


def test_update_activity_reschedules_and_delegates(engine: Salesflow, sink: ListSink) -> None:
    activity = engine.add_activity(new_lead(engine), "task", "Send quote", owner_id="user-1")
    due = T0 + timedelta(days=3)
    updated = engine.update_activity(activity.id, due_at=due, owner_id="user-2")
    assert (updated.due_at, updated.owner_id, updated.version) == (due, "user-2", 2)
    assert sink.events[-1] == ev.ActivityUpdated(
        occurred_at=T0, activity_id=activity.id, fields=("due_at", "owner_id")
    )


def test_a_closed_activity_cannot_be_updated(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    activity = engine.add_activity(new_lead(engine), "note", "Noted")
    with unchanged(store, sink), pytest.raises(InvalidTransition, match="only open activities"):
        engine.update_activity(activity.id, description="changed")


def test_the_timeline_is_in_time_order_per_record(engine: Salesflow, clock: FakeClock) -> None:
    lead = new_lead(engine)
    other = new_lead(engine)
    clock.set(T0 + timedelta(hours=1))
    engine.add_activity(lead, "note", "note at 1h")  # done at 1h
    clock.set(T0 + timedelta(hours=2))
    task = engine.add_activity(lead, "task", "task due at 10h", due_at=T0 + timedelta(hours=10))
    clock.set(T0 + timedelta(hours=3))
    engine.add_activity(lead, "phone_call", "call made at 3h")  # no due time: 3h
    engine.add_activity(other, "note", "someone else's")
    clock.set(T0 + timedelta(hours=4))
    engine.add_activity(lead, "email", "email due at 5h", due_at=T0 + timedelta(hours=5))
    assert [a.subject for a in engine.timeline(lead)] == [
        "note at 1h",
        "call made at 3h",
        "email due at 5h",
        "task due at 10h",
    ]
    clock.set(T0 + timedelta(hours=6))
    engine.complete_activity(task.id)  # done at 6h: now sorted by when it was done
    clock.set(T0 + timedelta(hours=7))
    engine.add_activity(lead, "note", "note at 7h")
    assert [a.subject for a in engine.timeline(lead.ref)] == [
        "note at 1h",
        "call made at 3h",
        "email due at 5h",
        "task due at 10h",  # completed at 6h
        "note at 7h",
    ]
    assert [a.subject for a in engine.timeline(other)] == ["someone else's"]


def test_timeline_ties_are_broken_by_id(engine: Salesflow) -> None:
    lead = new_lead(engine)
    made = [engine.add_activity(lead, "note", f"n{i}").id for i in range(3)]
    assert [a.id for a in engine.timeline(lead)] == sorted(made)


def test_the_timeline_of_a_missing_record_is_not_found(engine: Salesflow) -> None:
    with pytest.raises(NotFound, match="lead-404"):
        engine.timeline(RecordRef(kind=RecordKind.LEAD, id="lead-404"))


# --- reads ---------------------------------------------------------------------------


def test_get_with_the_wrong_class_is_not_found(engine: Salesflow) -> None:
    lead = new_lead(engine)
    with pytest.raises(NotFound, match="Contact 'lead-1'"):
        engine.get(Contact, lead.id)


def test_returned_records_are_copies(engine: Salesflow) -> None:
    lead = new_lead(engine, custom={"region": "EMEA"})
    lead.custom["region"] = "APAC"
    lead.topic = "changed behind the engine's back"
    stored = engine.get_lead(lead.id)
    assert (stored.custom, stored.topic) == ({"region": "EMEA"}, "10 laptops")


def test_records_are_listed_through_queries(engine: Salesflow) -> None:
    for n in range(3):
        new_lead(engine, last_name=f"N{n}")
    assert [lead.last_name for lead in every(engine, Lead)] == ["N0", "N1", "N2"]


def test_the_default_ids_rise_within_a_process_and_differ_after_a_fork() -> None:
    from salesflow.commands import core

    made = [sequential_ids(RecordKind.LEAD) for _ in range(300)]
    assert made == sorted(made)
    assert len(set(made)) == 300
    kind, _, hex_part = made[0].partition("-")
    assert kind == "lead"
    assert len(hex_part) == 32
    int(hex_part, 16)
    prefix = core._SEQUENCE.prefix
    core._SEQUENCE.reset()  # what a forked child does
    try:
        assert not sequential_ids(RecordKind.LEAD).startswith(f"lead-{prefix}")
    finally:
        core._SEQUENCE.prefix = prefix


def test_uuid_ids_are_the_kind_and_a_random_uuid() -> None:
    made = {uuid_ids(RecordKind.LEAD) for _ in range(3)}
    assert len(made) == 3
    for value in made:
        kind, _, hex_part = value.partition("-")
        assert kind == "lead"
        assert len(hex_part) == 32
        int(hex_part, 16)


def test_a_closed_engine_refuses_commands(engine: Salesflow) -> None:
    lead = new_lead(engine)
    engine.close()
    with pytest.raises(StoreError, match="closed"):
        engine.get_lead(lead.id)
    with pytest.raises(StoreError, match="closed"):
        new_lead(engine)


@pytest.mark.parametrize(
    ("port", "value", "hint"),
    [
        ("store", "sqlite:///crm.db", "open_store"),
        ("clock", "2026-03-02", "FakeClock"),
        ("sink", print, "publish"),
        ("calendar", "Europe/Vilnius", "OrganizationCalendar"),
        ("reasons", ["lost"], "StatusReasons"),
        ("ids", "lead-", "returns a new id"),
        ("due_ids", 7, "returns a new id"),
        ("enrollment_ids", "enr-", "returns a new id"),
    ],
)
def test_ports_that_cannot_work_are_refused_when_the_engine_is_made(
    port: str, value: object, hint: str
) -> None:
    with pytest.raises(ValidationError, match=hint) as refused:
        Salesflow(**{port: value})  # type: ignore[arg-type]
    assert refused.value.field == port
    assert str(refused.value).startswith(f"{port}=")


def test_roles_that_are_not_a_mapping_are_refused() -> None:
    from salesflow.access import RolePolicy

    with pytest.raises(ValidationError, match="roles must map each role name"):
        RolePolicy(roles=3)  # type: ignore[arg-type]
