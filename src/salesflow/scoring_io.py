"""Scoring models to and from documents: plain JSON-able dicts (schema 1).

The format, as the engine stores it in a `salesflow.definitions.StoredDefinition`::

    {
      "schema": 1, "kind": "scoring_model",
      "id": "web", "version": 2, "name": "Web leads", "target": "contact",
      "audience": {"field": "lead.country", "op": "eq", "value": "England"},
      "sales_ready_threshold": 100, "score_leads_without_parent": false,
      "description": "...",
      "rules": [
        {"id": "london", "name": "Lives in London", "points": 70,
         "conditions": [
           {"kind": "field", "condition": {"field": "lead.city", "op": "eq", "value": "London"}},
           {"kind": "interaction", "interaction": "email_opened", "source_id": "newsletter",
            "frequency": "at_least", "count": 3, "window": {"days": 28}}
         ]}
      ],
      "grades": [{"name": "cold", "high": 25}, {"name": "warm", "low": 26, "high": 60}]
    }

Field conditions use the shared condition format of
`salesflow.sequences.io.condition_to_dict`. A window is ``{"days", "hours", "minutes",
"seconds"}`` (each optional, default 0); no ``window`` means all time. Optional keys
whose value is ``None`` are left out. Reading is strict: unknown keys, wrong types and
missing keys raise `ValidationError` whose message starts with the path of the
offending key (``rules[2].conditions[0].window.days``); a newer schema is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from salesflow.conditions import Condition
from salesflow.documents import Table, check_document, describe, fail, join
from salesflow.errors import ValidationError
from salesflow.scoring_model import (
    MAX_RULES,
    Grade,
    InteractionCondition,
    RuleCondition,
    ScoringModel,
    ScoringRule,
)
from salesflow.sequences.io import condition_from_dict, condition_to_dict

__all__ = ["SCHEMA", "from_dict", "to_dict"]

SCHEMA = 1
"""The schema number this version writes."""

T = TypeVar("T")
Document = dict[str, Any]

_TOP_KEYS = (
    "schema",
    "kind",
    "id",
    "version",
    "name",
    "target",
    "audience",
    "rules",
    "grades",
    "sales_ready_threshold",
    "score_leads_without_parent",
    "description",
)
_RULE_KEYS = ("id", "name", "points", "conditions", "description")
_FIELD_KEYS = ("kind", "condition")
_INTERACTION_KEYS = ("kind", "interaction", "source_id", "frequency", "count", "window")
_GRADE_KEYS = ("name", "low", "high")
_WINDOW_KEYS = ("days", "hours", "minutes", "seconds")


def _compact(doc: Document) -> Document:
    return {key: value for key, value in doc.items() if value is not None}


def _window_to_dict(window: timedelta) -> Document:
    hours, rest = divmod(window.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = {"days": window.days, "hours": hours, "minutes": minutes, "seconds": seconds}
    return {key: value for key, value in parts.items() if value}


def _condition_to_dict(condition: RuleCondition) -> Document:
    if isinstance(condition, InteractionCondition):
        return _compact(
            {
                "kind": "interaction",
                "interaction": condition.kind.value,
                "source_id": condition.source_id,
                "frequency": condition.frequency.value,
                "count": condition.count,
                "window": None if condition.window is None else _window_to_dict(condition.window),
            }
        )
    return {"kind": "field", "condition": condition_to_dict(condition)}


def to_dict(model: ScoringModel) -> Document:
    """The model as a schema-1 document of plain JSON-able values.

    Args:
        model: The model to write.

    Returns:
        A new dict; optional values that are ``None`` are left out.

    Raises:
        ValidationError: a condition holds a value JSON cannot carry, or nests too deeply.
    """
    doc: Document = {
        "schema": SCHEMA,
        "kind": "scoring_model",
        "id": model.id,
        "version": model.version,
        "name": model.name,
        "target": model.target.value,
        "audience": None if model.audience is None else condition_to_dict(model.audience),
        "rules": [
            _compact(
                {
                    "id": rule.id,
                    "name": rule.name,
                    "points": rule.points,
                    "conditions": [_condition_to_dict(c) for c in rule.conditions],
                    "description": rule.description,
                }
            )
            for rule in model.rules
        ],
        "grades": [
            _compact({"name": grade.name, "low": grade.low, "high": grade.high})
            for grade in model.grades
        ],
        "sales_ready_threshold": model.sales_ready_threshold,
        "score_leads_without_parent": model.score_leads_without_parent,
        "description": model.description,
    }
    return _compact(doc)


# --- reading ---------------------------------------------------------------------------


def _build(path: str, make: Callable[[], T]) -> T:
    """Build a definition object, re-raising its own refusals with the document path."""
    try:
        return make()
    except ValidationError as exc:
        where = path
        if exc.field and "." in exc.field:
            where = join(path, exc.field.rsplit(".", 1)[1])
        raise ValidationError(f"{where}: {exc}", field=where, value=exc.value) from exc


def _condition(data: object, path: str) -> Condition:
    try:
        return condition_from_dict(data)
    except ValidationError as exc:
        # the shared reader names paths from "condition"; put ours in front
        message = str(exc)
        if message.startswith("condition"):
            message = path + message[len("condition") :]
        raise ValidationError(message, field=path, value=exc.value) from exc


def _window(data: object, path: str) -> timedelta:
    table = Table(data, path, _WINDOW_KEYS)
    parts = {key: table.integer(key, 0) for key in _WINDOW_KEYS}
    return timedelta(**parts)


def _rule_condition(data: object, path: str) -> RuleCondition:
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == "field":
        table = Table(data, path, _FIELD_KEYS)
        return _condition(table.raw("condition"), table.where("condition"))
    if kind != "interaction":
        fail(
            join(path, "kind"),
            f"unknown condition kind {describe(kind)}; expected 'field' or 'interaction'",
            kind,
        )
    table = Table(data, path, _INTERACTION_KEYS)
    interaction = table.text("interaction")
    source_id = table.optional_text("source_id")
    frequency = table.optional_text("frequency") or "at_least"
    count = table.integer("count", 1)
    raw_window = table.data.get("window")
    window = None if raw_window is None else _window(raw_window, table.where("window"))
    return _build(
        path,
        lambda: InteractionCondition(
            kind=interaction, source_id=source_id, frequency=frequency, count=count, window=window
        ),
    )


def _rule(data: object, path: str) -> ScoringRule:
    table = Table(data, path, _RULE_KEYS)
    rule_id, name, points = table.text("id"), table.text("name"), table.integer("points")
    conditions = [
        _rule_condition(item, f"{table.where('conditions')}[{i}]")
        for i, item in enumerate(table.items("conditions"))
    ]
    description = table.optional_text("description")
    return _build(
        path,
        lambda: ScoringRule(
            id=rule_id, name=name, points=points, conditions=conditions, description=description
        ),
    )


def _grade(data: object, path: str) -> Grade:
    table = Table(data, path, _GRADE_KEYS)
    name, low, high = (
        table.text("name"),
        table.optional_integer("low"),
        table.optional_integer("high"),
    )
    return _build(path, lambda: Grade(name=name, low=low, high=high))


def from_dict(data: Mapping[str, Any]) -> ScoringModel:
    """The model a document describes.

    Args:
        data: A document as written by `to_dict` (or parsed from JSON).

    Returns:
        The scoring model (not yet validated as a whole: call
        `salesflow.scoring_model.validate` or compile it).

    Raises:
        ValidationError: the document is malformed (the message starts with the path
            of the offending key) or of a newer schema than this version reads.
    """
    check_document(data)
    top = Table(data, "", _TOP_KEYS)
    schema = top.raw("schema")
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        fail("schema", f"expected a schema number >= 1, got {describe(schema)}", schema)
    if schema > SCHEMA:
        fail(
            "schema",
            f"this document has schema {schema}, written by a newer salesflow; this "
            f"version reads scoring model schemas up to {SCHEMA}: upgrade salesflow",
            schema,
        )
    if top.raw("kind") != "scoring_model":
        fail("kind", f"expected 'scoring_model', got {describe(data['kind'])}", data["kind"])
    raw_rules = top.items("rules")
    if len(raw_rules) > MAX_RULES:
        fail("rules", f"{len(raw_rules)} rules; a model may have at most {MAX_RULES}")
    rules = [_rule(item, f"rules[{i}]") for i, item in enumerate(raw_rules)]
    grades = [_grade(item, f"grades[{i}]") for i, item in enumerate(top.items("grades", []))]
    audience = None
    if top.data.get("audience") is not None:
        audience = _condition(top.data["audience"], "audience")
    model_id, version, name = top.text("id"), top.integer("version", 1), top.text("name")
    target = top.text("target")
    threshold = top.integer("sales_ready_threshold")
    without_parent = top.flag("score_leads_without_parent", False)
    description = top.optional_text("description")
    return _build(
        "",
        lambda: ScoringModel(
            id=model_id,
            version=version,
            name=name,
            target=target,
            audience=audience,
            rules=rules,
            grades=grades,
            sales_ready_threshold=threshold,
            score_leads_without_parent=without_parent,
            description=description,
        ),
    )
