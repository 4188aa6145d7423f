"""Process flows to and from documents: plain dicts and JSON.

The document format (schema 1) is stable and JSON-able::

    {
      "schema": 1,
      "kind": "process_flow",
      "id": "marketing_lead_process", "version": 1,
      "name": "Lead marketing sales process", "record_type": "lead",
      "description": "...",
      "stages": [
        {"id": "inquiry", "name": "Inquiry",
         "steps": [{"id": "parent_contact_id", "label": "Existing contact",
                    "kind": "field", "required": false}],
         "jumps_to": ["sales_acceptance"]},
        {"id": "develop", "name": "Develop", "record_type": "opportunity", "steps": []}
      ]
    }

Optional keys (``description``, a stage's ``record_type``, ``steps``, ``jumps_to``,
a step's ``required``, default true) may be left out. Reading is strict: unknown
keys, values of the wrong type, missing keys and newer schemas raise
`ValidationError` naming the path of the offending key (``stages[2].steps[0].kind``).
A document need not describe a valid flow (`salesflow.process.validate` says what is
wrong with it), so an invalid flow can be loaded, shown and fixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from salesflow.documents import (
    MAX_DOCUMENT_BYTES,
    Table,
    check_document,
    describe,
    fail,
    parse_json,
)
from salesflow.errors import ValidationError
from salesflow.process import ProcessFlow, Stage, StageStep

__all__ = ["SCHEMA", "dumps_json", "from_dict", "loads_json", "to_dict"]

SCHEMA = 1
"""The schema number `to_dict` writes and the newest `from_dict` reads."""

MAX_TEXT_BYTES = MAX_DOCUMENT_BYTES
"""The largest JSON document `loads_json` reads (UTF-8 bytes)."""

T = TypeVar("T")

_TOP = ("schema", "kind", "id", "version", "name", "record_type", "description", "stages")
_STAGE = ("id", "name", "record_type", "steps", "jumps_to")
_STEP = ("id", "label", "kind", "required")


def to_dict(flow: ProcessFlow) -> dict[str, Any]:
    """``flow`` as a JSON-able document (schema 1); `from_dict` reads it back equal."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": "process_flow",
        "id": flow.id,
        "version": flow.version,
        "name": flow.name,
        "record_type": flow.record_type.value,
    }
    if flow.description is not None:
        doc["description"] = flow.description
    doc["stages"] = [_stage_to_dict(stage) for stage in flow.stages]
    return doc


def _stage_to_dict(stage: Stage) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": stage.id, "name": stage.name}
    if stage.record_type is not None:
        doc["record_type"] = stage.record_type.value
    doc["steps"] = [
        {"id": s.id, "label": s.label, "kind": s.kind.value, "required": s.required}
        for s in stage.steps
    ]
    if stage.jumps_to:
        doc["jumps_to"] = list(stage.jumps_to)
    return doc


def _build(path: str, make: Callable[[], T]) -> T:
    try:
        return make()
    except ValidationError as exc:
        raise ValidationError(
            f"{path or 'the document'}: {exc}", field=exc.field, value=exc.value
        ) from None


def from_dict(data: object) -> ProcessFlow:
    """The flow in a document written by `to_dict` (or by hand).

    Raises:
        ValidationError: The document is malformed (the message names the key's path),
            of another kind, or of a newer schema.
    """
    check_document(data)
    top = Table(data, "", _TOP)
    schema = top.get("schema", int)
    if schema < 1 or schema > SCHEMA:
        fail(
            "schema",
            f"schema {schema} is not one this salesflow reads (1 to {SCHEMA}); a newer "
            f"salesflow wrote it: upgrade salesflow",
            schema,
        )
    kind = top.data.get("kind")
    if kind != "process_flow":
        fail("kind", f"expected 'process_flow', got {describe(kind)}", kind)
    raw_stages = top.get("stages", list)
    stages = [_stage_from_dict(item, f"stages[{i}]") for i, item in enumerate(raw_stages)]
    flow_id, name = top.get("id", str), top.get("name", str)
    version = top.optional("version", int, 1)
    record_type = top.get("record_type", str)
    description = top.optional("description", str)
    return _build(
        "",
        lambda: ProcessFlow(
            id=flow_id,
            version=version,
            name=name,
            record_type=record_type,
            stages=stages,
            description=description,
        ),
    )


def _stage_from_dict(data: object, path: str) -> Stage:
    table = Table(data, path, _STAGE)
    raw_steps = table.optional("steps", list, [])
    steps = [_step_from_dict(item, f"{path}.steps[{i}]") for i, item in enumerate(raw_steps)]
    jumps = table.optional("jumps_to", list, [])
    for i, target in enumerate(jumps):
        if not isinstance(target, str):
            fail(f"{path}.jumps_to[{i}]", f"expected a stage id, got {describe(target)}", target)
    stage_id, name = table.get("id", str), table.get("name", str)
    record_type = table.optional("record_type", str)
    return _build(
        path,
        lambda: Stage(id=stage_id, name=name, steps=steps, jumps_to=jumps, record_type=record_type),
    )


def _step_from_dict(data: object, path: str) -> StageStep:
    table = Table(data, path, _STEP)
    step_id, label = table.get("id", str), table.get("label", str)
    kind = table.get("kind", str)
    required = table.optional("required", bool, True)
    return _build(path, lambda: StageStep(id=step_id, label=label, kind=kind, required=required))


def dumps_json(flow: ProcessFlow) -> str:
    """``flow`` as a JSON document (keys in a stable order, two-space indent)."""
    return json.dumps(to_dict(flow), indent=2, ensure_ascii=False) + "\n"


def loads_json(text: str | bytes) -> ProcessFlow:
    """The flow in a JSON document, at most `MAX_TEXT_BYTES` long.

    Raises:
        ValidationError: The text is not JSON, too large, or not a valid document.
    """
    return from_dict(parse_json(text))
