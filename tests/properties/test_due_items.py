"""Random schedules, cancels and abandoned claims: `simulate` performs every scheduled,
uncanceled item due by ``until`` exactly once, in ``(due_at, id)`` order, on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow import Salesflow
from salesflow.commands.work import Work
from salesflow.due import DueItem
from salesflow.stores.base import Store
from salesflow.stores.memory import MemoryStore
from salesflow.stores.sqlite import SQLiteStore
from salesflow.testing import FakeClock, simulate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

schedule_op = st.tuples(
    st.just("schedule"),
    st.integers(-30, 300),  # minutes from T0 (some overdue)
    st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
)
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 40), st.booleans())
claim_op = st.tuples(st.just("claim"), st.integers(-30, 300), st.integers(1, 5))
ops = st.lists(st.one_of(schedule_op, cancel_op, claim_op), max_size=40)


def counter() -> Any:
    n = 0

    def make() -> str:
        nonlocal n
        n += 1
        return f"due-{n:04d}"

    return make


def check(store: Store, steps: list[tuple[Any, ...]], first: int, second: int) -> None:
    clock = FakeClock(T0)
    engine = Salesflow(store, clock=clock, due_ids=counter())
    performed: list[tuple[datetime, str]] = []

    def handler(work: Work, item: DueItem) -> None:
        assert item.due_at <= work.now
        performed.append(item.order_key)

    engine.register_handler("k", handler)
    pending: dict[str, DueItem] = {}  # the model: what must still be performed
    made: list[str] = []
    for step in steps:
        if step[0] == "schedule":
            _, minutes, key = step
            item = engine.schedule_due("k", T0 + timedelta(minutes=minutes), key=key)
            same = [p for p in pending.values() if key is not None and p.key == key]
            assert [item] == same if same else item.id not in pending
            pending[item.id] = item
            made.append(item.id)
        elif step[0] == "cancel" and made:
            _, index, by_key = step
            target = made[index % len(made)]
            item = pending.get(target) if target in pending else None
            if by_key and item is not None and item.key is not None:
                assert engine.cancel_due_by_key(item.key)
            else:
                assert engine.cancel_due(target) == (item is not None)
            pending.pop(target, None)
        elif step[0] == "claim":
            _, minutes, limit = step
            with store.unit_of_work() as uow:  # claimed, then abandoned: rolled back
                claimed = uow.claim_due(T0 + timedelta(minutes=minutes), limit)
            due_then = sorted(
                p.order_key for p in pending.values() if p.due_at <= T0 + timedelta(minutes=minutes)
            )
            assert [c.order_key for c in claimed] == due_then[:limit]
    for until in (T0 + timedelta(minutes=first), T0 + timedelta(minutes=first + second)):
        expected = sorted(p.order_key for p in pending.values() if p.due_at <= until)
        before = len(performed)
        assert simulate(engine, until) == len(expected)
        assert performed[before:] == expected
        for _, item_id in expected:
            del pending[item_id]
        assert clock.now() == until
        assert sorted(i.order_key for i in engine.due_items()) == sorted(
            p.order_key for p in pending.values()
        )
    assert len(performed) == len(set(performed))  # each exactly once


@settings(max_examples=150, deadline=None)
@given(steps=ops, first=st.integers(0, 200), second=st.integers(0, 200))
def test_simulate_performs_each_due_item_once_in_order_memory(
    steps: list[tuple[Any, ...]], first: int, second: int
) -> None:
    check(MemoryStore(), steps, first, second)


@settings(max_examples=40, deadline=None)
@given(steps=ops, first=st.integers(0, 200), second=st.integers(0, 200))
def test_simulate_performs_each_due_item_once_in_order_sqlite(
    steps: list[tuple[Any, ...]], first: int, second: int
) -> None:
    store = SQLiteStore(":memory:")
    try:
        check(store, steps, first, second)
    finally:
        store.close()
