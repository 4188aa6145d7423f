"""Benchmark: sequence simulation throughput against a hand-written tight baseline.

The reference (issue 3, item 10): the high-volume outbound prospecting template,
calls answered with p = 0.3, the seller acting the moment a step is due. Every case
runs in this one invocation and is reported as enrollments/s and steps/s (every
step entered, waits, conditions and ends included) and as a ratio to the baseline:

* ``baseline``: a self-contained, hand-written simulator of that one graph (a heap
  of ``(due, seq, index)`` and small ``__slots__`` enrollments, DESIGN §7);
* ``monte carlo``: `salesflow.testing.run_monte_carlo` on the template itself.

Then one run of ``--big`` enrollments (default 1,000,000) of the Monte Carlo runner
in a child process, so its wall time and peak memory (``ru_maxrss``) are that run's
own. More cases (the full engine on MemoryStore or SQLite) are added to `CASES`:
each is a name and a function ``(records, seed) -> Result``.

Run::

    .venv/bin/python bench/sequences.py                    # 200,000 per case + 1M run
    .venv/bin/python bench/sequences.py --records 50000 --big 0

Figures go to ``docs/performance.md``. Benchmarks may read the wall clock; the
library may not.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from salesflow.sequences.templates import load_template
from salesflow.testing import ResponseModel, run_monte_carlo

TEMPLATE = "high_volume_outbound_prospecting"
P_ANSWERED = 0.3
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = 86_400


@dataclass(frozen=True)
class Result:
    """What one case measured."""

    records: int
    steps: int
    seconds: float
    booked: int  # enrollments that ended with a meeting booked: a sanity check

    @property
    def rate(self) -> float:
        return self.records / self.seconds

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
    model = ResponseModel(call_outcomes={"answered": P_ANSWERED, "no_answer": 1 - P_ANSWERED})
    began = time.perf_counter()
    funnel = run_monte_carlo(definition, records=records, model=model, seed=seed, start=START)
    seconds = time.perf_counter() - began
    return Result(records, funnel.steps_entered, seconds, funnel.outcomes["meeting_booked"])


def timed_baseline(records: int, seed: int) -> Result:
    """The baseline with the collector paused, as the Monte Carlo runner does."""
    gc.disable()
    try:
        return baseline(records, seed)
    finally:
        gc.enable()


CASES: list[tuple[str, Callable[[int, int], Result]]] = [
    ("baseline (hand-written)", timed_baseline),
    ("monte carlo", monte_carlo),
]
"""Every case runs on the same template and model; the first is the baseline."""


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


def machine() -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line.split(":", 1)[1].strip() for line in info if "model name" in line]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return [
        ("python", platform.python_version()),
        ("cpu", f"{cpu} ({os.cpu_count()} cores)"),
        ("os", platform.platform()),
        ("load avg", load_average()),
    ]


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=200_000, help="enrollments per case")
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
        f"{args.records:,} enrollments per case, best of {args.repeat}"
    )
    results: list[tuple[str, Result]] = []
    for name, case in CASES:
        runs = [case(args.records, args.seed + n) for n in range(args.repeat)]
        best = min(runs, key=lambda r: r.seconds)
        results.append((name, best))
        print(f"[{name}] {best.rate:,.0f} enrollments/s", flush=True)
    base = results[0][1]
    print(
        f"\n{'case':<26}{'enrollments/s':>15}{'steps/s':>13}{'steps/enr':>11}"
        f"{'booked':>9}{'x baseline':>12}{'steps x':>9}"
    )
    for name, r in results:
        print(
            f"{name:<26}{r.rate:>15,.0f}{r.step_rate:>13,.0f}{r.steps / r.records:>11.2f}"
            f"{r.booked / r.records:>9.1%}{r.rate / base.rate:>12.2f}"
            f"{r.step_rate / base.step_rate:>9.2f}"
        )
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
