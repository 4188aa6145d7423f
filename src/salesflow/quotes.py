"""Quotes: formal offers of an opportunity's lines, their lifecycle and revisions.

A quote starts as a **draft**, which can be edited; **activating** it (it goes to the
customer) makes it read-only; an active quote is **won** (it becomes an `Order`),
**closed** (lost or canceled, with a reason), or **revised**: it is closed as revised
and a new draft with the same number, ``revision + 1`` and the same lines takes its
place. Winning a quote closes the opportunity's other open quotes.

The opportunity's forecast follows its quotes: changing a draft's lines (products,
quantities, prices, discounts) and winning a quote copy the quote's lines to the
opportunity, whose ``estimated_value`` is recomputed from them (seed 002: "changes of
products or discounts are reflected in the sales forecast").

Every function takes the documents and ``now`` and returns new documents and the
events that happened; a refused command raises and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import attrs
from statemachine import State, StateMachine

from salesflow import events as ev
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.opportunity import Opportunity, follow_lines, require_open
from salesflow.orders import Order, OrderCreated, SalesDocument, move, reason_text
from salesflow.pricing import OpportunityLine, PriceList, Product, price_lines
from salesflow.values import (
    Money,
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
    "EDITABLE_FIELDS",
    "Quote",
    "QuoteActivated",
    "QuoteChange",
    "QuoteCloseReason",
    "QuoteClosed",
    "QuoteCreated",
    "QuoteLifecycle",
    "QuoteRevised",
    "QuoteState",
    "QuoteUpdated",
    "QuoteWon",
    "Revision",
    "Win",
    "activate_quote",
    "close_quote",
    "edit_quote",
    "new_quote",
    "revise_quote",
    "set_quote_lines",
    "win_quote",
]


class QuoteState(StrEnum):
    """Where a quote is: editable draft, read-only active, or closed as won or not."""

    DRAFT = "draft"
    ACTIVE = "active"
    WON = "won"
    CLOSED = "closed"


class QuoteCloseReason(StrEnum):
    """Why a quote was closed; hosts may give their own reasons to `close_quote`."""

    REVISED = "revised"
    LOST = "lost"
    CANCELED = "canceled"
    ANOTHER_QUOTE_WON = "another_quote_won"


class QuoteLifecycle(StateMachine):
    """Draft → Active → Won | Closed; a draft can be closed unsent.

    ``edit`` is allowed only in Draft; ``revise`` closes an active quote (and a new
    draft revision replaces it); ``activate`` needs at least one line.
    """

    draft = State("Draft", initial=True, value="draft")
    active = State("Active", value="active")
    won = State("Won", final=True, value="won")
    closed = State("Closed", final=True, value="closed")

    edit = draft.to(draft, internal=True)
    activate = draft.to(active, cond="has_lines")
    win = active.to(won)
    revise = active.to(closed)
    close = active.to(closed) | draft.to(closed)

    def has_lines(self, has_lines: bool = True) -> bool:
        """Guard: the quote has at least one line."""
        return has_lines


def _quote_state(value: object) -> QuoteState:
    result: QuoteState = to_enum(QuoteState, value, "Quote.state", optional=False)
    return result


def _first_number(quote: Quote) -> str:
    return quote.id


@attrs.define(kw_only=True)
class Quote(SalesDocument):
    """A formal offer of lines to the customer of an opportunity.

    Revisions of one offer share ``number``; ``revision`` counts from 1.
    ``revised_from_id``/``revised_to_id`` link a revision to its neighbours;
    ``order_id`` is the order a won quote became.
    """

    number: str = attrs.field(
        default=attrs.Factory(_first_number, takes_self=True), validator=identifier
    )
    revision: int = attrs.field(default=1, validator=count(2**31))
    name: str | None = attrs.field(default=None, converter=text, validator=optional_text(300))
    valid_until: date | None = attrs.field(default=None, validator=optional_date)
    state: QuoteState = attrs.field(default=QuoteState.DRAFT, converter=_quote_state)
    close_reason: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(200)
    )
    revised_from_id: str | None = attrs.field(default=None, validator=optional_identifier)
    revised_to_id: str | None = attrs.field(default=None, validator=optional_identifier)
    order_id: str | None = attrs.field(default=None, validator=optional_identifier)
    activated_at: datetime | None = attrs.field(
        default=None, converter=utc, validator=optional_aware
    )
    closed_at: datetime | None = attrs.field(default=None, converter=utc, validator=optional_aware)

    def describe(self) -> str:
        """How errors name a quote: ``Quote 'q-2' (Q-1 revision 2)``."""
        return f"Quote {self.id!r} ({self.number} revision {self.revision})"

    @property
    def is_editable(self) -> bool:
        """True while the quote is a draft."""
        return self.state is QuoteState.DRAFT


EDITABLE_FIELDS: frozenset[str] = frozenset({"name", "valid_until"})
"""Quote fields `edit_quote` changes (lines change through `set_quote_lines`)."""


# --- events ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class QuoteCreated(ev.Event):
    """A draft quote was created (``revision`` > 1 for a revision)."""

    quote_id: str
    opportunity_id: str
    number: str
    revision: int


@attrs.frozen(kw_only=True)
class QuoteUpdated(ev.Event):
    """Fields of a draft quote changed (``fields`` names them)."""

    quote_id: str
    fields: tuple[str, ...]


@attrs.frozen(kw_only=True)
class QuoteActivated(ev.Event):
    """A draft quote became active (sent to the customer, read-only)."""

    quote_id: str
    total: Money


@attrs.frozen(kw_only=True)
class QuoteRevised(ev.Event):
    """An active quote was closed as revised; ``new_quote_id`` is its new draft."""

    quote_id: str
    new_quote_id: str
    revision: int


@attrs.frozen(kw_only=True)
class QuoteClosed(ev.Event):
    """A quote was closed without being won."""

    quote_id: str
    reason: str


@attrs.frozen(kw_only=True)
class QuoteWon(ev.Event):
    """An active quote was accepted and became order ``order_id``."""

    quote_id: str
    order_id: str
    total: Money


# --- results --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class QuoteChange:
    """A changed quote, its opportunity (whose forecast follows it) and the events."""

    quote: Quote
    opportunity: Opportunity
    events: tuple[ev.Event, ...]


@attrs.frozen(kw_only=True)
class Revision:
    """The result of `revise_quote`: the closed quote, its new draft, the events."""

    revised: Quote
    draft: Quote
    events: tuple[ev.Event, ...]


@attrs.frozen(kw_only=True)
class Win:
    """The result of `win_quote`.

    Attributes:
        quote: The won quote.
        order: The new open order with the quote's lines.
        closed: The opportunity's other quotes that were open and are now closed.
        opportunity: The opportunity with the won quote's lines as its forecast (still
            open: closing it as won is the host's `win_opportunity`).
        events: What happened, in order.
    """

    quote: Quote
    order: Order
    closed: tuple[Quote, ...]
    opportunity: Opportunity
    events: tuple[ev.Event, ...]


# --- commands -------------------------------------------------------------------------


def _read_only_hint(quote: Quote) -> str:
    if quote.state is QuoteState.ACTIVE:
        return "an active quote is read-only; revise it (revise_quote) to get an editable draft"
    if quote.state is QuoteState.WON:
        return f"it was won and became order {quote.order_id!r}; it can no longer change"
    if quote.revised_to_id is not None:
        return f"it was revised; edit its newer revision {quote.revised_to_id!r}"
    return "a closed quote cannot change; create a new quote"


def require_draft(quote: Quote, doing: str) -> None:
    """Raise `InvalidTransition` unless ``quote`` is a draft (the only editable state).

    The check is the lifecycle's ``edit`` event, so the class stays the one source of
    truth for what may change when.
    """
    try:
        move(QuoteLifecycle, quote, quote.state.value, "edit")
    except InvalidTransition as refused:
        raise InvalidTransition(
            f"{quote.describe()} is {quote.state.value}, so {doing}: {_read_only_hint(quote)}",
            state=quote.state.value,
            event="edit",
        ) from refused


def _require_own(opportunity: Opportunity, quote: Quote) -> None:
    if opportunity.id != quote.opportunity_id:
        raise ValidationError(
            f"{quote.describe()} belongs to opportunity {quote.opportunity_id!r}, not "
            f"{opportunity.id!r}; pass the quote's own opportunity",
            field="opportunity",
            value=opportunity.id,
        )


def _forecast(
    opportunity: Opportunity, quote: Quote, now: datetime
) -> tuple[Opportunity, list[ev.Event]]:
    _require_own(opportunity, quote)
    return follow_lines(
        opportunity,
        quote.lines,
        price_list_id=quote.price_list_id,
        currency=quote.currency,
        now=now,
    )


def new_quote(
    *,
    quote_id: str,
    opportunity: Opportunity,
    price_list: PriceList,
    now: datetime,
    lines: Iterable[OpportunityLine] | None = None,
    number: str | None = None,
    name: str | None = None,
    valid_until: date | None = None,
    on: date | None = None,
    products: Mapping[str, Product] | None = None,
) -> QuoteChange:
    """Create a draft quote for an open opportunity.

    Args:
        quote_id: The new quote's id.
        opportunity: The open opportunity the quote offers.
        price_list: Prices of the product lines; its currency is the quote's.
        now: The time of creation.
        lines: The lines; by default the opportunity's lines are copied.
        number: The quote number revisions share (default: ``quote_id``).
        name: A title for the customer (default: the opportunity's name).
        valid_until: The last day the offer holds.
        on: The day prices apply (default ``now``'s date).
        products: The catalogue, to refuse unknown or inactive products.

    Returns:
        The draft, the opportunity (its forecast now follows the draft's lines), events.

    Raises:
        InvalidTransition: the opportunity is won or lost.
        ValidationError: a line cannot be priced, or a field is malformed.
    """
    require_open(opportunity, "no quote can be created for it")
    priced = price_lines(
        opportunity.lines if lines is None else tuple(lines),
        price_list,
        on=now.date() if on is None else on,
        products=products,
    )
    quote = Quote(
        id=quote_id,
        created_at=now,
        modified_at=now,
        opportunity_id=opportunity.id,
        currency=price_list.currency,
        price_list_id=price_list.id,
        lines=priced,
        number=quote_id if number is None else number,
        name=opportunity.name if name is None else name,
        valid_until=valid_until,
    )
    updated, followed = _forecast(opportunity, quote, now)
    created = QuoteCreated(
        occurred_at=now,
        quote_id=quote.id,
        opportunity_id=opportunity.id,
        number=quote.number,
        revision=quote.revision,
    )
    return QuoteChange(quote=quote, opportunity=updated, events=(created, *followed))


def set_quote_lines(
    quote: Quote,
    lines: Iterable[OpportunityLine],
    *,
    opportunity: Opportunity,
    price_list: PriceList,
    now: datetime,
    on: date | None = None,
    products: Mapping[str, Product] | None = None,
) -> QuoteChange:
    """Replace the lines of a draft quote; the opportunity's forecast follows them.

    The opportunity's lines become the quote's (when the opportunity is open), so its
    ``estimated_value`` is the new quote total.

    Raises:
        InvalidTransition: the quote is not a draft (the message says what to do).
        ValidationError: a line cannot be priced, the price list is in another
            currency, or ``opportunity`` is not the quote's.
    """
    require_draft(quote, "its lines cannot be changed")
    _require_own(opportunity, quote)
    if price_list.currency != quote.currency:
        raise ValidationError(
            f"{quote.describe()} is in {quote.currency} but price list {price_list.id!r} is "
            f"in {price_list.currency}; use a {quote.currency} price list or a new quote",
            field="Quote.price_list_id",
            value=price_list.id,
        )
    priced = price_lines(
        tuple(lines), price_list, on=now.date() if on is None else on, products=products
    )
    updated = attrs.evolve(quote, lines=priced, price_list_id=price_list.id, modified_at=now)
    changed = tuple(
        name
        for name in ("lines", "price_list_id")
        if getattr(quote, name) != getattr(updated, name)
    )
    followed_opportunity, followed = _forecast(opportunity, updated, now)
    events: list[ev.Event] = [QuoteUpdated(occurred_at=now, quote_id=quote.id, fields=changed)]
    return QuoteChange(quote=updated, opportunity=followed_opportunity, events=(*events, *followed))


def edit_quote(
    quote: Quote, changes: Mapping[str, Any], *, now: datetime
) -> tuple[Quote, list[ev.Event]]:
    """Change ``name`` or ``valid_until`` of a draft quote.

    Raises:
        InvalidTransition: the quote is not a draft.
        ValidationError: a field is not editable or a value malformed.
    """
    unknown = sorted(set(changes) - EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(
            f"Quote has no editable field {', '.join(repr(u) for u in unknown)}; editable "
            f"fields are {', '.join(sorted(EDITABLE_FIELDS))} (lines change through "
            f"set_quote_lines)",
            field=f"Quote.{unknown[0]}",
            value=unknown[0],
        )
    require_draft(quote, "it cannot be edited")
    updated = attrs.evolve(quote, modified_at=now, **changes)
    changed = tuple(sorted(k for k in changes if getattr(quote, k) != getattr(updated, k)))
    return updated, [QuoteUpdated(occurred_at=now, quote_id=quote.id, fields=changed)]


def activate_quote(quote: Quote, *, now: datetime) -> tuple[Quote, list[ev.Event]]:
    """Make a draft quote active: it goes to the customer and becomes read-only.

    Raises:
        InvalidTransition: the quote is not a draft, or has no lines (add some first).
    """
    hint = (
        "add at least one line first" if quote.state is QuoteState.DRAFT else _read_only_hint(quote)
    )
    state = move(
        QuoteLifecycle, quote, quote.state.value, "activate", hint, has_lines=bool(quote.lines)
    )
    updated = attrs.evolve(quote, state=state, activated_at=now, modified_at=now)
    return updated, [QuoteActivated(occurred_at=now, quote_id=quote.id, total=quote.total)]


def revise_quote(quote: Quote, *, new_quote_id: str, now: datetime) -> Revision:
    """Close an active quote as revised and open its next revision as a new draft.

    The draft keeps the number, the price list, the lines, the name and the validity,
    and has ``revision + 1``.

    Raises:
        InvalidTransition: the quote is not active (a draft is edited directly).
        ValidationError: ``new_quote_id`` is the quote's own id or malformed.
    """
    hint = (
        "a draft is edited directly; revise it once it is active"
        if quote.state is QuoteState.DRAFT
        else _read_only_hint(quote)
    )
    state = move(QuoteLifecycle, quote, quote.state.value, "revise", hint)
    if new_quote_id == quote.id:
        raise ValidationError(
            f"{quote.describe()}: the revision needs a new id, not {new_quote_id!r}",
            field="new_quote_id",
            value=new_quote_id,
        )
    draft = Quote(
        id=new_quote_id,
        created_at=now,
        modified_at=now,
        opportunity_id=quote.opportunity_id,
        currency=quote.currency,
        price_list_id=quote.price_list_id,
        lines=quote.lines,
        number=quote.number,
        revision=quote.revision + 1,
        name=quote.name,
        valid_until=quote.valid_until,
        revised_from_id=quote.id,
    )
    revised = attrs.evolve(
        quote,
        state=state,
        close_reason=QuoteCloseReason.REVISED.value,
        revised_to_id=draft.id,
        closed_at=now,
        modified_at=now,
    )
    events: tuple[ev.Event, ...] = (
        QuoteRevised(
            occurred_at=now, quote_id=quote.id, new_quote_id=draft.id, revision=draft.revision
        ),
        QuoteCreated(
            occurred_at=now,
            quote_id=draft.id,
            opportunity_id=draft.opportunity_id,
            number=draft.number,
            revision=draft.revision,
        ),
    )
    return Revision(revised=revised, draft=draft, events=events)


def close_quote(quote: Quote, reason: str, *, now: datetime) -> tuple[Quote, list[ev.Event]]:
    """Close a draft or active quote without winning it (lost, canceled, …).

    Raises:
        ValidationError: ``reason`` is empty or longer than 200 characters.
        InvalidTransition: the quote is already won or closed.
    """
    why = reason_text(reason, "Quote.close_reason")
    state = move(QuoteLifecycle, quote, quote.state.value, "close", _read_only_hint(quote))
    updated = attrs.evolve(quote, state=state, close_reason=why, closed_at=now, modified_at=now)
    return updated, [QuoteClosed(occurred_at=now, quote_id=quote.id, reason=why)]


def win_quote(
    quote: Quote,
    *,
    order_id: str,
    opportunity: Opportunity,
    other_quotes: Iterable[Quote] = (),
    now: datetime,
) -> Win:
    """Accept an active quote: it becomes an open `Order` with the same lines.

    The opportunity's other draft and active quotes are closed as
    ``another_quote_won``; the opportunity's forecast becomes the won quote's total.

    Args:
        quote: The active quote the customer accepted.
        order_id: The new order's id.
        opportunity: The quote's opportunity.
        other_quotes: The opportunity's other quotes (closed or won ones are skipped).
        now: The time of acceptance.

    Raises:
        InvalidTransition: the quote is not active (activate a draft first), or
            another quote of the opportunity was already won.
        ValidationError: ``opportunity`` or one of ``other_quotes`` is not the quote's.
    """
    hint = (
        "activate it first (only an active quote can be accepted)"
        if quote.state is QuoteState.DRAFT
        else _read_only_hint(quote)
    )
    state = move(QuoteLifecycle, quote, quote.state.value, "win", hint)
    _require_own(opportunity, quote)
    closed: list[Quote] = []
    events: list[ev.Event] = []
    for other in other_quotes:
        if other.id == quote.id:
            continue
        if other.opportunity_id != quote.opportunity_id:
            raise ValidationError(
                f"{other.describe()} belongs to opportunity {other.opportunity_id!r}, not "
                f"{quote.opportunity_id!r}; pass only the opportunity's own quotes",
                field="other_quotes",
                value=other.id,
            )
        if other.state is QuoteState.WON:
            raise InvalidTransition(
                f"{quote.describe()} cannot be won: {other.describe()} of the same "
                f"opportunity was already won (order {other.order_id!r})",
                state=quote.state.value,
                event="win",
            )
        if other.state in (QuoteState.DRAFT, QuoteState.ACTIVE):
            shut, shut_events = close_quote(
                other, QuoteCloseReason.ANOTHER_QUOTE_WON.value, now=now
            )
            closed.append(shut)
            events.extend(shut_events)
    order = Order(
        id=order_id,
        created_at=now,
        modified_at=now,
        opportunity_id=quote.opportunity_id,
        currency=quote.currency,
        price_list_id=quote.price_list_id,
        lines=quote.lines,
        quote_id=quote.id,
        name=quote.name,
    )
    won = attrs.evolve(quote, state=state, order_id=order.id, closed_at=now, modified_at=now)
    followed_opportunity, followed = _forecast(opportunity, won, now)
    events[:0] = [
        QuoteWon(occurred_at=now, quote_id=quote.id, order_id=order.id, total=quote.total),
        OrderCreated(
            occurred_at=now,
            order_id=order.id,
            quote_id=quote.id,
            opportunity_id=order.opportunity_id,
            total=order.total,
        ),
    ]
    return Win(
        quote=won,
        order=order,
        closed=tuple(closed),
        opportunity=followed_opportunity,
        events=(*events, *followed),
    )
