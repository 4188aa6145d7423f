"""The state of a process flow on one record, and the events its moves produce.

`FlowState` says where one record stands in one version of a `ProcessFlow`; its
history is a tuple of `StageChange` s. The moves in `salesflow.process_runtime` and
`salesflow.process_standard` return an `Outcome`: the new state, the events (frozen
facts deriving from `salesflow.events.Event`) and, for sales acceptance, the seller
the engine must assign.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

from salesflow.errors import ValidationError
from salesflow.events import Event
from salesflow.values import RecordRef, aware, optional_identifier, to_enum, utc

__all__ = [
    "ChangeReason",
    "FlowState",
    "Outcome",
    "ProcessContinued",
    "ProcessStarted",
    "ProcessSwitched",
    "StageChange",
    "StageChanged",
    "StepChecked",
]


class ChangeReason(StrEnum):
    """Why a record's stage changed; the ``reason`` of a `StageChange`."""

    STARTED = "started"
    NEXT = "next"
    BACK = "back"
    JUMP = "jump"
    SWITCHED = "switched"
    CONTINUED = "continued"
    FIRST_SCORE = "first_score"
    """The marketing process: a lead got its first score."""
    SALES_READY = "sales_ready"
    """The marketing process: a lead became sales-ready and skipped teleprospecting."""
    GATE = "gate"
    """The marketing process: ticking a stage's gate checkbox moved the lead on."""


def _reason(value: object) -> ChangeReason:
    reason: ChangeReason = to_enum(ChangeReason, value, "StageChange.reason", optional=False)
    return reason


def _record_ref(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, RecordRef):
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be a RecordRef "
            f"(RecordRef(kind='lead', id='...'))",
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
        )


def _optional_record_ref(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _record_ref(instance, attribute, value)


def _ids(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(
            f"FlowState.checked={value!r} must be a collection of checkbox ids",
            field="FlowState.checked",
            value=value,
        )
    items = frozenset(value)
    if not all(isinstance(item, str) for item in items):
        raise ValidationError(
            f"FlowState.checked={value!r} must hold checkbox ids (text)",
            field="FlowState.checked",
            value=value,
        )
    return items


@attrs.frozen(kw_only=True)
class StageChange:
    """One entry of a process's history.

    Attributes:
        flow_id: The flow the record is in after the change.
        from_stage: The stage left (in the previous flow, for a switch), or ``None``
            for the start.
        to_stage: The stage entered.
        by: The user who moved it, or ``None`` for the system (automatic rules).
        at: When (UTC).
        reason: Why (`ChangeReason`).
    """

    flow_id: str
    from_stage: str | None
    to_stage: str
    by: str | None = attrs.field(validator=optional_identifier)
    at: datetime = attrs.field(converter=utc, validator=aware)
    reason: ChangeReason = attrs.field(converter=_reason)


@attrs.frozen(kw_only=True)
class FlowState:
    """Where one record stands in one version of a flow.

    Attributes:
        flow_id: The flow followed.
        flow_version: Its version; a record stays on it until switched or migrated.
        record: The record the process is on now.
        stage: The current stage's id.
        checked: The ids of the ticked checkboxes.
        history: Every stage change, oldest first; the first is the start, and each
            change leaves the stage the one before it entered.
        continued_from: The record the process was handed over from (the qualified
            lead of a lead-to-opportunity process), whose stages stay readable.
    """

    flow_id: str
    flow_version: int
    record: RecordRef = attrs.field(validator=_record_ref)
    stage: str
    checked: frozenset[str] = attrs.field(default=frozenset(), converter=_ids)
    history: tuple[StageChange, ...] = ()
    continued_from: RecordRef | None = attrs.field(default=None, validator=_optional_record_ref)

    @property
    def visited(self) -> frozenset[str]:
        """The stages of the current flow the record has been on."""
        return frozenset(c.to_stage for c in self.history if c.flow_id == self.flow_id)


@attrs.frozen(kw_only=True)
class Outcome:
    """What a move produced.

    Attributes:
        state: The new state (the same object when nothing changed).
        events: What happened, in order; empty when nothing changed.
        assign_to: A seller the engine must assign the record to (marketing sales
            acceptance), else ``None``.
    """

    state: FlowState
    events: tuple[Event, ...] = ()
    assign_to: str | None = None

    @property
    def changed(self) -> bool:
        """True when the move changed anything."""
        return bool(self.events)


# --- events --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ProcessStarted(Event):
    """A record started a process flow on its first stage."""

    flow_id: str
    flow_version: int
    record: RecordRef
    stage: str
    by: str | None


@attrs.frozen(kw_only=True)
class StageChanged(Event):
    """A record's process moved from one stage to another."""

    flow_id: str
    flow_version: int
    record: RecordRef
    from_stage: str | None
    to_stage: str
    by: str | None
    reason: ChangeReason


@attrs.frozen(kw_only=True)
class StepChecked(Event):
    """A checkbox of a record's process was ticked (``value`` True) or cleared."""

    flow_id: str
    record: RecordRef
    step_id: str
    value: bool
    by: str | None


@attrs.frozen(kw_only=True)
class ProcessSwitched(Event):
    """A record left one flow for another of its record type."""

    record: RecordRef
    from_flow_id: str
    from_flow_version: int
    to_flow_id: str
    to_flow_version: int
    stage: str
    by: str | None


@attrs.frozen(kw_only=True)
class ProcessContinued(Event):
    """A process was handed over from one record to the record it became."""

    flow_id: str
    from_record: RecordRef
    to_record: RecordRef
    stage: str
    by: str | None
