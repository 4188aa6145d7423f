"""The Mermaid flowchart of a sequence: a node per step, an edge per successor, safe labels,
and a record's progress highlighted."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from salesflow.conditions import field
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
    Step,
    UpdateFieldStep,
    WaitStep,
    successors,
)
from salesflow.sequences.render import Progress, mermaid

NODE = re.compile(r"^    (?P<id>\w+)(?P<open>[\[({/]+)\"(?P<label>[^\"]*)\"(?P<close>[\])}/]+)$")
EDGE = re.compile(r"^    (?P<src>\w+) -->(?:\|\"(?P<label>[^\"]*)\"\|)? (?P<dst>\w+)$")


def sequence(*steps: Step, entry: str | None = None) -> SequenceDefinition:
    return SequenceDefinition(
        id="seq",
        name="Test sequence",
        record_type="lead",
        entry=entry or steps[0].id,
        steps=list(steps),
    )


def outbound() -> SequenceDefinition:
    """Email, wait, call; answered → meeting, not answered → disqualify."""
    return sequence(
        ActivityStep(id="intro", kind="auto_email", subject="Introduction", next="research"),
        ActivityStep(
            id="research",
            kind="linkedin",
            subject="Look them up",
            linkedin_action="research",
            next="call",
        ),
        ActivityStep(id="call", kind="call", subject="Intro call", next="answered"),
        ConditionStep(id="answered", watch=CallWatch(), yes="meeting", no="pause"),
        ActivityStep(id="meeting", kind="task", subject="Book a meeting", next="booked"),
        EndStep(id="booked", outcome="meeting_booked"),
        WaitStep(id="pause", span=Span(days=2), next="disqualify"),
        SetStatusStep(id="disqualify", status="disqualified", reason="cannot_contact", next="lost"),
        EndStep(id="lost", outcome="lead_disqualified"),
    )


def parse(text: str) -> tuple[dict[str, tuple[str, str, str]], list[tuple[str, str | None, str]]]:
    """Nodes ``{id: (open, label, close)}`` and edges ``[(src, label, dst)]`` of a diagram;
    every line must be a node, an edge or a class line."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, tuple[str, str, str]] = {}
    edges: list[tuple[str, str | None, str]] = []
    for line in lines[1:]:
        if node := NODE.match(line):
            assert node["id"] not in nodes
            nodes[node["id"]] = (node["open"], node["label"], node["close"])
        elif edge := EDGE.match(line):
            edges.append((edge["src"], edge["label"], edge["dst"]))
        else:
            assert re.match(r"^    class(Def)? ", line), f"unexpected line {line!r}"
    return nodes, edges


def test_one_node_per_step_plus_a_start_node_pointing_at_the_entry() -> None:
    definition = outbound()
    nodes, edges = parse(mermaid(definition))
    assert set(nodes) == {"start"} | {f"s{i}" for i in range(len(definition.steps))}
    assert nodes["start"] == ("((", "Start", "))")
    assert ("start", None, "s0") in edges


def test_one_edge_per_successor_with_yes_and_no_on_conditions() -> None:
    definition = outbound()
    _, edges = parse(mermaid(definition))
    node = {step.id: f"s{i}" for i, step in enumerate(definition.steps)}
    expected = [
        (node[step.id], None if label == "next" else label, node[to])
        for step in definition.steps
        for label, to in successors(step)
    ]
    assert edges[1:] == expected
    assert ("s3", "yes", "s4") in edges
    assert ("s3", "no", "s6") in edges


def test_shapes_and_labels_follow_the_step_kind() -> None:
    nodes, _ = parse(mermaid(outbound()))
    assert nodes["s0"] == ("[", "Automated email: Introduction", "]")
    assert nodes["s1"] == ("[", "LinkedIn research: Look them up", "]")
    assert nodes["s2"] == ("[", "Call: Intro call", "]")
    assert nodes["s3"] == ("{", "Call answered?", "}")
    assert nodes["s5"] == ("([", "End: meeting booked", "])")
    assert nodes["s6"] == ("(", "Wait 2 d", ")")
    assert nodes["s7"] == ("[[", "Set status: disqualified (cannot contact)", "]]")


def test_every_kind_of_condition_describes_what_it_watches() -> None:
    definition = sequence(
        ActivityStep(id="mail", kind="email", subject="Hello", next="c1"),
        ConditionStep(
            id="c1",
            watch=EmailWatch(events=["replied"]),
            within=Span(days=1),
            yes="c2",
            no="c3",
        ),
        ConditionStep(
            id="c2",
            watch=EmailWatch(events=["opened", "link_clicked"], match="all"),
            within=Span(days=2, hours=6),
            advance_early=True,
            watches="mail",
            yes="c3",
            no="c4",
        ),
        ConditionStep(id="c3", watch=CallWatch(outcomes=["voicemail", "busy"]), yes="c4", no="c5"),
        ConditionStep(
            id="c4", watch=FieldWatch(condition=field("employees").ge(50)), yes="c5", no="end"
        ),
        ConditionStep(id="c5", watch=StageWatch(stage="propose"), yes="end", no="end"),
        EndStep(id="end", outcome="done"),
    )
    nodes, _ = parse(mermaid(definition))
    assert nodes["s1"][1] == "Email replied within 1 d?"
    assert nodes["s2"][1] == (
        "Email #quot;Hello#quot; opened and link clicked within 2 d 6 h? "
        "(moves on as soon as it happens)"
    )
    assert nodes["s3"][1] == "Call outcome is busy or voicemail?"
    assert nodes["s4"][1] == "employees #gt;= 50?"
    assert nodes["s5"][1] == "Stage is propose?"
    assert all(nodes[f"s{i}"][0] == "{" for i in range(1, 6))


def test_field_updates_advances_and_ab_tests_have_their_own_nodes() -> None:
    definition = sequence(
        ABTestStep(
            id="ab", variant_a="Short intro", variant_b="Long intro", split_percent=30, next="rate"
        ),
        UpdateFieldStep(id="rate", field="rating", value="warm", next="move"),
        AdvanceStep(id="move", sequence_id="nurture"),
    )
    nodes, _ = parse(mermaid(definition))
    assert nodes["s0"] == ("[", "A/B test: Short intro (30 %) / Long intro (70 %), by replies", "]")
    assert nodes["s1"] == ("[[", "Set rating = 'warm'", "]]")
    assert nodes["s2"] == ("[/", "Advance to sequence: nurture", "/]")


HOSTILE = 'a"]; click x call alert(1)'


def test_hostile_labels_stay_text() -> None:
    definition = sequence(
        ActivityStep(id="x", kind="task", subject=HOSTILE, next="y"),
        ActivityStep(id="y", kind="email", subject="<b>#1</b> & `code` ```\nline two", next="z"),
        EndStep(id="z", outcome="done"),
    )
    text = mermaid(definition)
    nodes, edges = parse(text)
    assert nodes["s0"] == ("[", "Task: a#quot;]; click x call alert(1)", "]")
    assert nodes["s1"][1] == (
        "Email: #lt;b#gt;#35;1#lt;/b#gt; #amp; #96;code#96; #96;#96;#96; line two"
    )
    assert len(edges) == 3
    # Every label is one quoted string without a raw angle bracket or backtick.
    assert not any(re.search(r"[<>`]", label) for _, label, _ in nodes.values())
    assert "`" not in text
    assert text.count('"') == 2 * (len(nodes))
    assert not any(line.lstrip().startswith("click") for line in text.splitlines())


def test_odd_step_ids_never_reach_the_diagram() -> None:
    definition = sequence(
        ActivityStep(id="end", kind="call", subject="Call", next='a"]-->b'),
        EndStep(id='a"]-->b', outcome="done"),
    )
    nodes, edges = parse(mermaid(definition))
    assert set(nodes) == {"start", "s0", "s1"}
    assert edges == [("start", None, "s0"), ("s0", None, "s1")]


def test_branches_to_missing_steps_point_at_a_marked_node() -> None:
    definition = sequence(
        ConditionStep(id="c", watch=CallWatch(), yes="gone", no="also_gone"),
        entry="c",
    )
    text = mermaid(definition)
    nodes, edges = parse(text)
    assert nodes["m0"] == ("[", "Missing step: gone", "]")
    assert nodes["m1"] == ("[", "Missing step: also_gone", "]")
    assert ("s0", "yes", "m0") in edges
    assert "    class m0,m1 missing" in text.splitlines()


def test_progress_marks_the_current_and_the_completed_steps() -> None:
    text = mermaid(outbound(), progress=Progress(current="call", done={"intro", "research"}))
    lines = text.splitlines()
    assert "    class s0,s1 done" in lines
    assert "    class s2 current" in lines
    assert any(line.startswith("    classDef current ") for line in lines)
    assert any(line.startswith("    classDef done ") for line in lines)


def test_the_current_step_is_not_also_drawn_as_done() -> None:
    # A call loop: the record is on the call a second time.
    text = mermaid(outbound(), progress=Progress(current="call", done={"call"}))
    assert "    class s2 current" in text.splitlines()
    assert " done" not in text


def test_no_classes_without_progress_and_a_finished_record_has_no_current_step() -> None:
    assert "class" not in mermaid(outbound())
    finished = mermaid(outbound(), progress=Progress(done={"intro", "booked"}))
    assert "    class s0,s5 done" in finished.splitlines()
    assert "current" not in finished


def test_progress_naming_an_unknown_step_is_refused() -> None:
    with pytest.raises(ValidationError, match="'nope'"):
        mermaid(outbound(), progress=Progress(current="nope"))
    with pytest.raises(ValidationError, match="'gone'"):
        mermaid(outbound(), progress=Progress(done={"gone", "intro"}))


def test_progress_done_must_be_step_ids() -> None:
    with pytest.raises(ValidationError, match=r"Progress\.done"):
        Progress(done="intro")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"Progress\.done"):
        Progress(done={1})  # type: ignore[arg-type]
    assert Progress(done=["a", "a"]).done == frozenset({"a"})  # type: ignore[arg-type]


def test_the_same_definition_gives_the_same_text() -> None:
    progress = Progress(current="pause", done={"call", "answered", "intro", "research"})
    first = mermaid(outbound(), progress=progress)
    assert mermaid(outbound(), progress=progress) == first
    assert first.endswith("\n")
    assert first.splitlines()[-1] == "    class s6 current"


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_diagrams_on_the_sequences_page_are_what_the_example_renders() -> None:
    page = (DOCS / "sequences.md").read_text(encoding="utf-8")
    namespace: dict[str, Any] = {}
    for code in re.findall(r"^```python\n(.*?)^```$", page, re.MULTILINE | re.DOTALL):
        exec(code, namespace)
    shown = re.findall(r"^```mermaid\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    assert shown[:2] == [namespace["diagram"], namespace["progress_diagram"]]


def load_docs_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("salesflow_docs_hooks", DOCS / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_unknown_sequence_template_marker_fails_the_docs_build() -> None:
    hooks = load_docs_hooks()
    with pytest.raises(ValueError, match="no-such-template"):
        hooks.render("<!-- sequence-template: no-such-template -->")
