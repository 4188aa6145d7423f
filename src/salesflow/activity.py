"""Activities on a record's timeline (email, phone call, appointment, task,
LinkedIn action, note, post), their open → completed | canceled lifecycle, and
the timeline order.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

import attrs
from statemachine import State, StateMachine

from salesflow.values import (
    OwnerType,
    Record,
    RecordKind,
    RecordRef,
    optional_aware,
    optional_identifier,
    optional_text,
    required_text,
    text,
    to_enum,
    utc,
)

__all__ = [
    "Activity",
    "ActivityKind",
    "ActivityLifecycle",
    "ActivityState",
    "LinkedInAction",
    "timeline_key",
]


class ActivityKind(StrEnum):
    """What sort of activity it is."""

    EMAIL = "email"
    PHONE_CALL = "phone_call"
    APPOINTMENT = "appointment"
    TASK = "task"
    LINKEDIN = "linkedin"
    SMS = "sms"
    NOTE = "note"
    POST = "post"


class LinkedInAction(StrEnum):
    """The LinkedIn actions a seller performs by hand."""

    RESEARCH = "research"
    CONNECT = "connect"
    GET_INTRODUCED = "get_introduced"
    INMAIL = "inmail"


class ActivityState(StrEnum):
    """Whether the activity is still to do, done, or dropped."""

    OPEN = "open"
    COMPLETED = "completed"
    CANCELED = "canceled"


class ActivityLifecycle(StateMachine):
    """Open → Completed | Canceled. Closed activities are final."""

    open = State("Open", initial=True, value="open")
    completed = State("Completed", final=True, value="completed")
    canceled = State("Canceled", final=True, value="canceled")

    complete = open.to(completed)
    cancel = open.to(canceled)


def _ref(value: object) -> RecordRef:
    if isinstance(value, RecordRef):
        return value
    from salesflow.errors import ValidationError

    raise ValidationError(
        f"Activity.regarding={value!r} must be a RecordRef (use record.ref)",
        field="Activity.regarding",
        value=value,
    )


def to_kind(value: object) -> ActivityKind:
    """Converter: an `ActivityKind` from itself or its value (``\"phone_call\"``)."""
    result: ActivityKind = to_enum(ActivityKind, value, "Activity.kind", optional=False)
    return result


def _activity_owner_type(value: object) -> OwnerType:
    result: OwnerType = to_enum(OwnerType, value, "Activity.owner_type", optional=False)
    return result


def _activity_state(value: object) -> ActivityState:
    result: ActivityState = to_enum(ActivityState, value, "Activity.state", optional=False)
    return result


def _activity_linkedin_action(value: object) -> LinkedInAction | None:
    result: LinkedInAction | None = to_enum(LinkedInAction, value, "Activity.linkedin_action")
    return result


@attrs.define(kw_only=True)
class Activity(Record):
    """One item on a record's timeline.

    ``regarding`` is the record it belongs to. ``owner_id`` is who must do it:
    the seller who created it, or another user it was delegated to. Notes and
    posts are created completed; the other kinds start open.
    """

    KIND: ClassVar[RecordKind] = RecordKind.ACTIVITY

    kind: ActivityKind = attrs.field(converter=to_kind)
    subject: str = attrs.field(converter=text, validator=required_text(200))
    description: str | None = attrs.field(
        default=None, converter=text, validator=optional_text(10_000)
    )
    regarding: RecordRef = attrs.field(converter=_ref)
    owner_id: str | None = attrs.field(default=None, validator=optional_identifier)
    owner_type: OwnerType = attrs.field(
        default=OwnerType.USER,
        converter=_activity_owner_type,
    )
    due_at: datetime | None = attrs.field(default=None, converter=utc, validator=optional_aware)
    state: ActivityState = attrs.field(
        default=ActivityState.OPEN,
        converter=_activity_state,
    )
    linkedin_action: LinkedInAction | None = attrs.field(
        default=None, converter=_activity_linkedin_action
    )
    outcome: str | None = attrs.field(default=None, converter=text, validator=optional_text(100))
    closed_at: datetime | None = attrs.field(default=None, converter=utc, validator=optional_aware)

    @property
    def timeline_at(self) -> datetime:
        """The instant the timeline sorts this activity by (see `timeline_key`)."""
        return self.closed_at or self.due_at or self.created_at


def timeline_key(activity: Activity) -> tuple[datetime, str]:
    """Timeline order: when it was done, else when it is due, else when it was made.

    Ties are broken by id so the order is total and the same in every store.
    """
    return (activity.timeline_at, activity.id)
