"""Interactions: what a person did (opened an email, submitted a landing page,
attended an event, …), recorded against their contact and/or lead.

Interactions are immutable facts with a timestamp: scoring counts them within
time windows, intake records one for every submission, and the sequences'
email events can be recorded as interactions too. They are not records (no
versions, no edits); stores keep them in their own table, looked up by contact,
lead or account and time (`salesflow.stores.base.UnitOfWork.interactions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

from salesflow.errors import ValidationError
from salesflow.values import (
    CustomValue,
    custom_fields,
    optional_identifier,
    to_enum,
    utc,
)

__all__ = ["Interaction", "InteractionKind"]


class InteractionKind(StrEnum):
    """What the person did."""

    EMAIL_SENT = "email_sent"
    EMAIL_OPENED = "email_opened"
    EMAIL_CLICKED = "email_clicked"
    EMAIL_REPLIED = "email_replied"
    LANDING_PAGE_VISITED = "landing_page_visited"
    LANDING_PAGE_SUBMITTED = "landing_page_submitted"
    WEBSITE_VISITED = "website_visited"
    EVENT_REGISTERED = "event_registered"
    EVENT_ATTENDED = "event_attended"
    LINKEDIN_FORM_SUBMITTED = "linkedin_form_submitted"
    CALL = "call"
    MEETING = "meeting"


def _kind(value: object) -> InteractionKind:
    kind: InteractionKind = to_enum(InteractionKind, value, "Interaction.kind", optional=False)
    return kind


def _identifier(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ValidationError(
            f"Interaction.{attribute.name}={value!r} must be a non-empty string of at most "
            f"200 characters",
            field=f"Interaction.{attribute.name}",
            value=value,
        )


def _occurred_at(value: object) -> datetime:
    converted = utc(value)
    if not isinstance(converted, datetime) or converted.utcoffset() is None:
        raise ValidationError(
            f"Interaction.occurred_at={value!r} must be a timezone-aware datetime",
            field="Interaction.occurred_at",
            value=value,
        )
    return converted


@attrs.frozen(kw_only=True)
class Interaction:
    """One thing a person did, at ``occurred_at``.

    Attributes:
        id: The interaction's id.
        kind: What they did (`InteractionKind`).
        occurred_at: When (aware; kept in UTC).
        contact_id: The contact who did it, when known.
        lead_id: The lead it belongs to, when known (at least one of the two).
        account_id: The contact's account when it was recorded (account-based
            scoring counts every contact of an account).
        source_id: Which email, landing page, event or form it was about.
        metadata: Anything else the channel reports (custom-field values).
    """

    id: str = attrs.field(validator=_identifier)
    kind: InteractionKind = attrs.field(converter=_kind)
    occurred_at: datetime = attrs.field(converter=_occurred_at)
    contact_id: str | None = attrs.field(default=None, validator=optional_identifier)
    lead_id: str | None = attrs.field(default=None, validator=optional_identifier)
    account_id: str | None = attrs.field(default=None, validator=optional_identifier)
    source_id: str | None = attrs.field(default=None, validator=optional_identifier)
    metadata: Mapping[str, CustomValue] = attrs.field(
        factory=dict, converter=custom_fields, hash=False
    )

    def __attrs_post_init__(self) -> None:
        if self.contact_id is None and self.lead_id is None:
            raise ValidationError(
                f"Interaction {self.id!r} names neither a contact nor a lead; record it "
                f"against contact_id, lead_id or both",
                field="Interaction.contact_id",
                value=None,
            )
