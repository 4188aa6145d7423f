"""A record's process state (`FlowState`) to and from a plain JSON-able dict.

The engine keeps each record's place in its process flow as a state document
(`salesflow.definitions.StateDocument`, kind ``process_flow``). The document
(schema 1)::

    {
      "schema": 1, "kind": "process_state",
      "flow_id": "marketing_lead_process", "flow_version": 1,
      "record": {"kind": "lead", "id": "lead-1"},
      "stage": "sales_acceptance",
      "checked": ["sales_ready"],
      "history": [
        {"flow_id": "marketing_lead_process", "from_stage": null, "to_stage": "inquiry",
         "by": "ana", "at": "2026-03-02T09:00:00+00:00", "reason": "started"}
      ],
      "continued_from": null
    }

``checked`` is sorted, so equal states give equal documents. Reading is strict:
unknown keys, missing keys and values of the wrong type raise `ValidationError`
naming the path (``history[2].at``); a newer schema is refused. Round trips are
exact: ``state_from_dict(state_to_dict(s)) == s``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from salesflow.documents import Table, fail
from salesflow.errors import ValidationError
from salesflow.process_state import FlowState, StageChange
from salesflow.values import RecordRef

__all__ = ["STATE_SCHEMA", "state_from_dict", "state_to_dict"]

STATE_SCHEMA = 1
"""The schema number `state_to_dict` writes and the newest `state_from_dict` reads."""

_TOP = (
    "schema",
    "kind",
    "flow_id",
    "flow_version",
    "record",
    "stage",
    "checked",
    "history",
    "continued_from",
)
_CHANGE = ("flow_id", "from_stage", "to_stage", "by", "at", "reason")
_REF = ("kind", "id")


def _ref_to_dict(ref: RecordRef) -> dict[str, Any]:
    return {"kind": ref.kind.value, "id": ref.id}


def state_to_dict(state: FlowState) -> dict[str, Any]:
    """``state`` as a JSON-able document (schema 1); `state_from_dict` reads it back equal."""
    return {
        "schema": STATE_SCHEMA,
        "kind": "process_state",
        "flow_id": state.flow_id,
        "flow_version": state.flow_version,
        "record": _ref_to_dict(state.record),
        "stage": state.stage,
        "checked": sorted(state.checked),
        "history": [
            {
                "flow_id": change.flow_id,
                "from_stage": change.from_stage,
                "to_stage": change.to_stage,
                "by": change.by,
                "at": change.at.isoformat(),
                "reason": change.reason.value,
            }
            for change in state.history
        ],
        "continued_from": (
            None if state.continued_from is None else _ref_to_dict(state.continued_from)
        ),
    }


def _wrap(path: str, exc: ValidationError) -> ValidationError:
    return ValidationError(f"{path or 'the document'}: {exc}", field=exc.field, value=exc.value)


def _ref_from(data: object, path: str) -> RecordRef:
    table = Table(data, path, _REF, required=_REF)
    kind, record_id = table.get("kind", str), table.get("id", str)
    try:
        return RecordRef(kind=kind, id=record_id)
    except ValidationError as exc:
        raise _wrap(path, exc) from None


def _time(text: str, path: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(path, f"expected an ISO 8601 time with a UTC offset, got {text!r}", text)
    if moment.utcoffset() is None:
        fail(path, f"the time {text!r} has no UTC offset; write it as 2026-03-02T09:00:00+00:00")
    return moment


def _change_from(data: object, path: str) -> StageChange:
    table = Table(data, path, _CHANGE, required=("flow_id", "to_stage", "at", "reason"))
    flow_id, to_stage = table.get("flow_id", str), table.get("to_stage", str)
    from_stage, by = table.optional("from_stage", str), table.optional("by", str)
    at = _time(table.get("at", str), table.where("at"))
    reason = table.get("reason", str)
    try:
        return StageChange(
            flow_id=flow_id,
            from_stage=from_stage,
            to_stage=to_stage,
            by=by,
            at=at,
            reason=reason,
        )
    except ValidationError as exc:
        raise _wrap(path, exc) from None


def state_from_dict(data: object) -> FlowState:
    """The state in a document written by `state_to_dict`.

    Raises:
        ValidationError: The document is malformed (the message names the key's
            path), of another kind, or of a newer schema.
    """
    top = Table(data, "", _TOP)
    schema = top.get("schema", int)
    if schema < 1 or schema > STATE_SCHEMA:
        fail(
            "schema",
            f"schema {schema} is not one this salesflow reads (1 to {STATE_SCHEMA}); a newer "
            f"salesflow wrote it: upgrade salesflow",
            schema,
        )
    kind = top.data.get("kind")
    if kind != "process_state":
        fail("kind", f"expected 'process_state', got {kind!r}", kind)
    checked = top.optional("checked", list, [])
    for i, box in enumerate(checked):
        if not isinstance(box, str):
            fail(f"checked[{i}]", f"expected a checkbox id, got {box!r}", box)
    history = [
        _change_from(item, f"history[{i}]")
        for i, item in enumerate(top.optional("history", list, []))
    ]
    raw_from = top.data.get("continued_from")
    continued_from = None if raw_from is None else _ref_from(raw_from, "continued_from")
    flow_id, version = top.get("flow_id", str), top.get("flow_version", int)
    record, stage = _ref_from(top.raw("record"), "record"), top.get("stage", str)
    try:
        return FlowState(
            flow_id=flow_id,
            flow_version=version,
            record=record,
            stage=stage,
            checked=frozenset(checked),
            history=tuple(history),
            continued_from=continued_from,
        )
    except ValidationError as exc:
        raise _wrap("", exc) from None
