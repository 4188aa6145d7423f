"""Opportunity to cash under random lines and random sequences of commands (issue 5 item 4).

What a seller may rely on:

* a document's total is always the sum of its lines, each line rounded half-even to
  the currency's minor unit (checked against an independent computation with
  fractions), and the opportunity's forecast is always the sum of its lines;
* an active quote never changes, whatever commands are thrown at it: only a draft can
  be edited, and once a quote leaves draft its lines and total are fixed for good;
* revising keeps the lines and the number and adds one to the revision;
* an opportunity has at most one won quote, and then no open ones; an order and its
  invoices carry exactly the won quote's lines and total;
* a refused command raises a salesflow error and changes nothing.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from salesflow.errors import InvalidTransition, SalesflowError
from salesflow.opportunity import Opportunity, set_lines
from salesflow.orders import (
    Invoice,
    InvoiceState,
    Order,
    OrderState,
    cancel_invoice,
    cancel_order,
    fulfill_order,
    invoice_order,
    pay_invoice,
)
from salesflow.pricing import OpportunityLine, PriceList, minor_unit, totals
from salesflow.quotes import (
    Quote,
    QuoteState,
    activate_quote,
    close_quote,
    edit_quote,
    new_quote,
    revise_quote,
    set_quote_lines,
    win_quote,
)
from salesflow.values import Money

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CURRENCIES = ("EUR", "JPY", "KWD")


def price_list(currency: str) -> PriceList:
    return PriceList(
        id=f"pl-{currency.lower()}",
        name=currency,
        currency=currency,
        items={
            "a": Money(amount="19.99", currency=currency),
            "b": Money(amount="0.005", currency=currency),
            "c": Money(amount="1234.5678", currency=currency),
        },
    )


def exact_amounts(max_value: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(min_value=1, max_value=max_value * 10**places).map(
        lambda n: Decimal(n).scaleb(-places)
    )


@st.composite
def lines(draw: st.DrawFn, currency: str) -> OpportunityLine:
    """A line for the price list of ``currency``: listed product or write-in, any discount."""
    quantity = draw(exact_amounts(1000, 3))
    if draw(st.booleans()):
        line = OpportunityLine(product_id=draw(st.sampled_from("abc")), quantity=quantity)
        unit = price_list(currency).price_of(line.product_id or "")
    else:
        unit = Money(amount=draw(exact_amounts(10_000, 4)), currency=currency)
        line = OpportunityLine(description="write-in", quantity=quantity, unit_price=unit)
    assert unit is not None
    discount = draw(st.sampled_from(["none", "percent", "amount"]))
    if discount == "percent":
        percent = draw(st.integers(0, 10_000))
        line = attrs.evolve(line, discount_percent=Decimal(percent).scaleb(-2))
    elif discount == "amount":
        gross = _round(Fraction(quantity) * Fraction(unit.amount), currency)
        share = draw(st.fractions(min_value=0, max_value=1))
        amount = Decimal(int(gross * share * 10 ** minor_unit(currency))).scaleb(
            -minor_unit(currency)
        )
        line = attrs.evolve(line, discount_amount=Money(amount=amount, currency=currency))
    return line


def _round(value: Fraction, currency: str) -> Fraction:
    """Round half to even to the minor unit, with fractions (independent of ``decimal``)."""
    scale = 10 ** minor_unit(currency)
    scaled = value * scale
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    return Fraction(floor, scale)


def expected_total(priced: list[OpportunityLine], currency: str) -> Fraction:
    total = Fraction(0)
    for line in priced:
        assert line.unit_price is not None
        gross = _round(Fraction(line.quantity) * Fraction(line.unit_price.amount), currency)
        if line.discount_amount is not None:
            discount = _round(Fraction(line.discount_amount.amount), currency)
        elif line.discount_percent is not None:
            discount = _round(gross * Fraction(line.discount_percent) / 100, currency)
        else:
            discount = Fraction(0)
        total += gross - discount
    return total


@st.composite
def priced_lines(draw: st.DrawFn) -> tuple[str, list[OpportunityLine]]:
    currency = draw(st.sampled_from(CURRENCIES))
    drawn = draw(st.lists(lines(currency), max_size=8))
    prices = price_list(currency)
    return currency, [
        line
        if line.is_priced
        else attrs.evolve(
            line, unit_price=prices.price_of(line.product_id or ""), manual_price=False
        )
        for line in drawn
    ]


@given(priced_lines())
def test_the_total_is_the_sum_of_the_lines_each_rounded_half_even(
    drawn: tuple[str, list[OpportunityLine]],
) -> None:
    currency, priced = drawn
    result = totals(priced, currency)
    assert Fraction(result.total.amount) == expected_total(priced, currency)
    assert result.total.amount == sum((line.total.amount for line in priced), Decimal(0))
    assert result.total.amount == result.amount.amount - result.discount.amount
    assert -result.total.amount.as_tuple().exponent == minor_unit(currency)  # type: ignore[operator]
    assert all(line.total.amount >= 0 for line in priced)


@given(priced_lines())
def test_the_forecast_is_the_sum_of_the_opportunitys_lines(
    drawn: tuple[str, list[OpportunityLine]],
) -> None:
    currency, priced = drawn
    opportunity = Opportunity(id="opp-1", name="deal", created_at=T0, modified_at=T0)
    updated, _ = set_lines(opportunity, priced, price_list=price_list(currency), now=T0)
    assert updated.estimated_value is not None
    assert Fraction(updated.estimated_value.amount) == expected_total(priced, currency)
    assert updated.estimated_value.currency == currency


# --- the lifecycle under random commands ----------------------------------------------


class QuoteToCash(RuleBasedStateMachine):
    """One opportunity with its quotes, orders and invoices, driven at random."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.ids = itertools.count(1)
        self.prices = price_list("EUR")
        self.opportunity = Opportunity(id="opp-1", name="deal", created_at=T0, modified_at=T0)
        self.quotes: dict[str, Quote] = {}
        self.orders: dict[str, Order] = {}
        self.invoices: dict[str, Invoice] = {}
        self.frozen: dict[str, tuple[Any, ...]] = {}  # quotes that left draft, as they left

    def tick(self) -> datetime:
        self.now += timedelta(minutes=7)
        return self.now

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.ids)}"

    @initialize(drawn=st.lists(lines("EUR"), max_size=3))
    def start(self, drawn: list[OpportunityLine]) -> None:
        self.opportunity, _ = set_lines(self.opportunity, drawn, price_list=self.prices, now=T0)

    def refused(self, command: Any, *args: Any, **kwargs: Any) -> bool:
        """Run ``command``; return True if it was refused (and assert nothing changed)."""
        snapshot = self.snapshot()
        try:
            self.result = command(*args, **kwargs)
        except SalesflowError:
            assert self.snapshot() == snapshot
            return True
        return False

    def snapshot(self) -> tuple[Any, ...]:
        return (
            attrs.evolve(self.opportunity),
            {k: attrs.evolve(v) for k, v in self.quotes.items()},
            dict(self.orders),
            dict(self.invoices),
        )

    def keep_quote(self, quote: Quote) -> None:
        previous = self.quotes.get(quote.id)
        if quote.state is not QuoteState.DRAFT and quote.id not in self.frozen:
            assert previous is not None
            self.frozen[quote.id] = (previous.lines, previous.total, previous.currency)
        self.quotes[quote.id] = quote

    def pick(self, data: st.DataObject, pool: dict[str, Any]) -> Any:
        return pool[data.draw(st.sampled_from(sorted(pool)))]

    @rule(drawn=st.one_of(st.none(), st.lists(lines("EUR"), max_size=3)))
    def create_quote(self, drawn: list[OpportunityLine] | None) -> None:
        if self.refused(
            new_quote,
            quote_id=self.next_id("q"),
            opportunity=self.opportunity,
            price_list=self.prices,
            now=self.tick(),
            lines=drawn,
        ):
            return
        self.quotes[self.result.quote.id] = self.result.quote
        self.opportunity = self.result.opportunity

    @precondition(lambda self: self.quotes)
    @rule(data=st.data(), drawn=st.lists(lines("EUR"), max_size=3))
    def change_lines(self, data: st.DataObject, drawn: list[OpportunityLine]) -> None:
        quote = self.pick(data, self.quotes)
        refused = self.refused(
            set_quote_lines,
            quote,
            drawn,
            opportunity=self.opportunity,
            price_list=self.prices,
            now=self.tick(),
        )
        assert refused == (quote.state is not QuoteState.DRAFT)
        if not refused:
            self.keep_quote(self.result.quote)
            self.opportunity = self.result.opportunity
            assert self.opportunity.estimated_value == self.result.quote.total

    @precondition(lambda self: self.quotes)
    @rule(data=st.data(), name=st.text(min_size=1, max_size=20))
    def rename(self, data: st.DataObject, name: str) -> None:
        quote = self.pick(data, self.quotes)
        refused = self.refused(edit_quote, quote, {"name": name}, now=self.tick())
        if quote.state is not QuoteState.DRAFT:
            assert refused
        if not refused:
            self.keep_quote(self.result[0])

    @precondition(lambda self: self.quotes)
    @rule(data=st.data())
    def activate(self, data: st.DataObject) -> None:
        quote = self.pick(data, self.quotes)
        refused = self.refused(activate_quote, quote, now=self.tick())
        assert refused == (quote.state is not QuoteState.DRAFT or not quote.lines)
        if not refused:
            self.keep_quote(self.result[0])

    @precondition(lambda self: self.quotes)
    @rule(data=st.data())
    def revise(self, data: st.DataObject) -> None:
        quote = self.pick(data, self.quotes)
        refused = self.refused(revise_quote, quote, new_quote_id=self.next_id("q"), now=self.tick())
        assert refused == (quote.state is not QuoteState.ACTIVE)
        if refused:
            return
        revised, new = self.result.revised, self.result.draft
        assert new.lines == quote.lines
        assert new.total == quote.total
        assert new.number == quote.number
        assert new.revision == quote.revision + 1
        assert revised.close_reason == "revised"
        self.keep_quote(revised)
        self.quotes[new.id] = new

    @precondition(lambda self: self.quotes)
    @rule(data=st.data(), reason=st.sampled_from(["lost", "canceled", "too expensive"]))
    def close(self, data: st.DataObject, reason: str) -> None:
        quote = self.pick(data, self.quotes)
        refused = self.refused(close_quote, quote, reason, now=self.tick())
        assert refused == (quote.state not in (QuoteState.DRAFT, QuoteState.ACTIVE))
        if not refused:
            self.keep_quote(self.result[0])

    @precondition(lambda self: self.quotes)
    @rule(data=st.data())
    def win(self, data: st.DataObject) -> None:
        quote = self.pick(data, self.quotes)
        refused = self.refused(
            win_quote,
            quote,
            order_id=self.next_id("o"),
            opportunity=self.opportunity,
            other_quotes=list(self.quotes.values()),
            now=self.tick(),
        )
        already_won = any(q.state is QuoteState.WON for q in self.quotes.values())
        assert refused == (quote.state is not QuoteState.ACTIVE or already_won)
        if refused:
            return
        self.keep_quote(self.result.quote)
        for closed in self.result.closed:
            self.keep_quote(closed)
        assert all(
            q.state not in (QuoteState.DRAFT, QuoteState.ACTIVE) for q in self.quotes.values()
        )
        self.orders[self.result.order.id] = self.result.order
        self.opportunity = self.result.opportunity

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def fulfill(self, data: st.DataObject) -> None:
        order = self.pick(data, self.orders)
        refused = self.refused(fulfill_order, order, now=self.tick())
        assert refused == (order.state is not OrderState.OPEN)
        if not refused:
            self.orders[order.id] = self.result[0]

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def invoice(self, data: st.DataObject) -> None:
        order = self.pick(data, self.orders)
        refused = self.refused(invoice_order, order, invoice_id=self.next_id("i"), now=self.tick())
        assert refused == (order.state is not OrderState.FULFILLED)
        if not refused:
            self.orders[order.id], invoice, _ = self.result
            self.invoices[invoice.id] = invoice

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def cancel_an_order(self, data: st.DataObject) -> None:
        order = self.pick(data, self.orders)
        refused = self.refused(cancel_order, order, "withdrawn", now=self.tick())
        assert refused == (order.state not in (OrderState.OPEN, OrderState.FULFILLED))
        if not refused:
            self.orders[order.id] = self.result[0]

    @precondition(lambda self: self.invoices)
    @rule(data=st.data())
    def pay(self, data: st.DataObject) -> None:
        invoice = self.pick(data, self.invoices)
        refused = self.refused(pay_invoice, invoice, now=self.tick())
        assert refused == (invoice.state is not InvoiceState.OPEN)
        if not refused:
            self.invoices[invoice.id] = self.result[0]

    @precondition(lambda self: self.invoices)
    @rule(data=st.data())
    def cancel_an_invoice(self, data: st.DataObject) -> None:
        invoice = self.pick(data, self.invoices)
        order = self.orders[invoice.order_id]
        refused = self.refused(cancel_invoice, invoice, "mistake", order=order, now=self.tick())
        assert refused == (invoice.state is not InvoiceState.OPEN)
        if not refused:
            self.invoices[invoice.id], self.orders[order.id], _ = self.result

    @invariant()
    def quotes_never_change_once_they_leave_draft(self) -> None:
        for quote_id, (lines_then, total_then, currency_then) in self.frozen.items():
            quote = self.quotes[quote_id]
            assert quote.state is not QuoteState.DRAFT
            assert (quote.lines, quote.total, quote.currency) == (
                lines_then,
                total_then,
                currency_then,
            )

    @invariant()
    def totals_are_the_sums_of_the_lines(self) -> None:
        documents: list[Any] = [*self.quotes.values(), *self.orders.values()]
        documents += self.invoices.values()
        for document in documents:
            assert Fraction(document.total.amount) == expected_total(list(document.lines), "EUR")
        value = self.opportunity.estimated_value
        assert value is not None
        assert Fraction(value.amount) == expected_total(list(self.opportunity.lines), "EUR")

    @invariant()
    def revisions_count_up_and_one_per_number_is_open(self) -> None:
        by_number: dict[str, list[Quote]] = {}
        for quote in self.quotes.values():
            by_number.setdefault(quote.number, []).append(quote)
        for revisions in by_number.values():
            assert sorted(q.revision for q in revisions) == list(range(1, len(revisions) + 1))
            still_open = [q for q in revisions if q.state in (QuoteState.DRAFT, QuoteState.ACTIVE)]
            assert len(still_open) <= 1

    @invariant()
    def one_won_quote_and_then_nothing_open(self) -> None:
        won = [q for q in self.quotes.values() if q.state is QuoteState.WON]
        assert len(won) <= 1
        assert len(self.orders) == len(won)
        if won:
            winner = won[0]
            order = self.orders[winner.order_id or ""]
            assert (order.lines, order.total) == (winner.lines, winner.total)
            for invoice in self.invoices.values():
                assert (invoice.lines, invoice.total) == (order.lines, order.total)
            open_invoices = [
                i for i in self.invoices.values() if i.state is not InvoiceState.CANCELED
            ]
            assert len(open_invoices) <= 1
            if order.state is OrderState.INVOICED:
                assert order.invoice_id in self.invoices


QuoteToCash.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_quote_to_cash = QuoteToCash.TestCase


def test_an_active_quote_refuses_every_change() -> None:
    # the control for the machine: the commands it expects to be refused are refused
    opp = Opportunity(id="opp-1", name="deal", created_at=T0, modified_at=T0)
    line = OpportunityLine(product_id="a", quantity=1)
    opp, _ = set_lines(opp, [line], price_list=price_list("EUR"), now=T0)
    quote = new_quote(quote_id="q-1", opportunity=opp, price_list=price_list("EUR"), now=T0).quote
    quote, _ = activate_quote(quote, now=T0)
    for command in (
        lambda: set_quote_lines(quote, [], opportunity=opp, price_list=price_list("EUR"), now=T0),
        lambda: edit_quote(quote, {"name": "x"}, now=T0),
        lambda: activate_quote(quote, now=T0),
    ):
        with pytest.raises(InvalidTransition, match="Quote 'q-1'"):
            command()
