"""`Salesflow`: the facade a host application creates and drives.

Every command opens one unit of work on the store, reads what it needs, calls
the pure domain functions with ``now`` from the injected clock, writes the
result and commits; the events it produced are published to the sink only
after the commit, in order. A command that fails changes nothing and publishes
nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar, Unpack

import attrs

from salesflow import activity as act
from salesflow import events as ev
from salesflow import lead as leads
from salesflow.clock import Clock, SystemClock, require_aware
from salesflow.command import (
    CREATED,
    UPDATED,
    DueIdFactory,
    Work,
    as_ref,
    fields_changed,
    require_editable,
    uuid_due_ids,
)
from salesflow.conditions import Condition
from salesflow.due import DueItem, DueItemFailed, RetryPolicy
from salesflow.errors import SalesflowError, ValidationError
from salesflow.fields import (
    AccountFields,
    ActivityFields,
    ContactFields,
    LeadFields,
    OpportunityFields,
)
from salesflow.lead import Lead, StatusReasons
from salesflow.lifecycle import fire
from salesflow.opportunity import Opportunity, OpportunityLifecycle, OpportunityStatus
from salesflow.party import Account, Contact
from salesflow.qualification import Qualification, QualifyOptions, qualify
from salesflow.stores.base import GroupCount, Page, Query, SortKey, Store, UnitOfWork
from salesflow.stores.memory import MemoryStore
from salesflow.values import (
    OwnerType,
    Record,
    RecordKind,
    RecordRef,
    check_fields,
    normalize_email,
    normalize_name,
    to_enum,
)
from salesflow.views import LeadView, ViewResult, lead_view_query
from salesflow.worktime import OrganizationCalendar

__all__ = ["DueHandler", "IdFactory", "Salesflow", "uuid_ids"]

R = TypeVar("R", bound=Record)

IdFactory = Callable[[RecordKind], str]
"""Makes the id of a new record of the given kind."""


DueHandler = Callable[[Work, DueItem], None]
"""Performs a due item: called as ``handler(work, item)`` inside the unit of work that
claimed the item; it reads and writes records and appends events through ``work``,
and may schedule follow-ups with `Work.schedule_due`. Raising a `SalesflowError`
makes the attempt fail (see `Salesflow.run_due`)."""


def uuid_ids(kind: RecordKind) -> str:
    """The default id factory: the kind and a random UUID, e.g. ``lead-3f2a…``."""
    return f"{kind.value}-{uuid.uuid4().hex}"


_RECORD_CLASSES: dict[RecordKind, type[Record]] = {
    RecordKind.LEAD: Lead,
    RecordKind.CONTACT: Contact,
    RecordKind.ACCOUNT: Account,
    RecordKind.OPPORTUNITY: Opportunity,
    RecordKind.ACTIVITY: act.Activity,
}


_RECORD_SYSTEM = frozenset({"id", "version", "created_at", "modified_at"})
_OPPORTUNITY_SYSTEM = _RECORD_SYSTEM | {"status", "close_reason", "actual_close_date"}
_ACTIVITY_SYSTEM = _RECORD_SYSTEM | {"state", "closed_at", "regarding", "kind"}


class Salesflow:
    """The engine: commands and queries over one store.

    Args:
        store: Where records live; an in-memory store by default.
        clock: Where ``now`` comes from; the system clock by default. Tests pass
            a `FakeClock`.
        sink: Receives the events of each committed command; none by default.
        calendar: The organization's time zone and week start (for the weekly
            views); UTC weeks starting Monday by default.
        reasons: The status reasons leads may carry; add your own disqualify
            reasons with ``StatusReasons().with_disqualify_reasons(...)``.
        ids: Makes ids for new records; random UUIDs by default.
        retry: How failed due items are retried (`RetryPolicy`): 1, 2, 4, 8 minutes,
            then deleted after 5 failed attempts, by default.
        due_ids: Makes ids for new due items; ``due-`` and a random UUID by default
            (simulations pass a counter so that runs repeat exactly).

    Due items are performed by handlers registered per kind with `register_handler`.

    Example:
        >>> from salesflow import Salesflow
        >>> engine = Salesflow()
        >>> lead = engine.create_lead(topic="10 laptops", last_name="Ruiz", company_name="Contoso")
        >>> engine.qualify_lead(lead.id).account.name
        'Contoso'
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        sink: ev.EventSink | None = None,
        calendar: OrganizationCalendar | None = None,
        reasons: StatusReasons | None = None,
        ids: IdFactory | None = None,
        retry: RetryPolicy | None = None,
        due_ids: DueIdFactory | None = None,
    ) -> None:
        self.store: Store = store if store is not None else MemoryStore()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.sink: ev.EventSink = sink if sink is not None else ev.NullSink()
        self.calendar = calendar if calendar is not None else OrganizationCalendar()
        self.reasons = reasons if reasons is not None else StatusReasons()
        self._ids: IdFactory = ids if ids is not None else uuid_ids
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError(
                f"retry={retry!r} must be a RetryPolicy(...)", field="retry", value=retry
            )
        self.retry = retry if retry is not None else RetryPolicy()
        self._due_ids: DueIdFactory = due_ids if due_ids is not None else uuid_due_ids
        self._handlers: dict[str, DueHandler] = {}

    # --- plumbing ---------------------------------------------------------------------

    def now(self) -> datetime:
        """The clock's current instant (checked to be timezone-aware)."""
        return require_aware(self.clock.now(), "clock.now()")

    @contextmanager
    def _command(self) -> Iterator[Work]:
        now = self.now()
        with self.store.unit_of_work() as uow:
            work = Work(uow, now, due_ids=self._due_ids)
            yield work
            uow.commit()
        if work.events:
            self.sink.publish(tuple(work.events))

    @contextmanager
    def _read(self) -> Iterator[UnitOfWork]:
        with self.store.unit_of_work() as uow:
            yield uow

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    # --- due items --------------------------------------------------------------------

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

    def run_due(self, limit: int = 100) -> int:
        """Perform up to ``limit`` items due at ``clock.now()``, in ``(due_at, id)`` order.

        Each item has a unit of work of its own: claim, handler, delete, commit, then
        the unit's events are published. So a failing item never undoes another, and
        several processes may call ``run_due`` at once on one PostgreSQL database:
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
        while taken < limit and self._run_one(until):
            taken += 1
        return taken

    def _run_one(self, until: datetime) -> bool:
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
                handler(work, item)
                uow.complete_due(item.id)
                uow.commit()
            except SalesflowError as exc:
                failure = (item, str(exc) or type(exc).__name__)
        if failure is None:
            if work.events:
                self.sink.publish(tuple(work.events))
            return True
        self._fail(*failure)
        return True

    def _fail(self, item: DueItem, error: str) -> None:
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
            uow.commit()
        if done and event is not None:
            self.sink.publish((event,))

    # --- reads ------------------------------------------------------------------------

    def get(self, cls: type[R], record_id: str) -> R:
        """Return the record of class ``cls`` with ``record_id``.

        Raises:
            NotFound: no such record.
        """
        with self._read() as uow:
            return uow.get(cls, record_id)

    def get_lead(self, lead_id: str) -> Lead:
        """Return the lead with ``lead_id`` (`NotFound` if there is none)."""
        return self.get(Lead, lead_id)

    def query(self, cls: type[R], query: Query) -> Page[R]:
        """Run ``query`` over records of ``cls`` (leads, contacts, …)."""
        with self._read() as uow:
            return uow.query(cls, query)

    def timeline(self, record: RecordRef | Record) -> list[act.Activity]:
        """The activities of ``record`` in time order (see `timeline_key`)."""
        ref = as_ref(record)
        with self._read() as uow:
            uow.get(_RECORD_CLASSES[ref.kind], ref.id)
            return uow.timeline(ref)

    def lead_view(
        self,
        view: LeadView | str,
        *,
        user_id: str | None = None,
        search: str | None = None,
        where: Condition | None = None,
        order_by: Sequence[SortKey] = (),
        group_by: str | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> ViewResult[Lead]:
        """One page of a standard lead view.

        Args:
            view: Which view (`LeadView` or its value, e.g. ``"open_leads"``).
            user_id: The current user, for ``my_open_leads``.
            search: Quick find on name, company, email and topic (prefix; a
                leading ``*`` searches inside).
            where: A further filter (`salesflow.conditions`).
            order_by: Sort keys; newest first by default.
            group_by: A field to group by: rows are sorted by it and ``groups``
                counts every group of the whole view.
            page: Page number from 1.
            page_size: Rows per page (1–10000).

        Raises:
            ValidationError: unknown view or field, bad page, missing user_id.
        """
        query = lead_view_query(
            view,
            now=self.now(),
            calendar=self.calendar,
            user_id=user_id,
            search=search,
            where=where,
            order_by=order_by,
            group_by=group_by,
            page=page,
            page_size=page_size,
        )
        with self._read() as uow:
            result = uow.query(Lead, query)
            groups = uow.group_counts(Lead, query, group_by) if group_by else []
        return ViewResult(
            view=LeadView(view).value,
            items=result.items,
            total=result.total,
            page=page,
            page_size=page_size,
            group_by=group_by,
            groups=tuple(groups),
        )

    def lead_view_counts(
        self, view: LeadView | str, group_by: str, *, user_id: str | None = None
    ) -> list[GroupCount]:
        """How many leads of ``view`` have each value of ``group_by``."""
        return list(self.lead_view(view, user_id=user_id, group_by=group_by, page_size=1).groups)

    # --- leads ------------------------------------------------------------------------

    def create_lead(self, **fields: Unpack[LeadFields]) -> Lead:
        """Create an open lead (status reason New).

        ``topic`` and ``last_name`` are required; see `LeadFields` for the rest.

        Raises:
            ValidationError: a field is unknown, missing or malformed.
            NotFound: a parent contact/account or stakeholder does not exist.
        """
        with self._command() as work:
            lead, created = leads.new_lead(
                lead_id=self._ids(RecordKind.LEAD), fields=dict(fields), now=work.now
            )
            work.check_references(lead)
            work.uow.add(lead)
            work.events.append(created)
        return lead

    def update_lead(
        self, lead_id: str, *, expected_version: int | None = None, **changes: Unpack[LeadFields]
    ) -> Lead:
        """Change fields of an open lead.

        Args:
            lead_id: The lead.
            expected_version: If given, the version you read; a newer stored
                version raises `VersionConflict`.
            **changes: The fields to set.

        Raises:
            InvalidTransition: the lead is closed (reactivate it first).
            ValidationError, NotFound, VersionConflict.
        """
        with self._command() as work:
            lead = work.get(Lead, lead_id, expected_version)
            updated, changed = leads.edit(lead, dict(changes), now=work.now)
            work.check_references(updated)
            saved = work.uow.update(updated)
            work.events.append(changed)
        assert isinstance(saved, Lead)
        return saved

    def mark_lead_contacted(self, lead_id: str) -> Lead:
        """Set an open lead's status reason to Contacted."""
        with self._command() as work:
            updated, changed = leads.mark_contacted(work.get(Lead, lead_id), now=work.now)
            saved = work.uow.update(updated)
            work.events.append(changed)
        assert isinstance(saved, Lead)
        return saved

    def assign_lead(
        self, lead_id: str, owner_id: str, *, owner_type: OwnerType | str = OwnerType.USER
    ) -> Lead:
        """Give an open lead to another user or team."""
        with self._command() as work:
            lead = work.get(Lead, lead_id)
            kind: OwnerType = to_enum(OwnerType, owner_type, "owner_type", optional=False)
            updated = leads.assign(lead, owner_id, kind, now=work.now)
            saved = work.uow.update(updated)
            work.events.append(
                ev.LeadAssigned(
                    occurred_at=work.now,
                    lead_id=lead_id,
                    owner_id=owner_id,
                    previous_owner_id=lead.owner_id,
                )
            )
        assert isinstance(saved, Lead)
        return saved

    def qualify_lead(self, lead_id: str, options: QualifyOptions | None = None) -> Qualification:
        """Qualify an open lead: close it and convert it into account, contact and
        opportunity, each linked back to the lead.

        Before creating, an existing contact with the lead's email and an existing
        account with the lead's company name (case and spaces ignored) are linked
        instead (unless ``options.match_existing`` is false). The lead's parent
        contact/account, when set, are used as the existing ones. Re-qualifying a
        reactivated lead whose opportunity is still open reuses that opportunity.
        All of it happens in one unit of work.

        Raises:
            InvalidTransition: the lead is not open.
            NotFound: an ``use_existing_*`` record does not exist.
        """
        options = options if options is not None else QualifyOptions()
        if not isinstance(options, QualifyOptions):
            raise ValidationError(
                f"options={options!r} must be a QualifyOptions(...), not {type(options).__name__}",
                field="options",
                value=options,
            )
        with self._command() as work:
            lead = work.get(Lead, lead_id)
            leads.require_open(lead, "qualified")
            account = self._account_for(work, lead, options)
            contact = self._contact_for(work, lead, options)
            earlier = None
            if lead.qualifying_opportunity_id is not None:
                found = work.uow.find(Opportunity, lead.qualifying_opportunity_id)
                earlier = found if found is not None and found.is_open else None
            result, happened = qualify(
                lead,
                options,
                existing_account=account,
                existing_contact=contact,
                existing_opportunity=earlier,
                new_id=self._ids,
                now=work.now,
            )
            for record in result.created:
                work.uow.add(record)
            saved = work.uow.update(result.lead)
            assert isinstance(saved, Lead)
            result = attrs.evolve(result, lead=saved)
            work.events.extend(happened)
        return result

    def _account_for(self, work: Work, lead: Lead, options: QualifyOptions) -> Account | None:
        chosen = options.use_existing_account or lead.parent_account_id
        if chosen is not None:
            return work.get(Account, chosen)
        if options.create_account and lead.qualified_account_id is not None:
            earlier = work.uow.find(Account, lead.qualified_account_id)
            if earlier is not None:
                return earlier
        if options.create_account and options.match_existing and lead.company_name:
            found = work.uow.find_by(Account, "name_key", normalize_name(lead.company_name))
            return found[0] if found else None
        return None

    def _contact_for(self, work: Work, lead: Lead, options: QualifyOptions) -> Contact | None:
        chosen = options.use_existing_contact or lead.parent_contact_id
        if chosen is not None:
            return work.get(Contact, chosen)
        if options.create_contact and lead.qualified_contact_id is not None:
            earlier = work.uow.find(Contact, lead.qualified_contact_id)
            if earlier is not None:
                return earlier
        if options.create_contact and options.match_existing and lead.email:
            found = work.uow.find_by(Contact, "email_key", normalize_email(lead.email))
            return found[0] if found else None
        return None

    def disqualify_lead(self, lead_id: str, reason: str = "lost") -> Lead:
        """Close an open lead as disqualified with ``reason`` (a standard reason
        such as ``"cannot_contact"`` or one the host registered).

        Raises:
            InvalidTransition: the lead is closed, or its qualifying opportunity is
                still open.
            ValidationError: ``reason`` is not registered.
        """
        with self._command() as work:
            lead = work.get(Lead, lead_id)
            opportunity = (
                work.uow.find(Opportunity, lead.qualifying_opportunity_id)
                if lead.qualifying_opportunity_id
                else None
            )
            updated, happened = leads.disqualify(
                lead,
                reason,
                reasons=self.reasons,
                qualifying_opportunity=opportunity,
                now=work.now,
            )
            saved = work.uow.update(updated)
            work.events.append(happened)
        assert isinstance(saved, Lead)
        return saved

    def reactivate_lead(self, lead_id: str) -> Lead:
        """Reopen a qualified or disqualified lead (back to Open/New)."""
        with self._command() as work:
            updated, happened = leads.reactivate(work.get(Lead, lead_id), now=work.now)
            saved = work.uow.update(updated)
            work.events.append(happened)
        assert isinstance(saved, Lead)
        return saved

    # --- contacts, accounts, opportunities: plain records ------------------------------

    def _create(self, cls: type[R], fields: dict[str, Any], system: frozenset[str]) -> R:
        with self._command() as work:
            check_fields(cls, fields, system, creating=True)
            record = cls(
                id=self._ids(cls.KIND), created_at=work.now, modified_at=work.now, **fields
            )
            work.check_references(record)
            work.uow.add(record)
            work.events.append(CREATED[cls.KIND](work.now, record.id))
        return record

    def _update(
        self,
        cls: type[R],
        record_id: str,
        expected_version: int | None,
        changes: dict[str, Any],
        system: frozenset[str],
    ) -> R:
        with self._command() as work:
            check_fields(cls, changes, system, creating=False)
            record = work.get(cls, record_id, expected_version)
            require_editable(record)
            updated = attrs.evolve(record, modified_at=work.now, **changes)
            work.check_references(updated)
            saved = work.uow.update(updated)
            changed = fields_changed(record, updated, list(changes))
            work.events.append(UPDATED[cls.KIND](work.now, record_id, changed))
        assert isinstance(saved, cls)
        return saved

    def create_contact(self, **fields: Unpack[ContactFields]) -> Contact:
        """Create a contact (``last_name`` required).

        Raises:
            ValidationError: a field is unknown, missing or malformed.
            NotFound: ``account_id`` names no account.
        """
        return self._create(Contact, dict(fields), _RECORD_SYSTEM)

    def update_contact(
        self,
        contact_id: str,
        *,
        expected_version: int | None = None,
        **changes: Unpack[ContactFields],
    ) -> Contact:
        """Change fields of a contact (see `update_lead` for ``expected_version``)."""
        return self._update(Contact, contact_id, expected_version, dict(changes), _RECORD_SYSTEM)

    def create_account(self, **fields: Unpack[AccountFields]) -> Account:
        """Create an account (``name`` required).

        Raises:
            ValidationError: a field is unknown, missing or malformed.
            NotFound: ``primary_contact_id`` names no contact.
        """
        return self._create(Account, dict(fields), _RECORD_SYSTEM)

    def update_account(
        self,
        account_id: str,
        *,
        expected_version: int | None = None,
        **changes: Unpack[AccountFields],
    ) -> Account:
        """Change fields of an account (see `update_lead` for ``expected_version``)."""
        return self._update(Account, account_id, expected_version, dict(changes), _RECORD_SYSTEM)

    def create_opportunity(self, **fields: Unpack[OpportunityFields]) -> Opportunity:
        """Create an open opportunity directly (qualifying a lead also makes one).

        Raises:
            ValidationError: a field is unknown, missing or malformed.
            NotFound: the account, contact or originating lead does not exist.
        """
        return self._create(Opportunity, dict(fields), _OPPORTUNITY_SYSTEM)

    def update_opportunity(
        self,
        opportunity_id: str,
        *,
        expected_version: int | None = None,
        **changes: Unpack[OpportunityFields],
    ) -> Opportunity:
        """Change fields of an open opportunity.

        Raises:
            InvalidTransition: the opportunity is won or lost (reopen it first).
        """
        return self._update(
            Opportunity, opportunity_id, expected_version, dict(changes), _OPPORTUNITY_SYSTEM
        )

    def _close_opportunity(
        self, opportunity_id: str, event: str, reason: str | None
    ) -> Opportunity:
        with self._command() as work:
            opportunity = work.get(Opportunity, opportunity_id)
            status = fire(
                OpportunityLifecycle,
                opportunity.status.value,
                event,
                what=f"Opportunity {opportunity_id!r}",
            )
            reopened = status == OpportunityStatus.OPEN.value
            updated = attrs.evolve(
                opportunity,
                status=status,
                close_reason=None if reopened else reason,
                actual_close_date=None
                if reopened
                else work.now.astimezone(self.calendar.timezone).date(),
                modified_at=work.now,
            )
            saved = work.uow.update(updated)
            if reopened:
                work.events.append(
                    ev.OpportunityReopened(occurred_at=work.now, opportunity_id=opportunity_id)
                )
            else:
                work.events.append(
                    ev.OpportunityClosed(
                        occurred_at=work.now,
                        opportunity_id=opportunity_id,
                        status=status,
                        reason=updated.close_reason,
                    )
                )
        assert isinstance(saved, Opportunity)
        return saved

    def win_opportunity(self, opportunity_id: str, reason: str | None = None) -> Opportunity:
        """Close an open opportunity as won."""
        return self._close_opportunity(opportunity_id, "win", reason)

    def lose_opportunity(self, opportunity_id: str, reason: str | None = None) -> Opportunity:
        """Close an open opportunity as lost."""
        return self._close_opportunity(opportunity_id, "lose", reason)

    def reopen_opportunity(self, opportunity_id: str) -> Opportunity:
        """Reopen a won or lost opportunity."""
        return self._close_opportunity(opportunity_id, "reopen", None)

    # --- activities -------------------------------------------------------------------

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
            target = work.get(_RECORD_CLASSES[ref.kind], ref.id)
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
            work.uow.add(activity)
            work.events.append(
                ev.ActivityCreated(
                    occurred_at=work.now, activity_id=activity.id, regarding=str(ref)
                )
            )
        return activity

    def _close_activity(self, activity_id: str, event: str, outcome: str | None) -> act.Activity:
        with self._command() as work:
            activity = work.get(act.Activity, activity_id)
            state = fire(
                act.ActivityLifecycle,
                activity.state.value,
                event,
                what=f"Activity {activity_id!r}",
            )
            updated = attrs.evolve(
                activity,
                state=state,
                outcome=outcome if outcome is not None else activity.outcome,
                closed_at=work.now,
                modified_at=work.now,
            )
            saved = work.uow.update(updated)
            closed: ev.Event = (
                ev.ActivityCompleted(occurred_at=work.now, activity_id=activity_id)
                if event == "complete"
                else ev.ActivityCanceled(occurred_at=work.now, activity_id=activity_id)
            )
            work.events.append(closed)
        assert isinstance(saved, act.Activity)
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

        Raises:
            InvalidTransition: the activity is completed or canceled.
        """
        updates: dict[str, Any] = dict(changes)
        if subject is not None:
            updates["subject"] = subject
        return self._update(act.Activity, activity_id, None, updates, _ACTIVITY_SYSTEM)
