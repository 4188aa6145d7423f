"""Orders and invoices: what a won quote becomes, and the pure commands that move them.

An order is the accepted quote's lines (`Order`, open → fulfilled → invoiced, or
canceled before it is invoiced); a fulfilled order is invoiced (`Invoice`, open →
paid | canceled; canceling an invoice lets the order be invoiced again). Quotes,
orders and invoices share `SalesDocument`: lines priced in one currency whose totals
are always the sums of the lines (`salesflow.pricing`).

Every function takes the documents and ``now`` and returns new documents and the
events that happened; none changes its arguments or touches a store.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import attrs
from statemachine import State, StateMachine

from salesflow import events as ev
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.lifecycle import fire
from salesflow.pricing import OpportunityLine, Totals, totals
from salesflow.values import (
    Money,
    aware,
    count,
    identifier,
    optional_aware,
    optional_date,
    optional_identifier,
    optional_text,
    text,
    to_enum,
    utc,
)

__all__ = [
    "Invoice",
    "InvoiceCanceled",
    "InvoiceCreated",
    "InvoiceLifecycle",
    "InvoicePaid",
    "InvoiceState",
    "Order",
    "OrderCanceled",
    "OrderCreated",
    "OrderFulfilled",
    "OrderInvoiced",
    "OrderLifecycle",
    "OrderState",
    "SalesDocument",
    "cancel_invoice",
    "cancel_order",
    "fulfill_order",
    "invoice_order",
    "pay_invoice",
    "reason_text",
]


def _lines(value: object) -> tuple[OpportunityLine, ...]:
    items = tuple(value) if isinstance(value, list | tuple) else value
    if not isinstance(items, tuple) or not all(isinstance(i, OpportunityLine) for i in items):
        raise ValidationError(
            f"lines={value!r} must be a list of OpportunityLine values",
            field="lines",
            value=value,
        )
    return items


def _currency(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # Money validates currency codes; building one reuses that check and its message.
    Money(amount=0, currency=value)  # type: ignore[arg-type]


@attrs.define(kw_only=True)
class SalesDocument:
    """What quotes, orders and invoices share: identity, the opportunity, priced lines.

    Every line is priced in ``currency``; `totals` are computed from the lines, never
    stored, so they cannot disagree with them.
    """

    id: str = attrs.field(validator=identifier)
    version: int = attrs.field(default=1, validator=count(2**62))
    created_at: datetime = attrs.field(converter=utc, validator=aware)
    modified_at: datetime = attrs.field(converter=utc, validator=aware)
    opportunity_id: str = attrs.field(validator=identifier)
    currency: str = attrs.field(validator=_currency)
    price_list_id: str | None = attrs.field(default=None, validator=optional_identifier)
    lines: tuple[OpportunityLine, ...] = attrs.field(default=(), converter=_lines)

    def __attrs_post_init__(self) -> None:
        for position, line in enumerate(self.lines, start=1):
            if not line.is_priced or line.currency != self.currency:
                priced = f"priced in {line.currency}" if line.is_priced else "not priced"
                raise ValidationError(
                    f"{self.describe()}: line {position} ({line.label}) is {priced}; every "
                    f"line must be priced in {self.currency}",
                    field=f"{type(self).__name__}.lines",
                    value=line,
                )

    def describe(self) -> str:
        """How errors name the document: ``Quote 'q-1'``."""
        return f"{type(self).__name__} {self.id!r}"

    @property
    def totals(self) -> Totals:
        """The sums of the lines' amounts, discounts and totals."""
        return totals(self.lines, self.currency)

    @property
    def total(self) -> Money:
        """The sum of the line totals."""
        return self.totals.total


def move(
    machine: type[StateMachine],
    document: SalesDocument,
    state: str,
    event: str,
    hint: str | None = None,
    **context: Any,
) -> str:
    """Fire ``event`` on ``machine`` at ``state`` for ``document``; return the new state.

    Raises:
        InvalidTransition: naming the document, its state and (``hint``) what to do.
    """
    try:
        return fire(machine, state, event, what=document.describe(), **context)
    except InvalidTransition as refused:
        if hint is None:
            raise
        raise InvalidTransition(
            f"{document.describe()} cannot {event.replace('_', ' ')} while {state}: {hint}",
            state=state,
            event=event,
        ) from refused


# --- orders ---------------------------------------------------------------------------


class OrderState(StrEnum):
    """Where an order is between acceptance and invoicing."""

    OPEN = "open"
    FULFILLED = "fulfilled"
    INVOICED = "invoiced"
    CANCELED = "canceled"


class OrderLifecycle(StateMachine):
    """Open → Fulfilled → Invoiced; canceled before it is invoiced.

    Canceling the order's invoice returns it to Fulfilled, to be invoiced again.
    """

    open = State("Open", initial=True, value="open")
    fulfilled = State("Fulfilled", value="fulfilled")
    invoiced = State("Invoiced", value="invoiced")
    canceled = State("Canceled", final=True, value="canceled")

    fulfill = open.to(fulfilled)
    invoice = fulfilled.to(invoiced)
    invoice_canceled = invoiced.to(fulfilled)
    cancel = open.to(canceled) | fulfilled.to(canceled)


def _order_state(value: object) -> OrderState:
    result: OrderState = to_enum(OrderState, value, "Order.state", optional=False)
    return result


@attrs.define(kw_only=True)
class Order(SalesDocument):
    """An accepted quote: the customer buys its lines. Its lines never change."""

    quote_id: str | None = attrs.field(default=None, validator=optional_identifier)
    name: str | None = attrs.field(default=None, converter=text, validator=optional_text(300))
    state: OrderState = attrs.field(default=OrderState.OPEN, converter=_order_state)
    invoice_id: str | None = attrs.field(default=None, validator=optional_identifier)
    fulfilled_at: datetime | None = attrs.field(
        default=None, converter=utc, validator=optional_aware
    )
    canceled_at: datetime | None = attrs.field(
        default=None, converter=utc, validator=optional_aware
    )
    cancel_reason: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(200)
    )


@attrs.frozen(kw_only=True)
class OrderCreated(ev.Event):
    """A won quote became an order."""

    order_id: str
    quote_id: str | None
    opportunity_id: str
    total: Money


@attrs.frozen(kw_only=True)
class OrderFulfilled(ev.Event):
    """The goods of an order were shipped or its services delivered."""

    order_id: str


@attrs.frozen(kw_only=True)
class OrderInvoiced(ev.Event):
    """A fulfilled order got an invoice."""

    order_id: str
    invoice_id: str


@attrs.frozen(kw_only=True)
class OrderCanceled(ev.Event):
    """An order was canceled before it was invoiced."""

    order_id: str
    reason: str


def fulfill_order(order: Order, *, now: datetime) -> tuple[Order, list[ev.Event]]:
    """Mark an open order fulfilled (shipped or delivered).

    Raises:
        InvalidTransition: the order is not open.
    """
    state = move(OrderLifecycle, order, order.state.value, "fulfill")
    updated = attrs.evolve(order, state=state, fulfilled_at=now, modified_at=now)
    return updated, [OrderFulfilled(occurred_at=now, order_id=order.id)]


def reason_text(reason: str, where: str) -> str:
    """Converter body: a close or cancel reason, trimmed (non-empty, at most 200 characters)."""
    cleaned = text(reason)
    if not isinstance(cleaned, str) or len(cleaned) > 200:
        raise ValidationError(
            f"{where}={reason!r} must be non-empty text of at most 200 characters",
            field=where,
            value=reason,
        )
    return cleaned


def cancel_order(order: Order, reason: str, *, now: datetime) -> tuple[Order, list[ev.Event]]:
    """Cancel an open or fulfilled order with ``reason``.

    Raises:
        ValidationError: ``reason`` is empty.
        InvalidTransition: the order is invoiced (cancel its invoice first) or canceled.
    """
    why = reason_text(reason, "Order.cancel_reason")
    state = move(
        OrderLifecycle,
        order,
        order.state.value,
        "cancel",
        hint="cancel its invoice first"
        if order.state is OrderState.INVOICED
        else "it is already canceled",
    )
    updated = attrs.evolve(order, state=state, canceled_at=now, cancel_reason=why, modified_at=now)
    return updated, [OrderCanceled(occurred_at=now, order_id=order.id, reason=why)]


# --- invoices -------------------------------------------------------------------------


class InvoiceState(StrEnum):
    """Whether an invoice is awaiting payment, paid or canceled."""

    OPEN = "open"
    PAID = "paid"
    CANCELED = "canceled"


class InvoiceLifecycle(StateMachine):
    """Open → Paid | Canceled."""

    open = State("Open", initial=True, value="open")
    paid = State("Paid", final=True, value="paid")
    canceled = State("Canceled", final=True, value="canceled")

    pay = open.to(paid)
    cancel = open.to(canceled)


def _invoice_state(value: object) -> InvoiceState:
    result: InvoiceState = to_enum(InvoiceState, value, "Invoice.state", optional=False)
    return result


@attrs.define(kw_only=True)
class Invoice(SalesDocument):
    """The bill for a fulfilled order: the order's lines, due on ``due_date``."""

    order_id: str = attrs.field(validator=identifier)
    name: str | None = attrs.field(default=None, converter=text, validator=optional_text(300))
    due_date: date | None = attrs.field(default=None, validator=optional_date)
    state: InvoiceState = attrs.field(default=InvoiceState.OPEN, converter=_invoice_state)
    paid_at: datetime | None = attrs.field(default=None, converter=utc, validator=optional_aware)
    canceled_at: datetime | None = attrs.field(
        default=None, converter=utc, validator=optional_aware
    )
    cancel_reason: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(200)
    )


@attrs.frozen(kw_only=True)
class InvoiceCreated(ev.Event):
    """An invoice was issued for an order."""

    invoice_id: str
    order_id: str
    total: Money


@attrs.frozen(kw_only=True)
class InvoicePaid(ev.Event):
    """An invoice was paid."""

    invoice_id: str
    order_id: str


@attrs.frozen(kw_only=True)
class InvoiceCanceled(ev.Event):
    """An open invoice was canceled; its order can be invoiced again."""

    invoice_id: str
    order_id: str
    reason: str


def invoice_order(
    order: Order,
    *,
    invoice_id: str,
    now: datetime,
    due_date: date | None = None,
) -> tuple[Order, Invoice, list[ev.Event]]:
    """Issue an invoice with the lines of a fulfilled order.

    Returns:
        The invoiced order, the new open invoice, and the events.

    Raises:
        InvalidTransition: the order is not fulfilled (fulfill it first) or is
            already invoiced (cancel that invoice first).
    """
    hint = {
        OrderState.OPEN: "fulfill it first",
        OrderState.INVOICED: f"it has invoice {order.invoice_id!r}; cancel that invoice first",
        OrderState.CANCELED: "a canceled order is not invoiced",
    }.get(order.state)
    state = move(OrderLifecycle, order, order.state.value, "invoice", hint=hint)
    invoice = Invoice(
        id=invoice_id,
        created_at=now,
        modified_at=now,
        opportunity_id=order.opportunity_id,
        currency=order.currency,
        price_list_id=order.price_list_id,
        lines=order.lines,
        order_id=order.id,
        name=order.name,
        due_date=due_date,
    )
    updated = attrs.evolve(order, state=state, invoice_id=invoice.id, modified_at=now)
    return (
        updated,
        invoice,
        [
            InvoiceCreated(
                occurred_at=now, invoice_id=invoice.id, order_id=order.id, total=invoice.total
            ),
            OrderInvoiced(occurred_at=now, order_id=order.id, invoice_id=invoice.id),
        ],
    )


def pay_invoice(invoice: Invoice, *, now: datetime) -> tuple[Invoice, list[ev.Event]]:
    """Record that an open invoice was paid.

    Raises:
        InvalidTransition: the invoice is paid or canceled.
    """
    state = move(InvoiceLifecycle, invoice, invoice.state.value, "pay")
    updated = attrs.evolve(invoice, state=state, paid_at=now, modified_at=now)
    return updated, [InvoicePaid(occurred_at=now, invoice_id=invoice.id, order_id=invoice.order_id)]


def cancel_invoice(
    invoice: Invoice, reason: str, *, order: Order, now: datetime
) -> tuple[Invoice, Order, list[ev.Event]]:
    """Cancel an open invoice; its order returns to fulfilled, to be invoiced again.

    Raises:
        ValidationError: ``reason`` is empty, or ``order`` is not the invoice's order.
        InvalidTransition: the invoice is paid or canceled.
    """
    why = reason_text(reason, "Invoice.cancel_reason")
    if order.id != invoice.order_id or order.invoice_id != invoice.id:
        raise ValidationError(
            f"{invoice.describe()} belongs to order {invoice.order_id!r}, whose current "
            f"invoice it must be; pass that order (got {order.id!r} with invoice "
            f"{order.invoice_id!r})",
            field="order",
            value=order.id,
        )
    state = move(InvoiceLifecycle, invoice, invoice.state.value, "cancel")
    order_state = move(OrderLifecycle, order, order.state.value, "invoice_canceled")
    canceled = attrs.evolve(
        invoice, state=state, canceled_at=now, cancel_reason=why, modified_at=now
    )
    reopened = attrs.evolve(order, state=order_state, invoice_id=None, modified_at=now)
    return (
        canceled,
        reopened,
        [InvoiceCanceled(occurred_at=now, invoice_id=invoice.id, order_id=order.id, reason=why)],
    )
