"""Sequence definitions to and from documents: plain dicts, JSON and TOML.

The document format (schema 1) is stable and JSON-able::

    {
      "schema": 1,
      "kind": "sequence",
      "id": "no-show", "version": 1, "name": "No-show follow-up",
      "record_type": "contact", "entry": "email-1",
      "description": "...", "exit_on_reply": false, "skip_non_working_time": false,
      "steps": [
        {"kind": "email", "id": "email-1", "subject": "...", "next": "replied-1"},
        {"kind": "condition", "id": "replied-1",
         "watch": {"kind": "email", "events": ["replied"], "match": "any"},
         "within": {"days": 1, "hours": 0}, "advance_early": false,
         "yes": "call-1", "no": "call-2"},
        {"kind": "wait", "id": "wait-1", "span": {"days": 2, "hours": 0}, "next": "..."},
        {"kind": "end", "id": "done", "outcome": "meeting_booked"}
      ]
    }

Steps are a list of tables told apart by ``"kind"``:

- ``email``, ``auto_email``, ``call``, ``task``, ``linkedin``, ``sms``, ``auto_sms``:
  ``id``, ``subject``, optional ``description``, ``template``, ``linkedin_action``
  (``research``, ``connect``, ``get_introduced``, ``inmail``) and ``next``;
- ``wait``: ``id``, ``span``, ``next``;
- ``condition``: ``id``, ``watch``, ``within`` (a span), ``advance_early``, optional
  ``watches`` and ``description``, ``yes``, ``no``;
- ``update_field``: ``id``, ``field``, ``value``, ``next``;
- ``set_status``: ``id``, ``status``, optional ``reason``, ``next``;
- ``advance_to_sequence``: ``id``, ``sequence_id``;
- ``ab_test``: ``id``, ``variant_a``, ``variant_b``, ``split_percent``, ``metric``,
  ``deadline`` (a span), ``default_variant``, ``next``;
- ``end``: ``id``, ``outcome``.

A span is ``{"days": D, "hours": H}`` (each defaults to 0). A watch is
``{"kind": "email", "events": [...], "match": "any"|"all"}``,
``{"kind": "call", "outcomes": [...]}`` (no ``outcomes``: the outcomes that count as
answered), ``{"kind": "field", "condition": C}`` or ``{"kind": "stage", "stage": S}``.
A field condition ``C`` is ``{"field": F, "op": O, "value": V}`` (no ``value`` for
``is_null``/``not_null``; a list for ``in``/``not_in``), ``{"all": [C, ...]}``,
``{"any": [C, ...]}`` or ``{"not": C}``, nested at most 20 deep. Values are text,
whole numbers, numbers, booleans or null; decimals, dates and datetimes are tagged as
in the record codec: ``{"$decimal": "1.50"}``, ``{"$date": "2026-01-05"}``,
``{"$datetime": "2026-01-05T09:00:00.000000+00:00"}``.

Optional keys whose value is ``None`` are left out (TOML has no null), and a missing
optional key reads as its default. Reading is strict: unknown keys, unknown kinds,
values of the wrong type, missing keys, documents over 1 MB, over 500 steps or with
conditions nested deeper than 20 raise `ValidationError` naming the path of the
offending key (``steps[3].span.days``). A document of a newer schema is refused;
older schemas are upgraded by the migrations in ``_MIGRATIONS`` before reading.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Not
from salesflow.documents import (
    MAX_DOCUMENT_BYTES,
    Table,
    check_document,
    describe,
    fail,
    join,
    parse_json,
    parse_toml,
)
from salesflow.errors import ValidationError
from salesflow.sequences.definition import (
    ACTIVITY_KINDS,
    ABTestStep,
    ActivityStep,
    AdvanceStep,
    CallWatch,
    ConditionStep,
    EmailWatch,
    EndStep,
    FieldWatch,
    SequenceDefinition,
    SetStatusStep,
    Span,
    StageWatch,
    Step,
    StepKind,
    UpdateFieldStep,
    WaitStep,
    Watch,
)
from salesflow.stores.codec import Migration, decode_custom_value, encode_custom_value
from salesflow.values import CustomValue

__all__ = [
    "MAX_CONDITION_DEPTH",
    "MAX_STEPS",
    "MAX_TEXT_BYTES",
    "SCHEMA",
    "condition_from_dict",
    "condition_to_dict",
    "dumps_json",
    "dumps_toml",
    "from_dict",
    "loads_json",
    "loads_toml",
    "to_dict",
]

SCHEMA = 1
"""The schema number this version writes."""

MAX_TEXT_BYTES = MAX_DOCUMENT_BYTES
"""The largest JSON or TOML document read (UTF-8 bytes; `check_document` bounds a dict
given to `from_dict` likewise)."""

MAX_STEPS = 500
"""The most steps a document may hold."""

MAX_CONDITION_DEPTH = 20
"""The deepest nesting of all / any / not in a field condition."""

_MIGRATIONS: dict[int, Migration] = {}
"""``_MIGRATIONS[n]`` turns a schema-``n`` document into schema ``n + 1``."""

T = TypeVar("T")
Document = dict[str, Any]

_TAGS = ("$decimal", "$date", "$datetime")
_TOP_KEYS = (
    "schema",
    "kind",
    "id",
    "version",
    "name",
    "record_type",
    "entry",
    "description",
    "exit_on_reply",
    "skip_non_working_time",
    "steps",
)
_ACTIVITY_KEYS = ("kind", "id", "subject", "description", "template", "linkedin_action", "next")
_STEP_KEYS: dict[str, tuple[str, ...]] = {
    **{kind.value: _ACTIVITY_KEYS for kind in sorted(ACTIVITY_KINDS)},
    StepKind.WAIT.value: ("kind", "id", "span", "next"),
    StepKind.CONDITION.value: (
        "kind",
        "id",
        "watch",
        "within",
        "advance_early",
        "watches",
        "yes",
        "no",
        "description",
    ),
    StepKind.UPDATE_FIELD.value: ("kind", "id", "field", "value", "next"),
    StepKind.SET_STATUS.value: ("kind", "id", "status", "reason", "next"),
    StepKind.ADVANCE_TO_SEQUENCE.value: ("kind", "id", "sequence_id"),
    StepKind.AB_TEST.value: (
        "kind",
        "id",
        "variant_a",
        "variant_b",
        "split_percent",
        "metric",
        "deadline",
        "default_variant",
        "next",
    ),
    StepKind.END.value: ("kind", "id", "outcome"),
}
_WATCH_KEYS: dict[str, tuple[str, ...]] = {
    "email": ("kind", "events", "match"),
    "call": ("kind", "outcomes"),
    "field": ("kind", "condition"),
    "stage": ("kind", "stage"),
}


# --- writing ---------------------------------------------------------------------------


def to_dict(definition: SequenceDefinition) -> Document:
    """The definition as a schema-1 document of plain JSON-able values.

    Args:
        definition: The sequence to write.

    Returns:
        A new dict; optional values that are ``None`` are left out.

    Raises:
        ValidationError: a value cannot be written (a naive datetime, an unknown value
            type, a field condition nested deeper than `MAX_CONDITION_DEPTH`).
    """
    doc: Document = {
        "schema": SCHEMA,
        "kind": "sequence",
        "id": definition.id,
        "version": definition.version,
        "name": definition.name,
        "record_type": definition.record_type.value,
        "entry": definition.entry,
        "description": definition.description,
        "exit_on_reply": definition.exit_on_reply,
        "skip_non_working_time": definition.skip_non_working_time,
        "steps": [_step_to_dict(step, f"steps[{i}]") for i, step in enumerate(definition.steps)],
    }
    return _compact(doc)


def _compact(doc: Document) -> Document:
    return {key: value for key, value in doc.items() if value is not None}


def _span_to_dict(span: Span) -> Document:
    return {"days": span.days, "hours": span.hours}


def _step_to_dict(step: Step, path: str) -> Document:
    doc: Document
    if isinstance(step, ActivityStep):
        doc = {
            "kind": step.kind.value,
            "id": step.id,
            "subject": step.subject,
            "description": step.description,
            "template": step.template,
            "linkedin_action": step.linkedin_action.value if step.linkedin_action else None,
            "next": step.next,
        }
    elif isinstance(step, WaitStep):
        doc = {"kind": "wait", "id": step.id, "span": _span_to_dict(step.span), "next": step.next}
    elif isinstance(step, ConditionStep):
        doc = {
            "kind": "condition",
            "id": step.id,
            "watch": _watch_to_dict(step.watch, f"{path}.watch"),
            "within": _span_to_dict(step.within),
            "advance_early": step.advance_early,
            "watches": step.watches,
            "yes": step.yes,
            "no": step.no,
            "description": step.description,
        }
    elif isinstance(step, UpdateFieldStep):
        doc = {
            "kind": "update_field",
            "id": step.id,
            "field": step.field,
            "value": _value_to_json(step.value, f"{path}.value"),
            "next": step.next,
        }
    elif isinstance(step, SetStatusStep):
        doc = {
            "kind": "set_status",
            "id": step.id,
            "status": step.status,
            "reason": step.reason,
            "next": step.next,
        }
    elif isinstance(step, AdvanceStep):
        doc = {"kind": "advance_to_sequence", "id": step.id, "sequence_id": step.sequence_id}
    elif isinstance(step, ABTestStep):
        doc = {
            "kind": "ab_test",
            "id": step.id,
            "variant_a": step.variant_a,
            "variant_b": step.variant_b,
            "split_percent": step.split_percent,
            "metric": step.metric.value,
            "deadline": _span_to_dict(step.deadline),
            "default_variant": step.default_variant,
            "next": step.next,
        }
    else:
        doc = {"kind": "end", "id": step.id, "outcome": step.outcome}
    return _compact(doc)


def _watch_to_dict(watch: Watch, path: str) -> Document:
    if isinstance(watch, EmailWatch):
        return {
            "kind": "email",
            "events": [event.value for event in watch.events],
            "match": watch.match.value,
        }
    if isinstance(watch, CallWatch):
        return _compact(
            {"kind": "call", "outcomes": None if watch.outcomes is None else list(watch.outcomes)}
        )
    if isinstance(watch, FieldWatch):
        return {"kind": "field", "condition": _condition_to_dict(watch.condition, path, 1)}
    return {"kind": "stage", "stage": watch.stage}


def _condition_to_dict(condition: Condition, path: str, depth: int) -> Document:
    where = f"{path}.condition"
    if depth > MAX_CONDITION_DEPTH:
        fail(where, f"field conditions may be nested at most {MAX_CONDITION_DEPTH} deep")
    if isinstance(condition, AllOf | AnyOf):
        key = "all" if isinstance(condition, AllOf) else "any"
        return {
            key: [
                _condition_to_dict(c, f"{where}.{key}[{i}]", depth + 1)
                for i, c in enumerate(condition.conditions)
            ]
        }
    if isinstance(condition, Not):
        return {"not": _condition_to_dict(condition.condition, f"{where}.not", depth + 1)}
    doc: Document = {"field": condition.field, "op": condition.op.value}
    if isinstance(condition.value, tuple):
        doc["value"] = [
            _value_to_json(v, f"{where}.value[{i}]") for i, v in enumerate(condition.value)
        ]
    elif condition.value is not None:
        doc["value"] = _value_to_json(condition.value, f"{where}.value")
    return doc


def _value_to_json(value: object, path: str) -> Any:
    if value is None or isinstance(value, str | bool | int | float | Decimal | date):
        if isinstance(value, datetime) and value.utcoffset() is None:
            fail(path, f"the datetime {value!r} has no time zone; give it one")
        return encode_custom_value(value)
    fail(path, f"{value!r} cannot be written; use text, a number, a boolean, a date or null")


def condition_to_dict(condition: Condition) -> Document:
    """A field condition (the shared predicate language) as JSON values: the format
    field watches use (``{"field", "op", "value"}``, ``{"all": [...]}``,
    ``{"any": [...]}``, ``{"not": ...}``).

    Raises:
        ValidationError: it nests too deeply or holds a value JSON cannot carry.
    """
    return _condition_to_dict(condition, "condition", 1)


def condition_from_dict(data: object) -> Condition:
    """The condition of a document written by `condition_to_dict`.

    Raises:
        ValidationError: the document is malformed (the message names where).
    """
    check_document(data)
    return _condition_from_dict(data, "condition", 1)


def dumps_json(definition: SequenceDefinition) -> str:
    """The definition as an indented JSON document (see the module docstring).

    Args:
        definition: The sequence to write.

    Returns:
        JSON text ending in a newline.

    Raises:
        ValidationError: as `to_dict`.
    """
    return json.dumps(to_dict(definition), ensure_ascii=False, indent=2) + "\n"


def dumps_toml(definition: SequenceDefinition) -> str:
    """The definition as a TOML document: top-level keys, then one ``[[steps]]``
    table per step with spans, watches and conditions as inline tables.

    Args:
        definition: The sequence to write.

    Returns:
        TOML text ending in a newline, readable by `loads_toml`.

    Raises:
        ValidationError: as `to_dict`, or a value TOML cannot hold (a null inside a
            list, text with an unpaired surrogate).
    """
    doc = to_dict(definition)
    lines = [
        f"{_toml_key(key)} = {_toml_value(value, key)}"
        for key, value in doc.items()
        if key != "steps"
    ]
    for i, step in enumerate(doc["steps"]):
        lines += ["", "[[steps]]"]
        lines += [
            f"{_toml_key(key)} = {_toml_value(value, f'steps[{i}].{key}')}"
            for key, value in step.items()
        ]
    return "\n".join(lines) + "\n"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f"}
_TOML_ESCAPES["\r"] = "\\r"


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key, key)


def _toml_string(text: str, path: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            fail(path, "text with an unpaired surrogate cannot be written as TOML")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _toml_value(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value, path)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v, f"{path}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        items = ", ".join(
            f"{_toml_key(k)} = {_toml_value(v, f'{path}.{k}')}" for k, v in value.items()
        )
        return "{ " + items + " }" if items else "{}"
    fail(path, f"{value!r} cannot be written as TOML (TOML has no null)")


# --- reading ---------------------------------------------------------------------------


def _span(table: Table, key: str, default: Span) -> Span:
    """An optional span ``{"days", "hours"}`` (``default`` when missing)."""
    if key not in table.data:
        return default
    spans = Table(table.data[key], table.where(key), ("days", "hours"))
    days, hours = spans.integer("days", 0), spans.integer("hours", 0)
    return _build(spans.path, lambda: Span(days=days, hours=hours))


def _build(path: str, make: Callable[[], T], *, attribute_paths: bool = True) -> T:
    """Build a definition object, re-raising its own refusals with the document path."""
    try:
        return make()
    except ValidationError as exc:
        where = path
        if attribute_paths and exc.field and "." in exc.field:
            where = join(path, exc.field.rsplit(".", 1)[1])
        raise ValidationError(f"{where}: {exc}", field=where, value=exc.value) from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ValidationError(f"{path}: {exc}", field=path) from exc


def from_dict(data: Mapping[str, Any]) -> SequenceDefinition:
    """The definition a document describes (upgrading older schemas first).

    Args:
        data: A document as written by `to_dict` (or parsed from JSON or TOML).

    Returns:
        The sequence definition.

    Raises:
        ValidationError: the document is malformed (the message starts with the path
            of the offending key), too large, or of a newer schema than this version
            reads.
    """
    if not isinstance(data, Mapping):
        fail("", f"expected a table of keys, got {describe(data)}", data)
    check_document(data)
    doc = _migrate(dict(data))
    top = Table(doc, "", _TOP_KEYS)
    if top.raw("kind") != "sequence":
        fail("kind", f"expected 'sequence', got {describe(doc['kind'])}", doc["kind"])
    raw_steps = top.items("steps")
    if len(raw_steps) > MAX_STEPS:
        fail("steps", f"{len(raw_steps)} steps; a sequence may have at most {MAX_STEPS}")
    steps = [_step_from_dict(item, f"steps[{i}]") for i, item in enumerate(raw_steps)]
    seq_id, version, name = top.text("id"), top.integer("version", 1), top.text("name")
    record_type, entry = top.text("record_type"), top.text("entry")
    description = top.optional_text("description")
    exit_on_reply = top.flag("exit_on_reply", False)
    skip_non_working_time = top.flag("skip_non_working_time", False)
    return _build(
        "",
        lambda: SequenceDefinition(
            id=seq_id,
            version=version,
            name=name,
            record_type=record_type,
            entry=entry,
            steps=steps,
            description=description,
            exit_on_reply=exit_on_reply,
            skip_non_working_time=skip_non_working_time,
        ),
    )


def _migrate(doc: Document) -> Document:
    if "schema" not in doc:
        fail("schema", "the key 'schema' is missing; sequence documents carry 'schema': 1")
    schema = doc["schema"]
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        fail("schema", f"expected a schema number >= 1, got {describe(schema)}", schema)
    if schema > SCHEMA:
        fail(
            "schema",
            f"this document has schema {schema}, written by a newer salesflow; this "
            f"version reads sequence schemas up to {SCHEMA}: upgrade salesflow to read it",
            schema,
        )
    while schema < SCHEMA:
        doc = _MIGRATIONS[schema](doc)
        schema += 1
        doc["schema"] = schema
    return doc


def _step_from_dict(data: object, path: str) -> Step:
    if not isinstance(data, Mapping):
        fail(path, f"expected a step table, got {describe(data)}", data)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _STEP_KEYS:
        fail(
            join(path, "kind"),
            f"unknown step kind {describe(kind)}; expected one of {', '.join(_STEP_KEYS)}",
            kind,
        )
    table = Table(data, path, _STEP_KEYS[kind])
    step_id = table.text("id")
    if kind in ACTIVITY_KINDS:
        subject = table.text("subject")
        description = table.optional_text("description")
        template = table.optional_text("template")
        action = table.optional_text("linkedin_action")
        follows = table.optional_text("next")
        return _build(
            path,
            lambda: ActivityStep(
                id=step_id,
                kind=kind,
                subject=subject,
                description=description,
                template=template,
                linkedin_action=action,
                next=follows,
            ),
        )
    if kind == "wait":
        table.raw("span")
        span = _span(table, "span", Span())
        follows = table.optional_text("next")
        return _build(path, lambda: WaitStep(id=step_id, span=span, next=follows))
    if kind == "condition":
        return _condition_step(table, step_id)
    if kind == "update_field":
        field_name = table.text("field")
        value = _value_from_json(data.get("value"), table.where("value"))
        follows = table.optional_text("next")
        return _build(
            path, lambda: UpdateFieldStep(id=step_id, field=field_name, value=value, next=follows)
        )
    if kind == "set_status":
        status, reason = table.text("status"), table.optional_text("reason")
        follows = table.optional_text("next")
        return _build(
            path, lambda: SetStatusStep(id=step_id, status=status, reason=reason, next=follows)
        )
    if kind == "advance_to_sequence":
        target = table.text("sequence_id")
        return _build(path, lambda: AdvanceStep(id=step_id, sequence_id=target))
    if kind == "ab_test":
        return _ab_test_step(table, step_id)
    outcome = table.text("outcome")
    return _build(path, lambda: EndStep(id=step_id, outcome=outcome))


def _condition_step(table: Table, step_id: str) -> ConditionStep:
    watch = _watch_from_dict(table.raw("watch"), table.where("watch"))
    within = _span(table, "within", Span())
    advance_early = table.flag("advance_early", False)
    watches = table.optional_text("watches")
    yes, no = table.text("yes"), table.text("no")
    description = table.optional_text("description")
    return _build(
        table.path,
        lambda: ConditionStep(
            id=step_id,
            watch=watch,
            within=within,
            advance_early=advance_early,
            watches=watches,
            yes=yes,
            no=no,
            description=description,
        ),
    )


def _ab_test_step(table: Table, step_id: str) -> ABTestStep:
    variant_a, variant_b = table.text("variant_a"), table.text("variant_b")
    split = table.integer("split_percent", 50)
    metric = table.optional_text("metric") or "replies"
    deadline = _span(table, "deadline", Span(days=7))
    default = table.optional_text("default_variant") or "a"
    follows = table.optional_text("next")
    return _build(
        table.path,
        lambda: ABTestStep(
            id=step_id,
            variant_a=variant_a,
            variant_b=variant_b,
            split_percent=split,
            metric=metric,
            deadline=deadline,
            default_variant=default,
            next=follows,
        ),
    )


def _watch_from_dict(data: object, path: str) -> Watch:
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(kind, str) or kind not in _WATCH_KEYS:
        fail(
            join(path, "kind"),
            f"unknown watch kind {describe(kind)}; expected one of {', '.join(_WATCH_KEYS)}",
            kind,
        )
    table = Table(data, path, _WATCH_KEYS[kind])
    if kind == "email":
        events = [
            _text(item, f"{table.where('events')}[{i}]")
            for i, item in enumerate(table.items("events"))
        ]
        match = table.optional_text("match") or "any"
        return _build(path, lambda: EmailWatch(events=events, match=match))
    if kind == "call":
        outcomes = None
        if table.data.get("outcomes") is not None:
            outcomes = [
                _text(item, f"{table.where('outcomes')}[{i}]")
                for i, item in enumerate(table.items("outcomes"))
            ]
        return _build(path, lambda: CallWatch(outcomes=outcomes))
    if kind == "field":
        condition = _condition_from_dict(table.raw("condition"), table.where("condition"), 1)
        return FieldWatch(condition=condition)
    stage = table.text("stage")
    return _build(path, lambda: StageWatch(stage=stage))


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        fail(path, f"expected text, got {describe(value)}", value)
    return value


def _condition_from_dict(data: object, path: str, depth: int) -> Condition:
    if depth > MAX_CONDITION_DEPTH:
        fail(path, f"field conditions may be nested at most {MAX_CONDITION_DEPTH} deep")
    if isinstance(data, Mapping) and ("all" in data or "any" in data):
        key = "all" if "all" in data else "any"
        table = Table(data, path, (key,))
        parts = tuple(
            _condition_from_dict(item, f"{table.where(key)}[{i}]", depth + 1)
            for i, item in enumerate(table.items(key))
        )
        return AllOf(conditions=parts) if key == "all" else AnyOf(conditions=parts)
    if isinstance(data, Mapping) and "not" in data:
        table = Table(data, path, ("not",))
        return Not(condition=_condition_from_dict(data["not"], table.where("not"), depth + 1))
    table = Table(data, path, ("field", "op", "value"))
    name, op = table.text("field"), table.text("op")
    raw = table.data.get("value")
    if isinstance(raw, list):
        value: Any = tuple(
            _value_from_json(item, f"{table.where('value')}[{i}]") for i, item in enumerate(raw)
        )
    else:
        value = _value_from_json(raw, table.where("value"))
    return _build(path, lambda: Compare(field=name, op=op, value=value), attribute_paths=False)


def _value_from_json(value: object, path: str) -> CustomValue:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in _TAGS:
            fail(path, f"a tagged value has exactly one key of {', '.join(_TAGS)}", value)
        tag = next(iter(value))
        if not isinstance(value[tag], str):
            fail(join(path, tag), f"expected text, got {describe(value[tag])}", value[tag])
        decoded = _build(join(path, tag), lambda: decode_custom_value(dict(value)))
        if isinstance(decoded, Decimal) and not decoded.is_finite():
            fail(join(path, tag), f"{describe(value[tag])} is not a finite decimal", value[tag])
        if isinstance(decoded, datetime) and decoded.utcoffset() is None:
            fail(join(path, tag), f"{describe(value[tag])} has no time zone", value[tag])
        return decoded
    fail(path, f"expected text, a number, a boolean, null or a tagged value, got {describe(value)}")


def loads_json(text: str | bytes) -> SequenceDefinition:
    """The definition in a JSON document written by `dumps_json` (or by hand).

    Args:
        text: The JSON text (or UTF-8 bytes), at most `MAX_TEXT_BYTES`.

    Returns:
        The sequence definition.

    Raises:
        ValidationError: the text is not JSON, too large, or not a valid document.
    """
    return from_dict(parse_json(text))


def loads_toml(text: str | bytes) -> SequenceDefinition:
    """The definition in a TOML document written by `dumps_toml` (or by hand).

    Args:
        text: The TOML text (or UTF-8 bytes), at most `MAX_TEXT_BYTES`.

    Returns:
        The sequence definition.

    Raises:
        ValidationError: the text is not TOML, too large, or not a valid document.
    """
    return from_dict(parse_toml(text))
