"""Random valid sequence graphs: validation accepts them, and stats() bounds every path.

Hypothesis builds acyclic graphs the way a seller would draw them: activity steps,
waits of at most 30 days that never end a path, email conditions right after an
email (or automated email, or A/B test) and call conditions right after a call,
field conditions, status changes the record type allows, advances to other
sequences and ends; later steps are sometimes shared by several branches. What a
seller may rely on:

* a graph drawn by those rules has no problems;
* no record can finish a path faster than ``shortest`` or slower than ``longest``,
  and some path takes exactly each of them;
* breaking one branch (pointing it at a step that does not exist) is reported as
  exactly that, plus the steps that break leaves unreachable.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import timedelta

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.conditions import field
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
    Step,
    StepKind,
    UpdateFieldStep,
    WaitStep,
    successors,
)
from salesflow.sequences.validation import STATUSES, ProblemCode, stats, validate
from salesflow.values import RecordKind

RECORD_TYPES = [RecordKind.LEAD, RecordKind.CONTACT, RecordKind.ACCOUNT, RecordKind.OPPORTUNITY]
ACTIVITY_KINDS = sorted(
    [
        StepKind.EMAIL,
        StepKind.AUTO_EMAIL,
        StepKind.CALL,
        StepKind.TASK,
        StepKind.LINKEDIN,
        StepKind.SMS,
        StepKind.AUTO_SMS,
    ]
)
EMAIL_KINDS = {StepKind.EMAIL, StepKind.AUTO_EMAIL}
MAX_STEPS = 40


def spans(*, max_hours: int, min_hours: int = 0) -> st.SearchStrategy[Span]:
    """Spans of ``min_hours`` to ``max_hours``, written as days and hours."""
    return st.integers(min_hours, max_hours).map(lambda h: Span(days=h // 24, hours=h % 24))


@st.composite
def valid_definitions(draw: st.DrawFn) -> SequenceDefinition:
    """A random valid acyclic sequence definition (advance targets named ``next-*``)."""
    record_type = draw(st.sampled_from(RECORD_TYPES))
    steps: dict[str, Step] = {}
    counter = itertools.count()

    def new_id(prefix: str) -> str:
        return f"{prefix}{next(counter)}"

    def add(step: Step) -> str:
        steps[step.id] = step
        return step.id

    def shared(after_wait: bool) -> str | None:
        """Sometimes point at a step already built (never at a condition)."""
        candidates = [
            s.id
            for s in steps.values()
            if not isinstance(s, ConditionStep) and not (after_wait and isinstance(s, EndStep))
        ]
        if candidates and draw(st.integers(0, 3)) == 0:
            return draw(st.sampled_from(candidates))
        return None

    def end() -> str:
        return add(EndStep(id=new_id("end"), outcome=draw(st.sampled_from(["won", "lost"]))))

    def advance() -> str:
        return add(AdvanceStep(id=new_id("adv"), sequence_id=f"next-{draw(st.integers(1, 3))}"))

    def terminal(after_wait: bool) -> str:
        if draw(st.booleans()):
            return advance()
        if after_wait:
            task = new_id("task")
            return add(ActivityStep(id=task, kind="task", subject="Wrap up", next=end()))
        return end()

    def condition(watched: str, watched_kind: StepKind, budget: int) -> str:
        cid = new_id("cond")
        yes = build(budget - 1)
        no = build(budget - 1)
        if watched_kind is StepKind.CALL:
            watch: EmailWatch | CallWatch = CallWatch()
            within = draw(spans(max_hours=72))
        else:
            events = draw(
                st.lists(st.sampled_from(["opened", "replied", "link_clicked"]), min_size=1)
            )
            watch = EmailWatch(events=events, match=draw(st.sampled_from(["any", "all"])))
            within = draw(spans(min_hours=1, max_hours=7 * 24))
        return add(
            ConditionStep(
                id=cid,
                watch=watch,
                within=within,
                advance_early=draw(st.booleans()),
                watches=watched if draw(st.booleans()) else None,
                yes=yes,
                no=no,
            )
        )

    def build(budget: int, *, after_wait: bool = False, first: bool = False) -> str:
        """Build a sub-path and return the id of its first step."""
        if not first and (reused := shared(after_wait)) is not None:
            return reused
        if budget <= 0 or len(steps) >= MAX_STEPS:
            return terminal(after_wait) if not first else end()
        kinds = ["activity", "activity", "wait", "update", "status", "ab", "field"]
        if not first:
            kinds += ["advance"]
        if not after_wait:
            kinds += ["end"]
        choice = draw(st.sampled_from(kinds))
        if choice == "end":
            return end()
        if choice == "advance":
            return advance()
        if choice == "wait":
            nxt = build(budget - 1, after_wait=True)
            return add(WaitStep(id=new_id("wait"), span=draw(spans(max_hours=720)), next=nxt))
        if choice == "field":
            cid = new_id("cond")
            yes, no = build(budget - 1), build(budget - 1)
            watch = FieldWatch(condition=field("rating").eq("hot"))
            return add(ConditionStep(id=cid, watch=watch, within=Span(), yes=yes, no=no))
        if choice in ("activity", "ab"):
            sid = new_id("act")
            kind = draw(st.sampled_from(ACTIVITY_KINDS)) if choice == "activity" else None
            watchable = kind is None or kind in EMAIL_KINDS or kind is StepKind.CALL
            if watchable and draw(st.booleans()):
                nxt = condition(sid, kind or StepKind.AB_TEST, budget - 1)
            else:
                nxt = build(budget - 1)
            if kind is None:
                return add(ABTestStep(id=sid, variant_a="A", variant_b="B", next=nxt))
            return add(ActivityStep(id=sid, kind=kind, subject=f"Step {sid}", next=nxt))
        if choice == "update" or not STATUSES[record_type]:
            nxt = build(budget - 1)
            return add(UpdateFieldStep(id=new_id("upd"), field="rating", value="hot", next=nxt))
        status = draw(st.sampled_from(sorted(STATUSES[record_type])))
        # set_status closes the record: only an end may follow it
        return add(SetStatusStep(id=new_id("set"), status=status, reason="lost", next=end()))

    entry = build(draw(st.integers(0, 12)), first=True)
    # List the steps in a shuffled order: validation must not depend on it.
    listed = draw(st.permutations(list(steps.values())))
    return SequenceDefinition(
        id="seq", name="Generated", record_type=record_type, entry=entry, steps=listed
    )


def active(definition: SequenceDefinition) -> Mapping[str, RecordKind]:
    return {f"next-{i}": definition.record_type for i in range(1, 4)}


def path_durations(definition: SequenceDefinition) -> Iterator[tuple[timedelta, timedelta]]:
    """The least and greatest duration of every path from the entry, enumerated."""
    by_id = definition.by_id

    def walk(
        step_id: str, low: timedelta, high: timedelta
    ) -> Iterator[tuple[timedelta, timedelta]]:
        step = by_id[step_id]
        edges = list(successors(step))
        if not edges:
            yield low, high
        for label, target in edges:
            lo = hi = timedelta(0)
            if isinstance(step, WaitStep):
                lo = hi = step.span.delta
            elif isinstance(step, ConditionStep):
                hi = step.within.delta
                lo = timedelta(0) if label == "yes" and step.advance_early else hi
            yield from walk(target, low + lo, high + hi)

    yield from walk(definition.entry, timedelta(0), timedelta(0))


def with_branch(step: Step, label: str, target: str) -> Step:
    """``step`` with its ``label`` branch (next, yes or no) pointing at ``target``."""
    if isinstance(step, ConditionStep):
        return attrs.evolve(step, yes=target) if label == "yes" else attrs.evolve(step, no=target)
    assert not isinstance(step, AdvanceStep | EndStep)
    return attrs.evolve(step, next=target)


def reachable_ids(definition: SequenceDefinition) -> set[str]:
    by_id = definition.by_id
    seen = {definition.entry}
    todo = [definition.entry]
    while todo:
        for _, target in successors(by_id[todo.pop()]):
            if target in by_id and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@settings(max_examples=300)
@given(valid_definitions())
def test_a_graph_drawn_by_the_rules_has_no_problems(definition: SequenceDefinition) -> None:
    assert validate(definition, active_sequences=active(definition)) == []


@settings(max_examples=300)
@given(valid_definitions())
def test_every_path_lies_between_shortest_and_longest(definition: SequenceDefinition) -> None:
    stat = stats(definition)
    assert stat.longest >= stat.shortest >= timedelta(0)
    paths = list(path_durations(definition))
    for low, high in paths:
        assert stat.shortest <= low <= high <= stat.longest
    assert min(low for low, _ in paths) == stat.shortest
    assert max(high for _, high in paths) == stat.longest


@given(valid_definitions())
def test_the_step_count_is_the_number_of_actions(definition: SequenceDefinition) -> None:
    not_actions = (WaitStep, ConditionStep, EndStep)
    actions = [s for s in definition.steps if not isinstance(s, not_actions)]
    assert stats(definition).steps == len(actions)


@settings(max_examples=300)
@given(valid_definitions(), st.data())
def test_a_branch_to_a_missing_step_is_reported_as_exactly_that(
    definition: SequenceDefinition, data: st.DataObject
) -> None:
    edges = [(i, label) for i, s in enumerate(definition.steps) for label, _ in successors(s)]
    if not edges:
        return
    index, label = data.draw(st.sampled_from(edges))
    broken = with_branch(definition.steps[index], label, "no-such-step")
    steps = list(definition.steps)
    steps[index] = broken
    mutated = attrs.evolve(definition, steps=steps)

    problems = validate(mutated, active_sequences=active(definition))
    others = [(p.step_id, p.code) for p in problems if p.code != ProblemCode.UNREACHABLE]
    assert others == [(broken.id, ProblemCode.MISSING_TARGET)]
    assert any("'no-such-step'" in p.message for p in problems)
    unreachable = {p.step_id for p in problems if p.code == ProblemCode.UNREACHABLE}
    assert unreachable == {s.id for s in mutated.steps} - reachable_ids(mutated)
