"""Benchmark: the scaling curve of ``salesflow worker`` processes on PostgreSQL.

The issue's experiment (issue 6, item 3): 1, 2 and 4 worker processes over the same
``--enrollments`` enrollments, reported as steps/s for each. The sequence is all
automated (an auto email, a 1-day wait, an auto email, a 2-day wait, a last auto
email, the end), so due items drive everything and no seller acts.

How it runs: the leads are created and connected to the sequence once, by an engine
on the memory store (the first email is sent by the connect: setup, not timed).
Per worker count, that state is copied into a fresh PostgreSQL schema
(``?schema=...``, dropped after the run) in bulk (`salesflow.testing.pg_bulk`: one
``COPY`` per table, with the PostgreSQL store's own row encoding), so every count
starts from the same enrollments in the same tables, with no dead rows left by the
previous run (the server here runs without autovacuum). Then the workers — real
``python -m salesflow.cli worker`` processes, whose engine is `engine` below —
perform the rest. Their clock is read from a file this script writes: once
everything due at the current instant is done, the file jumps to the next due
instant (the waits are days long), so a run has two busy phases of
``--enrollments`` due items each. The time counted is from the first jump until
nothing is due; steps are the history entries the workers wrote (5 per
enrollment: both waits, two emails and the end), due items the ``sequence.step``
items they performed (2 per enrollment). To explain the curve, each row also says
how much CPU the worker processes and the PostgreSQL server processes used during
the timed part (from ``/proc/<pid>/stat``), and how busy the whole machine was
(from ``/proc/stat``: this script and anything else running count too).

Run::

    SALESFLOW_PG_DSN=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/workers.py
    .venv/bin/python bench/workers.py --enrollments 20000 --workers 1,2

Figures go to ``docs/performance.md``. Benchmarks may read the wall clock; the
library may not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from benchkit import load_average, machine
from salesflow.clock import FakeClock, require_aware
from salesflow.engine import Salesflow
from salesflow.sequences import ActivityStep, EndStep, SequenceDefinition, Span, WaitStep
from salesflow.stores.base import Store
from salesflow.stores.memory import MemoryStore
from salesflow.stores.postgres import PostgresStore
from salesflow.stores.url import open_store
from salesflow.testing.pg_bulk import copy_to_postgres

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
CLOCK_ENV = "SALESFLOW_BENCH_CLOCK"
HERE = Path(__file__).resolve().parent
SEQUENCE = "drip"
WORKER_STEPS = 5
"""History entries a worker writes per enrollment: w1, follow, w2, last, end."""


class FileClock:
    """The workers' clock: the ISO instant in the file ``$SALESFLOW_BENCH_CLOCK``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        return require_aware(
            datetime.fromisoformat(self.path.read_text(encoding="utf-8")), "FileClock"
        )


def engine(store: Store) -> Salesflow:
    """The ``--engine workers:engine`` factory of the worker processes."""
    return Salesflow(store, clock=FileClock(Path(os.environ[CLOCK_ENV])))


def set_clock(path: Path, instant: datetime) -> None:
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(instant.isoformat(), encoding="utf-8")
    os.replace(temporary, path)


def drip(sequence_id: str) -> SequenceDefinition:
    return SequenceDefinition(
        id=sequence_id,
        name=f"Drip {sequence_id}",
        record_type="lead",
        entry="hello",
        steps=[
            ActivityStep(id="hello", kind="auto_email", subject="Hello", next="w1"),
            WaitStep(id="w1", span=Span(days=1), next="follow"),
            ActivityStep(id="follow", kind="auto_email", subject="Following up", next="w2"),
            WaitStep(id="w2", span=Span(days=2), next="last"),
            ActivityStep(id="last", kind="auto_email", subject="Last try", next="end"),
            EndStep(id="end", outcome="sent"),
        ],
    )


def start_worker(
    url: str, clock_file: Path, log: Path, batch: int, poll: float
) -> subprocess.Popen[bytes]:
    env = {**os.environ, CLOCK_ENV: str(clock_file)}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])])
    with log.open("wb") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "salesflow.cli",
                "worker",
                "--store",
                url,
                "--engine",
                "workers:engine",
                "--batch",
                str(batch),
                "--poll",
                str(poll),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def wait_for(
    check: Callable[[], bool], what: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    while not check():
        if any(p.poll() is not None for p in processes):
            raise SystemExit(f"a worker exited while waiting for {what}")
        time.sleep(0.01)


def run(
    dsn: str,
    workdir: Path,
    memory: MemoryStore,
    enrollments: int,
    count: int,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Copy ``memory`` into a fresh schema and let ``count`` workers perform what is
    due; returns the figures of the run."""
    schema = f"bench_workers_{uuid.uuid4().hex[:10]}"
    url = f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"
    try:
        began = time.perf_counter()
        store = PostgresStore(dsn, schema=schema)
        try:
            copy_to_postgres(memory, store)
        finally:
            store.close()
        copy_seconds = time.perf_counter() - began
        return {"copy_seconds": copy_seconds, **_work(url, workdir, enrollments, count, args)}
    finally:
        drop_schema(dsn, schema)


def _work(
    url: str, workdir: Path, enrollments: int, count: int, args: argparse.Namespace
) -> dict[str, float]:
    clock_file = workdir / f"clock{count}"
    set_clock(clock_file, T0)
    logs = [workdir / f"worker{count}-{n}.log" for n in range(count)]
    processes = [start_worker(url, clock_file, log, args.batch, args.poll) for log in logs]
    reader = Salesflow(open_store(url), clock=FakeClock(T0))
    try:
        wait_for(
            lambda: all("worker started" in log.read_text() for log in logs), "the start", processes
        )
        now = T0

        def phase_done() -> bool:
            due = reader.next_due_at()
            return due is None or due > now

        busy_before = machine_busy()
        workers_before = cpu_of([p.pid for p in processes])
        server_before = cpu_of(postgres_pids())
        driver_before = time.process_time()
        began = time.perf_counter()
        while (due := reader.next_due_at()) is not None:
            if due > now:
                now = due
                set_clock(clock_file, now)
            wait_for(phase_done, f"everything due at {now}", processes)
        seconds = time.perf_counter() - began
        driver_cpu = time.process_time() - driver_before
        server_cpu = cpu_delta(server_before, cpu_of(server_before))
        worker_cpu = cpu_delta(workers_before, cpu_of([p.pid for p in processes]))
        busy = machine_busy()
        done = reader.enrollments(sequence_id=SEQUENCE)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        reader.close()
    steps = sum(len(e.history) - 1 for e in done)  # "hello" was the connect's
    if (
        steps != WORKER_STEPS * enrollments
        or len(done) != enrollments
        or any(e.status.value != "completed" for e in done)
    ):
        raise SystemExit(f"{count} worker(s): {steps} steps, expected {WORKER_STEPS * enrollments}")
    return {
        "workers": count,
        "seconds": seconds,
        "steps": steps,
        "items": 2 * enrollments,
        "worker_cpu": worker_cpu,
        "server_cpu": server_cpu,
        "driver_cpu": driver_cpu,
        "busy": (busy[0] - busy_before[0]) / max(busy[1] - busy_before[1], 1e-9),
    }


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_of(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds (user + system) each live process of ``pids`` used so far."""
    used = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return used


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two `cpu_of` samples by the processes in both."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (the workers' backends, the
    WAL writer, the checkpointer, other clients' backends too)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", encoding="utf-8") as comm:
                    if comm.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores from /proc/stat: the machine's load over a
    run, PostgreSQL and anything else running included."""
    try:
        with open("/proc/stat", encoding="utf-8") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + fields[4]  # idle and iowait
    return float(sum(fields) - idle), float(sum(fields))


def build(count: int) -> MemoryStore:
    """``count`` leads connected to the sequence, on the memory store (at `T0`)."""
    memory = MemoryStore()
    setup = Salesflow(memory, clock=FakeClock(T0))
    setup.publish_sequence(drip(SEQUENCE))
    for first in range(0, count, 5_000):
        leads = [
            setup.create_lead(topic=f"Lead {n}", last_name=f"L{n}", email=f"l{n}@example.com")
            for n in range(first, min(first + 5_000, count))
        ]
        setup.connect_many(leads, SEQUENCE)
    return memory


def drop_schema(dsn: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


# --- output -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--enrollments", type=int, default=100_000, help="enrollments per worker count"
    )
    parser.add_argument(
        "--workers", default="1,2,4", help="the worker counts to run, comma-separated"
    )
    parser.add_argument("--batch", type=int, default=100, help="--batch of each worker")
    parser.add_argument("--poll", type=float, default=0.02, help="--poll of each worker")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("SALESFLOW_PG_DSN", ""),
        help="the PostgreSQL server (default $SALESFLOW_PG_DSN); a new schema is used",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dsn:
        print("bench/workers.py needs PostgreSQL: pass --dsn or set SALESFLOW_PG_DSN")
        return 2
    counts = [int(n) for n in args.workers.split(",")]
    print("salesflow worker scaling benchmark (PostgreSQL)")
    for key, value in machine():
        print(f"  {key:<10}{value}")
    print(
        f"  {args.enrollments:,} enrollments per worker count, batch {args.batch}, "
        f"poll {args.poll:g}s; steps: {WORKER_STEPS} per enrollment, 2 due items"
    )
    began = time.perf_counter()
    memory = build(args.enrollments)
    print(
        f"[setup] {args.enrollments:,} leads connected on the memory store in "
        f"{time.perf_counter() - began:.1f}s",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for count in counts:
            result = run(args.dsn, Path(workdir), memory, args.enrollments, count, args)
            results.append(result)
            print(
                f"[{count} worker(s)] {result['steps'] / result['seconds']:,.0f} steps/s "
                f"(copy into PostgreSQL {result['copy_seconds']:.1f}s, "
                f"load avg {load_average()})",
                flush=True,
            )
    base = results[0]["steps"] / results[0]["seconds"]
    print()
    print(
        "| workers | enrollments | steps | due items | seconds | steps/s | due items/s | x 1st "
        "| worker CPU s | PostgreSQL CPU s | CPU ms/step (workers + PostgreSQL) | machine busy |"
    )
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        rate = r["steps"] / r["seconds"]
        per_step = 1000 * (r["worker_cpu"] + r["server_cpu"]) / r["steps"]
        print(
            f"| {r['workers']:.0f} | {args.enrollments:,} | {r['steps']:,.0f} | {r['items']:,.0f} "
            f"| {r['seconds']:.1f} | {rate:,.0f} | {r['items'] / r['seconds']:,.0f} "
            f"| {rate / base:.2f} | {r['worker_cpu']:.1f} | {r['server_cpu']:.1f} "
            f"| {per_step:.2f} ({1000 * r['worker_cpu'] / r['steps']:.2f} + "
            f"{1000 * r['server_cpu'] / r['steps']:.2f}) | {r['busy']:.0%} |"
        )
    print(
        "\nworker CPU: the worker processes during the timed part (start-up excluded); "
        "PostgreSQL CPU: every postgres process on the machine over the same time; "
        "the driver (this script, polling next_due_at) used "
        + ", ".join(f"{r['driver_cpu']:.1f}s" for r in results)
    )
    print(f"load avg at the end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
