"""Products, price lists and priced lines: what a sale is made of and what it is worth.

A line names a product (priced from a price list) or is a write-in with a price given
by hand; it has a quantity and at most one manual discount (an amount or a percentage).
Every figure is a `Money` (a ``Decimal`` and a currency); floats are refused.

Rounding rule (one rule for opportunities, quotes, orders and invoices):

1. a line's **amount** is quantity × unit price, computed exactly, then rounded to the
   currency's minor unit (`minor_unit`: 2 decimals for EUR/USD, 0 for JPY, 3 for
   KWD, …) with ``ROUND_HALF_EVEN`` (banker's rounding);
2. its **discount** is the given amount, or the percentage of the rounded amount,
   rounded the same way;
3. its **total** is amount − discount (exact: both are already rounded);
4. a document's totals are the plain sums of its lines' rounded figures, so the
   total printed under the lines always equals the sum of the lines printed above it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation
from typing import Any

import attrs

from salesflow.errors import ValidationError
from salesflow.values import (
    Money,
    count,
    flag,
    identifier,
    optional_date,
    optional_identifier,
    optional_money,
    optional_text,
    required_text,
    text,
)

__all__ = [
    "MINOR_UNITS",
    "OpportunityLine",
    "PriceList",
    "PriceListItem",
    "Product",
    "Totals",
    "estimated_revenue",
    "minor_unit",
    "price_line",
    "price_lines",
    "round_money",
    "totals",
]

MINOR_UNITS: Mapping[str, int] = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "CLF": 4,
    "UYW": 4,
}
"""ISO 4217 currencies whose minor unit is not 2 decimals; every other code has 2."""

_EXACT = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Inexact])
"""Multiplications that must not round: a result too long for 80 digits is refused."""
_ROUNDING = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
_QUANTA: dict[str, Decimal] = {}
"""The smallest amount of each currency seen, cached (``Decimal('0.01')`` for EUR)."""


def minor_unit(currency: str) -> int:
    """The number of decimals of ``currency``'s minor unit (``'EUR'`` → 2, ``'JPY'`` → 0)."""
    return MINOR_UNITS.get(currency, 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-even to ``currency``'s minor unit.

    Raises:
        ValidationError: the amount is too large to round (more than 80 digits).
    """
    quantum = _QUANTA.get(currency)
    if quantum is None:
        quantum = _QUANTA[currency] = Decimal(1).scaleb(-minor_unit(currency))
    try:
        return amount.quantize(quantum, context=_ROUNDING)
    except InvalidOperation:
        raise ValidationError(
            f"amount {amount} {currency} is too large to round to the currency's minor unit; "
            f"use a smaller quantity or price",
            field="amount",
            value=amount,
        ) from None


def _exact(operation: str, left: Decimal, right: Decimal, scale: int = 0) -> Decimal:
    """left × right × 10**scale, exactly."""
    try:
        product = _EXACT.multiply(left, right)
        return _EXACT.scaleb(product, scale) if scale else product
    except (Inexact, InvalidOperation):
        raise ValidationError(
            f"{operation} {left} × {right} has more than 80 digits; use fewer decimals",
            field=operation,
            value=(left, right),
        ) from None


def _decimal(value: object, where: str) -> Decimal:
    """Converter body: an exact number from a ``Decimal``, an ``int`` or a string."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str) and not isinstance(value, bool):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValidationError(
                f"{where}={value!r} is not a number; pass a Decimal, an int or a string "
                f"such as '2.5'",
                field=where,
                value=value,
            ) from None
    else:
        raise ValidationError(
            f"{where}={value!r} is a {type(value).__name__}; quantities and percentages "
            f"are exact: pass a Decimal, an int or a string such as '2.5'",
            field=where,
            value=value,
        )
    if not result.is_finite():
        raise ValidationError(
            f"{where}={value!r} must be a finite number", field=where, value=value
        )
    return result


def _quantity(value: object) -> Decimal:
    return _decimal(value, "OpportunityLine.quantity")


def _percent(value: object) -> Decimal | None:
    return None if value is None else _decimal(value, "OpportunityLine.discount_percent")


def _not_negative_money(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    optional_money(instance, attribute, value)
    if isinstance(value, Money) and value.amount < 0:
        where = f"{type(instance).__name__}.{attribute.name}"
        raise ValidationError(
            f"{where}={value} is negative; give zero or more (a credit is a separate document)",
            field=where,
            value=value,
        )


def _currency(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # Money validates currency codes; building one reuses that check and its message.
    Money(amount=0, currency=value)  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class Product:
    """Something the organization sells, in a unit (each, hour, seat, …).

    An inactive product stays on the lines that already name it but cannot be added
    to new ones.
    """

    id: str = attrs.field(validator=identifier)
    version: int = attrs.field(default=1, validator=count(2**62))
    name: str = attrs.field(converter=text, validator=required_text(200))
    unit: str = attrs.field(default="each", converter=text, validator=required_text(50))
    active: bool = attrs.field(default=True, validator=flag)
    description: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(2000)
    )


@attrs.frozen(kw_only=True)
class PriceListItem:
    """The unit price of one product on a price list."""

    product_id: str = attrs.field(validator=identifier)
    unit_price: Money = attrs.field(validator=_not_negative_money)


def _items(value: object) -> tuple[PriceListItem, ...]:
    """Converter: ``{product_id: Money}`` or `PriceListItem` values, sorted by product."""
    if isinstance(value, Mapping):
        value = [PriceListItem(product_id=k, unit_price=v) for k, v in value.items()]
    items = tuple(value) if isinstance(value, list | tuple) else value
    if not isinstance(items, tuple) or not all(isinstance(i, PriceListItem) for i in items):
        raise ValidationError(
            f"PriceList.items={value!r} must map product ids to Money unit prices",
            field="PriceList.items",
            value=value,
        )
    return tuple(sorted(items, key=lambda i: i.product_id))


@attrs.frozen(kw_only=True)
class PriceList:
    """Unit prices of products in one currency, optionally valid between two dates.

    ``items`` may be given as ``{product_id: Money(...)}``; it is kept as
    `PriceListItem` values sorted by product id.
    """

    id: str = attrs.field(validator=identifier)
    version: int = attrs.field(default=1, validator=count(2**62))
    name: str = attrs.field(converter=text, validator=required_text(200))
    currency: str = attrs.field(validator=_currency)
    items: tuple[PriceListItem, ...] = attrs.field(default=(), converter=_items)
    valid_from: date | None = attrs.field(default=None, validator=optional_date)
    valid_to: date | None = attrs.field(default=None, validator=optional_date)

    def __attrs_post_init__(self) -> None:
        seen: set[str] = set()
        for item in self.items:
            if item.product_id in seen:
                raise ValidationError(
                    f"PriceList {self.id!r} lists product {item.product_id!r} twice; keep one "
                    f"price per product",
                    field="PriceList.items",
                    value=item.product_id,
                )
            seen.add(item.product_id)
            if item.unit_price.currency != self.currency:
                raise ValidationError(
                    f"PriceList {self.id!r} is in {self.currency} but prices product "
                    f"{item.product_id!r} at {item.unit_price}; give every price in "
                    f"{self.currency}",
                    field="PriceList.items",
                    value=item.unit_price,
                )
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValidationError(
                f"PriceList {self.id!r} is valid from {self.valid_from} to {self.valid_to}; "
                f"the end must not be before the start",
                field="PriceList.valid_to",
                value=self.valid_to,
            )

    def is_valid_on(self, day: date) -> bool:
        """True when the price list applies on ``day``."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def price_of(self, product_id: str) -> Money | None:
        """The unit price of ``product_id``, or ``None`` when it is not on the list."""
        for item in self.items:
            if item.product_id == product_id:
                return item.unit_price
        return None


@attrs.frozen(kw_only=True)
class Totals:
    """The figures of a set of lines: amount − discount = total, in one currency."""

    amount: Money
    discount: Money
    total: Money


def _manual_default(line: OpportunityLine) -> bool:
    return line.unit_price is not None


@attrs.frozen(kw_only=True)
class OpportunityLine:
    """One line of an opportunity, quote, order or invoice.

    Either ``product_id`` (priced from the price list) or a write-in ``description``
    (priced by hand) is required. ``unit_price`` is ``None`` until the line is priced
    by `price_line`; a line built with a ``unit_price`` is priced by hand
    (``manual_price`` is then ``True``) and keeps its price when the lines are priced
    again. At most one of ``discount_amount`` and ``discount_percent`` (0–100).
    See the module docstring for the rounding rule of `amount`, `discount` and `total`.
    """

    product_id: str | None = attrs.field(default=None, validator=optional_identifier)
    description: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(500)
    )
    quantity: Decimal = attrs.field(converter=_quantity)
    unit_price: Money | None = attrs.field(default=None, validator=_not_negative_money)
    manual_price: bool = attrs.field(
        default=attrs.Factory(_manual_default, takes_self=True), validator=flag
    )
    discount_amount: Money | None = attrs.field(default=None, validator=_not_negative_money)
    discount_percent: Decimal | None = attrs.field(default=None, converter=_percent)

    def __attrs_post_init__(self) -> None:
        what = self.label
        if self.product_id is None and self.description is None:
            raise ValidationError(
                "an OpportunityLine needs a product_id (priced from the price list) or a "
                "write-in description with a unit_price",
                field="OpportunityLine.product_id",
                value=None,
            )
        if self.quantity <= 0:
            raise ValidationError(
                f"{what}: quantity={self.quantity} must be greater than zero",
                field="OpportunityLine.quantity",
                value=self.quantity,
            )
        if self.discount_amount is not None and self.discount_percent is not None:
            raise ValidationError(
                f"{what} has both discount_amount={self.discount_amount} and "
                f"discount_percent={self.discount_percent}; give one of them",
                field="OpportunityLine.discount_percent",
                value=self.discount_percent,
            )
        if self.discount_percent is not None and not 0 <= self.discount_percent <= 100:
            raise ValidationError(
                f"{what}: discount_percent={self.discount_percent} must be between 0 and 100",
                field="OpportunityLine.discount_percent",
                value=self.discount_percent,
            )
        if self.manual_price and self.unit_price is None:
            raise ValidationError(
                f"{what} says manual_price=True but has no unit_price; give the price",
                field="OpportunityLine.unit_price",
                value=None,
            )
        if self.unit_price is None:
            return
        currency = self.unit_price.currency
        if self.discount_amount is not None and self.discount_amount.currency != currency:
            raise ValidationError(
                f"{what} is priced in {currency} but discount_amount={self.discount_amount}; "
                f"give the discount in {currency}",
                field="OpportunityLine.discount_amount",
                value=self.discount_amount,
            )
        if self.discount_amount is None:
            return  # a percentage of 0-100 never exceeds the amount
        amount, discount = self.figures()
        if discount > amount:
            raise ValidationError(
                f"{what}: the discount {discount} {currency} is more than the line amount "
                f"{amount} {currency}; lower the discount",
                field="OpportunityLine.discount_amount",
                value=self.discount_amount,
            )

    @property
    def label(self) -> str:
        """How errors name the line: ``line for product 'p-1'`` or ``write-in line 'Setup'``."""
        if self.product_id is not None:
            return f"line for product {self.product_id!r}"
        return f"write-in line {self.description!r}"

    @property
    def is_priced(self) -> bool:
        """True once the line has a unit price."""
        return self.unit_price is not None

    def _price(self) -> Money:
        if self.unit_price is None:
            raise ValidationError(
                f"{self.label} has no unit price yet; price it from a price list with "
                f"price_line() or give unit_price=Money(...)",
                field="OpportunityLine.unit_price",
                value=None,
            )
        return self.unit_price

    @property
    def currency(self) -> str:
        """The currency of the unit price.

        Raises:
            ValidationError: the line is not priced yet.
        """
        return self._price().currency

    def figures(self) -> tuple[Decimal, Decimal]:
        """The rounded amount and discount as plain decimals, computed once.

        Raises:
            ValidationError: the line is not priced yet.
        """
        price = self._price()
        currency = price.currency
        amount = round_money(_exact("quantity × unit price", self.quantity, price.amount), currency)
        if self.discount_amount is not None:
            discount = self.discount_amount.amount
        elif self.discount_percent is not None:
            discount = _exact("amount × percent", amount, self.discount_percent, -2)
        else:
            return amount, round_money(Decimal(0), currency)
        return amount, round_money(discount, currency)

    @property
    def amount(self) -> Money:
        """quantity × unit price, rounded to the currency's minor unit."""
        return Money(amount=self.figures()[0], currency=self.currency)

    @property
    def discount(self) -> Money:
        """The manual discount as money, rounded to the currency's minor unit (zero if none)."""
        return Money(amount=self.figures()[1], currency=self.currency)

    @property
    def total(self) -> Money:
        """amount − discount."""
        amount, discount = self.figures()
        return Money(amount=amount - discount, currency=self.currency)


def totals(lines: Iterable[OpportunityLine], currency: str) -> Totals:
    """The sums of the lines' amounts, discounts and totals, in ``currency``.

    No lines give zeros.

    Raises:
        ValidationError: a line is not priced, or is priced in another currency.
    """
    amount = discount = Decimal(0)
    for position, line in enumerate(lines, start=1):
        if line.currency != currency:
            raise ValidationError(
                f"line {position} ({line.label}) is priced in {line.currency}, not "
                f"{currency}; every line of one document uses the price list's currency",
                field="OpportunityLine.unit_price",
                value=line.unit_price,
            )
        line_amount, line_discount = line.figures()
        amount += line_amount
        discount += line_discount
    zero = Decimal(0).scaleb(-minor_unit(currency))
    return Totals(
        amount=Money(amount=amount + zero, currency=currency),
        discount=Money(amount=discount + zero, currency=currency),
        total=Money(amount=amount - discount + zero, currency=currency),
    )


def estimated_revenue(lines: Iterable[OpportunityLine], currency: str) -> Money:
    """The forecast of an opportunity: the sum of its line totals in ``currency``."""
    return totals(lines, currency).total


def price_line(
    line: OpportunityLine,
    price_list: PriceList,
    *,
    on: date | None = None,
    products: Mapping[str, Product] | None = None,
) -> OpportunityLine:
    """``line`` with its unit price resolved from ``price_list``.

    A line priced by hand keeps its price (it must be in the list's currency); any
    other product line takes the list's current price.

    Args:
        line: The line to price.
        price_list: Where product prices come from.
        on: The day the price applies; the list must be valid then (not checked when
            ``None``).
        products: The product catalogue; when given, a product line must name an
            active product of it.

    Raises:
        ValidationError: the product is unknown, inactive or not on the list, the list
            is not valid ``on`` that day, or a hand price is in another currency.
    """
    if on is not None and not price_list.is_valid_on(on):
        raise ValidationError(
            f"PriceList {price_list.id!r} is valid from {price_list.valid_from or 'any day'} "
            f"to {price_list.valid_to or 'any day'}, not on {on}; choose a current price list",
            field="Opportunity.price_list_id",
            value=price_list.id,
        )
    if line.product_id is not None and products is not None:
        product = products.get(line.product_id)
        if product is None or not product.active:
            state = "does not exist" if product is None else "is inactive"
            raise ValidationError(
                f"{line.label}: the product {state}; choose an active product or write the "
                f"line in with a description and a unit_price",
                field="OpportunityLine.product_id",
                value=line.product_id,
            )
    if line.manual_price:
        if line.currency != price_list.currency:
            raise ValidationError(
                f"{line.label} is priced by hand at {line.unit_price}, but price list "
                f"{price_list.id!r} is in {price_list.currency}; give the price in "
                f"{price_list.currency}",
                field="OpportunityLine.unit_price",
                value=line.unit_price,
            )
        return line
    if line.product_id is None:
        raise ValidationError(
            f"{line.label} has no unit price; give unit_price=Money(..., "
            f"currency={price_list.currency!r}) for a write-in line",
            field="OpportunityLine.unit_price",
            value=None,
        )
    price = price_list.price_of(line.product_id)
    if price is None:
        raise ValidationError(
            f"{line.label}: the product is not on price list {price_list.id!r}; add it to "
            f"the list or give unit_price=Money(...) by hand",
            field="OpportunityLine.product_id",
            value=line.product_id,
        )
    return attrs.evolve(line, unit_price=price, manual_price=False)


def price_lines(
    lines: Sequence[OpportunityLine] | Iterable[OpportunityLine],
    price_list: PriceList,
    *,
    on: date | None = None,
    products: Mapping[str, Product] | None = None,
) -> tuple[OpportunityLine, ...]:
    """Every line priced by `price_line`; an error names the line's position (from 1).

    Raises:
        ValidationError: a line cannot be priced (see `price_line`).
    """
    priced: list[OpportunityLine] = []
    for position, line in enumerate(lines, start=1):
        if not isinstance(line, OpportunityLine):
            raise ValidationError(
                f"line {position} is {line!r}; lines are OpportunityLine values",
                field="lines",
                value=line,
            )
        try:
            priced.append(price_line(line, price_list, on=on, products=products))
        except ValidationError as exc:
            raise ValidationError(
                f"line {position}: {exc}", field=exc.field, value=exc.value
            ) from exc
    return tuple(priced)
