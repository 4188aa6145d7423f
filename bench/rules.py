"""Benchmark: automation rules through the engine, and finding due rules among many.

Issue 5, item 8. Two cases, each on MemoryStore, SQLite (a fresh temporary file) and
PostgreSQL (when a DSN is given: ``--pg`` or ``SALESFLOW_PG_DSN``; a private schema
``sf_bench_<random>``, dropped at the end):

* ``moves``: N deals are created (``create_deal``) in the first stage of a five-stage
  pipeline whose stages ``qualified``, ``proposal`` and ``won`` have three rules each:
  immediate ones (`Notify`, `UpdateField`, `ScheduleActivity`) and delayed ones
  (``After(Delay(days=...))``, one of them with a condition that holds for a fifth of
  the deals). Every deal is moved (``move_stage``) to ``qualified``, ``proposal``,
  ``negotiation`` and ``won``; between the moves the `FakeClock` goes forward like a
  worker that wakes up at the next due item (`next_due_at`) plus ``--poll`` seconds
  and calls ``run_due`` until nothing is due, so the delayed rules are performed as
  ``pipeline.rule`` due items. A tenth of the deals leave ``proposal`` before its
  delayed rule is due: that rule is canceled. Deals enter each stage spread over an
  hour. Rules are counted by a sink that counts `AutomationRuleFinished` events
  (done, skipped, failed, canceled) without keeping them. Reported: time and rate of
  each phase, stage moves/s (a ``move_stage`` call, its immediate rules included),
  delayed rules/s (``run_due``), and every rule run (done or skipped) per second of
  the whole wall time. SQLite and PostgreSQL run fewer deals (rates compare). The
  default 100,000 deals on MemoryStore take about 17 minutes on a quiet 2-core
  machine (late 2026), up to three times as long under load: pass ``--deals 10000``
  for a quicker run.
* ``due``: the store's due table is filled with K pending ``pipeline.rule`` items
  (K from ``--pending``, default 10k, 100k, 1M, filled incrementally), due at random
  times over a year, one per deal with the key the engine gives it. MemoryStore and
  SQLite are filled through `UnitOfWork.schedule`, ``--batch`` items per unit of
  work; PostgreSQL through the store's own row encoding and INSERT statement
  (`salesflow.stores.sql.DueTable`) sent by ``executemany``, since two round trips
  per ``schedule`` would take ten minutes for a million. Its statistics are then
  refreshed (``ANALYZE``: autovacuum may be off). At each K the median of ``--runs``
  runs is taken of: `Salesflow.next_due_at`; ``claim_due(now, 100)`` at the instant
  the 100th item is due, in a unit of work that is then rolled back (not committed),
  so every run sees the same table; the same claim when a tenth of the items (at
  least 100) are overdue (a worker catching up after a stop: the first 100 must come
  from an ordered index read, not from sorting every overdue row); and an idle ``run_due``
  (nothing due yet: the poll of a worker with nothing to do). The growth table gives
  each time's ratio to the smallest K: an index keeps it flat (log K), a scan makes
  it grow with K. For SQLite and PostgreSQL the plans of the store's due-item
  queries at the largest K are printed (``EXPLAIN QUERY PLAN``, ``EXPLAIN ANALYZE``).

``--profile DEALS`` runs the moves case once more on MemoryStore with DEALS deals under
cProfile and prints the hot spots.

Run::

    .venv/bin/python bench/rules.py                          # full size (long)
    .venv/bin/python bench/rules.py --deals 10000 --sqlite-deals 5000 --pg-deals 1000
    .venv/bin/python bench/rules.py --deals 2000 --sqlite-deals 500 --pending 1000,10000
    .venv/bin/python bench/rules.py --cases due --stores sqlite --pending 10000,100000

Figures go to ``docs/performance.md``. Benchmarks may read the wall clock; the library
may not.
"""

from __future__ import annotations

import argparse
import cProfile
import heapq
import itertools
import math
import os
import pstats
import random
import secrets
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any

from benchkit import Samples, load_average, machine, safe_dsn, sqlite_file
from salesflow.clock import FakeClock
from salesflow.commands.pipelines import RULE_DUE
from salesflow.conditions import field as condition_field
from salesflow.due import DueItem
from salesflow.engine import Salesflow
from salesflow.events import Event
from salesflow.pipeline_events import AutomationRuleFinished
from salesflow.pipelines import Pipeline, Stage
from salesflow.rules import (
    ActivityDue,
    After,
    AutomationRule,
    Delay,
    Notify,
    ScheduleActivity,
    UpdateField,
)
from salesflow.stores.base import Store
from salesflow.stores.memory import MemoryStore
from salesflow.values import RecordKind, RecordRef

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
OWNERS = ("u1", "u2", "u3", "u4", "u5")
ENTRY_SPREAD = timedelta(hours=1)
"""How long the deals take to enter a stage: the clock moves that much per phase."""
YEAR = 365 * 86_400
PIPELINE_ID = "sales"

# --- the pipeline ---------------------------------------------------------------------


def sales_pipeline() -> Pipeline:
    """Five stages; ``qualified``, ``proposal`` and ``won`` have three rules each (two
    immediate, one delayed; the delayed ``nudge`` has a condition)."""
    return Pipeline(
        id=PIPELINE_ID,
        name="Sales",
        stages=[
            Stage(id="new", name="New"),
            Stage(id="qualified", name="Qualified"),
            Stage(id="proposal", name="Proposal"),
            Stage(id="negotiation", name="Negotiation"),
            Stage(id="won", name="Closed won", kind="won"),
        ],
        rules=[
            AutomationRule(
                id="welcome", stage="qualified", action=Notify(message="{name} is qualified")
            ),
            AutomationRule(
                id="probability_20",
                stage="qualified",
                action=UpdateField(field="probability", value=20),
            ),
            AutomationRule(
                id="proposal_task",
                stage="qualified",
                timing=After(delay=Delay(days=1)),
                action=ScheduleActivity(
                    kind="task",
                    subject="Prepare the proposal for {name}",
                    due=ActivityDue(days=1, at=clock_time(12)),
                ),
            ),
            AutomationRule(
                id="call",
                stage="proposal",
                action=ScheduleActivity(
                    kind="phone_call",
                    subject="Call about the proposal for {name}",
                    due=ActivityDue(days=1, at=clock_time(14)),
                    complete_on_stage_change=True,
                ),
            ),
            AutomationRule(
                id="probability_60",
                stage="proposal",
                action=UpdateField(field="probability", value=60),
            ),
            AutomationRule(
                id="nudge",
                stage="proposal",
                timing=After(delay=Delay(days=3)),
                condition=condition_field("owner_id").eq("u1"),
                action=Notify(message="No answer on {name} yet", users=["manager"]),
            ),
            AutomationRule(
                id="celebrate", stage="won", action=Notify(message="{name} won", users=["team"])
            ),
            AutomationRule(
                id="kickoff",
                stage="won",
                action=ScheduleActivity(
                    kind="appointment",
                    subject="Kick-off for {name}",
                    due=ActivityDue(days=2, at=clock_time(10)),
                ),
            ),
            AutomationRule(
                id="check_in",
                stage="won",
                timing=After(delay=Delay(days=30)),
                action=Notify(message="30 days since {name} was won"),
            ),
        ],
    )


class RuleCounter:
    """An event sink that counts `AutomationRuleFinished` events by status and keeps
    nothing else (a list of every event would dominate the memory of a big run)."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()

    def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            if type(event) is AutomationRuleFinished:
                self.statuses[event.status] += 1

    @property
    def ran(self) -> int:
        """Rules that ran: performed (done), skipped by their condition, or failed."""
        s = self.statuses
        return s["done"] + s["skipped"] + s["failed"]


def counter(prefix: str) -> Callable[..., str]:
    """Sequential ids ``prefix-1``, ``prefix-2``, … (the same on every run)."""
    numbers = itertools.count(1)

    def make(*_: object) -> str:
        return f"{prefix}-{next(numbers)}"

    return make


def record_ids() -> Callable[[RecordKind], str]:
    """Sequential record ids per kind: ``opportunity-1``, ``activity-1``, …"""
    counters: dict[RecordKind, Iterator[int]] = {}

    def make(kind: RecordKind) -> str:
        numbers = counters.setdefault(kind, itertools.count(1))
        return f"{kind.value}-{next(numbers)}"

    return make


# --- stores ---------------------------------------------------------------------------


@dataclass
class OpenedStore:
    """A store under test, where it lives, and how to clean up after it."""

    store: Store
    where: str
    cleanup: Callable[[], None]
    size: Callable[[], str]
    explain: Callable[[list[tuple[str, datetime]]], list[tuple[str, list[str]]]] | None = None
    """The plans of the due-item queries: ``claim_due`` at each (label, instant), then
    ``next_due_at`` (SQL stores)."""
    analyze: Callable[[], None] | None = None
    """Refresh the planner's statistics, as autovacuum would (PostgreSQL)."""
    bulk: Callable[[list[DueItem]], None] | None = None
    """Insert due items faster than one `UnitOfWork.schedule` round trip each."""


CLAIM_SQL = 'SELECT "doc" FROM {table} WHERE "due_at" <= {p} ORDER BY "due_at", "id" LIMIT 100'
NEXT_SQL = 'SELECT "due_at" FROM {table} ORDER BY "due_at", "id" LIMIT 1'
"""The statements of `SQLUnit.claim_due` (PostgreSQL adds ``FOR UPDATE SKIP LOCKED``)
and `SQLUnit.next_due_at`, as written in ``salesflow/stores/sql.py``."""


def open_memory(_: argparse.Namespace) -> OpenedStore:
    return OpenedStore(MemoryStore(), "in process", lambda: None, lambda: "")


def open_sqlite(_: argparse.Namespace) -> OpenedStore:
    from salesflow.stores.sqlite import SQLiteStore

    path, cleanup, size = sqlite_file("sf-bench-rules-", "rules.db")

    def explain(claims: list[tuple[str, datetime]]) -> list[tuple[str, list[str]]]:
        from salesflow.stores.codec import format_datetime

        plans = []
        claim = CLAIM_SQL.format(table='"sf_due"', p="?")
        queries = [(what, claim, [format_datetime(now)]) for what, now in claims]
        with sqlite3.connect(path) as conn:
            for what, sql, params in [
                *queries,
                ("next_due_at", NEXT_SQL.format(table='"sf_due"'), []),
            ]:
                rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
                plans.append((what, [sql] + [f"  {row[-1]}" for row in rows]))
        return plans

    return OpenedStore(SQLiteStore(path), str(path), cleanup, size, explain)


def open_postgres(args: argparse.Namespace) -> OpenedStore:
    import psycopg
    from psycopg import sql

    from salesflow.stores.postgres import PostgresDialect, PostgresStore
    from salesflow.stores.sql import DueTable

    dsn: str = args.pg
    schema = f"sf_bench_{secrets.token_hex(4)}"
    store = PostgresStore(dsn, schema=schema)
    table = f'"{schema}"."sf_due"'

    def drop_schema() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    def size() -> str:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT pg_total_relation_size(%s), pg_relation_size(%s)", (table, table)
            ).fetchone()
        if row is None:
            return "?"
        return f"sf_due {int(row[0]) / 1e6:.0f} MB (table {int(row[1]) / 1e6:.0f} MB + indexes)"

    def explain(claims: list[tuple[str, datetime]]) -> list[tuple[str, list[str]]]:
        plans = []
        claim = CLAIM_SQL.format(table=table, p="%s") + " FOR UPDATE SKIP LOCKED"
        queries: list[tuple[str, str, list[Any]]] = [(w, claim, [now]) for w, now in claims]
        with psycopg.connect(dsn) as conn:
            for what, text, params in [*queries, ("next_due_at", NEXT_SQL.format(table=table), [])]:
                rows = conn.execute(
                    f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {text}",
                    params,
                ).fetchall()
                plans.append((what, [text] + [f"  {row[0]}" for row in rows]))
            conn.rollback()  # EXPLAIN ANALYZE ran the claim: let its row locks go
        return plans

    def analyze() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"ANALYZE {table}")

    due = DueTable(PostgresDialect(schema))

    def bulk(items: list[DueItem]) -> None:
        # the store's own row encoding and INSERT, sent as one batch (`executemany`
        # pipelines them) instead of two round trips per `schedule`: a million items
        # in minutes rather than many
        with psycopg.connect(dsn) as conn:
            with conn.cursor() as cursor:
                cursor.executemany(due.insert_sql, [due.row(item) for item in items])
            conn.commit()

    return OpenedStore(
        store, f"{safe_dsn(dsn)} schema {schema}", drop_schema, size, explain, analyze, bulk
    )


OPENERS: dict[str, Callable[[argparse.Namespace], OpenedStore]] = {
    "memory": open_memory,
    "sqlite": open_sqlite,
    "postgres": open_postgres,
}


@contextmanager
def profiled(enabled: bool, title: str, top: int = 25) -> Iterator[None]:
    """Run the block under cProfile and print its hot spots when ``enabled``."""
    if not enabled:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        for order in ("tottime", "cumulative"):
            print(f"\n--- profile: {title} (top {top} by {order}) ---")
            pstats.Stats(profile, stream=sys.stdout).sort_stats(order).print_stats(top)


# --- case 1: deals moving through the stages --------------------------------------------


@dataclass
class Phase:
    """One phase of the moves case: ``count`` operations in ``seconds``, and how many
    rules ran (done, skipped or failed) meanwhile."""

    what: str
    count: int
    unit: str
    seconds: float
    rules: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else math.inf


@dataclass
class MovesResult:
    """What the moves case measured on one store."""

    store: str
    deals: int
    phases: list[Phase] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    activities: int = 0
    size: str = ""

    @property
    def moves(self) -> int:
        return sum(p.count for p in self.phases if p.unit == "moves")

    @property
    def move_seconds(self) -> float:
        return sum(p.seconds for p in self.phases if p.unit == "moves")

    @property
    def delayed(self) -> int:
        return sum(p.count for p in self.phases if p.unit == "due items")

    @property
    def delayed_seconds(self) -> float:
        return sum(p.seconds for p in self.phases if p.unit == "due items")

    @property
    def wall(self) -> float:
        return sum(p.seconds for p in self.phases)

    @property
    def ran(self) -> int:
        s = self.statuses
        return s["done"] + s["skipped"] + s["failed"]


def work_until(engine: Salesflow, clock: FakeClock, until: datetime, poll: timedelta) -> int:
    """A worker: sleep until the next due item, wake ``poll`` later, run everything due,
    again until the next item is after ``until``; the clock ends at ``until``."""
    taken = 0
    while True:
        upcoming = engine.next_due_at()
        if upcoming is None or upcoming > until:
            break
        clock.set(max(clock.now(), min(upcoming + poll, until)))
        before = taken
        while ran := engine.run_due(limit=10_000):
            taken += ran
        if taken == before and upcoming <= clock.now():
            break  # due but not claimable (another worker holds it): do not spin
    clock.set(max(clock.now(), until))
    return taken


def bench_moves(
    name: str, deals: int, args: argparse.Namespace, *, profile: bool = False
) -> MovesResult:
    """The moves case on a fresh store ``name`` with ``deals`` deals."""
    opened = OPENERS[name](args)
    clock = FakeClock(START)
    sink = RuleCounter()
    engine = Salesflow(
        opened.store, clock=clock, sink=sink, ids=record_ids(), due_ids=counter("due")
    )
    result = MovesResult(name, deals)
    poll = timedelta(seconds=args.poll)
    step = ENTRY_SPREAD / deals
    refs: list[RecordRef] = []

    def phase(what: str, unit: str, run: Callable[[], int]) -> None:
        before = sink.ran
        began = time.perf_counter()
        count = run()
        result.phases.append(
            Phase(what, count, unit, time.perf_counter() - began, sink.ran - before)
        )

    def create() -> int:
        for n in range(deals):
            deal = engine.create_deal(
                PIPELINE_ID, name=f"Deal {n}", owner_id=OWNERS[n % len(OWNERS)], probability=10
            )
            refs.append(deal.ref)
            clock.advance(step)
        return deals

    def move(stage: str, which: Callable[[int], bool] = lambda _: True) -> Callable[[], int]:
        def run() -> int:
            moved = 0
            for n, ref in enumerate(refs):
                if which(n):
                    engine.move_stage(ref, stage)
                    moved += 1
                clock.advance(step)
            return moved

        return run

    def wait(days: int) -> Callable[[], int]:
        return lambda: work_until(engine, clock, clock.now() + timedelta(days=days), poll)

    def early(n: int) -> bool:
        return n % 10 == 0  # these leave ``proposal`` before its delayed rule is due

    try:
        engine.publish_pipeline(sales_pipeline())
        print(f"[{name}] moves: {deals:,} deals …", flush=True)
        with profiled(profile, f"{name}: moves, {deals:,} deals"):
            phase("create_deal (stage new)", "deals", create)
            phase("move_stage -> qualified", "moves", move("qualified"))
            phase("run_due: proposal_task (+1 day)", "due items", wait(2))
            phase("move_stage -> proposal", "moves", move("proposal"))
            phase("move_stage -> negotiation (1/10)", "moves", move("negotiation", early))
            phase("run_due: nudge (+3 days, cond.)", "due items", wait(4))
            phase(
                "move_stage -> negotiation (9/10)",
                "moves",
                move("negotiation", lambda n: not early(n)),
            )
            phase("move_stage -> won", "moves", move("won"))
            phase("run_due: check_in (+30 days)", "due items", wait(31))
        result.statuses = Counter(sink.statuses)
        check_moves(engine, refs, result)
        result.size = opened.size()
    finally:
        engine.close()
        opened.cleanup()
    return result


def check_moves(engine: Salesflow, refs: list[RecordRef], result: MovesResult) -> None:
    """Sanity checks: every rule ran, was skipped or canceled as the pipeline says."""
    deals = len(refs)
    # every rule but ``nudge`` is done; ``nudge`` is canceled for the early tenth,
    # done for the others owned by u1 and skipped for the rest
    early = sum(1 for n in range(deals) if n % 10 == 0)
    nudged = sum(1 for n in range(deals) if n % 10 == 5)
    expected = {"done": 8 * deals + nudged, "skipped": deals - early - nudged, "canceled": early}
    got = {k: result.statuses[k] for k in expected}
    if got != expected or result.statuses["failed"]:
        print(f"  !! rule counts {dict(result.statuses)} differ from the expected {expected}")
    last = engine.pipeline_item(refs[-1])
    if last is None or last.stage != "won" or last.entry != 5:
        print(f"  !! the last deal is not where it should be: {last}")
    if engine.due_items():
        print("  !! due items are left over")


# --- case 2: finding due rules among K pending ones -------------------------------------


@dataclass
class Lookup(Samples):
    """The timings of one lookup at one K."""

    samples: list[float]


@dataclass
class DueRow:
    """Everything measured at one K."""

    pending: int
    fill_seconds: float  # for the items added since the previous K
    added: int
    lookups: dict[str, Lookup]
    claimed: int


@dataclass
class DueResult:
    store: str
    where: str
    rows: list[DueRow] = field(default_factory=list)
    plans: list[tuple[str, list[str]]] = field(default_factory=list)
    size: str = ""
    stopped: str = ""


LOOKUPS = ("next_due_at", "claim_due(100)", "claim, backlog", "run_due (idle)")
"""``claim, backlog``: ``claim_due(now, 100)`` when a tenth of the items are overdue
(a worker catching up after a stop): the first 100 must come from an ordered index
read, not from sorting every overdue row."""


def fill(
    opened: OpenedStore, first: int, last: int, batch: int, rng: random.Random, offsets: list[float]
) -> None:
    """Schedule items ``first`` … ``last - 1``: ``pipeline.rule`` items of one deal
    each, as the engine schedules them, due at random over a year from START; ``batch``
    items per unit of work (or per bulk insert)."""
    for low in range(first, last, batch):
        items = []
        for n in range(low, min(low + batch, last)):
            offset = rng.random() * YEAR
            offsets.append(offset)
            ref = RecordRef(kind=RecordKind.OPPORTUNITY, id=f"opportunity-{n}")
            items.append(
                DueItem(
                    id=f"due-{n}",
                    kind=RULE_DUE,
                    due_at=START + timedelta(seconds=offset),
                    subject=ref,
                    payload={"entry": 3, "rule": "check_in", "version": 1},
                    key=f"pipeline:{ref}:3:check_in",
                )
            )
        if opened.bulk is not None:
            opened.bulk(items)
            continue
        with opened.store.unit_of_work() as uow:
            for item in items:
                uow.schedule(item)
            uow.commit()


def time_runs(run: Callable[[], Any], runs: int) -> Lookup:
    run()  # warm-up: caches, statement preparation
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    return Lookup(samples)


def bench_due(name: str, args: argparse.Namespace) -> DueResult:
    opened = OPENERS[name](args)
    store = opened.store
    clock = FakeClock(START - timedelta(hours=1))  # before every item: run_due finds none
    engine = Salesflow(store, clock=clock, due_ids=counter("due"))
    result = DueResult(name, opened.where)
    rng = random.Random(args.seed)
    offsets: list[float] = []
    claimed = [0]

    def claim(now: datetime) -> Callable[[], None]:
        def run() -> None:
            with store.unit_of_work() as uow:
                claimed[0] = len(uow.claim_due(now, 100))
            # no commit: the unit rolls back and the items stay due

        return run

    try:
        done = 0
        for pending in args.pending:
            print(f"[{name}] due: filling to {pending:,} pending items …", flush=True)
            began = time.perf_counter()
            fill(opened, done, pending, args.batch, rng, offsets)
            seconds = time.perf_counter() - began
            added, done = pending - done, pending
            if opened.analyze is not None:
                opened.analyze()
            now = START + timedelta(seconds=heapq.nsmallest(100, offsets)[-1])
            # a tenth overdue, but never fewer than the 100 claimed, so claims compare
            backlog = max(100, pending // 10)
            late = START + timedelta(seconds=heapq.nsmallest(backlog, offsets)[-1])
            lookups = {
                "next_due_at": time_runs(engine.next_due_at, args.runs),
                "claim, backlog": time_runs(claim(late), args.runs),
                "claim_due(100)": time_runs(claim(now), args.runs),
                "run_due (idle)": time_runs(engine.run_due, args.runs),
            }
            result.rows.append(DueRow(pending, seconds, added, lookups, claimed[0]))
            print(
                f"[{name}] {pending:,} pending: filled {added:,} in {seconds:.1f} s; "
                + ", ".join(f"{k} {v.median_ms:.3f} ms" for k, v in lookups.items()),
                flush=True,
            )
            if seconds > args.fill_budget and pending != args.pending[-1]:
                result.stopped = (
                    f"stopped after {pending:,}: filling took {seconds:.0f} s "
                    f"(over --fill-budget {args.fill_budget:g} s)"
                )
                break
            if opened.explain is not None:
                result.plans = opened.explain(
                    [("claim_due (100 due)", now), (f"claim_due ({backlog:,} due)", late)]
                )
        result.size = opened.size()
    finally:
        engine.close()
        opened.cleanup()
    return result


# --- output -------------------------------------------------------------------------------


def postgres_version(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def print_moves(r: MovesResult) -> None:
    print(f"\n== moves on {r.store}: {r.deals:,} deals ==")
    print(
        f"| {'phase':<34} | {'count':>9} | {'unit':<9} | {'s':>7} | {'per s':>8} | {'rules':>8} |"
    )
    print(f"|{'-' * 36}|{'-' * 10}:|{'-' * 11}|{'-' * 8}:|{'-' * 9}:|{'-' * 9}:|")
    for p in r.phases:
        print(
            f"| {p.what:<34} | {p.count:>9,} | {p.unit:<9} | {p.seconds:>7.2f} | "
            f"{p.rate:>8,.0f} | {p.rules:>8,} |"
        )
    s = r.statuses
    print(
        f"rules: {s['done']:,} done, {s['skipped']:,} skipped, {s['failed']:,} failed, "
        f"{s['canceled']:,} canceled" + (f"; {r.size}" if r.size else "")
    )


def print_moves_summary(results: list[MovesResult]) -> None:
    print("\n== moves: summary ==")
    print(
        "| store | deals | stage moves | rules run | wall s | moves/s | delayed rules/s | rules/s |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        print(
            f"| {r.store} | {r.deals:,} | {r.moves:,} | {r.ran:,} | {r.wall:,.1f} "
            f"| {r.moves / r.move_seconds:,.0f} | {r.delayed / r.delayed_seconds:,.0f} "
            f"| {r.ran / r.wall:,.0f} |"
        )
    print(
        "moves/s: move_stage calls (each with its stage's immediate rules) per second of "
        "the move phases; delayed rules/s: run_due items per second of the run_due "
        "phases; rules/s: every rule done or skipped per second of the whole wall time "
        "(creates included)."
    )


def print_due(r: DueResult) -> None:
    print(f"\n== due on {r.store} ({r.where}) ==")
    base = r.rows[0]
    header = "| pending | fill items/s |"
    rule = "|--:|--:|"
    for what in LOOKUPS:
        header += f" {what} ms | x |"
        rule += "--:|--:|"
    print(header + " claimed |")
    print(rule + "--:|")
    for row in r.rows:
        cells = f"| {row.pending:,} | {row.added / row.fill_seconds:,.0f} |"
        for what in LOOKUPS:
            ms = row.lookups[what].median_ms
            cells += f" {ms:.3f} | {ms / base.lookups[what].median_ms:.2f} |"
        print(cells + f" {row.claimed} |")
    print(
        "ms: median; x: ratio to the first row; p95 ms per row: "
        + "; ".join(
            f"{row.pending:,}: " + ", ".join(f"{row.lookups[w].p95_ms:.3f}" for w in LOOKUPS)
            for row in r.rows
        )
    )
    last = r.rows[-1]
    grew = last.pending / base.pending
    if grew > 1:
        worst = max(last.lookups[w].median_ms / base.lookups[w].median_ms for w in LOOKUPS)
        verdict = "sub-linear (an index)" if worst < grew**0.5 else "NOT sub-linear"
        print(
            f"verdict: {grew:,.0f}x the items, at most {worst:.2f}x the time per lookup: {verdict}"
        )
    if r.stopped:
        print(r.stopped)
    for what, lines in r.plans:
        print(f"\nplan of {what} at {last.pending:,} pending:")
        for line in lines:
            print(f"    {line}")
    if r.size:
        print(f"size: {r.size}")


def parse_pending(text: str) -> list[int]:
    values = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not values or values[0] < 100:
        raise argparse.ArgumentTypeError(
            f"--pending {text!r}: sizes of at least 100, e.g. 10000,100000"
        )
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", default="moves,due", help="comma-separated: moves,due")
    parser.add_argument(
        "--stores",
        default=None,
        help="comma-separated: memory,sqlite,postgres (default: memory,sqlite and postgres "
        "when a DSN is given)",
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("SALESFLOW_PG_DSN"),
        help="PostgreSQL DSN (default: $SALESFLOW_PG_DSN)",
    )
    parser.add_argument("--deals", type=int, default=100_000, help="deals on MemoryStore")
    parser.add_argument("--sqlite-deals", type=int, default=10_000, help="deals on SQLite")
    parser.add_argument("--pg-deals", type=int, default=2_000, help="deals on PostgreSQL")
    parser.add_argument(
        "--poll", type=float, default=60.0, help="seconds a worker sleeps after the next due item"
    )
    parser.add_argument(
        "--pending",
        type=parse_pending,
        default=parse_pending("10000,100000,1000000"),
        help="pending due items to find among, filled incrementally (default 10k,100k,1M)",
    )
    parser.add_argument("--batch", type=int, default=50_000, help="due items per fill unit")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per lookup")
    parser.add_argument(
        "--fill-budget",
        type=float,
        default=600.0,
        help="seconds; a store whose fill step takes longer stops growing there",
    )
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="DEALS",
        help="also run the moves case with DEALS deals on MemoryStore under cProfile",
    )
    args = parser.parse_args(argv)
    if args.stores is None:
        args.stores = "memory,sqlite" + (",postgres" if args.pg else "")
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [s for s in args.stores if s not in OPENERS]
    if unknown:
        parser.error(f"unknown store(s) {', '.join(unknown)}; choose from {', '.join(OPENERS)}")
    if [c for c in args.cases if c not in ("moves", "due")]:
        parser.error(f"--cases {','.join(args.cases)}: choose from moves, due")
    if "postgres" in args.stores and not args.pg:
        parser.error("postgres needs a DSN: --pg DSN or SALESFLOW_PG_DSN")
    for option in ("batch", "runs"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine()
    if "postgres" in args.stores:
        facts.append(("postgresql", postgres_version(args.pg)))
    print("salesflow automation rules benchmark")
    for key, value in facts:
        print(f"  {key:<11}{value}")
    deals = {"memory": args.deals, "sqlite": args.sqlite_deals, "postgres": args.pg_deals}
    print(
        f"  cases {', '.join(args.cases)}; deals "
        + ", ".join(f"{deals[s]:,} ({s})" for s in args.stores)
        + f"; pending {', '.join(f'{k:,}' for k in args.pending)}; {args.runs} runs per "
        f"lookup; poll {args.poll:g} s; seed {args.seed}"
    )
    began = time.perf_counter()
    if "moves" in args.cases:
        moved = []
        for name in args.stores:
            if deals[name] > 0:
                moved.append(bench_moves(name, deals[name], args))
                print_moves(moved[-1])
        if moved:
            print_moves_summary(moved)
    if "due" in args.cases:
        for name in args.stores:
            print_due(bench_due(name, args))
    if args.profile:
        bench_moves("memory", args.profile, args, profile=True)
    print(f"\ntotal wall time {time.perf_counter() - began:,.0f} s; load avg {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
