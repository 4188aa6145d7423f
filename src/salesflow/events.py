"""Domain events: frozen facts about what happened, each with ``occurred_at``.

The engine publishes them to the host's `EventSink` after the unit of work that
produced them has committed, in the order they happened. A failed command
publishes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import attrs

__all__ = [
    "AccountCreated",
    "AccountUpdated",
    "ActivityCanceled",
    "ActivityCompleted",
    "ActivityCreated",
    "ActivityUpdated",
    "ContactCreated",
    "ContactUpdated",
    "DefinitionPublished",
    "DefinitionStateChanged",
    "Event",
    "EventSink",
    "InteractionRecorded",
    "LeadAssigned",
    "LeadBecameSalesReady",
    "LeadCreated",
    "LeadDisqualified",
    "LeadGradeChanged",
    "LeadQualified",
    "LeadReactivated",
    "LeadRouted",
    "LeadScored",
    "LeadUpdated",
    "ListSink",
    "NullSink",
    "OpportunityClosed",
    "OpportunityCreated",
    "OpportunityReopened",
    "OpportunityUpdated",
    "TeamSaved",
]


@attrs.frozen(kw_only=True)
class Event:
    """Base of every domain event."""

    occurred_at: datetime


@attrs.frozen(kw_only=True)
class LeadCreated(Event):
    """A lead was created."""

    lead_id: str


@attrs.frozen(kw_only=True)
class LeadUpdated(Event):
    """Fields of an open lead changed (``fields`` names them)."""

    lead_id: str
    fields: tuple[str, ...]


@attrs.frozen(kw_only=True)
class LeadAssigned(Event):
    """A lead got a new owner."""

    lead_id: str
    owner_id: str
    previous_owner_id: str | None


@attrs.frozen(kw_only=True)
class TeamSaved(Event):
    """A routing team was stored (new, or replacing the team with its id).

    Attributes:
        team_id: The team.
        members: Its members' user ids, in round-robin order.
        available: Those who take leads now (active and not away).
    """

    team_id: str
    members: tuple[str, ...]
    available: tuple[str, ...]


@attrs.frozen(kw_only=True)
class LeadRouted(Event):
    """A routing policy placed a lead (published right after its `LeadAssigned`).

    Attributes:
        lead_id: The lead.
        owner_id: Its new owner.
        rule_id: The rule that placed it; ``None`` when the fallback owner got it.
        reason: Why, in words (which rule matched, who was picked or skipped).
        policy_id: The routing policy used.
        policy_version: Its version.
    """

    lead_id: str
    owner_id: str
    rule_id: str | None
    reason: str
    policy_id: str
    policy_version: int


@attrs.frozen(kw_only=True)
class LeadQualified(Event):
    """A lead was qualified and linked to the records it was converted into."""

    lead_id: str
    account_id: str | None
    contact_id: str | None
    opportunity_id: str | None


@attrs.frozen(kw_only=True)
class LeadDisqualified(Event):
    """A lead was closed as disqualified with ``reason``."""

    lead_id: str
    reason: str


@attrs.frozen(kw_only=True)
class LeadReactivated(Event):
    """A closed lead was returned to Open/New (``previous`` is its former status)."""

    lead_id: str
    previous: str


@attrs.frozen(kw_only=True)
class LeadScored(Event):
    """A lead's score under a model changed (or it was scored the first time)."""

    lead_id: str
    model_id: str
    points: int
    previous_points: int | None


@attrs.frozen(kw_only=True)
class LeadGradeChanged(Event):
    """A lead's grade under a model changed."""

    lead_id: str
    model_id: str
    grade: str | None
    previous_grade: str | None


@attrs.frozen(kw_only=True)
class LeadBecameSalesReady(Event):
    """A lead became sales-ready: published once per lead, the first time (see
    docs/scoring.md). ``model_id`` and ``points`` are the score that reached its
    model's threshold; both are None when the qualification criteria decided
    (`salesflow.scoring_criteria`)."""

    lead_id: str
    model_id: str | None
    points: int | None


@attrs.frozen(kw_only=True)
class ContactCreated(Event):
    """A contact was created."""

    contact_id: str


@attrs.frozen(kw_only=True)
class ContactUpdated(Event):
    """Fields of a contact changed."""

    contact_id: str
    fields: tuple[str, ...]


@attrs.frozen(kw_only=True)
class AccountCreated(Event):
    """An account was created."""

    account_id: str


@attrs.frozen(kw_only=True)
class AccountUpdated(Event):
    """Fields of an account changed."""

    account_id: str
    fields: tuple[str, ...]


@attrs.frozen(kw_only=True)
class OpportunityCreated(Event):
    """An opportunity was created."""

    opportunity_id: str


@attrs.frozen(kw_only=True)
class OpportunityUpdated(Event):
    """Fields of an opportunity changed."""

    opportunity_id: str
    fields: tuple[str, ...]


@attrs.frozen(kw_only=True)
class OpportunityClosed(Event):
    """An opportunity was closed as won or lost."""

    opportunity_id: str
    status: str
    reason: str | None


@attrs.frozen(kw_only=True)
class OpportunityReopened(Event):
    """A closed opportunity was reopened."""

    opportunity_id: str


@attrs.frozen(kw_only=True)
class DefinitionPublished(Event):
    """A new version of a definition (``kind``: ``sequence``, ``segment``, …) was published."""

    kind: str
    definition_id: str
    version: int


@attrs.frozen(kw_only=True)
class DefinitionStateChanged(Event):
    """A definition was activated or deactivated (``state``)."""

    kind: str
    definition_id: str
    state: str


@attrs.frozen(kw_only=True)
class InteractionRecorded(Event):
    """A contact and/or lead did something (``kind``: an `InteractionKind` value)."""

    interaction_id: str
    kind: str
    contact_id: str | None
    lead_id: str | None


@attrs.frozen(kw_only=True)
class ActivityCreated(Event):
    """An activity was put on a record's timeline."""

    activity_id: str
    regarding: str


@attrs.frozen(kw_only=True)
class ActivityUpdated(Event):
    """An open activity was changed or delegated."""

    activity_id: str
    fields: tuple[str, ...]


@attrs.frozen(kw_only=True)
class ActivityCompleted(Event):
    """An activity was completed."""

    activity_id: str


@attrs.frozen(kw_only=True)
class ActivityCanceled(Event):
    """An activity was canceled."""

    activity_id: str


class EventSink(Protocol):
    """Receives the events of each committed unit of work, in order."""

    def publish(self, events: Sequence[Event]) -> None:
        """Deliver ``events``; called once per committed command that produced any."""
        ...


class NullSink:
    """Drops every event (the engine's default)."""

    def publish(self, events: Sequence[Event]) -> None:
        """Ignore ``events``."""


class ListSink:
    """Keeps every published event in `events`, for tests and simple hosts."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, events: Sequence[Event]) -> None:
        """Append ``events`` to `events`."""
        self.events.extend(events)
