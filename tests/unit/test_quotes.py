"""Quotes, orders and invoices (issue 5 item 4, seed 002, SPEC R7.1).

A draft quote can be edited; an active one is read-only; revising closes it and opens
a new draft revision; a won quote becomes an order, which is fulfilled and invoiced;
an invoice is paid or canceled. Changes of a draft's lines move the opportunity's
forecast.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest
from statemachine import StateMachine

from salesflow.errors import InvalidTransition, ValidationError
from salesflow.events import OpportunityUpdated
from salesflow.lifecycle import fire, mermaid, transitions
from salesflow.opportunity import Opportunity, OpportunityStatus, set_lines
from salesflow.orders import (
    Invoice,
    InvoiceCanceled,
    InvoiceCreated,
    InvoiceLifecycle,
    InvoicePaid,
    InvoiceState,
    Order,
    OrderCanceled,
    OrderCreated,
    OrderFulfilled,
    OrderInvoiced,
    OrderLifecycle,
    OrderState,
    cancel_invoice,
    cancel_order,
    fulfill_order,
    invoice_order,
    pay_invoice,
)
from salesflow.pricing import OpportunityLine, PriceList
from salesflow.quotes import (
    Quote,
    QuoteActivated,
    QuoteClosed,
    QuoteCreated,
    QuoteLifecycle,
    QuoteRevised,
    QuoteState,
    QuoteUpdated,
    QuoteWon,
    activate_quote,
    close_quote,
    edit_quote,
    new_quote,
    revise_quote,
    set_quote_lines,
    win_quote,
)
from salesflow.values import Money

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


def eur(amount: str) -> Money:
    return Money(amount=amount, currency="EUR")


PRICES = PriceList(
    id="eu",
    name="Europe",
    currency="EUR",
    items={"laptop": eur("1199.00"), "support": eur("149.90")},
)
LAPTOPS = OpportunityLine(product_id="laptop", quantity=10, discount_percent=5)
SUPPORT = OpportunityLine(product_id="support", quantity=10)


def opportunity() -> Opportunity:
    base = Opportunity(id="opp-1", name="10 laptops", created_at=NOW, modified_at=NOW)
    return set_lines(base, [LAPTOPS, SUPPORT], price_list=PRICES, now=NOW)[0]


def draft(quote_id: str = "q-1", opp: Opportunity | None = None) -> Quote:
    return new_quote(
        quote_id=quote_id, opportunity=opp or opportunity(), price_list=PRICES, now=NOW
    ).quote


def active(quote_id: str = "q-1") -> Quote:
    return activate_quote(draft(quote_id), now=NOW)[0]


# --- the lifecycle classes ------------------------------------------------------------


@pytest.mark.parametrize("lifecycle", [QuoteLifecycle, OrderLifecycle, InvoiceLifecycle])
def test_the_lifecycles_keep_the_house_settings(lifecycle: type[StateMachine]) -> None:
    assert lifecycle.allow_event_without_transition is False
    assert lifecycle.catch_errors_as_events is False
    assert lifecycle.atomic_configuration_update is True


def test_the_quote_lifecycle_is_draft_active_won_or_closed() -> None:
    assert transitions(QuoteLifecycle) == {
        ("draft", "edit"): "draft",
        ("draft", "activate"): "active",
        ("draft", "close"): "closed",
        ("active", "win"): "won",
        ("active", "revise"): "closed",
        ("active", "close"): "closed",
    }


def test_the_order_and_invoice_lifecycles() -> None:
    assert transitions(OrderLifecycle) == {
        ("open", "fulfill"): "fulfilled",
        ("open", "cancel"): "canceled",
        ("fulfilled", "invoice"): "invoiced",
        ("fulfilled", "cancel"): "canceled",
        ("invoiced", "invoice_canceled"): "fulfilled",
    }
    assert transitions(InvoiceLifecycle) == {
        ("open", "pay"): "paid",
        ("open", "cancel"): "canceled",
    }


@pytest.mark.parametrize("lifecycle", [QuoteLifecycle, OrderLifecycle, InvoiceLifecycle])
def test_the_lifecycles_render_as_mermaid(lifecycle: type[StateMachine]) -> None:
    diagram = mermaid(lifecycle)
    assert diagram.startswith("stateDiagram-v2")
    for state in lifecycle.states_map:
        assert f"as {state}" in diagram


def test_edit_is_allowed_only_in_draft() -> None:
    assert fire(QuoteLifecycle, "draft", "edit", what="q") == "draft"
    for state in ("active", "won", "closed"):
        with pytest.raises(InvalidTransition):
            fire(QuoteLifecycle, state, "edit", what="q")


# --- quotes ---------------------------------------------------------------------------


def test_a_new_quote_copies_the_opportunitys_lines() -> None:
    opp = opportunity()
    change = new_quote(quote_id="q-1", opportunity=opp, price_list=PRICES, now=LATER)
    quote = change.quote
    assert quote.state is QuoteState.DRAFT
    assert quote.lines == opp.lines
    assert quote.total == opp.estimated_value
    assert (quote.number, quote.revision, quote.name) == ("q-1", 1, "10 laptops")
    assert quote.currency == "EUR"
    assert change.opportunity == opp  # same lines: the forecast does not move
    assert change.events == (
        QuoteCreated(
            occurred_at=LATER, quote_id="q-1", opportunity_id="opp-1", number="q-1", revision=1
        ),
    )


def test_a_new_quote_with_other_lines_moves_the_forecast() -> None:
    change = new_quote(
        quote_id="q-1", opportunity=opportunity(), price_list=PRICES, now=LATER, lines=[SUPPORT]
    )
    assert change.opportunity.estimated_value == eur("1499.00")
    assert change.opportunity.modified_at == LATER
    assert isinstance(change.events[-1], OpportunityUpdated)


def test_no_quote_for_a_closed_opportunity() -> None:
    lost = attrs.evolve(opportunity(), status=OpportunityStatus.LOST)
    with pytest.raises(InvalidTransition, match="lost and read-only"):
        new_quote(quote_id="q-1", opportunity=lost, price_list=PRICES, now=NOW)


def test_a_draft_is_edited_and_the_forecast_follows() -> None:
    opp = opportunity()
    quote = draft(opp=opp)
    cheaper = attrs.evolve(quote.lines[0], discount_percent=20)
    change = set_quote_lines(
        quote, [cheaper, quote.lines[1]], opportunity=opp, price_list=PRICES, now=LATER
    )
    assert change.quote.total == eur("11091.00")
    assert change.opportunity.estimated_value == change.quote.total
    assert change.opportunity.lines == change.quote.lines
    assert change.events == (
        QuoteUpdated(occurred_at=LATER, quote_id="q-1", fields=("lines",)),
        OpportunityUpdated(
            occurred_at=LATER, opportunity_id="opp-1", fields=("estimated_value", "lines")
        ),
    )
    renamed, events = edit_quote(
        change.quote, {"name": "Laptops", "valid_until": date(2026, 4, 1)}, now=LATER
    )
    assert (renamed.name, renamed.valid_until) == ("Laptops", date(2026, 4, 1))
    assert events == [
        QuoteUpdated(occurred_at=LATER, quote_id="q-1", fields=("name", "valid_until"))
    ]


def test_the_forecast_of_a_won_opportunity_does_not_move() -> None:
    opp = opportunity()
    quote = draft(opp=opp)
    won = attrs.evolve(opp, status=OpportunityStatus.WON)
    change = set_quote_lines(quote, [SUPPORT], opportunity=won, price_list=PRICES, now=LATER)
    assert change.opportunity == won


def test_only_lines_in_the_quote_currency() -> None:
    usd = PriceList(id="us", name="US", currency="USD")
    with pytest.raises(ValidationError, match="use a EUR price list"):
        set_quote_lines(draft(), [], opportunity=opportunity(), price_list=usd, now=NOW)


def test_a_quote_belongs_to_its_opportunity() -> None:
    other = attrs.evolve(opportunity(), id="opp-2")
    with pytest.raises(ValidationError, match="pass the quote's own opportunity"):
        set_quote_lines(draft(), [SUPPORT], opportunity=other, price_list=PRICES, now=NOW)


def test_edit_quote_refuses_other_fields() -> None:
    with pytest.raises(ValidationError, match="editable fields are name, valid_until"):
        edit_quote(draft(), {"lines": ()}, now=NOW)


def test_activating_makes_the_quote_read_only() -> None:
    quote, events = activate_quote(draft(), now=LATER)
    assert quote.state is QuoteState.ACTIVE
    assert quote.activated_at == LATER
    assert events == [QuoteActivated(occurred_at=LATER, quote_id="q-1", total=quote.total)]
    with pytest.raises(InvalidTransition) as refused:
        set_quote_lines(quote, [SUPPORT], opportunity=opportunity(), price_list=PRICES, now=LATER)
    message = str(refused.value)
    assert "Quote 'q-1'" in message
    assert "is active" in message
    assert "revise it" in message
    assert refused.value.state == "active"
    with pytest.raises(InvalidTransition, match="revise it"):
        edit_quote(quote, {"name": "x"}, now=LATER)


def test_an_empty_draft_cannot_be_activated() -> None:
    empty = new_quote(
        quote_id="q-1", opportunity=opportunity(), price_list=PRICES, now=NOW, lines=[]
    ).quote
    with pytest.raises(InvalidTransition, match="add at least one line first"):
        activate_quote(empty, now=NOW)


def test_revising_closes_the_quote_and_opens_the_next_revision() -> None:
    quote = active()
    revision = revise_quote(quote, new_quote_id="q-2", now=LATER)
    old, new = revision.revised, revision.draft
    assert (old.state, old.close_reason, old.revised_to_id) == (QuoteState.CLOSED, "revised", "q-2")
    assert (new.state, new.revision, new.number) == (QuoteState.DRAFT, 2, "q-1")
    assert new.lines == quote.lines
    assert new.total == quote.total
    assert new.revised_from_id == "q-1"
    assert revision.events == (
        QuoteRevised(occurred_at=LATER, quote_id="q-1", new_quote_id="q-2", revision=2),
        QuoteCreated(
            occurred_at=LATER, quote_id="q-2", opportunity_id="opp-1", number="q-1", revision=2
        ),
    )
    with pytest.raises(InvalidTransition, match="edit its newer revision 'q-2'"):
        edit_quote(old, {"name": "x"}, now=LATER)


def test_a_draft_is_not_revised() -> None:
    with pytest.raises(InvalidTransition, match="a draft is edited directly"):
        revise_quote(draft(), new_quote_id="q-2", now=NOW)


def test_a_revision_needs_a_new_id() -> None:
    with pytest.raises(ValidationError, match="needs a new id"):
        revise_quote(active(), new_quote_id="q-1", now=NOW)


def test_closing_a_quote_needs_a_reason() -> None:
    closed, events = close_quote(active(), "lost", now=LATER)
    assert (closed.state, closed.close_reason, closed.closed_at) == (
        QuoteState.CLOSED,
        "lost",
        LATER,
    )
    assert events == [QuoteClosed(occurred_at=LATER, quote_id="q-1", reason="lost")]
    with pytest.raises(ValidationError, match="non-empty text"):
        close_quote(active(), "  ", now=NOW)
    with pytest.raises(InvalidTransition, match="a closed quote cannot change"):
        close_quote(closed, "lost", now=NOW)


def test_winning_a_quote_makes_an_order_and_closes_the_other_open_quotes() -> None:
    opp = opportunity()
    winner = active("q-1")
    other_active = active("q-2")
    other_draft = draft("q-3")
    already_closed = close_quote(active("q-4"), "lost", now=NOW)[0]
    win = win_quote(
        winner,
        order_id="o-1",
        opportunity=opp,
        other_quotes=[winner, other_active, other_draft, already_closed],
        now=LATER,
    )
    assert win.quote.state is QuoteState.WON
    assert win.quote.order_id == "o-1"
    assert win.order.state is OrderState.OPEN
    assert win.order.lines == winner.lines
    assert win.order.total == winner.total
    assert win.order.quote_id == "q-1"
    assert [(q.id, q.state, q.close_reason) for q in win.closed] == [
        ("q-2", QuoteState.CLOSED, "another_quote_won"),
        ("q-3", QuoteState.CLOSED, "another_quote_won"),
    ]
    assert win.opportunity.estimated_value == winner.total
    assert win.opportunity.status is OpportunityStatus.OPEN
    assert win.events == (
        QuoteWon(occurred_at=LATER, quote_id="q-1", order_id="o-1", total=winner.total),
        OrderCreated(
            occurred_at=LATER,
            order_id="o-1",
            quote_id="q-1",
            opportunity_id="opp-1",
            total=winner.total,
        ),
        QuoteClosed(occurred_at=LATER, quote_id="q-2", reason="another_quote_won"),
        QuoteClosed(occurred_at=LATER, quote_id="q-3", reason="another_quote_won"),
    )
    with pytest.raises(InvalidTransition, match="became order 'o-1'"):
        edit_quote(win.quote, {"name": "x"}, now=LATER)


def test_only_an_active_quote_is_won() -> None:
    with pytest.raises(InvalidTransition, match="activate it first"):
        win_quote(draft(), order_id="o-1", opportunity=opportunity(), now=NOW)


def test_an_opportunity_has_one_won_quote() -> None:
    first = win_quote(active("q-1"), order_id="o-1", opportunity=opportunity(), now=NOW).quote
    with pytest.raises(InvalidTransition, match="already won"):
        win_quote(
            active("q-2"), order_id="o-2", opportunity=opportunity(), other_quotes=[first], now=NOW
        )


def test_other_quotes_must_be_of_the_same_opportunity() -> None:
    stranger = attrs.evolve(active("q-9"), opportunity_id="opp-9")
    with pytest.raises(ValidationError, match="only the opportunity's own quotes"):
        win_quote(
            active(), order_id="o-1", opportunity=opportunity(), other_quotes=[stranger], now=NOW
        )


def test_quote_documents_refuse_lines_in_another_currency() -> None:
    usd = OpportunityLine(description="x", quantity=1, unit_price=Money(amount=1, currency="USD"))
    with pytest.raises(ValidationError, match="must be priced in EUR"):
        attrs.evolve(draft(), lines=[usd])


# --- orders and invoices --------------------------------------------------------------


def order() -> Order:
    return win_quote(active(), order_id="o-1", opportunity=opportunity(), now=NOW).order


def test_an_order_is_fulfilled_invoiced_and_paid() -> None:
    fulfilled, events = fulfill_order(order(), now=LATER)
    assert (fulfilled.state, fulfilled.fulfilled_at) == (OrderState.FULFILLED, LATER)
    assert events == [OrderFulfilled(occurred_at=LATER, order_id="o-1")]
    invoiced, invoice, events = invoice_order(
        fulfilled, invoice_id="inv-1", now=LATER, due_date=date(2026, 4, 1)
    )
    assert (invoiced.state, invoiced.invoice_id) == (OrderState.INVOICED, "inv-1")
    assert (invoice.state, invoice.order_id, invoice.due_date) == (
        InvoiceState.OPEN,
        "o-1",
        date(2026, 4, 1),
    )
    assert invoice.lines == fulfilled.lines
    assert invoice.total == fulfilled.total
    assert events == [
        InvoiceCreated(occurred_at=LATER, invoice_id="inv-1", order_id="o-1", total=invoice.total),
        OrderInvoiced(occurred_at=LATER, order_id="o-1", invoice_id="inv-1"),
    ]
    paid, events = pay_invoice(invoice, now=LATER)
    assert (paid.state, paid.paid_at) == (InvoiceState.PAID, LATER)
    assert events == [InvoicePaid(occurred_at=LATER, invoice_id="inv-1", order_id="o-1")]
    with pytest.raises(InvalidTransition, match="Invoice 'inv-1' cannot cancel while paid"):
        cancel_invoice(paid, "mistake", order=invoiced, now=LATER)


def test_an_open_order_is_not_invoiced() -> None:
    with pytest.raises(InvalidTransition, match="fulfill it first"):
        invoice_order(order(), invoice_id="inv-1", now=NOW)


def test_an_order_is_invoiced_once_until_that_invoice_is_canceled() -> None:
    fulfilled = fulfill_order(order(), now=NOW)[0]
    invoiced, invoice, _ = invoice_order(fulfilled, invoice_id="inv-1", now=NOW)
    with pytest.raises(InvalidTransition, match="cancel that invoice first"):
        invoice_order(invoiced, invoice_id="inv-2", now=NOW)
    with pytest.raises(InvalidTransition, match="cancel its invoice first"):
        cancel_order(invoiced, "customer withdrew", now=NOW)
    canceled, reopened, events = cancel_invoice(invoice, "wrong address", order=invoiced, now=LATER)
    assert canceled.state is InvoiceState.CANCELED
    assert canceled.cancel_reason == "wrong address"
    assert (reopened.state, reopened.invoice_id) == (OrderState.FULFILLED, None)
    assert events == [
        InvoiceCanceled(
            occurred_at=LATER, invoice_id="inv-1", order_id="o-1", reason="wrong address"
        )
    ]
    again, second, _ = invoice_order(reopened, invoice_id="inv-2", now=LATER)
    assert (again.invoice_id, second.total) == ("inv-2", invoice.total)


def test_cancel_invoice_needs_its_own_order() -> None:
    fulfilled = fulfill_order(order(), now=NOW)[0]
    invoiced, invoice, _ = invoice_order(fulfilled, invoice_id="inv-1", now=NOW)
    with pytest.raises(ValidationError, match="pass that order"):
        cancel_invoice(invoice, "x", order=attrs.evolve(invoiced, id="o-2"), now=NOW)


@pytest.mark.parametrize("fulfilled", [False, True])
def test_an_order_is_canceled_before_it_is_invoiced(fulfilled: bool) -> None:
    start = fulfill_order(order(), now=NOW)[0] if fulfilled else order()
    canceled, events = cancel_order(start, "customer withdrew", now=LATER)
    assert (canceled.state, canceled.cancel_reason) == (OrderState.CANCELED, "customer withdrew")
    assert events == [OrderCanceled(occurred_at=LATER, order_id="o-1", reason="customer withdrew")]
    with pytest.raises(InvalidTransition, match="already canceled"):
        cancel_order(canceled, "again", now=LATER)
    with pytest.raises(InvalidTransition):
        fulfill_order(canceled, now=LATER)


def test_a_refused_command_leaves_the_document_as_it_was() -> None:
    quote = active()
    before = attrs.evolve(quote)
    with pytest.raises(InvalidTransition):
        set_quote_lines(quote, [SUPPORT], opportunity=opportunity(), price_list=PRICES, now=LATER)
    assert quote == before


def _documents() -> list[Any]:
    return [
        draft(),
        order(),
        Invoice(
            id="i",
            created_at=NOW,
            modified_at=NOW,
            opportunity_id="opp-1",
            currency="EUR",
            order_id="o-1",
        ),
    ]


@pytest.mark.parametrize("document", _documents(), ids=lambda d: type(d).__name__)
def test_naive_datetimes_are_refused(document: Any) -> None:
    with pytest.raises(ValidationError, match="naive"):
        attrs.evolve(document, modified_at=datetime(2026, 1, 1))
