"""Rendering sequence definitions as Mermaid flowcharts, optionally with a record's progress.

`mermaid` draws any definition, valid or not, as a ``flowchart TD``: one node per
step, shaped by what the step does, an edge per successor (``yes`` / ``no`` on
conditions) and a start node pointing at the entry step. Steps become the node ids
``s0``, ``s1``, … in definition order, and every label is a quoted Mermaid string
with its special characters written as entity codes, so a step's text can never
change the diagram's structure. The same definition always gives the same text.

A `Progress` marks where one record stands: its current step and the steps it has
completed are highlighted with the ``current`` and ``done`` classes.

Example:
    >>> from salesflow.sequences.definition import ActivityStep, EndStep, SequenceDefinition
    >>> definition = SequenceDefinition(
    ...     id="demo",
    ...     name="Demo",
    ...     record_type="lead",
    ...     entry="call",
    ...     steps=[
    ...         ActivityStep(id="call", kind="call", subject="Intro call", next="end"),
    ...         EndStep(id="end", outcome="done"),
    ...     ],
    ... )
    >>> print(mermaid(definition), end="")
    flowchart TD
        start(("Start"))
        s0["Call: Intro call"]
        s1(["End: done"])
        start --> s0
        s0 --> s1
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

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
    Match,
    SequenceDefinition,
    SetStatusStep,
    StageWatch,
    Step,
    StepKind,
    UpdateFieldStep,
    WaitStep,
    successors,
)

__all__ = ["Progress", "mermaid"]


def _step_ids(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(
            f"Progress.done={value!r} must be a collection of step ids",
            field="Progress.done",
            value=value,
        )
    items = frozenset(value)
    if not all(isinstance(item, str) for item in items):
        raise ValidationError(
            f"Progress.done={value!r} must hold step ids (text)",
            field="Progress.done",
            value=value,
        )
    return items


@attrs.frozen(kw_only=True)
class Progress:
    """Where one record stands in a sequence: its ``current`` step (``None`` once the
    enrollment has ended) and the steps it has completed (``done``)."""

    current: str | None = None
    done: frozenset[str] = attrs.field(default=frozenset(), converter=_step_ids)


_START_ID = "start"
"""The id of the start node; never clashes with ``s<n>`` step or ``m<n>`` missing ids."""

_ACTIVITY_NAMES = {
    StepKind.EMAIL: "Email",
    StepKind.AUTO_EMAIL: "Automated email",
    StepKind.CALL: "Call",
    StepKind.TASK: "Task",
    StepKind.LINKEDIN: "LinkedIn",
    StepKind.SMS: "SMS",
    StepKind.AUTO_SMS: "Automated SMS",
}

_LINKEDIN_ACTIONS = {
    "research": "research",
    "connect": "connect",
    "get_introduced": "get introduced",
    "inmail": "InMail",
}

_EVENT_NAMES = {
    "opened": "opened",
    "replied": "replied",
    "link_clicked": "link clicked",
    "attachment_downloaded": "attachment downloaded",
}

_ENTITIES = {
    "#": "#35;",  # first: every other escape starts with '#'
    '"': "#quot;",
    "&": "#amp;",
    "<": "#lt;",
    ">": "#gt;",
    "`": "#96;",  # a backtick opens a Markdown string, and ``` would end a docs fence
    "\\": "#92;",
}

_CLASS_DEFS = {
    "done": "fill:#dcfce7,stroke:#15803d,color:#14532d",
    "current": "fill:#fef3c7,stroke:#b45309,stroke-width:3px,color:#78350f",
    "missing": "fill:#fee2e2,stroke:#b91c1c,stroke-dasharray:4 3,color:#7f1d1d",
}


def _escape(text: str) -> str:
    """``text`` as the inside of a quoted Mermaid label: one line, entity-coded."""
    flat = " ".join(text.split())
    return "".join(_ENTITIES.get(char, char) for char in flat)


def _words(identifier: str) -> str:
    """An identifier-like value for people: ``meeting_booked`` → ``meeting booked``."""
    return identifier.replace("_", " ")


def _either(items: list[str], match: Match) -> str:
    """``a``, ``a or b``, ``a, b and c``."""
    if len(items) == 1:
        return items[0]
    joiner = " and " if match is Match.ALL else " or "
    return ", ".join(items[:-1]) + joiner + items[-1]


def _watched_name(definition: SequenceDefinition, step: ConditionStep, default: str) -> str:
    """What the condition looks at: ``Email``, or ``Email "Follow-up"`` when it names a
    step other than the one just before it."""
    if step.watches is None:
        return default
    watched = definition.by_id.get(step.watches)
    subject = watched.subject if isinstance(watched, ActivityStep) else step.watches
    return f'{default} "{subject}"'


def _condition_label(definition: SequenceDefinition, step: ConditionStep) -> str:
    watch = step.watch
    if isinstance(watch, EmailWatch):
        events = [_EVENT_NAMES[event.value] for event in watch.events]
        what = f"{_watched_name(definition, step, 'Email')} {_either(events, watch.match)}"
    elif isinstance(watch, CallWatch):
        call = _watched_name(definition, step, "Call")
        if watch.outcomes is None:
            what = f"{call} answered"
        else:
            what = f"{call} outcome is {_either(list(watch.outcomes), Match.ANY)}"
    elif isinstance(watch, FieldWatch):
        what = watch.condition.describe()
    else:
        assert isinstance(watch, StageWatch)
        what = f"Stage is {watch.stage}"
    limit = step.within
    within = f" within {limit}" if limit.days or limit.hours else ""
    early = " (moves on as soon as it happens)" if step.advance_early else ""
    return f"{what}{within}?{early}"


def _label(definition: SequenceDefinition, step: Step) -> str:
    """The plain text shown in ``step``'s node."""
    if isinstance(step, ActivityStep):
        name = _ACTIVITY_NAMES[step.kind]
        if step.linkedin_action is not None:
            name = f"{name} {_LINKEDIN_ACTIONS[step.linkedin_action.value]}"
        return f"{name}: {step.subject}"
    if isinstance(step, WaitStep):
        return f"Wait {step.span}"
    if isinstance(step, ConditionStep):
        return _condition_label(definition, step)
    if isinstance(step, UpdateFieldStep):
        return f"Set {step.field} = {step.value!r}"
    if isinstance(step, SetStatusStep):
        reason = f" ({_words(step.reason)})" if step.reason else ""
        return f"Set status: {_words(step.status)}{reason}"
    if isinstance(step, AdvanceStep):
        return f"Advance to sequence: {step.sequence_id}"
    if isinstance(step, ABTestStep):
        return (
            f"A/B test: {step.variant_a} ({step.split_percent} %) / {step.variant_b} "
            f"({100 - step.split_percent} %), by {step.metric.value}"
        )
    assert isinstance(step, EndStep)
    return f"End: {_words(step.outcome)}"


def _shape(step: Step) -> tuple[str, str]:
    """The Mermaid brackets around the label of ``step``'s node."""
    if isinstance(step, WaitStep):
        return "(", ")"  # rounded rectangle
    if isinstance(step, ConditionStep):
        return "{", "}"  # rhombus
    if isinstance(step, UpdateFieldStep | SetStatusStep):
        return "[[", "]]"  # subroutine
    if isinstance(step, AdvanceStep):
        return "[/", "/]"  # parallelogram: leaves for another sequence
    if isinstance(step, EndStep):
        return "([", "])"  # stadium
    return "[", "]"  # activities and A/B tests: rectangle


def _node(node_id: str, label: str, shape: tuple[str, str]) -> str:
    return f'    {node_id}{shape[0]}"{_escape(label)}"{shape[1]}'


def mermaid(definition: SequenceDefinition, *, progress: Progress | None = None) -> str:
    """Render ``definition`` as a Mermaid ``flowchart TD``.

    Activities are rectangles ("Call: Intro call"), waits rounded ("Wait 2 d"),
    conditions rhombuses ("Email replied within 1 d?") with ``yes`` / ``no`` edges,
    ``set_status`` and ``update_field`` subroutines, ``advance_to_sequence`` a
    parallelogram and ends stadiums ("End: meeting booked"); a ``Start`` circle
    points at the entry step. A branch to a step that does not exist points at a
    red "Missing step" node, so invalid definitions can be drawn too.

    Args:
        definition: The sequence to draw.
        progress: A record's progress: its current step gets the ``current`` class
            and its completed steps the ``done`` class.

    Returns:
        The diagram source, ending with a newline; the same input gives the same text.

    Raises:
        ValidationError: ``progress`` names a step the definition does not have.
    """
    ids = {step.id: f"s{index}" for index, step in enumerate(definition.steps)}
    missing: dict[str, str] = {}

    def target(step_id: str) -> str:
        if step_id in ids:
            return ids[step_id]
        return missing.setdefault(step_id, f"m{len(missing)}")

    lines = ["flowchart TD", _node(_START_ID, "Start", ("((", "))"))]
    lines += [_node(ids[s.id], _label(definition, s), _shape(s)) for s in definition.steps]
    edges = [f"    {_START_ID} --> {target(definition.entry)}"]
    for step in definition.steps:
        for label, to in successors(step):
            arrow = "-->" if label == "next" else f'-->|"{_escape(label)}"|'
            edges.append(f"    {ids[step.id]} {arrow} {target(to)}")
    lines += [
        _node(node, f"Missing step: {step_id}", ("[", "]")) for step_id, node in missing.items()
    ]
    lines += edges

    classes: dict[str, list[str]] = {}
    if missing:
        classes["missing"] = list(missing.values())
    if progress is not None:
        unknown = sorted(
            ({progress.current} if progress.current is not None else set()) | progress.done
        )
        unknown = [step_id for step_id in unknown if step_id not in ids]
        if unknown:
            raise ValidationError(
                f"progress names steps that sequence {definition.id!r} version "
                f"{definition.version} does not have: {', '.join(map(repr, unknown))}",
                field="progress",
                value=unknown,
            )
        done = [ids[s.id] for s in definition.steps if s.id in progress.done]
        if progress.current is not None:
            current = ids[progress.current]
            done = [node for node in done if node != current]
            classes["current"] = [current]
        if done:
            classes["done"] = done
    for name in ("done", "current", "missing"):
        if name in classes:
            lines.append(f"    classDef {name} {_CLASS_DEFS[name]}")
            lines.append(f"    class {','.join(classes[name])} {name}")
    return "\n".join(lines) + "\n"
