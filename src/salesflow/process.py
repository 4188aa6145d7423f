"""Business process flow definitions: ordered stages with the steps that complete them.

A `ProcessFlow` is authored data (DESIGN §1.3): immutable, versioned and
serializable. It lists its `Stage` s in order; each stage has `StageStep` s, either a
record field that must be set or a checkbox that must be ticked, and may name stages
it can jump to besides the next and the previous one.

A flow may span two record types, as the "Lead to opportunity sales process" does:
its Qualify stage is on the lead, Develop, Propose and Close on the opportunity the
qualified lead created. Each stage says which record type it is on (``record_type``,
default the flow's); the record types form contiguous runs and the move from one run
to the next is a hand-over (`salesflow.process_runtime.continue_on`), never a plain
next, back or jump.

Flows are user-authored, so like sequence graphs (DESIGN §1.6) they are walked by pure
functions (`salesflow.process_runtime`) rather than declared as statechart classes.
Local rules (a step's kind, a non-empty name) are checked when a value is built;
rules about the whole flow are reported, all at once, by `validate`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import attrs

from salesflow.errors import InvalidDefinition, ValidationError
from salesflow.values import RecordKind, to_enum

__all__ = [
    "FLOW_RECORD_TYPES",
    "Problem",
    "ProblemCode",
    "ProcessFlow",
    "Stage",
    "StageStep",
    "StepKind",
    "flow_record_type",
    "require_valid",
    "validate",
]

FLOW_RECORD_TYPES = frozenset(
    {RecordKind.LEAD, RecordKind.OPPORTUNITY, RecordKind.CONTACT, RecordKind.ACCOUNT}
)
"""The record types a process flow can run on (activities have no process)."""


class StepKind(StrEnum):
    """What completes a stage step."""

    FIELD = "field"
    """A field of the record must be set; the step id is the field's name."""
    CHECKBOX = "checkbox"
    """A checkbox kept with the process must be ticked."""


def _identifier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, str)
        or not value.strip()
        or value != value.strip()
        or len(value) > 100
    ):
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be a non-empty id of at "
            f"most 100 characters without surrounding spaces",
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
        )


def _label(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be text of 1 to 200 "
            f"characters",
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
        )


def _bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be True or False",
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
        )


def _step_kind(value: object) -> StepKind:
    kind: StepKind = to_enum(StepKind, value, "StageStep.kind", optional=False)
    return kind


def flow_record_type(where: str, value: object) -> RecordKind:
    """``value`` as one of `FLOW_RECORD_TYPES` (a `RecordKind` or its value).

    Raises:
        ValidationError: naming ``where``, when it is another kind or none.
    """
    kind: RecordKind = to_enum(RecordKind, value, where, optional=False)
    if kind not in FLOW_RECORD_TYPES:
        allowed = ", ".join(sorted(k.value for k in FLOW_RECORD_TYPES))
        raise ValidationError(
            f"{where}={kind.value!r} is not valid; process flows run on {allowed}",
            field=where,
            value=value,
        )
    return kind


def _flow_record_type(value: object) -> RecordKind:
    return flow_record_type("ProcessFlow.record_type", value)


def _stage_record_type(value: object) -> RecordKind | None:
    return None if value is None else flow_record_type("Stage.record_type", value)


def _tuple_of(cls: type, where: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{where}={value!r} must be a list of {cls.__name__} values",
            field=where,
            value=value,
        )
    items = tuple(value)
    for item in items:
        if not isinstance(item, cls):
            raise ValidationError(
                f"{where} holds {item!r}, which is not a {cls.__name__}",
                field=where,
                value=item,
            )
    return items


def _steps(value: object) -> tuple[StageStep, ...]:
    return _tuple_of(StageStep, "Stage.steps", value)


def _jumps(value: object) -> tuple[str, ...]:
    return _tuple_of(str, "Stage.jumps_to", value)


def _stages(value: object) -> tuple[Stage, ...]:
    return _tuple_of(Stage, "ProcessFlow.stages", value)


@attrs.frozen(kw_only=True)
class StageStep:
    """One thing to complete in a stage.

    Attributes:
        id: For a ``field`` step, the name of the record field that must be set
            (custom fields by their key); for a ``checkbox`` step, the checkbox's id.
            Unique across the whole flow, because checkboxes are kept per process
            (a field may appear again on another record type's stages).
        label: What people see ("Teleprospect accepted").
        kind: ``field`` or ``checkbox``.
        required: Whether moving to the next stage needs this step completed.
    """

    id: str = attrs.field(validator=_identifier)
    label: str = attrs.field(validator=_label)
    kind: StepKind = attrs.field(converter=_step_kind)
    required: bool = attrs.field(default=True, validator=_bool)


@attrs.frozen(kw_only=True)
class Stage:
    """One stage of a flow.

    Attributes:
        id: Unique within the flow; switching flows keeps a record on the stage of
            the same id when the new flow has one.
        name: What people see ("Automated marketing qualification").
        steps: The fields and checkboxes of the stage, in display order.
        jumps_to: Stages this one may jump to directly, besides the next and the
            previous stage (e.g. a sales-ready lead skipping teleprospecting).
        record_type: The record type this stage is on; ``None`` means the flow's.
    """

    id: str = attrs.field(validator=_identifier)
    name: str = attrs.field(validator=_label)
    steps: tuple[StageStep, ...] = attrs.field(default=(), converter=_steps)
    jumps_to: tuple[str, ...] = attrs.field(default=(), converter=_jumps)
    record_type: RecordKind | None = attrs.field(default=None, converter=_stage_record_type)

    @property
    def required_steps(self) -> tuple[StageStep, ...]:
        """The steps moving on needs, in display order."""
        return tuple(step for step in self.steps if step.required)


def _version(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"ProcessFlow.version={value!r} must be a whole number >= 1",
            field="ProcessFlow.version",
            value=value,
        )


@attrs.frozen(kw_only=True)
class ProcessFlow:
    """A business process flow: identity, version, the record type it starts on and
    its stages in order.

    Several flows may exist for one record type; a record follows one at a time and
    can be switched to another (`salesflow.process_runtime.switch_flow`). Editing a
    flow that records follow publishes a new ``version``.
    """

    id: str = attrs.field(validator=_identifier)
    version: int = attrs.field(default=1, validator=_version)
    name: str = attrs.field(validator=_label)
    record_type: RecordKind = attrs.field(converter=_flow_record_type)
    stages: tuple[Stage, ...] = attrs.field(converter=_stages)
    description: str | None = None

    def stage(self, stage_id: str) -> Stage:
        """The stage with ``stage_id``.

        Raises:
            ValidationError: The flow has no such stage (the message lists its stages).
        """
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise ValidationError(
            f"process flow {self.id!r} has no stage {stage_id!r}; its stages are "
            f"{_ids(self.stages)}",
            field="stage",
            value=stage_id,
        )

    def index(self, stage_id: str) -> int:
        """The position of ``stage_id`` in the flow (0 for the first stage).

        Raises:
            ValidationError: The flow has no such stage.
        """
        for position, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return position
        self.stage(stage_id)  # raises with the list of stages
        raise AssertionError("unreachable")  # pragma: no cover

    def record_type_of(self, stage: Stage) -> RecordKind:
        """The record type ``stage`` is on (its own, else the flow's)."""
        return stage.record_type if stage.record_type is not None else self.record_type

    def step(self, step_id: str) -> tuple[Stage, StageStep]:
        """The step with ``step_id`` and the stage holding it.

        Raises:
            ValidationError: No stage of the flow has such a step.
        """
        for stage in self.stages:
            for step in stage.steps:
                if step.id == step_id:
                    return stage, step
        known = ", ".join(repr(s.id) for stage in self.stages for s in stage.steps) or "none"
        raise ValidationError(
            f"process flow {self.id!r} has no step {step_id!r}; its steps are {known}",
            field="step",
            value=step_id,
        )


def _ids(items: Iterable[Stage]) -> str:
    return ", ".join(repr(item.id) for item in items) or "none"


# --- validate ------------------------------------------------------------------------


class ProblemCode(StrEnum):
    """What is wrong with a flow; the ``code`` of a `Problem`."""

    NO_STAGES = "no_stages"
    DUPLICATE_STAGE = "duplicate_stage"
    DUPLICATE_STEP = "duplicate_step"
    MISSING_JUMP_TARGET = "missing_jump_target"
    JUMP_TO_SELF = "jump_to_self"
    JUMP_ACROSS_RECORDS = "jump_across_records"
    FIRST_STAGE_RECORD_TYPE = "first_stage_record_type"
    RECORD_TYPE_RETURNS = "record_type_returns"


@attrs.frozen
class Problem:
    """One thing wrong with a flow.

    Attributes:
        stage_id: The stage at fault, or ``None`` when the problem is about the whole
            flow.
        code: A `ProblemCode` value, stable for hosts to match on.
        message: A complete sentence naming the stage and saying how to fix it.
    """

    stage_id: str | None
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def validate(flow: ProcessFlow) -> list[Problem]:
    """Every problem of ``flow``, never stopping at the first.

    The rules: the flow has at least one stage; stage ids are unique, and so are step
    ids across the whole flow (except that a field may be asked for again on another
    record type's stages); every jump names another stage that exists and is on
    the same record type; the first stage is on the flow's record type; and each
    record type's stages form one contiguous run (a flow may hand over from the lead
    to the opportunity, but not back).

    Args:
        flow: The flow to check.

    Returns:
        The problems in a stable order (the whole flow first, then stage by stage);
        empty when the flow is valid.
    """
    problems: list[Problem] = []
    if not flow.stages:
        problems.append(
            Problem(
                None,
                ProblemCode.NO_STAGES,
                f"process flow {flow.id!r} has no stages; add at least one",
            )
        )
        return problems
    first = flow.stages[0]
    if flow.record_type_of(first) is not flow.record_type:
        problems.append(
            Problem(
                first.id,
                ProblemCode.FIRST_STAGE_RECORD_TYPE,
                f"the first stage {first.id!r} of process flow {flow.id!r} is on "
                f"{flow.record_type_of(first).value} records, but the flow starts on "
                f"{flow.record_type.value} records; make them the same",
            )
        )
    by_id: dict[str, Stage] = {}
    step_owner: dict[str, tuple[Stage, StageStep]] = {}
    finished_types: set[RecordKind] = set()
    previous_type: RecordKind | None = None
    for stage in flow.stages:
        if stage.id in by_id:
            problems.append(
                Problem(
                    stage.id,
                    ProblemCode.DUPLICATE_STAGE,
                    f"stage id {stage.id!r} is used twice in process flow {flow.id!r}; give "
                    f"every stage its own id",
                )
            )
        by_id.setdefault(stage.id, stage)
        problems.extend(_step_problems(flow, stage, step_owner))
        kind = flow.record_type_of(stage)
        if kind is not previous_type:
            if kind in finished_types:
                problems.append(
                    Problem(
                        stage.id,
                        ProblemCode.RECORD_TYPE_RETURNS,
                        f"stage {stage.id!r} returns to {kind.value} records after other "
                        f"stages; keep each record type's stages together (a flow hands "
                        f"over from one record to the next, never back)",
                    )
                )
            if previous_type is not None:
                finished_types.add(previous_type)
            previous_type = kind
    for stage in flow.stages:
        problems.extend(_jump_problems(flow, stage, by_id))
    return _unique(problems)


def _step_problems(
    flow: ProcessFlow, stage: Stage, seen: dict[str, tuple[Stage, StageStep]]
) -> Iterable[Problem]:
    for step in stage.steps:
        if step.id not in seen:
            seen[step.id] = (stage, step)
            continue
        other, earlier = seen[step.id]
        # The same field may be asked for on each record of a hand-over (the lead's
        # description, then the opportunity's); the records are different.
        if (
            step.kind is StepKind.FIELD
            and earlier.kind is StepKind.FIELD
            and flow.record_type_of(other) is not flow.record_type_of(stage)
        ):
            continue
        where = "twice in it" if other is stage else f"also in stage {other.id!r}"
        yield Problem(
            stage.id,
            ProblemCode.DUPLICATE_STEP,
            f"step {step.id!r} of stage {stage.id!r} appears {where}; give each checkbox its "
            f"own id and ask for a field once per record type",
        )


def _jump_problems(flow: ProcessFlow, stage: Stage, by_id: dict[str, Stage]) -> Iterable[Problem]:
    for target in stage.jumps_to:
        if target == stage.id:
            yield Problem(
                stage.id,
                ProblemCode.JUMP_TO_SELF,
                f"stage {stage.id!r} jumps to itself; remove {target!r} from its jumps_to",
            )
        elif target not in by_id:
            yield Problem(
                stage.id,
                ProblemCode.MISSING_JUMP_TARGET,
                f"stage {stage.id!r} jumps to stage {target!r}, which does not exist; use "
                f"one of {_ids(flow.stages)}",
            )
        elif flow.record_type_of(by_id[target]) is not flow.record_type_of(stage):
            yield Problem(
                stage.id,
                ProblemCode.JUMP_ACROSS_RECORDS,
                f"stage {stage.id!r} ({flow.record_type_of(stage).value}) jumps to stage "
                f"{target!r} ({flow.record_type_of(by_id[target]).value}); moving to another "
                f"record's stages is a hand-over, not a jump: remove the jump",
            )


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    result = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            result.append(problem)
    return result


def require_valid(flow: ProcessFlow) -> None:
    """Raise unless ``flow`` is valid (publishing and starting a flow call this).

    Raises:
        InvalidDefinition: With every problem's message, when `validate` finds any.
    """
    problems = validate(flow)
    if problems:
        raise InvalidDefinition(problems=[p.message for p in problems])
