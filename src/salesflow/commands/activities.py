"""Activity commands of `Salesflow`: add an activity to a record's timeline,
update, complete or cancel it.
"""

from __future__ import annotations

from typing import Any, Unpack

import attrs

from salesflow import activity as act
from salesflow import events as ev
from salesflow import lead as leads
from salesflow.commands.core import RECORD_CLASSES
from salesflow.commands.records import RECORD_SYSTEM, RecordCommands
from salesflow.commands.work import Work, as_ref
from salesflow.fields import ActivityFields
from salesflow.lead import Lead
from salesflow.lifecycle import fire
from salesflow.values import Record, RecordKind, RecordRef, check_fields

__all__ = ["ActivityCommands"]

_ACTIVITY_SYSTEM = RECORD_SYSTEM | {"state", "closed_at", "regarding", "kind"}


class ActivityCommands(RecordCommands):
    """Activities on the timelines of records (updated through the generic record
    update of `RecordCommands`)."""

    def add_activity(
        self,
        regarding: RecordRef | Record,
        kind: act.ActivityKind | str,
        subject: str,
        **fields: Unpack[ActivityFields],
    ) -> act.Activity:
        """Put an activity on a record's timeline.

        Notes and posts are recorded as completed; other kinds start open. Closed
        leads are read-only, so nothing can be added to them.

        Raises:
            NotFound: the record does not exist.
            InvalidTransition: the record is a closed lead.
            ValidationError: a field is malformed (e.g. a naive ``due_at``).
        """
        ref = as_ref(regarding)
        with self._command() as work:
            check_fields(act.Activity, dict(fields), _ACTIVITY_SYSTEM | {"subject"}, creating=True)
            target = work.get(RECORD_CLASSES[ref.kind], ref.id)
            if isinstance(target, Lead):
                leads.require_open(target, "given new activities")
            chosen = act.to_kind(kind)
            done = chosen in (act.ActivityKind.NOTE, act.ActivityKind.POST)
            activity = act.Activity(
                id=self._ids(RecordKind.ACTIVITY),
                created_at=work.now,
                modified_at=work.now,
                kind=chosen,
                subject=subject,
                regarding=ref,
                state=act.ActivityState.COMPLETED if done else act.ActivityState.OPEN,
                closed_at=work.now if done else None,
                **fields,
            )
            work.add(activity)
            work.events.append(
                ev.ActivityCreated(
                    occurred_at=work.now, activity_id=activity.id, regarding=str(ref)
                )
            )
        return activity

    def _close_activity(self, activity_id: str, event: str, outcome: str | None) -> act.Activity:
        with self._command() as work:
            saved = self._close_activity_in(
                work, work.get(act.Activity, activity_id), event, outcome
            )
        return saved

    def _close_activity_in(
        self, work: Work, activity: act.Activity, event: str, outcome: str | None
    ) -> act.Activity:
        """Complete or cancel ``activity`` in ``work`` through its lifecycle, publish
        the event and tell the hooks (a sequence step it belongs to moves on)."""
        state = fire(
            act.ActivityLifecycle,
            activity.state.value,
            event,
            what=f"Activity {activity.id!r}",
        )
        updated = attrs.evolve(
            activity,
            state=state,
            outcome=outcome if outcome is not None else activity.outcome,
            closed_at=work.now,
            modified_at=work.now,
        )
        saved = work.update(updated)
        closed: ev.Event = (
            ev.ActivityCompleted(occurred_at=work.now, activity_id=activity.id)
            if event == "complete"
            else ev.ActivityCanceled(occurred_at=work.now, activity_id=activity.id)
        )
        work.events.append(closed)
        assert isinstance(saved, act.Activity)
        self._activity_closed(work, saved, event)
        return saved

    def complete_activity(self, activity_id: str, *, outcome: str | None = None) -> act.Activity:
        """Mark an open activity completed, with an optional outcome (a call's result)."""
        return self._close_activity(activity_id, "complete", outcome)

    def cancel_activity(self, activity_id: str) -> act.Activity:
        """Cancel an open activity."""
        return self._close_activity(activity_id, "cancel", None)

    def update_activity(
        self, activity_id: str, *, subject: str | None = None, **changes: Unpack[ActivityFields]
    ) -> act.Activity:
        """Change an open activity: its subject, schedule, or owner (delegation).

        Delegating the open activity of a sequence's current step assigns the step
        to the new owner as ``assign_step`` does (the enrollment's step owner and up
        next follow; later steps stay with the enrollment's owner).

        Raises:
            InvalidTransition: the activity is completed or canceled.
        """
        updates: dict[str, Any] = dict(changes)
        if subject is not None:
            updates["subject"] = subject
        return self._update(act.Activity, activity_id, None, updates, _ACTIVITY_SYSTEM)
