"""Benchmark: what the outbox (``Salesflow(outbox=True)``) costs.

Cases, all in this one run, each on the memory store, on SQLite (a file in a
temporary folder) and, when ``--pg`` or ``$SALESFLOW_PG_DSN`` names a server, on
PostgreSQL (a schema of its own, dropped at the end), with the outbox off and on:

* ``create_lead``: one lead per call, one event each (the outbox: one entry written
  in the command's unit, then one more unit that drops it);
* ``run_due``: due items whose handler publishes one event each, performed by
  ``run_due(limit=100)`` (the outbox: one entry per unit of up to 100 items, dropped
  together at the end of the call).

Each figure is the median over ``--repeat`` runs, in microseconds per call or per
item.

Run::

    .venv/bin/python bench/outbox.py
    SALESFLOW_PG_DSN=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/outbox.py

Figures go to ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from benchkit import machine, safe_dsn
from salesflow import Salesflow
from salesflow.clock import FakeClock
from salesflow.events import LeadCreated
from salesflow.stores.base import Store
from salesflow.stores.url import open_store

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def per_call(run: Callable[[], int], repeat: int) -> float:
    """The median over ``repeat`` runs of the time per unit ``run`` reports doing, in µs."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = run()
        samples.append((time.perf_counter() - started) / done)
    return statistics.median(samples) * 1e6


def measure(store: Store, outbox: bool, calls: int, repeat: int) -> tuple[float, float]:
    clock = FakeClock(T0)
    engine = Salesflow(store, clock=clock, outbox=outbox)

    def create() -> int:
        for i in range(calls):
            engine.create_lead(topic=f"Lead {i}", last_name="Kim")
        return calls

    def handler(work: Any, item: Any) -> None:
        work.events.append(LeadCreated(occurred_at=work.now, lead_id=item.id))

    engine.register_handler("bench", handler)

    creating = per_call(create, repeat)
    samples = []
    for _ in range(repeat):
        for _ in range(calls):
            engine.schedule_due("bench", due_at=clock.now())
        clock.advance(timedelta(seconds=1))
        started = time.perf_counter()
        done = 0
        while taken := engine.run_due(limit=100):
            done += taken
        samples.append((time.perf_counter() - started) / done)
    with store.unit_of_work() as uow:
        assert uow.claim_outbox(clock.now() + timedelta(days=1), 1) == []
    return creating, statistics.median(samples) * 1e6


@contextmanager
def stores(pg: str | None) -> Iterator[list[tuple[str, Callable[[], Store]]]]:
    made: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(1000))

        def sqlite() -> Store:
            return open_store(f"sqlite:///{Path(folder) / f'b{next(counter)}.db'}")

        found: list[tuple[str, Callable[[], Store]]] = [
            ("memory", lambda: open_store("memory://")),
            ("SQLite", sqlite),
        ]
        if pg:

            def postgres() -> Store:
                schema = f"sf_bench_outbox_{uuid4().hex[:8]}"
                made.append(schema)
                separator = "&" if "?" in pg else "?"
                return open_store(f"{pg}{separator}schema={schema}")

            found.append(("PostgreSQL", postgres))
        try:
            yield found
        finally:
            if made:
                import psycopg
                from psycopg import sql

                with psycopg.connect(pg, autocommit=True) as conn:
                    for schema in made:
                        conn.execute(
                            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                                sql.Identifier(schema)
                            )
                        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1000, help="calls (and due items) per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per case; the median counts")
    parser.add_argument(
        "--pg", default=os.environ.get("SALESFLOW_PG_DSN"), help="PostgreSQL DSN (optional)"
    )
    args = parser.parse_args()
    print("salesflow outbox benchmark")
    for name, value in machine():
        print(f"  {name:<10} {value}")
    if args.pg:
        print(f"  postgres   {safe_dsn(args.pg)}")
    print(f"\n{'store':<12}{'outbox':<8}{'create_lead µs':>16}{'run_due µs/item':>18}")
    with stores(args.pg) as makers:
        for label, make in makers:
            for outbox in (False, True):
                store = make()
                try:
                    creating, performing = measure(store, outbox, args.calls, args.repeat)
                finally:
                    store.close()
                state = "on" if outbox else "off"
                print(f"{label:<12}{state:<8}{creating:>16.1f}{performing:>18.1f}", flush=True)


if __name__ == "__main__":
    main()
