"""Benchmark: creates/s, qualify/s and lead-view query times on each store.

Builds a book of N realistic leads (default 100,000) through the engine's
commands (``Salesflow.create_lead``), one unit of work per lead, with a fake
clock spreading ``created_at`` over three weeks; then qualifies and disqualifies
a sample and times the standard lead views, a quick search, a filter, a sort and
a grouping (median and p95 over repeated runs).

Run::

    .venv/bin/python bench/records.py                      # memory, sqlite (+ postgres if
                                                           # SALESFLOW_PG_DSN is set)
    .venv/bin/python bench/records.py --leads 10000 --stores sqlite
    .venv/bin/python bench/records.py --pg postgresql://postgres@127.0.0.1:5432/test

PostgreSQL runs in a private schema (``sf_bench_<random>``) that is dropped at
the end; its views are timed twice, as loaded and after ``VACUUM (ANALYZE)``. Figures go to
``docs/performance.md``. Benchmarks may read the wall clock; the library may not.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import random
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import salesflow
from benchkit import Samples, load_average, machine, safe_dsn, sqlite_file
from salesflow import FakeClock, LeadSource, Money, RecordKind, Salesflow, SortKey, Store

# --- the book of leads ---------------------------------------------------------------

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)  # a Thursday: the run ends mid-week
SPREAD = timedelta(days=21)
OWNERS = [f"u{i}" for i in range(1, 21)]


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = _words(
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa "
    "Anthony Betty Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua "
    "Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie "
    "Ieva Lukas Sofia Mateo Aiko Kenji Ana Luis Olga Ivan Fatima Omar Priya Arjun"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Smithson Smits Smirnov Kazlauskas Petrov Tanaka Sato Muller Schmidt Rossi "
    "Ruiz Novak Kowalski Jensen Larsen Dubois Moreau Silva Santos Costa Murphy Kelly"
)
COMPANY_WORDS = _words(
    "Contoso Fabrikam Northwind Adatum Litware Proseware Tailspin Woodgrove Fourth Coffee "
    "Alpine Blue Yonder Lucerne Margie Wingtip Trey Humongous Wide World Graphic Southridge "
    "Smithfield Smile Summit Vertex Apex Nimbus Orbit Quantum Cedar Harbor Granite Polar"
)
COMPANY_KINDS = _words("Labs Systems Industries Logistics Foods Bank Motors Health Media Energy")
COMPANY_SUFFIXES = ("Inc", "Ltd", "GmbH", "UAB", "LLC", "SA", "")
PRODUCTS = (
    "laptops",
    "CRM seats",
    "support plan",
    "office chairs",
    "cloud storage",
    "consulting days",
    "printers",
    "licences",
)
TITLES = ("CEO", "CTO", "Buyer", "IT manager", "Office manager", "Procurement lead", None)
CITIES = (
    ("Vilnius", "LT"),
    ("Berlin", "DE"),
    ("Paris", "FR"),
    ("Austin", "US"),
    ("Seattle", "US"),
    ("Lisbon", "PT"),
    ("Osaka", "JP"),
)
RATINGS = ("hot", "warm", "cold", None)
RATING_WEIGHTS = (20, 35, 30, 15)
SOURCES = [s.value for s in LeadSource]


def company_pool(rng: random.Random, size: int) -> list[str]:
    """``size`` distinct company names."""
    names: set[str] = set()
    while len(names) < size:
        suffix = rng.choice(COMPANY_SUFFIXES)
        name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {suffix}".strip()
        if name in names:
            name = f"{name} {len(names)}"
        names.add(name)
    return sorted(names)


def lead_fields(n: int, rng: random.Random, companies: list[str]) -> dict[str, Any]:
    """The fields of lead number ``n``: varied, realistic, deterministic per seed."""
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    company = rng.choice(companies) if rng.random() < 0.95 else None
    domain = (company or "mail example").split()[0].lower() + ".example"
    city, country = rng.choice(CITIES)
    fields: dict[str, Any] = {
        "topic": f"{rng.randint(1, 200)} {rng.choice(PRODUCTS)}",
        "first_name": first,
        "last_name": last,
        "company_name": company,
        "job_title": rng.choice(TITLES),
        "city": city,
        "country": country,
        "owner_id": OWNERS[n % len(OWNERS)],
        "rating": rng.choices(RATINGS, RATING_WEIGHTS)[0],
        "source": rng.choice(SOURCES),
        "employees": rng.choice((5, 12, 40, 120, 800, 5000)),
    }
    if rng.random() < 0.9:
        fields["email"] = f"{first}.{last}.{n}@{domain}".lower()
    if rng.random() < 0.6:
        fields["business_phone"] = f"+370 5 {rng.randint(1000000, 9999999)}"
    if rng.random() < 0.3:
        fields["estimated_value"] = Money(amount=str(rng.randint(1, 500) * 100), currency="EUR")
    return fields


def sequential_ids() -> Callable[[RecordKind], str]:
    """A deterministic id factory: ``lead-00000001``, ``account-00000001``, …"""
    counters: dict[RecordKind, int] = {}

    def make(kind: RecordKind) -> str:
        counters[kind] = counters.get(kind, 0) + 1
        return f"{kind.value}-{counters[kind]:08d}"

    return make


# --- stores --------------------------------------------------------------------------


@dataclass
class OpenedStore:
    """A store under test, where it lives, and how to clean up after it."""

    store: Store
    where: str
    cleanup: Callable[[], None]
    size: Callable[[], str]
    maintain: tuple[str, Callable[[], None]] | None = None
    """What a database does by itself after a while (PostgreSQL's autovacuum), to
    time the views once more in that steady state."""


def open_memory(_: argparse.Namespace) -> OpenedStore:
    from salesflow import MemoryStore

    return OpenedStore(MemoryStore(), "in process", lambda: None, lambda: "")


def open_sqlite(_: argparse.Namespace) -> OpenedStore:
    from salesflow.stores.sqlite import SQLiteStore

    path, cleanup, size = sqlite_file("sf-bench-", "bench.db")
    return OpenedStore(SQLiteStore(path), str(path), cleanup, size)


def open_postgres(args: argparse.Namespace) -> OpenedStore:
    import psycopg
    from psycopg import sql

    from salesflow.stores.postgres import PostgresStore

    dsn: str = args.pg
    schema = f"sf_bench_{secrets.token_hex(4)}"
    store = PostgresStore(dsn, schema=schema)

    def drop_schema() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    def tables(conn: psycopg.Connection[Any]) -> list[str]:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
        ).fetchall()
        return [str(row[0]) for row in rows]

    def vacuum() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in tables(conn):
                target = sql.Identifier(schema, table)
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(target))

    def size() -> str:
        with psycopg.connect(dsn) as conn:
            total = heap = 0
            for table in tables(conn):
                qualified = f'"{schema}"."{table}"'
                row = conn.execute(
                    "SELECT pg_total_relation_size(%s), pg_relation_size(%s)",
                    (qualified, qualified),
                ).fetchone()
                if row:
                    total, heap = total + int(row[0]), heap + int(row[1])
        return f"{total / 1e6:.0f} MB (tables {heap / 1e6:.0f} MB + indexes and TOAST)"

    return OpenedStore(
        store,
        f"{safe_dsn(dsn)} schema {schema}",
        drop_schema,
        size,
        ("after VACUUM (ANALYZE), as autovacuum leaves it", vacuum),
    )


OPENERS: dict[str, Callable[[argparse.Namespace], OpenedStore]] = {
    "memory": open_memory,
    "sqlite": open_sqlite,
    "postgres": open_postgres,
}


# --- measuring -----------------------------------------------------------------------


@dataclass
class Throughput:
    what: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else math.inf


@dataclass
class Timing(Samples):
    what: str
    total: int
    samples: list[float]


@dataclass
class StoreResult:
    name: str
    where: str
    leads: int
    throughput: list[Throughput] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    maintained: list[Timing] = field(default_factory=list)
    maintenance: str = ""
    size: str = ""
    rss_mb: float = 0.0


@contextmanager
def profiled(enabled: bool, title: str) -> Iterator[None]:
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
            print(f"\n--- profile: {title} (top 25 by {order}) ---")
            pstats.Stats(profile, stream=sys.stdout).sort_stats(order).print_stats(25)


def rss_mb() -> float:
    """This process's resident set size in MB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def view_cases(engine: Salesflow) -> list[tuple[str, Callable[[], Any]]]:
    """The view queries to time: each returns a `ViewResult`."""
    view = engine.lead_view
    return [
        ("open_leads", lambda: view("open_leads")),
        ("closed_leads", lambda: view("closed_leads")),
        ("all_leads", lambda: view("all_leads")),
        ("my_open_leads (u7)", lambda: view("my_open_leads", user_id="u7")),
        ("opened_last_week", lambda: view("opened_last_week")),
        ("opened_this_week", lambda: view("opened_this_week")),
        ("all_leads search 'smi'", lambda: view("all_leads", search="smi")),
        (
            "open_leads rating=hot",
            lambda: view("open_leads", where=salesflow.field("rating").eq("hot")),
        ),
        (
            "open_leads sort last_name",
            lambda: view("open_leads", order_by=[SortKey(field="last_name")]),
        ),
        ("all_leads group_by status", lambda: view("all_leads", group_by="status")),
    ]


def time_query(what: str, run: Callable[[], Any], runs: int, budget: float) -> Timing:
    """Time ``run`` ``runs`` times after a warm-up (fewer if one run is slow)."""
    start = time.perf_counter()
    result = run()
    first = time.perf_counter() - start
    if first * runs > budget:
        runs = max(5, int(budget / max(first, 1e-9)))
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return Timing(what, result.total, samples)


def bench_store(name: str, args: argparse.Namespace) -> StoreResult:
    opened = OPENERS[name](args)
    result = StoreResult(name, opened.where, args.leads)
    rng = random.Random(args.seed)
    companies = company_pool(rng, args.companies)
    clock = FakeClock(START)
    engine = Salesflow(opened.store, clock=clock, ids=sequential_ids())
    step = SPREAD / args.leads
    try:
        print(f"\n[{name}] creating {args.leads:,} leads …", flush=True)
        books = [lead_fields(n, rng, companies) for n in range(args.leads)]
        ids: list[str] = []
        tenth = max(1, args.leads // 10)
        marks: list[float] = []
        with profiled(args.profile, f"{name}: create_lead"):
            start = time.perf_counter()
            for n, fields in enumerate(books):
                if n in (tenth, args.leads - tenth):
                    marks.append(time.perf_counter())
                ids.append(engine.create_lead(**fields).id)
                clock.advance(step)
            end = time.perf_counter()
        del books
        result.throughput.append(Throughput("create_lead", len(ids), end - start))
        if len(marks) == 2:
            result.throughput.append(Throughput("  first 10%", tenth, marks[0] - start))
            result.throughput.append(Throughput("  last 10%", tenth, end - marks[1]))
        print(f"[{name}] {result.throughput[0].rate:,.0f} creates/s", flush=True)

        sample = rng.sample(ids, min(args.qualify + args.disqualify, len(ids)))
        to_qualify, to_disqualify = sample[: args.qualify], sample[args.qualify :]
        tick = timedelta(seconds=1)
        with profiled(args.profile, f"{name}: qualify_lead"):
            start = time.perf_counter()
            for lead_id in to_qualify:
                engine.qualify_lead(lead_id)
                clock.advance(tick)
            result.throughput.append(
                Throughput("qualify_lead", len(to_qualify), time.perf_counter() - start)
            )
        print(f"[{name}] {result.throughput[-1].rate:,.0f} qualifies/s", flush=True)
        reasons = ("lost", "cannot_contact", "no_longer_interested")
        start = time.perf_counter()
        for n, lead_id in enumerate(to_disqualify):
            engine.disqualify_lead(lead_id, reasons[n % len(reasons)])
            clock.advance(tick)
        result.throughput.append(
            Throughput("disqualify_lead", len(to_disqualify), time.perf_counter() - start)
        )
        start = time.perf_counter()
        reads = ids[:: max(1, len(ids) // max(1, args.reads))][: args.reads]
        for lead_id in reads:
            engine.get_lead(lead_id)
        result.throughput.append(Throughput("get_lead", len(reads), time.perf_counter() - start))

        print(f"[{name}] timing views …", flush=True)
        with profiled(args.profile, f"{name}: views"):
            for what, run in view_cases(engine):
                result.timings.append(time_query(what, run, args.runs, args.budget))
        if opened.maintain is not None:
            result.maintenance, maintain = opened.maintain
            print(f"[{name}] timing views again {result.maintenance} …", flush=True)
            maintain()
            for what, run in view_cases(engine):
                result.maintained.append(time_query(what, run, args.runs, args.budget))
        result.size = opened.size()
        result.rss_mb = rss_mb()
    finally:
        engine.close()
        opened.cleanup()
    return result


# --- reporting -----------------------------------------------------------------------


def postgres_version(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def print_timings(title: str, timings: list[Timing]) -> None:
    print(f"\n{title:<28}{'total':>9}{'median ms':>11}{'p95 ms':>9}{'runs':>6}")
    for q in timings:
        print(f"{q.what:<28}{q.total:>9,}{q.median_ms:>11.2f}{q.p95_ms:>9.2f}{len(q.samples):>6}")


def print_store(result: StoreResult) -> None:
    print(f"\n== {result.name}: {result.leads:,} leads ({result.where}) ==")
    print(f"{'command':<18}{'count':>10}{'seconds':>10}{'per second':>13}")
    for t in result.throughput:
        print(f"{t.what:<18}{t.count:>10,}{t.seconds:>10.2f}{t.rate:>13,.0f}")
    print_timings("view (page 1, 50 rows)", result.timings)
    if result.maintained:
        print(f"\n{result.maintenance}:", end="")
        print_timings("", result.maintained)
    if result.size:
        print(f"\nsize: {result.size}")
    print(f"process RSS after the run: {result.rss_mb:,.0f} MB")


def print_summary(results: list[StoreResult]) -> None:
    columns: list[tuple[str, list[Throughput], list[Timing]]] = []
    for r in results:
        columns.append((r.name, r.throughput, r.timings))
        if r.maintained:
            columns.append((f"{r.name}*", [], r.maintained))
    if len(columns) < 2:
        return
    print("\n== summary (commands per second; view median ms) ==")
    print(f"{'':<28}" + "".join(f"{name:>12}" for name, _, _ in columns))
    for i, t in enumerate(results[0].throughput):
        cells = "".join(
            f"{rates[i].rate:>12,.0f}" if i < len(rates) else f"{'':>12}" for _, rates, _ in columns
        )
        print(f"{t.what:<28}{cells}")
    for i, q in enumerate(results[0].timings):
        cells = "".join(f"{timings[i].median_ms:>12.2f}" for _, _, timings in columns)
        print(f"{q.what:<28}{cells}")
    starred = [r for r in results if r.maintained]
    for r in starred:
        print(f"{r.name}*: views {r.maintenance}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=100_000, help="leads to create per store")
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
    parser.add_argument("--qualify", type=int, default=2_000, help="leads to qualify")
    parser.add_argument("--disqualify", type=int, default=1_000, help="leads to disqualify")
    parser.add_argument("--reads", type=int, default=2_000, help="leads to read by id")
    parser.add_argument("--companies", type=int, default=5_000, help="size of the company pool")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per view query")
    parser.add_argument(
        "--budget",
        type=float,
        default=15.0,
        help="seconds per view query at most; slow queries get fewer runs (at least 5)",
    )
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--profile", action="store_true", help="print cProfile hot spots")
    args = parser.parse_args(argv)
    if args.stores is None:
        args.stores = "memory,sqlite" + (",postgres" if args.pg else "")
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in args.stores if s not in OPENERS]
    if unknown:
        parser.error(f"unknown store(s) {', '.join(unknown)}; choose from {', '.join(OPENERS)}")
    if "postgres" in args.stores and not args.pg:
        parser.error("postgres needs a DSN: --pg DSN or SALESFLOW_PG_DSN")
    if args.leads < 1:
        parser.error("--leads must be at least 1")
    least = {"qualify": 0, "disqualify": 0, "reads": 0, "companies": 1, "runs": 1}
    for option, minimum in least.items():
        if getattr(args, option) < minimum:
            parser.error(f"--{option} must be at least {minimum}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine()
    if "postgres" in args.stores:
        facts.append(("postgresql", postgres_version(args.pg)))
    print("salesflow records benchmark")
    for key, value in facts:
        print(f"  {key:<11}{value}")
    print(
        f"  leads {args.leads:,}; qualify {args.qualify:,}; disqualify {args.disqualify:,}; "
        f"view runs {args.runs}; seed {args.seed}"
    )
    began = time.perf_counter()
    results = []
    for name in args.stores:
        results.append(bench_store(name, args))
        print_store(results[-1])
    print_summary(results)
    print(f"\ntotal wall time {time.perf_counter() - began:,.0f} s; load avg {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
