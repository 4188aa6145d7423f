"""The work list (focused view): the open records a seller should act on, each with
its name, primary contact and next best action.

A record is on the work list when it is open (an open lead, an open opportunity, an
active contact or account) and has at least one open activity: a call, a task, an
email to write, including every manual step of a sequence, which is an activity on
the record's timeline. Its **next best action** is its open activity due first
(activities without a due time come after the dated ones, oldest first). Rows sort
by that due time, or by score (a lead's best current score; other records have
none and sort last), and can be limited to one owner's activities.

`work_list_rows` is the pure part: it builds the rows from the open activities, the
records they regard, the primary contacts and the scores the engine read. The
engine (`salesflow.commands.worklist`) reads one page: the open activities in the
order of an index (due time, regarding record, age), until it has met ``limit``
open records, and then only those records' contacts, scores and activity counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import StrEnum

import attrs

from salesflow.activity import Activity, ActivityKind
from salesflow.lead import Lead, LeadStatus
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.party import Account, Contact
from salesflow.values import Record, RecordRef

__all__ = ["NextAction", "WorkItem", "WorkListOrder", "is_open_record", "work_list_rows"]


class WorkListOrder(StrEnum):
    """How the work list is sorted."""

    DUE = "due"
    """The next action due first (overdue work on top)."""
    SCORE = "score"
    """The highest-scored lead first; ties and unscored records by due time."""


@attrs.frozen(kw_only=True)
class NextAction:
    """The activity a seller should do next on a record.

    Attributes:
        activity_id: The activity.
        kind: Call, task, email, …
        subject: What to do.
        due_at: When it is due (None: no due time).
        overdue: Due before the moment the list was read.
        owner_id: Who it is for.
    """

    activity_id: str
    kind: ActivityKind
    subject: str
    due_at: datetime | None
    overdue: bool
    owner_id: str | None


@attrs.frozen(kw_only=True)
class WorkItem:
    """One row of the work list.

    Attributes:
        record: The record to work on.
        name: Its name (a lead's person, an opportunity's name, …).
        primary_contact: The person to talk to (the lead itself for a lead; the
            opportunity's or account's contact), or None.
        next_action: Its open activity due first.
        open_activities: How many open activities it has (in the list's scope).
        score: A lead's best current score, or None.
    """

    record: RecordRef
    name: str
    primary_contact: str | None
    next_action: NextAction
    open_activities: int
    score: int | None


def is_open_record(record: Record) -> bool:
    """Whether ``record`` is still being worked."""
    if isinstance(record, Lead):
        return record.status is LeadStatus.OPEN
    if isinstance(record, Opportunity):
        return record.status is OpportunityStatus.OPEN
    return bool(getattr(record, "active", True))


def _name(record: Record) -> str:
    if isinstance(record, Lead):
        return f"{record.full_name} ({record.topic})"
    if isinstance(record, Opportunity | Account):
        return record.name
    if isinstance(record, Contact):
        return " ".join(p for p in (record.first_name, record.last_name) if p)
    return str(record.ref)  # pragma: no cover - activities are not work items


def _contact_name(contact: Contact | None) -> str | None:
    if contact is None:
        return None
    return " ".join(p for p in (contact.first_name, contact.last_name) if p)


def _sort_due(due: datetime | None) -> tuple[int, datetime | None]:
    return (0, due) if due is not None else (1, None)


def work_list_rows(
    activities: Iterable[Activity],
    records: Mapping[RecordRef, Record],
    contact_of: Callable[[Record], Contact | None],
    scores: Mapping[str, int],
    *,
    now: datetime,
    order: WorkListOrder = WorkListOrder.DUE,
    counts: Mapping[RecordRef, int] | None = None,
) -> list[WorkItem]:
    """The work list's rows from the open activities in scope.

    Args:
        activities: Open activities (in any order).
        records: The records they regard; a record missing here, or not open, is left
            out.
        contact_of: The primary contact of a record that is not a lead, or None.
        scores: Each lead's best current score by lead id.
        now: When the list is read (to mark overdue actions).
        order: `WorkListOrder.DUE` or `WorkListOrder.SCORE`.
        counts: Each record's number of open activities in scope, when
            ``activities`` holds only some of them (the engine passes each
            record's next action alone); counted from ``activities`` when None.
    """
    grouped: dict[RecordRef, list[Activity]] = {}
    for activity in activities:
        grouped.setdefault(activity.regarding, []).append(activity)
    rows: list[WorkItem] = []
    for ref, open_ones in grouped.items():
        record = records.get(ref)
        if record is None or not is_open_record(record):
            continue
        first = min(open_ones, key=lambda a: (_sort_due(a.due_at), a.created_at, a.id))
        if isinstance(record, Lead):
            contact: str | None = record.full_name
        else:
            contact = _contact_name(contact_of(record))
        rows.append(
            WorkItem(
                record=ref,
                name=_name(record),
                primary_contact=contact,
                next_action=NextAction(
                    activity_id=first.id,
                    kind=first.kind,
                    subject=first.subject,
                    due_at=first.due_at,
                    overdue=first.due_at is not None and first.due_at < now,
                    owner_id=first.owner_id,
                ),
                open_activities=len(open_ones)
                if counts is None
                else counts.get(ref, len(open_ones)),
                score=scores.get(ref.id) if isinstance(record, Lead) else None,
            )
        )

    def by_due(row: WorkItem) -> tuple[object, ...]:
        return (_sort_due(row.next_action.due_at), str(row.record))

    if order is WorkListOrder.SCORE:
        rows.sort(key=lambda r: (r.score is None, -(r.score or 0), by_due(r)))
    else:
        rows.sort(key=by_due)
    return rows
