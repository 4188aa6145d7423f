"""Pipelines: ordered stages a deal or a lead moves through, the triggers that move
it, and the automation rules hung on the stages.

A `Pipeline` is a versioned definition (``Sales``, ``Delivery``, …) for one record
type, opportunities or leads. Its stages are ordered and each has a `StageKind`:
open, won or lost. Moving an opportunity into a won or lost stage wins or loses it;
moving it back into an open stage reopens it. Lead pipelines track where a lead is;
their stage kinds do not change the lead's status (qualifying is a command of its
own).

A `Trigger` moves an item to its stage when an event happens to the item (an email
replied, a form submitted, a field changed, a payment received, …), but never
backwards (to an earlier stage) unless it says ``allow_backwards``; a trigger whose
stage is the item's current one does nothing.

Rules (`salesflow.rules.AutomationRule`) belong to one stage; see `salesflow.rules`
for when they run and what they do. `validate` returns every problem of a pipeline
at once; an invalid pipeline cannot be published.

Example:
    >>> from salesflow.rules import AutomationRule, CopyDeal
    >>> sales = Pipeline(
    ...     id="sales",
    ...     name="Sales",
    ...     stages=[Stage(id="new", name="New"), Stage(id="won", name="Closed won", kind="won")],
    ...     rules=[
    ...         AutomationRule(id="again", stage="won", action=CopyDeal(pipeline="sales")),
    ...     ],
    ... )
    >>> validate(sales)
    []
    >>> sales.stage("won").kind
    <StageKind.WON: 'won'>
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

import attrs

from salesflow.conditions import Condition, comparisons
from salesflow.errors import InvalidDefinition, NotFound, ValidationError
from salesflow.rules import (
    AutomationRule,
    ChangeStage,
    ConnectSequence,
    CopyDeal,
    CreateRepeatLead,
    FromField,
    Notify,
    RunMode,
    ScheduleActivity,
    UpdateField,
)
from salesflow.stores.base import ColumnType, check_comparison, check_fields, column_type
from salesflow.templating import Template
from salesflow.values import RecordKind, identifier, to_enum

__all__ = [
    "PIPELINE",
    "Pipeline",
    "PipelineProblem",
    "Stage",
    "StageKind",
    "Trigger",
    "TriggerEvent",
    "require_valid",
    "validate",
]

PIPELINE = "pipeline"
"""The definition kind pipelines are stored under."""

_KINDS = (RecordKind.OPPORTUNITY, RecordKind.LEAD)


class StageKind(StrEnum):
    """Whether items in a stage are still being worked, won or lost."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be a non-empty "
            "text of at most 100 characters",
            field=attribute.name,
            value=value,
        )


def _stage_kind(value: object) -> StageKind:
    kind: StageKind = to_enum(StageKind, value, "Stage.kind", optional=False)
    return kind


@attrs.frozen(kw_only=True)
class Stage:
    """One stage of a pipeline."""

    id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=_name)
    kind: StageKind = attrs.field(default=StageKind.OPEN, converter=_stage_kind)


class TriggerEvent(StrEnum):
    """What happened to an item, for `Trigger`."""

    EMAIL_RECEIVED = "email_received"
    EMAIL_OPENED = "email_opened"
    LINK_CLICKED = "link_clicked"
    EMAIL_REPLIED = "email_replied"
    FORM_SUBMITTED = "form_submitted"
    CALL = "call"
    MEETING = "meeting"
    PAYMENT_RECEIVED = "payment_received"
    FIELD_CHANGED = "field_changed"


def _trigger_event(value: object) -> TriggerEvent:
    event: TriggerEvent = to_enum(TriggerEvent, value, "Trigger.event", optional=False)
    return event


@attrs.frozen(kw_only=True)
class Trigger:
    """Move an item to ``stage`` when ``event`` happens to it.

    Attributes:
        event: What happened.
        stage: Where the item goes.
        field: For `TriggerEvent.FIELD_CHANGED`, the field that changed.
        allow_backwards: Also move an item that is past ``stage`` back to it.
    """

    event: TriggerEvent = attrs.field(converter=_trigger_event)
    stage: str = attrs.field(validator=identifier)
    field: str | None = attrs.field(default=None)
    allow_backwards: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


def _tuple_of(value: object, kind: type, where: str) -> tuple[Any, ...]:
    items = tuple(value) if isinstance(value, list | tuple) else value
    if not isinstance(items, tuple) or not all(isinstance(i, kind) for i in items):
        raise ValidationError(
            f"Pipeline.{where}={value!r} must be a list of {kind.__name__} values",
            field=where,
            value=value,
        )
    return items


def _stages(value: object) -> tuple[Stage, ...]:
    return _tuple_of(value, Stage, "stages")


def _triggers(value: object) -> tuple[Trigger, ...]:
    return _tuple_of(value, Trigger, "triggers")


def _rules(value: object) -> tuple[AutomationRule, ...]:
    return _tuple_of(value, AutomationRule, "rules")


def _record_type(value: object) -> RecordKind:
    kind = RecordKind(value) if value in {k.value for k in _KINDS} else None
    if kind is None:
        raise ValidationError(
            f"Pipeline.record_type={value!r} must be 'opportunity' or 'lead'",
            field="record_type",
            value=value,
        )
    return kind


def _version(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(
            f"Pipeline.version={value!r} must be a whole number from 1",
            field="version",
            value=value,
        )


@attrs.frozen(kw_only=True)
class Pipeline:
    """A pipeline definition (see the module docstring).

    Attributes:
        id: The pipeline's id, kept across versions.
        name: Its name.
        stages: The stages in order.
        record_type: ``opportunity`` (default) or ``lead``.
        triggers: What moves items by itself.
        rules: The automation rules, in order (the order matters for rules that run
            ``after_previous``).
        version: Set by publishing.
    """

    id: str = attrs.field(validator=identifier)
    name: str = attrs.field(validator=_name)
    stages: tuple[Stage, ...] = attrs.field(converter=_stages)
    record_type: RecordKind = attrs.field(default=RecordKind.OPPORTUNITY, converter=_record_type)
    triggers: tuple[Trigger, ...] = attrs.field(default=(), converter=_triggers)
    rules: tuple[AutomationRule, ...] = attrs.field(default=(), converter=_rules)
    version: int = attrs.field(default=1, validator=_version)

    def stage(self, stage_id: str) -> Stage:
        """The stage ``stage_id``.

        Raises:
            NotFound: no such stage (the message lists the stages).
        """
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        known = ", ".join(s.id for s in self.stages)
        raise NotFound("Stage", f"{stage_id!r} of pipeline {self.id!r} (stages: {known})")

    def has_stage(self, stage_id: str) -> bool:
        """Whether ``stage_id`` is one of the stages."""
        return any(s.id == stage_id for s in self.stages)

    def position(self, stage_id: str) -> int:
        """The stage's index in the order (0 for the first)."""
        for index, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return index
        self.stage(stage_id)  # raises NotFound naming the stages
        raise AssertionError(stage_id)  # pragma: no cover

    def rules_of(self, stage_id: str) -> tuple[AutomationRule, ...]:
        """The rules of one stage, in order."""
        return tuple(r for r in self.rules if r.stage == stage_id)

    def rule(self, rule_id: str) -> AutomationRule:
        """The rule ``rule_id``.

        Raises:
            NotFound: no such rule.
        """
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise NotFound("AutomationRule", f"{rule_id!r} of pipeline {self.id!r}")


@attrs.frozen
class PipelineProblem:
    """One thing wrong with a pipeline.

    Attributes:
        where: ``stage <id>``, ``rule <id>``, ``trigger <n>`` or ``pipeline``.
        message: A complete sentence saying what is wrong and how to fix it.
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _templates(rule: AutomationRule) -> Iterable[Template]:
    action = rule.action
    if isinstance(action, CreateRepeatLead | CopyDeal):
        if action.name is not None:
            yield action.name
    elif isinstance(action, ScheduleActivity):
        yield action.subject
        if action.description is not None:
            yield action.description
    elif isinstance(action, Notify):
        yield action.message


def _check(problems: list[PipelineProblem], where: str, check: Any, *args: Any) -> None:
    try:
        check(*args)
    except ValidationError as error:
        problems.append(PipelineProblem(where, str(error)))


def _check_condition(kind: RecordKind, condition: Condition) -> None:
    for compare in comparisons(condition):
        check_fields(kind, [compare.field])
        check_comparison(kind, compare)


def _check_rule(
    pipeline: Pipeline, rule: AutomationRule, previous: AutomationRule | None
) -> list[PipelineProblem]:
    where = f"rule {rule.id}"
    kind = pipeline.record_type
    problems: list[PipelineProblem] = []
    if not pipeline.has_stage(rule.stage):
        problems.append(
            PipelineProblem(where, f"its stage {rule.stage!r} is not a stage of the pipeline")
        )
    if rule.run is RunMode.AFTER_PREVIOUS and previous is None:
        problems.append(
            PipelineProblem(
                where,
                f"it runs after the previous rule but is the first rule of stage "
                f"{rule.stage!r}; make it parallel or put another rule before it",
            )
        )
    for template in _templates(rule):
        _check(problems, where, template.check, kind)
    if rule.condition is not None:
        _check(problems, where, _check_condition, kind, rule.condition)
    timing = rule.timing
    if isinstance(timing, FromField):
        ctype = column_type(kind, timing.field)
        if ctype not in (ColumnType.DATE, ColumnType.DATETIME):
            problems.append(
                PipelineProblem(
                    where,
                    f"its timing counts from {timing.field!r}, which is not a date or "
                    f"date-time field of {kind.value}",
                )
            )
    action = rule.action
    if isinstance(action, ChangeStage):
        if not pipeline.has_stage(action.stage):
            problems.append(
                PipelineProblem(where, f"it moves to {action.stage!r}, which is not a stage")
            )
        elif action.stage == rule.stage:
            problems.append(PipelineProblem(where, "it moves the item to its own stage"))
    elif isinstance(action, UpdateField):
        if action.field.startswith("custom."):
            pass
        else:
            _check(problems, where, check_fields, kind, [action.field])
            if action.field in _SYSTEM_FIELDS:
                problems.append(
                    PipelineProblem(
                        where, f"{action.field!r} is kept by the engine and cannot be set"
                    )
                )
    elif isinstance(action, CopyDeal):
        if kind is not RecordKind.OPPORTUNITY:
            problems.append(PipelineProblem(where, "only deals (opportunities) can be copied"))
        elif (
            action.pipeline == pipeline.id
            and action.stage is not None
            and not pipeline.has_stage(action.stage)
        ):
            problems.append(
                PipelineProblem(where, f"the copy's start stage {action.stage!r} is not a stage")
            )
    elif isinstance(action, ConnectSequence | CreateRepeatLead | ScheduleActivity | Notify):
        pass
    return problems


_SYSTEM_FIELDS = frozenset(
    {"id", "version", "created_at", "modified_at", "status", "stage", "status_reason"}
)


def validate(pipeline: Pipeline) -> list[PipelineProblem]:
    """Every problem of ``pipeline`` (empty when it can be published).

    Checked: at least one stage; unique stage, rule ids; triggers and rules point at
    stages; a field-changed trigger names a field of the record type; templates,
    conditions and `FromField` timings name fields of the record type; `ChangeStage`
    targets another stage; `UpdateField` names a settable field; `CopyDeal` runs on
    deals; an ``after_previous`` rule has a previous rule on its stage. A copy's
    other pipeline is checked when publishing (it must be published).
    """
    problems: list[PipelineProblem] = []
    if not pipeline.stages:
        problems.append(PipelineProblem("pipeline", "it has no stages; add at least one"))
    seen: set[str] = set()
    for stage in pipeline.stages:
        if stage.id in seen:
            problems.append(PipelineProblem(f"stage {stage.id}", "the stage id is used twice"))
        seen.add(stage.id)
    for index, trigger in enumerate(pipeline.triggers):
        where = f"trigger {index}"
        if not pipeline.has_stage(trigger.stage):
            problems.append(PipelineProblem(where, f"its stage {trigger.stage!r} is not a stage"))
        if trigger.event is TriggerEvent.FIELD_CHANGED:
            if not trigger.field:
                problems.append(PipelineProblem(where, "a field-changed trigger names a field"))
            else:
                _check(problems, where, check_fields, pipeline.record_type, [trigger.field])
        elif trigger.field is not None:
            problems.append(PipelineProblem(where, "only a field-changed trigger names a field"))
    rule_ids: set[str] = set()
    last_of_stage: dict[str, AutomationRule] = {}
    for rule in pipeline.rules:
        if rule.id in rule_ids:
            problems.append(PipelineProblem(f"rule {rule.id}", "the rule id is used twice"))
        rule_ids.add(rule.id)
        problems.extend(_check_rule(pipeline, rule, last_of_stage.get(rule.stage)))
        last_of_stage[rule.stage] = rule
    return problems


def require_valid(pipeline: Pipeline, others: Sequence[Pipeline] = ()) -> None:
    """Raise `InvalidDefinition` listing every problem of ``pipeline``, including
    copy rules whose target pipeline is not among ``others`` (the published ones)."""
    problems = [str(p) for p in validate(pipeline)]
    known = {p.id: p for p in others}
    known[pipeline.id] = pipeline
    for rule in pipeline.rules:
        action = rule.action
        if not isinstance(action, CopyDeal) or action.pipeline == pipeline.id:
            continue
        target = known.get(action.pipeline)
        if target is None:
            problems.append(
                f"rule {rule.id}: it copies into pipeline {action.pipeline!r}, which is not "
                "published; publish that pipeline first"
            )
        elif target.record_type is not RecordKind.OPPORTUNITY:
            problems.append(f"rule {rule.id}: pipeline {action.pipeline!r} is not for deals")
        elif action.stage is not None and not target.has_stage(action.stage):
            problems.append(
                f"rule {rule.id}: the copy's start stage {action.stage!r} is not a stage of "
                f"{action.pipeline!r}"
            )
    if problems:
        raise InvalidDefinition(problems)
