"""The work list and report commands of `Salesflow` (see `salesflow.worklist` and
`salesflow.reports`)."""

from __future__ import annotations

from datetime import datetime

from salesflow.activity import Activity
from salesflow.clock import require_aware
from salesflow.commands.core import RECORD_CLASSES, EngineCore
from salesflow.conditions import Condition, all_of, field
from salesflow.errors import ValidationError
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.reports import REPORTS, Report, ReportName
from salesflow.stores.base import Query, UnitOfWork
from salesflow.values import Record, RecordRef
from salesflow.worklist import WorkItem, WorkListOrder, work_list_rows

__all__ = ["WorkListCommands"]

_PAGE = 5_000


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
            return REPORTS[chosen](uow, since, until, self.now())

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
        conditions: list[Condition] = [field("state").eq("open")]
        if owner_id is not None:
            conditions.append(field("owner_id").eq(owner_id))
        with self._read() as uow:
            activities = _all(uow, Query(where=all_of(*conditions), limit=_PAGE))
            records: dict[RecordRef, Record] = {}
            for activity in activities:
                ref = activity.regarding
                if ref not in records:
                    found = uow.find(RECORD_CLASSES[ref.kind], ref.id)
                    if found is not None:
                        records[ref] = found
            scores = {
                ref.id: max((s.points for s in uow.scores(ref.id)), default=None)
                for ref, record in records.items()
                if isinstance(record, Lead)
            }

            def contact_of(record: Record) -> Contact | None:
                contact_id = None
                if isinstance(record, Opportunity | Account):
                    contact_id = (
                        record.contact_id
                        if isinstance(record, Opportunity)
                        else record.primary_contact_id
                    )
                elif isinstance(record, Contact):
                    return record
                return uow.find(Contact, contact_id) if contact_id else None

            rows = work_list_rows(
                activities,
                records,
                contact_of,
                {k: v for k, v in scores.items() if v is not None},
                now=self.now(),
                order=chosen,
            )
        return rows[:limit]


def _all(uow: UnitOfWork, query: Query) -> list[Activity]:
    found: list[Activity] = []
    offset = 0
    while True:
        page = uow.query(Activity, Query(where=query.where, limit=query.limit, offset=offset))
        found.extend(page.items)
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return found
