"""Due items: the item's rules, `run_due` (order, failures, events, follow-ups) and
`simulate` on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from salesflow import Salesflow
from salesflow.commands.work import Work
from salesflow.due import DueItem, DueItemFailed, RetryPolicy, check_payload
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.events import LeadUpdated
from salesflow.lead import Lead
from salesflow.stores.memory import MemoryStore
from salesflow.testing import FakeClock, ListSink, simulate
from salesflow.values import RecordRef

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Ids:
    """Due item ids in creation order: due-0001, due-0002, …"""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"due-{self.n:04d}"


def make(**kwargs: Any) -> tuple[Salesflow, FakeClock, ListSink]:
    clock = FakeClock(T0)
    sink = ListSink()
    return Salesflow(clock=clock, sink=sink, due_ids=Ids(), **kwargs), clock, sink


# --- the item ---------------------------------------------------------------------------


def test_an_item_keeps_due_at_in_utc_and_copies_its_payload() -> None:
    payload: dict[str, Any] = {"steps": [1, 2], "t": (3, 4)}
    berlin = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    item = DueItem(id="d", kind="k", due_at=berlin, payload=payload)
    payload["steps"].append(3)
    assert item.due_at == T0
    assert item.due_at.tzinfo is UTC
    assert item.payload == {"steps": [1, 2], "t": [3, 4]}
    assert item.idempotency_key == "d"


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"id": ""}, "id"),
        ({"kind": 3}, "kind"),
        ({"due_at": datetime(2026, 1, 1)}, "naive"),
        ({"subject": "lead:1"}, "RecordRef"),
        ({"payload": [1]}, "mapping"),
        ({"payload": {1: "x"}}, "keys must be strings"),
        ({"payload": {"x": object()}}, "payload holds only"),
        ({"payload": {"x": float("nan")}}, "finite"),
        ({"payload": {"x": T0}}, "datetime"),
        ({"key": ""}, "key"),
        ({"attempts": -1}, "attempts"),
        ({"attempts": True}, "attempts"),
    ],
)
def test_malformed_items_are_refused(fields: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {"id": "d", "kind": "k", "due_at": T0}
    with pytest.raises(ValidationError, match=match):
        DueItem(**{**base, **fields})


def test_a_deeply_nested_payload_is_refused() -> None:
    deep: Any = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValidationError, match="deeper"):
        DueItem(id="d", kind="k", due_at=T0, payload={"x": deep})


def test_the_retry_delay_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n) for n in range(4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert policy.delay(20) == timedelta(days=1)
    assert policy.delay(10_000) == timedelta(days=1)
    with pytest.raises(ValidationError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValidationError, match="base"):
        RetryPolicy(base=timedelta(0))


# --- run_due ----------------------------------------------------------------------------


def test_run_due_performs_due_items_in_due_at_then_id_order() -> None:
    engine, clock, _ = make()
    seen: list[tuple[str, datetime]] = []
    engine.register_handler("k", lambda work, item: seen.append((item.payload["n"], work.now)))
    for n, minutes in [("a", 10), ("b", 0), ("c", 10), ("d", 60)]:
        engine.schedule_due("k", T0 + timedelta(minutes=minutes), payload={"n": n})
    assert engine.run_due() == 1  # only b is due at T0
    clock.set(T0 + timedelta(minutes=10))
    assert engine.run_due() == 2
    assert seen == [("b", T0), ("a", clock.now()), ("c", clock.now())]
    assert engine.next_due_at() == T0 + timedelta(minutes=60)
    assert [i.payload["n"] for i in engine.due_items()] == ["d"]


def test_run_due_stops_at_its_limit() -> None:
    engine, _, _ = make()
    engine.register_handler("k", lambda work, item: None)
    for _ in range(5):
        engine.schedule_due("k", T0)
    assert engine.run_due(limit=2) == 2
    assert len(engine.due_items()) == 3
    with pytest.raises(ValidationError, match="limit"):
        engine.run_due(limit=0)


def test_a_handler_writes_in_the_items_unit_and_its_events_follow_the_commit() -> None:
    engine, _, sink = make()
    lead = engine.create_lead(topic="t", last_name="Ruiz")
    published_before: list[int] = []

    def touch(work: Work, item: DueItem) -> None:
        assert item.subject is not None
        record = work.get(Lead, item.subject.id)
        work.uow.update(record)
        work.events.append(LeadUpdated(occurred_at=work.now, lead_id=record.id, fields=()))
        published_before.append(len(sink.events))

    engine.register_handler("touch", touch)
    engine.schedule_due("touch", T0, subject=lead)
    assert engine.run_due() == 1
    assert engine.get_lead(lead.id).version == 2
    assert published_before == [1]  # only LeadCreated had been published while it ran
    assert sink.events[-1] == LeadUpdated(occurred_at=T0, lead_id=lead.id, fields=())


def test_a_handler_schedules_a_follow_up_in_the_same_unit() -> None:
    engine, _clock, _ = make()

    def first(work: Work, item: DueItem) -> None:
        work.schedule_due("second", work.now + timedelta(hours=1), key="follow-up")

    engine.register_handler("first", first)
    engine.register_handler("second", lambda work, item: None)
    engine.schedule_due("first", T0)
    assert engine.run_due() == 1
    (follow_up,) = engine.due_items()
    assert (follow_up.kind, follow_up.due_at, follow_up.key) == (
        "second",
        T0 + timedelta(hours=1),
        "follow-up",
    )


def test_a_failing_handler_is_retried_with_backoff_and_then_fails_for_good() -> None:
    engine, clock, sink = make()
    performed: list[str] = []

    def flaky(work: Work, item: DueItem) -> None:
        work.schedule_due("never", work.now)  # rolled back with the attempt
        raise InvalidTransition("the enrollment is paused")

    engine.register_handler("flaky", flaky)
    engine.register_handler("ok", lambda work, item: performed.append(item.id))
    engine.register_handler("never", lambda work, item: performed.append("never"))
    engine.schedule_due("flaky", T0, subject=RecordRef(kind="lead", id="l1"), payload={"n": 1})
    engine.schedule_due("ok", T0)
    assert engine.run_due() == 2
    assert performed == ["due-0002"]  # one failing item does not undo the other
    (item,) = engine.due_items()
    assert (item.attempts, item.due_at) == (1, T0 + timedelta(minutes=1))
    assert item.payload == {"n": 1, "last_error": "the enrollment is paused"}
    assert item.id == "due-0001"  # the same idempotency key on every retry
    delays = []
    while engine.due_items():
        before = clock.now()
        clock.set(engine.next_due_at() or before)
        delays.append(clock.now() - before)
        assert engine.run_due() == 1
    assert delays == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    failed = [e for e in sink.events if isinstance(e, DueItemFailed)]
    assert failed == [
        DueItemFailed(
            occurred_at=T0 + timedelta(minutes=15),
            item_id="due-0001",
            kind="flaky",
            subject="lead:l1",
            attempts=5,
            error="the enrollment is paused",
            payload={"n": 1, "last_error": "the enrollment is paused"},
        )
    ]
    assert "never" not in performed


def test_an_unknown_kind_is_a_failure_not_a_crash() -> None:
    engine, _, sink = make(retry=RetryPolicy(max_attempts=1))
    engine.register_handler("known", lambda work, item: None)
    engine.schedule_due("unknown", T0)
    assert engine.run_due() == 1
    assert engine.due_items() == []
    (failed,) = [e for e in sink.events if isinstance(e, DueItemFailed)]
    assert failed.error == (
        "no handler for due item kind 'unknown' "
        "(registered: known, pipeline.rule, scoring.cleanup, scoring.rescore, sequence.ab_test, "
        "sequence.step)"
    )


def test_any_other_exception_rolls_the_item_back_and_propagates() -> None:
    engine, clock, _ = make()
    done: list[str] = []

    def broken(work: Work, item: DueItem) -> None:
        work.schedule_due("ok", work.now)
        raise KeyError("bug")

    engine.register_handler("ok", lambda work, item: done.append(item.id))
    engine.register_handler("broken", broken)
    engine.schedule_due("ok", T0)
    engine.schedule_due("broken", T0 + timedelta(seconds=1))
    engine.schedule_due("ok", T0 + timedelta(seconds=1))
    clock.set(T0 + timedelta(seconds=1))
    with pytest.raises(KeyError, match="bug"):
        engine.run_due()
    # performed before the bug, and stays performed (its handler ran twice: once in
    # the batch that rolled back, once in a unit of its own)
    assert done == ["due-0001", "due-0001"]
    assert [(i.id, i.attempts) for i in engine.due_items()] == [("due-0002", 0), ("due-0003", 0)]


def test_handlers_are_registered_once_per_kind() -> None:
    engine, _, _ = make()
    engine.register_handler("k", lambda work, item: None)
    with pytest.raises(ValidationError, match="already has a handler"):
        engine.register_handler("k", lambda work, item: None)
    with pytest.raises(ValidationError, match="callable"):
        engine.register_handler("j", "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="kind"):
        engine.register_handler("", lambda work, item: None)


def test_scheduling_is_idempotent_by_key_and_cancelable() -> None:
    engine, _, _ = make()
    first = engine.schedule_due("k", T0, key="enrollment:e1:step:1")
    assert engine.schedule_due("k", T0 + timedelta(days=1), key="enrollment:e1:step:1") == first
    assert engine.cancel_due_by_key("enrollment:e1:step:1")
    other = engine.schedule_due("k", T0)
    assert engine.cancel_due(other.id)
    assert not engine.cancel_due(other.id)
    assert engine.next_due_at() is None


# --- simulate ---------------------------------------------------------------------------


def daily(days: int, runs: list[datetime]) -> Any:
    def handler(work: Work, item: DueItem) -> None:
        runs.append(work.now)
        n = item.payload["n"] + 1
        if n < days:
            work.schedule_due("daily", item.due_at + timedelta(days=1), payload={"n": n})

    return handler


@pytest.mark.parametrize("sqlite", [False, True])
def test_simulate_jumps_from_item_to_item_and_ends_at_until(sqlite: bool) -> None:
    from salesflow.stores.sqlite import SQLiteStore

    clock = FakeClock(T0)
    engine = Salesflow(SQLiteStore(":memory:") if sqlite else MemoryStore(), clock=clock)
    runs: list[datetime] = []
    engine.register_handler("daily", daily(30, runs))
    engine.schedule_due("daily", T0 + timedelta(days=1), payload={"n": 0})
    until = T0 + timedelta(days=90)
    assert simulate(engine, until) == 30
    assert runs == [T0 + timedelta(days=d) for d in range(1, 31)]
    assert clock.now() == until
    assert engine.next_due_at() is None


def test_simulate_stops_before_items_due_after_until() -> None:
    engine, clock, _ = make()
    runs: list[datetime] = []
    engine.register_handler("daily", daily(30, runs))
    engine.schedule_due("daily", T0, payload={"n": 0})
    assert simulate(engine, T0 + timedelta(days=9, hours=1)) == 10
    assert clock.now() == T0 + timedelta(days=9, hours=1)
    assert engine.next_due_at() == T0 + timedelta(days=10)


def test_simulate_runs_overdue_items_at_the_current_time_and_respects_max_items() -> None:
    engine, clock, _ = make()
    seen: list[datetime] = []

    def again(work: Work, item: DueItem) -> None:
        seen.append(work.now)
        work.schedule_due("again", work.now)  # a runaway: always due now

    engine.register_handler("again", again)
    engine.schedule_due("again", T0 - timedelta(days=1))
    until = T0 + timedelta(days=1)
    assert simulate(engine, until, max_items=7) == 7
    assert set(seen) == {T0}
    assert clock.now() == T0


def test_simulate_needs_a_fake_clock() -> None:
    with pytest.raises(ValidationError, match="FakeClock"):
        simulate(Salesflow(), T0)
    engine, _, _ = make()
    with pytest.raises(ValidationError, match="naive"):
        simulate(engine, datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "payload", [{"a": "x\x00y"}, {"a": ["\ud800"]}, {"k\x00": 1}, {"a": {"b": "\udfff"}}]
)
def test_texts_no_store_can_keep_are_refused(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="NUL character or a lone surrogate") as caught:
        check_payload(payload, field="StateDocument.document")
    assert caught.value.field == "StateDocument.document"


def test_an_item_that_reschedules_its_own_key_is_deleted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from salesflow.stores import memory

    deletes: list[str] = []
    for name in ("complete_due", "cancel_due_by_key"):
        original = getattr(memory._MemoryUnit, name)

        def counted(self: object, arg: str, _o: object = original, _n: str = name) -> bool:
            deletes.append(_n)
            return _o(self, arg)  # type: ignore[operator]

        monkeypatch.setattr(memory._MemoryUnit, name, counted)
    clock = FakeClock(T0)
    engine = Salesflow(clock=clock)
    runs: list[int] = []

    def again(work: Work, item: DueItem) -> None:
        runs.append(item.payload["n"])
        if item.payload["n"] < 3:
            assert work.cancel_due_by_key("tick")  # the item in hand: deleted by id
            work.schedule_due("tick", work.now, payload={"n": item.payload["n"] + 1}, key="tick")

    engine.register_handler("tick", again)
    engine.schedule_due("tick", T0, payload={"n": 1}, key="tick")
    assert engine.run_due() == 3
    assert runs == [1, 2, 3]
    assert deletes == ["complete_due"] * 3  # once per item, never twice
    assert engine.due_items() == []
