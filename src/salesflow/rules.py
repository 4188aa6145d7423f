"""Automation rules: what happens when an item enters a pipeline stage, and when.

A rule (`AutomationRule`) belongs to one stage of one pipeline
(`salesflow.pipelines.Pipeline.rules`). When an item (a deal or a lead) enters the
stage, every rule of that stage is scheduled by its `timing`:

* `Immediately`: as part of the move;
* `After`: a `Delay` after the entry (``After(Delay(months=6))``);
* `FromField`: a `Delay` before or after a date field of the item (``Delay(days=3)``
  before ``estimated_close_date``), at a time of day for date-only fields;
* `At`: at an exact instant.

A time already past when the rule is scheduled means "at once". ``working_time``
moves a time outside working hours to the next working time of the organization's
calendar or of the item owner's. Months are calendar months
(`dateutil.relativedelta`): a month after 31 January is 28 (or 29) February, the last
day of the shorter month, never 3 March; delays are added in the organization's time
zone, so "6 months after 10:00" is 10:00 local time whatever the daylight-saving
changes in between.

The rule's ``condition`` (the shared predicate language) is checked on the item when
the rule is due, not when it is scheduled; a rule whose condition does not hold is
skipped. Rules of a stage run in parallel (each on its own timing from the entry) or
``after_previous`` (its timing counts from the moment the previous rule of the stage
finished). Leaving the stage cancels every rule of that stage that has not run.

The actions: `CreateRepeatLead`, `CopyDeal`, `ScheduleActivity`, `ChangeStage`,
`UpdateField`, `ConnectSequence` and `Notify`. Their texts are `Template` s, checked
against the item's fields when the pipeline is validated.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeAlias

import attrs
from dateutil.relativedelta import relativedelta

from salesflow.activity import ActivityKind
from salesflow.conditions import Condition
from salesflow.errors import ValidationError
from salesflow.templating import Template
from salesflow.values import aware, identifier, to_enum, utc
from salesflow.worktime import OrganizationCalendar

__all__ = [
    "Action",
    "ActivityDue",
    "After",
    "At",
    "AutomationRule",
    "ChangeStage",
    "ConnectSequence",
    "CopyDeal",
    "CreateRepeatLead",
    "Delay",
    "FromField",
    "Immediately",
    "Notify",
    "Responsible",
    "RunMode",
    "ScheduleActivity",
    "Timing",
    "UpdateField",
    "WorkingTime",
    "activity_due_at",
    "rule_due_at",
]

MAX_MONTHS = 120
"""The longest delay: ten years."""


def _bounded(limit: int) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise ValidationError(
                f"{type(instance).__name__}.{attribute.name}={value!r} must be a whole "
                f"number from 0 to {limit}",
                field=attribute.name,
                value=value,
            )

    return check


@attrs.frozen(kw_only=True)
class Delay:
    """A length of calendar time: minutes, hours, days, weeks and months.

    Months use `relativedelta` (clamped to the month's last day); days and weeks
    are calendar days in the organization's time zone; minutes and hours are
    elapsed time.
    """

    minutes: int = attrs.field(default=0, validator=_bounded(MAX_MONTHS * 31 * 24 * 60))
    hours: int = attrs.field(default=0, validator=_bounded(MAX_MONTHS * 31 * 24))
    days: int = attrs.field(default=0, validator=_bounded(MAX_MONTHS * 31))
    weeks: int = attrs.field(default=0, validator=_bounded(MAX_MONTHS * 5))
    months: int = attrs.field(default=0, validator=_bounded(MAX_MONTHS))

    @property
    def is_zero(self) -> bool:
        """No time at all."""
        return not (self.minutes or self.hours or self.days or self.weeks or self.months)

    def add_to(self, instant: datetime, zone: OrganizationCalendar, *, sign: int = 1) -> datetime:
        """``instant`` plus (``sign`` = -1: minus) this delay: months, weeks and days on
        the wall clock of ``zone``'s time zone, then hours and minutes elapsed."""
        local = instant.astimezone(zone.timezone)
        wall = local.replace(tzinfo=None) + sign * relativedelta(
            months=self.months, weeks=self.weeks, days=self.days
        )
        moved = wall.replace(tzinfo=zone.timezone)
        elapsed = timedelta(hours=self.hours, minutes=self.minutes)
        return utc(moved) + sign * elapsed  # type: ignore[no-any-return]

    def describe(self) -> str:
        """``"6 months"``, ``"1 day 2 hours"``, ``"no delay"``."""
        parts = [
            f"{n} {unit}{'' if n == 1 else 's'}"
            for n, unit in (
                (self.months, "month"),
                (self.weeks, "week"),
                (self.days, "day"),
                (self.hours, "hour"),
                (self.minutes, "minute"),
            )
            if n
        ]
        return " ".join(parts) or "no delay"


def _delay(value: object) -> Delay:
    if not isinstance(value, Delay):
        raise ValidationError(
            f"delay={value!r} must be a Delay(...), e.g. Delay(months=6)",
            field="delay",
            value=value,
        )
    return value


def _optional_time(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, time):
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be a time of day "
            "(datetime.time), e.g. time(14, 0)",
            field=attribute.name,
            value=value,
        )
    if isinstance(value, time) and value.tzinfo is not None:
        raise ValidationError(
            f"{type(instance).__name__}.{attribute.name}={value!r} must be a wall-clock "
            "time without a time zone (the zone is the calendar's)",
            field=attribute.name,
            value=value,
        )


@attrs.frozen(kw_only=True)
class Immediately:
    """Run as part of the move that entered the stage."""


@attrs.frozen(kw_only=True)
class After:
    """Run ``delay`` after the item entered the stage (or after the previous rule
    finished, for rules that run ``after_previous``)."""

    delay: Delay = attrs.field(validator=attrs.validators.instance_of(Delay))


@attrs.frozen(kw_only=True)
class FromField:
    """Run ``delay`` before or after the date in the item's field ``field``.

    Attributes:
        field: A date or date-time field of the item (``estimated_close_date``).
        delay: How long before or after.
        before: Before the date rather than after it.
        at: For a date-only field, the time of day (organization calendar), 09:00
            by default; ignored for date-time fields.
    """

    field: str = attrs.field(validator=identifier)
    delay: Delay = attrs.field(factory=Delay, converter=_delay)
    before: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    at: time | None = attrs.field(default=None, validator=_optional_time)


@attrs.frozen(kw_only=True)
class At:
    """Run at an exact instant (aware)."""

    at: datetime = attrs.field(converter=utc, validator=aware)


Timing: TypeAlias = Immediately | After | FromField | At
"""When a rule runs."""

_TIMINGS = (Immediately, After, FromField, At)


class RunMode(StrEnum):
    """How a rule's time is counted among the rules of its stage."""

    PARALLEL = "parallel"
    """From the entry into the stage, independently of the other rules."""
    AFTER_PREVIOUS = "after_previous"
    """From the moment the previous rule of the stage finished (ran, was skipped or
    failed)."""


class WorkingTime(StrEnum):
    """Whether a rule waits for working time."""

    ANY = "any"
    """Any time."""
    ORGANIZATION = "organization"
    """The organization calendar's working time."""
    OWNER = "owner"
    """The item owner's calendar (the organization's when the owner has none)."""


def _users(value: object) -> tuple[str, ...]:
    users = tuple(value) if isinstance(value, list | tuple) else value
    if not isinstance(users, tuple) or not all(isinstance(u, str) and u for u in users):
        raise ValidationError(
            f"Responsible.users={value!r} must be a list of user ids",
            field="users",
            value=value,
        )
    if len(set(users)) != len(users):
        raise ValidationError(
            f"Responsible.users={value!r} names a user twice", field="users", value=value
        )
    return users


@attrs.frozen(kw_only=True)
class Responsible:
    """Who a rule's new lead, deal or activity is given to: the item's owner (no
    users), one user, or one of several chosen at random (the choice is derived from
    the run's key, so a retried run picks the same user)."""

    users: tuple[str, ...] = attrs.field(default=(), converter=_users)

    def describe(self) -> str:
        """``"the item's owner"``, ``"u1"`` or ``"one of u1, u2"``."""
        if not self.users:
            return "the item's owner"
        if len(self.users) == 1:
            return self.users[0]
        return "one of " + ", ".join(self.users)


def _template(value: object) -> Template:
    return value if isinstance(value, Template) else Template(value)


def _optional_template(value: object) -> Template | None:
    return None if value is None else _template(value)


@attrs.frozen(kw_only=True)
class CreateRepeatLead:
    """Create a lead for the item's contact and company, marked as a repeat lead.

    Attributes:
        name: The lead's topic, from a template (``"Service renewal: {name}"``).
        responsible: Who owns the new lead.
    """

    name: Template = attrs.field(converter=_template)
    responsible: Responsible = attrs.field(factory=Responsible)


@attrs.frozen(kw_only=True)
class CopyDeal:
    """Copy the deal with all its fields (custom fields and lines included) into a
    pipeline.

    Attributes:
        pipeline: The target pipeline (it may be the item's own).
        stage: The stage the copy starts in; the pipeline's first when None.
        name: The copy's name; ``"<original name> (Copy)"`` when None.
        responsible: Who owns the copy (the original's owner by default).
    """

    pipeline: str = attrs.field(validator=identifier)
    stage: str | None = attrs.field(default=None)
    name: Template | None = attrs.field(default=None, converter=_optional_template)
    responsible: Responsible = attrs.field(factory=Responsible)


_ACTIVITY_KINDS = (ActivityKind.PHONE_CALL, ActivityKind.APPOINTMENT, ActivityKind.TASK)


def _activity_kind(value: object) -> ActivityKind:
    try:
        kind = ActivityKind(value) if isinstance(value, str) else None
    except ValueError:
        kind = None
    if kind not in _ACTIVITY_KINDS:
        raise ValidationError(
            f"ScheduleActivity.kind={value!r} must be one of "
            + ", ".join(k.value for k in _ACTIVITY_KINDS)
            + " (use a task for document preparation)",
            field="kind",
            value=value,
        )
    assert kind is not None
    return kind


@attrs.frozen(kw_only=True)
class ActivityDue:
    """When a scheduled activity is due, counted from the moment the rule runs in
    the responsible user's time zone: ``ActivityDue(days=1, at=time(14))`` is
    "tomorrow at 14:00", ``ActivityDue(days=2, at=time(12))`` "2 days after, at
    12:00", ``ActivityDue(hours=4)`` four hours later."""

    days: int = attrs.field(default=0, validator=_bounded(366))
    hours: int = attrs.field(default=0, validator=_bounded(24 * 366))
    at: time | None = attrs.field(default=None, validator=_optional_time)


@attrs.frozen(kw_only=True)
class ScheduleActivity:
    """Put an activity on the item's timeline.

    Attributes:
        kind: ``phone_call``, ``appointment`` (meeting) or ``task``.
        subject: A template.
        description: A template, or None.
        due: When it is due (`ActivityDue`).
        responsible: Who it is for (the item's owner by default).
        complete_on_stage_change: Complete it when the item leaves the stage.
    """

    kind: ActivityKind = attrs.field(converter=_activity_kind)
    subject: Template = attrs.field(converter=_template)
    description: Template | None = attrs.field(default=None, converter=_optional_template)
    due: ActivityDue = attrs.field(factory=ActivityDue)
    responsible: Responsible = attrs.field(factory=Responsible)
    complete_on_stage_change: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool)
    )


@attrs.frozen(kw_only=True)
class ChangeStage:
    """Move the item to another stage of its pipeline."""

    stage: str = attrs.field(validator=identifier)


@attrs.frozen(kw_only=True)
class UpdateField:
    """Set a field of the item (checked by the record's own validation)."""

    field: str = attrs.field(validator=identifier)
    value: Any = None


@attrs.frozen(kw_only=True)
class ConnectSequence:
    """Connect the item to a sequence (it must be published and active when the rule
    runs, and of the item's record type)."""

    sequence: str = attrs.field(validator=identifier)


@attrs.frozen(kw_only=True)
class Notify:
    """Publish a `salesflow.events.RuleNotification` for the host to deliver.

    Attributes:
        message: A template.
        users: Who to tell; the item's owner when empty.
    """

    message: Template = attrs.field(converter=_template)
    users: tuple[str, ...] = attrs.field(default=(), converter=_users)


Action: TypeAlias = (
    CreateRepeatLead
    | CopyDeal
    | ScheduleActivity
    | ChangeStage
    | UpdateField
    | ConnectSequence
    | Notify
)
"""What a rule does."""

_ACTIONS = (
    CreateRepeatLead,
    CopyDeal,
    ScheduleActivity,
    ChangeStage,
    UpdateField,
    ConnectSequence,
    Notify,
)


def _one_of(kinds: tuple[type, ...], what: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kinds):
            names = ", ".join(k.__name__ for k in kinds)
            raise ValidationError(
                f"AutomationRule.{attribute.name}={value!r} must be {what}: one of {names}",
                field=attribute.name,
                value=value,
            )

    return check


def _condition(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    from salesflow.conditions import AllOf, AnyOf, Compare, Not

    if value is not None and not isinstance(value, Compare | AllOf | AnyOf | Not):
        raise ValidationError(
            f"AutomationRule.condition={value!r} must be a condition "
            "(salesflow.conditions: field('x').eq(...), all_of(...), any_of(...)) or None",
            field="condition",
            value=value,
        )


def _run_mode(value: object) -> RunMode:
    mode: RunMode = to_enum(RunMode, value, "AutomationRule.run", optional=False)
    return mode


def _working_time(value: object) -> WorkingTime:
    mode: WorkingTime = to_enum(WorkingTime, value, "AutomationRule.working_time", optional=False)
    return mode


@attrs.frozen(kw_only=True)
class AutomationRule:
    """One rule on one stage (see the module docstring).

    Attributes:
        id: Unique within the pipeline; a rule keeps its id across versions.
        stage: The stage it belongs to.
        action: What it does.
        timing: When it runs; `Immediately` by default.
        name: A label for people.
        condition: Checked on the item when the rule is due; None: always run.
        run: `RunMode.PARALLEL` (default) or `RunMode.AFTER_PREVIOUS`.
        working_time: Whether to wait for working time (`WorkingTime`).
    """

    id: str = attrs.field(validator=identifier)
    stage: str = attrs.field(validator=identifier)
    action: Action = attrs.field(validator=_one_of(_ACTIONS, "an action"))
    timing: Timing = attrs.field(factory=Immediately, validator=_one_of(_TIMINGS, "a timing"))
    name: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    condition: Condition | None = attrs.field(default=None, validator=_condition)
    run: RunMode = attrs.field(default=RunMode.PARALLEL, converter=_run_mode)
    working_time: WorkingTime = attrs.field(default=WorkingTime.ANY, converter=_working_time)


def rule_due_at(
    rule: AutomationRule,
    *,
    start: datetime,
    field_value: date | datetime | None,
    calendar: OrganizationCalendar,
    working: OrganizationCalendar | None,
) -> datetime | None:
    """When ``rule`` runs, counted from ``start`` (the stage entry, or the previous
    rule's end), before moving to working time.

    Args:
        rule: The rule.
        start: Where its time counts from.
        field_value: The item's value of a `FromField` timing's field.
        calendar: The organization calendar (its time zone places days and months).
        working: The calendar whose working time the rule waits for, or None.

    Returns:
        The instant (possibly in the past: then the rule runs at once), or None when
        a `FromField` rule's field is empty.
    """
    timing = rule.timing
    if isinstance(timing, Immediately):
        due = start
    elif isinstance(timing, After):
        due = timing.delay.add_to(start, calendar)
    elif isinstance(timing, At):
        due = timing.at
    else:
        if field_value is None:
            return None
        if isinstance(field_value, datetime):
            base = field_value
        else:
            wall = datetime.combine(field_value, timing.at or time(9, 0))
            base = utc(wall.replace(tzinfo=calendar.timezone))
        due = timing.delay.add_to(base, calendar, sign=-1 if timing.before else 1)
    if working is not None:
        due = working.next_working_time(due)
    return due


def activity_due_at(due: ActivityDue, now: datetime, calendar: OrganizationCalendar) -> datetime:
    """When an activity scheduled at ``now`` is due, on ``calendar``'s wall clock
    (the responsible user's time zone)."""
    local = now.astimezone(calendar.timezone)
    if due.at is None:
        wall = local.replace(tzinfo=None) + timedelta(days=due.days)
        return utc(wall.replace(tzinfo=calendar.timezone)) + timedelta(hours=due.hours)  # type: ignore[no-any-return]
    day = local.date() + timedelta(days=due.days)
    wall = datetime.combine(day, due.at)
    return utc(wall.replace(tzinfo=calendar.timezone)) + timedelta(hours=due.hours)  # type: ignore[no-any-return]
