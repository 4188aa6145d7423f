"""The work list and report commands of `Salesflow` (see `salesflow.worklist` and
`salesflow.reports`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from salesflow.access import Privilege
from salesflow.activity import Activity
from salesflow.clock import require_aware
from salesflow.commands.core import RECORD_CLASSES, EngineCore
from salesflow.conditions import Condition, all_of, field
from salesflow.errors import ValidationError
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.reports import REPORTS, Report, ReportName, Window
from salesflow.stores.base import Query, SortKey, UnitOfWork
from salesflow.values import Record, RecordKind, RecordRef
from salesflow.worklist import WorkItem, WorkListOrder, is_open_record, work_list_rows

__all__ = ["WorkListCommands"]

_BY_RECORD = (
    SortKey(field="regarding_kind"),
    SortKey(field="regarding_id"),
    SortKey(field="created_at"),
)
"""After the due time: the regarding record (as `RecordRef` text sorts), then the
activity's age; the query adds the id. The SQL stores index exactly this order."""

_FIRST_CHUNK = 20
_MAX_CHUNK = 2_000
"""The fewest activities the first read of the work list takes (it takes a quarter
more than the rows wanted), and the most one read takes (each read after the
first doubles, up to this)."""


class WorkListCommands(EngineCore):
    """The seller's work list and the managers' reports."""

    def report(
        self,
        name: ReportName | str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Report:
        """Compute a report (see `salesflow.reports`) over the leads created in
        ``[since, until)`` (all leads when both are None); ``sequence_success``
        compares periods ending at ``until`` (or now) instead.

        Raises:
            ValidationError: an unknown report name, or a naive ``since``/``until``.
        """
        try:
            chosen = ReportName(name)
        except ValueError:
            known = ", ".join(r.value for r in ReportName)
            raise ValidationError(
                f"there is no report {name!r}; use one of {known}", field="name", value=name
            ) from None
        for label, value in (("since", since), ("until", until)):
            if value is not None:
                require_aware(value, label)
        with self._read() as uow:
            window = Window(since, until, self._scope(Privilege.VIEW_REPORTS))
            return REPORTS[chosen](uow, window, self.now())

    def work_list(
        self,
        *,
        owner_id: str | None = None,
        order: WorkListOrder | str = WorkListOrder.DUE,
        limit: int = 50,
    ) -> list[WorkItem]:
        """The open records with open activities (sequence steps included), each with
        its name, primary contact and next best action (see `salesflow.worklist`).

        Args:
            owner_id: Only activities owned by this user (their work list); everyone's
                when None.
            order: ``"due"`` (the next action due first) or ``"score"`` (the best
                lead score first).
            limit: How many rows at most (1 to 10,000).

        Raises:
            ValidationError: ``order`` or ``limit`` is not valid.
        """
        try:
            chosen = WorkListOrder(order)
        except ValueError:
            raise ValidationError(
                f"order={order!r} must be 'due' or 'score'", field="order", value=order
            ) from None
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError(
                f"limit={limit!r} must be a whole number from 1 to 10000",
                field="limit",
                value=limit,
            )
        # The one place the work list's activities are chosen: every condition here
        # is ANDed into each activity query below (an access-control scope goes here).
        conditions: list[Condition] = [field("state").eq("open")]
        if owner_id is not None:
            conditions.append(field("owner_id").eq(owner_id))
        reach = self._scope(Privilege.READ).condition()
        if reach is not None:  # an actor sees the activities they may read
            conditions.append(reach)
        scope = all_of(*conditions)
        now = self.now()
        with self._read() as uow:
            if chosen is WorkListOrder.SCORE:
                picked = _first_by_score(uow, scope, limit)
                if len(picked) < limit:
                    # Then the records without a score (everything but scored leads).
                    picked.update(_first_by_due(uow, scope, limit - len(picked), skip=_scored(uow)))
            else:
                picked = _first_by_due(uow, scope, limit)
            rows = _rows(uow, scope, picked, now, chosen)
        return rows[:limit]


def _scored(uow: UnitOfWork) -> Callable[[list[RecordRef]], set[RecordRef]]:
    """Which of some refs are scored leads (the score order lists them first)."""

    def scored(refs: list[RecordRef]) -> set[RecordRef]:
        leads = [ref.id for ref in refs if ref.kind is RecordKind.LEAD]
        best = uow.best_scores(leads) if leads else {}
        return {ref for ref in refs if ref.kind is RecordKind.LEAD and ref.id in best}

    return scored


def _first_by_score(
    uow: UnitOfWork, scope: Condition, limit: int
) -> dict[RecordRef, tuple[Activity, Record]]:
    """The first ``limit`` scored open leads with activities in ``scope`` in
    work-list order (best score first, ties by next action due), each with its
    next action.

    The store joins the scope's activities to the leads' best scores and orders
    them (`UnitOfWork.scored_lead_activities`); they are read in growing pages, as
    `_first_by_due` reads its own, and closed leads are passed over.
    """
    found: dict[RecordRef, tuple[Activity, Record]] = {}
    seen: set[RecordRef] = set()
    offset, size = 0, _first_size(limit)
    while len(found) < limit:
        page = [activity for activity, _ in uow.scored_lead_activities(scope, size, offset)]
        _take_open(uow, page, seen, found, limit)
        if len(page) < size:
            break
        offset += size
        size = min(_MAX_CHUNK, 2 * size)
    return found


def _first_size(limit: int) -> int:
    """The size of the first read for ``limit`` rows (a quarter more, within bounds)."""
    return min(_MAX_CHUNK, max(_FIRST_CHUNK, limit + limit // 4 + 1))


def _take_open(
    uow: UnitOfWork,
    page: list[Activity],
    seen: set[RecordRef],
    found: dict[RecordRef, tuple[Activity, Record]],
    limit: int,
    skip: Callable[[list[RecordRef]], set[RecordRef]] | None = None,
) -> None:
    """Add to ``found`` (up to ``limit``) the open records of a page of activities
    in work-list order, each with its first activity met (its next action); records
    met before (``seen``) are passed over, and so are those ``skip`` picks."""
    fresh: dict[RecordRef, Activity] = {}
    for activity in page:
        if activity.regarding not in seen and activity.regarding not in fresh:
            fresh[activity.regarding] = activity
    skipped = skip(list(fresh)) if skip is not None else set()
    pending = [ref for ref in fresh if ref not in skipped]
    seen.update(fresh)
    # Read only as many records as rows are still missing (more when some turn out
    # closed): a page of 50 decodes about 50 records.
    start = 0
    while start < len(pending) and len(found) < limit:
        batch = pending[start : start + limit - len(found)]
        start += len(batch)
        records = _records(uow, batch)
        for ref in batch:
            record = records.get(ref)
            if record is not None and is_open_record(record):
                found[ref] = (fresh[ref], record)


def _first_by_due(
    uow: UnitOfWork,
    scope: Condition,
    limit: int,
    *,
    skip: Callable[[list[RecordRef]], set[RecordRef]] | None = None,
) -> dict[RecordRef, tuple[Activity, Record]]:
    """The first ``limit`` open records in work-list order (next action due first),
    each with its next action, read in growing pages of the activity index.

    Activities are read in (due time, regarding record, created, id) order, dated
    ones first: a record's first activity met is its next action, and records are
    met in the order of their rows (due time, then record). Records that are not
    open (a closed lead's leftover call) are skipped, so a page reads a little
    more than ``limit`` activities, not every open one. ``skip`` picks, among
    the records of a page, those to leave out as well.
    """
    found: dict[RecordRef, tuple[Activity, Record]] = {}
    seen: set[RecordRef] = set()
    phases = (
        (all_of(scope, field("due_at").not_null()), (SortKey(field="due_at"), *_BY_RECORD)),
        (all_of(scope, field("due_at").is_null()), _BY_RECORD),
    )
    for where, order in phases:
        offset, size = 0, _first_size(limit)
        while len(found) < limit:
            query = Query(where=where, order_by=order, limit=size, offset=offset, count_limit=0)
            page = list(uow.query(Activity, query).items)
            _take_open(uow, page, seen, found, limit, skip)
            if len(page) < size:
                break
            offset += size
            size = min(_MAX_CHUNK, 2 * size)
    return found


def _records(uow: UnitOfWork, refs: list[RecordRef]) -> dict[RecordRef, Record]:
    """The records ``refs`` name (those that exist), one query per kind."""
    by_kind: dict[RecordKind, list[str]] = {}
    for ref in refs:
        by_kind.setdefault(ref.kind, []).append(ref.id)
    found: dict[RecordRef, Record] = {}
    for kind, ids in by_kind.items():
        cls = RECORD_CLASSES[kind]
        query = Query(where=field("id").in_(ids), limit=len(ids), count_limit=0)
        for record in uow.query(cls, query).items:
            found[record.ref] = record
    return found


def _open_counts(
    uow: UnitOfWork, scope: Condition, refs: Iterable[RecordRef]
) -> dict[RecordRef, int]:
    """How many activities in ``scope`` each of ``refs`` has, one count per kind."""
    by_kind: dict[RecordKind, list[str]] = {}
    for ref in refs:
        by_kind.setdefault(ref.kind, []).append(ref.id)
    counts: dict[RecordRef, int] = {}
    for kind, ids in by_kind.items():
        where = all_of(
            scope, field("regarding_kind").eq(kind.value), field("regarding_id").in_(ids)
        )
        for group in uow.group_counts(Activity, Query(where=where), "regarding_id"):
            counts[RecordRef(kind=kind, id=str(group.value))] = group.count
    return counts


def _rows(
    uow: UnitOfWork,
    scope: Condition,
    picked: dict[RecordRef, tuple[Activity, Record]],
    now: datetime,
    order: WorkListOrder,
) -> list[WorkItem]:
    """The rows of the ``picked`` records (next actions found), with their open
    activity counts, primary contacts and lead scores read for them alone."""
    records = {ref: record for ref, (_, record) in picked.items()}
    leads = [ref.id for ref, record in records.items() if isinstance(record, Lead)]
    scores = uow.best_scores(leads) if leads else {}

    def contact_of(record: Record) -> Contact | None:
        if isinstance(record, Contact):
            return record
        contact_id = None
        if isinstance(record, Opportunity):
            contact_id = record.contact_id
        elif isinstance(record, Account):
            contact_id = record.primary_contact_id
        return uow.find(Contact, contact_id) if contact_id else None

    return work_list_rows(
        [activity for activity, _ in picked.values()],
        records,
        contact_of,
        scores,
        now=now,
        order=order,
        counts=_open_counts(uow, scope, records),
    )
