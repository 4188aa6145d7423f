"""A process killed with SIGKILL in the middle of a stream of commands leaves a SQLite
database that opens, passes ``PRAGMA integrity_check`` and holds exactly the units of
work that committed.

A child process creates leads numbered 1, 2, 3, … one command (one unit of work) each,
and prints each number once its command has returned, i.e. committed. The parent reads
a random number of those lines and kills the child at once, so the kill lands while a
unit is being written or committed. Afterwards:

* every number the child reported is stored (a returned command is durable: WAL with
  ``synchronous = NORMAL`` loses nothing when a process dies, only on power loss);
* at most one number beyond them is stored, and only the next one (its commit finished
  before the kill, the print did not happen);
* no lead is stored twice or half: the numbers stored are exactly 1..m.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from salesflow.lead import Lead
from salesflow.stores.base import Query
from salesflow.stores.url import open_store

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="needs POSIX signals to kill the child"
)

CHILD = textwrap.dedent(
    """
    import sys

    from salesflow.engine import Salesflow
    from salesflow.stores.url import open_store

    engine = Salesflow(open_store(sys.argv[1]))
    print("ready", flush=True)
    for n in range(1, 1_000_000):
        engine.create_lead(topic=f"Crash {n}", last_name=f"N{n}", custom={"n": n})
        print(n, flush=True)  # only after the command returned: committed
    """
)

KILLS = 5


def stored_numbers(path: Path) -> list[int]:
    store = open_store(f"sqlite:///{path}")
    try:
        numbers: list[int] = []
        with store.unit_of_work() as uow:
            while True:
                page = uow.query(Lead, Query(limit=1000, offset=len(numbers)))
                numbers.extend(int(lead.custom["n"]) for lead in page.items)
                if not page.has_more:
                    break
        return sorted(numbers)
    finally:
        store.close()


def run_and_kill(script: Path, path: Path, wanted: int, rng: random.Random) -> list[int]:
    """Start the child, kill it with SIGKILL after ``wanted`` reported commits (and a
    random instant more), and return every number it reported."""
    child = subprocess.Popen(
        [sys.executable, str(script), f"sqlite:///{path}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        reported = [int(child.stdout.readline()) for _ in range(wanted)]
        time.sleep(rng.random() * 0.003)  # land anywhere inside the next unit
        os.kill(child.pid, signal.SIGKILL)
        # what it printed before dying was committed too
        reported.extend(int(line) for line in child.stdout.read().split())
    finally:
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return reported


def test_a_killed_process_leaves_exactly_its_committed_units(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    for kill in range(KILLS):
        path = tmp_path / f"crash-{kill}.db"
        reported = run_and_kill(script, path, rng.randint(3, 80), rng)
        context = f"seed {seed}, kill {kill}"
        assert reported == list(range(1, len(reported) + 1)), context
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
        stored = stored_numbers(path)  # open_store opens what the crash left
        assert stored[: len(reported)] == reported, context
        extra = stored[len(reported) :]
        assert extra in ([], [len(reported) + 1]), f"{context}: stored {extra} beyond"


def test_the_database_goes_on_after_a_kill(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "again.db"
    first = run_and_kill(script, path, 5, random.Random(1))
    kept = stored_numbers(path)
    assert kept[: len(first)] == first
    # a second process picks the database up and commits on top of it
    second = run_and_kill(script, path, 3, random.Random(2))
    assert len(stored_numbers(path)) >= len(kept) + len(second)
