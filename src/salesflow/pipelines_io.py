"""Pipelines to and from documents: plain dicts and JSON.

The document format (schema 1) is JSON-able::

    {
      "schema": 1, "kind": "pipeline",
      "id": "sales", "version": 1, "name": "Sales", "record_type": "opportunity",
      "stages": [{"id": "new", "name": "New", "kind": "open"}, ...],
      "triggers": [{"event": "email_replied", "stage": "contacted",
                    "allow_backwards": false}],
      "rules": [
        {"id": "renewal", "stage": "won", "name": "Repeat lead",
         "timing": {"after": {"months": 6}},
         "action": {"create_repeat_lead": {"name": "Renewal: {name}",
                                           "responsible": ["u1"]}},
         "condition": {"field": "probability", "op": "ge", "value": 50},
         "run": "parallel", "working_time": "any"}
      ]
    }

A timing is ``{"immediately": {}}``, ``{"after": DELAY}``, ``{"at": "ISO 8601"}`` or
``{"from_field": {"field": ..., "delay": DELAY, "before": bool, "at": "HH:MM"}}``; a
DELAY is a table of ``minutes``, ``hours``, ``days``, ``weeks``, ``months``. An action
is a table with one key naming it (``create_repeat_lead``, ``copy_deal``,
``schedule_activity``, ``change_stage``, ``update_field``, ``connect_sequence``,
``notify``) whose value holds its settings. Reading is strict: unknown keys, wrong
types and newer schemas raise `ValidationError` naming the path of the offending key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, time
from functools import partial
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
from salesflow.pipelines import PIPELINE, Pipeline, Stage, Trigger
from salesflow.rules import (
    Action,
    ActivityDue,
    After,
    At,
    AutomationRule,
    ChangeStage,
    ConnectSequence,
    CopyDeal,
    CreateRepeatLead,
    Delay,
    FromField,
    Immediately,
    Notify,
    Responsible,
    ScheduleActivity,
    Timing,
    UpdateField,
)
from salesflow.sequences.io import (
    _value_from_json,
    _value_to_json,
    condition_from_dict,
    condition_to_dict,
)

__all__ = ["SCHEMA", "dumps_json", "from_dict", "loads_json", "to_dict"]

SCHEMA = 1
MAX_DOCUMENT = MAX_DOCUMENT_BYTES
"""The largest JSON text `loads_json` reads, in UTF-8 bytes."""

T = TypeVar("T")
_DELAY_KEYS = ("minutes", "hours", "days", "weeks", "months")


def _delay_to(delay: Delay) -> dict[str, int]:
    return {k: getattr(delay, k) for k in _DELAY_KEYS if getattr(delay, k)}


def _clock(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def _timing_to(timing: Timing) -> dict[str, Any]:
    if isinstance(timing, Immediately):
        return {"immediately": {}}
    if isinstance(timing, After):
        return {"after": _delay_to(timing.delay)}
    if isinstance(timing, At):
        return {"at": timing.at.isoformat()}
    doc: dict[str, Any] = {"field": timing.field, "delay": _delay_to(timing.delay)}
    if timing.before:
        doc["before"] = True
    if timing.at is not None:
        doc["at"] = _clock(timing.at)
    return {"from_field": doc}


def _action_to(action: Action) -> dict[str, Any]:
    if isinstance(action, CreateRepeatLead):
        return {
            "create_repeat_lead": {
                "name": action.name.text,
                "responsible": list(action.responsible.users),
            }
        }
    if isinstance(action, CopyDeal):
        doc: dict[str, Any] = {
            "pipeline": action.pipeline,
            "responsible": list(action.responsible.users),
        }
        if action.stage is not None:
            doc["stage"] = action.stage
        if action.name is not None:
            doc["name"] = action.name.text
        return {"copy_deal": doc}
    if isinstance(action, ScheduleActivity):
        due: dict[str, Any] = {"days": action.due.days, "hours": action.due.hours}
        if action.due.at is not None:
            due["at"] = _clock(action.due.at)
        doc = {
            "kind": action.kind.value,
            "subject": action.subject.text,
            "due": due,
            "responsible": list(action.responsible.users),
            "complete_on_stage_change": action.complete_on_stage_change,
        }
        if action.description is not None:
            doc["description"] = action.description.text
        return {"schedule_activity": doc}
    if isinstance(action, ChangeStage):
        return {"change_stage": {"stage": action.stage}}
    if isinstance(action, UpdateField):
        value = _value_to_json(action.value, "action.update_field.value")
        return {"update_field": {"field": action.field, "value": value}}
    if isinstance(action, ConnectSequence):
        return {"connect_sequence": {"sequence": action.sequence}}
    return {"notify": {"message": action.message.text, "users": list(action.users)}}


def _rule_to(rule: AutomationRule) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": rule.id,
        "stage": rule.stage,
        "timing": _timing_to(rule.timing),
        "action": _action_to(rule.action),
        "run": rule.run.value,
        "working_time": rule.working_time.value,
    }
    if rule.name:
        doc["name"] = rule.name
    if rule.condition is not None:
        doc["condition"] = condition_to_dict(rule.condition)
    return doc


def to_dict(pipeline: Pipeline) -> dict[str, Any]:
    """``pipeline`` as a JSON-able document (see the module docstring)."""
    return {
        "schema": SCHEMA,
        "kind": PIPELINE,
        "id": pipeline.id,
        "version": pipeline.version,
        "name": pipeline.name,
        "record_type": pipeline.record_type.value,
        "stages": [{"id": s.id, "name": s.name, "kind": s.kind.value} for s in pipeline.stages],
        "triggers": [
            {
                "event": t.event.value,
                "stage": t.stage,
                **({"field": t.field} if t.field is not None else {}),
                "allow_backwards": t.allow_backwards,
            }
            for t in pipeline.triggers
        ],
        "rules": [_rule_to(r) for r in pipeline.rules],
    }


def _build(path: str, make: Callable[[], T]) -> T:
    try:
        return make()
    except ValidationError as error:
        fail(path, str(error), error.value)


def _delay_from(data: object, path: str) -> Delay:
    table = Table(data, path, _DELAY_KEYS)
    values = {k: table.integer(k, 0) for k in _DELAY_KEYS}
    return _build(path, lambda: Delay(**values))


def _clock_from(table: Table, key: str) -> time | None:
    text = table.optional_text(key)
    if text is None:
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        fail(table.where(key), f"expected a time of day like '14:00', got {describe(text)}", text)


def _timing_from(data: object, path: str) -> Timing:
    table = Table(data, path, ("immediately", "after", "at", "from_field"))
    if len(table.data) != 1:
        fail(path, "a timing has exactly one of immediately, after, at, from_field", data)
    key = next(iter(table.data))
    where = table.where(key)
    if key == "immediately":
        Table(table.data[key], where, ())
        return Immediately()
    if key == "after":
        return After(delay=_delay_from(table.data[key], where))
    if key == "at":
        text = table.text("at")
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            fail(where, f"expected an ISO 8601 date-time, got {describe(text)}", text)
        if instant.utcoffset() is None:
            fail(where, f"{describe(text)} has no time zone; add one (e.g. +00:00)", text)
        return At(at=instant)
    inner = Table(table.data[key], where, ("field", "delay", "before", "at"), required=("field",))
    delay = _delay_from(inner.data.get("delay", {}), inner.where("delay"))
    field_name = inner.text("field")
    before = inner.flag("before", False)
    at = _clock_from(inner, "at")
    return _build(where, lambda: FromField(field=field_name, delay=delay, before=before, at=at))


def _responsible(table: Table, key: str = "responsible") -> Responsible:
    users = table.items(key, [])
    return _build(table.where(key), lambda: Responsible(users=users))


def _action_from(data: object, path: str) -> Action:
    names = (
        "create_repeat_lead",
        "copy_deal",
        "schedule_activity",
        "change_stage",
        "update_field",
        "connect_sequence",
        "notify",
    )
    table = Table(data, path, names)
    if len(table.data) != 1:
        fail(path, f"an action has exactly one key: {', '.join(names)}", data)
    key = next(iter(table.data))
    where = table.where(key)
    raw = table.data[key]
    if key == "create_repeat_lead":
        t = Table(raw, where, ("name", "responsible"), required=("name",))
        name, who = t.text("name"), _responsible(t)
        return _build(where, lambda: CreateRepeatLead(name=name, responsible=who))
    if key == "copy_deal":
        t = Table(raw, where, ("pipeline", "stage", "name", "responsible"), required=("pipeline",))
        target, stage, copy_name = (
            t.text("pipeline"),
            t.optional_text("stage"),
            t.optional_text("name"),
        )
        who = _responsible(t)
        return _build(
            where, lambda: CopyDeal(pipeline=target, stage=stage, name=copy_name, responsible=who)
        )
    if key == "schedule_activity":
        t = Table(
            raw,
            where,
            ("kind", "subject", "description", "due", "responsible", "complete_on_stage_change"),
            required=("kind", "subject"),
        )
        d = Table(t.data.get("due", {}), t.where("due"), ("days", "hours", "at"))
        due = _build(
            t.where("due"),
            lambda: ActivityDue(
                days=d.integer("days", 0), hours=d.integer("hours", 0), at=_clock_from(d, "at")
            ),
        )
        kind, subject, description = (
            t.text("kind"),
            t.text("subject"),
            t.optional_text("description"),
        )
        who = _responsible(t)
        auto = t.flag("complete_on_stage_change", False)
        return _build(
            where,
            lambda: ScheduleActivity(
                kind=kind,
                subject=subject,
                description=description,
                due=due,
                responsible=who,
                complete_on_stage_change=auto,
            ),
        )
    if key == "change_stage":
        t = Table(raw, where, ("stage",), required=("stage",))
        stage_id = t.text("stage")
        return _build(where, lambda: ChangeStage(stage=stage_id))
    if key == "update_field":
        t = Table(raw, where, ("field", "value"), required=("field",))
        field_name = t.text("field")
        value = _value_from_json(t.data.get("value"), t.where("value"))
        return _build(where, lambda: UpdateField(field=field_name, value=value))
    if key == "connect_sequence":
        t = Table(raw, where, ("sequence",), required=("sequence",))
        sequence = t.text("sequence")
        return _build(where, lambda: ConnectSequence(sequence=sequence))
    t = Table(raw, where, ("message", "users"), required=("message",))
    message, users = t.text("message"), t.items("users", [])
    return _build(where, lambda: Notify(message=message, users=users))


def _rule_from(data: object, path: str) -> AutomationRule:
    table = Table(
        data,
        path,
        ("id", "stage", "name", "timing", "action", "condition", "run", "working_time"),
        required=("id", "stage", "action"),
    )
    rule_id, stage = table.text("id"), table.text("stage")
    name = table.optional_text("name") or ""
    timing = (
        _timing_from(table.data["timing"], table.where("timing"))
        if "timing" in table.data
        else Immediately()
    )
    action = _action_from(table.data["action"], table.where("action"))
    condition = (
        _build(table.where("condition"), lambda: condition_from_dict(table.data["condition"]))
        if table.data.get("condition") is not None
        else None
    )
    run = table.optional_text("run") or "parallel"
    working = table.optional_text("working_time") or "any"
    return _build(
        path,
        lambda: AutomationRule(
            id=rule_id,
            stage=stage,
            name=name,
            timing=timing,
            action=action,
            condition=condition,
            run=run,
            working_time=working,
        ),
    )


def from_dict(data: object) -> Pipeline:
    """The pipeline of a document written by `to_dict` (or by hand).

    Raises:
        ValidationError: the document is malformed (the message names where).
    """
    check_document(data)
    table = Table(
        data,
        "",
        ("schema", "kind", "id", "version", "name", "record_type", "stages", "triggers", "rules"),
        required=("id", "name", "stages"),
    )
    schema = table.integer("schema", SCHEMA)
    if schema > SCHEMA:
        fail("schema", f"schema {schema} is newer than this salesflow reads ({SCHEMA}); upgrade")
    kind = table.optional_text("kind")
    if kind not in (None, PIPELINE):
        fail("kind", f"expected {PIPELINE!r}, got {describe(kind)}", kind)
    stages = []
    for index, raw in enumerate(table.items("stages")):
        where = f"stages[{index}]"
        s = Table(raw, where, ("id", "name", "kind"), required=("id", "name"))
        sid, sname, skind = s.text("id"), s.text("name"), s.optional_text("kind") or "open"
        stages.append(_build(where, partial(Stage, id=sid, name=sname, kind=skind)))
    triggers = []
    for index, raw in enumerate(table.items("triggers", [])):
        where = f"triggers[{index}]"
        t = Table(
            raw, where, ("event", "stage", "field", "allow_backwards"), required=("event", "stage")
        )
        event, stage, field_name = t.text("event"), t.text("stage"), t.optional_text("field")
        back = t.flag("allow_backwards", False)
        triggers.append(
            _build(
                where,
                partial(Trigger, event=event, stage=stage, field=field_name, allow_backwards=back),
            )
        )
    rules = [_rule_from(raw, f"rules[{i}]") for i, raw in enumerate(table.items("rules", []))]
    pid, name = table.text("id"), table.text("name")
    record_type = table.optional_text("record_type") or "opportunity"
    version = table.integer("version", 1)
    return _build(
        "",
        lambda: Pipeline(
            id=pid,
            name=name,
            stages=stages,
            record_type=record_type,
            triggers=triggers,
            rules=rules,
            version=version,
        ),
    )


def dumps_json(pipeline: Pipeline) -> str:
    """``pipeline`` as JSON text."""
    return json.dumps(to_dict(pipeline), ensure_ascii=False, indent=2)


def loads_json(text: str | bytes) -> Pipeline:
    """The pipeline in JSON ``text``.

    Raises:
        ValidationError: the text is too long, not JSON, or not a pipeline document.
    """
    return from_dict(parse_json(text, "pipeline"))
