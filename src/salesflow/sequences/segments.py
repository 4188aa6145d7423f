"""Segments: a saved condition whose matching records are connected to a sequence
automatically, at the moment they start matching.

A `Segment` is a versioned definition like a sequence (stored with kind
``segment``). The engine evaluates the active segments of a record's type on every
record a unit of work writes, just before it commits: a record that matches now
and did not match before the unit (or is new) is connected to the segment's
sequence, unless it is closed or already on that sequence. A record that keeps
matching is not connected again when it is edited; one that stops and starts
matching again is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Not
from salesflow.errors import ValidationError
from salesflow.sequences.io import condition_from_dict, condition_to_dict
from salesflow.values import RecordKind, to_enum

__all__ = ["SEGMENT", "SEGMENT_RECORD_TYPES", "Segment", "segment_from_dict", "segment_to_dict"]

SEGMENT = "segment"
"""The definition kind of segments in the store."""

SEGMENT_RECORD_TYPES = frozenset(
    {RecordKind.LEAD, RecordKind.CONTACT, RecordKind.ACCOUNT, RecordKind.OPPORTUNITY}
)
"""The record types a segment (like a sequence) can select."""


def _record_type(value: object) -> RecordKind:
    kind: RecordKind = to_enum(RecordKind, value, "Segment.record_type", optional=False)
    if kind not in SEGMENT_RECORD_TYPES:
        raise ValidationError(
            f"Segment.record_type={kind.value!r}: segments select leads, contacts, accounts "
            f"or opportunities",
            field="Segment.record_type",
            value=value,
        )
    return kind


def _identifier(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValidationError(
            f"Segment.{attribute.name}={value!r} must be a non-empty string of at most 200 "
            f"characters",
            field=f"Segment.{attribute.name}",
            value=value,
        )


def _condition(_: Any, __: Any, value: Any) -> None:
    if not isinstance(value, Compare | AllOf | AnyOf | Not):
        raise ValidationError(
            f"Segment.where={value!r} must be a condition (salesflow.conditions: field(...)"
            f".eq(...), all_of, any_of, not_)",
            field="Segment.where",
            value=value,
        )


@attrs.frozen(kw_only=True)
class Segment:
    """Records of ``record_type`` matching ``where`` go on ``sequence_id``.

    Attributes:
        id: The segment's id.
        record_type: Leads, contacts, accounts or opportunities.
        where: The condition (the shared predicate language; the same fields as
            views and queries, ``custom.<name>`` for custom fields).
        sequence_id: The sequence matching records are connected to (its latest
            active version at that moment).
        version: Set when published.
    """

    id: str = attrs.field(validator=_identifier)
    record_type: RecordKind = attrs.field(converter=_record_type)
    where: Condition = attrs.field(validator=_condition)
    sequence_id: str = attrs.field(validator=_identifier)
    version: int = 1


def segment_to_dict(segment: Segment) -> dict[str, Any]:
    """The segment as JSON values (stored in the definition envelope)."""
    return {
        "id": segment.id,
        "version": segment.version,
        "record_type": segment.record_type.value,
        "where": condition_to_dict(segment.where),
        "sequence_id": segment.sequence_id,
    }


def segment_from_dict(data: Mapping[str, Any]) -> Segment:
    """The segment of a document written by `segment_to_dict`.

    Raises:
        ValidationError: the document is malformed.
    """
    try:
        return Segment(
            id=data["id"],
            version=data["version"],
            record_type=data["record_type"],
            where=condition_from_dict(data["where"]),
            sequence_id=data["sequence_id"],
        )
    except KeyError as exc:
        raise ValidationError(
            f"segment document lacks {exc.args[0]!r}", field="segment", value=dict(data)
        ) from exc
