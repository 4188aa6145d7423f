"""Shared fixtures: a fake clock, deterministic ids, and an engine on a memory store.

Nothing here reads the wall clock: every test starts at `T0` and moves time only
through the `FakeClock`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import settings

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.events import ListSink
from salesflow.stores.memory import MemoryStore
from salesflow.values import RecordKind

# No time limit per example: speed is measured by the benchmarks in bench/, and
# `make test` runs the suite's files on every core at once (pytest-xdist), where an
# example can wait for a core; a deadline would then fail tests for the machine's load.
settings.register_profile("salesflow", deadline=None)
settings.load_profile("salesflow")

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""Monday 2 March 2026, 09:00 UTC: where every fake clock starts."""

PG_DSN = os.environ.get("SALESFLOW_PG_DSN", "")
"""The PostgreSQL server of the tests that need one (``.ci/run`` sets it)."""


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


@pytest.fixture
def postgres_url() -> Iterator[Callable[[str], str]]:
    """Makes the URL of a new PostgreSQL schema named after the prefix given; every
    schema made is dropped when the test ends. Skips the test when
    ``SALESFLOW_PG_DSN`` is not set."""
    made: list[str] = []

    def make(prefix: str) -> str:
        if not PG_DSN:
            pytest.skip("SALESFLOW_PG_DSN is not set; the PostgreSQL cases need a server")
        schema = f"{prefix}_{uuid4().hex[:12]}"
        made.append(schema)
        separator = "&" if "?" in PG_DSN else "?"
        return f"{PG_DSN}{separator}schema={schema}"

    yield make
    if made:
        import psycopg
        from psycopg import sql

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in made:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: Callable[[str], str]
) -> str:
    """The URL of an empty store of each kind: memory, a SQLite file, a PostgreSQL
    schema (skipped without ``SALESFLOW_PG_DSN``)."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    return postgres_url("sf_test")


_LONGEST = "test_workers_exactly_once.py"
"""The one test file that takes minutes (four worker processes through 105,000 due
items): run first, so that under `make test` (one pytest process per core) it runs
beside the other files instead of after them."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest test file first (see `_LONGEST`); the rest keep their order."""
    items.sort(key=lambda item: item.path.name != _LONGEST)
