"""Bad input at the boundary (issue 2 item 10): every malformed command is refused with
a specific `salesflow.errors` exception whose message names the field and the value,
and it leaves the store exactly as it was and publishes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.errors import InvalidTransition, NotFound, SalesflowError, ValidationError
from salesflow.events import ListSink
from salesflow.party import Stakeholder
from salesflow.qualification import QualifyOptions
from salesflow.stores.base import SortKey
from salesflow.stores.memory import MemoryStore
from salesflow.values import RecordKind, RecordRef

NAIVE = datetime(2026, 3, 5, 9, 0)
LEAD = {"topic": "10 laptops", "last_name": "Ruiz"}


@attrs.frozen
class Case:
    """One bad command: what to call, which error, and what its message must name."""

    call: Callable[[Salesflow, dict[str, str]], Any]
    error: type[SalesflowError]
    names: tuple[str, ...]
    """Texts the message must contain: the field, and the value when there is one."""


CASES: dict[str, Case] = {
    # --- create_lead
    "create_lead: missing topic": Case(
        lambda e, r: e.create_lead(last_name="Ruiz"), ValidationError, ("Lead.topic",)
    ),
    "create_lead: missing last_name": Case(
        lambda e, r: e.create_lead(topic="10 laptops"), ValidationError, ("Lead.last_name",)
    ),
    "create_lead: blank topic": Case(
        lambda e, r: e.create_lead(topic="  ", last_name="Ruiz"), ValidationError, ("Lead.topic",)
    ),
    "create_lead: unknown rating": Case(
        lambda e, r: e.create_lead(**LEAD, rating="lukewarm"),
        ValidationError,
        ("Lead.rating", "'lukewarm'", "'hot'"),
    ),
    "create_lead: unknown source": Case(
        lambda e, r: e.create_lead(**LEAD, source="billboard"),
        ValidationError,
        ("Lead.source", "'billboard'", "'trade_show'"),
    ),
    "create_lead: unknown owner type": Case(
        lambda e, r: e.create_lead(**LEAD, owner_type="robot"),
        ValidationError,
        ("Lead.owner_type", "'robot'"),
    ),
    "create_lead: malformed email": Case(
        lambda e, r: e.create_lead(**LEAD, email="ana(at)contoso.com"),
        ValidationError,
        ("Lead.email", "'ana(at)contoso.com'", "name@example.com"),
    ),
    "create_lead: float money": Case(
        lambda e, r: e.create_lead(**LEAD, estimated_value=1500.0),  # type: ignore[typeddict-item]
        ValidationError,
        ("Lead.estimated_value", "1500.0", "Money("),
    ),
    "create_lead: bare decimal money": Case(
        lambda e, r: e.create_lead(**LEAD, budget_amount=Decimal("10")),  # type: ignore[typeddict-item]
        ValidationError,
        ("Lead.budget_amount", "Decimal('10')"),
    ),
    "create_lead: text as a number": Case(
        lambda e, r: e.create_lead(**LEAD, employees="120"),  # type: ignore[typeddict-item]
        ValidationError,
        ("Lead.employees", "'120'"),
    ),
    "create_lead: text as a flag": Case(
        lambda e, r: e.create_lead(**LEAD, do_not_email="yes"),  # type: ignore[typeddict-item]
        ValidationError,
        ("Lead.do_not_email", "'yes'"),
    ),
    "create_lead: datetime as a date": Case(
        lambda e, r: e.create_lead(
            **LEAD,
            estimated_close_date=datetime(2026, 6, 30, tzinfo=UTC),
        ),
        ValidationError,
        ("Lead.estimated_close_date", "2026, 6, 30"),
    ),
    "create_lead: naive custom datetime": Case(
        lambda e, r: e.create_lead(**LEAD, custom={"met_at": NAIVE}),
        ValidationError,
        ("custom.met_at", "2026, 3, 5, 9, 0", "naive"),
    ),
    "create_lead: unknown field": Case(
        lambda e, r: e.create_lead(**LEAD, colour="red"),  # type: ignore[typeddict-unknown-key]
        ValidationError,
        ("Lead", "'colour'", "custom="),
    ),
    "create_lead: system field": Case(
        lambda e, r: e.create_lead(**LEAD, status="qualified"),  # type: ignore[typeddict-unknown-key]
        ValidationError,
        ("Lead", "'status'"),
    ),
    "create_lead: stakeholders of the wrong type": Case(
        lambda e, r: e.create_lead(**LEAD, stakeholders=[r["contact"]]),  # type: ignore[list-item]
        ValidationError,
        ("Lead.stakeholders", r"'contact-"),
    ),
    "create_lead: unknown parent account": Case(
        lambda e, r: e.create_lead(**LEAD, parent_account_id="account-404"),
        NotFound,
        ("Lead.parent_account_id", "'account-404'"),
    ),
    "create_lead: unknown stakeholder": Case(
        lambda e, r: e.create_lead(**LEAD, stakeholders=(Stakeholder(contact_id="contact-404"),)),
        NotFound,
        ("'contact-404'",),
    ),
    # --- update_lead
    "update_lead: unknown id": Case(
        lambda e, r: e.update_lead("lead-404", rating="hot"), NotFound, ("Lead", "'lead-404'")
    ),
    "update_lead: id of the wrong type": Case(
        lambda e, r: e.update_lead(404, rating="hot"),  # type: ignore[arg-type]
        ValidationError,
        ("id", "404"),
    ),
    "update_lead: malformed email": Case(
        lambda e, r: e.update_lead(r["lead"], email="ana@"),
        ValidationError,
        ("Lead.email", "'ana@'"),
    ),
    "update_lead: unknown need": Case(
        lambda e, r: e.update_lead(r["lead"], need="want"),
        ValidationError,
        ("Lead.need", "'want'"),
    ),
    "update_lead: clearing a required field": Case(
        lambda e, r: e.update_lead(r["lead"], last_name=None),  # type: ignore[typeddict-item]
        ValidationError,
        ("Lead.last_name",),
    ),
    "update_lead: system field": Case(
        lambda e, r: e.update_lead(r["lead"], closed_at=None),  # type: ignore[typeddict-unknown-key]
        ValidationError,
        ("Lead", "'closed_at'"),
    ),
    "assign_lead: unknown owner type": Case(
        lambda e, r: e.assign_lead(r["lead"], "user-2", owner_type="robot"),
        ValidationError,
        ("owner_type", "'robot'"),
    ),
    # --- create_contact
    "create_contact: missing last_name": Case(
        lambda e, r: e.create_contact(first_name="Ana"), ValidationError, ("Contact.last_name",)
    ),
    "create_contact: malformed email": Case(
        lambda e, r: e.create_contact(last_name="Ruiz", email="ana@contoso"),
        ValidationError,
        ("Contact.email", "'ana@contoso'"),
    ),
    "create_contact: text as a flag": Case(
        lambda e, r: e.create_contact(last_name="Ruiz", active="no"),  # type: ignore[typeddict-item]
        ValidationError,
        ("Contact.active", "'no'"),
    ),
    "create_contact: unknown account": Case(
        lambda e, r: e.create_contact(last_name="Ruiz", account_id="account-404"),
        NotFound,
        ("Contact.account_id", "'account-404'"),
    ),
    "create_contact: unknown field": Case(
        lambda e, r: e.create_contact(last_name="Ruiz", company_name="x"),  # type: ignore[typeddict-unknown-key]
        ValidationError,
        ("Contact", "'company_name'"),
    ),
    # --- create_account
    "create_account: missing name": Case(
        lambda e, r: e.create_account(city="Vilnius"), ValidationError, ("Account.name",)
    ),
    "create_account: float money": Case(
        lambda e, r: e.create_account(name="Contoso", annual_revenue=1e6),  # type: ignore[typeddict-item]
        ValidationError,
        ("Account.annual_revenue", "1000000.0"),
    ),
    "create_account: negative count": Case(
        lambda e, r: e.create_account(name="Contoso", employees=-5),
        ValidationError,
        ("Account.employees", "-5"),
    ),
    "create_account: unknown owner type": Case(
        lambda e, r: e.create_account(name="Contoso", owner_type="robot"),
        ValidationError,
        ("Account.owner_type", "'robot'"),
    ),
    "create_account: unknown primary contact": Case(
        lambda e, r: e.create_account(name="Contoso", primary_contact_id="contact-404"),
        NotFound,
        ("Account.primary_contact_id", "'contact-404'"),
    ),
    # --- add_activity
    "add_activity: unknown kind": Case(
        lambda e, r: e.add_activity(RecordRef(kind=RecordKind.LEAD, id=r["lead"]), "tweet", "Hi"),
        ValidationError,
        ("Activity.kind", "'tweet'", "'phone_call'"),
    ),
    "add_activity: naive due time": Case(
        lambda e, r: e.add_activity(
            RecordRef(kind=RecordKind.LEAD, id=r["lead"]), "task", "Call", due_at=NAIVE
        ),
        ValidationError,
        ("Activity.due_at", "2026, 3, 5, 9, 0", "naive"),
    ),
    "add_activity: blank subject": Case(
        lambda e, r: e.add_activity(RecordRef(kind=RecordKind.LEAD, id=r["lead"]), "task", ""),
        ValidationError,
        ("Activity.subject",),
    ),
    "add_activity: unknown linkedin action": Case(
        lambda e, r: e.add_activity(
            RecordRef(kind=RecordKind.LEAD, id=r["lead"]), "linkedin", "Hi", linkedin_action="poke"
        ),
        ValidationError,
        ("Activity.linkedin_action", "'poke'"),
    ),
    "add_activity: system field": Case(
        lambda e, r: e.add_activity(
            RecordRef(kind=RecordKind.LEAD, id=r["lead"]),
            "task",
            "Call",
            state="completed",  # type: ignore[typeddict-unknown-key]
        ),
        ValidationError,
        ("Activity", "'state'"),
    ),
    "add_activity: unknown record": Case(
        lambda e, r: e.add_activity(RecordRef(kind=RecordKind.LEAD, id="lead-404"), "task", "x"),
        NotFound,
        ("'lead-404'",),
    ),
    "add_activity: an id instead of a record reference": Case(
        lambda e, r: e.add_activity(r["lead"], "task", "Call"),  # type: ignore[arg-type]
        ValidationError,
        ("regarding", "'lead-"),
    ),
    # --- qualify_lead
    "qualify_lead: unknown id": Case(
        lambda e, r: e.qualify_lead("lead-404"), NotFound, ("'lead-404'",)
    ),
    "qualify_lead: unknown existing account": Case(
        lambda e, r: e.qualify_lead(r["lead"], QualifyOptions(use_existing_account="account-404")),
        NotFound,
        ("'account-404'",),
    ),
    "qualify_lead: unknown existing contact": Case(
        lambda e, r: e.qualify_lead(r["lead"], QualifyOptions(use_existing_contact="contact-404")),
        NotFound,
        ("'contact-404'",),
    ),
    "qualify_lead: options of the wrong type": Case(
        lambda e, r: e.qualify_lead(r["lead"], {"create_account": False}),  # type: ignore[arg-type]
        ValidationError,
        ("options", "{'create_account': False}"),
    ),
    # --- disqualify_lead
    "disqualify_lead: unknown reason": Case(
        lambda e, r: e.disqualify_lead(r["lead"], "bored"),
        ValidationError,
        ("status reason", "'bored'", "'cannot_contact'"),
    ),
    "disqualify_lead: a reason of another status": Case(
        lambda e, r: e.disqualify_lead(r["lead"], "contacted"),
        ValidationError,
        ("status reason", "'contacted'"),
    ),
    "disqualify_lead: no reason": Case(
        lambda e, r: e.disqualify_lead(r["lead"], None),  # type: ignore[arg-type]
        ValidationError,
        ("status reason", "None"),
    ),
    "disqualify_lead: unknown id": Case(
        lambda e, r: e.disqualify_lead("lead-404", "lost"), NotFound, ("'lead-404'",)
    ),
    "disqualify_lead: a closed lead": Case(
        lambda e, r: e.disqualify_lead(r["closed_lead"], "lost"),
        InvalidTransition,
        ("Lead", r"'lead-", "disqualified"),
    ),
    # --- lead_view
    "lead_view: unknown view": Case(
        lambda e, r: e.lead_view("hot_leads"), ValidationError, ("view", "'hot_leads'")
    ),
    "lead_view: unknown group field": Case(
        lambda e, r: e.lead_view("all_leads", group_by="colour"),
        ValidationError,
        ("'colour'", "company_name"),
    ),
    "lead_view: unknown sort field": Case(
        lambda e, r: e.lead_view("all_leads", order_by=[SortKey(field="colour")]),
        ValidationError,
        ("'colour'",),
    ),
    "lead_view: unknown filter field": Case(
        lambda e, r: e.lead_view("all_leads", where=field("colour").eq("red")),
        ValidationError,
        ("'colour'",),
    ),
    "lead_view: naive datetime in a filter": Case(
        lambda e, r: e.lead_view("all_leads", where=field("created_at").ge(NAIVE)),
        ValidationError,
        ("created_at", "naive"),
    ),
    "lead_view: text compared with a datetime field": Case(
        lambda e, r: e.lead_view("all_leads", where=field("created_at").ge("2026-01-01")),
        ValidationError,
        ("created_at", "'2026-01-01'"),
    ),
    "lead_view: my open leads without a user": Case(
        lambda e, r: e.lead_view("my_open_leads"), ValidationError, ("user_id",)
    ),
    "lead_view: page zero": Case(
        lambda e, r: e.lead_view("all_leads", page=0), ValidationError, ("page", "0")
    ),
    "lead_view: search of the wrong type": Case(
        lambda e, r: e.lead_view("all_leads", search=5),  # type: ignore[arg-type]
        ValidationError,
        ("search", "5"),
    ),
}


@pytest.fixture
def existing(engine: Salesflow) -> dict[str, str]:
    """One open lead, one disqualified lead, an account and a contact."""
    account = engine.create_account(name="Contoso")
    contact = engine.create_contact(last_name="Ruiz", account_id=account.id)
    lead = engine.create_lead(**LEAD, company_name="Contoso", email="ana@contoso.com")
    closed = engine.create_lead(**LEAD)
    engine.disqualify_lead(closed.id, "lost")
    return {
        "account": account.id,
        "contact": contact.id,
        "lead": lead.id,
        "closed_lead": closed.id,
    }


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_by_name_and_changes_nothing(
    engine: Salesflow,
    store: MemoryStore,
    sink: ListSink,
    existing: dict[str, str],
    case: Case,
) -> None:
    before = store.dump()
    published = len(sink.events)
    with pytest.raises(case.error) as caught:
        case.call(engine, existing)
    message = str(caught.value)
    for name in case.names:
        assert name in message, f"the message does not name {name!r}: {message}"
    assert store.dump() == before
    assert sink.events[published:] == []


def test_every_command_of_the_brief_is_covered() -> None:
    covered = {name.split(":")[0] for name in CASES}
    assert {
        "create_lead",
        "update_lead",
        "create_contact",
        "create_account",
        "add_activity",
        "qualify_lead",
        "disqualify_lead",
        "lead_view",
    } <= covered


def test_validation_errors_carry_the_field_and_value(engine: Salesflow) -> None:
    with pytest.raises(ValidationError) as caught:
        engine.create_lead(**LEAD, rating="lukewarm")
    assert (caught.value.field, caught.value.value) == ("Lead.rating", "lukewarm")
