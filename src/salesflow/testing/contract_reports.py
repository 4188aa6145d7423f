"""The report queries every store answers alike (part of `StoreContract`):
`UnitOfWork.span_stats` and `UnitOfWork.sequence_conversions`."""

from __future__ import annotations

import abc
from datetime import datetime, timedelta

import pytest

from salesflow.conditions import field
from salesflow.errors import ValidationError
from salesflow.lead import Lead, LeadStatus
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.stores.base import Query, SequenceConversion, Store
from salesflow.testing.contract_records import T0
from salesflow.testing.contract_sequences import enrollment
from salesflow.values import RecordKind, RecordRef

__all__ = ["ReportContract"]


def _lead(n: int, owner: str | None, hours: float | None, **fields: object) -> Lead:
    closed = None if hours is None else T0 + timedelta(hours=hours)
    status = LeadStatus.QUALIFIED if closed is not None else LeadStatus.OPEN
    return Lead(
        id=f"lead-{n:04d}",
        created_at=T0,
        modified_at=T0,
        topic="t",
        last_name=f"L{n}",
        owner_id=owner,
        status=status,
        status_reason="qualified" if closed is not None else "new",
        closed_at=closed,
        **fields,  # type: ignore[arg-type]
    )


class ReportContract(abc.ABC):
    """Report queries (part of `StoreContract`, which supplies the ``store`` fixture)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    def test_span_stats_measure_between_two_datetime_fields(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            for lead in (
                _lead(1, "ann", 2),
                _lead(2, "ann", 10),
                _lead(3, "bob", 0.5),
                _lead(4, "bob", None),  # open: no closed_at, not counted
            ):
                uow.add(lead)
            uow.commit()
        with store.unit_of_work() as uow:
            every = uow.span_stats(Lead, Query(), "created_at", "closed_at")
            grouped = uow.span_stats(Lead, Query(), "created_at", "closed_at", "owner_id")
            only_ann = uow.span_stats(
                Lead, Query(where=field("owner_id").eq("ann")), "created_at", "closed_at"
            )
            none = uow.span_stats(
                Lead, Query(where=field("owner_id").eq("cy")), "created_at", "closed_at"
            )
        [total] = every
        assert (total.value, total.count) == (None, 3)
        assert total.mean_seconds == pytest.approx((2 + 10 + 0.5) * 3600 / 3, abs=0.01)
        assert total.min_seconds == pytest.approx(1800, abs=0.01)
        assert total.max_seconds == pytest.approx(36000, abs=0.01)
        assert [(g.value, g.count) for g in grouped] == [("ann", 2), ("bob", 1)]
        assert grouped[0].mean_seconds == pytest.approx(6 * 3600, abs=0.01)
        assert [(s.value, s.count) for s in only_ann] == [(None, 2)]
        assert none == []

    def test_span_stats_refuse_fields_that_are_not_datetimes(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(ValidationError, match="date-time"):
                uow.span_stats(Lead, Query(), "created_at", "topic")
            with pytest.raises(ValidationError):
                uow.span_stats(Lead, Query(), "created_at", "closed_at", "colour")

    def test_sequence_conversions_count_connections_in_the_window(self, store: Store) -> None:
        won = Opportunity(
            id="opp-1", created_at=T0, modified_at=T0, name="o", status=OpportunityStatus.WON
        )
        open_deal = Opportunity(id="opp-2", created_at=T0, modified_at=T0, name="o2")
        with store.unit_of_work() as uow:
            uow.add(_lead(1, "ann", 5, qualifying_opportunity_id="opp-1"))
            uow.add(_lead(2, "ann", None))
            uow.add(_lead(3, "ann", 5))  # qualified without an opportunity
            uow.add(won)
            uow.add(open_deal)
            for n, sequence, hours in ((1, "s-a", 1), (2, "s-a", 2), (3, "s-b", 3), (4, "s-a", 50)):
                uow.add_enrollment(
                    enrollment(
                        n,
                        sequence_id=sequence,
                        record=RecordRef(kind=RecordKind.LEAD, id=f"lead-{min(n, 3):04d}"),
                        connected_at=T0 + timedelta(hours=hours),
                    )
                )
            uow.add_enrollment(enrollment(5, connected_at=None))  # stored before: not counted
            for n, deal in ((6, won), (7, open_deal)):
                uow.add_enrollment(
                    enrollment(n, sequence_id="s-o", record=deal.ref, connected_at=T0)
                )
            uow.commit()
        day = (T0, T0 + timedelta(days=1))
        with store.unit_of_work() as uow:
            leads = uow.sequence_conversions(RecordKind.LEAD, *day)
            deals = uow.sequence_conversions(RecordKind.OPPORTUNITY, *day)
            later = uow.sequence_conversions(
                RecordKind.LEAD, T0 + timedelta(days=1), T0 + timedelta(days=3)
            )
            with pytest.raises(ValidationError, match="contact"):
                uow.sequence_conversions(RecordKind.CONTACT, *day)
            with pytest.raises(ValidationError, match="aware"):
                uow.sequence_conversions(RecordKind.LEAD, datetime(2026, 1, 1), T0)  # noqa: DTZ001
        assert leads == [
            SequenceConversion(sequence_id="s-a", connected=2, converted=1),
            SequenceConversion(sequence_id="s-b", connected=1, converted=0),
        ]
        assert deals == [SequenceConversion(sequence_id="s-o", connected=2, converted=1)]
        assert later == [SequenceConversion(sequence_id="s-a", connected=1, converted=0)]

    def test_sequence_conversions_count_only_the_owners_asked_for(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.add(_lead(1, "ann", 5, qualifying_opportunity_id="opp-1"))
            uow.add(_lead(2, "bob", None))
            uow.add(_lead(3, None, None))
            for n in (1, 2, 3):
                uow.add_enrollment(
                    enrollment(
                        n,
                        sequence_id="s-a",
                        record=RecordRef(kind=RecordKind.LEAD, id=f"lead-{n:04d}"),
                        connected_at=T0,
                    )
                )
            uow.commit()
        day = (T0, T0 + timedelta(days=1))

        def counted(owners: frozenset[str] | None, unowned: bool) -> list[SequenceConversion]:
            with store.unit_of_work() as uow:
                return uow.sequence_conversions(
                    RecordKind.LEAD, *day, owners=owners, unowned=unowned
                )

        assert counted(None, False) == [
            SequenceConversion(sequence_id="s-a", connected=3, converted=1)
        ]
        assert counted(frozenset({"ann"}), False) == [
            SequenceConversion(sequence_id="s-a", connected=1, converted=1)
        ]
        assert counted(frozenset({"bob"}), True) == [
            SequenceConversion(sequence_id="s-a", connected=2, converted=0)
        ]
        assert counted(frozenset(), True) == [
            SequenceConversion(sequence_id="s-a", connected=1, converted=0)
        ]
        assert counted(frozenset(), False) == []
