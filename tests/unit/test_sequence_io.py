"""Sequence documents: every step and watch kind round-trips exactly through dicts,
JSON and TOML; malformed or hostile documents are refused with the path of the
offending key, never with a KeyError or TypeError."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.conditions import AllOf, AnyOf, Compare, Not, Op, all_of, field, not_
from salesflow.errors import ValidationError
from salesflow.sequences.definition import (
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
    UpdateFieldStep,
    WaitStep,
)
from salesflow.sequences.io import (
    MAX_CONDITION_DEPTH,
    MAX_STEPS,
    MAX_TEXT_BYTES,
    dumps_json,
    dumps_toml,
    from_dict,
    loads_json,
    loads_toml,
    to_dict,
)


def _every_kind() -> SequenceDefinition:
    """A definition with every step kind, every watch kind and every value type."""
    deep = field("custom.score").ge(Decimal("1.50"))
    for _ in range(MAX_CONDITION_DEPTH - 2):
        deep = not_(deep)
    steps = [
        ActivityStep(
            id="mail",
            kind="email",
            subject='Quotes "x", back\\slash, tab\t, newline\n, bell\x07, del\x7f, é, 🎉',
            description="Line one\r\nline two",
            template="intro",
            next="auto",
        ),
        ActivityStep(id="auto", kind="auto_email", subject="Auto", template="t", next="c-email"),
        ConditionStep(
            id="c-email",
            watch=EmailWatch(events=["replied", "link_clicked"], match="all"),
            within=Span(days=2, hours=3),
            advance_early=True,
            watches="auto",
            yes="call",
            no="task",
            description="Replied and clicked?",
        ),
        ActivityStep(id="call", kind="call", subject="Call", next="c-call"),
        ConditionStep(
            id="c-call",
            watch=CallWatch(outcomes=["answered", "left_voicemail"]),
            yes="li",
            no="c-answered",
        ),
        ConditionStep(id="c-answered", watch=CallWatch(), yes="li", no="sms"),
        ActivityStep(
            id="li", kind="linkedin", subject="Connect", linkedin_action="connect", next="wait"
        ),
        ActivityStep(id="task", kind="task", subject="Task", next="wait"),
        ActivityStep(id="sms", kind="sms", subject="Text", next="auto-sms"),
        ActivityStep(id="auto-sms", kind="auto_sms", subject="Auto text", next="wait"),
        WaitStep(id="wait", span=Span(days=30), next="c-field"),
        ConditionStep(
            id="c-field",
            watch=FieldWatch(
                condition=all_of(
                    field("rating").eq("hot"),
                    AnyOf(
                        conditions=(
                            field("employees").in_([10, 20]),
                            field("custom.since").lt(date(2026, 1, 5)),
                            field("custom.at").ge(datetime(2026, 1, 5, 9, tzinfo=UTC)),
                        )
                    ),
                    Not(condition=field("email").is_null()),
                    field("custom.ratio").gt(0.25),
                    field("custom.flag").eq(True),
                    AllOf(conditions=()),
                    deep,
                )
            ),
            within=Span(hours=1),
            yes="c-stage",
            no="update",
        ),
        ConditionStep(id="c-stage", watch=StageWatch(stage="propose"), yes="status", no="update"),
        UpdateFieldStep(id="update", field="custom.amount", value=Decimal("12.30"), next="u-date"),
        UpdateFieldStep(id="u-date", field="custom.day", value=date(2026, 3, 2), next="u-dt"),
        UpdateFieldStep(
            id="u-dt",
            field="custom.at",
            value=datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=3))),
            next="u-none",
        ),
        UpdateFieldStep(id="u-none", field="custom.note", value=None, next="u-float"),
        UpdateFieldStep(id="u-float", field="custom.ratio", value=-0.5, next="u-bool"),
        UpdateFieldStep(id="u-bool", field="custom.flag", value=False, next="ab"),
        ABTestStep(
            id="ab",
            variant_a="A",
            variant_b="B",
            split_percent=30,
            metric="clicks",
            deadline=Span(days=3, hours=12),
            default_variant="b",
            next="advance",
        ),
        AdvanceStep(id="advance", sequence_id="nurture"),
        SetStatusStep(id="status", status="disqualified", reason="cannot_contact", next="end"),
        EndStep(id="end", outcome="disqualified"),
    ]
    return SequenceDefinition(
        id="every-kind",
        version=3,
        name="Every kind",
        record_type="lead",
        entry="mail",
        steps=steps,
        description='A "test" sequence\nwith two lines',
        exit_on_reply=True,
        skip_non_working_time=True,
    )


def _minimal() -> SequenceDefinition:
    return SequenceDefinition(
        id="minimal",
        name="Minimal",
        record_type="contact",
        entry="mail",
        steps=[
            ActivityStep(id="mail", kind="email", subject="Hello", next="end"),
            EndStep(id="end", outcome="done"),
        ],
    )


@pytest.mark.parametrize("make", [_every_kind, _minimal])
def test_dict_round_trip_is_exact(make: Callable[[], SequenceDefinition]) -> None:
    definition = make()
    doc = to_dict(definition)
    assert doc["schema"] == 1
    assert doc["kind"] == "sequence"
    assert from_dict(doc) == definition
    assert json.loads(json.dumps(doc)) == doc, "the document is plain JSON data"


@pytest.mark.parametrize("make", [_every_kind, _minimal])
def test_json_round_trip_is_exact(make: Callable[[], SequenceDefinition]) -> None:
    definition = make()
    text = dumps_json(definition)
    assert loads_json(text) == definition
    assert loads_json(text.encode("utf-8")) == definition


@pytest.mark.parametrize("make", [_every_kind, _minimal])
def test_toml_round_trip_is_exact(make: Callable[[], SequenceDefinition]) -> None:
    definition = make()
    text = dumps_toml(definition)
    assert tomllib.loads(text) == to_dict(definition), "TOML holds the same document"
    assert loads_toml(text) == definition


def test_documented_format() -> None:
    doc = to_dict(_every_kind())
    by_id = {step["id"]: step for step in doc["steps"]}
    assert by_id["wait"] == {
        "kind": "wait",
        "id": "wait",
        "span": {"days": 30, "hours": 0},
        "next": "c-field",
    }
    assert by_id["c-email"]["watch"] == {
        "kind": "email",
        "events": ["replied", "link_clicked"],
        "match": "all",
    }
    assert by_id["c-answered"]["watch"] == {"kind": "call"}, "None outcomes are left out"
    assert by_id["c-stage"]["watch"] == {"kind": "stage", "stage": "propose"}
    condition = by_id["c-field"]["watch"]["condition"]
    assert condition["all"][0] == {"field": "rating", "op": "eq", "value": "hot"}
    assert condition["all"][1]["any"][0]["value"] == [10, 20]
    assert condition["all"][1]["any"][1]["value"] == {"$date": "2026-01-05"}
    assert condition["all"][2] == {"not": {"field": "email", "op": "is_null"}}
    assert by_id["update"]["value"] == {"$decimal": "12.30"}
    assert by_id["u-dt"]["value"] == {"$datetime": "2026-03-02T06:00:00.000000+00:00"}
    assert "value" not in by_id["u-none"]


def test_missing_optional_keys_read_as_defaults() -> None:
    doc: dict[str, Any] = {
        "schema": 1,
        "kind": "sequence",
        "id": "s",
        "name": "S",
        "record_type": "lead",
        "entry": "w",
        "steps": [
            {"kind": "wait", "id": "w", "span": {"days": 1}, "next": "c"},
            {"kind": "condition", "id": "c", "watch": {"kind": "call"}, "yes": "e", "no": "e"},
            {"kind": "update_field", "id": "u", "field": "custom.x", "next": "e"},
            {"kind": "ab_test", "id": "ab", "variant_a": "A", "variant_b": "B"},
            {"kind": "end", "id": "e", "outcome": "done"},
        ],
    }
    definition = from_dict(doc)
    assert definition.version == 1
    assert not definition.exit_on_reply
    assert definition.step("w") == WaitStep(id="w", span=Span(days=1), next="c")
    assert definition.step("c") == ConditionStep(id="c", watch=CallWatch(), yes="e", no="e")
    assert definition.step("u") == UpdateFieldStep(id="u", field="custom.x", value=None, next="e")
    assert definition.step("ab") == ABTestStep(id="ab", variant_a="A", variant_b="B")


def test_toml_refuses_null_inside_a_list_with_its_path() -> None:
    definition = SequenceDefinition(
        id="s",
        name="S",
        record_type="lead",
        entry="c",
        steps=[
            ConditionStep(
                id="c",
                watch=FieldWatch(condition=Compare(field="x", op=Op.IN, value=(1, None))),
                yes="e",
                no="e",
            ),
            EndStep(id="e", outcome="done"),
        ],
    )
    assert loads_json(dumps_json(definition)) == definition
    with pytest.raises(ValidationError, match=r"steps\[0\]\.watch\.condition\.value\[1\]"):
        dumps_toml(definition)


def test_naive_datetime_is_refused_when_writing() -> None:
    definition = SequenceDefinition(
        id="s",
        name="S",
        record_type="lead",
        entry="u",
        steps=[
            UpdateFieldStep(id="u", field="custom.at", value=datetime(2026, 1, 1), next="e"),
            EndStep(id="e", outcome="done"),
        ],
    )
    with pytest.raises(ValidationError, match=r"steps\[0\]\.value.*time zone"):
        to_dict(definition)


def test_too_deep_conditions_are_refused_when_writing() -> None:
    deep = field("x").eq(1)
    for _ in range(MAX_CONDITION_DEPTH):
        deep = not_(deep)
    definition = SequenceDefinition(
        id="s",
        name="S",
        record_type="lead",
        entry="c",
        steps=[
            ConditionStep(id="c", watch=FieldWatch(condition=deep), yes="e", no="e"),
            EndStep(id="e", outcome="done"),
        ],
    )
    with pytest.raises(ValidationError, match="at most 20 deep"):
        to_dict(definition)


# --- bad input ------------------------------------------------------------------------


def _base() -> dict[str, Any]:
    return to_dict(_every_kind())


def _step(doc: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in doc["steps"] if s["id"] == step_id)


def _index(step_id: str) -> int:
    return next(i for i, s in enumerate(_base()["steps"]) if s["id"] == step_id)


WAIT = _index("wait")
C_EMAIL = _index("c-email")
C_FIELD = _index("c-field")
AB = _index("ab")
UPDATE = _index("update")


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return apply


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return apply


BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("days as text", _set(["steps", WAIT, "span", "days"], "two"), rf"steps\[{WAIT}\]\.span\.days"),
    ("negative days", _set(["steps", WAIT, "span", "days"], -1), rf"steps\[{WAIT}\]\.span\.days"),
    ("days as bool", _set(["steps", WAIT, "span", "days"], True), rf"steps\[{WAIT}\]\.span\.days"),
    ("days as float", _set(["steps", WAIT, "span", "days"], 1.5), rf"steps\[{WAIT}\]\.span\.days"),
    ("span as list", _set(["steps", WAIT, "span"], [1, 2]), rf"steps\[{WAIT}\]\.span"),
    (
        "unknown span key",
        _set(["steps", WAIT, "span", "weeks"], 1),
        rf"steps\[{WAIT}\]\.span\.weeks",
    ),
    ("missing span", _delete(["steps", WAIT, "span"]), rf"steps\[{WAIT}\]\.span"),
    ("unknown step kind", _set(["steps", 0, "kind"], "fax"), r"steps\[0\]\.kind.*'fax'"),
    ("kind not text", _set(["steps", 0, "kind"], 3), r"steps\[0\]\.kind"),
    ("missing step kind", _delete(["steps", 0, "kind"]), r"steps\[0\]\.kind"),
    ("unknown step key", _set(["steps", 0, "colour"], "red"), r"steps\[0\]\.colour"),
    ("missing step id", _delete(["steps", 0, "id"]), r"steps\[0\]\.id.*missing"),
    ("id as number", _set(["steps", 0, "id"], 7), r"steps\[0\]\.id"),
    ("blank subject", _set(["steps", 0, "subject"], " "), r"steps\[0\]\.subject"),
    (
        "bad linkedin action",
        _set(["steps", 0, "linkedin_action"], "poke"),
        r"steps\[0\]\.linkedin_action",
    ),
    ("step not a table", _set(["steps", 1], "email"), r"steps\[1\]"),
    (
        "unknown watch kind",
        _set(["steps", C_EMAIL, "watch", "kind"], "sms"),
        rf"steps\[{C_EMAIL}\]\.watch\.kind",
    ),
    (
        "watch not a table",
        _set(["steps", C_EMAIL, "watch"], "replied"),
        rf"steps\[{C_EMAIL}\]\.watch",
    ),
    (
        "bad email event",
        _set(["steps", C_EMAIL, "watch", "events"], ["bounced"]),
        rf"steps\[{C_EMAIL}\]\.watch\.events",
    ),
    (
        "event not text",
        _set(["steps", C_EMAIL, "watch", "events"], [1]),
        rf"steps\[{C_EMAIL}\]\.watch\.events\[0\]",
    ),
    (
        "events not a list",
        _set(["steps", C_EMAIL, "watch", "events"], {"a": 1}),
        rf"steps\[{C_EMAIL}\]\.watch\.events",
    ),
    (
        "advance_early as text",
        _set(["steps", C_EMAIL, "advance_early"], "yes"),
        rf"steps\[{C_EMAIL}\]\.advance_early",
    ),
    ("missing yes", _delete(["steps", C_EMAIL, "yes"]), rf"steps\[{C_EMAIL}\]\.yes"),
    (
        "unknown op",
        _set(["steps", C_FIELD, "watch", "condition", "all", 0, "op"], "like"),
        rf"steps\[{C_FIELD}\]\.watch\.condition\.all\[0\]",
    ),
    (
        "condition list",
        _set(["steps", C_FIELD, "watch", "condition"], [1]),
        rf"steps\[{C_FIELD}\]\.watch\.condition",
    ),
    (
        "all not a list",
        _set(["steps", C_FIELD, "watch", "condition", "all"], 3),
        rf"steps\[{C_FIELD}\]\.watch\.condition\.all",
    ),
    (
        "all with extra key",
        _set(["steps", C_FIELD, "watch", "condition", "field"], "x"),
        rf"steps\[{C_FIELD}\]\.watch\.condition\.field",
    ),
    (
        "bad tagged decimal",
        _set(["steps", UPDATE, "value"], {"$decimal": "ten"}),
        rf"steps\[{UPDATE}\]\.value\.\$decimal",
    ),
    (
        "unknown tag",
        _set(["steps", UPDATE, "value"], {"$money": "1"}),
        rf"steps\[{UPDATE}\]\.value",
    ),
    (
        "tag not text",
        _set(["steps", UPDATE, "value"], {"$date": 5}),
        rf"steps\[{UPDATE}\]\.value\.\$date",
    ),
    (
        "naive datetime",
        _set(["steps", UPDATE, "value"], {"$datetime": "2026-01-01T00:00:00"}),
        rf"steps\[{UPDATE}\]\.value\.\$datetime",
    ),
    ("value a list", _set(["steps", UPDATE, "value"], [1]), rf"steps\[{UPDATE}\]\.value"),
    ("split 95", _set(["steps", AB, "split_percent"], 95), rf"steps\[{AB}\]\.split_percent"),
    ("bad metric", _set(["steps", AB, "metric"], "likes"), rf"steps\[{AB}\]\.metric"),
    ("missing name", _delete(["name"]), r"^name: .*missing"),
    ("unknown top key", _set(["owner"], "me"), r"^owner: unknown key"),
    ("record type activity", _set(["record_type"], "activity"), r"^record_type"),
    ("steps not a list", _set(["steps"], {"a": 1}), r"^steps"),
    ("no steps", _set(["steps"], []), r"^steps"),
    ("duplicate step id", _set(["steps", 1, "id"], "mail"), r"^steps: .*twice"),
    ("wrong document kind", _set(["kind"], "view"), r"^kind: expected 'sequence'"),
    ("missing schema", _delete(["schema"]), r"^schema: .*missing"),
    ("schema as text", _set(["schema"], "1"), r"^schema"),
    ("schema 0", _set(["schema"], 0), r"^schema"),
    ("newer schema", _set(["schema"], 2), r"^schema: .*schema 2.*newer salesflow.*upgrade"),
    ("version 0", _set(["version"], 0), r"^version"),
    ("exit_on_reply as int", _set(["exit_on_reply"], 1), r"^exit_on_reply"),
]


@pytest.mark.parametrize(("case", "mutate", "where"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_documents_name_the_offending_path(
    case: str, mutate: Callable[[dict[str, Any]], None], where: str
) -> None:
    doc = _base()
    mutate(doc)
    with pytest.raises(ValidationError, match=where):
        from_dict(doc)
    with pytest.raises(ValidationError, match=where):
        loads_json(json.dumps(doc))


def test_the_error_carries_the_path_as_its_field() -> None:
    doc = _base()
    _step(doc, "wait")["span"]["days"] = "two"
    with pytest.raises(ValidationError) as info:
        from_dict(doc)
    assert info.value.field == f"steps[{WAIT}].span.days"


def test_document_must_be_a_table() -> None:
    with pytest.raises(ValidationError, match="expected a table"):
        from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="expected a table"):
        loads_json("[1, 2]")


def test_too_many_steps_are_refused() -> None:
    doc = to_dict(_minimal())
    doc["steps"] = [
        {"kind": "task", "id": f"t{i}", "subject": "T", "next": f"t{i + 1}"}
        for i in range(MAX_STEPS + 1)
    ]
    with pytest.raises(ValidationError, match=rf"^steps: {MAX_STEPS + 1} steps.*at most 500"):
        from_dict(doc)


def test_too_deeply_nested_conditions_are_refused() -> None:
    doc = to_dict(_minimal())
    condition: dict[str, Any] = {"field": "x", "op": "eq", "value": 1}
    for _ in range(MAX_CONDITION_DEPTH):
        condition = {"not": condition}
    doc["steps"].insert(
        0,
        {"kind": "condition", "id": "c", "watch": {"kind": "field", "condition": condition}}
        | {"yes": "end", "no": "end"},
    )
    with pytest.raises(ValidationError, match=r"steps\[0\]\.watch\.condition(\.not){20}"):
        from_dict(doc)
    inner = condition["not"]
    doc["steps"][0]["watch"]["condition"] = inner
    assert from_dict(doc).step("c") is not None, "20 levels are allowed"


def test_too_large_texts_are_refused_before_parsing() -> None:
    padding = " " * MAX_TEXT_BYTES
    with pytest.raises(ValidationError, match="limit is 1000000"):
        loads_json(dumps_json(_minimal()) + padding)
    with pytest.raises(ValidationError, match="limit is 1000000"):
        loads_toml(dumps_toml(_minimal()) + padding)
    with pytest.raises(ValidationError, match="limit is 1000000"):
        loads_json((dumps_json(_minimal()) + padding).encode())
    multibyte = dumps_json(_minimal()) + "é" * (MAX_TEXT_BYTES // 2)
    with pytest.raises(ValidationError, match="limit is 1000000"):
        loads_json(multibyte)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[" * 200_000 + "]" * 200_000, "nested too deeply|not valid JSON"),
        ('{"schema": 1, "schema": 1}', "appears twice"),
        (b"\xff\xfe", "not UTF-8"),
        ("NaN", "expected a table"),
    ],
)
def test_unreadable_json_is_refused(text: str | bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        loads_json(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schema = ", "not valid TOML"),
        ("a = " + "[" * 100_000 + "]" * 100_000, "nested too deeply|not valid TOML"),
        ("schema = 1\nschema = 2", "not valid TOML"),
        ("schema = 1\nkind = 'sequence'\nsteps = 3", "steps"),
        ("schema = 1\nkind = 'sequence'\nwhen = 2026-01-01", "when"),
    ],
)
def test_unreadable_toml_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        loads_toml(text)


def test_toml_native_dates_are_refused_with_their_path() -> None:
    text = dumps_toml(_every_kind()).replace(
        'value = { "$date" = "2026-03-02" }', "value = 2026-03-02"
    )
    with pytest.raises(ValidationError, match=r"steps\[\d+\]\.value"):
        loads_toml(text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["kind", "id", "days", "all", "not", "field", "op", "value", "$date"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(0, 40),
    key=st.sampled_from(
        ["kind", "id", "span", "watch", "within", "value", "next", "yes", "steps", "schema"]
    ),
    value=JSON_VALUES,
)
def test_hostile_values_only_ever_raise_validation_error(index: int, key: str, value: Any) -> None:
    doc = _base()
    steps = doc["steps"]
    target = steps[index] if index < len(steps) else doc
    target[key] = copy.deepcopy(value)
    try:
        definition = from_dict(doc)
    except ValidationError:
        return  # refused with a message naming the path: what hostile input must get
    assert from_dict(to_dict(definition)) == definition
