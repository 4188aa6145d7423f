"""Hostile input (issue 6 item 6): definition documents, CSV imports and command
arguments from an attacker or a careless user. Whatever they hold, salesflow raises
only `salesflow.errors` exceptions, each with a message, and never leaves a record
half-written."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow import pipelines_io, process_io, routing_io, scoring_io
from salesflow.documents import MAX_NESTING
from salesflow.engine import Salesflow
from salesflow.errors import SalesflowError, ValidationError
from salesflow.events import ListSink
from salesflow.pipelines import Pipeline, Stage
from salesflow.pricing import OpportunityLine, PriceList, Product
from salesflow.process_standard import LEAD_TO_OPPORTUNITY
from salesflow.rules import AutomationRule, CreateRepeatLead, Notify
from salesflow.sequences import io as sequence_io
from salesflow.sequences.templates import load_template
from salesflow.stores.memory import MemoryStore
from salesflow.templating import Template
from salesflow.testing import FakeClock
from salesflow.values import Money

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refused_properly(call: Callable[[], object]) -> SalesflowError | None:
    """Run ``call``: it may succeed or raise a `SalesflowError` with a message; anything
    else fails the test."""
    try:
        call()
    except SalesflowError as error:
        # not pytest.raises: succeeding is allowed too
        assert str(error).strip(), f"{type(error).__name__} without a message"  # noqa: PT017
        return error
    return None


# --- (a) definition documents -----------------------------------------------------------

_text = st.one_of(
    st.text(
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=20
    ),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "\x00", "\ud800", "{x.y}", "__class__"]),
    st.builds(lambda n: "x" * n, st.integers(0, 300_000)),
)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    # 10**5000 has no repr(); hypothesis could not report it, so it has its own tests
    st.sampled_from([2**64, -(2**63) - 1, 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
)
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)),
    max_leaves=12,
)
_wrong_type = st.one_of(
    _json,
    st.sampled_from(
        [b"{}", Decimal("NaN"), timedelta(days=1), object(), (1, 2), {1: 2}, {None: 1}]
    ),
)

SCORING = {
    "schema": 1,
    "kind": "scoring_model",
    "id": "web",
    "version": 2,
    "name": "Web leads",
    "target": "contact",
    "audience": {"field": "country", "op": "eq", "value": "England"},
    "sales_ready_threshold": 100,
    "rules": [
        {
            "id": "london",
            "name": "Lives in London",
            "points": 70,
            "conditions": [
                {"kind": "field", "condition": {"field": "city", "op": "eq", "value": "London"}},
                {
                    "kind": "interaction",
                    "interaction": "email_opened",
                    "frequency": "at_least",
                    "count": 3,
                    "window": {"days": 28},
                },
            ],
        }
    ],
    "grades": [{"name": "cold", "high": 25}, {"name": "warm", "low": 26}],
}
ROUTING = {
    "schema": 1,
    "kind": "routing_policy",
    "id": "default",
    "version": 1,
    "name": "Default routing",
    "fallback_owner_id": "manager",
    "overflow": "next_rule",
    "rules": [
        {
            "id": "baltics",
            "name": "Baltics",
            "condition": {"field": "country", "op": "in", "value": ["Lithuania", "Latvia"]},
            "target": {"kind": "weighted", "team_id": "baltic", "weights": {"u1": 2}},
            "follow_ups": [
                {"kind": "phone_call", "subject": "Call", "due_in": {"days": 0, "hours": 1}}
            ],
        }
    ],
}
TEAM = {
    "schema": 1,
    "kind": "team",
    "id": "baltic",
    "name": "Baltic",
    "members": [{"user_id": "u1", "weight": 2, "capacity": 5, "active": True, "away": False}],
}
STATE = {
    "schema": 1,
    "kind": "routing_state",
    "rotations": {"baltic": {"last": "u1", "order": ["u1", "u2"]}},
    "weighted": {"baltic": {"u1": 3}},
}
PIPELINE = pipelines_io.to_dict(
    Pipeline(
        id="sales",
        name="Sales",
        stages=[Stage(id="new", name="New"), Stage(id="won", name="Won", kind="won")],
        rules=[
            AutomationRule(id="again", stage="won", action=CreateRepeatLead(name="Again: {name}")),
            AutomationRule(id="tell", stage="new", action=Notify(message="New deal {name}")),
        ],
    )
)
SEQUENCE = sequence_io.to_dict(load_template("no_show_follow_up"))
PROCESS = process_io.to_dict(LEAD_TO_OPPORTUNITY)

READERS: dict[str, tuple[Callable[[Any], object], dict[str, Any]]] = {
    "sequence": (sequence_io.from_dict, SEQUENCE),
    "condition": (sequence_io.condition_from_dict, {"field": "city", "op": "eq", "value": "x"}),
    "scoring": (scoring_io.from_dict, SCORING),
    "routing": (routing_io.from_dict, ROUTING),
    "team": (routing_io.team_from_dict, TEAM),
    "routing_state": (routing_io.state_from_dict, STATE),
    "process": (process_io.from_dict, PROCESS),
    "pipeline": (pipelines_io.from_dict, PIPELINE),
}
TEXT_READERS: dict[str, Callable[[Any], object]] = {
    "sequence_json": sequence_io.loads_json,
    "sequence_toml": sequence_io.loads_toml,
    "process_json": process_io.loads_json,
    "pipeline_json": pipelines_io.loads_json,
}


def test_the_valid_documents_read() -> None:
    for read, document in READERS.values():
        read(json.loads(json.dumps(document)))


@st.composite
def _mutated(draw: st.DrawFn, document: Any, values: st.SearchStrategy[Any] = _wrong_type) -> Any:
    """``document`` with one value somewhere replaced by one of ``values``, removed, or
    added."""
    doc = json.loads(json.dumps(document))
    holder: Any = None
    key: Any = None
    value: Any = doc
    while isinstance(value, dict | list) and value and draw(st.integers(0, 3)):
        holder = value
        key = draw(st.sampled_from(sorted(value) if isinstance(value, dict) else range(len(value))))
        value = value[key]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    new = draw(values)
    if holder is None:
        return new if action == "replace" else doc
    if action == "replace":
        holder[key] = new
    elif action == "remove":
        del holder[key]
    elif isinstance(holder, dict):
        holder[draw(_text)] = new
    else:
        holder.append(new)
    return doc


@pytest.mark.parametrize("reader", READERS)
@FUZZ
@given(data=st.data())
def test_a_mutated_definition_is_read_or_refused_with_a_message(
    reader: str, data: st.DataObject
) -> None:
    read, document = READERS[reader]
    doc = data.draw(_mutated(document))
    refused_properly(lambda: read(doc))


@pytest.mark.parametrize("reader", READERS)
@FUZZ
@given(value=_wrong_type)
def test_any_value_is_read_or_refused_with_a_message(reader: str, value: object) -> None:
    read, _ = READERS[reader]
    refused_properly(lambda: read(value))


@pytest.mark.parametrize("reader", TEXT_READERS)
@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        _json.map(lambda v: json.dumps(v, ensure_ascii=False)),
        st.builds(
            json.dumps,
            _mutated(SEQUENCE, _json) | _mutated(PROCESS, _json) | _mutated(PIPELINE, _json),
        ),
        st.just(sequence_io.dumps_toml(load_template("webinar_follow_up"))).flatmap(
            lambda toml: st.builds(
                lambda at, junk: toml[:at] + junk + toml[at:],
                st.integers(0, len(toml)),
                st.text(max_size=10),
            )
        ),
    )
)
def test_any_text_is_read_or_refused_with_a_message(reader: str, text: object) -> None:
    refused_properly(lambda: TEXT_READERS[reader](text))


def _nested_list(depth: int) -> list[Any]:
    top: list[Any] = []
    inner = top
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return top


def _nested_condition(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"field": "city", "op": "eq", "value": "x"}
    for level in range(depth):
        condition = {"not": condition} if level % 2 else {"all": [condition]}
    return condition


@pytest.mark.parametrize("reader", READERS)
def test_deep_documents_are_refused_not_crashed(reader: str) -> None:
    read, document = READERS[reader]
    deep_list = _nested_list(100_000)
    deep_condition = _nested_condition(10_000)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    for hostile in (
        deep_list,
        {**document, "description": deep_list},
        {**document, "condition": deep_condition, "audience": deep_condition},
        deep_condition,
        loop,
        {**document, "name": loop},
    ):
        with pytest.raises(ValidationError):
            read(hostile)
    if reader not in ("team", "routing_state"):  # engine-written state: not walked
        with pytest.raises(ValidationError, match="nested more than"):
            read({**document, "description": _nested_list(MAX_NESTING + 5)})


@pytest.mark.parametrize("reader", TEXT_READERS)
def test_deep_and_huge_texts_are_refused_not_crashed(reader: str) -> None:
    read = TEXT_READERS[reader]
    toml = reader.endswith("toml")
    deep = ("a = " if toml else "") + "[" * 100_000 + "]" * 100_000
    huge_number = '{"schema": ' + "1" * 5000 + "}" if not toml else "schema = " + "1" * 5000
    for hostile in (
        deep,
        deep.encode(),
        "x" * 2_000_000,
        "é" * 600_000,
        b"\xff" * 10,
        huge_number,
    ):
        with pytest.raises(ValidationError):
            read(hostile)


def test_a_huge_number_is_described_not_crashed() -> None:
    with pytest.raises(ValidationError, match="digits"):
        scoring_io.from_dict({**SCORING, "name": 10**5000})


# --- (b) CSV import -----------------------------------------------------------------------

_HEADERS = [
    "First Name",
    "last_name",
    "Topic",
    "email",
    "employees",
    "budget_amount",
    "estimated_close_date",
    "do_not_email",
    "source",
    "rating",
    "custom.segment",
    "form_id",
]
_cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "Ruiz", "ana@x.example", "40", "-5", "1200 EUR", "2026-02-30", "yes", "web", "hot"]
    ),
    st.sampled_from(['"', '""', "a,b", "line\nbreak", "\r", "\x00", "\ufeff", "=1+1", "\udcff"]),
    st.builds(lambda n: "y" * n, st.sampled_from([1_000, 200_000])),
)


@st.composite
def _csv_text(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 4)) == 0:
        raw = draw(st.binary(max_size=300))
        return raw.decode("utf-8", errors="ignore")
    headers = draw(
        st.lists(st.sampled_from(_HEADERS) | st.text(max_size=8), min_size=1, max_size=6)
    )
    rows = draw(st.lists(st.lists(_cell, min_size=0, max_size=len(headers) + 1), max_size=6))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    text = out.getvalue()
    if draw(st.booleans()):
        text = "\ufeff" + text
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', "\n", "\r", "\x00", ","])) + text[at:]
    return text


def _expected_rows(text: str) -> int | None:
    """The data rows a CSV reader finds (blank lines are not rows); None when it
    cannot read the text to the end."""
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return None
    return sum(1 for cells in records[1:] if any(cell.strip() for cell in cells))


def _engine() -> tuple[Salesflow, MemoryStore]:
    store = MemoryStore()
    return Salesflow(store, clock=FakeClock(T0), sink=ListSink()), store


@FUZZ
@given(text=_csv_text(), kind=st.sampled_from(["lead", "contact"]), existing=st.booleans())
def test_any_csv_is_imported_or_rejected_row_by_row(text: str, kind: str, existing: bool) -> None:
    engine, store = _engine()
    if existing:
        engine.create_lead(topic="Known", last_name="Ruiz", email="ana@x.example")
        engine.create_contact(last_name="Ruiz", email="ana@x.example")
    before = store.dump()
    report = None

    def run() -> None:
        nonlocal report
        report = engine.import_csv(io.StringIO(text, newline=""), kind=kind)

    if refused_properly(run) is not None:
        assert store.dump() == before
        return
    assert report is not None
    assert report.rows == report.created + report.updated + report.unchanged + len(report.rejected)
    assert all(r.reason.strip() for r in report.rejected)
    expected = _expected_rows(text)
    if expected is not None and "\x00" not in text:
        assert report.rows == expected
    if report.created + report.updated == 0:
        assert store.dump() == before


def test_a_huge_cell_is_rejected_and_the_rows_after_it_are_still_read() -> None:
    engine, _ = _engine()
    text = f"topic,last_name\nBig,{'x' * 200_000}\nLaptops,Ruiz\n"
    report = engine.import_csv(io.StringIO(text, newline=""))
    assert report.rows == report.created + len(report.rejected)
    assert report.created == 1
    assert len(report.rejected) == 1


# --- (c) engine commands ------------------------------------------------------------------

_arg = st.one_of(
    _scalar,
    st.just(datetime(2026, 3, 5, 9)),  # naive
    st.just(T0 + timedelta(days=1)),
    st.builds(lambda n: "z" * n, st.sampled_from([500, 100_000])),
    st.sampled_from(["", " ", "\x00", "lead-404", "a\x00b", -1, -(10**30), Decimal("-1"), 1.5]),
    st.sampled_from([Money(amount=Decimal("-5"), currency="EUR"), [], {}, (), object()]),
)
_FIELDS = [
    "topic",
    "last_name",
    "email",
    "employees",
    "budget_amount",
    "estimated_close_date",
    "owner_id",
    "custom",
    "rating",
    "description",
    "nickname",
]


class _World:
    """An engine with one of everything the fuzzed commands touch."""

    def __init__(self) -> None:
        self.engine, self.store = _engine()
        e = self.engine
        self.lead = e.create_lead(topic="Laptops", last_name="Ruiz", email="ana@x.example")
        self.contact = e.create_contact(last_name="Ruiz")
        e.publish_sequence(load_template("no_show_follow_up"))
        self.enrollment = e.connect(self.contact, "no_show_follow_up")
        e.publish_pipeline(
            Pipeline(
                id="sales",
                name="Sales",
                stages=[Stage(id="new", name="New"), Stage(id="won", name="Won", kind="won")],
            )
        )
        e.save_product(Product(id="laptop", name="Laptop"))
        e.save_price_list(
            PriceList(
                id="eu",
                name="Europe",
                currency="EUR",
                items={"laptop": Money(amount="1199.00", currency="EUR")},
            )
        )
        self.deal = e.create_deal("sales", name="10 laptops")


_WORLD: _World | None = None


def _world() -> _World:
    # one world for every example: a refused command must leave it as it was
    global _WORLD
    if _WORLD is None:
        _WORLD = _World()
    return _WORLD


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _commands(w: _World, a: Any, b: Any, fields: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    e = w.engine
    return {
        "create_lead": lambda: e.create_lead(**fields),
        "update_lead": lambda: e.update_lead(w.lead.id if a is None else a, **fields),
        "add_activity": lambda: e.add_activity(w.lead.ref if b is None else b, a, b),
        # an unhashable sequence id is a known crash: test_unhashable_ids_are_refused
        "connect": lambda: e.connect(w.lead.ref if b is None else b, a if _hashable(a) else "x"),
        "complete_step": lambda: e.complete_step(w.enrollment.id, a, outcome=b),
        "record_interaction": lambda: e.record_interaction(
            a, contact_id=w.contact.id, occurred_at=b
        ),
        "create_deal": lambda: e.create_deal("sales" if a is None else a, **fields),
        "move_stage": lambda: e.move_stage(w.deal.ref if b is None else b, a),
        "set_opportunity_lines": lambda: e.set_opportunity_lines(
            w.deal.id,
            [OpportunityLine(product_id="laptop", quantity=Decimal(1))] if a is None else [a],
            price_list_id=b,
        ),
        "report": lambda: e.report(a, since=b),
    }


COMMANDS = [
    "create_lead",
    "update_lead",
    "add_activity",
    "connect",
    "complete_step",
    "record_interaction",
    "create_deal",
    "move_stage",
    "set_opportunity_lines",
    "report",
]


@pytest.mark.parametrize("command", COMMANDS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=_arg,
    b=_arg,
    fields=st.dictionaries(st.sampled_from(_FIELDS), _arg, max_size=3),
)
def test_hostile_arguments_are_refused_and_change_nothing(
    command: str, a: Any, b: Any, fields: dict[str, Any]
) -> None:
    world = _world()
    before = world.store.dump()
    if refused_properly(_commands(world, a, b, fields)[command]) is not None:
        assert world.store.dump() == before


def test_lines_that_are_not_a_list_are_refused() -> None:
    world = _World()
    before = world.store.dump()
    with pytest.raises(ValidationError):
        world.engine.set_opportunity_lines(world.deal.id, True)  # type: ignore[arg-type]
    assert world.store.dump() == before


@pytest.mark.parametrize("command", ["connect", "complete_step"])
@pytest.mark.parametrize("bad_id", [[], {}])
def test_unhashable_ids_are_refused(command: str, bad_id: object) -> None:
    world = _World()
    before = world.store.dump()
    call: Callable[[], object] = (
        (lambda: world.engine.connect(world.contact, bad_id))  # type: ignore[arg-type]
        if command == "connect"
        else (lambda: world.engine.complete_step(bad_id, "x"))  # type: ignore[arg-type]
    )
    with pytest.raises(SalesflowError):
        call()
    assert world.store.dump() == before


# --- templates ----------------------------------------------------------------------------


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=40),
        st.lists(
            st.sampled_from(
                [
                    "{name}",
                    "{account.name}",
                    "{custom.tier}",
                    "{name.__class__}",
                    "{name!r}",
                    "{name:>99999}",
                    "{0}",
                    "{__import__('os')}",
                    "{custom.a.b}",
                    "{{",
                    "}}",
                    "{",
                    "}",
                    "plain ",
                    "\x00",
                ]
            ),
            max_size=6,
        ).map("".join),
    )
)
def test_a_template_reads_fields_or_is_refused(text: str) -> None:
    try:
        template = Template(text)
    except SalesflowError as error:
        assert str(error).strip()  # noqa: PT017 - building may also succeed
        return
    values = {name: f"<{name}>" for name in template.placeholders}
    rendered = template.render(values)
    for name in template.placeholders:
        assert name.partition(".")[0] in ("contact", "account", "custom") or "." not in name
        assert not name.startswith("_")
        assert f"<{name}>" in rendered
    # nothing but field placeholders: removing them leaves the literal text
    assert "__" not in "".join(template.placeholders)
