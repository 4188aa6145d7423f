"""Intake: one path for every channel — match, update or create, record the interaction;
and the CSV import built on it."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import NotFound, ValidationError
from salesflow.events import InteractionRecorded, LeadCreated, ListSink
from salesflow.intake import IntakeOptions, RecordAction, Submission
from salesflow.interactions import InteractionKind
from salesflow.lead import Lead, LeadSource, LeadStatus
from salesflow.matching import MatchField, MatchingStrategy
from salesflow.party import Contact
from salesflow.stores.base import Query
from salesflow.values import Money

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def engine(clock: FakeClock, sink: ListSink) -> Salesflow:
    ids = itertools.count(1)
    return Salesflow(clock=clock, sink=sink, ids=lambda kind: f"{kind.value}-{next(ids)}")


def page(email: str, form: str = "webinar", **fields: object) -> Submission:
    return Submission(
        channel="landing_page", form_id=form, fields={"email": email, "last_name": "Ruiz", **fields}
    )


def test_a_new_person_becomes_a_lead_with_an_interaction(engine: Salesflow, sink: ListSink) -> None:
    result = engine.intake(page("ana@contoso.example", company_name="Contoso"))
    assert result.lead_action is RecordAction.CREATED
    assert result.contact_action is RecordAction.NONE  # forms create leads, not contacts
    assert result.lead is not None
    assert result.lead.form_id == "webinar"
    assert result.lead.topic == "Landing page: webinar"
    assert result.interaction is not None
    assert result.interaction.kind is InteractionKind.LANDING_PAGE_SUBMITTED
    assert result.interaction.lead_id == result.lead.id
    assert engine.interactions(lead_id=result.lead.id) == [result.interaction]
    kinds = [type(e) for e in sink.events]
    assert LeadCreated in kinds
    assert InteractionRecorded in kinds


def test_an_existing_contact_is_matched_and_the_new_lead_linked_to_it(engine: Salesflow) -> None:
    account = engine.create_account(name="Contoso")
    contact = engine.create_contact(
        last_name="Ruiz", email="Ana@Contoso.example", account_id=account.id
    )
    result = engine.intake(page(" ANA@contoso.EXAMPLE "))
    assert result.contact is not None
    assert result.contact.id == contact.id
    assert result.contact_action is RecordAction.UNCHANGED  # same email, case aside
    assert result.lead is not None
    assert result.lead.parent_contact_id == contact.id
    assert result.lead.parent_account_id == account.id
    assert result.interaction is not None
    assert result.interaction.contact_id == contact.id
    assert result.interaction.account_id == account.id  # for account-based scoring
    assert any("matched strategy 'contact_email'" in r for r in result.reasons)


def test_leads_match_per_form_and_a_child_lead_is_preferred(engine: Salesflow) -> None:
    contact = engine.create_contact(last_name="Ruiz", email="ana@x.example")
    first = engine.intake(page("ana@x.example", form="webinar"))
    other_form = engine.intake(page("ana@x.example", form="pricing"))
    assert first.lead is not None
    assert other_form.lead is not None
    assert other_form.lead.id != first.lead.id  # one lead per form
    # a stray lead with the same email and form but no parent contact, modified later
    stray = engine.create_lead(topic="t", last_name="R", email="ana@x.example", form_id="webinar")
    again = engine.intake(page("ana@x.example", form="webinar"))
    assert again.lead is not None
    assert again.lead.id == first.lead.id  # the child of the matched contact wins
    assert again.lead.parent_contact_id == contact.id
    assert stray.id != first.lead.id


def test_several_matches_take_the_most_recently_modified(
    engine: Salesflow, clock: FakeClock
) -> None:
    older = engine.create_contact(last_name="A", email="same@x.example")
    clock.advance(timedelta(minutes=1))
    newer = engine.create_contact(last_name="B", email="same@x.example")
    result = engine.intake(page("same@x.example"))
    assert result.contact is not None
    assert result.contact.id == newer.id
    assert older.id != newer.id
    assert any("most recently modified of 2" in r for r in result.reasons)


def test_the_same_submission_twice_creates_nothing_new(engine: Salesflow) -> None:
    submission = Submission(
        channel="event",
        form_id="expo-2026",
        fields={"email": "wei@lotus.example", "last_name": "Zhang", "company_name": "Lotus"},
        id="reg-17",
    )
    first = engine.intake(submission)
    second = engine.intake(submission)
    assert first.lead is not None
    assert second.lead is not None
    assert second.lead.id == first.lead.id
    assert second.lead.version == first.lead.version
    assert second.lead_action is RecordAction.UNCHANGED
    assert second.interaction is None
    assert len(engine.interactions(lead_id=first.lead.id)) == 1


def test_options_update_create_and_ignore_empty(engine: Salesflow) -> None:
    made = engine.intake(page("ana@x.example", company_name="Contoso", job_title="CTO"))
    assert made.lead is not None
    kept = engine.intake(
        page("ana@x.example", company_name="Fabrikam", job_title=""),
        IntakeOptions(update_matched=False),
    )
    assert kept.lead_action is RecordAction.UNCHANGED
    assert engine.get_lead(made.lead.id).company_name == "Contoso"
    changed = engine.intake(page("ana@x.example", company_name="Fabrikam", job_title=""))
    assert changed.lead_action is RecordAction.UPDATED
    lead = engine.get_lead(made.lead.id)
    assert lead.company_name == "Fabrikam"
    assert lead.job_title == "CTO"  # the empty value did not overwrite it
    nothing = engine.intake(page("new@x.example"), IntakeOptions(create_when_no_match=False))
    assert nothing.lead is None
    assert nothing.lead_action is RecordAction.NONE
    assert nothing.interaction is None  # nobody to record it against


def test_closed_leads_are_not_matched_unless_asked(engine: Salesflow) -> None:
    made = engine.intake(page("ana@x.example"))
    assert made.lead is not None
    engine.disqualify_lead(made.lead.id, "lost")
    again = engine.intake(page("ana@x.example", company_name="Contoso"))
    assert again.lead is not None
    assert again.lead.id != made.lead.id
    matched = engine.intake(page("ana@x.example"), IntakeOptions(match_inactive=True))
    assert matched.lead is not None
    assert {matched.lead.id} <= {made.lead.id, again.lead.id}


def test_a_refused_submission_changes_nothing(engine: Salesflow, sink: ListSink) -> None:
    contact = engine.create_contact(last_name="Ruiz", email="ana@x.example", first_name="Ana")
    sink.events.clear()
    bad = Submission(channel="landing_page", form_id="f", fields={"email": "ana@x.example"})
    with pytest.raises(ValidationError, match="last_name"):
        engine.intake(
            Submission(
                channel="landing_page",
                form_id="f",
                fields={"email": "ana@x.example", "first_name": "Anna"},
            )
        )
    with pytest.raises(ValidationError, match="last_name"):
        engine.intake(bad)
    assert engine.get(Contact, contact.id).first_name == "Ana"
    assert engine.interactions(contact_id=contact.id) == []
    assert sink.events == []


def test_strategies_can_be_saved_and_chosen_per_call(engine: Salesflow) -> None:
    by_name = MatchingStrategy(
        id="email_last_name",
        target="contact",
        fields=[
            MatchField(name="email", normalizer="email"),
            MatchField(name="last_name", normalizer="name"),
        ],
    )
    engine.save_matching_strategy(by_name)
    assert [s.id for s in engine.matching_strategies()] == ["email_last_name"]
    contact = engine.create_contact(last_name="Ruiz", email="ana@x.example")
    options = IntakeOptions(contact_strategy="email_last_name")
    other = engine.intake(page("ana@x.example", last_name="Perez"), options)
    assert other.contact is None
    same = engine.intake(page("ana@x.example", last_name=" RUIZ", form="other"), options)
    assert same.contact is not None
    assert same.contact.id == contact.id
    with pytest.raises(NotFound):
        engine.intake(page("a@x.example"), IntakeOptions(contact_strategy="nope"))
    with pytest.raises(ValidationError, match="matches contacts"):
        engine.intake(page("a@x.example"), IntakeOptions(lead_strategy="email_last_name"))


def test_a_strategy_saved_for_a_form_matches_that_forms_submissions(engine: Salesflow) -> None:
    engine.save_matching_strategy(
        MatchingStrategy(
            id="by_email_and_name",
            target="contact",
            fields=["email", MatchField(name="last_name", normalizer="name")],
            forms=["partner-portal"],
        )
    )
    saved = engine.matching_strategies()[0]
    assert saved.forms == ("partner-portal",)
    ruiz = engine.create_contact(last_name="Ruiz", email="ana@x.example")
    portal = engine.intake(page("ana@x.example", last_name="Perez", form="partner-portal"))
    assert portal.contact is None  # the portal's strategy: another person
    assert any("'by_email_and_name'" in reason for reason in portal.reasons)
    web = engine.intake(page("ana@x.example", last_name="Perez", form="spring-webinar"))
    assert web.contact is not None
    assert web.contact.id == ruiz.id  # other forms: the default, email alone
    named = engine.intake(
        page("ana@x.example", last_name="Perez", form="partner-portal"),
        IntakeOptions(contact_strategy="contact_email"),
    )
    assert named.contact is not None  # a strategy the options name wins
    with pytest.raises(ValidationError, match="list of form ids"):
        MatchingStrategy(id="x", target="lead", fields=["email"], forms=[""])


def test_a_saved_default_replaces_the_built_in_one(engine: Salesflow) -> None:
    engine.save_matching_strategy(
        MatchingStrategy(id="leads_by_email", target="lead", fields=["email"], default=True)
    )
    first = engine.intake(page("ana@x.example", form="a"))
    second = engine.intake(page("ana@x.example", form="b"))
    assert first.lead is not None
    assert second.lead is not None
    assert second.lead.id == first.lead.id  # the form no longer separates them


def test_qualifying_links_the_contact_the_default_contact_strategy_matches(
    engine: Salesflow,
) -> None:
    perez = engine.create_contact(first_name="Ana", last_name="Perez", email="ana@x.example")
    ruiz = engine.create_lead(topic="t", last_name="Ruiz", email="ana@x.example")
    assert engine.qualify_lead(ruiz.id).contact.id == perez.id  # built in: email alone
    engine.save_matching_strategy(
        MatchingStrategy(
            id="contacts_by_email_and_name",
            target="contact",
            fields=["email", MatchField(name="last_name", normalizer="name")],
            default=True,
        )
    )
    other = engine.create_lead(topic="t", last_name="Ruiz", email="ana@x.example")
    made = engine.qualify_lead(other.id).contact
    assert made.id != perez.id  # another person who shares the address
    assert (made.last_name, made.originating_lead_id) == ("Ruiz", other.id)
    same = engine.create_lead(topic="t", first_name="Ana", last_name="PEREZ", email="ana@x.example")
    assert engine.qualify_lead(same.id).contact.id == perez.id


def test_record_interaction(engine: Salesflow) -> None:
    contact = engine.create_contact(last_name="Ruiz", email="ana@x.example")
    opened = engine.record_interaction(
        "email_opened", contact_id=contact.id, source_id="newsletter-3", interaction_id="i-1"
    )
    assert engine.interactions(contact_id=contact.id) == [opened]
    with pytest.raises(NotFound):
        engine.record_interaction("email_opened", contact_id="nope")
    with pytest.raises(ValidationError, match="neither a contact nor a lead"):
        engine.record_interaction("email_opened")


@pytest.mark.parametrize(
    ("channel", "source"),
    [
        ("landing_page", LeadSource.WEB),
        ("event", LeadSource.EVENT),
        ("linkedin_form", LeadSource.LINKEDIN_FORM),
        ("csv", LeadSource.IMPORT),
        ("typed", None),
    ],
)
def test_a_created_lead_gets_its_channels_source_unless_one_is_given(
    engine: Salesflow, channel: str, source: LeadSource | None
) -> None:
    made = engine.intake(Submission(channel=channel, fields={"last_name": "Lee"})).lead
    assert made is not None
    assert made.source is source
    given = Submission(channel=channel, fields={"last_name": "Ng", "source": "partner"})
    kept = engine.intake(given).lead
    assert kept is not None
    assert kept.source is LeadSource.PARTNER


def test_a_matched_lead_keeps_its_source(engine: Salesflow) -> None:
    lead = engine.create_lead(topic="t", last_name="Lee", email="lee@x.example")
    form = Submission(channel="landing_page", fields={"last_name": "Lee", "email": "lee@x.example"})
    matched = engine.intake(form).lead
    assert matched is not None
    assert (matched.id, matched.source) == (lead.id, None)


def test_imported_leads_come_from_the_import_and_group_in_the_sources_report(
    engine: Salesflow,
) -> None:
    engine.import_csv(io.StringIO(CSV), kind="lead")
    assert {lead.source for lead in engine.lead_view("all_leads").items} == {LeadSource.IMPORT}
    rows = {row[0]: row[1] for row in engine.report("lead_sources").rows}
    assert rows["import"] == 2  # Ana (created, then updated) and Marta


# --- CSV import ------------------------------------------------------------------------

CSV = """First Name,Last Name,Email,Company Name,Employees,Do Not Email,Budget Amount,Rating,Notes
Ana,Ruiz,ana@contoso.example,Contoso,120,yes,1200 EUR,hot,vip
Jonas,,jonas@baltic.example,Baltic Freight,40,no,,warm,
Wei,Zhang,wei@lotus.example,Lotus,many,no,,cold,
Marta,Kowalska,marta@wisla.example,Wisła Foods,15,no,,,

Ana,Ruiz,ANA@contoso.example,Contoso Ltd,120,yes,1200 EUR,hot,
"""


def test_import_reports_every_row(engine: Salesflow) -> None:
    report = engine.import_csv(io.StringIO(CSV), kind="lead")
    assert (report.rows, report.created, report.updated, report.unchanged) == (5, 2, 1, 0)
    assert [(r.row, r.reason) for r in report.rejected] == [
        (
            3,
            "a new lead needs last_name; the submission has none (map a column or form field "
            "to last_name)",
        ),
        (4, "employees='many': expected a whole number"),
    ]
    assert report.ignored_columns == ("Notes",)
    (ana,) = engine.lead_view("all_leads", search="ruiz").items
    assert ana.company_name == "Contoso Ltd"
    assert ana.do_not_email is True
    assert ana.budget_amount == Money(amount=1200, currency="EUR")
    assert ana.employees == 120
    assert "rejected 2" in report.table()
    again = engine.import_csv(io.StringIO(CSV), kind="lead")
    assert again.created == 0  # everyone is matched the second time


def test_a_refused_row_takes_no_other_row_with_it(engine: Salesflow, tmp_path: Path) -> None:
    rows = ["Last Name,Email,Topic"] + [f"L{i},p{i}@x.example,t" for i in range(1200)]
    rows[700] = "L699,p699@x.example,"  # a lead with no topic gets a default one
    rows[900] = ",p899@x.example,t"  # no last name: refused
    path = tmp_path / "people.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = engine.import_csv(path, kind="lead")
    assert report.created == 1199
    assert [r.row for r in report.rejected] == [901]
    assert engine.lead_view("all_leads").total == 1199


def test_import_contacts_and_a_column_mapping(engine: Salesflow) -> None:
    text = "Surname,E-mail,Member\nRuiz,ana@x.example,G-1\n"
    report = engine.import_csv(
        io.StringIO(text),
        kind="contact",
        mapping={"Surname": "last_name", "E-mail": "email", "Member": "custom.member_no"},
    )
    assert report.created == 1
    (contact,) = engine.query(Contact, Query()).items
    assert contact.custom == {"member_no": "G-1"}
    assert engine.lead_view("all_leads").total == 0
    with pytest.raises(ValidationError, match="does not have"):
        engine.import_csv(io.StringIO(text), kind="contact", mapping={"Nope": "email"})
    with pytest.raises(ValidationError, match="a contact does not have"):
        engine.import_csv(io.StringIO(text), kind="contact", mapping={"Member": "topic"})
    with pytest.raises(ValidationError, match="empty"):
        engine.import_csv(io.StringIO(""), kind="contact")
    with pytest.raises(ValidationError, match="leads or contacts"):
        engine.import_csv(io.StringIO(text), kind="account")


def test_imported_leads_are_open_and_closed_ones_stay_closed(engine: Salesflow) -> None:
    engine.import_csv(io.StringIO("Last Name,Email\nRuiz,ana@x.example\n"), kind="lead")
    (lead,) = engine.lead_view("all_leads").items
    assert lead.status is LeadStatus.OPEN
    assert isinstance(lead, Lead)


def test_bytes_that_are_not_utf8_reject_their_row_only(engine: Salesflow, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"Last Name,Email\nRuiz,ana@x.example\n\xff\xfe,bad@x.example\nKim,k@x.example\n"
    )
    report = engine.import_csv(path, kind="lead")
    assert report.created == 2
    assert [(r.row, r.reason) for r in report.rejected] == [
        (3, "has bytes that are not UTF-8 text; save the file as UTF-8")
    ]
    with pytest.raises(ValidationError, match="cannot open the CSV file"):
        engine.import_csv(tmp_path / "missing.csv", kind="lead")
    (tmp_path / "header.csv").write_bytes(b"\xffLast Name,Email\n")
    with pytest.raises(ValidationError, match="header is not UTF-8"):
        engine.import_csv(tmp_path / "header.csv", kind="lead")


def test_the_import_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from salesflow.cli import main

    path = tmp_path / "people.csv"
    path.write_text("Surname,Email\nRuiz,ana@x.example\n,bo@x.example\n", encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'crm.db'}"
    assert main(["import", "leads", str(path), "--map", "Surname=last_name", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "rows 2: created 1, updated 0, unchanged 0, rejected 1" in out
    assert "row 3: a new lead needs last_name" in out
    assert main(["import", "contacts", str(path), "--map", "Surname", "--store", store]) == 1
    assert "write COLUMN=FIELD" in capsys.readouterr().err
