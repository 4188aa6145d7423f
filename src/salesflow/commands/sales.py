"""Opportunity-to-cash commands of `Salesflow`: products and price lists, an
opportunity's lines, and quotes → orders → invoices (the pure rules are in
`salesflow.pricing`, `salesflow.quotes` and `salesflow.orders`).

Products, price lists, quotes, orders and invoices are stored as state documents
(kind ``"sales"``, key ``<type>:<id>``), each checked against the version it was read
at; a second document per opportunity (kind ``"sales_index"``) lists its quotes,
orders and invoices, so "the opportunity's quotes" is one lookup. Paying an invoice
fires the ``payment_received`` trigger of the deal's pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, TypeVar

from salesflow.commands.pipelines import PipelineCommands
from salesflow.commands.work import Work
from salesflow.errors import NotFound, ValidationError
from salesflow.opportunity import Opportunity, set_lines
from salesflow.orders import (
    Invoice,
    Order,
    cancel_invoice,
    cancel_order,
    fulfill_order,
    invoice_order,
    pay_invoice,
)
from salesflow.pipelines import TriggerEvent
from salesflow.pricing import OpportunityLine, PriceList, Product
from salesflow.quotes import (
    Quote,
    activate_quote,
    close_quote,
    edit_quote,
    new_quote,
    revise_quote,
    set_quote_lines,
    win_quote,
)
from salesflow.stores.codec import SALES_TYPES, decode_sales_as, encode_sales
from salesflow.values import RecordKind

__all__ = ["SalesCommands"]

SALES = "sales"
"""The state kind the sales documents are stored under."""
SALES_INDEX = "sales_index"
"""The state kind of each opportunity's list of quotes, orders and invoices."""

S = TypeVar("S", Product, PriceList, Quote, Order, Invoice)
_TYPE_NAMES = {cls: name for name, cls in SALES_TYPES.items()}


class SalesCommands(PipelineCommands):
    """Products, price lists, opportunity lines, quotes, orders and invoices."""

    # --- storage --------------------------------------------------------------------

    def _load(self, work: Work, cls: type[S], doc_id: str) -> S:
        if not isinstance(doc_id, str) or not doc_id:
            raise ValidationError(
                f"{cls.__name__} id {doc_id!r} must be a non-empty string",
                field="id",
                value=doc_id,
            )
        stored = work.uow.get_state(SALES, f"{_TYPE_NAMES[cls]}:{doc_id}")
        if stored is None:
            raise NotFound(cls.__name__, doc_id)
        return decode_sales_as(cls, stored.document)

    def _store(self, work: Work, value: Product | PriceList | Quote | Order | Invoice) -> None:
        key = f"{_TYPE_NAMES[type(value)]}:{value.id}"
        current = work.uow.get_state(SALES, key)
        work.uow.put_state(
            SALES,
            key,
            encode_sales(value),
            expected_version=None if current is None else current.version,
            now=work.now,
        )

    def _index(self, work: Work, opportunity_id: str) -> dict[str, list[str]]:
        stored = work.uow.get_state(SALES_INDEX, f"opportunity:{opportunity_id}")
        if stored is None:
            return {"quotes": [], "orders": [], "invoices": []}
        return {k: list(v) for k, v in stored.document.items() if k != "schema"}

    def _add_to_index(self, work: Work, opportunity_id: str, what: str, doc_id: str) -> None:
        key = f"opportunity:{opportunity_id}"
        stored = work.uow.get_state(SALES_INDEX, key)
        index = self._index(work, opportunity_id)
        index[what].append(doc_id)
        work.uow.put_state(
            SALES_INDEX,
            key,
            {"schema": 1, **index},
            expected_version=None if stored is None else stored.version,
            now=work.now,
        )

    def _put_opportunity(self, work: Work, opportunity: Opportunity) -> None:
        work.update(opportunity)

    def _sales_id(self, prefix: str) -> str:
        """A new id for a quote, order or invoice from the engine's id factory (which
        makes record ids): ``opportunity-7`` becomes ``quote-7``."""
        raw = self._ids(RecordKind.OPPORTUNITY)
        head = f"{RecordKind.OPPORTUNITY.value}-"
        return f"{prefix}-{raw[len(head) :] if raw.startswith(head) else raw}"

    def _day(self, work: Work) -> date:
        """Today in the organization's time zone (price lists are valid by day)."""
        return work.now.astimezone(self.calendar.timezone).date()

    # --- catalogue ------------------------------------------------------------------

    def save_product(self, product: Product) -> Product:
        """Store ``product`` (new, or replacing the stored one with the same id)."""
        return self._save_catalogue(product, Product)

    def save_price_list(self, price_list: PriceList) -> PriceList:
        """Store ``price_list`` (new, or replacing the stored one with the same id)."""
        return self._save_catalogue(price_list, PriceList)

    def _save_catalogue(self, value: S, cls: type[S]) -> S:
        if not isinstance(value, cls):
            name = _TYPE_NAMES[cls]
            raise ValidationError(
                f"save_{name}() takes a {cls.__name__}, not {type(value).__name__}",
                field=name,
                value=value,
            )
        with self._command() as work:
            self._store(work, value)
        return value

    def _catalogue(self, work: Work, lines: Iterable[OpportunityLine]) -> dict[str, Product]:
        products: dict[str, Product] = {}
        for line in lines:
            product_id = getattr(line, "product_id", None)
            if product_id and product_id not in products:
                stored = work.uow.get_state(SALES, f"product:{product_id}")
                if stored is not None:
                    products[product_id] = decode_sales_as(Product, stored.document)
        return products

    def _price_list_of(self, work: Work, opportunity: Opportunity) -> PriceList:
        if opportunity.price_list_id is None:
            raise ValidationError(
                f"{opportunity.ref} has no price list; give it lines with "
                "set_opportunity_lines(opportunity_id, lines, price_list_id=...) first",
                field="price_list_id",
            )
        return self._load(work, PriceList, opportunity.price_list_id)

    # --- opportunity lines ----------------------------------------------------------

    def set_opportunity_lines(
        self,
        opportunity_id: str,
        lines: Iterable[OpportunityLine],
        *,
        price_list_id: str | None = None,
    ) -> Opportunity:
        """Replace an open opportunity's lines, priced from its price list (or
        ``price_list_id``, which becomes its price list); ``estimated_value`` becomes
        the sum of the lines.

        Raises:
            NotFound: no such opportunity or price list.
            InvalidTransition: the opportunity is won or lost.
            ValidationError: a line cannot be priced (unknown or inactive product,
                another currency, …), or there is no price list.
        """
        chosen = _lines(lines)
        with self._command() as work:
            opportunity = work.get(Opportunity, opportunity_id)
            price_list = (
                self._load(work, PriceList, price_list_id)
                if price_list_id is not None
                else self._price_list_of(work, opportunity)
            )
            updated, event = set_lines(
                opportunity,
                chosen,
                price_list=price_list,
                now=work.now,
                on=self._day(work),
                products=self._catalogue(work, chosen),
            )
            self._put_opportunity(work, updated)
            work.events.append(event)
        return updated

    # --- quotes ---------------------------------------------------------------------

    def create_quote(
        self,
        opportunity_id: str,
        *,
        lines: Iterable[OpportunityLine] | None = None,
        name: str | None = None,
        valid_until: date | None = None,
    ) -> Quote:
        """A new draft quote of an open opportunity: its lines (the opportunity's by
        default) priced from the opportunity's price list.

        Raises:
            NotFound: no such opportunity or price list.
            InvalidTransition: the opportunity is won or lost.
            ValidationError: the opportunity has no price list, or a line cannot be
                priced.
        """
        chosen = None if lines is None else _lines(lines)
        with self._command() as work:
            opportunity = work.get(Opportunity, opportunity_id)
            price_list = self._price_list_of(work, opportunity)
            change = new_quote(
                quote_id=self._sales_id("quote"),
                opportunity=opportunity,
                price_list=price_list,
                now=work.now,
                lines=chosen,
                name=name,
                valid_until=valid_until,
                on=self._day(work),
                products=self._catalogue(work, chosen or opportunity.lines),
            )
            self._store(work, change.quote)
            self._add_to_index(work, opportunity.id, "quotes", change.quote.id)
            if change.opportunity != opportunity:
                self._put_opportunity(work, change.opportunity)
            work.events.extend(change.events)
        return change.quote

    def set_quote_lines(self, quote_id: str, lines: Iterable[OpportunityLine]) -> Quote:
        """Replace a draft quote's lines; the opportunity's forecast follows them.

        Raises:
            InvalidTransition: the quote is not a draft (revise an active one).
        """
        chosen = _lines(lines)
        with self._command() as work:
            quote = self._load(work, Quote, quote_id)
            opportunity = work.get(Opportunity, quote.opportunity_id)
            price_list = self._price_list_of(work, opportunity)
            change = set_quote_lines(
                quote,
                chosen,
                opportunity=opportunity,
                price_list=price_list,
                now=work.now,
                on=self._day(work),
                products=self._catalogue(work, chosen),
            )
            self._store(work, change.quote)
            if change.opportunity != opportunity:
                self._put_opportunity(work, change.opportunity)
            work.events.extend(change.events)
        return change.quote

    def update_quote(
        self, quote_id: str, *, name: str | None = None, valid_until: date | None = None
    ) -> Quote:
        """Change a draft quote's ``name`` or ``valid_until`` (the arguments given;
        lines change through `set_quote_lines`).

        Raises:
            InvalidTransition: the quote is not a draft (revise an active one).
            ValidationError: a value is malformed, or no change is given.
        """
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if valid_until is not None:
            changes["valid_until"] = valid_until
        if not changes:
            raise ValidationError(
                "update_quote() needs name= or valid_until= (lines change through set_quote_lines)",
                field="changes",
                value=None,
            )
        with self._command() as work:
            quote, events = edit_quote(self._load(work, Quote, quote_id), changes, now=work.now)
            self._store(work, quote)
            work.events.extend(events)
        return quote

    def activate_quote(self, quote_id: str) -> Quote:
        """Send a draft quote: it becomes active and read-only.

        Raises:
            InvalidTransition: the quote is not a draft, or has no lines.
        """
        with self._command() as work:
            quote, events = activate_quote(self._load(work, Quote, quote_id), now=work.now)
            self._store(work, quote)
            work.events.extend(events)
        return quote

    def revise_quote(self, quote_id: str) -> Quote:
        """Close an active quote as revised and return its new draft revision.

        Raises:
            InvalidTransition: the quote is not active.
        """
        with self._command() as work:
            quote = self._load(work, Quote, quote_id)
            revision = revise_quote(
                quote,
                new_quote_id=self._sales_id("quote"),
                now=work.now,
            )
            self._store(work, revision.revised)
            self._store(work, revision.draft)
            self._add_to_index(work, quote.opportunity_id, "quotes", revision.draft.id)
            work.events.extend(revision.events)
        return revision.draft

    def close_quote(self, quote_id: str, reason: str) -> Quote:
        """Close a draft or active quote (lost, canceled, …) with ``reason``."""
        with self._command() as work:
            quote, events = close_quote(self._load(work, Quote, quote_id), reason, now=work.now)
            self._store(work, quote)
            work.events.extend(events)
        return quote

    def win_quote(self, quote_id: str, *, win_opportunity: bool = True) -> Order:
        """The customer accepted an active quote: it becomes an open order, the
        opportunity's other open quotes close, its forecast becomes the quote's total,
        and (unless ``win_opportunity`` is False) the opportunity is won, in one unit
        of work.

        Raises:
            InvalidTransition: the quote is not active, or another quote of the
                opportunity was won already.
        """
        with self._command() as work:
            quote = self._load(work, Quote, quote_id)
            opportunity = work.get(Opportunity, quote.opportunity_id)
            others = [
                self._load(work, Quote, other)
                for other in self._index(work, opportunity.id)["quotes"]
                if other != quote.id
            ]
            won = win_quote(
                quote,
                order_id=self._sales_id("order"),
                opportunity=opportunity,
                other_quotes=others,
                now=work.now,
            )
            self._store(work, won.quote)
            for closed in won.closed:
                self._store(work, closed)
            self._store(work, won.order)
            self._add_to_index(work, opportunity.id, "orders", won.order.id)
            if won.opportunity != opportunity:
                self._put_opportunity(work, won.opportunity)
            work.events.extend(won.events)
            if win_opportunity:
                self._close_opportunity_in(work, opportunity.id, "win", f"quote {quote.id} won")
        return won.order

    # --- orders and invoices --------------------------------------------------------

    def fulfill_order(self, order_id: str) -> Order:
        """Mark an open order fulfilled (delivered)."""
        with self._command() as work:
            order, events = fulfill_order(self._load(work, Order, order_id), now=work.now)
            self._store(work, order)
            work.events.extend(events)
        return order

    def cancel_order(self, order_id: str, reason: str) -> Order:
        """Cancel an open or fulfilled order with ``reason``."""
        with self._command() as work:
            order, events = cancel_order(self._load(work, Order, order_id), reason, now=work.now)
            self._store(work, order)
            work.events.extend(events)
        return order

    def invoice_order(self, order_id: str, *, due_date: date | None = None) -> Invoice:
        """Issue the invoice of a fulfilled order.

        Raises:
            InvalidTransition: the order is not fulfilled, or is invoiced already.
        """
        with self._command() as work:
            order = self._load(work, Order, order_id)
            invoiced, invoice, events = invoice_order(
                order,
                invoice_id=self._sales_id("invoice"),
                now=work.now,
                due_date=due_date,
            )
            self._store(work, invoiced)
            self._store(work, invoice)
            self._add_to_index(work, order.opportunity_id, "invoices", invoice.id)
            work.events.extend(events)
        return invoice

    def pay_invoice(self, invoice_id: str) -> Invoice:
        """Record an open invoice as paid; the deal's pipeline gets a
        ``payment_received`` trigger."""
        with self._command() as work:
            invoice, events = pay_invoice(self._load(work, Invoice, invoice_id), now=work.now)
            self._store(work, invoice)
            work.events.extend(events)
            ref = work.get(Opportunity, invoice.opportunity_id).ref
            self._trigger(work, ref, TriggerEvent.PAYMENT_RECEIVED, None)
        return invoice

    def cancel_invoice(self, invoice_id: str, reason: str) -> Invoice:
        """Cancel an open invoice; its order is fulfilled again, to be re-invoiced."""
        with self._command() as work:
            invoice = self._load(work, Invoice, invoice_id)
            order = self._load(work, Order, invoice.order_id)
            canceled, reopened, events = cancel_invoice(invoice, reason, order=order, now=work.now)
            self._store(work, canceled)
            self._store(work, reopened)
            work.events.extend(events)
        return canceled

    # --- reads ----------------------------------------------------------------------

    def sales_document(self, cls: type[S], doc_id: str) -> S:
        """The stored product, price list, quote, order or invoice ``doc_id``.

        Raises:
            NotFound: there is none.
        """
        with self._pipeline_read() as work:
            return self._load(work, cls, doc_id)

    def quotes(self, opportunity_id: str) -> list[Quote]:
        """The opportunity's quotes, oldest first (every revision)."""
        return self._listed(opportunity_id, "quotes", Quote)

    def orders(self, opportunity_id: str) -> list[Order]:
        """The opportunity's orders, oldest first."""
        return self._listed(opportunity_id, "orders", Order)

    def invoices(self, opportunity_id: str) -> list[Invoice]:
        """The opportunity's invoices, oldest first."""
        return self._listed(opportunity_id, "invoices", Invoice)

    def _listed(self, opportunity_id: str, what: str, cls: type[S]) -> list[S]:
        with self._pipeline_read() as work:
            return [self._load(work, cls, i) for i in self._index(work, opportunity_id)[what]]


def _lines(value: object) -> tuple[OpportunityLine, ...]:
    """The lines a command was given, as a tuple (each is checked when priced).

    Raises:
        ValidationError: ``value`` is not a list of lines.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError(
            f"lines={value!r:.80} must be a list of OpportunityLine values",
            field="lines",
            value=value,
        )
    return tuple(value)
