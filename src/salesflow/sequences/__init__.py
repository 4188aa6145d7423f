"""Sequences: branching graphs of sales steps, their validation, statistics,
rendering, import/export, the standard templates, and the pure runtime.

`salesflow.sequences.runtime` moves one enrollment along its graph as pure
functions (start, complete, skip, snooze, email events, due times, pause/resume,
exit, owner change, up next). Wiring it into the engine and the stores
(connecting records, storing enrollments, running steps from `run_due`) comes next.
"""

from __future__ import annotations

from salesflow.sequences.definition import (
    ABMetric,
    ABTestStep,
    ActivityStep,
    AdvanceStep,
    CallWatch,
    ConditionStep,
    EmailEvent,
    EmailWatch,
    EndStep,
    FieldWatch,
    Match,
    SequenceDefinition,
    SetStatusStep,
    Span,
    StageWatch,
    Step,
    StepKind,
    UpdateFieldStep,
    WaitStep,
    Watch,
    successors,
)
from salesflow.sequences.editing import copy_sequence, insert_after, insert_before, remove_step
from salesflow.sequences.io import (
    dumps_json,
    dumps_toml,
    from_dict,
    loads_json,
    loads_toml,
    to_dict,
)
from salesflow.sequences.render import Progress, mermaid
from salesflow.sequences.templates import TEMPLATES, load_template
from salesflow.sequences.validation import (
    Problem,
    ProblemCode,
    SequenceStats,
    require_valid,
    stats,
    validate,
)

__all__ = [
    "TEMPLATES",
    "ABMetric",
    "ABTestStep",
    "ActivityStep",
    "AdvanceStep",
    "CallWatch",
    "ConditionStep",
    "EmailEvent",
    "EmailWatch",
    "EndStep",
    "FieldWatch",
    "Match",
    "Problem",
    "ProblemCode",
    "Progress",
    "SequenceDefinition",
    "SequenceStats",
    "SetStatusStep",
    "Span",
    "StageWatch",
    "Step",
    "StepKind",
    "UpdateFieldStep",
    "WaitStep",
    "Watch",
    "copy_sequence",
    "dumps_json",
    "dumps_toml",
    "from_dict",
    "insert_after",
    "insert_before",
    "load_template",
    "loads_json",
    "loads_toml",
    "mermaid",
    "remove_step",
    "require_valid",
    "stats",
    "successors",
    "to_dict",
    "validate",
]
