"""Benchmark: what access control costs a command and a view page.

Cases, all in this one run, on the memory store and on SQLite (a file in a temporary
folder), over ``--leads`` leads owned by 50 users in 5 business units:

* ``update_lead``: one field change per call, the lead owned by the caller;
  ``unguarded`` calls the method under the guard directly (what the engine cost
  before access control), ``system`` the engine itself (the guard only passes the
  call through), ``salesperson`` and ``manager`` an engine from `as_actor` (the
  record is read and checked in the command's unit of work);
* ``open_leads page``: page 1 of the open-leads view (50 rows, exact total), for the
  system (every lead), a salesperson (their own) and a manager (their unit).

Each figure is the median per call of ``--repeat`` runs of ``--calls`` calls.

Run::

    .venv/bin/python bench/access.py
    .venv/bin/python bench/access.py --leads 5000 --calls 500 --repeat 3

Figures go to ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchkit import machine
from salesflow import Salesflow
from salesflow.access import SALES_MANAGER, SALESPERSON, Actor, RolePolicy
from salesflow.clock import FakeClock
from salesflow.stores.base import Store
from salesflow.stores.memory import MemoryStore
from salesflow.stores.url import open_store

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
USERS = [f"user-{i:02d}" for i in range(50)]
UNITS = {user: f"unit-{i % 5}" for i, user in enumerate(USERS)}


def per_call(run: Callable[[int], None], calls: int, repeat: int) -> float:
    """The median over ``repeat`` runs of the time per call, in microseconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for i in range(calls):
            run(i)
        samples.append((time.perf_counter() - started) / calls)
    return statistics.median(samples) * 1e6


def measure(store: Store, leads: int, calls: int, repeat: int) -> list[tuple[str, str, float]]:
    engine = Salesflow(store, clock=FakeClock(T0), policy=RolePolicy(business_units=UNITS))
    seller = engine.as_actor(Actor(user_id=USERS[0], roles={SALESPERSON}, business_unit="unit-0"))
    manager = engine.as_actor(Actor(user_id="boss", roles={SALES_MANAGER}, business_unit="unit-0"))
    ids: list[str] = []
    for i in range(leads):
        lead = engine.create_lead(topic=f"Lead {i}", last_name="Kim", owner_id=USERS[i % 50])
        if lead.owner_id == USERS[0]:
            ids.append(lead.id)
    mine = [ids[i % len(ids)] for i in range(calls)]
    update = Salesflow.update_lead.__wrapped__  # type: ignore[attr-defined]
    rows = [
        (
            "update_lead",
            "unguarded",
            per_call(lambda i: update(engine, mine[i], topic=f"u{i}"), calls, repeat),
        ),
        (
            "update_lead",
            "system",
            per_call(lambda i: engine.update_lead(mine[i], topic=f"s{i}"), calls, repeat),
        ),
        (
            "update_lead",
            "salesperson",
            per_call(lambda i: seller.update_lead(mine[i], topic=f"p{i}"), calls, repeat),
        ),
        (
            "update_lead",
            "manager",
            per_call(lambda i: manager.update_lead(mine[i], topic=f"m{i}"), calls, repeat),
        ),
    ]
    pages = max(1, calls // 20)
    for who, bound in (("system", engine), ("salesperson", seller), ("manager", manager)):
        rows.append(
            (
                "open_leads page",
                who,
                per_call(lambda i, e=bound: e.lead_view("open_leads"), pages, repeat),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for key, value in machine():
        print(f"{key:10} {value}")
    print(f"leads      {args.leads:,} (50 owners, 5 units); {args.calls:,} calls per run")
    print()
    print(f"{'store':8} {'case':16} {'caller':12} {'µs/call':>10}")
    with tempfile.TemporaryDirectory() as folder:
        stores: list[tuple[str, Store]] = [
            ("memory", MemoryStore()),
            ("sqlite", open_store(f"sqlite:///{Path(folder) / 'access.db'}")),
        ]
        for name, store in stores:
            for case, caller, micros in measure(store, args.leads, args.calls, args.repeat):
                print(f"{name:8} {case:16} {caller:12} {micros:10.1f}")
            store.close()


if __name__ == "__main__":
    main()
