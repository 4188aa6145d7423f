"""`OutboxContract`: the store contract for the outbox (`salesflow.outbox`).

`salesflow.testing.contract.StoreContract` inherits these tests, so every store's
test module runs them with the store it builds.
"""

from __future__ import annotations

import abc
from datetime import datetime, timedelta, timezone

import pytest

from salesflow.errors import AlreadyExists, ValidationError
from salesflow.outbox import OutboxEntry
from salesflow.stores.base import Store
from salesflow.stores.codec import Codec, decode_event, encode_event
from salesflow.testing.contract_records import T0
from salesflow.testing.contract_states import nested_document

__all__ = ["OutboxContract"]

CEST = timezone(timedelta(hours=2))


def entry(n: int, minutes: int = 0, **fields: object) -> OutboxEntry:
    """An outbox entry ``o<n>`` made ``minutes`` after T0 holding one small event."""
    base: dict[str, object] = {
        "id": f"o{n}",
        "created_at": T0 + timedelta(minutes=minutes),
        "events": [{"type": "LeadCreated", "occurred_at": "2026-03-02T09:00:00.000000+00:00"}],
    }
    base.update(fields)
    return OutboxEntry(**base)  # type: ignore[arg-type]


class OutboxContract(abc.ABC):
    """The outbox behaviour every `Store` must have (part of `StoreContract`)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    @abc.abstractmethod
    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        """Close ``store`` and return a store over the same data."""

    def test_outbox_entries_are_claimed_oldest_first_until_removed(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.put_outbox(entry(3, 5))
            uow.put_outbox(entry(1, 10))
            uow.put_outbox(entry(2, 5, created_at=(T0 + timedelta(minutes=5)).astimezone(CEST)))
            # The unit sees its own entries before it commits.
            assert [e.id for e in uow.claim_outbox(T0 + timedelta(hours=1), 10)] == [
                "o2",
                "o3",
                "o1",
            ]
            uow.commit()
        with store.unit_of_work() as uow:
            assert [e.id for e in uow.claim_outbox(T0 + timedelta(minutes=5), 10)] == ["o2", "o3"]
            assert [e.id for e in uow.claim_outbox(T0 + timedelta(hours=1), 1)] == ["o2"]
            assert uow.claim_outbox(T0, 10) == []
            found = uow.claim_outbox(T0 + timedelta(hours=1), 10)
            assert found[0] == entry(2, 5)  # the same instant, whatever the zone
            assert uow.remove_outbox(["o2", "o3", "nothing", "o2"]) == 2
            assert [e.id for e in uow.claim_outbox(T0 + timedelta(hours=1), 10)] == ["o1"]
            uow.commit()
        with store.unit_of_work() as uow:
            assert [e.id for e in uow.claim_outbox(T0 + timedelta(hours=1), 10)] == ["o1"]
            assert uow.remove_outbox([]) == 0

    def test_an_outbox_entry_keeps_every_json_value_and_event(self, store: Store) -> None:
        from salesflow.sequences.enrollment import SendEmailRequested

        event = SendEmailRequested(
            occurred_at=T0.astimezone(CEST),
            enrollment_id="enr-1",
            step_id="s1",
            record="lead:l1",
            template="intro",
            subject='Zoë, 日本 "quoted" \\ back',
            owner_id=None,
            variant="b",
            activity_id="act-1",
        )
        odd = {"type": "LeadCreated", "occurred_at": "x", "extra": nested_document()}
        kept = entry(1, events=[encode_event(event), odd])
        with store.unit_of_work() as uow:
            uow.put_outbox(kept)
            uow.commit()
        store = self.reopen(store)
        try:
            with store.unit_of_work() as uow:
                (back,) = uow.claim_outbox(T0 + timedelta(days=1), 5)
            assert back == kept
            assert decode_event(back.events[0]) == event
        finally:
            store.close()

    def test_an_outbox_entry_id_is_kept_once(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.put_outbox(entry(1))
            with pytest.raises(AlreadyExists):
                uow.put_outbox(entry(1, 3))
            uow.commit()
        with store.unit_of_work() as uow, pytest.raises(AlreadyExists):
            uow.put_outbox(entry(1, 7))
        with store.unit_of_work() as uow:
            # Removed in this unit: the id is free again.
            assert uow.remove_outbox(["o1"]) == 1
            uow.put_outbox(entry(1, 9))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.claim_outbox(T0 + timedelta(days=1), 5) == [entry(1, 9)]

    def test_an_outbox_change_rolled_back_leaves_nothing(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.put_outbox(entry(1))
            uow.commit()
        with store.unit_of_work() as uow:
            uow.put_outbox(entry(2))
            uow.remove_outbox(["o1"])  # no commit
        with store.unit_of_work() as uow:

            def undone() -> None:
                with uow.savepoint():
                    uow.put_outbox(entry(3))
                    uow.remove_outbox(["o1"])
                    raise RuntimeError("undo the block")

            with pytest.raises(RuntimeError):
                undone()
            assert [e.id for e in uow.claim_outbox(T0, 5)] == ["o1"]

    def test_bad_outbox_arguments_are_refused(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(ValidationError, match="OutboxEntry"):
                uow.put_outbox({"id": "o1"})  # type: ignore[arg-type]
            with pytest.raises(ValidationError, match="before"):
                uow.claim_outbox(datetime(2026, 1, 1), 5)  # noqa: DTZ001
            for limit in (0, 10_001, True, 1.5):
                with pytest.raises(ValidationError, match="limit"):
                    uow.claim_outbox(T0, limit)  # type: ignore[arg-type]
        cases: list[dict[str, object]] = [
            {"events": []},
            {"events": "text"},
            {"events": [{"no": "type"}]},
            {"events": [{"type": "LeadCreated", "x": float("nan")}]},
            {"id": ""},
            {"created_at": datetime(2026, 1, 1)},  # noqa: DTZ001
        ]
        for bad in cases:
            with pytest.raises(ValidationError, match="OutboxEntry"):
                entry(1, 0, **bad)
