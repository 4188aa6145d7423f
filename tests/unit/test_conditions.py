"""The predicate language: building, describing and evaluating conditions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from salesflow.conditions import (
    AllOf,
    AnyOf,
    Compare,
    Not,
    Op,
    all_of,
    any_of,
    evaluate,
    field,
    fields_of,
    not_,
)
from salesflow.errors import ValidationError
from salesflow.lead import Rating

ROW: dict[str, Any] = {
    "rating": "hot",
    "employees": 50,
    "company_name": "Contoso Ltd",
    "email": None,
    "budget_amount": Decimal("1000.00"),
    "created_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
}


def holds(condition: Any, row: dict[str, Any] = ROW) -> bool:
    return evaluate(condition, row.get)


# --- comparisons ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (field("employees").eq(50), True),
        (field("employees").eq(51), False),
        (field("employees").ne(51), True),
        (field("employees").ne(50), False),
        (field("employees").lt(51), True),
        (field("employees").lt(50), False),
        (field("employees").le(50), True),
        (field("employees").le(49), False),
        (field("employees").gt(49), True),
        (field("employees").gt(50), False),
        (field("employees").ge(50), True),
        (field("employees").ge(51), False),
        (field("employees").in_([10, 50]), True),
        (field("employees").in_([10, 20]), False),
        (field("employees").not_in([10, 20]), True),
        (field("employees").not_in([50]), False),
    ],
    ids=lambda v: v.describe() if isinstance(v, Compare) else str(v),
)
def test_comparisons(condition: Compare, expected: bool) -> None:
    assert holds(condition) is expected


def test_decimal_amounts_compare_by_value() -> None:
    assert holds(field("budget_amount").eq(Decimal("1000")))
    assert holds(field("budget_amount").gt(Decimal("999.99")))
    assert not holds(field("budget_amount").gt(Decimal("1000.00")))


def test_datetimes_compare_as_instants_across_zones() -> None:
    from zoneinfo import ZoneInfo

    same_instant = datetime(2026, 3, 2, 11, 0, tzinfo=ZoneInfo("Europe/Vilnius"))
    assert holds(field("created_at").eq(same_instant))
    assert holds(field("created_at").ge(same_instant))


@pytest.mark.parametrize(
    "condition",
    [
        field("email").eq("a@b.co"),
        field("email").ne("a@b.co"),
        field("email").lt("z"),
        field("email").gt("a"),
        field("email").in_(["a@b.co"]),
        field("email").not_in(["a@b.co"]),
        field("email").starts_with("a"),
        field("email").contains("@"),
    ],
    ids=lambda c: c.describe(),
)
def test_a_missing_value_makes_every_comparison_false(condition: Compare) -> None:
    assert holds(condition) is False


def test_null_checks_are_the_only_comparisons_true_on_missing_values() -> None:
    assert holds(field("email").is_null())
    assert not holds(field("email").not_null())
    assert holds(field("rating").not_null())
    assert not holds(field("rating").is_null())


def test_an_absent_field_counts_as_missing() -> None:
    assert holds(field("custom.region").is_null())
    assert not holds(field("custom.region").eq("EMEA"))


def test_text_equality_is_exact_and_case_sensitive() -> None:
    assert holds(field("company_name").eq("Contoso Ltd"))
    assert not holds(field("company_name").eq("contoso ltd"))


def test_starts_with_and_contains_ignore_case() -> None:
    assert holds(field("company_name").starts_with("CONTOSO"))
    assert not holds(field("company_name").starts_with("Ltd"))
    assert holds(field("company_name").contains("so l"))
    assert not holds(field("company_name").contains("fabrikam"))


def test_starts_with_on_a_number_is_false_not_an_error() -> None:
    assert not holds(field("employees").starts_with("5"))


def test_comparing_unorderable_values_is_false_not_an_error() -> None:
    assert not holds(field("employees").lt("many"))
    assert not holds(field("company_name").gt(3))


def test_enum_members_compare_by_value_on_both_sides() -> None:
    assert field("rating").eq(Rating.HOT).value == "hot"
    assert holds(field("rating").eq(Rating.HOT))
    assert evaluate(field("rating").in_([Rating.HOT, Rating.WARM]), {"rating": "hot"}.get)
    assert evaluate(field("rating").eq("hot"), {"rating": Rating.HOT}.get)
    assert not evaluate(field("rating").eq("cold"), {"rating": Rating.HOT}.get)


def test_in_values_are_kept_as_a_tuple() -> None:
    condition = field("rating").in_(["hot", "warm"])
    assert condition.value == ("hot", "warm")


# --- combinators ---------------------------------------------------------------------


def test_all_of_needs_every_part() -> None:
    assert holds(all_of(field("rating").eq("hot"), field("employees").ge(50)))
    assert not holds(all_of(field("rating").eq("hot"), field("employees").ge(51)))


def test_any_of_needs_one_part() -> None:
    assert holds(any_of(field("rating").eq("cold"), field("employees").ge(50)))
    assert not holds(any_of(field("rating").eq("cold"), field("employees").ge(51)))


def test_empty_all_is_true_and_empty_any_is_false() -> None:
    assert holds(all_of()) is True
    assert holds(any_of()) is False


def test_not_negates() -> None:
    assert holds(not_(field("rating").eq("cold")))
    assert not holds(not_(field("rating").eq("hot")))


def test_not_of_a_comparison_on_a_missing_value_is_true() -> None:
    # eq on a missing value is false, so its negation holds: ``not`` is plain negation.
    assert holds(not_(field("email").eq("a@b.co")))


def test_nesting() -> None:
    condition = any_of(
        all_of(field("rating").eq("cold"), field("employees").ge(10)),
        not_(any_of(field("email").not_null(), field("employees").lt(50))),
    )
    assert holds(condition)


def test_combinators_are_plain_frozen_data() -> None:
    a = all_of(field("rating").eq("hot"), not_(field("email").is_null()))
    b = AllOf(
        conditions=(
            Compare(field="rating", op=Op.EQ, value="hot"),
            Not(condition=Compare(field="email", op=Op.IS_NULL)),
        )
    )
    assert a == b
    assert hash(a) == hash(b)
    assert isinstance(any_of(), AnyOf)


def test_fields_of_lists_every_field_read() -> None:
    condition = all_of(
        field("rating").eq("hot"),
        any_of(field("employees").gt(5), not_(field("custom.region").is_null())),
    )
    assert list(fields_of(condition)) == ["rating", "employees", "custom.region"]


# --- descriptions --------------------------------------------------------------------


def test_describe_reads_like_the_condition() -> None:
    condition = all_of(
        field("rating").eq("hot"),
        any_of(field("employees").ge(50), field("email").is_null()),
        not_(field("company_name").contains("test")),
    )
    assert condition.describe() == (
        "(rating = 'hot' and (employees >= 50 or email is empty) "
        "and not company_name contains 'test')"
    )


def test_describe_of_membership_and_not_null() -> None:
    assert field("rating").in_(["hot"]).describe() == "rating in ('hot',)"
    assert field("email").not_null().describe() == "email is not empty"
    assert field("email").not_in(["x"]).describe() == "email not in ('x',)"


# --- malformed conditions ------------------------------------------------------------


def test_comparing_with_none_is_refused_with_the_fix() -> None:
    with pytest.raises(ValidationError, match=r"use is_null\(\)") as caught:
        field("email").eq(None)
    assert caught.value.field == "email"


def test_null_checks_take_no_value() -> None:
    with pytest.raises(ValidationError, match="takes no value"):
        Compare(field="email", op=Op.IS_NULL, value="x")


@pytest.mark.parametrize("values", [(), "hot"])
def test_membership_needs_a_non_empty_list(values: Any) -> None:
    with pytest.raises(ValidationError, match="non-empty list"):
        Compare(field="rating", op=Op.IN, value=values)


def test_text_operators_need_text() -> None:
    with pytest.raises(ValidationError, match="needs text"):
        field("company_name").starts_with(5)  # type: ignore[arg-type]


def test_unknown_operators_are_refused_with_a_salesflow_error() -> None:
    # Unknown enum values must be a ValidationError naming the value and the choices,
    # not the bare ValueError of the enum (conditions will be loaded from saved views).
    with pytest.raises(ValidationError, match="like") as caught:
        Compare(field="company_name", op="like", value="x")  # type: ignore[arg-type]
    assert caught.value.value == "like"
