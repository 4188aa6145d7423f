"""Intake values: a person coming in (`Submission`), how intake treats them
(`IntakeOptions`) and what it did (`IntakeResult`).

Every way a person enters the system (typed in, CSV import, landing page, event
registration, LinkedIn lead form) is a `Submission` that `Salesflow.intake`
handles the same way: match an existing contact and lead
(`salesflow.matching`), update or create, and record the interaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

from salesflow.errors import ValidationError
from salesflow.interactions import Interaction, InteractionKind
from salesflow.lead import Lead, LeadSource
from salesflow.party import Contact
from salesflow.values import optional_aware, optional_identifier, to_enum, utc

__all__ = [
    "CHANNEL_INTERACTIONS",
    "CHANNEL_SOURCES",
    "Channel",
    "IntakeOptions",
    "IntakeResult",
    "RecordAction",
    "Submission",
]


class Channel(StrEnum):
    """How the person came in."""

    TYPED = "typed"
    CSV = "csv"
    LANDING_PAGE = "landing_page"
    EVENT = "event"
    LINKEDIN_FORM = "linkedin_form"


CHANNEL_INTERACTIONS: Mapping[Channel, InteractionKind | None] = {
    Channel.TYPED: None,
    Channel.CSV: None,
    Channel.LANDING_PAGE: InteractionKind.LANDING_PAGE_SUBMITTED,
    Channel.EVENT: InteractionKind.EVENT_REGISTERED,
    Channel.LINKEDIN_FORM: InteractionKind.LINKEDIN_FORM_SUBMITTED,
}
"""The interaction each channel records by default (typed-in and imported people
did nothing the scoring should count)."""


CHANNEL_SOURCES: Mapping[Channel, LeadSource | None] = {
    Channel.TYPED: None,
    Channel.CSV: LeadSource.IMPORT,
    Channel.LANDING_PAGE: LeadSource.WEB,
    Channel.EVENT: LeadSource.EVENT,
    Channel.LINKEDIN_FORM: LeadSource.LINKEDIN_FORM,
}
"""The `LeadSource` of a lead that intake creates from each channel when the submission
names no ``source`` (a typed-in person's source is the seller's to say)."""


def _channel(value: object) -> Channel:
    result: Channel = to_enum(Channel, value, "Submission.channel", optional=False)
    return result


def _interaction(value: object) -> InteractionKind | None:
    result: InteractionKind | None = to_enum(InteractionKind, value, "Submission.interaction")
    return result


def _fields(value: object) -> dict[str, Any]:
    if type(value) is dict:
        # the usual case (every import row), checked without the generic tests
        for key in value:
            if not (isinstance(key, str) and key):
                break
        else:
            return dict(value)
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise ValidationError(
            f"Submission.fields={value!r} must map field names (lead or contact fields, "
            f"'custom.<name>' for custom fields) to values",
            field="Submission.fields",
            value=value,
        )
    return dict(value)


@attrs.frozen(kw_only=True)
class Submission:
    """A person coming in.

    Attributes:
        channel: How (`Channel`).
        fields: The person's values by field name: lead fields (``topic``,
            ``company_name`` …), contact fields, ``custom.<name>`` for custom fields.
        form_id: The landing page, event or LinkedIn form it came from (leads
            match per form by default).
        campaign_id: The campaign, when known.
        occurred_at: When it happened; the command's time by default.
        id: The submission's own id (a form post id, a CSV file and row): the same
            submission is recorded once, so repeating it changes nothing.
        interaction: The interaction to record; the channel's by default
            (`CHANNEL_INTERACTIONS`).
    """

    channel: Channel = attrs.field(converter=_channel)
    fields: Mapping[str, Any] = attrs.field(converter=_fields, hash=False)
    form_id: str | None = attrs.field(default=None, validator=optional_identifier)
    campaign_id: str | None = attrs.field(default=None, validator=optional_identifier)
    occurred_at: datetime | None = attrs.field(
        default=None, converter=utc, validator=optional_aware
    )
    id: str | None = attrs.field(default=None, validator=optional_identifier)
    interaction: InteractionKind | None = attrs.field(default=None, converter=_interaction)

    @property
    def interaction_kind(self) -> InteractionKind | None:
        """The interaction intake records for this submission."""
        return (
            self.interaction if self.interaction is not None else CHANNEL_INTERACTIONS[self.channel]
        )


@attrs.frozen(kw_only=True)
class IntakeOptions:
    """How intake treats a submission.

    Attributes:
        contact_strategy: The matching strategy for contacts (its id); the default.
        lead_strategy: The matching strategy for leads; the default.
        update_matched: Update a matched lead/contact with the submission's values.
        create_when_no_match: Create a lead when none matches.
        create_contact: Also create a contact when none matches (off: marketing forms
            create leads; the contact comes when the lead is qualified).
        ignore_empty: Empty submitted values neither take part in matching nor
            overwrite stored values.
        match_inactive: Match closed leads and inactive contacts too.
        leads: Match, update and create leads (off for an import of contacts).
        route: Route each lead intake creates with the active routing policy, in
            the same unit of work (nothing happens while no policy is active).
    """

    contact_strategy: str | None = None
    lead_strategy: str | None = None
    update_matched: bool = True
    create_when_no_match: bool = True
    create_contact: bool = False
    ignore_empty: bool = True
    match_inactive: bool = False
    leads: bool = True
    route: bool = True


class RecordAction(StrEnum):
    """What intake did with a lead or contact."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    NONE = "none"


@attrs.frozen(kw_only=True)
class IntakeResult:
    """What intake did, and why.

    Attributes:
        lead: The matched or created lead as committed, after the unit's routing,
            scoring and process start (None when none was matched or created).
        contact: The matched or created contact, as committed.
        lead_action: Created, updated, unchanged, or none.
        contact_action: The same for the contact.
        interaction: The interaction recorded (None when the channel records none, or
            the same submission was recorded before).
        reasons: Every decision in words: which strategy matched what, on which values.
    """

    lead: Lead | None
    contact: Contact | None
    lead_action: RecordAction
    contact_action: RecordAction
    interaction: Interaction | None
    reasons: tuple[str, ...] = ()
