"""Due item commands of `Salesflow`: handlers per kind, scheduling, canceling, and
performing what is due with retries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from salesflow.commands.core import EngineCore
from salesflow.commands.work import Work, as_ref
from salesflow.due import DueItem, DueItemFailed
from salesflow.errors import SalesflowError, ValidationError
from salesflow.stores.codec import decode_event
from salesflow.values import Record, RecordRef

__all__ = ["DueCommands", "DueHandler"]

_BATCH = 100
"""How many due items one unit of work performs at most."""

DueHandler = Callable[[Work, DueItem], None]
"""Performs a due item: called as ``handler(work, item)`` inside the unit of work that
claimed the item; it reads and writes records and appends events through ``work``,
and may schedule follow-ups with `Work.schedule_due`. Raising a `SalesflowError`
makes the attempt fail (see `Salesflow.run_due`). A handler may run more than once
for one item (a batch that rolled back is redone item by item), so it must act only
through ``work``: what it writes there is kept exactly once, and anything the host
must do outside (send an email) goes in an event, published after the commit."""


class DueCommands(EngineCore):
    """Due items: register handlers, schedule and cancel items, run what is due."""

    _handlers: dict[str, DueHandler]

    def register_handler(self, kind: str, handler: DueHandler) -> None:
        """Make ``handler`` perform the due items of ``kind``.

        Each kind has one handler; the engine's own features register theirs
        (``sequence.step``, …) the same way.

        Raises:
            ValidationError: ``kind`` is empty, ``handler`` is not callable, or the
                kind already has a handler.
        """
        if not isinstance(kind, str) or not kind:
            raise ValidationError(
                f"kind={kind!r} must be a non-empty string", field="kind", value=kind
            )
        if not callable(handler):
            raise ValidationError(
                f"handler={handler!r} must be callable as handler(work, item)",
                field="handler",
                value=handler,
            )
        if kind in self._handlers:
            raise ValidationError(
                f"due item kind {kind!r} already has a handler ({self._handlers[kind]!r})",
                field="kind",
                value=kind,
            )
        self._handlers[kind] = handler

    def schedule_due(
        self,
        kind: str,
        due_at: datetime,
        *,
        subject: RecordRef | Record | None = None,
        payload: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> DueItem:
        """Schedule a due item in a unit of work of its own (see `Work.schedule_due`,
        which commands and handlers use to schedule in their own unit).

        Returns:
            The new item, or the stored one with the same ``key``.
        """
        with self._command() as work:
            return work.schedule_due(
                kind,
                due_at,
                subject=None if subject is None else as_ref(subject),
                payload=payload,
                key=key,
            )

    def cancel_due(self, item_id: str) -> bool:
        """Delete a due item by id; False when there is none."""
        with self._command() as work:
            return work.uow.cancel_due(item_id)

    def cancel_due_by_key(self, key: str) -> bool:
        """Delete the due item with uniqueness key ``key``; False when there is none."""
        with self._command() as work:
            return work.uow.cancel_due_by_key(key)

    def due_items(self, subject: RecordRef | Record | None = None) -> list[DueItem]:
        """The stored due items (of ``subject`` when given) in ``(due_at, id)`` order."""
        ref = None if subject is None else as_ref(subject)
        with self._read() as uow:
            return uow.due_items(ref)

    def next_due_at(self) -> datetime | None:
        """When the earliest stored due item is due; None when there is none."""
        with self._read() as uow:
            return uow.next_due_at()

    def deliver_outbox(
        self, *, older_than: timedelta = timedelta(minutes=1), limit: int = 100
    ) -> int:
        """Publish the events of committed units that never reached the sink, oldest
        first, and drop them from the outbox (see `salesflow.outbox`).

        An engine made with ``outbox=True`` keeps each unit's events in the store
        with the unit and removes them once its sink has them; what a killed
        process (or a sink that raised) left behind is published here, so every
        event reaches a sink at least once. Workers call this on every loop. Entries
        younger than ``older_than`` are left to the engine that made them, which is
        normally about to deliver them. On PostgreSQL, concurrent deliverers skip
        each other's entries.

        Args:
            older_than: Leave the entries made less than this long ago (>= 0).
            limit: How many entries at most (1 to 10,000), all in one unit of work:
                if the sink raises, none of them is dropped.

        Returns:
            How many entries were published.

        Raises:
            ValidationError: ``older_than`` is negative or not a timedelta, or
                ``limit`` is out of range.
            StoreError: a stored entry cannot be read back as events.
        """
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ValidationError(
                f"older_than={older_than!r} must be a timedelta of 0 or more",
                field="older_than",
                value=older_than,
            )
        with self._write() as uow:  # claiming locks the entries (PostgreSQL)
            entries = uow.claim_outbox(self.now() - older_than, limit)
            for entry in entries:
                self.sink.publish(tuple(decode_event(doc) for doc in entry.events))
            uow.remove_outbox([entry.id for entry in entries])
            uow.commit()
        return len(entries)

    def run_due(self, limit: int = 100) -> int:
        """Perform up to ``limit`` items due at ``clock.now()``, in ``(due_at, id)`` order.

        Items are claimed and performed in batches of up to 100 in one unit of work
        (claim, handlers, delete, one commit), then the unit's events are published.
        When any handler of a batch raises, the batch's unit rolls back and its items
        are taken again one unit each, so a failing item never undoes another.
        Several processes may call ``run_due`` at once on one PostgreSQL database:
        each item is performed (committed) exactly once.

        When the handler raises a `SalesflowError` (or no handler is registered for
        the kind, as when an older worker meets a newer kind), the unit rolls back and,
        in a new unit, the item is retried later: ``attempts`` + 1, due again after
        `RetryPolicy.delay`, the error's message in ``payload["last_error"]``. The
        attempt that makes ``retry.max_attempts`` failures deletes the item instead
        and publishes `DueItemFailed`. Any other exception rolls the item's unit back
        (the item stays due, its attempts unchanged) and propagates; items performed
        before it stay performed.

        Returns:
            How many items were taken: performed, retried or failed. 0 means nothing
            (claimable) was due.

        Raises:
            ValidationError: ``limit`` is not a whole number >= 1.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError(
                f"limit={limit!r} must be a whole number >= 1", field="limit", value=limit
            )
        until = self.now()
        taken = 0
        delivered: list[str] = []  # outbox entries published, dropped at the end at once
        try:
            while taken < limit:
                done = self._run_batch(until, min(limit - taken, _BATCH), delivered)
                if done is None:
                    # a handler failed: take the same items one unit at a time, so the
                    # failure is retried on its own and the others are performed
                    done = sum(
                        1
                        for _ in range(min(limit - taken, _BATCH))
                        if self._run_one(until, delivered)
                    )
                if not done:
                    break
                taken += done
        finally:
            self._forget(delivered)
        return taken

    def _run_batch(self, until: datetime, wanted: int, delivered: list[str]) -> int | None:
        """Claim up to ``wanted`` items due at ``until`` and perform them all in one
        unit of work (one commit instead of one per item).

        Returns:
            How many were performed; None when a handler raised (the unit rolled
            back and nothing of it happened).
        """
        with self.store.unit_of_work() as uow:
            claimed = uow.claim_due(until, wanted)
            if not claimed:
                return 0
            work = Work(uow, self.now(), due_ids=self._due_ids)
            try:
                for item in claimed:
                    handler = self._handlers.get(item.kind)
                    if handler is None:
                        return None
                    work.performing = item
                    handler(work, item)
                    if item.id not in work.completed:
                        uow.complete_due(item.id)
                self._before_commit(work)
                kept = self._keep_events(uow, work.events, work.now)
            except Exception:  # any failure: the items are redone one by one
                return None
            uow.commit()
        self._publish(work.events, kept, delivered)
        return len(claimed)

    def _run_one(self, until: datetime, delivered: list[str]) -> bool:
        """Claim and perform the first item due at ``until``; False when there is none."""
        failure: tuple[DueItem, str] | None = None
        with self.store.unit_of_work() as uow:
            claimed = uow.claim_due(until, 1)
            if not claimed:
                return False
            item = claimed[0]
            work = Work(uow, self.now(), due_ids=self._due_ids)
            handler = self._handlers.get(item.kind)
            try:
                if handler is None:
                    known = ", ".join(sorted(self._handlers)) or "none"
                    raise ValidationError(
                        f"no handler for due item kind {item.kind!r} (registered: {known})",
                        field="kind",
                        value=item.kind,
                    )
                work.performing = item
                handler(work, item)
                self._before_commit(work)
                if item.id not in work.completed:
                    uow.complete_due(item.id)
                kept = self._keep_events(uow, work.events, work.now)
                uow.commit()
            except SalesflowError as exc:
                failure = (item, str(exc) or type(exc).__name__)
        if failure is None:
            self._publish(work.events, kept, delivered)
            return True
        self._fail(*failure, delivered)
        return True

    def _fail(self, item: DueItem, error: str, delivered: list[str]) -> None:
        """Record a failed attempt of ``item`` (its own unit already rolled back)."""
        now = self.now()
        with self.store.unit_of_work() as uow:
            if item.attempts + 1 >= self.retry.max_attempts:
                event: DueItemFailed | None = DueItemFailed(
                    occurred_at=now,
                    item_id=item.id,
                    kind=item.kind,
                    subject=None if item.subject is None else str(item.subject),
                    attempts=item.attempts + 1,
                    error=error,
                    payload=item.payload,
                )
                done = uow.replace_due(item, None)
            else:
                event = None
                done = uow.replace_due(item, item.retried(now, error, self.retry))
            events = [event] if done and event is not None else []
            kept = self._keep_events(uow, events, now)
            uow.commit()
        self._publish(events, kept, delivered)
