"""Rendering process flows as Mermaid flowcharts, optionally with one record's progress.

`mermaid` draws a flow as a ``flowchart LR``: its stages left to right as the nodes
``p0``, ``p1``, … in order, a solid arrow from each stage to the next, a dotted
arrow labelled "jump" for each allowed jump, and a thick arrow labelled "hand-over"
where the process moves from one record to the next (lead → opportunity). A stage
on another record type than the flow's shows it in its label ("Develop
(opportunity)"); a stage's required steps are counted in its label. Labels are
quoted Mermaid strings with special characters entity-coded (as in
`salesflow.sequences.render`), so stage names cannot change the diagram's structure.

Given a `FlowState`, the current stage gets the ``current`` class, stages before it
that the record passed through ``done``, and stages before it that it never entered
``skipped`` (a sales-ready lead's teleprospecting stages).

Example:
    >>> from salesflow.process import ProcessFlow, Stage
    >>> flow = ProcessFlow(
    ...     id="demo", name="Demo", record_type="lead",
    ...     stages=[Stage(id="a", name="First"), Stage(id="b", name="Second")],
    ... )
    >>> print(mermaid(flow), end="")
    flowchart LR
        p0["First"]
        p1["Second"]
        p0 --> p1
"""

from __future__ import annotations

from salesflow.errors import ValidationError
from salesflow.process import ProcessFlow, Stage
from salesflow.process_runtime import FlowState

__all__ = ["mermaid"]

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
    "skipped": "fill:#f3f4f6,stroke:#9ca3af,stroke-dasharray:4 3,color:#6b7280",
}


def _escape(text: str) -> str:
    """``text`` as the inside of a quoted Mermaid label: one line, entity-coded."""
    flat = " ".join(text.split())
    return "".join(_ENTITIES.get(char, char) for char in flat)


def _label(flow: ProcessFlow, stage: Stage) -> str:
    label = stage.name
    kind = flow.record_type_of(stage)
    if kind is not flow.record_type:
        label = f"{label} ({kind.value})"
    required = len(stage.required_steps)
    if required:
        label = f"{label}: {required} required step{'s' if required > 1 else ''}"
    return label


def mermaid(flow: ProcessFlow, state: FlowState | None = None) -> str:
    """Render ``flow`` as a Mermaid ``flowchart LR``, highlighting ``state``'s stage.

    Args:
        flow: The flow to draw (valid or not; jumps to missing stages are left out).
        state: A record's process on this flow version: its current stage gets the
            ``current`` class, earlier stages it passed ``done``, earlier stages it
            never entered ``skipped``.

    Returns:
        The diagram source, ending with a newline; the same input gives the same text.

    Raises:
        ValidationError: ``state`` is on another flow or version, or on a stage the
            flow does not have.
    """
    nodes: dict[str, str] = {}
    for position, stage in enumerate(flow.stages):
        nodes.setdefault(stage.id, f"p{position}")
    lines = ["flowchart LR"]
    lines += [f'    p{i}["{_escape(_label(flow, stage))}"]' for i, stage in enumerate(flow.stages)]
    for i in range(len(flow.stages) - 1):
        here, after = flow.stages[i], flow.stages[i + 1]
        if flow.record_type_of(here) is flow.record_type_of(after):
            lines.append(f"    p{i} --> p{i + 1}")
        else:
            lines.append(f'    p{i} ==>|"hand-over"| p{i + 1}')
    for i, stage in enumerate(flow.stages):
        for target in stage.jumps_to:
            if target in nodes:
                lines.append(f'    p{i} -.->|"jump"| {nodes[target]}')
    if state is not None:
        lines += _progress(flow, state, nodes)
    return "\n".join(lines) + "\n"


def _progress(flow: ProcessFlow, state: FlowState, nodes: dict[str, str]) -> list[str]:
    if state.flow_id != flow.id or state.flow_version != flow.version:
        raise ValidationError(
            f"the process of {state.record} is on flow {state.flow_id!r} version "
            f"{state.flow_version}; draw that flow version, not {flow.id!r} version "
            f"{flow.version}",
            field="state",
            value=state.flow_id,
        )
    if state.stage not in nodes:
        raise ValidationError(
            f"the process of {state.record} is on stage {state.stage!r}, which flow "
            f"{flow.id!r} version {flow.version} does not have",
            field="state",
            value=state.stage,
        )
    current = flow.index(state.stage)
    visited = state.visited
    classes: dict[str, list[str]] = {"done": [], "skipped": [], "current": [nodes[state.stage]]}
    for stage in flow.stages[:current]:
        classes["done" if stage.id in visited else "skipped"].append(nodes[stage.id])
    lines = []
    for name in ("done", "skipped", "current"):
        if classes[name]:
            lines.append(f"    classDef {name} {_CLASS_DEFS[name]}")
            lines.append(f"    class {','.join(classes[name])} {name}")
    return lines
