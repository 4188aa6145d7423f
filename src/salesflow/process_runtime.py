"""Running a process flow on one record: the state and the pure moves on it.

A `FlowState` says where one record stands in one version of a `ProcessFlow`: its
current stage, the checkboxes ticked and the history of stage changes (who, when,
why). Every move is a pure function taking the flow, the state, who acts (a user id,
or ``None`` for the system) and ``now``, and returning an `Outcome`: the new state
and the events that happened. A refused move raises and changes nothing (the state
is frozen). The engine stores the state and publishes the events.

The state, the events and `Outcome` live in `salesflow.process_state` and are
re-exported here. The moves:

* `start` puts a record on the first stage;
* `next_stage` moves on once every required step of the current stage is complete
  (field steps are read from the record's fields, checkbox steps from the state);
* `previous_stage` moves back to the stage before in the flow's order;
* `jump` moves to a stage the current stage lists in ``jumps_to``; it does not ask
  for the current stage's steps, because the flow's author allowed the shortcut;
* `check` ticks or clears a checkbox of the current stage or of an earlier one;
* `switch_flow` moves the record to another flow of its record type;
* `continue_on` hands the process over to the record the current one became (the
  qualified lead's opportunity), on the next stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import attrs

from salesflow.errors import InvalidTransition, ValidationError
from salesflow.events import Event
from salesflow.process import ProcessFlow, Stage, StageStep, StepKind, require_valid
from salesflow.process_state import (
    ChangeReason,
    FlowState,
    Outcome,
    ProcessContinued,
    ProcessStarted,
    ProcessSwitched,
    StageChange,
    StageChanged,
    StepChecked,
)
from salesflow.values import RecordRef, utc

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
    "check",
    "continue_on",
    "is_set",
    "jump",
    "missing_steps",
    "move",
    "next_stage",
    "previous_stage",
    "start",
    "switch_flow",
]


# --- helpers -------------------------------------------------------------------------


def _check_time(now: object) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValidationError(
            f"now={now!r} must be a timezone-aware datetime; attach a time zone "
            f"(tzinfo=datetime.UTC or a ZoneInfo)",
            field="now",
            value=now,
        )
    return utc(now)  # type: ignore[no-any-return]


def _check_by(by: object) -> str | None:
    if by is not None and (not isinstance(by, str) or not by or by != by.strip()):
        raise ValidationError(
            f"by={by!r} must be a user id, or None for the system",
            field="by",
            value=by,
        )
    return by


def _check_flow(flow: ProcessFlow, state: FlowState) -> Stage:
    """The current stage, after checking ``state`` belongs to ``flow``."""
    if state.flow_id != flow.id or state.flow_version != flow.version:
        raise ValidationError(
            f"the process of {state.record} follows flow {state.flow_id!r} version "
            f"{state.flow_version}, not {flow.id!r} version {flow.version}; pass the flow "
            f"version the record is on (or switch_flow to migrate it)",
            field="flow",
            value=flow.id,
        )
    return flow.stage(state.stage)


def is_set(value: object) -> bool:
    """Whether a field value completes a field step: not ``None``, not blank text, not
    an empty collection. ``False`` and ``0`` count as set (someone chose them)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | set | frozenset | dict):
        return bool(value)
    return True


def missing_steps(
    stage: Stage, state: FlowState, record_fields: Mapping[str, object]
) -> tuple[StageStep, ...]:
    """The required steps of ``stage`` not yet complete, in display order.

    Args:
        stage: The stage to look at.
        state: The process state (for checkboxes).
        record_fields: The record's fields by name, custom fields included.
    """
    return tuple(
        step
        for step in stage.required_steps
        if (step.kind is StepKind.CHECKBOX and step.id not in state.checked)
        or (step.kind is StepKind.FIELD and not is_set(record_fields.get(step.id)))
    )


def _describe(steps: Iterable[StageStep]) -> str:
    parts = []
    for step in steps:
        how = "tick" if step.kind is StepKind.CHECKBOX else f"set the field {step.id!r}"
        parts.append(f"{step.label!r} ({how})")
    return ", ".join(parts)


def _what(flow: ProcessFlow, state: FlowState) -> str:
    return f"the {flow.name!r} process of {state.record}"


def move(
    flow: ProcessFlow,
    state: FlowState,
    to_stage: str,
    *,
    by: str | None,
    now: datetime,
    reason: ChangeReason,
    extra: tuple[Event, ...] = (),
) -> Outcome:
    """Move ``state`` to ``to_stage`` without asking whether the move is allowed.

    The building block of the checked moves and of a flow's own rules (the marketing
    skip); hosts should use `next_stage`, `previous_stage` or `jump`.

    Raises:
        ValidationError: ``to_stage`` is not a stage of ``flow``; ``now`` is naive.
    """
    when, who = _check_time(now), _check_by(by)
    flow.stage(to_stage)
    change = StageChange(
        flow_id=flow.id, from_stage=state.stage, to_stage=to_stage, by=who, at=when, reason=reason
    )
    new = attrs.evolve(state, stage=to_stage, history=(*state.history, change))
    event = StageChanged(
        occurred_at=when,
        flow_id=flow.id,
        flow_version=flow.version,
        record=state.record,
        from_stage=state.stage,
        to_stage=to_stage,
        by=who,
        reason=reason,
    )
    return Outcome(state=new, events=(*extra, event))


# --- the moves -----------------------------------------------------------------------


def start(flow: ProcessFlow, record: RecordRef, *, by: str | None, now: datetime) -> Outcome:
    """Put ``record`` on the first stage of ``flow``.

    Raises:
        InvalidDefinition: ``flow`` is not valid.
        ValidationError: ``record`` is not of the flow's record type; ``now`` is naive.
    """
    when, who = _check_time(now), _check_by(by)
    require_valid(flow)
    if not isinstance(record, RecordRef) or record.kind is not flow.record_type:
        raise ValidationError(
            f"process flow {flow.id!r} runs on {flow.record_type.value} records, not on "
            f"{record}; start a flow of that record type instead",
            field="record",
            value=record,
        )
    first = flow.stages[0].id
    change = StageChange(
        flow_id=flow.id,
        from_stage=None,
        to_stage=first,
        by=who,
        at=when,
        reason=ChangeReason.STARTED,
    )
    state = FlowState(
        flow_id=flow.id, flow_version=flow.version, record=record, stage=first, history=(change,)
    )
    event = ProcessStarted(
        occurred_at=when,
        flow_id=flow.id,
        flow_version=flow.version,
        record=record,
        stage=first,
        by=who,
    )
    return Outcome(state=state, events=(event,))


def next_stage(
    flow: ProcessFlow,
    state: FlowState,
    record_fields: Mapping[str, object],
    *,
    by: str | None,
    now: datetime,
    reason: ChangeReason = ChangeReason.NEXT,
) -> Outcome:
    """Move to the next stage once the current stage's required steps are complete.

    Args:
        flow: The flow version the record is on.
        state: The record's process state.
        record_fields: The record's fields by name (custom fields included), to check
            the field steps.
        by: The user moving it, or ``None`` for the system.
        now: The current time (aware).
        reason: Recorded in the history; rules built on this move pass their own.

    Raises:
        InvalidTransition: The current stage is the last one, the next stage is on
            another record (a hand-over: `continue_on`), or required steps are
            missing (the message names each one).
    """
    current = _check_flow(flow, state)
    position = flow.index(current.id)
    if position + 1 >= len(flow.stages):
        raise InvalidTransition(
            f"{_what(flow, state)} is on its last stage {current.name!r}; there is no next "
            f"stage (move back or jump instead)",
            state=current.id,
            event="next",
        )
    following = flow.stages[position + 1]
    if flow.record_type_of(following) is not state.record.kind:
        raise InvalidTransition(
            f"{_what(flow, state)} cannot move on to {following.name!r} here: that stage is "
            f"on the {flow.record_type_of(following).value} the "
            f"{state.record.kind.value} becomes; it moves there when the "
            f"{state.record.kind.value} is qualified (continue_on)",
            state=current.id,
            event="next",
        )
    missing = missing_steps(current, state, record_fields)
    if missing:
        raise InvalidTransition(
            f"{_what(flow, state)} cannot move on from {current.name!r}: complete the "
            f"required steps {_describe(missing)} first",
            state=current.id,
            event="next",
        )
    return move(flow, state, following.id, by=by, now=now, reason=reason)


def previous_stage(
    flow: ProcessFlow, state: FlowState, *, by: str | None, now: datetime
) -> Outcome:
    """Move back to the stage before the current one in the flow's order.

    Back follows the flow's order, not the path taken: a lead that skipped a stage
    goes back to the skipped stage. Checkboxes stay as they are.

    Raises:
        InvalidTransition: The current stage is the first one, or the stage before is
            on the record this one was handed over from.
    """
    current = _check_flow(flow, state)
    position = flow.index(current.id)
    if position == 0:
        raise InvalidTransition(
            f"{_what(flow, state)} is on its first stage {current.name!r}; there is no "
            f"stage before it",
            state=current.id,
            event="back",
        )
    before = flow.stages[position - 1]
    if flow.record_type_of(before) is not state.record.kind:
        raise InvalidTransition(
            f"{_what(flow, state)} cannot move back to {before.name!r}: that stage is on "
            f"the {flow.record_type_of(before).value} this {state.record.kind.value} came "
            f"from, which is closed; its details stay readable there",
            state=current.id,
            event="back",
        )
    return move(flow, state, before.id, by=by, now=now, reason=ChangeReason.BACK)


def jump(
    flow: ProcessFlow,
    state: FlowState,
    stage_id: str,
    *,
    by: str | None,
    now: datetime,
    reason: ChangeReason = ChangeReason.JUMP,
) -> Outcome:
    """Jump to ``stage_id``, which the current stage must list in ``jumps_to``.

    Raises:
        InvalidTransition: The current stage does not allow that jump (the message
            lists the jumps it allows).
    """
    current = _check_flow(flow, state)
    if stage_id not in current.jumps_to:
        allowed = ", ".join(repr(s) for s in current.jumps_to)
        hint = f"it may jump to {allowed}" if allowed else "it allows no jumps"
        raise InvalidTransition(
            f"{_what(flow, state)} cannot jump from {current.name!r} to {stage_id!r}: "
            f"{hint}; use next or back, or add the jump to the stage's jumps_to",
            state=current.id,
            event="jump",
        )
    return move(flow, state, stage_id, by=by, now=now, reason=reason)


def check(
    flow: ProcessFlow,
    state: FlowState,
    step_id: str,
    value: bool,
    *,
    by: str | None,
    now: datetime,
) -> Outcome:
    """Tick (``value`` True) or clear a checkbox of the current stage or an earlier one.

    Ticking a ticked box (or clearing a clear one) changes nothing and produces no
    event. Checking never moves the stage by itself.

    Raises:
        ValidationError: The flow has no such step; ``value`` is not a bool.
        InvalidTransition: The step is a field (set the record's field instead) or
            belongs to a stage the record has not reached.
    """
    current = _check_flow(flow, state)
    when, who = _check_time(now), _check_by(by)
    if not isinstance(value, bool):
        raise ValidationError(
            f"value={value!r} must be True (tick) or False (clear)", field="value", value=value
        )
    owner, step = flow.step(step_id)
    if step.kind is not StepKind.CHECKBOX:
        raise InvalidTransition(
            f"step {step.label!r} of {_what(flow, state)} is completed by setting the "
            f"record's field {step.id!r}, not by ticking it",
            state=current.id,
            event="check",
        )
    if flow.index(owner.id) > flow.index(current.id):
        raise InvalidTransition(
            f"{_what(flow, state)} cannot tick {step.label!r} yet: it belongs to stage "
            f"{owner.name!r}, which comes after the current stage {current.name!r}; move "
            f"there first",
            state=current.id,
            event="check",
        )
    return _set_checked(flow, state, step_id, value, by=who, now=when)


def _set_checked(
    flow: ProcessFlow, state: FlowState, step_id: str, value: bool, *, by: str | None, now: datetime
) -> Outcome:
    """Tick or clear ``step_id`` without asking where it is (for the flow's own rules)."""
    if (step_id in state.checked) == value:
        return Outcome(state=state)
    checked = state.checked | {step_id} if value else state.checked - {step_id}
    event = StepChecked(
        occurred_at=now, flow_id=flow.id, record=state.record, step_id=step_id, value=value, by=by
    )
    return Outcome(state=attrs.evolve(state, checked=checked), events=(event,))


def switch_flow(
    new_flow: ProcessFlow, state: FlowState, *, by: str | None, now: datetime
) -> Outcome:
    """Move the record to ``new_flow`` (another flow, or another version of its flow).

    The record lands on the stage with the same id as its current stage when
    ``new_flow`` has one on its record type, otherwise on the first stage of its
    record type. The history continues (the change's ``from_stage`` is the stage left
    in the old flow); ticked checkboxes carry over where ``new_flow`` has a checkbox
    of the same id. Field steps need nothing: the fields live on the record.

    Raises:
        InvalidDefinition: ``new_flow`` is not valid.
        InvalidTransition: ``new_flow`` is the flow version the record is on, or has
            no stage on the record's type.
    """
    when, who = _check_time(now), _check_by(by)
    require_valid(new_flow)
    if new_flow.id == state.flow_id and new_flow.version == state.flow_version:
        raise InvalidTransition(
            f"{state.record} already follows flow {new_flow.id!r} version "
            f"{new_flow.version}; choose another flow (or version) to switch to",
            state=state.stage,
            event="switch",
        )
    candidates = [s for s in new_flow.stages if new_flow.record_type_of(s) is state.record.kind]
    if not candidates:
        raise InvalidTransition(
            f"flow {new_flow.id!r} has no stage on {state.record.kind.value} records, so "
            f"{state.record} cannot switch to it; choose a flow for "
            f"{state.record.kind.value} records",
            state=state.stage,
            event="switch",
        )
    same = [s for s in candidates if s.id == state.stage]
    target = (same or candidates)[0]
    checkboxes = {
        step.id for s in new_flow.stages for step in s.steps if step.kind is StepKind.CHECKBOX
    }
    change = StageChange(
        flow_id=new_flow.id,
        from_stage=state.stage,
        to_stage=target.id,
        by=who,
        at=when,
        reason=ChangeReason.SWITCHED,
    )
    new = attrs.evolve(
        state,
        flow_id=new_flow.id,
        flow_version=new_flow.version,
        stage=target.id,
        checked=state.checked & checkboxes,
        history=(*state.history, change),
    )
    events: tuple[Event, ...] = (
        ProcessSwitched(
            occurred_at=when,
            record=state.record,
            from_flow_id=state.flow_id,
            from_flow_version=state.flow_version,
            to_flow_id=new_flow.id,
            to_flow_version=new_flow.version,
            stage=target.id,
            by=who,
        ),
        StageChanged(
            occurred_at=when,
            flow_id=new_flow.id,
            flow_version=new_flow.version,
            record=state.record,
            from_stage=state.stage,
            to_stage=target.id,
            by=who,
            reason=ChangeReason.SWITCHED,
        ),
    )
    return Outcome(state=new, events=events)


def continue_on(
    flow: ProcessFlow,
    state: FlowState,
    new_record: RecordRef,
    *,
    by: str | None,
    now: datetime,
) -> Outcome:
    """Hand the process over to ``new_record`` on the next stage.

    Qualifying a lead closes it and creates an opportunity; the "Lead to opportunity
    sales process" then goes on from Qualify to Develop on that opportunity. The
    state keeps its history and checkboxes, points at ``new_record`` and remembers
    the lead in ``continued_from``. The lead's own steps are not asked for here:
    qualifying the lead is the gate, and the lead lifecycle decides it.

    Raises:
        InvalidTransition: The current stage is not the last of its record type, or
            the next stage is on another record type than ``new_record``'s.
        ValidationError: ``new_record`` is not a `RecordRef`.
    """
    current = _check_flow(flow, state)
    when, who = _check_time(now), _check_by(by)
    if not isinstance(new_record, RecordRef):
        raise ValidationError(
            f"new_record={new_record!r} must be a RecordRef", field="new_record", value=new_record
        )
    position = flow.index(current.id)
    following = flow.stages[position + 1] if position + 1 < len(flow.stages) else None
    if following is None or flow.record_type_of(following) is state.record.kind:
        raise InvalidTransition(
            f"{_what(flow, state)} is on {current.name!r}, which does not hand over to "
            f"another record; only the last {state.record.kind.value} stage does",
            state=current.id,
            event="continue",
        )
    if flow.record_type_of(following) is not new_record.kind:
        raise InvalidTransition(
            f"{_what(flow, state)} goes on to {following.name!r} on a "
            f"{flow.record_type_of(following).value}, not on {new_record}; pass the "
            f"{flow.record_type_of(following).value} created from {state.record}",
            state=current.id,
            event="continue",
        )
    change = StageChange(
        flow_id=flow.id,
        from_stage=current.id,
        to_stage=following.id,
        by=who,
        at=when,
        reason=ChangeReason.CONTINUED,
    )
    new = attrs.evolve(
        state,
        record=new_record,
        stage=following.id,
        history=(*state.history, change),
        continued_from=state.record,
    )
    events: tuple[Event, ...] = (
        ProcessContinued(
            occurred_at=when,
            flow_id=flow.id,
            from_record=state.record,
            to_record=new_record,
            stage=following.id,
            by=who,
        ),
        StageChanged(
            occurred_at=when,
            flow_id=flow.id,
            flow_version=flow.version,
            record=new_record,
            from_stage=current.id,
            to_stage=following.id,
            by=who,
            reason=ChangeReason.CONTINUED,
        ),
    )
    return Outcome(state=new, events=events)
