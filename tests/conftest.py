"""Shared fixtures: a fake clock, deterministic ids, and an engine on a memory store.

Nothing here reads the wall clock: every test starts at `T0` and moves time only
through the `FakeClock`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.events import ListSink
from salesflow.stores.memory import MemoryStore
from salesflow.values import RecordKind

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""Monday 2 March 2026, 09:00 UTC: where every fake clock starts."""


def counting_ids() -> Callable[[RecordKind], str]:
    """An id factory that numbers records in creation order: ``lead-1``, ``contact-2``, …"""
    counter = itertools.count(1)

    def make(kind: RecordKind) -> str:
        return f"{kind.value}-{next(counter)}"

    return make


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock standing at `T0` until a test moves it."""
    return FakeClock(T0)


@pytest.fixture
def ids() -> Callable[[RecordKind], str]:
    """Deterministic ids: ``lead-1``, ``account-2``, … in the order they are made."""
    return counting_ids()


@pytest.fixture
def sink() -> ListSink:
    """Collects every event the engine publishes."""
    return ListSink()


@pytest.fixture
def store() -> MemoryStore:
    """An empty in-memory store."""
    return MemoryStore()


@pytest.fixture
def engine(
    store: MemoryStore,
    clock: FakeClock,
    sink: ListSink,
    ids: Callable[[RecordKind], str],
) -> Salesflow:
    """An engine on the memory store, the fake clock, the list sink and counting ids."""
    return Salesflow(store, clock=clock, sink=sink, ids=ids)
