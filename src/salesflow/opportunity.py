"""Opportunities: the record, its open → won | lost lifecycle and the pure
commands on it, including its product lines and the revenue forecast they give.

An opportunity with lines has a price list, and its ``estimated_value`` is the sum
of the line totals (`salesflow.pricing`): the record refuses any other value, so the
forecast cannot drift from the lines. Without lines the estimate is the seller's own
figure. Quotes, orders and invoices (`salesflow.quotes`, `salesflow.orders`) build
on this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

import attrs
from statemachine import State, StateMachine

from salesflow import events as ev
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.party import Competitor, Stakeholder
from salesflow.pricing import (
    OpportunityLine,
    PriceList,
    Product,
    estimated_revenue,
    price_lines,
    round_money,
)
from salesflow.values import (
    Money,
    OwnerType,
    Record,
    RecordKind,
    count,
    optional_date,
    optional_identifier,
    optional_money,
    optional_text,
    required_text,
    text,
    to_enum,
)

__all__ = [
    "SYSTEM_FIELDS",
    "Opportunity",
    "OpportunityLifecycle",
    "OpportunityStatus",
    "add_line",
    "follow_lines",
    "remove_line",
    "replace_line",
    "set_lines",
    "set_price_list",
    "weighted_value",
]


class OpportunityStatus(StrEnum):
    """Whether the sale is still being worked, won or lost."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


class OpportunityLifecycle(StateMachine):
    """Open → Won | Lost; a closed opportunity can be reopened."""

    open = State("Open", initial=True, value="open")
    won = State("Won", value="won")
    lost = State("Lost", value="lost")

    win = open.to(won)
    lose = open.to(lost)
    reopen = won.to(open) | lost.to(open)


def items_of(value: object, kind: type[Any], where: str) -> tuple[Any, ...]:
    """Converter body: a list or tuple of ``kind`` values as a tuple.

    Raises:
        ValidationError: ``value`` is not a sequence of ``kind`` values.
    """
    items = tuple(value) if isinstance(value, list | tuple) else value
    if not isinstance(items, tuple) or not all(isinstance(i, kind) for i in items):
        raise ValidationError(
            f"{where}={value!r} must be a list of {kind.__name__} values",
            field=where,
            value=value,
        )
    return items


def _stakeholders(value: object) -> tuple[Stakeholder, ...]:
    """Converter: a list of `Stakeholder` values as a tuple."""
    return items_of(value, Stakeholder, "Opportunity.stakeholders")


def _competitors(value: object) -> tuple[Competitor, ...]:
    """Converter: a list of `Competitor` values as a tuple."""
    return items_of(value, Competitor, "Opportunity.competitors")


def _lines(value: object) -> tuple[OpportunityLine, ...]:
    """Converter: a list of `OpportunityLine` values as a tuple."""
    return items_of(value, OpportunityLine, "Opportunity.lines")


def _opportunity_owner_type(value: object) -> OwnerType:
    result: OwnerType = to_enum(OwnerType, value, "Opportunity.owner_type", optional=False)
    return result


def _opportunity_status(value: object) -> OpportunityStatus:
    result: OpportunityStatus = to_enum(
        OpportunityStatus, value, "Opportunity.status", optional=False
    )
    return result


@attrs.define(kw_only=True)
class Opportunity(Record):
    """A potential sale to a customer (account and/or contact).

    ``originating_lead_id`` points back at the lead it was qualified from.
    """

    KIND: ClassVar[RecordKind] = RecordKind.OPPORTUNITY

    name: str = attrs.field(converter=text, validator=required_text(300))
    account_id: str | None = attrs.field(default=None, validator=optional_identifier)
    contact_id: str | None = attrs.field(default=None, validator=optional_identifier)
    estimated_value: Money | None = attrs.field(default=None, validator=optional_money)
    estimated_close_date: date | None = attrs.field(default=None, validator=optional_date)
    probability: int | None = attrs.field(default=None, validator=count(100))
    stage: str | None = attrs.field(default=None, converter=text, validator=optional_text(100))
    owner_id: str | None = attrs.field(default=None, validator=optional_identifier)
    owner_type: OwnerType = attrs.field(
        default=OwnerType.USER,
        converter=_opportunity_owner_type,
    )
    originating_lead_id: str | None = attrs.field(default=None, validator=optional_identifier)
    stakeholders: tuple[Stakeholder, ...] = attrs.field(default=(), converter=_stakeholders)
    competitors: tuple[Competitor, ...] = attrs.field(default=(), converter=_competitors)
    description: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(2000)
    )
    status: OpportunityStatus = attrs.field(
        default=OpportunityStatus.OPEN,
        converter=_opportunity_status,
    )
    close_reason: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(200)
    )
    actual_close_date: date | None = attrs.field(default=None, validator=optional_date)
    price_list_id: str | None = attrs.field(default=None, validator=optional_identifier)
    lines: tuple[OpportunityLine, ...] = attrs.field(default=(), converter=_lines)

    def __attrs_post_init__(self) -> None:
        if not self.lines:
            return
        if self.price_list_id is None:
            raise ValidationError(
                f"Opportunity {self.id!r} has lines but no price list; set lines with "
                f"salesflow.opportunity.set_lines(..., price_list=...)",
                field="Opportunity.price_list_id",
                value=None,
            )
        for position, line in enumerate(self.lines, start=1):
            if not line.is_priced:
                raise ValidationError(
                    f"Opportunity {self.id!r}: line {position} ({line.label}) has no unit "
                    f"price; set lines with salesflow.opportunity.set_lines, which prices them",
                    field="Opportunity.lines",
                    value=line,
                )
        forecast = estimated_revenue(self.lines, self.lines[0].currency)
        if self.estimated_value != forecast:
            raise ValidationError(
                f"Opportunity {self.id!r}: estimated_value={self.estimated_value} but its "
                f"{len(self.lines)} lines total {forecast}; the estimate of an opportunity "
                f"with lines is computed from them: change the lines (set_lines) or clear them",
                field="Opportunity.estimated_value",
                value=self.estimated_value,
            )

    @property
    def is_open(self) -> bool:
        """True while the sale is being worked."""
        return self.status is OpportunityStatus.OPEN


SYSTEM_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "version",
        "created_at",
        "modified_at",
        "status",
        "close_reason",
        "actual_close_date",
        "price_list_id",
        "lines",
    }
)
"""Opportunity fields a host does not set through create/update: the lifecycle sets
the status fields, and the line functions below set the price list and the lines
(so ``estimated_value`` is recomputed with them)."""


def describe(opportunity: Opportunity) -> str:
    """How errors name an opportunity: ``Opportunity 'opp-1'``."""
    return f"Opportunity {opportunity.id!r}"


def require_open(opportunity: Opportunity, doing: str) -> None:
    """Raise `InvalidTransition` if ``opportunity`` is won or lost (read-only)."""
    if not opportunity.is_open:
        raise InvalidTransition(
            f"{describe(opportunity)} is {opportunity.status.value} and read-only, so "
            f"{doing}; reopen it first",
            state=opportunity.status.value,
            event="edit",
        )


def set_lines(
    opportunity: Opportunity,
    lines: Iterable[OpportunityLine],
    *,
    price_list: PriceList,
    now: datetime,
    on: date | None = None,
    products: Mapping[str, Product] | None = None,
) -> tuple[Opportunity, ev.OpportunityUpdated]:
    """Replace the lines of an open opportunity, priced from ``price_list``.

    ``estimated_value`` becomes the sum of the line totals in the list's currency
    (zero for no lines): the forecast follows every change of products, quantities,
    prices or discounts.

    Args:
        opportunity: The open opportunity.
        lines: The new lines; product lines without a hand price take the list's price.
        price_list: The opportunity's price list (it becomes ``price_list_id``).
        now: The time of the change (``modified_at``).
        on: The day prices apply (the list must be valid then); default ``now``'s date.
        products: The product catalogue, to refuse unknown or inactive products.

    Returns:
        The changed opportunity and an `OpportunityUpdated` event naming what changed.

    Raises:
        InvalidTransition: the opportunity is won or lost.
        ValidationError: a line cannot be priced (the message names its position).
    """
    require_open(opportunity, "its lines cannot be changed")
    priced = price_lines(
        tuple(lines), price_list, on=now.date() if on is None else on, products=products
    )
    return _with_lines(opportunity, priced, price_list.id, price_list.currency, now)


def _with_lines(
    opportunity: Opportunity,
    priced: tuple[OpportunityLine, ...],
    price_list_id: str | None,
    currency: str,
    now: datetime,
) -> tuple[Opportunity, ev.OpportunityUpdated]:
    updated = attrs.evolve(
        opportunity,
        price_list_id=price_list_id,
        lines=priced,
        estimated_value=estimated_revenue(priced, currency),
        modified_at=now,
    )
    changed = tuple(
        name
        for name in ("estimated_value", "lines", "price_list_id")
        if getattr(opportunity, name) != getattr(updated, name)
    )
    return updated, ev.OpportunityUpdated(
        occurred_at=now, opportunity_id=opportunity.id, fields=changed
    )


def follow_lines(
    opportunity: Opportunity,
    lines: tuple[OpportunityLine, ...],
    *,
    price_list_id: str | None,
    currency: str,
    now: datetime,
) -> tuple[Opportunity, list[ev.Event]]:
    """Take ``lines`` (already priced, e.g. a quote's) as the opportunity's lines and
    forecast, so the forecast follows the quote being negotiated.

    A won or lost opportunity keeps its figures, and one that already has these lines
    and this estimate is returned as it is; both without an event.
    """
    unchanged = (
        opportunity.lines == lines
        and opportunity.price_list_id == price_list_id
        and opportunity.estimated_value == estimated_revenue(lines, currency)
    )
    if not opportunity.is_open or unchanged:
        return opportunity, []
    updated, event = _with_lines(opportunity, lines, price_list_id, currency, now)
    return updated, [event]


def add_line(
    opportunity: Opportunity,
    line: OpportunityLine,
    *,
    price_list: PriceList,
    now: datetime,
    on: date | None = None,
    products: Mapping[str, Product] | None = None,
) -> tuple[Opportunity, ev.OpportunityUpdated]:
    """Append ``line`` (see `set_lines`)."""
    return set_lines(
        opportunity,
        (*opportunity.lines, line),
        price_list=price_list,
        now=now,
        on=on,
        products=products,
    )


def _position(opportunity: Opportunity, position: int) -> int:
    if isinstance(position, bool) or not isinstance(position, int):
        raise ValidationError(
            f"line position {position!r} must be a whole number from 1",
            field="position",
            value=position,
        )
    if not 1 <= position <= len(opportunity.lines):
        raise ValidationError(
            f"{describe(opportunity)} has {len(opportunity.lines)} lines, so there is no line "
            f"{position}; positions run from 1 to {len(opportunity.lines)}",
            field="position",
            value=position,
        )
    return position - 1


def replace_line(
    opportunity: Opportunity,
    position: int,
    line: OpportunityLine,
    *,
    price_list: PriceList,
    now: datetime,
    on: date | None = None,
    products: Mapping[str, Product] | None = None,
) -> tuple[Opportunity, ev.OpportunityUpdated]:
    """Replace the line at ``position`` (from 1) with ``line`` (see `set_lines`).

    Raises:
        ValidationError: there is no line at ``position``, or ``line`` cannot be priced.
    """
    index = _position(opportunity, position)
    lines = list(opportunity.lines)
    lines[index] = line
    return set_lines(opportunity, lines, price_list=price_list, now=now, on=on, products=products)


def remove_line(
    opportunity: Opportunity,
    position: int,
    *,
    price_list: PriceList,
    now: datetime,
    on: date | None = None,
) -> tuple[Opportunity, ev.OpportunityUpdated]:
    """Remove the line at ``position`` (from 1) (see `set_lines`).

    Raises:
        ValidationError: there is no line at ``position``.
    """
    index = _position(opportunity, position)
    lines = opportunity.lines[:index] + opportunity.lines[index + 1 :]
    return set_lines(opportunity, lines, price_list=price_list, now=now, on=on)


def set_price_list(
    opportunity: Opportunity,
    price_list: PriceList,
    *,
    now: datetime,
    on: date | None = None,
    products: Mapping[str, Product] | None = None,
) -> tuple[Opportunity, ev.OpportunityUpdated]:
    """Move the opportunity to ``price_list`` and price its product lines again from it.

    Lines priced by hand keep their price, so they must already be in the new list's
    currency.

    Raises:
        ValidationError: a product is not on the new list, or a hand price is in
            another currency.
    """
    return set_lines(
        opportunity, opportunity.lines, price_list=price_list, now=now, on=on, products=products
    )


def weighted_value(opportunity: Opportunity) -> Money | None:
    """The estimate weighted by the probability (rounded to the currency's minor unit).

    ``None`` when the opportunity has no estimate or no probability.
    """
    value = opportunity.estimated_value
    if value is None or opportunity.probability is None:
        return None
    weighted = value.amount * Decimal(opportunity.probability).scaleb(-2)
    return Money(amount=round_money(weighted, value.currency), currency=value.currency)
