"""Sequence definitions: the graph of steps a record walks, as immutable data.

A `SequenceDefinition` is authored by users, versioned, serialized and
validated; the runtime walks it with pure functions. Steps point at each other
by id: most steps have one ``next``, a condition has ``yes`` and ``no``, an
``advance_to_sequence`` and an ``end`` have none. Local rules (a split between
10 and 90 %, non-negative spans) are checked when a step is built; rules about
the whole graph are reported by `salesflow.sequences.validation.validate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeAlias

import attrs

from salesflow.activity import LinkedInAction
from salesflow.conditions import Condition
from salesflow.errors import ValidationError
from salesflow.values import CustomValue, RecordKind, to_enum

__all__ = [
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
    "SequenceDefinition",
    "SetStatusStep",
    "Span",
    "StageWatch",
    "Step",
    "StepKind",
    "UpdateFieldStep",
    "WaitStep",
    "Watch",
    "successors",
]


class StepKind(StrEnum):
    """What a step does. Manual kinds wait for the seller; the others run by themselves."""

    EMAIL = "email"
    AUTO_EMAIL = "auto_email"
    CALL = "call"
    TASK = "task"
    LINKEDIN = "linkedin"
    SMS = "sms"
    AUTO_SMS = "auto_sms"
    WAIT = "wait"
    CONDITION = "condition"
    UPDATE_FIELD = "update_field"
    SET_STATUS = "set_status"
    ADVANCE_TO_SEQUENCE = "advance_to_sequence"
    AB_TEST = "ab_test"
    END = "end"

    @property
    def manual(self) -> bool:
        """True for steps a seller performs (email, call, task, LinkedIn, SMS)."""
        return self in _MANUAL


_MANUAL = frozenset({StepKind.EMAIL, StepKind.CALL, StepKind.TASK, StepKind.LINKEDIN, StepKind.SMS})
ACTIVITY_KINDS = frozenset(_MANUAL | {StepKind.AUTO_EMAIL, StepKind.AUTO_SMS})
"""The step kinds that put an activity on the record's timeline."""


class EmailEvent(StrEnum):
    """What a customer can do with an email a condition watches."""

    OPENED = "opened"
    REPLIED = "replied"
    LINK_CLICKED = "link_clicked"
    ATTACHMENT_DOWNLOADED = "attachment_downloaded"


class Match(StrEnum):
    """Whether any one or all of several watched events must happen."""

    ANY = "any"
    ALL = "all"


class ABMetric(StrEnum):
    """What decides an A/B test's winner."""

    REPLIES = "replies"
    CLICKS = "clicks"
    OPENS = "opens"


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be a whole number >= 0",
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
        )


def _step_id(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be a non-empty step "
            f"id without surrounding spaces",
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
        )


def _optional_step_id(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _step_id(instance, attribute, value)


@attrs.frozen(kw_only=True)
class Span:
    """A length of time in days and hours, as sequences are authored."""

    days: int = attrs.field(default=0, validator=_non_negative)
    hours: int = attrs.field(default=0, validator=_non_negative)

    @property
    def delta(self) -> timedelta:
        """The span as a `timedelta`."""
        return timedelta(days=self.days, hours=self.hours)

    def __str__(self) -> str:
        parts = [f"{self.days} d" if self.days else "", f"{self.hours} h" if self.hours else ""]
        return " ".join(p for p in parts if p) or "0 h"


# --- what a condition watches --------------------------------------------------------


def _events(value: object) -> tuple[EmailEvent, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, list | tuple | frozenset | set) or not items:
        raise ValidationError(
            f"EmailWatch.events={value!r} must name at least one email event",
            field="EmailWatch.events",
            value=value,
        )
    result: list[EmailEvent] = []
    for item in items:
        event: EmailEvent = to_enum(EmailEvent, item, "EmailWatch.events", optional=False)
        if event not in result:
            result.append(event)
    return tuple(result)


def _match(value: object) -> Match:
    result: Match = to_enum(Match, value, "EmailWatch.match", optional=False)
    return result


@attrs.frozen(kw_only=True)
class EmailWatch:
    """The customer opened, replied to, clicked a link in, or downloaded an
    attachment of the email the condition watches (any or all of several)."""

    events: tuple[EmailEvent, ...] = attrs.field(converter=_events)
    match: Match = attrs.field(default=Match.ANY, converter=_match)


def _outcomes(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = (value,) if isinstance(value, str) else value
    if (
        not isinstance(items, list | tuple | frozenset | set)
        or not items
        or not all(isinstance(i, str) and i.strip() for i in items)
    ):
        raise ValidationError(
            f"CallWatch.outcomes={value!r} must be a non-empty list of call outcomes, or None "
            f"for the outcomes that count as answered",
            field="CallWatch.outcomes",
            value=value,
        )
    return tuple(sorted({i.strip() for i in items}))


@attrs.frozen(kw_only=True)
class CallWatch:
    """The watched call ended with one of ``outcomes``; ``None`` means "answered"
    (the outcomes the engine is configured to count as answered)."""

    outcomes: tuple[str, ...] | None = attrs.field(default=None, converter=_outcomes)


@attrs.frozen(kw_only=True)
class FieldWatch:
    """A field of the record satisfies a condition (the shared predicate language)."""

    condition: Condition


@attrs.frozen(kw_only=True)
class StageWatch:
    """The record's business process is at ``stage``."""

    stage: str = attrs.field(validator=_step_id)


Watch: TypeAlias = EmailWatch | CallWatch | FieldWatch | StageWatch


# --- steps ---------------------------------------------------------------------------


def _activity_kind(value: object) -> StepKind:
    kind: StepKind = to_enum(StepKind, value, "ActivityStep.kind", optional=False)
    if kind not in ACTIVITY_KINDS:
        allowed = ", ".join(sorted(k.value for k in ACTIVITY_KINDS))
        raise ValidationError(
            f"ActivityStep.kind={kind.value!r} is not an activity; choose one of {allowed} "
            f"(waits, conditions and the rest have their own step classes)",
            field="ActivityStep.kind",
            value=value,
        )
    return kind


def _linkedin_action(value: object) -> LinkedInAction | None:
    result: LinkedInAction | None = to_enum(LinkedInAction, value, "ActivityStep.linkedin_action")
    return result


def _subject(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be text of 1 to 200 "
            f"characters",
            field=f"{type(instance).__name__}.{attribute.name}",
            value=value,
        )


@attrs.frozen(kw_only=True)
class ActivityStep:
    """Email, automated email, call, task, LinkedIn action, SMS or automated SMS.

    Manual kinds wait for the seller to complete or skip them; ``auto_email``
    and ``auto_sms`` are sent by the engine when due (``template`` names what to
    send).
    """

    id: str = attrs.field(validator=_step_id)
    kind: StepKind = attrs.field(converter=_activity_kind)
    subject: str = attrs.field(validator=_subject)
    description: str | None = None
    template: str | None = None
    linkedin_action: LinkedInAction | None = attrs.field(default=None, converter=_linkedin_action)
    next: str | None = attrs.field(default=None, validator=_optional_step_id)


@attrs.frozen(kw_only=True)
class WaitStep:
    """Wait ``span`` (at most 30 days) before the next step."""

    KIND = StepKind.WAIT
    id: str = attrs.field(validator=_step_id)
    span: Span
    next: str | None = attrs.field(default=None, validator=_optional_step_id)


@attrs.frozen(kw_only=True)
class ConditionStep:
    """Branch on what happened: ``yes`` if the watched event happens within
    ``within``, else ``no``.

    By default the yes branch starts only when the whole time limit has passed,
    as in the products salesflow reproduces; ``advance_early`` moves on as soon as
    the event happens. ``watches`` names the step an email or call condition looks
    at; by default the step just before the condition.
    """

    KIND = StepKind.CONDITION
    id: str = attrs.field(validator=_step_id)
    watch: Watch
    within: Span = Span()
    advance_early: bool = False
    watches: str | None = attrs.field(default=None, validator=_optional_step_id)
    yes: str = attrs.field(validator=_step_id)
    no: str = attrs.field(validator=_step_id)
    description: str | None = None


@attrs.frozen(kw_only=True)
class UpdateFieldStep:
    """Set a field of the record (runs by itself when due)."""

    KIND = StepKind.UPDATE_FIELD
    id: str = attrs.field(validator=_step_id)
    field: str = attrs.field(validator=_step_id)
    value: CustomValue
    next: str | None = attrs.field(default=None, validator=_optional_step_id)


@attrs.frozen(kw_only=True)
class SetStatusStep:
    """Change the record's status, e.g. disqualify a lead with a reason."""

    KIND = StepKind.SET_STATUS
    id: str = attrs.field(validator=_step_id)
    status: str = attrs.field(validator=_step_id)
    reason: str | None = None
    next: str | None = attrs.field(default=None, validator=_optional_step_id)


@attrs.frozen(kw_only=True)
class AdvanceStep:
    """Move the record to another active sequence of its record type; nothing follows."""

    KIND = StepKind.ADVANCE_TO_SEQUENCE
    id: str = attrs.field(validator=_step_id)
    sequence_id: str = attrs.field(validator=_step_id)


def _split(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 10 <= value <= 90:
        raise ValidationError(
            f"ABTestStep.split_percent={value!r} must be a whole number from 10 to 90 (the "
            f"share of the audience that gets variant A)",
            field="ABTestStep.split_percent",
            value=value,
        )


def _metric(value: object) -> ABMetric:
    result: ABMetric = to_enum(ABMetric, value, "ABTestStep.metric", optional=False)
    return result


def _variant(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("a", "b"):
        raise ValidationError(
            f"ABTestStep.default_variant={value!r} must be 'a' or 'b'",
            field="ABTestStep.default_variant",
            value=value,
        )


@attrs.frozen(kw_only=True)
class ABTestStep:
    """Send one of two automated-email variants and learn which works better.

    ``split_percent`` of the audience gets variant A. The winner is the variant
    with more ``metric`` events once the difference is significant, or at
    ``deadline``; with no winner the ``default_variant`` is used from then on.
    """

    KIND = StepKind.AB_TEST
    id: str = attrs.field(validator=_step_id)
    variant_a: str = attrs.field(validator=_subject)
    variant_b: str = attrs.field(validator=_subject)
    split_percent: int = attrs.field(default=50, validator=_split)
    metric: ABMetric = attrs.field(default=ABMetric.REPLIES, converter=_metric)
    deadline: Span = Span(days=7)
    default_variant: str = attrs.field(default="a", validator=_variant)
    next: str | None = attrs.field(default=None, validator=_optional_step_id)


@attrs.frozen(kw_only=True)
class EndStep:
    """The end of a path, with its outcome (meeting booked, disqualified, …)."""

    KIND = StepKind.END
    id: str = attrs.field(validator=_step_id)
    outcome: str = attrs.field(validator=_step_id)


Step: TypeAlias = (
    ActivityStep
    | WaitStep
    | ConditionStep
    | UpdateFieldStep
    | SetStatusStep
    | AdvanceStep
    | ABTestStep
    | EndStep
)


def step_kind(step: Step) -> StepKind:
    """The kind of ``step``."""
    return step.kind if isinstance(step, ActivityStep) else step.KIND


def successors(step: Step) -> Iterator[tuple[str, str]]:
    """The outgoing edges of ``step`` as ``(label, target id)``: ``("next", …)``, or
    ``("yes", …)`` and ``("no", …)`` for a condition."""
    if isinstance(step, ConditionStep):
        yield "yes", step.yes
        yield "no", step.no
    elif isinstance(step, AdvanceStep | EndStep):
        return
    elif step.next is not None:
        yield "next", step.next


def _record_type(value: object) -> RecordKind:
    kind: RecordKind = to_enum(RecordKind, value, "SequenceDefinition.record_type", optional=False)
    if kind is RecordKind.ACTIVITY:
        raise ValidationError(
            "SequenceDefinition.record_type='activity' is not valid; sequences run on leads, "
            "contacts, accounts and opportunities",
            field="SequenceDefinition.record_type",
            value=value,
        )
    return kind


def _steps(value: object) -> tuple[Step, ...]:
    items = tuple(value) if isinstance(value, list | tuple) else None
    if items is None or not items:
        raise ValidationError(
            f"SequenceDefinition.steps={value!r} must be a non-empty list of steps",
            field="SequenceDefinition.steps",
            value=value,
        )
    seen: set[str] = set()
    for step in items:
        if not isinstance(
            step,
            ActivityStep
            | WaitStep
            | ConditionStep
            | UpdateFieldStep
            | SetStatusStep
            | AdvanceStep
            | ABTestStep
            | EndStep,
        ):
            raise ValidationError(
                f"SequenceDefinition.steps holds {step!r}, which is not a step",
                field="SequenceDefinition.steps",
                value=step,
            )
        if step.id in seen:
            raise ValidationError(
                f"step id {step.id!r} is used twice; every step needs its own id",
                field="SequenceDefinition.steps",
                value=step.id,
            )
        seen.add(step.id)
    return items


def _version(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"SequenceDefinition.version={value!r} must be a whole number >= 1",
            field="SequenceDefinition.version",
            value=value,
        )


@attrs.frozen(kw_only=True)
class SequenceDefinition:
    """A sequence: its identity and version, the record type it runs on, its
    steps and where it starts.

    Options: ``exit_on_reply`` ends an enrollment when the customer replies to
    any email of the sequence; ``skip_non_working_time`` moves a wait that
    would end outside working time to the next working time.
    """

    id: str = attrs.field(validator=_step_id)
    version: int = attrs.field(default=1, validator=_version)
    name: str = attrs.field(validator=_subject)
    record_type: RecordKind = attrs.field(converter=_record_type)
    entry: str = attrs.field(validator=_step_id)
    steps: tuple[Step, ...] = attrs.field(converter=_steps)
    description: str | None = None
    exit_on_reply: bool = False
    skip_non_working_time: bool = False

    def step(self, step_id: str) -> Step:
        """The step with ``step_id``.

        Raises:
            ValidationError: no such step.
        """
        for step in self.steps:
            if step.id == step_id:
                return step
        raise ValidationError(
            f"sequence {self.id!r} has no step {step_id!r}", field="step", value=step_id
        )

    @property
    def by_id(self) -> dict[str, Step]:
        """Every step by its id."""
        return {step.id: step for step in self.steps}
