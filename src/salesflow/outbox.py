"""The outbox: a committed unit of work's events, kept with it until the sink has them.

An engine made with ``Salesflow(outbox=True)`` writes the events of every unit of
work into the store in that same unit, as one `OutboxEntry`, publishes them after
the commit and then removes the entry. A process killed between the commit and the
sink (or a sink that raises) leaves the entry behind, and
`Salesflow.deliver_outbox` publishes it later: every event reaches the sink at
least once, and a host deduplicates the actions it performs on their idempotency
keys (``SendEmailRequested.activity_id``, see docs/deploying.md).

Events are stored as JSON documents (`salesflow.stores.codec.encode_event`), so an
entry holds no code and reads back the same in every store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from salesflow.clock import require_aware
from salesflow.due import check_payload
from salesflow.errors import ValidationError

__all__ = ["OutboxEntry", "check_outbox_claim"]


def _entry_id(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ValidationError(
            f"OutboxEntry.id={value!r} must be a non-empty string of at most 200 characters",
            field="OutboxEntry.id",
            value=value,
        )


def _aware(_: object, __: attrs.Attribute[Any], value: datetime) -> None:
    require_aware(value, "OutboxEntry.created_at")


def _documents(value: object) -> tuple[dict[str, Any], ...]:
    if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
        raise ValidationError(
            f"OutboxEntry.events={value!r} must be a list of event documents "
            f"(salesflow.stores.codec.encode_event)",
            field="OutboxEntry.events",
            value=value,
        )
    docs = tuple(check_payload(doc, field="OutboxEntry.events") for doc in value)
    if not docs or not all(isinstance(doc.get("type"), str) for doc in docs):
        raise ValidationError(
            "OutboxEntry.events must hold at least one event document, each with its "
            "'type' (salesflow.stores.codec.encode_event)",
            field="OutboxEntry.events",
            value=value,
        )
    return docs


@attrs.frozen(kw_only=True)
class OutboxEntry:
    """The events of one committed unit of work, waiting for the sink.

    Attributes:
        id: Unique; the engine takes it from its id factory.
        created_at: When the unit ran (the engine's clock); `Salesflow.deliver_outbox`
            takes the entries older than a grace period, oldest first.
        events: The unit's events, in order, as JSON documents.
    """

    id: str = attrs.field(validator=_entry_id)
    created_at: datetime = attrs.field(validator=_aware)
    events: tuple[dict[str, Any], ...] = attrs.field(converter=_documents)


def check_outbox_claim(before: datetime, limit: int) -> None:
    """Refuse the arguments of `UnitOfWork.claim_outbox` that are not valid."""
    require_aware(before, "before")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise ValidationError(
            f"limit={limit!r} must be a whole number from 1 to 10000", field="limit", value=limit
        )
