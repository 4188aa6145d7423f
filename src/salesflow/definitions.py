"""`StoredDefinition`: one published version of a definition, as every store keeps it;
and `StateDocument`: a piece of the engine's running state, kept the same way.

Sequences, segments (and later scoring models, routing policies, automation rules)
are immutable, versioned definitions (DESIGN §1.3). The stores keep each published
version as a JSON document in this envelope; each kind turns its document into its
own definition class (e.g. `salesflow.sequences.io.from_dict`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from salesflow.clock import require_aware
from salesflow.errors import ValidationError

__all__ = ["ACTIVE", "INACTIVE", "StateDocument", "StoredDefinition"]

ACTIVE = "active"
"""The state of a definition that is in use (records may be connected to it)."""

INACTIVE = "inactive"
"""The state of a definition that is kept but no longer used."""


def _aware(value: Any) -> datetime:
    return require_aware(value, "StoredDefinition.published_at")


def _json_document(_: Any, __: Any, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError(
            f"StoredDefinition.document must be a dict of JSON values, not {type(value).__name__}",
            field="StoredDefinition.document",
            value=value,
        )


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"StoredDefinition.{attribute.name}={value!r} must be a whole number >= 1",
            field=f"StoredDefinition.{attribute.name}",
            value=value,
        )


def _name_text(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ValidationError(
            f"StoredDefinition.{attribute.name}={value!r} must be a non-empty string of at "
            f"most 200 characters",
            field=f"StoredDefinition.{attribute.name}",
            value=value,
        )


@attrs.frozen(kw_only=True)
class StoredDefinition:
    """One published version of a definition (a sequence, a segment, …) as the store
    keeps it: the definition's own document plus its state.

    Versions are immutable once stored; only ``state`` changes (``active`` or
    ``inactive``), and the engine changes it on the latest version only.

    Attributes:
        kind: What it defines: ``sequence``, ``segment``, ….
        id: The definition's id (the same for all its versions).
        version: 1, 2, … in publication order.
        state: ``active`` or ``inactive``.
        document: The definition as JSON values (its kind's own format, e.g.
            `salesflow.sequences.io.to_dict`).
        published_at: When this version was published (aware).
    """

    kind: str = attrs.field(validator=_name_text)
    id: str = attrs.field(validator=_name_text)
    version: int = attrs.field(validator=_positive)
    state: str = attrs.field(validator=_name_text)
    document: dict[str, Any] = attrs.field(validator=_json_document, hash=False)
    published_at: datetime = attrs.field(converter=_aware)


def _key(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value or len(value) > 400:
        raise ValidationError(
            f"StateDocument.{attribute.name}={value!r} must be a non-empty string of at most "
            f"400 characters",
            field=f"StateDocument.{attribute.name}",
            value=value,
        )


def _state_aware(value: Any) -> datetime:
    # kept in UTC, as every store returns it
    return require_aware(value, "StateDocument.updated_at").astimezone(UTC)


@attrs.frozen(kw_only=True)
class StateDocument:
    """A piece of the engine's running state kept as one JSON document, such as a
    record's place in a process flow or a team's round-robin pointer.

    Each change is checked against the version it was read at (optimistic
    concurrency), so two workers changing the same state never lose an update.

    Attributes:
        kind: What sort of state (``process_flow``, ``routing``, …).
        key: Which one (a record reference, a policy id, …).
        version: 1 when first stored, one higher with every change.
        document: The state as JSON values.
        updated_at: When it was last changed (aware).
    """

    kind: str = attrs.field(validator=_key)
    key: str = attrs.field(validator=_key)
    version: int = attrs.field(validator=_positive)
    document: dict[str, Any] = attrs.field(validator=_json_document, hash=False)
    updated_at: datetime = attrs.field(converter=_state_aware)
