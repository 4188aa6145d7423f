"""Products, price lists, priced lines and the opportunity's forecast (issue 5 item 4).

The rounding rule under test: each line's amount (quantity × unit price) and discount
are rounded half-even to the currency's minor unit; the line total is their
difference; a document's total is the plain sum of the line totals.
"""

from __future__ import annotations

import ast
import typing
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

import salesflow
from salesflow import opportunity as opportunities
from salesflow import orders, pricing, quotes
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.events import OpportunityUpdated
from salesflow.opportunity import (
    Opportunity,
    OpportunityStatus,
    add_line,
    remove_line,
    replace_line,
    set_lines,
    set_price_list,
    weighted_value,
)
from salesflow.pricing import (
    OpportunityLine,
    PriceList,
    PriceListItem,
    Product,
    estimated_revenue,
    minor_unit,
    price_line,
    price_lines,
    round_money,
    totals,
)
from salesflow.values import Money

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def eur(amount: str) -> Money:
    return Money(amount=amount, currency="EUR")


PRODUCTS = {
    "laptop": Product(id="laptop", name="Laptop"),
    "support": Product(id="support", name="Support", unit="year"),
    "old": Product(id="old", name="Old model", active=False),
}
PRICES = PriceList(
    id="eu",
    name="Europe",
    currency="EUR",
    items={"laptop": eur("1199.00"), "support": eur("149.90"), "old": eur("10.00")},
)


def opportunity(**fields: Any) -> Opportunity:
    return Opportunity(id="opp-1", name="10 laptops", created_at=NOW, modified_at=NOW, **fields)


def priced(**fields: Any) -> OpportunityLine:
    return price_line(OpportunityLine(**fields), PRICES)


# --- the rounding rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "decimals"),
    [("EUR", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_minor_units_follow_iso_4217(currency: str, decimals: int) -> None:
    assert minor_unit(currency) == decimals


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("0.125", "EUR", "0.12"),  # half to even: down
        ("0.135", "EUR", "0.14"),  # half to even: up
        ("0.1251", "EUR", "0.13"),  # above half: up
        ("2.5", "JPY", "2"),
        ("3.5", "JPY", "4"),
        ("1.0005", "KWD", "1.000"),
        ("7", "EUR", "7.00"),
    ],
)
def test_round_money_is_half_even_to_the_minor_unit(
    amount: str, currency: str, rounded: str
) -> None:
    result = round_money(Decimal(amount), currency)
    assert str(result) == rounded


def test_a_line_amount_is_quantity_times_price_rounded_half_even() -> None:
    line = OpportunityLine(description="SMS", quantity=Decimal("3"), unit_price=eur("0.0125"))
    # 3 × 0.0125 = 0.0375 → 0.04
    assert line.amount == eur("0.04")
    half = OpportunityLine(description="SMS", quantity=Decimal("10"), unit_price=eur("0.0125"))
    # 10 × 0.0125 = 0.125 → 0.12 (half to even)
    assert str(half.amount.amount) == "0.12"


def test_lines_are_rounded_one_by_one_before_they_are_summed() -> None:
    # each line is 0.005 → 0.00 (half to even), so the total is 0.00 although the
    # exact sum 0.015 would round to 0.02: the printed lines and total agree
    line = OpportunityLine(description="fee", quantity=1, unit_price=eur("0.005"))
    result = totals([line, line, line], "EUR")
    assert line.total == eur("0.00")
    assert result.total == eur("0.00")
    assert round_money(Decimal("0.015"), "EUR") == Decimal("0.02")


def test_a_percentage_discount_is_taken_from_the_rounded_amount() -> None:
    line = priced(product_id="support", quantity=3, discount_percent="12.5")
    assert line.amount == eur("449.70")
    # 449.70 × 12.5 % = 56.2125 → 56.21
    assert line.discount == eur("56.21")
    assert line.total == eur("393.49")


def test_an_amount_discount_is_subtracted_as_given() -> None:
    line = priced(product_id="laptop", quantity=2, discount_amount=eur("98.00"))
    assert (line.amount, line.discount, line.total) == (
        eur("2398.00"),
        eur("98.00"),
        eur("2300.00"),
    )


def test_jpy_lines_have_no_decimals() -> None:
    line = OpportunityLine(
        description="Seat",
        quantity=Decimal("1.5"),
        unit_price=Money(amount="333", currency="JPY"),
        discount_percent=10,
    )
    assert str(line.amount.amount) == "500"  # 499.5 → 500 (half to even)
    assert str(line.discount.amount) == "50"
    assert str(line.total.amount) == "450"


def test_totals_are_the_sums_of_the_line_figures() -> None:
    lines = [
        priced(product_id="laptop", quantity=10, discount_percent=5),
        priced(product_id="support", quantity=10),
        OpportunityLine(description="Setup", quantity=1, unit_price=eur("250.00")),
    ]
    result = totals(lines, "EUR")
    assert result.amount == eur("13739.00")
    assert result.discount == eur("599.50")
    assert result.total == eur("13139.50")
    assert result.total.amount == sum(line.total.amount for line in lines)
    assert estimated_revenue(lines, "EUR") == result.total


def test_no_lines_total_zero_in_the_currency() -> None:
    assert totals([], "EUR").total == eur("0.00")
    assert str(totals([], "JPY").total.amount) == "0"


# --- lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1.5, True, "abc", None, Decimal("NaN"), Decimal("Infinity")])
def test_a_quantity_must_be_an_exact_finite_number(bad: Any) -> None:
    with pytest.raises(ValidationError, match="quantity"):
        OpportunityLine(product_id="laptop", quantity=bad)


@pytest.mark.parametrize("bad", [0, -1, "-0.5"])
def test_a_quantity_must_be_positive(bad: Any) -> None:
    with pytest.raises(ValidationError, match="greater than zero"):
        OpportunityLine(product_id="laptop", quantity=bad)


def test_a_float_percentage_is_refused() -> None:
    with pytest.raises(ValidationError, match="exact"):
        OpportunityLine(product_id="laptop", quantity=1, discount_percent=0.1)


def test_a_float_price_is_refused_by_money() -> None:
    with pytest.raises(ValidationError, match="money is exact"):
        Money(amount=0.1, currency="EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("percent", ["-1", "100.01"])
def test_a_percentage_is_between_0_and_100(percent: str) -> None:
    with pytest.raises(ValidationError, match="between 0 and 100"):
        OpportunityLine(product_id="laptop", quantity=1, discount_percent=percent)


def test_one_kind_of_discount_per_line() -> None:
    with pytest.raises(ValidationError, match="give one of them"):
        OpportunityLine(
            product_id="laptop", quantity=1, discount_percent=5, discount_amount=eur("1")
        )


def test_a_discount_cannot_exceed_the_line_amount() -> None:
    with pytest.raises(ValidationError, match="more than the line amount"):
        OpportunityLine(
            description="x", quantity=1, unit_price=eur("10"), discount_amount=eur("10.01")
        )


def test_a_discount_is_in_the_line_currency() -> None:
    with pytest.raises(ValidationError, match="give the discount in EUR"):
        OpportunityLine(
            description="x",
            quantity=1,
            unit_price=eur("10"),
            discount_amount=Money(amount="1", currency="USD"),
        )


def test_a_negative_price_is_refused() -> None:
    with pytest.raises(ValidationError, match="negative"):
        OpportunityLine(description="x", quantity=1, unit_price=eur("-1"))


def test_a_line_names_a_product_or_is_written_in() -> None:
    with pytest.raises(ValidationError, match=r"product_id .* or a\s+write-in description"):
        OpportunityLine(quantity=1)


def test_an_unpriced_line_has_no_figures_yet() -> None:
    line = OpportunityLine(product_id="laptop", quantity=1)
    assert not line.is_priced
    with pytest.raises(ValidationError, match="no unit price yet"):
        _ = line.total


def test_a_line_with_a_hand_price_is_manual() -> None:
    assert OpportunityLine(description="Setup", quantity=1, unit_price=eur("1")).manual_price
    assert not OpportunityLine(product_id="laptop", quantity=1).manual_price


# --- price lists and pricing ----------------------------------------------------------


def test_a_price_list_accepts_a_mapping_and_keeps_items_sorted() -> None:
    assert [i.product_id for i in PRICES.items] == ["laptop", "old", "support"]
    assert PRICES.price_of("support") == eur("149.90")
    assert PRICES.price_of("nothing") is None
    same = attrs.evolve(PRICES, items=list(reversed(PRICES.items)))
    assert same == PRICES


def test_a_price_list_is_in_one_currency() -> None:
    with pytest.raises(ValidationError, match="give every price in EUR"):
        PriceList(id="pl", name="x", currency="EUR", items={"a": Money(amount="1", currency="USD")})


def test_a_price_list_lists_a_product_once() -> None:
    item = PriceListItem(product_id="a", unit_price=eur("1"))
    with pytest.raises(ValidationError, match="twice"):
        PriceList(id="pl", name="x", currency="EUR", items=[item, item])


def test_a_price_list_refuses_a_bad_currency_and_bad_dates() -> None:
    with pytest.raises(ValidationError, match="ISO 4217"):
        PriceList(id="pl", name="x", currency="euro")
    with pytest.raises(ValidationError, match="must not be before the start"):
        PriceList(
            id="pl",
            name="x",
            currency="EUR",
            valid_from=date(2026, 2, 1),
            valid_to=date(2026, 1, 1),
        )


def test_pricing_takes_the_list_price_of_a_product() -> None:
    line = price_line(OpportunityLine(product_id="laptop", quantity=2), PRICES)
    assert line.unit_price == eur("1199.00")
    assert not line.manual_price


def test_pricing_again_follows_the_list_but_keeps_hand_prices() -> None:
    cheaper = attrs.evolve(PRICES, items={"laptop": eur("999.00")})
    listed = price_line(OpportunityLine(product_id="laptop", quantity=1), PRICES)
    by_hand = OpportunityLine(product_id="laptop", quantity=1, unit_price=eur("5.00"))
    assert price_line(listed, cheaper).unit_price == eur("999.00")
    assert price_line(by_hand, cheaper).unit_price == eur("5.00")


def test_a_product_not_on_the_list_is_refused() -> None:
    with pytest.raises(ValidationError, match="not on price list 'eu'"):
        price_line(OpportunityLine(product_id="tablet", quantity=1), PRICES)


@pytest.mark.parametrize(("product", "state"), [("old", "is inactive"), ("tablet", "does not")])
def test_the_catalogue_refuses_inactive_and_unknown_products(product: str, state: str) -> None:
    with pytest.raises(ValidationError, match=state):
        price_line(OpportunityLine(product_id=product, quantity=1), PRICES, products=PRODUCTS)


def test_a_write_in_needs_a_price() -> None:
    with pytest.raises(ValidationError, match="write-in line 'Setup' has no unit price"):
        price_line(OpportunityLine(description="Setup", quantity=1), PRICES)


def test_a_hand_price_must_be_in_the_list_currency() -> None:
    line = OpportunityLine(
        description="Setup", quantity=1, unit_price=Money(amount=1, currency="USD")
    )
    with pytest.raises(ValidationError, match="give the price in EUR"):
        price_line(line, PRICES)


def test_a_price_list_applies_only_between_its_dates() -> None:
    dated = attrs.evolve(PRICES, valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31))
    line = OpportunityLine(product_id="laptop", quantity=1)
    assert price_line(line, dated, on=date(2026, 12, 31)).is_priced
    with pytest.raises(ValidationError, match="not on 2027-01-01"):
        price_line(line, dated, on=date(2027, 1, 1))


def test_pricing_errors_name_the_line_position() -> None:
    lines = [
        OpportunityLine(product_id="laptop", quantity=1),
        OpportunityLine(product_id="x", quantity=1),
    ]
    with pytest.raises(ValidationError, match=r"^line 2: "):
        price_lines(lines, PRICES)


def test_mixing_currencies_is_a_clear_error() -> None:
    usd = OpportunityLine(description="x", quantity=1, unit_price=Money(amount=1, currency="USD"))
    with pytest.raises(ValidationError, match=r"line 2 .* priced in USD, not EUR"):
        totals([priced(product_id="laptop", quantity=1), usd], "EUR")


# --- the opportunity's lines and forecast ---------------------------------------------


def test_set_lines_prices_them_and_computes_the_forecast() -> None:
    before = opportunity(probability=60)
    lines = [
        OpportunityLine(product_id="laptop", quantity=10, discount_percent=5),
        OpportunityLine(product_id="support", quantity=10),
    ]
    after, event = set_lines(before, lines, price_list=PRICES, now=LATER, products=PRODUCTS)
    assert after.price_list_id == "eu"
    assert after.estimated_value == eur("12889.50")
    assert after.estimated_value == totals(after.lines, "EUR").total
    assert after.modified_at == LATER
    assert all(line.is_priced for line in after.lines)
    assert event == OpportunityUpdated(
        occurred_at=LATER,
        opportunity_id="opp-1",
        fields=("estimated_value", "lines", "price_list_id"),
    )
    assert before.lines == ()
    assert before.estimated_value is None
    assert weighted_value(after) == eur("7733.70")


def test_changing_a_discount_updates_the_forecast() -> None:
    first, _ = set_lines(
        opportunity(),
        [OpportunityLine(product_id="laptop", quantity=10)],
        price_list=PRICES,
        now=NOW,
    )
    discounted = attrs.evolve(first.lines[0], discount_percent=10)
    second, event = replace_line(first, 1, discounted, price_list=PRICES, now=LATER)
    assert first.estimated_value == eur("11990.00")
    assert second.estimated_value == eur("10791.00")
    assert event.fields == ("estimated_value", "lines")


def test_add_and_remove_lines() -> None:
    one, _ = add_line(
        opportunity(), OpportunityLine(product_id="laptop", quantity=1), price_list=PRICES, now=NOW
    )
    two, _ = add_line(
        one, OpportunityLine(product_id="support", quantity=1), price_list=PRICES, now=NOW
    )
    assert two.estimated_value == eur("1348.90")
    back, _ = remove_line(two, 2, price_list=PRICES, now=NOW)
    assert back.lines == one.lines
    assert back.estimated_value == one.estimated_value
    none, _ = remove_line(back, 1, price_list=PRICES, now=NOW)
    assert none.lines == ()
    assert none.estimated_value == eur("0.00")
    with pytest.raises(ValidationError, match="there is no line 3"):
        remove_line(two, 3, price_list=PRICES, now=NOW)


def test_set_price_list_prices_product_lines_again() -> None:
    start, _ = set_lines(
        opportunity(),
        [OpportunityLine(product_id="laptop", quantity=2)],
        price_list=PRICES,
        now=NOW,
    )
    promo = PriceList(id="promo", name="Promo", currency="EUR", items={"laptop": eur("999.00")})
    moved, _ = set_price_list(start, promo, now=LATER)
    assert moved.price_list_id == "promo"
    assert moved.estimated_value == eur("1998.00")


def test_a_closed_opportunity_keeps_its_lines() -> None:
    won = opportunity(status=OpportunityStatus.WON)
    with pytest.raises(InvalidTransition, match="Opportunity 'opp-1' is won and read-only"):
        set_lines(
            won, [OpportunityLine(product_id="laptop", quantity=1)], price_list=PRICES, now=NOW
        )


def test_an_estimate_that_disagrees_with_the_lines_is_refused() -> None:
    with_lines, _ = set_lines(
        opportunity(),
        [OpportunityLine(product_id="laptop", quantity=1)],
        price_list=PRICES,
        now=NOW,
    )
    with pytest.raises(ValidationError, match="computed from them"):
        attrs.evolve(with_lines, estimated_value=eur("1.00"))


def test_stored_lines_must_be_priced_and_have_a_price_list() -> None:
    line = priced(product_id="laptop", quantity=1)
    with pytest.raises(ValidationError, match="no price list"):
        opportunity(lines=[line], estimated_value=line.total)
    with pytest.raises(ValidationError, match="has no unit price"):
        opportunity(
            lines=[OpportunityLine(product_id="laptop", quantity=1)],
            price_list_id="eu",
            estimated_value=eur("0"),
        )


def test_an_opportunity_without_lines_keeps_a_hand_estimate() -> None:
    assert opportunity(estimated_value=eur("5000")).estimated_value == eur("5000")


def test_lines_and_price_list_are_not_set_by_plain_updates() -> None:
    assert {"lines", "price_list_id", "status"} <= opportunities.SYSTEM_FIELDS


# --- no float near money --------------------------------------------------------------

MONEY_MODULES = [pricing, opportunities, quotes, orders]


@pytest.mark.parametrize("module", MONEY_MODULES, ids=lambda m: m.__name__)
def test_money_modules_never_use_float(module: Any) -> None:
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    found = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Name) and node.id == "float")
        or (isinstance(node, ast.Constant) and isinstance(node.value, float))
    ]
    assert found == [], f"{module.__name__} mentions float on lines {found}"


def _annotations_of(cls: type) -> list[Any]:
    # ``custom`` holds the host's own fields, which may be floats by design
    return [tp for name, tp in typing.get_type_hints(cls).items() if name != "custom"]


def _mentions_float(tp: Any) -> bool:
    return tp is float or any(_mentions_float(arg) for arg in typing.get_args(tp))


@pytest.mark.parametrize(
    "cls",
    [
        pricing.OpportunityLine,
        pricing.PriceList,
        pricing.PriceListItem,
        pricing.Product,
        pricing.Totals,
        quotes.Quote,
        orders.Order,
        orders.Invoice,
        Opportunity,
    ],
    ids=lambda c: c.__name__,
)
def test_no_field_of_the_money_classes_is_a_float(cls: type) -> None:
    floats = [tp for tp in _annotations_of(cls) if _mentions_float(tp)]
    assert floats == []


def test_the_scan_would_catch_a_float() -> None:
    tree = ast.parse("x: float = 1.5")
    assert any(isinstance(n, ast.Name) and n.id == "float" for n in ast.walk(tree))
    assert _mentions_float(float | None)
    assert _mentions_float(typing.get_type_hints(salesflow.Opportunity)["custom"])


def test_figures_too_large_to_compute_exactly_are_refused() -> None:
    huge = OpportunityLine(description="x", quantity=Decimal("1e40"), unit_price=eur("1e40"))
    with pytest.raises(ValidationError, match="too large to round"):
        _ = huge.total
    digits = Decimal("1." + "3" * 49)
    long = OpportunityLine(
        description="x", quantity=digits, unit_price=Money(amount=digits, currency="EUR")
    )
    with pytest.raises(ValidationError, match="more than 80 digits"):
        _ = long.total
