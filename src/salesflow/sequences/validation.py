"""Whole-graph rules of a sequence definition: every problem at once, and its statistics.

`validate` walks a `SequenceDefinition` and returns every `Problem` it finds, each
naming the step and saying how to fix it; `require_valid` turns them into one
`InvalidDefinition` (publishing a definition calls it). Local rules (a split between
10 and 90 %, non-negative spans, unique ids) are checked when the steps are built, in
`salesflow.sequences.definition`.

`stats` measures a definition the way the product's template figures do:

* **Step count**: the actions only. Every step of the definition counts except
  waits, conditions and ends; that is, activity steps (email, automated email,
  call, task, LinkedIn, SMS, automated SMS), ``update_field``, ``set_status``,
  ``advance_to_sequence`` and ``ab_test``. The templates' documented figures
  ("seven steps, excluding wait steps") are reached this way; counting conditions
  too would overshoot every one of them by the number of yes/no branches.
* **Durations**: a path costs the sum of its wait spans plus the time limits
  (``within``) of the conditions it passes. By default a condition costs its whole
  limit on both branches, because the yes branch starts only when the limit has
  elapsed; with ``advance_early`` the yes branch costs anything from zero (shortest)
  to the whole limit (longest, the event arriving just before the limit). Activity
  steps and A/B tests cost nothing (an A/B test sends at once; its deadline only
  decides the winner). ``shortest`` and ``longest`` range over every path from the
  entry to an ``end``, an ``advance_to_sequence`` or a step with no successor. A
  graph with a loop has no longest path, so `stats` refuses it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from enum import StrEnum

import attrs

from salesflow.errors import InvalidDefinition
from salesflow.sequences.definition import (
    AdvanceStep,
    CallWatch,
    ConditionStep,
    EmailWatch,
    EndStep,
    SequenceDefinition,
    SetStatusStep,
    Step,
    StepKind,
    WaitStep,
    step_kind,
    successors,
)
from salesflow.values import RecordKind

__all__ = [
    "MAX_WAIT",
    "STATUSES",
    "Problem",
    "ProblemCode",
    "SequenceStats",
    "require_valid",
    "stats",
    "validate",
]

MAX_WAIT = timedelta(days=30)
"""The longest a single wait step may last."""

STATUSES: Mapping[RecordKind, frozenset[str]] = {
    RecordKind.LEAD: frozenset({"disqualified", "qualified"}),
    RecordKind.OPPORTUNITY: frozenset({"won", "lost"}),
    RecordKind.CONTACT: frozenset({"inactive"}),
    RecordKind.ACCOUNT: frozenset({"inactive"}),
}
"""The statuses a ``set_status`` step may set, per record type of the sequence:
each closes the record (a lead qualified or disqualified, an opportunity won or
lost, a contact or account deactivated)."""

_NEEDS_REASON = frozenset({(RecordKind.LEAD, "disqualified")})

_EMAIL_KINDS = frozenset({StepKind.EMAIL, StepKind.AUTO_EMAIL, StepKind.AB_TEST})
_CALL_KINDS = frozenset({StepKind.CALL})
_UNCOUNTED = frozenset({StepKind.WAIT, StepKind.CONDITION, StepKind.END})


class ProblemCode(StrEnum):
    """What is wrong with a definition; the ``code`` of a `Problem`."""

    MISSING_ENTRY = "missing_entry"
    MISSING_TARGET = "missing_target"
    UNREACHABLE = "unreachable"
    DEAD_END = "dead_end"
    WAIT_LAST = "wait_last"
    WAIT_TOO_LONG = "wait_too_long"
    CYCLE_WITHOUT_WAIT = "cycle_without_wait"
    WRONG_WATCHED_KIND = "wrong_watched_kind"
    MISSING_WATCHED_STEP = "missing_watched_step"
    WATCHED_STEP_NOT_BEFORE = "watched_step_not_before"
    AMBIGUOUS_WATCH = "ambiguous_watch"
    NO_TIME_LIMIT = "no_time_limit"
    WRONG_STATUS = "wrong_status"
    MISSING_REASON = "missing_reason"
    ADVANCE_FIRST = "advance_first"
    ADVANCE_TO_SELF = "advance_to_self"
    ADVANCE_TARGET_INACTIVE = "advance_target_inactive"
    ADVANCE_TARGET_WRONG_TYPE = "advance_target_wrong_type"
    STEP_AFTER_CLOSE = "step_after_close"


@attrs.frozen
class Problem:
    """One thing wrong with a definition.

    Attributes:
        step_id: The step at fault, or ``None`` when the problem is about the whole
            definition (a missing entry step).
        code: A `ProblemCode` value, stable for hosts to match on.
        message: A complete sentence naming the step and saying how to fix it.
    """

    step_id: str | None
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


@attrs.frozen
class SequenceStats:
    """The size and duration of a sequence, as `stats` measures them.

    Attributes:
        steps: The number of actions (every step except waits, conditions and ends).
        shortest: The quickest way from the entry to the end of a path.
        longest: The slowest way from the entry to the end of a path.
    """

    steps: int
    shortest: timedelta
    longest: timedelta

    @property
    def shortest_days(self) -> float:
        """`shortest` in days (fractional when hours are involved)."""
        return self.shortest / timedelta(days=1)

    @property
    def longest_days(self) -> float:
        """`longest` in days (fractional when hours are involved)."""
        return self.longest / timedelta(days=1)


# --- validate ------------------------------------------------------------------------


def validate(
    definition: SequenceDefinition,
    *,
    active_sequences: Mapping[str, RecordKind] | None = None,
) -> list[Problem]:
    """Every problem of ``definition``, never stopping at the first.

    The rules: the entry step exists and is not an ``advance_to_sequence``; every
    branch points at a step that exists; every step is reachable from the entry;
    every path ends in an ``end`` or an ``advance_to_sequence``; no wait is last or
    longer than 30 days; every loop contains a wait; an email condition watches an
    email, automated email or A/B test step and has a time limit, and a call
    condition watches a call (the watched step is ``watches``, else the single kind
    of step just before the condition); ``set_status`` sets a status the record
    type has (a lead is disqualified only with a reason); an
    ``advance_to_sequence`` names another sequence and, when ``active_sequences`` is
    given, an active one of the same record type.

    Args:
        definition: The definition to check.
        active_sequences: The ids of the active sequences with their record types,
            to check ``advance_to_sequence`` targets against; ``None`` skips that
            check (e.g. when validating a definition on its own).

    Returns:
        The problems in a stable order (entry first, then step by step in the order
        the steps are listed, then loops); empty when the definition is valid.
    """
    by_id = definition.by_id
    problems: list[Problem] = []
    entry_ok = definition.entry in by_id
    if not entry_ok:
        problems.append(
            Problem(
                None,
                ProblemCode.MISSING_ENTRY,
                f"sequence {definition.id!r} starts at step {definition.entry!r}, which does "
                f"not exist; set entry to one of its steps ({_ids(definition.steps)})",
            )
        )
    reachable = _reachable(definition.entry, by_id) if entry_ok else None
    predecessors = _predecessors(definition, reachable)
    for step in definition.steps:
        problems.extend(_step_problems(definition, step, by_id, reachable, predecessors))
        if isinstance(step, AdvanceStep):
            problems.extend(_advance_problems(definition, step, active_sequences))
    problems.extend(_loops_without_wait(definition, by_id))
    return problems


def require_valid(
    definition: SequenceDefinition,
    *,
    active_sequences: Mapping[str, RecordKind] | None = None,
) -> None:
    """Raise unless ``definition`` is valid (publishing calls this).

    Args:
        definition: The definition to check.
        active_sequences: As for `validate`.

    Raises:
        InvalidDefinition: With every problem's message, when `validate` finds any.
    """
    problems = validate(definition, active_sequences=active_sequences)
    if problems:
        raise InvalidDefinition(problems=[p.message for p in problems])


def _ids(steps: tuple[Step, ...]) -> str:
    return ", ".join(repr(s.id) for s in steps)


def _targets(step: Step) -> Iterator[str]:
    for _, target in successors(step):
        yield target


def _reachable(entry: str, by_id: Mapping[str, Step]) -> set[str]:
    seen = {entry}
    todo = [entry]
    while todo:
        for target in _targets(by_id[todo.pop()]):
            if target in by_id and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _predecessors(
    definition: SequenceDefinition, reachable: set[str] | None
) -> dict[str, list[Step]]:
    """The steps leading to each step; only reachable ones when the entry exists."""
    result: dict[str, list[Step]] = {}
    for step in definition.steps:
        if reachable is not None and step.id not in reachable:
            continue
        for target in dict.fromkeys(_targets(step)):
            result.setdefault(target, []).append(step)
    return result


def _step_problems(
    definition: SequenceDefinition,
    step: Step,
    by_id: Mapping[str, Step],
    reachable: set[str] | None,
    predecessors: Mapping[str, list[Step]],
) -> Iterator[Problem]:
    for label, target in successors(step):
        if target not in by_id:
            yield Problem(
                step.id,
                ProblemCode.MISSING_TARGET,
                f"step {step.id!r} goes ({label}) to step {target!r}, which does not exist; "
                f"point {label} at one of the steps ({_ids(definition.steps)}) or add the step",
            )
    if reachable is not None and step.id not in reachable:
        yield Problem(
            step.id,
            ProblemCode.UNREACHABLE,
            f"step {step.id!r} cannot be reached from the entry step {definition.entry!r}; "
            f"point a branch of an earlier step at it, or delete it",
        )
    if isinstance(step, WaitStep):
        yield from _wait_problems(step, by_id)
    elif isinstance(step, ConditionStep):
        yield from _condition_problems(step, by_id, reachable, predecessors)
    elif isinstance(step, SetStatusStep):
        yield from _status_problems(definition, step, by_id)
    elif not isinstance(step, AdvanceStep | EndStep) and step.next is None:
        yield Problem(
            step.id,
            ProblemCode.DEAD_END,
            f"step {step.id!r} ({step_kind(step).value}) has no next step; add an end step "
            f"with the path's outcome after it, or point next at another step",
        )


def _wait_problems(step: WaitStep, by_id: Mapping[str, Step]) -> Iterator[Problem]:
    if step.span.delta > MAX_WAIT:
        hours = step.span.days * 24 + step.span.hours
        yield Problem(
            step.id,
            ProblemCode.WAIT_TOO_LONG,
            f"wait {step.id!r} lasts {step.span} ({hours} h); a wait may last at most 30 days "
            f"(720 h): shorten it",
        )
    if step.next is None or isinstance(by_id.get(step.next), EndStep):
        after = "nothing follows it" if step.next is None else f"only end {step.next!r} follows"
        yield Problem(
            step.id,
            ProblemCode.WAIT_LAST,
            f"wait {step.id!r} is the last step of its path ({after}); a sequence may not end "
            f"with a wait: delete the wait or put a step between it and the end",
        )


def _condition_problems(
    step: ConditionStep,
    by_id: Mapping[str, Step],
    reachable: set[str] | None,
    predecessors: Mapping[str, list[Step]],
) -> Iterator[Problem]:
    watch = step.watch
    if isinstance(watch, EmailWatch):
        allowed, what = _EMAIL_KINDS, "an email, automated email or A/B test step"
        if step.within.delta <= timedelta(0):
            yield Problem(
                step.id,
                ProblemCode.NO_TIME_LIMIT,
                f"email condition {step.id!r} has no time limit; set within to how long to "
                f"wait for the customer (e.g. Span(days=2))",
            )
    elif isinstance(watch, CallWatch):
        allowed, what = _CALL_KINDS, "a call step"
    else:
        return
    kind_name = "email" if isinstance(watch, EmailWatch) else "call"
    if step.watches is not None:
        watched = by_id.get(step.watches)
        if watched is None:
            yield Problem(
                step.id,
                ProblemCode.MISSING_WATCHED_STEP,
                f"condition {step.id!r} watches step {step.watches!r}, which does not exist; "
                f"set watches to {what} before it",
            )
            return
        if step_kind(watched) not in allowed:
            yield _wrong_kind(step, watched, kind_name, what)
        elif (reachable is None or step.id in reachable) and not _leads_to(
            watched.id, step.id, by_id
        ):
            yield Problem(
                step.id,
                ProblemCode.WATCHED_STEP_NOT_BEFORE,
                f"condition {step.id!r} watches step {watched.id!r}, which never comes before "
                f"it; set watches to {what} on the way to the condition",
            )
        return
    if reachable is not None and step.id not in reachable:
        return  # reported as unreachable; what comes before it is not known yet
    before = predecessors.get(step.id, [])
    kinds = {step_kind(p) for p in before}
    if before and kinds <= allowed:
        return
    if len(kinds) == 1:
        yield _wrong_kind(step, before[0], kind_name, what)
        return
    came_from = (
        f"it can be reached from {_ids(tuple(before))} of different kinds"
        if before
        else "no step comes before it"
    )
    yield Problem(
        step.id,
        ProblemCode.AMBIGUOUS_WATCH,
        f"{kind_name} condition {step.id!r} cannot tell which step it watches ({came_from}); "
        f"set watches to {what}",
    )


def _wrong_kind(step: ConditionStep, watched: Step, kind_name: str, what: str) -> Problem:
    return Problem(
        step.id,
        ProblemCode.WRONG_WATCHED_KIND,
        f"{kind_name} condition {step.id!r} watches step {watched.id!r}, a "
        f"{step_kind(watched).value} step; a {kind_name} condition can only watch {what}: "
        f"move the condition after one, or set watches to one",
    )


def _leads_to(source: str, target: str, by_id: Mapping[str, Step]) -> bool:
    seen = {source}
    todo = [source]
    while todo:
        for nxt in _targets(by_id[todo.pop()]):
            if nxt == target:
                return True
            if nxt in by_id and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def _status_problems(
    definition: SequenceDefinition, step: SetStatusStep, by_id: Mapping[str, Step]
) -> Iterator[Problem]:
    record_type = definition.record_type
    allowed = STATUSES.get(record_type, frozenset())
    if step.status not in allowed:
        yield Problem(
            step.id,
            ProblemCode.WRONG_STATUS,
            f"step {step.id!r} sets status {step.status!r}, which a {record_type.value} does "
            + (
                f"not have; use one of {', '.join(repr(s) for s in sorted(allowed))}"
                if allowed
                else f"not have: {record_type.value}s have no status; use update_field instead"
            ),
        )
    elif (record_type, step.status) in _NEEDS_REASON and not (step.reason or "").strip():
        yield Problem(
            step.id,
            ProblemCode.MISSING_REASON,
            f"step {step.id!r} sets a {record_type.value} to {step.status!r} without a reason; "
            f"set reason (e.g. 'cannot_contact' or 'no_longer_interested')",
        )
    if step.next is None:
        yield Problem(
            step.id,
            ProblemCode.DEAD_END,
            f"step {step.id!r} (set_status) has no next step; add an end step with the "
            f"path's outcome after it, or point next at another step",
        )
    elif step.next in by_id and not isinstance(by_id[step.next], EndStep):
        # every status a set_status step can set closes the record (qualified,
        # disqualified, won, lost), and a closed record is read-only
        yield Problem(
            step.id,
            ProblemCode.STEP_AFTER_CLOSE,
            f"step {step.id!r} sets the {definition.record_type.value} to {step.status!r}, "
            f"which closes it, but {step.next!r} "
            f"({step_kind(by_id[step.next]).value}) follows; a closed record is read-only, "
            f"so point next at an end step with the path's outcome",
        )


def _advance_problems(
    definition: SequenceDefinition,
    step: AdvanceStep,
    active_sequences: Mapping[str, RecordKind] | None,
) -> Iterator[Problem]:
    if step.id == definition.entry:
        yield Problem(
            step.id,
            ProblemCode.ADVANCE_FIRST,
            f"step {step.id!r} advances to another sequence as the first step; an advance "
            f"step is never first: start with another step, or connect the record to "
            f"{step.sequence_id!r} directly",
        )
    if step.sequence_id == definition.id:
        yield Problem(
            step.id,
            ProblemCode.ADVANCE_TO_SELF,
            f"step {step.id!r} advances to sequence {step.sequence_id!r}, the sequence it is "
            f"in; name another sequence, or use an end step",
        )
    elif active_sequences is not None:
        target_type = active_sequences.get(step.sequence_id)
        if target_type is None:
            yield Problem(
                step.id,
                ProblemCode.ADVANCE_TARGET_INACTIVE,
                f"step {step.id!r} advances to sequence {step.sequence_id!r}, which is not an "
                f"active sequence; activate it or name an active "
                f"{definition.record_type.value} sequence",
            )
        elif target_type != definition.record_type:
            yield Problem(
                step.id,
                ProblemCode.ADVANCE_TARGET_WRONG_TYPE,
                f"step {step.id!r} advances a {definition.record_type.value} to sequence "
                f"{step.sequence_id!r}, which runs on {target_type.value} records; name an "
                f"active {definition.record_type.value} sequence",
            )


def _loops_without_wait(
    definition: SequenceDefinition, by_id: Mapping[str, Step]
) -> Iterator[Problem]:
    """One problem per loop (strongly connected part) of the graph with its waits removed."""
    order = {step.id: i for i, step in enumerate(definition.steps)}
    waits = {step.id for step in definition.steps if isinstance(step, WaitStep)}
    graph = {
        step.id: [t for t in dict.fromkeys(_targets(step)) if t in by_id and t not in waits]
        for step in definition.steps
        if step.id not in waits
    }
    for component in _strongly_connected(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        members = sorted(component, key=order.__getitem__)
        yield Problem(
            members[0],
            ProblemCode.CYCLE_WITHOUT_WAIT,
            f"steps {', '.join(repr(m) for m in members)} form a loop with no wait, so a "
            f"record would go round it at once and forever; add a wait inside the loop or "
            f"point a branch out of it",
        )


def _strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (long sequences must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            if i < len(edges):
                work.append((node, i + 1))
                child = edges[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


# --- stats ---------------------------------------------------------------------------


def stats(definition: SequenceDefinition) -> SequenceStats:
    """The step count and the shortest and longest duration of ``definition``.

    Counting rule: the step count is the number of actions, i.e. every step except
    waits, conditions and ends (activity steps, ``update_field``, ``set_status``,
    ``advance_to_sequence`` and ``ab_test`` count), as the product's template
    figures count "steps excluding wait steps".

    Durations: a path costs its wait spans plus the time limits of the conditions
    on it. A condition costs its whole limit on both branches (the yes branch
    starts only when the limit has elapsed), except that with ``advance_early``
    the yes branch costs zero for the shortest path and the whole limit for the
    longest (the event may come just before the limit). Activity steps and A/B
    tests cost nothing. Paths run from the entry to an end, an advance step or a
    step with no successor. Computed by one memoized depth-first walk, so the cost
    is linear in the number of steps and branches even when paths share steps.

    Args:
        definition: The definition to measure.

    Returns:
        The counts and durations.

    Raises:
        InvalidDefinition: The entry step or a branch target does not exist, or the
            steps reachable from the entry form a loop (a loop has no longest path;
            `stats` needs an acyclic graph).
    """
    by_id = definition.by_id
    if definition.entry not in by_id:
        raise InvalidDefinition(
            problems=[
                f"stats of sequence {definition.id!r} need its entry step "
                f"{definition.entry!r}, which does not exist; run validate() and fix the "
                f"problems first"
            ]
        )
    shortest, longest = _durations(definition, by_id)
    count = sum(1 for step in definition.steps if step_kind(step) not in _UNCOUNTED)
    return SequenceStats(steps=count, shortest=shortest, longest=longest)


def _edge_costs(step: Step) -> list[tuple[str, timedelta, timedelta]]:
    """The outgoing edges of ``step`` with their least and greatest cost."""
    if isinstance(step, WaitStep):
        return [(t, step.span.delta, step.span.delta) for t in _targets(step)]
    if isinstance(step, ConditionStep):
        limit = step.within.delta
        return [
            (step.yes, timedelta(0) if step.advance_early else limit, limit),
            (step.no, limit, limit),
        ]
    return [(t, timedelta(0), timedelta(0)) for t in _targets(step)]


def _durations(
    definition: SequenceDefinition, by_id: Mapping[str, Step]
) -> tuple[timedelta, timedelta]:
    done: dict[str, tuple[timedelta, timedelta]] = {}
    on_path: set[str] = {definition.entry}
    work: list[tuple[str, list[tuple[str, timedelta, timedelta]], int]] = [
        (definition.entry, _edge_costs(by_id[definition.entry]), 0)
    ]
    while work:
        node, edges, i = work.pop()
        if i < len(edges):
            work.append((node, edges, i + 1))
            target = edges[i][0]
            if target in done:
                continue
            if target not in by_id:
                raise InvalidDefinition(
                    problems=[
                        f"stats of sequence {definition.id!r}: step {node!r} goes to step "
                        f"{target!r}, which does not exist; run validate() and fix the "
                        f"problems first"
                    ]
                )
            if target in on_path:
                raise InvalidDefinition(
                    problems=[
                        f"stats of sequence {definition.id!r} need a graph without loops, "
                        f"but step {node!r} leads back to step {target!r}; a loop has no "
                        f"longest path"
                    ]
                )
            on_path.add(target)
            work.append((target, _edge_costs(by_id[target]), 0))
            continue
        on_path.discard(node)
        if not edges:
            done[node] = (timedelta(0), timedelta(0))
        else:
            done[node] = (
                min(low + done[t][0] for t, low, _ in edges),
                max(high + done[t][1] for t, _, high in edges),
            )
    return done[definition.entry]
