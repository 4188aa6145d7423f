"""`salesflow.worker`: the run_due loop, its sleeping, stopping, heartbeats and
errors on a `FakeClock`; ``salesflow worker`` as a process on SQLite and PostgreSQL
(SIGTERM, SIGKILL mid-batch, two workers on one schema).

`slow_engine` is also the ``--engine`` factory of the worker processes (this module
is importable as ``test_worker`` with ``tests/unit`` on the path).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from salesflow.cli import main
from salesflow.clock import FakeClock, SystemClock
from salesflow.commands.work import Work
from salesflow.due import DueItem
from salesflow.engine import Salesflow
from salesflow.errors import InvalidTransition, ValidationError
from salesflow.sequences import ActivityStep, EndStep, SequenceDefinition, Span, WaitStep
from salesflow.stores.base import Store
from salesflow.stores.memory import MemoryStore
from salesflow.stores.url import open_store
from salesflow.worker import Heartbeat, Worker, load_engine_factory, serve

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HERE = Path(__file__).resolve().parent
DSN = os.environ.get("SALESFLOW_PG_DSN", "")
needs_server = pytest.mark.skipif(
    not DSN, reason="SALESFLOW_PG_DSN is not set; the PostgreSQL workers need a server"
)


# --- in-process: a FakeClock and an injected sleep -------------------------------------


class Rig:
    """An engine on a FakeClock whose ``ping`` items note when they were performed."""

    def __init__(self) -> None:
        self.clock = FakeClock(T0)
        self.engine = Salesflow(clock=self.clock)
        self.performed: list[tuple[str, datetime]] = []
        self.sleeps: list[float] = []
        self.on_ping: Callable[[], None] | None = None
        self.engine.register_handler("ping", self.ping)

    def ping(self, work: Work, item: DueItem) -> None:
        if self.on_ping is not None:
            self.on_ping()
        self.performed.append((item.payload["name"], work.now))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))

    def at(self, name: str, offset: timedelta) -> DueItem:
        return self.engine.schedule_due("ping", T0 + offset, payload={"name": name})

    def worker(self, **options: Any) -> Worker:
        options.setdefault("sleep", self.sleep)
        return Worker(self.engine, **options)


def test_items_are_performed_when_due_without_real_sleeping() -> None:
    rig = Rig()
    offsets = {"a": timedelta(0), "b": timedelta(seconds=45), "c": timedelta(minutes=7)}
    for name, offset in offsets.items():
        rig.at(name, offset)
    worker = rig.worker(poll=60.0, heartbeat=3600.0)

    taken = worker.run(max_loops=20)

    assert taken == len(offsets) == worker.total
    assert rig.performed == [(name, T0 + offset) for name, offset in offsets.items()]
    assert rig.engine.due_items() == []


def test_idle_sleep_is_the_gap_to_the_next_item_at_most_poll() -> None:
    rig = Rig()
    poll = 120.0
    first, second = 30.0, 500.0
    rig.at("first", timedelta(seconds=first))
    rig.at("second", timedelta(seconds=second))
    worker = rig.worker(poll=poll, heartbeat=1e6)

    worker.run(max_loops=7)

    expected = [first]
    left = second - first
    while left > 0:
        expected.append(min(poll, left))
        left -= expected[-1]
    expected.append(poll)  # nothing stored any more
    assert rig.sleeps == expected
    assert [when for _, when in rig.performed] == [
        T0 + timedelta(seconds=first),
        T0 + timedelta(seconds=second),
    ]


def test_a_full_batch_loops_at_once_and_until_idle_never_sleeps() -> None:
    rig = Rig()
    for n in range(7):
        rig.at(f"now-{n}", timedelta(0))
    rig.at("later", timedelta(hours=1))
    worker = rig.worker(batch=3, poll=5.0)

    assert worker.run(until_idle=True) == 7
    assert rig.sleeps == []
    assert [item.payload["name"] for item in rig.engine.due_items()] == ["later"]


def test_a_stop_request_finishes_the_batch_in_hand() -> None:
    rig = Rig()
    batch = 3
    for n in range(2 * batch + 1):
        rig.at(f"item-{n}", timedelta(0))
    worker = rig.worker(batch=batch)

    rig.on_ping = worker.request_stop
    taken = worker.run()

    assert worker.stopping
    assert taken == batch
    assert len(rig.performed) == batch
    assert len(rig.engine.due_items()) == batch + 1
    assert rig.sleeps == []


def test_a_stop_request_wakes_the_default_sleep() -> None:
    engine = Salesflow(clock=FakeClock(T0))
    worker = Worker(engine, poll=600.0)
    done: list[int] = []
    runner = threading.Thread(target=lambda: done.append(worker.run()))
    runner.start()
    try:
        # stop only once the loop runs, or the stop would not need waking anything
        wait_until(lambda: worker._waker is not None, "the worker starts its loop")
        worker.request_stop()
        runner.join(timeout=10)
        assert not runner.is_alive(), "the worker slept through the stop request"
        assert done == [0]
    finally:
        worker.request_stop()
        runner.join()


def test_heartbeats_are_logged_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig()
    every = 60.0
    spacing = timedelta(seconds=25)
    count = 12
    for n in range(count):
        rig.at(f"item-{n}", spacing * n)
    beats: list[Heartbeat] = []
    worker = rig.worker(poll=10.0, heartbeat=every, on_heartbeat=beats.append)

    with caplog.at_level(logging.INFO, logger="salesflow.worker"):
        worker.run(max_loops=200)

    logged = [r for r in caplog.records if r.getMessage().startswith("heartbeat")]
    assert len(logged) == len(beats) >= (spacing * (count - 1)).total_seconds() // every
    assert all(r.name == "salesflow.worker" and r.levelno == logging.INFO for r in logged)
    assert all(b.at - a.at >= timedelta(seconds=every) for a, b in itertools.pairwise(beats))
    assert sum(beat.done for beat in beats) == beats[-1].total <= count
    assert beats[-1].next_due_at is None or beats[-1].next_due_at > beats[-1].at
    assert f"{beats[0].done} item(s) since the last beat" in logged[0].getMessage()


def test_debug_logs_each_batch(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig()
    rig.at("a", timedelta(0))
    with caplog.at_level(logging.DEBUG, logger="salesflow.worker"):
        rig.worker().run(until_idle=True)
    messages = [r.getMessage() for r in caplog.records]
    assert "batch: 1 item(s) taken" in messages
    assert messages[0].startswith("worker started")
    assert messages[-1].startswith("worker stopped")


def test_an_unexpected_error_is_logged_and_raised_and_the_item_stays_due(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()

    def broken(work: Work, item: DueItem) -> None:
        raise RuntimeError("disk on fire")

    rig.engine.register_handler("broken", broken)
    rig.engine.schedule_due("broken", T0)
    worker = rig.worker()

    with caplog.at_level(logging.ERROR, logger="salesflow.worker"), pytest.raises(RuntimeError):
        worker.run()

    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    [item] = rig.engine.due_items()
    assert (item.kind, item.attempts) == ("broken", 0)


def test_a_failing_heartbeat_callback_stops_the_worker_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    rig.at("later", timedelta(hours=1))

    def broken(beat: Heartbeat) -> None:
        raise OSError("liveness file is read-only")

    worker = rig.worker(poll=30.0, heartbeat=60.0, on_heartbeat=broken)
    with (
        caplog.at_level(logging.ERROR, logger="salesflow.worker"),
        pytest.raises(OSError, match="read-only"),
    ):
        worker.run()
    [record] = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[0] is OSError


def test_serve_exits_one_when_the_worker_fails_and_zero_when_idle() -> None:
    def failing(store: Store) -> Salesflow:
        engine = Salesflow(store)

        def broken(work: Work, item: DueItem) -> None:
            raise RuntimeError("bug")

        engine.register_handler("broken", broken)
        engine.schedule_due("broken", engine.now())
        return engine

    assert serve(MemoryStore(), until_idle=True, engine_factory=failing) == 1
    assert serve(MemoryStore(), until_idle=True) == 0


def test_a_salesflow_error_is_retried_and_the_worker_goes_on() -> None:
    rig = Rig()

    def refuse(work: Work, item: DueItem) -> None:
        raise InvalidTransition("the lead is closed")

    rig.engine.register_handler("refuse", refuse)
    rig.engine.schedule_due("refuse", T0)
    rig.at("after", timedelta(seconds=1))

    rig.worker(poll=1.0).run(max_loops=4)

    assert [name for name, _ in rig.performed] == ["after"]
    [item] = rig.engine.due_items()
    assert item.attempts == 1
    assert "the lead is closed" in item.payload["last_error"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("batch", 0), ("batch", 2.5), ("batch", True), ("poll", 0), ("poll", -1.0), ("heartbeat", 0)],
)
def test_bad_options_are_refused(option: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=option):
        Worker(Salesflow(clock=FakeClock(T0)), **{option: value})


def test_a_stop_asked_for_while_starting_is_a_clean_stop() -> None:
    from salesflow.worker import StopRequests

    stops = StopRequests()
    performed: list[str] = []

    def engine_factory(store: Store) -> Salesflow:
        engine = Salesflow(store)
        engine.register_handler("ping", lambda work, item: performed.append(item.id))
        engine.schedule_due("ping", engine.now())
        stops(signal.SIGTERM, None)  # SIGTERM while the engine is being built
        return engine

    # without the early request this would run until a signal: it returns at once
    assert serve(MemoryStore(), engine_factory=engine_factory, stops=stops) == 0
    assert stops.requested
    assert performed == []  # stopped before its first batch, nothing half done


def test_bad_max_loops_is_refused() -> None:
    with pytest.raises(ValidationError, match="max_loops"):
        Rig().worker().run(max_loops=0)


def test_engine_factories_are_loaded_by_name() -> None:
    assert load_engine_factory("salesflow.engine:Salesflow") is Salesflow
    for spec in ("salesflow.engine", "no_such_module:x", "salesflow.engine:nothing_here"):
        with pytest.raises(ValidationError, match="--engine"):
            load_engine_factory(spec)
    with pytest.raises(ValidationError, match="not callable"):
        load_engine_factory("salesflow.worker:log.name")


# --- the command -----------------------------------------------------------------------


NUDGE = SequenceDefinition(
    id="nudge",
    name="Nudge",
    record_type="lead",
    entry="wait",
    steps=[
        WaitStep(id="wait", span=Span(hours=1), next="mail"),
        ActivityStep(id="mail", kind="auto_email", subject="Hello", next="end"),
        EndStep(id="end", outcome="sent"),
    ],
)


def enroll_in_the_past(url: str, leads: int) -> list[str]:
    """``leads`` leads on NUDGE since two days ago, so every wait is over now."""
    engine = Salesflow(open_store(url), clock=FakeClock(SystemClock().now() - timedelta(days=2)))
    try:
        engine.publish_sequence(NUDGE)
        made = [
            engine.create_lead(topic=f"Lead {n}", last_name=f"L{n}", email=f"l{n}@example.com")
            for n in range(leads)
        ]
        return [e.id for e in engine.connect_many(made, "nudge")]
    finally:
        engine.close()


def assert_every_step_once(url: str, enrollment_ids: list[str]) -> None:
    engine = Salesflow(open_store(url))
    try:
        for enrollment_id in enrollment_ids:
            enrollment = engine.enrollment(enrollment_id)
            assert enrollment.status.value == "completed", enrollment
            emails = [a for a in engine.timeline(enrollment.record) if a.kind.value == "email"]
            assert len(emails) == 1, (enrollment_id, emails)
        assert engine.due_items() == []
    finally:
        engine.close()


def worker_process(
    url: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [environment.get("PYTHONPATH")])]
    )
    return subprocess.Popen(
        [sys.executable, "-m", "salesflow.cli", "worker", "--store", url, *extra],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.02)


class NothingDue:
    """True once the store holds no due item (of ``kind`` when given)."""

    def __init__(self, url: str, kind: str | None = None) -> None:
        self.reader = Salesflow(open_store(url))
        self.kind = kind

    def __call__(self) -> bool:
        return not [i for i in self.reader.due_items() if self.kind in (None, i.kind)]

    def close(self) -> None:
        self.reader.close()


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"the worker ignored SIGTERM:\n{err}") from None
    return process.returncode, err


def test_the_command_runs_due_steps_once_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    enrollments = enroll_in_the_past(url, 30)
    process = worker_process(url, "--poll", "0.05", "--heartbeat", "0.2", "--batch", "7")
    done = NothingDue(url)
    try:
        wait_until(done, "the worker performs every due step")
    finally:
        done.close()
        code, err = stop(process)

    assert code == 0, err
    assert "worker started" in err
    assert "worker stopped" in err
    assert_every_step_once(url, enrollments)


def test_until_idle_performs_what_is_due_and_exits_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    enrollments = enroll_in_the_past(url, 5)
    monkeypatch.setenv("SALESFLOW_STORE", url)

    assert main(["worker", "--until-idle", "--engine", "salesflow.engine:Salesflow"]) == 0
    assert_every_step_once(url, enrollments)


def test_the_command_needs_a_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SALESFLOW_STORE", raising=False)
    assert main(["worker"]) == 1
    assert "--store URL or $SALESFLOW_STORE" in capsys.readouterr().err


# --- killed mid-batch: the factory the processes load with --engine --------------------

SLOW = "test.slow"
DONE = "test.done"
FAR = datetime(2100, 1, 1, tzinfo=UTC)


def slow_engine(store: Store) -> Salesflow:
    """An engine whose ``test.slow`` items take a while and leave one ``test.done``
    item each (without a key, so performing an item twice would leave two)."""
    engine = Salesflow(store)
    marker = os.environ.get("SALESFLOW_TEST_MARKER")

    def slow(work: Work, item: DueItem) -> None:
        if marker:
            Path(marker).touch()
        time.sleep(0.005)
        work.schedule_due(DONE, FAR, payload={"of": item.id})

    engine.register_handler(SLOW, slow)
    return engine


def schedule_slow(url: str, count: int) -> set[str]:
    engine = Salesflow(open_store(url), clock=FakeClock(SystemClock().now() - timedelta(hours=1)))
    try:
        return {engine.schedule_due(SLOW, engine.now()).id for _ in range(count)}
    finally:
        engine.close()


def done_once(url: str, ids: set[str]) -> None:
    engine = Salesflow(open_store(url))
    try:
        items = engine.due_items()
    finally:
        engine.close()
    assert [i for i in items if i.kind == SLOW] == []
    counts = Counter(i.payload["of"] for i in items if i.kind == DONE)
    assert set(counts) == ids
    assert set(counts.values()) == {1}


def kill_mid_batch(process: subprocess.Popen[str], marker: Path) -> None:
    wait_until(marker.exists, "the worker starts a batch")
    process.kill()
    process.communicate(timeout=20)


def test_a_worker_killed_mid_batch_loses_nothing_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    ids = schedule_slow(url, 150)
    marker = tmp_path / "started"
    engine = ("--engine", "test_worker:slow_engine", "--poll", "0.05")
    killed = worker_process(url, *engine, env={"SALESFLOW_TEST_MARKER": str(marker)})
    kill_mid_batch(killed, marker)

    survivor = worker_process(url, *engine, "--until-idle")
    _, err = survivor.communicate(timeout=30)

    assert survivor.returncode == 0, err
    done_once(url, ids)


# --- PostgreSQL: several workers on one schema -----------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"worker_{uuid4().hex[:12]}"
    separator = "&" if "?" in DSN else "?"
    yield f"{DSN}{separator}schema={name}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@needs_server
def test_two_workers_on_postgresql_perform_every_step_once(pg_url: str) -> None:
    enrollments = enroll_in_the_past(pg_url, 300)
    options = ("--poll", "0.05", "--batch", "20")
    workers = [worker_process(pg_url, *options) for _ in range(2)]
    done = NothingDue(pg_url)
    try:
        wait_until(done, "the workers perform every due step", timeout=60)
    finally:
        done.close()
        results = [stop(process) for process in workers]

    assert [code for code, _ in results] == [0, 0], results
    assert_every_step_once(pg_url, enrollments)


@needs_server
def test_a_killed_worker_s_items_come_back_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    ids = schedule_slow(pg_url, 300)
    marker = tmp_path / "started"
    engine = ("--engine", "test_worker:slow_engine", "--poll", "0.05")
    killed = worker_process(pg_url, *engine, env={"SALESFLOW_TEST_MARKER": str(marker)})
    survivor = worker_process(pg_url, *engine)
    kill_mid_batch(killed, marker)
    done = NothingDue(pg_url, SLOW)
    try:
        wait_until(done, "the surviving worker performs the killed worker's items", timeout=60)
    finally:
        done.close()
        code, err = stop(survivor)

    assert code == 0, err
    done_once(pg_url, ids)
