"""Opportunities: the record, its open → won | lost lifecycle and the pure
commands on it. Price lists, lines and quotes build on this module.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, ClassVar

import attrs
from statemachine import State, StateMachine

from salesflow.errors import ValidationError
from salesflow.party import Competitor, Stakeholder
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

__all__ = ["Opportunity", "OpportunityLifecycle", "OpportunityStatus"]


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

    @property
    def is_open(self) -> bool:
        """True while the sale is being worked."""
        return self.status is OpportunityStatus.OPEN
