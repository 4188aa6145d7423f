"""Benchmark: sequence simulation throughput against a hand-written tight baseline.

The reference (issue 3, item 10): the high-volume outbound prospecting template,
calls answered with p = 0.3, the seller acting the moment a step is due. Every case
runs in this one invocation and is reported as enrollments/s and steps/s (every
step entered, waits, conditions and ends included) and as a ratio to the baseline:

* ``baseline``: a self-contained, hand-written simulator of that one graph (a heap
  of ``(due, seq, index)`` and small ``__slots__`` enrollments, DESIGN §7);
* ``monte carlo``: `salesflow.testing.run_monte_carlo` on the template itself;
* ``engine (MemoryStore)`` and ``engine (SQLite)``: the same experiment through a
  real `Salesflow` (`salesflow.testing.engine_run.run_on_engine`): every record is
  created and connected, every activity, history entry, due item and event is
  written, and a `FakeClock` jumps from due item to due item. The SQLite store is a
  fresh temporary file per run. The engine is 100-1000x slower than the in-memory
  runner, so these cases run ``--engine-records`` / ``--sqlite-records`` enrollments
  (rates are per second, so the ratios still compare). Creating the leads (one
  ``create_lead`` command each) is timed apart as the setup: the table's rates
  exclude it and its "with setup" columns include it.

Below the table, one more engine run on MemoryStore under `cProfile` says where the
engine's time goes: the top functions by cumulative time and by own time, per step.

Then one run of ``--big`` enrollments (default 1,000,000) of the Monte Carlo runner
in a child process, so its wall time and peak memory (``ru_maxrss``) are that run's
own. A case in `CASES` is a name, a function ``(records, seed) -> Result`` and the
option that sets its record count.

Run::

    .venv/bin/python bench/sequences.py                    # 200,000 per case + 1M run
    .venv/bin/python bench/sequences.py --records 50000 --big 0 --engine-records 500

Figures go to ``docs/performance.md``. Benchmarks may read the wall clock; the
library may not.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import heapq
import itertools
import json
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchkit import load_average, machine
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.sequences.templates import load_template
from salesflow.stores.base import Store
from salesflow.stores.memory import MemoryStore
from salesflow.stores.url import open_store
from salesflow.testing import ResponseModel, run_monte_carlo
from salesflow.testing.engine_run import run_on_engine

TEMPLATE = "high_volume_outbound_prospecting"
P_ANSWERED = 0.3
MODEL = ResponseModel(call_outcomes={"answered": P_ANSWERED, "no_answer": 1 - P_ANSWERED})
"""The model of every case but the hand-written baseline (which hard-codes it)."""
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OWNER = "owner"
DAY = 86_400


@dataclass(frozen=True)
class Result:
    """What one case measured. ``setup`` is the time spent creating the records the
    engine cases connect (0 for the in-memory cases, which have no records):
    ``seconds`` excludes it, `full_rate` counts it."""

    records: int
    steps: int
    seconds: float
    booked: int  # enrollments that ended with a meeting booked: a sanity check
    setup: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def full_rate(self) -> float:
        return self.records / (self.seconds + self.setup)

    @property
    def step_rate(self) -> float:
        return self.steps / self.seconds


# --- the baseline: the outbound graph written out by hand ------------------------------

# Step codes: automated (run and go on), manual (the seller acts at once), call
# (manual with an outcome), a condition on the last call with its limit, a wait, an end.
AUTO, MANUAL, CALL, COND, WAIT, END = range(6)
# (code, next or yes, no, seconds) per step, in the template's order.
GRAPH: list[tuple[int, int, int, int]] = [
    (AUTO, 1, -1, 0),  # 0 auto_email_introduction
    (MANUAL, 2, -1, 0),  # 1 linkedin_research
    (CALL, 3, -1, 0),  # 2 call_first
    (COND, 4, 6, 2 * DAY),  # 3 answered_first_call
    (MANUAL, 5, -1, 0),  # 4 linkedin_connect
    (END, 1, -1, 0),  # 5 meeting_booked_first_call (next = 1: booked)
    (AUTO, 7, -1, 0),  # 6 auto_email_follow_up
    (WAIT, 8, -1, 3 * DAY),  # 7 wait_three_days
    (CALL, 9, -1, 0),  # 8 call_second
    (COND, 10, 11, DAY),  # 9 answered_second_call
    (END, 1, -1, 0),  # 10 meeting_booked_second_call
    (WAIT, 12, -1, 2 * DAY),  # 11 wait_two_days
    (CALL, 13, -1, 0),  # 12 call_final
    (COND, 14, 15, DAY),  # 13 answered_final_call
    (END, 1, -1, 0),  # 14 meeting_booked_final_call
    (AUTO, 16, -1, 0),  # 15 disqualify
    (END, 0, -1, 0),  # 16 disqualified
]


class Enrollment:
    """One record on the sequence: where it is and what its last call did."""

    __slots__ = ("answered", "step")

    def __init__(self) -> None:
        self.step = 0
        self.answered = False


def baseline(records: int, seed: int) -> Result:
    """The tight simulator: run each enrollment until it must wait, then a heap."""
    rng = random.Random(seed)
    draw = rng.random
    graph = GRAPH
    enrollments = [Enrollment() for _ in range(records)]
    heap: list[tuple[int, int, int]] = []
    seq = steps = booked = 0
    began = time.perf_counter()

    def advance(e: Enrollment, index: int, now: int) -> None:
        nonlocal seq, steps, booked
        step = e.step
        while True:
            steps += 1
            code, nxt, _, seconds = graph[step]
            if code == CALL:
                e.answered = draw() < P_ANSWERED
                step = nxt
            elif code in (AUTO, MANUAL):
                step = nxt
            elif code == END:
                booked += nxt
                return
            else:  # a wait or a condition: come back when its time is up
                e.step = step
                seq += 1
                heapq.heappush(heap, (now + seconds, seq, index))
                return

    for index, e in enumerate(enrollments):
        advance(e, index, 0)
    while heap:
        now, _, index = heapq.heappop(heap)
        e = enrollments[index]
        code, nxt, no, _ = graph[e.step]
        e.step = (nxt if e.answered else no) if code == COND else nxt
        advance(e, index, now)
    return Result(records, steps, time.perf_counter() - began, booked)


# --- the cases ----------------------------------------------------------------------------


def monte_carlo(records: int, seed: int) -> Result:
    """`run_monte_carlo` on the template with calls answered at P_ANSWERED."""
    definition = load_template(TEMPLATE)
    began = time.perf_counter()
    funnel = run_monte_carlo(definition, records=records, model=MODEL, seed=seed, start=START)
    seconds = time.perf_counter() - began
    return Result(records, funnel.steps_entered, seconds, funnel.outcomes["meeting_booked"])


def timed_baseline(records: int, seed: int) -> Result:
    """The baseline with the collector paused, as the Monte Carlo runner does."""
    gc.disable()
    try:
        return baseline(records, seed)
    finally:
        gc.enable()


def counter(prefix: str) -> Callable[..., str]:
    """Sequential ids ``prefix-1``, ``prefix-2``, …: cheaper than uuid4 and the same on
    every run, so runs of a case compare (the engine's id factories take a record kind
    or nothing; this ignores its arguments)."""
    numbers = itertools.count(1)

    def make(*_: object) -> str:
        return f"{prefix}-{next(numbers)}"

    return make


def on_engine(
    store: Store, records: int, seed: int, profiler: cProfile.Profile | None = None
) -> Result:
    """`run_on_engine` on a fresh engine over ``store`` (closed afterwards), timed in
    two parts: the setup, creating the leads (one `create_lead` command each), and
    the run: connecting them, playing the sellers and customers, every due item, and
    reading the enrollments back for the funnel. The profiler sees the run only."""
    definition = load_template(TEMPLATE)
    engine = Salesflow(
        store,
        clock=FakeClock(START),
        ids=counter("record"),
        due_ids=counter("due"),
        enrollment_ids=counter("enrollment"),
    )
    try:
        engine.publish_sequence(definition)
        began = time.perf_counter()
        refs = [
            engine.create_lead(
                topic=f"Simulated {i}",
                last_name=f"Simulated {i}",
                owner_id=OWNER,
                email=f"simulated{i}@example.com",  # the automated emails need an address
            ).ref
            for i in range(records)
        ]
        created = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        funnel = run_on_engine(
            engine, definition.id, records=refs, model=MODEL, seed=seed, owners=(OWNER,)
        )
        seconds = time.perf_counter() - created
        if profiler is not None:
            profiler.disable()
    finally:
        engine.close()
    booked = funnel.outcomes.get("meeting_booked", 0)
    return Result(records, funnel.steps_entered, seconds, booked, setup=created - began)


def engine_memory(records: int, seed: int) -> Result:
    """The full engine on a `MemoryStore`."""
    return on_engine(MemoryStore(), records, seed)


def engine_sqlite(records: int, seed: int) -> Result:
    """The full engine on a `SQLiteStore` in a new temporary file (WAL, as opened by
    `open_store`), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="salesflow-bench-") as folder:
        path = Path(folder) / "sequences.db"
        return on_engine(open_store(f"sqlite:///{path}"), records, seed)


CASES: list[tuple[str, Callable[[int, int], Result], str]] = [
    ("baseline (hand-written)", timed_baseline, "records"),
    ("monte carlo", monte_carlo, "records"),
    ("engine (MemoryStore)", engine_memory, "engine_records"),
    ("engine (SQLite)", engine_sqlite, "sqlite_records"),
]
"""Every case runs on the same template and model; the first is the baseline. The
third item names the option (`parse_args`) giving the case's record count."""


# --- where the engine's time goes -------------------------------------------------------


def profile_engine(records: int, seed: int, top: int = 12) -> None:
    """Run the engine on MemoryStore once under cProfile and print the ``top`` functions
    by cumulative time and by own time, with their cost per step entered."""
    profiler = cProfile.Profile()
    result = on_engine(MemoryStore(), records, seed, profiler)
    stats = pstats.Stats(profiler)
    # pstats keeps (calls, primitive calls, own s, cumulative s, callers) per function.
    rows = stats.stats  # type: ignore[attr-defined]
    # The run itself is the function with the largest cumulative time: 100 %.
    total = max(cumulative for _, _, _, cumulative, _ in rows.values())
    print(
        f"\n[engine (MemoryStore)] {records:,} enrollments, {result.steps:,} steps under "
        f"cProfile: {result.seconds:.2f} s, {result.seconds / result.steps * 1e6:,.0f} us "
        f"per step (the profiler slows it down; shares are what to read)"
    )
    for title, column in (("cumulative", 3), ("own time", 2)):
        ranked = sorted(rows.items(), key=lambda kv: kv[1][column], reverse=True)[:top]
        print(
            f"\n{f'top {top} by {title}':<65}{'calls':>10}{'per step':>10}{'s':>8}"
            f"{'us/step':>9}{'share':>7}"
        )
        for func, figures in ranked:
            seconds = figures[column]
            print(
                f"{function_name(func):<65.65}{figures[1]:>10,}"
                f"{figures[1] / result.steps:>10.2f}{seconds:>8.2f}"
                f"{seconds / result.steps * 1e6:>9.1f}{seconds / total:>7.1%}"
            )


def function_name(func: tuple[str, int, str]) -> str:
    """``module.py:line(name)`` with the path cut at ``salesflow/`` or ``site-packages/``."""
    path, line, name = func
    if path == "~":  # a built-in
        return name
    for cut in ("src/salesflow/", "site-packages/", "lib/python"):
        if cut in path:
            path = path.split(cut, 1)[1]
            break
    return f"{path}:{line}({name})"


# --- the big run in a child process -----------------------------------------------------


def child(records: int, seed: int) -> None:
    """Run the Monte Carlo case once and print its figures as JSON (the child's side)."""
    result = monte_carlo(records, seed)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "records": result.records,
                "steps": result.steps,
                "seconds": result.seconds,
                "booked": result.booked,
                "peak_mb": peak_kb / 1024,
            }
        )
    )


def big_run(records: int, seed: int) -> dict[str, float]:
    """The child's figures, plus its wall time including interpreter start-up."""
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(records), "--seed", str(seed)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    figures["wall"] = time.perf_counter() - began
    return figures


# --- output -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--records", type=int, default=200_000, help="enrollments of the in-memory cases"
    )
    parser.add_argument(
        "--engine-records",
        type=int,
        default=2_000,
        help="enrollments of the engine on MemoryStore (and of the profiled run; 0: skip)",
    )
    parser.add_argument(
        "--sqlite-records",
        type=int,
        default=500,
        help="enrollments of the engine on SQLite (0: skip it)",
    )
    parser.add_argument(
        "--big", type=int, default=1_000_000, help="enrollments of the child run (0: skip it)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args.child, args.seed)
        return 0
    print("salesflow sequence simulation benchmark")
    for key, value in machine():
        print(f"  {key:<10}{value}")
    print(
        f"  reference {TEMPLATE}, calls answered p={P_ANSWERED}, seller acts at once; "
        f"enrollments per case: {args.records:,} in memory, {args.engine_records:,} on the "
        f"engine (MemoryStore), {args.sqlite_records:,} (SQLite); best of {args.repeat}"
    )
    results: list[tuple[str, Result]] = []
    for name, case, size in CASES:
        records = getattr(args, size)
        if records <= 0:
            continue
        runs = [case(records, args.seed + n) for n in range(args.repeat)]
        best = min(runs, key=lambda r: r.seconds)
        results.append((name, best))
        setup = f" ({best.full_rate:,.0f}/s with setup)" if best.setup else ""
        print(f"[{name}] {best.rate:,.0f} enrollments/s{setup}", flush=True)
    base = results[0][1]
    print(
        f"\n{'case':<26}{'records':>9}{'enrollments/s':>15}{'steps/s':>13}{'steps/enr':>11}"
        f"{'booked':>9}{'x baseline':>12}{'steps x':>9}{'with setup/s':>14}{'x baseline':>12}"
    )
    for name, r in results:
        print(
            f"{name:<26}{r.records:>9,}{r.rate:>15,.0f}{r.step_rate:>13,.0f}"
            f"{r.steps / r.records:>11.2f}{r.booked / r.records:>9.1%}"
            f"{r.rate / base.rate:>12.3g}{r.step_rate / base.step_rate:>9.3g}"
            f"{r.full_rate:>14,.0f}{r.full_rate / base.rate:>12.3g}"
        )
    print(
        "enrollments/s of the engine cases exclude creating their leads (the setup, one "
        "create_lead each); 'with setup' counts it"
    )
    if args.engine_records > 0:
        profile_engine(args.engine_records, args.seed)
    if args.big:
        print(f"\n[monte carlo] {args.big:,} enrollments in a child process …", flush=True)
        f = big_run(args.big, args.seed)
        print(
            f"{'big run':<26}{'run s':>8}{'wall s':>8}{'enrollments/s':>15}{'peak MB':>9}"
            f"{'x baseline':>12}"
        )
        rate = f["records"] / f["seconds"]
        print(
            f"{'monte carlo':<26}{f['seconds']:>8.2f}{f['wall']:>8.2f}{rate:>15,.0f}"
            f"{f['peak_mb']:>9,.0f}{rate / base.rate:>12.2f}"
        )
    print(f"\nload avg at the end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
