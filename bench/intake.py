"""Benchmark: exact-match lookups and CSV intake.

The issue's targets (issue 4, item 9): at least 1,000,000 exact-match lookups/s in
memory and 100,000/s on SQLite in batch; a CSV intake of 100,000 rows into SQLite in
at most 10 s. Every case runs in this one invocation, next to its baseline:

* lookups: a plain ``dict`` from email key to ids (the baseline), then the store's
  ``find_by`` (one value per call, whole records), ``find_many_by`` (a batch of
  values, whole records) and ``find_ids_by`` (a batch, ids only) inside one unit of
  work, on MemoryStore and on SQLite, over ``--contacts`` contacts;
* intake: ``import_csv`` of ``--rows`` generated lead rows, every row matched
  against contacts and leads first, into MemoryStore and into a new SQLite file;
  the baseline is parsing the same file with the ``csv`` module alone; with
  ``--scoring``, also into SQLite with a scoring model published (every new lead is
  scored in the unit that creates it).

Run::

    .venv/bin/python bench/intake.py                     # 100,000 contacts and rows
    .venv/bin/python bench/intake.py --contacts 20000 --rows 20000
    .venv/bin/python bench/intake.py --no-lookups --scoring   # the import, also scored
    .venv/bin/python bench/intake.py --no-lookups --stores sqlite   # the SQLite import alone

Each case starts after a full garbage collection, so it does not pay for collecting
what an earlier case left behind (the 100,000 leads of the MemoryStore case).

Figures go to ``docs/performance.md``. Benchmarks may read the wall clock; the
library may not.
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime

from salesflow import Salesflow
from salesflow.conditions import field
from salesflow.party import Contact
from salesflow.scoring import Grade, ScoringModel, ScoringRule
from salesflow.stores.base import Store
from salesflow.stores.memory import MemoryStore
from salesflow.stores.url import open_store
from salesflow.values import normalize_email

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def contacts(n: int) -> list[Contact]:
    return [
        Contact(
            id=f"c{i:07d}",
            created_at=T0,
            modified_at=T0,
            last_name=f"Person {i}",
            email=f"person{i}@company{i % 997}.example",
        )
        for i in range(n)
    ]


def fill(store: Store, people: list[Contact]) -> None:
    for start in range(0, len(people), 5000):
        with store.unit_of_work() as uow:
            for contact in people[start : start + 5000]:
                uow.add(contact)
            uow.commit()


def timed(run: Callable[[], int]) -> tuple[float, int]:
    gc.collect()  # an earlier case's garbage is not this case's work
    started = time.perf_counter()
    done = run()
    return time.perf_counter() - started, done


def lookup_cases(n: int) -> list[tuple[str, float, int]]:
    people = contacts(n)
    keys = [normalize_email(c.email or "") for c in people]
    rows: list[tuple[str, float, int]] = []

    index: dict[str, list[str]] = {}
    for contact, key in zip(people, keys, strict=True):
        index.setdefault(key, []).append(contact.id)

    def plain() -> int:
        return sum(1 for key in keys if index.get(key))

    rows.append(("dict (baseline)", *timed(plain)))
    for name, store in (
        ("MemoryStore", MemoryStore()),
        ("SQLite", open_store(f"sqlite:///{tempfile.mkdtemp()}/lookups.db")),
    ):
        fill(store, people)

        def one_by_one(store: Store = store) -> int:
            with store.unit_of_work() as uow:
                return sum(1 for key in keys if uow.find_by(Contact, "email_key", key))

        def batched(store: Store = store) -> int:
            with store.unit_of_work() as uow:
                found = uow.find_many_by(Contact, "email_key", keys)
            return sum(1 for key in keys if found[key])

        def ids_only(store: Store = store) -> int:
            with store.unit_of_work() as uow:
                found = uow.find_ids_by(Contact, "email_key", keys)
            return sum(1 for key in keys if found[key])

        rows.append((f"{name} find_by", *timed(one_by_one)))
        rows.append((f"{name} find_many_by", *timed(batched)))
        rows.append((f"{name} find_ids_by", *timed(ids_only)))
        store.close()
    return rows


def csv_text(n: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["First Name", "Last Name", "Email", "Company Name", "Country", "Employees"])
    for i in range(n):
        writer.writerow(
            [
                f"F{i}",
                f"L{i}",
                f"p{i}@x{i % 500}.example",
                f"Company {i % 900}",
                "Lithuania",
                i % 300,
            ]
        )
    return out.getvalue()


def scoring_model() -> ScoringModel:
    """A small model every imported lead is scored by (they have no parent contact)."""
    return ScoringModel(
        id="bench",
        name="Bench",
        score_leads_without_parent=True,
        sales_ready_threshold=50,
        rules=[
            ScoringRule(
                id="lt",
                name="In Lithuania",
                conditions=[field("lead.country").eq("Lithuania")],
                points=20,
            ),
            ScoringRule(
                id="big",
                name="Over 100 people",
                conditions=[field("lead.employees").gt(100)],
                points=40,
            ),
        ],
        grades=[Grade(name="cold", low=None, high=49), Grade(name="hot", low=50, high=None)],
    )


def intake_cases(n: int, scoring: bool, stores: set[str]) -> list[tuple[str, float, int]]:
    text = csv_text(n)
    rows: list[tuple[str, float, int]] = []

    def parse_only() -> int:
        return sum(1 for _ in csv.reader(io.StringIO(text))) - 1

    rows.append(("csv module only (baseline)", *timed(parse_only)))
    cases: list[tuple[str, str | None, bool]] = []
    if "memory" in stores:
        cases.append(("import_csv MemoryStore", None, False))
    if "sqlite" in stores:
        cases.append(("import_csv SQLite", "intake.db", False))
        if scoring:
            cases.append(("import_csv SQLite, scored", "scored.db", True))
    for name, file, scored in cases:
        folder = None if file is None else tempfile.mkdtemp()
        engine = Salesflow(
            open_store("memory://" if file is None else f"sqlite:///{folder}/{file}")
        )
        if scored:
            engine.publish_scoring_model(scoring_model())

        def run(engine: Salesflow = engine) -> int:
            report = engine.import_csv(io.StringIO(text), kind="lead")
            assert report.created == n, report.table()
            return report.created

        rows.append((name, *timed(run)))
        engine.close()
        if folder is not None:
            shutil.rmtree(folder)  # a 100,000-lead file is ~170 MB
    return rows


def table(title: str, unit: str, rows: list[tuple[str, float, int]]) -> None:
    base = rows[0][2] / rows[0][1]
    print(f"\n{title}")
    print(f"{'case':30} {'items':>9} {'seconds':>8} {unit + '/s':>13} {'x baseline':>11}")
    for name, seconds, items in rows:
        rate = items / seconds
        print(f"{name:30} {items:9,} {seconds:8.2f} {rate:13,.0f} {rate / base:11.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--scoring", action="store_true", help="also import into SQLite with a scoring model"
    )
    parser.add_argument("--no-lookups", action="store_true", help="only the CSV intake")
    parser.add_argument(
        "--stores",
        default="memory,sqlite",
        help="comma-separated stores the import runs into (memory, sqlite)",
    )
    args = parser.parse_args()
    stores = {s.strip() for s in args.stores.split(",") if s.strip()}
    if not stores or not stores <= {"memory", "sqlite"}:
        parser.error(f"--stores {args.stores!r}: name memory and/or sqlite")
    print("salesflow intake benchmark")
    print(f"  python    {platform.python_version()}")
    print(f"  machine   {platform.machine()}, {os.cpu_count()} cpus")
    print(f"  load avg  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.no_lookups:
        table(
            f"exact-match lookups, {args.contacts:,} contacts",
            "lookups",
            lookup_cases(args.contacts),
        )
    table(
        f"CSV intake, {args.rows:,} rows",
        "rows",
        intake_cases(args.rows, args.scoring, stores),
    )
    print(f"\nload avg at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
