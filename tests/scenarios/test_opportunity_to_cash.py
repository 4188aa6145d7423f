"""Opportunity to cash through the engine, on memory and SQLite: lines and the
forecast, quote revisions, winning into an order, invoicing and payment (which moves
the deal's pipeline)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import InvalidTransition, NotFound, ValidationError
from salesflow.events import ListSink
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.orders import Invoice, InvoiceState, Order, OrderState
from salesflow.pipelines import Pipeline, Stage, Trigger
from salesflow.pricing import OpportunityLine, PriceList, Product
from salesflow.quotes import Quote, QuoteState
from salesflow.stores.url import open_store
from salesflow.values import Money

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def eur(amount: str) -> Money:
    return Money(amount=amount, currency="EUR")


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Salesflow:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'c.db'}"
    engine = Salesflow(open_store(url), clock=FakeClock(T0), sink=ListSink())
    engine.save_product(Product(id="laptop", name="Laptop"))
    engine.save_product(Product(id="support", name="Support", unit="year"))
    engine.save_product(Product(id="retired", name="Old model", active=False))
    engine.save_price_list(
        PriceList(
            id="eu",
            name="Europe 2026",
            currency="EUR",
            items={"laptop": eur("1199.00"), "support": eur("149.90"), "retired": eur("1")},
        )
    )
    return engine


def test_from_lines_to_a_paid_invoice(engine: Salesflow) -> None:
    engine.publish_pipeline(
        Pipeline(
            id="sales",
            name="Sales",
            stages=[
                Stage(id="offer", name="Offer"),
                Stage(id="won", name="Won", kind="won"),
                Stage(id="paid", name="Paid", kind="won"),
            ],
            triggers=[Trigger(event="payment_received", stage="paid")],
        )
    )
    deal = engine.create_deal("sales", name="Laptops for Contoso", probability=60)
    deal = engine.set_opportunity_lines(
        deal.id,
        [
            OpportunityLine(product_id="laptop", quantity=Decimal(10), discount_percent=Decimal(5)),
            OpportunityLine(product_id="support", quantity=Decimal(10)),
        ],
        price_list_id="eu",
    )
    assert deal.estimated_value == eur("12889.50")  # 11390.50 + 1499.00
    assert engine.get(Opportunity, deal.id).estimated_value == eur("12889.50")

    quote = engine.create_quote(deal.id, name="Offer 1")
    assert (quote.state, quote.revision, quote.total) == (QuoteState.DRAFT, 1, eur("12889.50"))
    quote = engine.set_quote_lines(
        quote.id,
        [OpportunityLine(product_id="laptop", quantity=Decimal(10), discount_percent=Decimal(10))],
    )
    assert engine.get(Opportunity, deal.id).estimated_value == eur("10791.00")  # follows
    active = engine.activate_quote(quote.id)
    with pytest.raises(InvalidTransition, match="revise"):
        engine.set_quote_lines(active.id, [])
    draft = engine.revise_quote(active.id)
    assert (draft.revision, draft.number) == (2, quote.number)
    assert engine.sales_document(Quote, quote.id).state is QuoteState.CLOSED
    engine.activate_quote(draft.id)

    order = engine.win_quote(draft.id)
    assert order.state is OrderState.OPEN
    assert order.total == eur("10791.00")
    assert engine.get(Opportunity, deal.id).status is OpportunityStatus.WON
    assert [q.state for q in engine.quotes(deal.id)] == [QuoteState.CLOSED, QuoteState.WON]
    with pytest.raises(InvalidTransition):
        engine.invoice_order(order.id)  # not fulfilled yet
    engine.fulfill_order(order.id)
    invoice = engine.invoice_order(order.id, due_date=date(2026, 4, 1))
    assert engine.sales_document(Order, order.id).state is OrderState.INVOICED
    assert engine.invoices(deal.id) == [invoice]

    canceled = engine.cancel_invoice(invoice.id, "wrong address")
    assert canceled.state is InvoiceState.CANCELED
    again = engine.invoice_order(order.id)
    paid = engine.pay_invoice(again.id)
    assert paid.state is InvoiceState.PAID
    assert engine.sales_document(Invoice, again.id).state is InvoiceState.PAID
    item = engine.pipeline_item(deal)
    assert item is not None
    assert (item.stage, item.history[-1].via) == ("paid", "trigger:payment_received")
    assert [o.id for o in engine.orders(deal.id)] == [order.id]


def test_a_draft_quote_is_renamed_and_given_a_validity_then_read_only(engine: Salesflow) -> None:
    deal = engine.create_opportunity(name="Docks")
    engine.set_opportunity_lines(
        deal.id, [OpportunityLine(product_id="laptop", quantity=Decimal(1))], price_list_id="eu"
    )
    draft = engine.create_quote(deal.id)
    edited = engine.update_quote(draft.id, name="Offer for Docks", valid_until=date(2026, 4, 1))
    assert (edited.name, edited.valid_until) == ("Offer for Docks", date(2026, 4, 1))
    assert engine.sales_document(Quote, draft.id) == edited
    with pytest.raises(ValidationError, match="needs name= or valid_until="):
        engine.update_quote(draft.id)
    active = engine.activate_quote(draft.id)
    with pytest.raises(InvalidTransition):
        engine.update_quote(active.id, name="Too late")
    assert engine.sales_document(Quote, draft.id).name == "Offer for Docks"


def test_refusals_leave_everything_as_it_was(engine: Salesflow) -> None:
    deal = engine.create_opportunity(name="Docks")
    with pytest.raises(ValidationError, match="no price list"):
        engine.create_quote(deal.id)
    with pytest.raises(NotFound, match="PriceList"):
        engine.set_opportunity_lines(deal.id, [], price_list_id="nope")
    with pytest.raises(ValidationError):
        engine.set_opportunity_lines(
            deal.id,
            [OpportunityLine(product_id="retired", quantity=Decimal(1))],
            price_list_id="eu",
        )
    assert engine.get(Opportunity, deal.id).lines == ()
    assert engine.get(Opportunity, deal.id).price_list_id is None
    with pytest.raises(NotFound, match="Quote"):
        engine.activate_quote("quote-404")
    engine.set_opportunity_lines(
        deal.id, [OpportunityLine(product_id="laptop", quantity=Decimal(1))], price_list_id="eu"
    )
    empty = engine.create_quote(deal.id, lines=[])
    with pytest.raises(InvalidTransition):
        engine.activate_quote(empty.id)  # no lines
    assert engine.sales_document(Quote, empty.id).state is QuoteState.DRAFT
    engine.lose_opportunity(deal.id, "budget")
    with pytest.raises(InvalidTransition):
        engine.set_opportunity_lines(deal.id, [])
    with pytest.raises(ValidationError, match="Product"):
        engine.save_product("laptop")  # type: ignore[arg-type]
