"""Matching by phone: a person who comes in with a phone number and no email finds the
lead or contact that has the number, however either is written, through the stores'
phone keys (the last 8 digits) and the strategy's exact phone comparison; a CSV
import does the same in batches, and ends as intake row by row does."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.intake_runs import imported, one_by_one, snapshot

from salesflow.clock import FakeClock
from salesflow.commands import imports as import_commands
from salesflow.commands.imports import IntakeBatch
from salesflow.engine import Salesflow
from salesflow.imports import read_rows
from salesflow.intake import IntakeOptions, RecordAction, Submission
from salesflow.lead import Lead
from salesflow.matching import MatchField, MatchingStrategy, phone_key
from salesflow.party import Contact
from salesflow.stores.base import Query, Store
from salesflow.stores.memory import MemoryStore
from salesflow.stores.sqlite import SQLiteStore
from salesflow.stores.url import open_store
from salesflow.values import RecordKind

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)

LEADS_BY_PHONE = MatchingStrategy(
    id="lead_phone", target="lead", fields=[MatchField(name="mobile_phone")]
)
CONTACTS_BY_PHONE = MatchingStrategy(
    id="contact_phone",
    target="contact",
    fields=[MatchField(name="email", normalizer="email"), MatchField(name="business_phone")],
)
BY_PHONE = IntakeOptions(lead_strategy="lead_phone", contact_strategy="contact_phone")


def new_engine(store: Store | None = None, *, width: int = 0) -> Salesflow:
    """An engine with the phone strategies saved and counting ids (``width`` digits,
    zero-padded: then ids sort in the order they were made; see the property test)."""
    ids = itertools.count(1)
    engine = Salesflow(
        store or MemoryStore(),
        clock=FakeClock(T0),
        ids=lambda kind: f"{kind.value}-{next(ids):0{width}d}",
    )
    engine.save_matching_strategy(LEADS_BY_PHONE)
    engine.save_matching_strategy(CONTACTS_BY_PHONE)
    return engine


def call_in(**fields: Any) -> Submission:
    return Submission(channel="event", fields=fields)


# --- intake ---------------------------------------------------------------------------


def test_a_phone_only_submission_matches_the_lead_with_the_number_written_another_way() -> None:
    engine = new_engine()
    lead = engine.create_lead(
        topic="Expo", last_name="Jonaitis", mobile_phone="+370 612 34567", country="Lithuania"
    )
    result = engine.intake(
        call_in(mobile_phone="8 612 34567", country="Lithuania", last_name="Jonaitis"), BY_PHONE
    )
    assert result.lead is not None
    assert result.lead.id == lead.id
    assert result.lead_action is RecordAction.UNCHANGED  # the same number is no change
    assert result.lead.mobile_phone == "+370 612 34567"
    assert f"lead {lead.id!r} matched strategy 'lead_phone' (mobile_phone='+37061234567')" in (
        result.reasons
    )


def test_a_phone_only_submission_matches_the_contact_with_that_business_phone() -> None:
    engine = new_engine()
    ana = engine.create_contact(last_name="Ruiz", business_phone="+370 612 34567")
    result = engine.intake(
        call_in(business_phone="8 612 34567", country="LT", last_name="Ruiz"), BY_PHONE
    )
    assert result.contact is not None
    assert result.contact.id == ana.id
    # the contact strategy also names email: it is left out, as an empty value, and the
    # lookup goes by the business phone
    assert any("matched strategy 'contact_phone' (business_phone=" in r for r in result.reasons)
    assert result.lead is not None
    assert result.lead.parent_contact_id == ana.id


def test_the_same_last_8_digits_in_another_number_is_no_match() -> None:
    engine = new_engine()
    engine.create_lead(
        topic="Expo", last_name="Jonaitis", mobile_phone="+370 612 34567", country="Lithuania"
    )
    assert phone_key("+371 612 34567") == phone_key("+370 612 34567")  # one candidate
    result = engine.intake(call_in(mobile_phone="+371 612 34567", last_name="Berzins"), BY_PHONE)
    assert result.lead_action is RecordAction.CREATED
    assert "no lead matched strategy 'lead_phone' (mobile_phone='+37161234567')" in (result.reasons)


def test_an_unknown_country_compares_the_numbers_as_written() -> None:
    engine = new_engine()
    lead = engine.create_lead(
        topic="Expo", last_name="Jonaitis", mobile_phone="+370 612 34567", country="Lithuania"
    )
    # international forms are the same number without a country
    same = engine.intake(call_in(mobile_phone="00370 612 34567", last_name="J"), BY_PHONE)
    assert same.lead is not None
    assert same.lead.id == lead.id
    # a national form needs the country: without it, it is another number
    other = engine.intake(call_in(mobile_phone="8 612 34567", last_name="J"), BY_PHONE)
    assert other.lead_action is RecordAction.CREATED


def test_a_submission_with_no_indexed_value_matches_nothing_and_says_why() -> None:
    engine = new_engine()
    engine.create_lead(topic="Expo", last_name="Jonaitis", mobile_phone="+370 612 34567")
    result = engine.intake(call_in(last_name="Jonaitis", mobile_phone="  "), BY_PHONE)
    assert result.lead_action is RecordAction.CREATED
    assert "no lead matched: the submission has no mobile_phone" in result.reasons
    assert "no contact matched: the submission has no email or business_phone" in (result.reasons)
    # the default strategies say it as before
    default = engine.intake(call_in(last_name="Jonaitis"))
    assert "no lead matched: the submission has no email" in default.reasons


def test_the_lookup_goes_by_email_first_then_the_phones() -> None:
    both = MatchingStrategy(
        id="all",
        target="lead",
        fields=["business_phone", "mobile_phone", MatchField(name="email", normalizer="email")],
    )
    assert both.indexed == ("email", "mobile_phone", "business_phone")
    keys = both.keys({"email": "A@x.example", "mobile_phone": "+370 612 34567"}.get)
    assert keys is not None
    assert both.lookup(keys) == ("email_key", "a@x.example")
    phones = both.keys({"mobile_phone": "8 612 34567", "business_phone": "+1 425 555 0100"}.get)
    assert phones is not None
    assert both.lookup(phones) == ("mobile_phone_key", "61234567")
    only_business = both.keys({"business_phone": "+1 425 555 0100"}.get)
    assert only_business is not None
    assert both.lookup(only_business) == ("business_phone_key", "55550100")
    assert both.keys({"last_name": "x"}.get) is None


def test_an_empty_email_kept_by_ignore_empty_off_must_match_an_empty_email() -> None:
    engine = new_engine()
    with_email = engine.create_contact(
        last_name="A", email="a@x.example", business_phone="+370 612 34567"
    )
    strict = IntakeOptions(
        contact_strategy="contact_phone", lead_strategy="lead_phone", ignore_empty=False
    )
    result = engine.intake(
        call_in(business_phone="+370 612 34567", email="", last_name="A"), strict
    )
    assert result.contact is None  # found by phone, but its email is not empty
    loose = engine.intake(
        call_in(business_phone="+370 612 34567", email="", last_name="A"), BY_PHONE
    )
    assert loose.contact is not None
    assert loose.contact.id == with_email.id


def test_a_phone_field_compared_another_way_is_not_looked_up_by() -> None:
    legacy = MatchingStrategy(
        id="legacy",
        target="contact",
        fields=["email", MatchField(name="mobile_phone", normalizer="exact")],
    )
    assert legacy.indexed == ("email",)
    assert legacy.keys({"mobile_phone": "+370 612 34567"}.get) is None


# --- CSV import -----------------------------------------------------------------------

PHONE_ROWS = [
    # the seeded lead, written another way: matched (from before the import)
    "Jonas,Jonaitis,8 612 34567,Lithuania,",
    # a new person, then the same one again written another way in the same batch
    "Ona,Onaite,+370 600 11111,,",
    "Ona,Onaite,00370 600 11111,Lithuania,",
    # the same last 8 digits, another country code: another person
    "Juris,Berzins,+371 612 34567,,",
    # no phone: matches nobody, twice
    "Hal,Ito,,,",
    "Hal,Ito,,,",
    # no last name: refused (its batch is taken again row by row)
    "Fay,,+370 655 55555,,",
    # the new person again, in a later batch, with a business phone now
    "Ona,Onaite,8 600 11111,LT,+370 5 2000000",
]
PHONE_CSV = "First Name,Last Name,Mobile Phone,Country,Business Phone\n" + "\n".join(PHONE_ROWS)


def seed(engine: Salesflow) -> None:
    engine.create_lead(
        topic="Expo", last_name="Jonaitis", mobile_phone="+370 612 34567", country="Lithuania"
    )
    engine.create_contact(last_name="Onaite", business_phone="+370 5 2000000")


STORES = [
    pytest.param(lambda _, __: MemoryStore(), id="memory"),
    pytest.param(lambda folder, _: SQLiteStore(folder / "import.db"), id="sqlite"),
    pytest.param(lambda _, postgres_url: open_store(postgres_url("sf_phones")), id="postgres"),
]
PHONE_OPTIONS = [
    (RecordKind.LEAD, BY_PHONE),
    (RecordKind.LEAD, IntakeOptions(lead_strategy="lead_phone", create_contact=True)),
    (
        RecordKind.CONTACT,
        IntakeOptions(contact_strategy="contact_phone", create_contact=True, leads=False),
    ),
]


@pytest.mark.parametrize("batch", [1, 3, 500])
@pytest.mark.parametrize(("kind", "options"), PHONE_OPTIONS)
@pytest.mark.parametrize("store", STORES)
def test_a_phone_import_matches_earlier_records_and_earlier_rows_as_intake_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: Callable[[str], str],
    batch: int,
    kind: RecordKind,
    options: IntakeOptions,
    store: Callable[[Path, Callable[[str], str]], Store],
) -> None:
    monkeypatch.setattr(import_commands, "IMPORT_BATCH", batch)
    batched = new_engine(store(tmp_path, postgres_url))
    reference = new_engine()
    for engine in (batched, reference):
        seed(engine)
    got = imported(batched, PHONE_CSV, kind, options)
    assert got == one_by_one(reference, PHONE_CSV, kind, options)
    assert snapshot(batched) == snapshot(reference)
    assert got[4]  # the file has a refused row: the fallback ran
    batched.close()


def test_a_phone_import_creates_each_person_once() -> None:
    engine = new_engine()
    seed(engine)
    report = engine.import_csv(io.StringIO(PHONE_CSV), kind="lead", options=BY_PHONE)
    # Jonaitis matched; Onaite created once then matched three times; Berzins and
    # both Itos (no phone: no match) created; Fay refused
    assert (report.rows, report.created, len(report.rejected)) == (8, 4, 1)
    leads = [lead.last_name for lead in engine.query(Lead, Query(limit=100)).items]
    assert sorted(leads) == ["Berzins", "Ito", "Ito", "Jonaitis", "Onaite"]


def test_the_batch_knows_which_phone_keys_are_absent_and_forgets_what_it_wrote() -> None:
    engine = new_engine()
    seed(engine)
    rows, _ = read_rows(io.StringIO(PHONE_CSV), RecordKind.LEAD)
    submissions = [import_commands._submission(row) for row in rows if row.rejection is None]
    with engine._command() as work:
        batch = IntakeBatch(work, engine._strategy)
        batch.prefetch(submissions, BY_PHONE)
        assert not batch.absent(Lead, "61234567", "mobile_phone_key")  # seeded: look it up
        assert batch.absent(Lead, "60011111", "mobile_phone_key")
        assert not batch.absent(Lead, "60011111")  # not an email key the batch knows
        # the contact strategy names the business phone, which most rows lack
        assert batch.absent(Contact, "52000000", "business_phone_key") is False  # seeded
        mine = Lead(
            id="lead-new",
            created_at=T0,
            modified_at=T0,
            topic="t",
            last_name="Onaite",
            mobile_phone="+370 600 11111",
        )
        work.add(mine)
        batch.wrote(mine)
        assert not batch.absent(Lead, "60011111", "mobile_phone_key")


# --- property -------------------------------------------------------------------------

NUMBERS = ["612 34567", "600 11111", "698 76543"]
CODES = [("370", "Lithuania", "8"), ("371", "Latvia", "")]


@st.composite
def phone_rows(draw: st.DrawFn) -> str:
    """A person's row: a number from a small pool written one of the ways people
    write it, with or without the country."""
    number = draw(st.sampled_from(NUMBERS))
    code, country, trunk = draw(st.sampled_from(CODES))
    form = draw(st.sampled_from(["intl", "00", "national"]))
    written = {"intl": f"+{code} {number}", "00": f"00{code} {number}", "national": trunk + number}
    known = draw(st.booleans()) or form == "national"
    name = draw(st.sampled_from(["Petras", "Ona", ""]))
    column = draw(st.sampled_from(["mobile", "business"]))
    mobile, business = (written[form], "") if column == "mobile" else ("", written[form])
    return f"{name},{mobile},{country if known else ''},{business}"


@settings(max_examples=40, deadline=None)
@given(st.lists(phone_rows(), min_size=1, max_size=12), st.sampled_from([1, 2, 500]))
def test_a_batched_phone_import_matches_as_intake_row_by_row(rows: list[str], batch: int) -> None:
    strategy = MatchingStrategy(
        id="either_phone",
        target="lead",
        fields=[MatchField(name="mobile_phone"), MatchField(name="business_phone")],
    )
    options = IntakeOptions(lead_strategy="either_phone", contact_strategy="contact_phone")
    csv = "Last Name,Mobile Phone,Country,Business Phone\n" + "\n".join(rows) + "\n"
    # ties between matches are broken by id: padded ids keep both ways' order alike
    engines = [new_engine(width=6), new_engine(width=6)]
    for engine in engines:
        engine.save_matching_strategy(strategy)
        seed(engine)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(import_commands, "IMPORT_BATCH", batch)
        got = imported(engines[0], csv, RecordKind.LEAD, options)
    assert got == one_by_one(engines[1], csv, RecordKind.LEAD, options)
    assert snapshot(engines[0]) == snapshot(engines[1])
