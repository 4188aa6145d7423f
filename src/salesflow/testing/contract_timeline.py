"""The timeline every store lists alike (part of `StoreContract`): a record's
activities, open ones by due time after the undated ones, in time order."""

from __future__ import annotations

import abc
from datetime import timedelta
from typing import Any

from salesflow.activity import Activity, ActivityKind, ActivityState
from salesflow.stores.base import Store
from salesflow.testing.contract_records import T0
from salesflow.values import Record, RecordKind, RecordRef

__all__ = ["TimelineContract"]


class TimelineContract(abc.ABC):
    """The timeline (part of `StoreContract`, which supplies the ``store`` fixture and
    `put`)."""

    @abc.abstractmethod
    def put(self, store: Store, *records: Record) -> None:
        """Add ``records`` in one committed unit of work (see `StoreContract.put`)."""

    def test_timeline_lists_a_records_activities_in_time_order(self, store: Store) -> None:
        ref = RecordRef(kind=RecordKind.LEAD, id="lead-0001")
        other = RecordRef(kind=RecordKind.CONTACT, id="lead-0001")

        def act(n: int, regarding: RecordRef, **fields: Any) -> Activity:
            return Activity(
                id=f"act-{n}",
                created_at=T0 + timedelta(minutes=n),
                modified_at=T0 + timedelta(minutes=n),
                kind=ActivityKind.TASK,
                subject=f"Task {n}",
                regarding=regarding,
                **fields,
            )

        self.put(
            store,
            act(1, ref, due_at=T0 + timedelta(days=3)),
            act(2, ref),
            act(3, ref, state=ActivityState.COMPLETED, closed_at=T0 + timedelta(days=1)),
            act(4, other),
            act(5, ref, due_at=T0 + timedelta(days=3)),
        )
        with store.unit_of_work() as uow:
            assert [a.id for a in uow.timeline(ref)] == ["act-2", "act-3", "act-1", "act-5"]
            assert [a.id for a in uow.timeline(other)] == ["act-4"]
