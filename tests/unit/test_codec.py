"""The codec: every record kind round-trips exactly through JSON; old documents are
migrated step by step; documents this version cannot read are refused."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from salesflow.activity import Activity, ActivityKind, ActivityState, LinkedInAction
from salesflow.errors import StoreError
from salesflow.lead import (
    Budget,
    Lead,
    LeadSource,
    LeadStatus,
    Need,
    PurchaseProcess,
    PurchaseTimeframe,
    Rating,
)
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.party import Account, Competitor, Contact, Stakeholder
from salesflow.stores.codec import (
    CURRENT_SCHEMA,
    Codec,
    decode_custom_value,
    encode_custom_value,
    format_datetime,
)
from salesflow.values import Money, OwnerType, Record, RecordKind, RecordRef

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 10, 15, 30, 123456, tzinfo=UTC)

CUSTOM = {
    "region": "EMEA",
    "seats": 12,
    "ratio": 0.25,
    "vip": True,
    "budget": Decimal("10.10"),
    "renewal": date(2027, 1, 1),
    "seen": datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC),
    "gone": None,
}


def full_lead() -> Lead:
    return Lead(
        id="lead-1",
        version=4,
        created_at=T0,
        modified_at=T1,
        custom=CUSTOM,
        topic="10 laptops",
        salutation="Ms",
        first_name="Ana",
        last_name="Ruiz",
        job_title="CTO",
        email="Ana@Contoso.com",
        business_phone="+370 600 00000",
        mobile_phone="+370 600 00001",
        website="contoso.example",
        company_name="Contoso",
        industry="Retail",
        employees=120,
        annual_revenue=Money(amount="1250000.50", currency="EUR"),
        street="Gedimino pr. 1",
        city="Vilnius",
        state_province="Vilniaus",
        postal_code="01103",
        country="Lithuania",
        description="Wants laptops",
        source=LeadSource.TRADE_SHOW,
        rating=Rating.HOT,
        budget=Budget.CAN_BUY,
        budget_amount=Money(amount="30000", currency="EUR"),
        purchase_timeframe=PurchaseTimeframe.THIS_QUARTER,
        purchase_process=PurchaseProcess.COMMITTEE,
        need=Need.MUST_HAVE,
        estimated_value=Money(amount=Decimal("25000.00"), currency="EUR"),
        estimated_close_date=date(2026, 6, 30),
        do_not_email=True,
        do_not_phone=False,
        do_not_bulk_email=True,
        do_not_postal_mail=True,
        do_not_fax=False,
        owner_id="team-1",
        owner_type=OwnerType.TEAM,
        campaign_id="campaign-1",
        form_id="form-1",
        parent_contact_id="contact-1",
        parent_account_id="account-1",
        stakeholders=(
            Stakeholder(contact_id="contact-1", role="Decision maker"),
            Stakeholder(contact_id="contact-2"),
        ),
        competitors=(Competitor(name="Fabrikam", website="fabrikam.example", notes="cheap"),),
        status=LeadStatus.QUALIFIED,
        status_reason="qualified",
        qualifying_opportunity_id="opportunity-1",
        qualified_account_id="account-1",
        qualified_contact_id="contact-1",
        closed_at=T1,
    )


def full_contact() -> Contact:
    return Contact(
        id="contact-1",
        version=2,
        created_at=T0,
        modified_at=T1,
        custom={"tier": "gold"},
        first_name="Ana",
        last_name="Ruiz",
        email="ana@contoso.com",
        business_phone="1",
        mobile_phone="2",
        job_title="CTO",
        account_id="account-1",
        street="s",
        city="c",
        state_province="sp",
        postal_code="pc",
        country="LT",
        do_not_email=True,
        do_not_phone=True,
        do_not_bulk_email=False,
        owner_id="user-1",
        owner_type=OwnerType.USER,
        originating_lead_id="lead-1",
        active=False,
        description="d",
    )


def full_account() -> Account:
    return Account(
        id="account-1",
        created_at=T0,
        modified_at=T0,
        name="Contoso Ltd",
        website="contoso.example",
        email="info@contoso.com",
        phone="3",
        industry="Retail",
        employees=0,
        annual_revenue=Money(amount="0.00", currency="USD"),
        street="s",
        city="c",
        state_province="sp",
        postal_code="pc",
        country="LT",
        primary_contact_id="contact-1",
        owner_id="user-1",
        owner_type="team",
        originating_lead_id="lead-1",
        active=True,
        description="d",
    )


def full_opportunity() -> Opportunity:
    return Opportunity(
        id="opportunity-1",
        created_at=T0,
        modified_at=T1,
        name="10 laptops",
        account_id="account-1",
        contact_id="contact-1",
        estimated_value=Money(amount="-5.5", currency="EUR"),
        estimated_close_date=date(2026, 6, 30),
        probability=100,
        stage="Propose",
        owner_id="user-1",
        originating_lead_id="lead-1",
        stakeholders=(Stakeholder(contact_id="contact-1", role="Buyer"),),
        competitors=(Competitor(name="Fabrikam"), Competitor(name="Northwind")),
        description="d",
        status=OpportunityStatus.WON,
        close_reason="best price",
        actual_close_date=date(2026, 3, 2),
    )


def full_activity() -> Activity:
    return Activity(
        id="activity-1",
        created_at=T0,
        modified_at=T1,
        kind=ActivityKind.LINKEDIN,
        subject="Connect with Ana",
        description="via mutual",
        regarding=RecordRef(kind=RecordKind.LEAD, id="lead-1"),
        owner_id="user-1",
        due_at=T0 + timedelta(days=1),
        state=ActivityState.COMPLETED,
        linkedin_action=LinkedInAction.CONNECT,
        outcome="accepted",
        closed_at=T1,
    )


def minimal(kind: RecordKind) -> Record:
    base: dict[str, Any] = {"id": f"{kind.value}-9", "created_at": T0, "modified_at": T0}
    match kind:
        case RecordKind.LEAD:
            return Lead(topic="t", last_name="l", **base)
        case RecordKind.CONTACT:
            return Contact(last_name="l", **base)
        case RecordKind.ACCOUNT:
            return Account(name="n", **base)
        case RecordKind.OPPORTUNITY:
            return Opportunity(name="n", **base)
        case RecordKind.ACTIVITY:
            return Activity(
                kind="note", subject="s", regarding=RecordRef(kind="lead", id="lead-9"), **base
            )
    raise AssertionError(kind)


FULL = [full_lead(), full_contact(), full_account(), full_opportunity(), full_activity()]


@pytest.mark.parametrize("record", FULL + [minimal(k) for k in RecordKind], ids=repr)
def test_every_kind_round_trips_exactly_through_json(record: Record) -> None:
    codec = Codec()
    document = codec.encode(record)
    text = json.dumps(document)
    back = codec.decode(record.KIND, json.loads(text))
    assert back == record
    assert type(back) is type(record)
    assert codec.encode(back) == document


def test_every_kind_is_covered_by_the_round_trip() -> None:
    assert {r.KIND for r in FULL} == set(RecordKind)


def test_round_trip_keeps_types_json_cannot_tell_apart() -> None:
    back = Codec().decode(RecordKind.LEAD, json.loads(json.dumps(Codec().encode(full_lead()))))
    assert isinstance(back, Lead)
    assert isinstance(back.custom["budget"], Decimal)
    assert str(back.custom["budget"]) == "10.10"
    assert type(back.custom["renewal"]) is date
    assert back.custom["seen"] == CUSTOM["seen"]
    assert back.custom["vip"] is True
    assert back.custom["seats"] == 12
    assert type(back.custom["seats"]) is int
    assert back.annual_revenue is not None
    assert str(back.annual_revenue.amount) == "1250000.50"
    assert back.rating is Rating.HOT


def test_documents_have_the_documented_shape() -> None:
    document = Codec().encode(full_lead())
    assert document["schema"] == 1
    assert document["created_at"] == "2026-03-02T09:00:00.000000+00:00"
    assert document["modified_at"] == "2026-03-02T10:15:30.123456+00:00"
    assert document["estimated_close_date"] == "2026-06-30"
    assert document["estimated_value"] == {"amount": "25000.00", "currency": "EUR"}
    assert document["rating"] == "hot"
    assert document["owner_type"] == "team"
    assert document["stakeholders"] == [
        {"contact_id": "contact-1", "role": "Decision maker"},
        {"contact_id": "contact-2", "role": None},
    ]
    assert document["custom"]["budget"] == {"$decimal": "10.10"}
    assert document["custom"]["renewal"] == {"$date": "2027-01-01"}
    assert document["custom"]["seen"] == {"$datetime": "2026-01-01T12:30:15.123456+00:00"}
    assert document["custom"]["ratio"] == 0.25
    activity = Codec().encode(full_activity())
    assert activity["regarding"] == {"kind": "lead", "id": "lead-1"}


def test_datetimes_are_written_in_utc_with_fixed_width() -> None:
    local = datetime(2026, 3, 2, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_datetime(local) == "2026-03-02T09:00:00.000000+00:00"
    earlier = format_datetime(datetime(2026, 3, 2, 8, 59, 59, 999999, tzinfo=UTC))
    assert earlier < format_datetime(local)  # text order is time order


@pytest.mark.parametrize(
    "value",
    [None, True, 3, 0.5, "x", Decimal("1.50"), date(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC)],
)
def test_custom_values_round_trip(value: Any) -> None:
    back = decode_custom_value(json.loads(json.dumps(encode_custom_value(value))))
    assert back == value
    assert type(back) is type(value)


def test_unknown_custom_tags_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown tagged custom value"):
        decode_custom_value({"$set": [1]})


def test_every_kind_is_at_schema_1() -> None:
    assert {kind: 1 for kind in RecordKind} == CURRENT_SCHEMA


# --- migrations ----------------------------------------------------------------------


def lead_v1() -> dict[str, Any]:
    """A schema-1 lead whose last name is kept as 'surname' (a made-up old layout)."""
    document = Codec().encode(minimal(RecordKind.LEAD))
    assert document["schema"] == 1
    document["surname"] = document.pop("last_name")
    return document


def test_a_document_is_migrated_step_by_step_to_the_current_schema() -> None:
    seen: list[tuple[int, str]] = []

    def one_to_two(document: dict[str, Any]) -> dict[str, Any]:
        seen.append((document["schema"], "1->2"))
        document = dict(document)
        document["last_name"] = document.pop("surname")
        return document

    def two_to_three(document: dict[str, Any]) -> dict[str, Any]:
        seen.append((document["schema"], "2->3"))
        assert "surname" not in document  # runs on the output of the first step
        document = dict(document)
        document["topic"] = document["topic"].upper()
        return document

    codec = Codec(
        migrations={(RecordKind.LEAD, 1): one_to_two, (RecordKind.LEAD, 2): two_to_three},
        current={**CURRENT_SCHEMA, RecordKind.LEAD: 3},
    )
    lead = codec.decode(RecordKind.LEAD, lead_v1())
    assert isinstance(lead, Lead)
    assert (lead.last_name, lead.topic) == ("l", "T")
    assert seen == [(1, "1->2"), (2, "2->3")]
    assert codec.encode(lead)["schema"] == 3


def test_a_lean_document_leaves_out_optional_fields_without_a_value() -> None:
    codec = Codec()
    lead = minimal(RecordKind.LEAD)
    full, lean = codec.encode(lead), codec.encode(lead, lean=True)
    assert full["rating"] is None
    assert "rating" not in lean
    assert lean["last_name"] == "l"
    assert "custom" in lean
    assert codec.decode(RecordKind.LEAD, lean) == codec.decode(RecordKind.LEAD, full) == lead


def test_a_migration_sees_the_fields_a_lean_document_left_out() -> None:
    def one_to_two(document: dict[str, Any]) -> dict[str, Any]:
        assert document["rating"] is None  # indexed directly, as before lean documents
        return {**document, "rating": "hot"}

    document = Codec().encode(minimal(RecordKind.LEAD), lean=True)
    assert "rating" not in document
    codec = Codec(
        migrations={(RecordKind.LEAD, 1): one_to_two},
        current={**CURRENT_SCHEMA, RecordKind.LEAD: 2},
    )
    lead = codec.decode(RecordKind.LEAD, document)
    assert isinstance(lead, Lead)
    assert lead.rating is Rating.HOT


def test_a_document_at_an_intermediate_schema_runs_only_the_remaining_steps() -> None:
    calls: list[str] = []

    def one_to_two(document: dict[str, Any]) -> dict[str, Any]:
        calls.append("1->2")
        return document

    def two_to_three(document: dict[str, Any]) -> dict[str, Any]:
        calls.append("2->3")
        return document

    codec = Codec(
        migrations={(RecordKind.LEAD, 1): one_to_two, (RecordKind.LEAD, 2): two_to_three},
        current={**CURRENT_SCHEMA, RecordKind.LEAD: 3},
    )
    document = Codec().encode(minimal(RecordKind.LEAD))
    document["schema"] = 2
    codec.decode(RecordKind.LEAD, document)
    assert calls == ["2->3"]


def test_decoding_does_not_change_the_callers_document() -> None:
    document = lead_v1()
    before = json.dumps(document, sort_keys=True)

    def one_to_two(doc: dict[str, Any]) -> dict[str, Any]:
        doc["last_name"] = doc.pop("surname")
        return doc

    Codec(
        migrations={(RecordKind.LEAD, 1): one_to_two},
        current={**CURRENT_SCHEMA, RecordKind.LEAD: 2},
    ).decode(RecordKind.LEAD, document)
    assert json.dumps(document, sort_keys=True) == before


def test_a_missing_migration_step_is_refused() -> None:
    codec = Codec(
        migrations={(RecordKind.LEAD, 1): lambda d: d},
        current={**CURRENT_SCHEMA, RecordKind.LEAD: 3},
    )
    with pytest.raises(StoreError, match="no migration for lead documents from schema 2 to 3"):
        codec.decode(RecordKind.LEAD, Codec().encode(minimal(RecordKind.LEAD)))


def test_a_migration_registered_for_another_kind_does_not_apply() -> None:
    codec = Codec(
        migrations={(RecordKind.CONTACT, 1): lambda d: d},
        current={**CURRENT_SCHEMA, RecordKind.LEAD: 2},
    )
    with pytest.raises(StoreError, match="no migration for lead"):
        codec.decode(RecordKind.LEAD, Codec().encode(minimal(RecordKind.LEAD)))


def test_a_document_from_a_newer_schema_is_refused() -> None:
    document = Codec().encode(minimal(RecordKind.LEAD))
    document["schema"] = 2
    with pytest.raises(StoreError, match="schema 2, newer than this salesflow understands"):
        Codec().decode(RecordKind.LEAD, document)


@pytest.mark.parametrize("schema", [None, "1", 1.0])
def test_a_document_without_an_integer_schema_is_refused(schema: Any) -> None:
    document = Codec().encode(minimal(RecordKind.LEAD))
    document["schema"] = schema
    with pytest.raises(StoreError, match="no schema number"):
        Codec().decode(RecordKind.LEAD, document)


def test_a_document_that_is_not_a_valid_record_is_refused() -> None:
    document = Codec().encode(minimal(RecordKind.LEAD))
    del document["last_name"]
    with pytest.raises(StoreError, match="cannot be read"):
        Codec().decode(RecordKind.LEAD, document)
    document = Codec().encode(minimal(RecordKind.LEAD))
    document["email"] = "not-an-address"
    with pytest.raises(StoreError, match="cannot be read"):
        Codec().decode(RecordKind.LEAD, document)


def test_a_codec_with_a_partial_current_mapping_still_handles_the_other_kinds() -> None:
    # Bumping one kind's schema must not make the codec unable to write the others.
    codec = Codec(migrations={(RecordKind.LEAD, 1): lambda d: d}, current={RecordKind.LEAD: 2})
    contact = minimal(RecordKind.CONTACT)
    assert codec.encode(contact)["schema"] == 1
    assert codec.decode(RecordKind.CONTACT, codec.encode(contact)) == contact


def test_decode_as_returns_the_requested_class() -> None:
    document = Codec().encode(full_contact())
    assert Codec().decode_as(Contact, document) == full_contact()
