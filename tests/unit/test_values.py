"""Shared value types and field guards: Money, RecordRef, normalizers, custom fields,
and the validators every record class uses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from salesflow.errors import ValidationError
from salesflow.lead import Lead
from salesflow.values import (
    Money,
    OwnerType,
    RecordKind,
    RecordRef,
    custom_fields,
    normalize_email,
    normalize_name,
    text,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_lead(**fields: Any) -> Lead:
    base: dict[str, Any] = {
        "id": "lead-1",
        "created_at": T0,
        "modified_at": T0,
        "topic": "10 laptops",
        "last_name": "Ruiz",
    }
    base.update(fields)
    return Lead(**base)


# --- Money ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [(Decimal("1250.00"), Decimal("1250.00")), (7, Decimal(7)), ("0.10", Decimal("0.10"))],
)
def test_money_takes_exact_amounts(given: Any, expected: Decimal) -> None:
    money = Money(amount=given, currency="EUR")
    assert money.amount == expected
    assert isinstance(money.amount, Decimal)


def test_money_keeps_the_scale_of_a_string_amount() -> None:
    assert str(Money(amount="1250.50", currency="USD")) == "1250.50 USD"


@pytest.mark.parametrize("amount", [0.1, 1.0, True])
def test_money_refuses_floats_and_bools(amount: Any) -> None:
    with pytest.raises(ValidationError, match="money is exact") as caught:
        Money(amount=amount, currency="EUR")
    assert caught.value.field == "Money.amount"
    assert caught.value.value is amount


@pytest.mark.parametrize("amount", ["ten", "", None, [1]])
def test_money_refuses_what_is_not_a_number(amount: Any) -> None:
    with pytest.raises(ValidationError, match="not a number") as caught:
        Money(amount=amount, currency="EUR")
    assert caught.value.field == "Money.amount"


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity"])
def test_money_refuses_non_finite_amounts(amount: str) -> None:
    with pytest.raises(ValidationError, match="finite"):
        Money(amount=amount, currency="EUR")


@pytest.mark.parametrize("currency", ["eur", "EURO", "E1R", "", None, 978])
def test_money_refuses_a_currency_that_is_not_an_iso_code(currency: Any) -> None:
    with pytest.raises(ValidationError, match="ISO 4217") as caught:
        Money(amount=1, currency=currency)
    assert caught.value.field == "Money.currency"


def test_money_is_a_frozen_value() -> None:
    assert Money(amount="1.0", currency="EUR") == Money(amount="1.0", currency="EUR")
    assert Money(amount="1", currency="EUR") != Money(amount="1", currency="USD")
    with pytest.raises(AttributeError):
        Money(amount=1, currency="EUR").amount = Decimal(2)  # type: ignore[misc]


# --- record references ---------------------------------------------------------------


def test_record_ref_converts_the_kind_and_prints_kind_and_id() -> None:
    ref = RecordRef(kind="lead", id="lead-7")  # type: ignore[arg-type]
    assert ref.kind is RecordKind.LEAD
    assert str(ref) == "lead:lead-7"
    assert ref == RecordRef(kind=RecordKind.LEAD, id="lead-7")


def test_a_record_points_at_itself_with_ref() -> None:
    assert make_lead(id="lead-9").ref == RecordRef(kind=RecordKind.LEAD, id="lead-9")


def test_record_ref_refuses_an_unknown_kind_with_a_salesflow_error() -> None:
    # Unknown enum values must surface as ValidationError (DESIGN §1.2 / issue 2 item 10),
    # naming the field and the value, not as a bare ValueError from the enum.
    with pytest.raises(ValidationError, match="robot") as caught:
        RecordRef(kind="robot", id="x")  # type: ignore[arg-type]
    assert caught.value.field is not None
    assert "kind" in caught.value.field


# --- normalizers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Ana.Ruiz@Contoso.COM", "ana.ruiz@contoso.com"),
        ("  ana@contoso.com \n", "ana@contoso.com"),
        ("ana@contoso.com", "ana@contoso.com"),
    ],
)
def test_normalize_email_trims_and_lowercases(raw: str, key: str) -> None:
    assert normalize_email(raw) == key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Contoso  Ltd", "contoso ltd"),
        ("  CONTOSO\tLtd ", "contoso ltd"),
        ("Straße GmbH", "strasse gmbh"),  # casefold, not just lower
    ],
)
def test_normalize_name_casefolds_and_collapses_spaces(raw: str, key: str) -> None:
    assert normalize_name(raw) == key


def test_normalizers_are_idempotent() -> None:
    for raw in ["  Fabrikam   Inc ", "Straße"]:
        assert normalize_name(normalize_name(raw)) == normalize_name(raw)
    assert normalize_email(normalize_email(" A@B.CO ")) == "a@b.co"


# --- the text converter and field validators ------------------------------------------


@pytest.mark.parametrize(("raw", "converted"), [("  x  ", "x"), ("", None), ("   ", None)])
def test_text_strips_and_empties_to_none(raw: str, converted: str | None) -> None:
    assert text(raw) == converted


def test_text_leaves_non_text_for_the_validator() -> None:
    assert text(5) == 5


def test_required_text_refuses_blank_after_stripping() -> None:
    with pytest.raises(ValidationError, match=r"Lead\.topic is required") as caught:
        make_lead(topic="   ")
    assert caught.value.field == "Lead.topic"


def test_text_longer_than_the_limit_is_refused_with_the_limit() -> None:
    with pytest.raises(ValidationError, match="the limit is 50") as caught:
        make_lead(last_name="x" * 51)
    assert caught.value.field == "Lead.last_name"


def test_text_at_the_limit_is_accepted() -> None:
    assert make_lead(last_name="x" * 50).last_name == "x" * 50


def test_non_text_in_a_text_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be text, not int"):
        make_lead(first_name=5)


@pytest.mark.parametrize("value", ["ana@example.com", "a.b+c@sub.example.org"])
def test_well_formed_emails_are_accepted(value: str) -> None:
    assert make_lead(email=value).email == value


@pytest.mark.parametrize("value", ["ana", "ana@example", "ana @example.com", "@example.com"])
def test_malformed_emails_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match=r"name@example\.com") as caught:
        make_lead(email=value)
    assert caught.value.field == "Lead.email"
    assert caught.value.value == value


@pytest.mark.parametrize("value", [True, -1, 10_000_001, "12", 1.5])
def test_counts_are_whole_numbers_in_range(value: Any) -> None:
    with pytest.raises(ValidationError, match="whole number") as caught:
        make_lead(employees=value)
    assert caught.value.field == "Lead.employees"


@pytest.mark.parametrize("value", [0, 10_000_000])
def test_count_bounds_are_inclusive(value: int) -> None:
    assert make_lead(employees=value).employees == value


@pytest.mark.parametrize("value", [1, "yes", None])
def test_flags_must_be_real_bools(value: Any) -> None:
    with pytest.raises(ValidationError, match="True or False"):
        make_lead(do_not_email=value)


@pytest.mark.parametrize("value", ["", " lead-1", "lead-1 ", 7, "x" * 201])
def test_ids_are_non_empty_trimmed_text(value: Any) -> None:
    with pytest.raises(ValidationError, match="ids are non-empty") as caught:
        make_lead(id=value)
    assert caught.value.field == "Lead.id"


def test_record_times_are_stored_in_utc() -> None:
    local = datetime(2026, 3, 2, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    lead = make_lead(created_at=local, modified_at=local)
    assert lead.created_at == T0
    assert lead.created_at.tzinfo is UTC


def test_naive_record_times_are_refused() -> None:
    with pytest.raises(ValidationError, match="naive") as caught:
        make_lead(created_at=datetime(2026, 3, 2, 9, 0))
    assert caught.value.field == "Lead.created_at"


def test_enum_fields_take_members_or_values() -> None:
    lead = make_lead(owner_type="team")
    assert lead.owner_type is OwnerType.TEAM


def test_unknown_enum_values_list_the_choices() -> None:
    with pytest.raises(ValidationError, match="'user', 'team'") as caught:
        make_lead(owner_type="robot")
    assert caught.value.field == "Lead.owner_type"
    assert caught.value.value == "robot"


# --- custom fields -------------------------------------------------------------------


def test_custom_fields_keep_supported_values() -> None:
    given = {
        "region": "EMEA",
        "seats": 12,
        "ratio": 0.25,
        "vip": False,
        "budget": Decimal("10.10"),
        "renewal": date(2027, 1, 1),
        "gone": None,
    }
    assert custom_fields(given) == given


def test_custom_fields_are_copied_not_shared() -> None:
    given: dict[str, Any] = {"a": 1}
    kept = custom_fields(given)
    given["a"] = 2
    assert kept == {"a": 1}


def test_custom_fields_none_is_empty() -> None:
    assert custom_fields(None) == {}


def test_custom_datetimes_are_moved_to_utc() -> None:
    local = datetime(2026, 3, 2, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    kept = custom_fields({"seen": local})["seen"]
    assert kept == T0
    assert isinstance(kept, datetime)
    assert kept.tzinfo is UTC


def test_custom_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="naive") as caught:
        custom_fields({"seen": datetime(2026, 3, 2, 9, 0)})
    assert caught.value.field == "custom.seen"


@pytest.mark.parametrize("key", ["1st", "has space", "", "x" * 65, "dash-ed"])
def test_custom_field_names_must_be_identifiers(key: str) -> None:
    with pytest.raises(ValidationError, match="custom field name") as caught:
        custom_fields({key: 1})
    assert caught.value.value == key


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, object(), b"bytes"])
def test_custom_values_of_other_types_are_refused(value: Any) -> None:
    with pytest.raises(ValidationError, match="custom values are") as caught:
        custom_fields({"x": value})
    assert caught.value.field == "custom.x"


def test_custom_text_is_limited() -> None:
    assert custom_fields({"x": "a" * 4000})["x"] == "a" * 4000
    with pytest.raises(ValidationError, match="limit is 4000"):
        custom_fields({"x": "a" * 4001})


def test_custom_must_be_a_mapping() -> None:
    with pytest.raises(ValidationError, match="must be a mapping"):
        custom_fields([("a", 1)])
