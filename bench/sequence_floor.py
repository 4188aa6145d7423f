"""Benchmark: the floor under the full engine's sequence figures.

Issue 3 asks the full engine (every activity, history entry, due item and event
written) to run the reference experiment (`bench/sequences.py`: the high-volume
outbound template, calls answered with p = 0.3) at 20,000 enrollments/s on
MemoryStore, i.e. within 50 µs per enrollment. This script measures what no
implementation of that engine in CPython can go below on this machine, by timing
only the objects one enrollment produces, with no logic and no store:

1. ``engine (MemoryStore)``: a real run (`run_on_engine`) whose sink counts every
   event; it also yields one stored example of every object kind.
2. ``objects, validated``: per enrollment, the same number of each event class
   rebuilt through its constructor from the run's own examples, one `Activity`
   built per activity created and one closed per activity completed or canceled,
   one `HistoryEntry` and one new version of the enrollment per step completed,
   each the way the engine does it today (`evolve_fields` checks only the changed
   fields). This is what an engine that checks its records (DESIGN §1.4: validators
   enforce invariants) pays at least. Due items, store copies and units of work are
   left out, so the floor is, if anything, too low.
3. ``objects, bare``: the same number of objects with the same number of fields as
   plain ``__slots__`` classes without a validator or converter: the cost of
   allocating them in CPython at all.

Each row is printed as µs and enrollments/s and against the 50 µs budget of the
20,000/s target. Run::

    .venv/bin/python bench/sequence_floor.py                 # 1,000 engine enrollments
    .venv/bin/python bench/sequence_floor.py --engine-records 500 --floor-records 5000

Figures go to ``docs/performance.md`` ("Sequences", "The floor"). Benchmarks may read
the wall clock; the library may not.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import attrs

from benchkit import load_average, machine
from salesflow.activity import Activity, ActivityState
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.events import ActivityCanceled, ActivityCompleted, ActivityCreated, Event
from salesflow.sequences.enrollment import Enrollment, HistoryEntry, StepCompleted
from salesflow.sequences.templates import load_template
from salesflow.stores.memory import MemoryStore
from salesflow.testing import ResponseModel
from salesflow.testing.engine_run import run_on_engine
from salesflow.values import evolve_fields

TEMPLATE = "high_volume_outbound_prospecting"
MODEL = ResponseModel(call_outcomes={"answered": 0.3, "no_answer": 0.7})
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TARGET = 20_000
"""The issue's enrollments/s target for the full engine on MemoryStore."""


class CountingSink:
    """Counts published events by class and keeps the first of each as an example."""

    def __init__(self) -> None:
        self.counts: Counter[type[Event]] = Counter()
        self.examples: dict[type[Event], Event] = {}

    def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            cls = type(event)
            self.counts[cls] += 1
            self.examples.setdefault(cls, event)


@dataclass(frozen=True)
class Produced:
    """What one engine run produced: events per class, in total, and examples."""

    enrollments: int
    seconds: float
    counts: dict[type[Event], int]
    events: dict[type[Event], Event]
    activity: Activity
    enrollment: Enrollment

    def per(self, cls: type[Event]) -> float:
        """Events of ``cls`` per enrollment."""
        return self.counts.get(cls, 0) / self.enrollments


def engine_run(records: int, seed: int) -> Produced:
    """The reference experiment on a MemoryStore engine, counting what it publishes.
    The leads are created before the clock starts (as `bench/sequences.py` does)."""
    sink = CountingSink()
    start = load_template(TEMPLATE)
    clock = FakeClock(START)
    engine = Salesflow(store=MemoryStore(), clock=clock, sink=sink)
    engine.publish_sequence(start)
    refs = [
        engine.create_lead(
            topic=f"Floor {i}", last_name=f"Floor {i}", owner_id="owner", email=f"f{i}@example.com"
        ).ref
        for i in range(records)
    ]
    sink.counts.clear()
    began = time.perf_counter()
    run_on_engine(engine, start.id, records=refs, model=MODEL, seed=seed, owners=("owner",))
    seconds = time.perf_counter() - began
    activity = engine.timeline(refs[0])[0]
    enrollment = engine.enrollments(sequence_id=start.id)[0]
    engine.close()
    return Produced(records, seconds, dict(sink.counts), sink.examples, activity, enrollment)


def _init_args(obj: Any) -> dict[str, Any]:
    """The keyword arguments that rebuild ``obj`` through its class's constructor."""
    return {a.alias: getattr(obj, a.name) for a in attrs.fields(type(obj)) if a.init}


def _plan(produced: Produced, enrollments: int) -> list[tuple[Callable[[], object], int]]:
    """(build one object, how many in all) for ``enrollments`` enrollments, validated."""
    plan: list[tuple[Callable[[], object], int]] = []
    for cls, event in produced.events.items():
        args = _init_args(event)
        count = round(produced.per(cls) * enrollments)
        plan.append((lambda cls=cls, args=args: cls(**args), count))
    activity, enrollment = produced.activity, produced.enrollment
    activity_args = _init_args(activity)
    closed = produced.per(ActivityCompleted) + produced.per(ActivityCanceled)
    entry = enrollment.history[0]
    entry_args = _init_args(entry)
    plan += [
        (lambda: Activity(**activity_args), round(produced.per(ActivityCreated) * enrollments)),
        (
            lambda: evolve_fields(
                activity, state=ActivityState.COMPLETED, closed_at=activity.created_at
            ),
            round(closed * enrollments),
        ),
        (lambda: HistoryEntry(**entry_args), round(produced.per(StepCompleted) * enrollments)),
        (
            lambda: evolve_fields(
                enrollment, history=enrollment.history, version=enrollment.version + 1
            ),
            round(produced.per(StepCompleted) * enrollments),
        ),
    ]
    return plan


def _bare(plan: list[tuple[Callable[[], object], int]]) -> list[tuple[Callable[[], object], int]]:
    """The same objects as plain slots classes with as many fields and no checks."""
    bare: list[tuple[Callable[[], object], int]] = []
    for build, count in plan:
        sample = build()
        names = [a.name for a in attrs.fields(type(sample))]
        cls = attrs.make_class(f"Bare{type(sample).__name__}", names, slots=True)
        values = tuple(getattr(sample, n) for n in names)
        bare.append((lambda cls=cls, values=values: cls(*values), count))
    return bare


def timed(plan: list[tuple[Callable[[], object], int]]) -> float:
    """Seconds to build every object of ``plan`` (the collector paused, as the
    Monte Carlo runner pauses it, so that the floor stays a floor)."""
    gc.disable()
    try:
        began = time.perf_counter()
        for build, count in plan:
            for _ in range(count):
                build()
        return time.perf_counter() - began
    finally:
        gc.enable()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--engine-records", type=int, default=1_000)
    parser.add_argument("--floor-records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best counts")
    parser.add_argument("--seed", type=int, default=20260302)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("salesflow sequence floor benchmark")
    for key, value in machine():
        print(f"  {key:<10}{value}")
    runs = [engine_run(args.engine_records, args.seed + n) for n in range(args.repeat)]
    produced = min(runs, key=lambda p: p.seconds)
    print(f"  reference {TEMPLATE}; per enrollment the engine published:")
    for cls, count in sorted(produced.counts.items(), key=lambda kv: -kv[1]):
        print(f"    {cls.__name__:<26}{count / produced.enrollments:>7.2f}")
    validated = _plan(produced, args.floor_records)
    bare = _bare(validated)
    rows = [
        ("engine (MemoryStore)", produced.seconds / produced.enrollments),
        ("objects, validated", min(timed(validated) for _ in range(args.repeat))),
        ("objects, bare", min(timed(bare) for _ in range(args.repeat))),
    ]
    budget = 1 / TARGET
    print(f"\n{'row':<24}{'us/enrollment':>15}{'enrollments/s':>15}{'x budget':>10}")
    for name, seconds in rows:
        per = seconds if name.startswith("engine") else seconds / args.floor_records
        print(f"{name:<24}{per * 1e6:>15.1f}{1 / per:>15,.0f}{per / budget:>10.2f}")
    print(
        f"budget: {budget * 1e6:.0f} us per enrollment ({TARGET:,}/s); 'x budget' > 1 is "
        "over it. The object rows have no logic, no store and no due items."
    )
    print(f"\nload avg at the end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
