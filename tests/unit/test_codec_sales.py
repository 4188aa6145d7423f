"""The codec for opportunity to cash: opportunities with lines, products, price lists,
quotes, orders and invoices round-trip exactly through JSON; opportunity documents
written before lines existed still load; broken documents are refused."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from salesflow.errors import StoreError
from salesflow.opportunity import Opportunity, set_lines
from salesflow.orders import Invoice, Order, fulfill_order, invoice_order
from salesflow.pricing import OpportunityLine, PriceList, Product
from salesflow.quotes import Quote, activate_quote, new_quote, revise_quote, win_quote
from salesflow.stores.codec import (
    SALES_SCHEMA,
    SALES_TYPES,
    Codec,
    decode_sales,
    decode_sales_as,
    encode_sales,
)
from salesflow.values import Money, RecordKind

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=2, microseconds=123456)


def eur(amount: str) -> Money:
    return Money(amount=amount, currency="EUR")


PRODUCT = Product(
    id="laptop", version=3, name="Laptop", unit="piece", active=False, description="14 inch"
)
PRICES = PriceList(
    id="eu",
    version=2,
    name="Europe 2026",
    currency="EUR",
    items={"laptop": eur("1199.00"), "support": eur("149.9000")},
    valid_from=date(2026, 1, 1),
    valid_to=date(2026, 12, 31),
)
LINES = (
    OpportunityLine(product_id="laptop", quantity=Decimal("10.50"), discount_percent="7.25"),
    OpportunityLine(product_id="support", quantity=10, discount_amount=eur("0.10")),
    OpportunityLine(description="Setup", quantity=1, unit_price=eur("250")),
)


def opportunity_with_lines() -> Opportunity:
    base = Opportunity(id="opp-1", name="Laptops", created_at=T0, modified_at=T0, probability=40)
    return set_lines(base, LINES, price_list=PRICES, now=T1)[0]


def documents() -> dict[str, Any]:
    opp = opportunity_with_lines()
    first = new_quote(
        quote_id="q-1",
        opportunity=opp,
        price_list=PRICES,
        now=T0,
        number="QUO-001",
        valid_until=date(2026, 4, 1),
    ).quote
    revision = revise_quote(activate_quote(first, now=T0)[0], new_quote_id="q-2", now=T1)
    won = win_quote(
        activate_quote(revision.draft, now=T1)[0], order_id="o-1", opportunity=opp, now=T1
    )
    order, invoice, _ = invoice_order(
        fulfill_order(won.order, now=T1)[0], invoice_id="i-1", now=T1, due_date=date(2026, 5, 1)
    )
    return {
        "product": PRODUCT,
        "price_list": PRICES,
        "revised quote": revision.revised,
        "won quote": won.quote,
        "order": order,
        "invoice": invoice,
    }


def test_an_opportunity_with_lines_round_trips_exactly() -> None:
    codec = Codec()
    opp = opportunity_with_lines()
    document = codec.encode(opp)
    back = codec.decode(RecordKind.OPPORTUNITY, json.loads(json.dumps(document)))
    assert back == opp
    assert codec.encode(back) == document
    assert isinstance(back, Opportunity)
    assert [str(line.quantity) for line in back.lines] == ["10.50", "10", "1"]
    assert document["lines"][0]["unit_price"] == {"amount": "1199.00", "currency": "EUR"}
    assert document["price_list_id"] == "eu"


def test_an_opportunity_document_from_before_lines_still_loads() -> None:
    codec = Codec()
    plain = Opportunity(
        id="opp-0", name="Old deal", created_at=T0, modified_at=T0, estimated_value=eur("5000")
    )
    old = codec.encode(plain)
    del old["lines"], old["price_list_id"]  # what salesflow wrote before issue 5
    back = codec.decode_as(Opportunity, old)
    assert back == plain
    assert back.lines == ()
    assert back.price_list_id is None
    assert back.estimated_value == eur("5000")


def test_an_opportunity_whose_estimate_disagrees_with_its_lines_is_refused() -> None:
    codec = Codec()
    document = codec.encode(opportunity_with_lines())
    document["estimated_value"] = {"amount": "1.00", "currency": "EUR"}
    with pytest.raises(StoreError, match="computed from them"):
        codec.decode(RecordKind.OPPORTUNITY, document)


@pytest.mark.parametrize("name", list(documents()))
def test_sales_documents_round_trip_exactly_through_json(name: str) -> None:
    value = documents()[name]
    document = encode_sales(value)
    assert document["schema"] == SALES_SCHEMA
    assert SALES_TYPES[document["type"]] is type(value)
    back = decode_sales(json.loads(json.dumps(document)))
    assert back == value
    assert type(back) is type(value)
    assert encode_sales(back) == document


def test_every_sales_type_is_covered() -> None:
    assert {type(v) for v in documents().values()} == set(SALES_TYPES.values())


def test_totals_are_not_stored_but_come_back_from_the_lines() -> None:
    quote = documents()["won quote"]
    document = encode_sales(quote)
    assert "total" not in document
    assert "totals" not in document
    back = decode_sales_as(Quote, document)
    assert back.total == quote.total == opportunity_with_lines().estimated_value


def test_a_price_list_keeps_its_decimals() -> None:
    document = encode_sales(PRICES)
    assert document["items"][1] == {
        "product_id": "support",
        "unit_price": {"amount": "149.9000", "currency": "EUR"},
    }
    back = decode_sales_as(PriceList, document)
    assert str(back.items[1].unit_price.amount) == "149.9000"


def test_a_document_of_another_schema_is_refused() -> None:
    document = encode_sales(PRODUCT)
    document["schema"] = SALES_SCHEMA + 1
    with pytest.raises(StoreError, match="upgrade salesflow"):
        decode_sales(document)


def test_an_unknown_type_is_refused() -> None:
    document = encode_sales(PRODUCT)
    document["type"] = "receipt"
    with pytest.raises(StoreError, match="known types are invoice, order"):
        decode_sales(document)


def test_decode_as_refuses_another_type() -> None:
    with pytest.raises(StoreError, match="has type 'product', not 'order'"):
        decode_sales_as(Order, encode_sales(PRODUCT))
    assert decode_sales_as(Invoice, encode_sales(documents()["invoice"])).order_id == "o-1"


def test_a_document_with_a_line_in_another_currency_is_refused() -> None:
    document = encode_sales(documents()["order"])
    document["lines"][0]["unit_price"]["currency"] = "USD"
    with pytest.raises(StoreError, match=r"cannot be read: .*priced in USD"):
        decode_sales(document)


def test_decoding_does_not_change_the_callers_document() -> None:
    document = encode_sales(PRICES)
    copy = json.loads(json.dumps(document))
    decode_sales(document)
    assert document == copy
