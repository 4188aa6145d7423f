"""Benchmark: page times of the lead views and the work list at 1,000,000 records.

Fills a SQLite file and a PostgreSQL schema with N leads (default 1,000,000) and
N enrollments, then times one page (page 1 and a deep page) of every standard
lead view, a search, a grouped view and the work list (one owner and everyone,
ordered by due time and by score), and prints the p95 of each; it also prints
the plan of the query with which ``run_due`` claims due items, to show that it
reads an index, and the plans of the score-ordered work list's join for one
owner and for everyone.

The book: leads with ~50 owners, every status, every source and ``created_at``
spread over a year (80% open, 10% qualified, 10% disqualified). The open leads
are connected to sequences through ``Salesflow.connect_many`` (the engine's own
path, in units of 5,000): all of them to "call first", whose first step is a
call (an open activity on the work list, due when connected), and a quarter of
them to "wait first" as well, whose first step waits a day (a due item in
``sf_due``): N enrollments in all. A tenth of the open leads get a score. Leads
are written with the store's ``add`` in units of 20,000 (``new_lead`` builds
them as ``create_lead`` does, without a transaction per lead).

PostgreSQL is filled by copying the SQLite file's tables with ``COPY`` (the rows
the engine wrote, in PostgreSQL's types), then a sample is read through both
stores and compared; ``--pg-direct`` fills it through the store instead, which
takes far longer at a million. Views are timed with the count bounded by
``salesflow.views.COUNT_LIMIT`` and, unless ``--no-exact``, through
``Salesflow.lead_view`` with its exact count. Statistics are refreshed first
(``ANALYZE``; ``VACUUM (ANALYZE)`` on PostgreSQL, as autovacuum would).

Run::

    .venv/bin/python bench/load.py                       # 1M; sqlite (+ postgres if
                                                         # SALESFLOW_PG_DSN is set)
    .venv/bin/python bench/load.py --leads 20000 --stores sqlite
    .venv/bin/python bench/load.py --reuse               # measure an existing fill only

The SQLite file is ``--dir``/load-<N>.db (kept for ``--reuse``; 4.4 GB at a million);
PostgreSQL uses the schema ``sf_load_<N>`` of the DSN's database (kept too; ``--drop``
removes both at the end). A million takes about 40 minutes to fill on a busy 2-core
machine; ``--reuse`` then measures both stores in under two minutes.
Benchmarks may read the wall clock; the library may not.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchkit import load_average, machine, median_ms, p95_ms, safe_dsn
from records import company_pool, lead_fields
from salesflow import FakeClock, LeadStatus, RecordKind, Salesflow, Store
from salesflow.lead import new_lead
from salesflow.sequences import ActivityStep, EndStep, SequenceDefinition, Span, WaitStep
from salesflow.values import evolve_fields

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
NOW = START + YEAR  # the views' "this week" and "last week" are the last two weeks
OWNERS = [f"u{i}" for i in range(1, 51)]
LEAD_UNIT = 20_000
CONNECT_UNIT = 5_000


def call_first() -> SequenceDefinition:
    return SequenceDefinition(
        id="call_first",
        name="Call first",
        record_type="lead",
        entry="call",
        steps=[
            ActivityStep(id="call", kind="call", subject="Intro call", next="wait"),
            WaitStep(id="wait", span=Span(days=2), next="mail"),
            ActivityStep(id="mail", kind="auto_email", subject="Following up", next="end"),
            EndStep(id="end", outcome="done"),
        ],
    )


def wait_first() -> SequenceDefinition:
    return SequenceDefinition(
        id="wait_first",
        name="Wait first",
        record_type="lead",
        entry="wait",
        steps=[
            WaitStep(id="wait", span=Span(days=1), next="task"),
            ActivityStep(id="task", kind="task", subject="Research the account", next="end"),
            EndStep(id="end", outcome="done"),
        ],
    )


# --- filling -------------------------------------------------------------------------


def lead_ids(n: int) -> list[str]:
    return [f"lead-{i:08d}" for i in range(1, n + 1)]


def book_status(i: int) -> LeadStatus:
    """Lead ``i``'s status: every tenth qualified, every tenth disqualified."""
    return {3: LeadStatus.QUALIFIED, 7: LeadStatus.DISQUALIFIED}.get(i % 10, LeadStatus.OPEN)


def fill(store: Store, n: int, seed: int) -> dict[str, float]:
    """Write the book into ``store``; returns seconds per phase."""
    rng = random.Random(seed)
    companies = company_pool(rng, 20_000)
    ids = lead_ids(n)
    step = YEAR / n
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    for first in range(0, n, LEAD_UNIT):
        with store.unit_of_work() as uow:
            for i in range(first, min(n, first + LEAD_UNIT)):
                fields = lead_fields(i, rng, companies)
                fields["owner_id"] = OWNERS[rng.randrange(len(OWNERS))]
                created = START + step * i
                lead, _ = new_lead(lead_id=ids[i], fields=fields, now=created)
                status = book_status(i)
                if status is not LeadStatus.OPEN:
                    closed = created + timedelta(days=rng.randint(1, 30))
                    reason = "qualified" if status is LeadStatus.QUALIFIED else "lost"
                    lead = evolve_fields(
                        lead,
                        status=status,
                        status_reason=reason,
                        closed_at=closed,
                        modified_at=closed,
                        version=1,
                    )
                uow.add(lead)
            uow.commit()
        print(f"  leads {min(n, first + LEAD_UNIT):>10,}", end="\r", flush=True)
    seconds["leads"] = time.perf_counter() - began
    print()

    open_ids = [lead_id for i, lead_id in enumerate(ids) if book_status(i) is LeadStatus.OPEN]
    # N enrollments: every open lead on "call first", a quarter of them on "wait first".
    extra = open_ids[: n - len(open_ids)]
    clock = FakeClock(NOW - timedelta(days=60))
    engine = Salesflow(store, clock=clock)
    engine.publish_sequence(call_first())
    engine.publish_sequence(wait_first())
    began = time.perf_counter()
    done = 0
    # Connected over 60 days, so the calls fall due over that span: some overdue.
    tick = timedelta(days=70) / max(1, n // CONNECT_UNIT)
    for sequence_id, chosen in (("call_first", open_ids), ("wait_first", extra)):
        rng.shuffle(chosen)
        for first in range(0, len(chosen), CONNECT_UNIT):
            refs = [engine_ref(x) for x in chosen[first : first + CONNECT_UNIT]]
            engine.connect_many(refs, sequence_id)
            clock.advance(tick)
            done += len(refs)
            print(f"  enrollments {done:>10,}", end="\r", flush=True)
    seconds["enrollments"] = time.perf_counter() - began
    print()
    return seconds


def engine_ref(lead_id: str) -> Any:
    from salesflow.values import RecordRef

    return RecordRef(kind=RecordKind.LEAD, id=lead_id)


SCORED = 0.1
"""The share of leads with a score (a model scored them; the rest never were)."""


def ensure_scores(store: Store, n: int, seed: int) -> None:
    """Give a tenth of the open leads a score under one model (0 to 100 points), the
    rest none, unless the store has scores already (``--reuse``)."""
    from salesflow.scoring_compile import RuleHit, ScoreResult

    with store.unit_of_work() as uow:
        if uow.top_scored_leads(1):
            return
    rng = random.Random(seed + 1)
    chosen = [x for i, x in enumerate(lead_ids(n)) if book_status(i) is LeadStatus.OPEN]
    chosen = rng.sample(chosen, int(len(chosen) * SCORED))
    began = time.perf_counter()
    for first in range(0, len(chosen), LEAD_UNIT):
        with store.unit_of_work() as uow:
            for lead_id in chosen[first : first + LEAD_UNIT]:
                points = rng.randint(0, 100)
                uow.add_score(
                    ScoreResult(
                        model_id="fit",
                        model_version=1,
                        lead_id=lead_id,
                        points=points,
                        grade=None,
                        sales_ready=points >= 80,
                        explanation=(RuleHit(rule_id="r1", rule_name="Fit", points=points),),
                        next_change_at=None,
                        scored_at=NOW - timedelta(days=1),
                    )
                )
            uow.commit()
    print(f"  scored {len(chosen):,} leads in {time.perf_counter() - began:,.1f} s", flush=True)


MARK = ("bench_load", "filled")
"""The state document a finished fill leaves, so ``--reuse`` knows the store is full."""


def filled(store: Store, n: int) -> bool:
    with store.unit_of_work() as uow:
        found = uow.get_state(*MARK)
    return found is not None and found.document.get("count", found.document.get("leads")) == n


def mark_filled(store: Store, n: int, seconds: dict[str, float]) -> None:
    with store.unit_of_work() as uow:
        uow.put_state(
            *MARK,
            {**{f"{k}_seconds": v for k, v in seconds.items()}, "count": n},
            expected_version=None,
            now=NOW,
        )
        uow.commit()


# --- stores --------------------------------------------------------------------------


def open_sqlite(
    args: argparse.Namespace,
) -> tuple[Store, str, Callable[[], str], Callable[[], None]]:
    from salesflow.stores.sqlite import SQLiteStore

    path = Path(args.dir) / f"load-{args.leads}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    store = SQLiteStore(path)

    def size() -> str:
        return f"{path.stat().st_size / 1e6:,.0f} MB"

    def drop() -> None:
        path.unlink(missing_ok=True)

    return store, str(path), size, drop


def open_postgres(
    args: argparse.Namespace,
) -> tuple[Store, str, Callable[[], str], Callable[[], None]]:
    import psycopg
    from psycopg import sql

    from salesflow.stores.postgres import PostgresStore

    schema = f"sf_load_{args.leads}"

    def drop() -> None:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    if not args.reuse:
        drop()
    store = PostgresStore(args.pg, schema=schema)

    def size() -> str:
        with psycopg.connect(args.pg) as conn:
            row = conn.execute(
                "SELECT sum(pg_total_relation_size(format('%%I.%%I', schemaname, tablename))) "
                "FROM pg_tables WHERE schemaname = %s",
                (schema,),
            ).fetchone()
        return f"{int(row[0] or 0) / 1e6:,.0f} MB" if row else "?"

    return store, f"{safe_dsn(args.pg)} schema {schema}", size, drop


def analyze(name: str, store: Store, args: argparse.Namespace) -> None:
    """What the database does by itself after a bulk load (autovacuum, or the
    ``PRAGMA optimize`` a long-lived SQLite host runs): fresh statistics."""
    if name == "postgres":
        import psycopg

        with psycopg.connect(args.pg, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (f"sf_load_{args.leads}",)
            ).fetchall()
            for (table,) in rows:
                conn.execute(f'VACUUM (ANALYZE) "sf_load_{args.leads}"."{table}"')
    else:
        import sqlite3

        with sqlite3.connect(Path(args.dir) / f"load-{args.leads}.db") as conn:
            conn.execute("ANALYZE")


def copy_to_postgres(sqlite_path: Path, store: Store, schema: str, dsn: str) -> float:
    """Fill the (new, empty) PostgreSQL store with the rows of the filled SQLite
    file, table by table with ``COPY``: the same records, enrollments, due items
    and definitions, each column turned from SQLite's form into PostgreSQL's by
    PostgreSQL's own text input (booleans 0/1, ISO datetimes, JSON text).

    Writing a million leads and connecting a million records through PostgreSQL
    statement by statement takes longer than this machine's budget for a run;
    the rows are what the engine wrote, and a sample is read back through both
    stores and compared (`check_copy`)."""
    import sqlite3

    import psycopg

    began = time.perf_counter()
    source = sqlite3.connect(sqlite_path)
    tables = [
        str(r[0])
        for r in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'sf\\_%' "
            "ESCAPE '\\' AND name <> 'sf_meta' ORDER BY name"
        )
    ]
    with psycopg.connect(dsn) as conn:
        for table in tables:
            columns = [str(r[1]) for r in source.execute(f'PRAGMA table_info("{table}")')]
            names = ", ".join(f'"{c}"' for c in columns)
            conn.execute(f'TRUNCATE "{schema}"."{table}"')
            copied = 0
            with conn.cursor().copy(f'COPY "{schema}"."{table}" ({names}) FROM STDIN') as copy:
                for row in source.execute(f'SELECT {names} FROM "{table}"'):
                    copy.write("\t".join(_copy_text(v) for v in row) + "\n")
                    copied += 1
            print(f"  copied {table:<16}{copied:>10,}", flush=True)
        conn.commit()
    source.close()
    return time.perf_counter() - began


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def check_copy(sqlite_store: Store, pg_store: Store, n: int) -> None:
    """Read a sample of leads, their timelines and enrollments through both stores:
    they must be equal, or the copy is not the same data."""
    from salesflow.lead import Lead

    rng = random.Random(1)
    for lead_id in rng.sample(lead_ids(n), 200):
        with sqlite_store.unit_of_work() as a, pg_store.unit_of_work() as b:
            ref = engine_ref(lead_id)
            same = (
                a.find(Lead, lead_id) == b.find(Lead, lead_id)
                and a.timeline(ref) == b.timeline(ref)
                and a.due_items(ref) == b.due_items(ref)
            )
        if not same:
            raise SystemExit(f"the PostgreSQL copy of {lead_id} differs from SQLite's")


# --- plans ---------------------------------------------------------------------------


def plan_of(name: str, store: Store, marker: str, call: Callable[[Any], Any]) -> list[str]:
    """The plan of the first statement containing ``marker`` that ``call(uow)`` runs on
    ``store`` (the statement, then the plan the database explains for it)."""
    lines: list[str] = []
    with store.unit_of_work() as uow:
        session = uow._session  # type: ignore[attr-defined]
        original = session.fetch

        def explain(sql: str, params: Any = ()) -> Any:
            if not lines and marker in sql:
                lines.append(sql)
                if name == "postgres":
                    rows = original("EXPLAIN " + sql, params)
                    lines.extend(str(r[0]) for r in rows)
                else:
                    rows = original("EXPLAIN QUERY PLAN " + sql, params)
                    lines.extend(str(r[-1]) for r in rows)
            return original(sql, params)

        session.fetch = explain
        try:
            call(uow)
        finally:
            session.fetch = original
    return lines


def claim_plan(name: str, store: Store) -> list[str]:
    """The plan of `claim_due`'s query on ``store``."""
    return plan_of(name, store, "sf_due", lambda uow: uow.claim_due(NOW, 100))


def score_order_plans(name: str, store: Store) -> list[tuple[str, list[str]]]:
    """The plans of the score-ordered work list's join, for one owner and for everyone
    (the first read of a 50-row page takes 63 activities)."""
    from salesflow import all_of, field

    open_ = field("state").eq("open")
    scopes = [("one owner (u7)", all_of(open_, field("owner_id").eq("u7"))), ("everyone", open_)]
    return [
        (
            label,
            plan_of(
                name,
                store,
                "sf_best_scores",
                lambda uow, w=where: uow.scored_lead_activities(w, 63),
            ),
        )
        for label, where in scopes
    ]


# --- measuring -----------------------------------------------------------------------


def cases(engine: Salesflow, deep: int, exact: bool) -> list[tuple[str, Callable[[], Any]]]:
    """The queries to time. Views count their rows up to `COUNT_LIMIT` (``read_lead_view``
    over ``lead_view_query(count_limit=COUNT_LIMIT)``, what ``lead_view`` does with a
    bounded count); with ``exact``, each view page is timed through
    ``Salesflow.lead_view`` as well, whose count is exact."""
    from salesflow import field
    from salesflow.views import COUNT_LIMIT, lead_view_query, read_lead_view

    def bounded(name: str, **options: Any) -> Any:
        query = lead_view_query(
            name, now=engine.now(), calendar=engine.calendar, count_limit=COUNT_LIMIT, **options
        )
        with engine.store.unit_of_work() as uow:
            return read_lead_view(uow, query, view=name, group_by=options.get("group_by"))

    found: list[tuple[str, Callable[[], Any]]] = []
    views = [
        "open_leads",
        "closed_leads",
        "all_leads",
        "my_open_leads",
        "opened_last_week",
        "opened_this_week",
    ]
    for name in views:
        user = "u7" if name == "my_open_leads" else None
        for page in (1, deep):
            found.append(
                (f"{name} p{page}", lambda n=name, p=page, u=user: bounded(n, user_id=u, page=p))
            )
            if exact:
                found.append(
                    (
                        "  exact count",
                        lambda n=name, p=page, u=user: engine.lead_view(n, user_id=u, page=p),
                    )
                )
    for page in (1, deep):
        found.append(
            (
                f"all_leads search 'smi' p{page}",
                lambda p=page: bounded("all_leads", search="smi", page=p),
            )
        )
    found.append(
        (
            "open_leads rating=hot p1",
            lambda: bounded("open_leads", where=field("rating").eq("hot")),
        )
    )
    found.append(("all_leads group status p1", lambda: bounded("all_leads", group_by="status")))
    found.append(
        (
            "my_open_leads group source p1",
            lambda: bounded("my_open_leads", user_id="u7", group_by="source"),
        )
    )
    for order in ("due", "score"):
        found.append(
            (f"work_list {order} u7", lambda o=order: engine.work_list(owner_id="u7", order=o))
        )
        found.append((f"work_list {order} everyone", lambda o=order: engine.work_list(order=o)))
    return found


def measure(run: Callable[[], Any], runs: int, budget: float) -> tuple[list[float], Any]:
    result = run()  # warm-up
    samples: list[float] = []
    spent = time.perf_counter()
    for _ in range(runs):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
        if time.perf_counter() - spent > budget and len(samples) >= 5:
            break
    return samples, result


def rows_of(result: Any) -> str:
    if isinstance(result, list):
        return f"{len(result)}"
    total = getattr(result, "total", None)
    exact = getattr(result, "total_exact", True)
    return f"{len(result.items)}/{total:,}{'' if exact else '+'}"


def bench(name: str, args: argparse.Namespace, drops: list[Callable[[], None]]) -> None:
    opener = open_sqlite if name == "sqlite" else open_postgres
    store, where, size, drop = opener(args)
    print(f"\n== {name}: {args.leads:,} leads, {args.leads:,} enrollments ({where}) ==")
    try:
        if args.reuse and filled(store, args.leads):
            print("reusing the filled database")
        else:
            if args.reuse:
                store.close()
                args.reuse = False
                store, where, size, drop = opener(args)
                args.reuse = True
            source = Path(args.dir) / f"load-{args.leads}.db"
            if name == "postgres" and not args.pg_direct and source.exists():
                from salesflow.stores.sqlite import SQLiteStore

                print(f"copying the SQLite fill {source} …", flush=True)
                sqlite_store = SQLiteStore(source)
                try:
                    if not filled(sqlite_store, args.leads):
                        raise SystemExit(f"{source} is not filled: run --stores sqlite first")
                    took = copy_to_postgres(source, store, f"sf_load_{args.leads}", args.pg)
                    print(f"  copy {took:,.1f} s; checking a sample …", flush=True)
                    check_copy(sqlite_store, store, args.leads)
                finally:
                    sqlite_store.close()
            else:
                print("filling …", flush=True)
                seconds = fill(store, args.leads, args.seed)
                mark_filled(store, args.leads, seconds)
                for what, took in seconds.items():
                    print(f"  {what:<12}{took:>9.1f} s  {args.leads / took:>9,.0f}/s")
        if name == "sqlite" or args.pg_direct:
            ensure_scores(store, args.leads, args.seed)
        print("analyzing …", flush=True)
        analyze(name, store, args)
        # A new connection plans with the fresh statistics.
        store.close()
        reuse, args.reuse = args.reuse, True
        store, where, size, drop = opener(args)
        args.reuse = reuse
        print(f"size: {size()}")
        if args.fill_only:
            return
        engine = Salesflow(store, clock=FakeClock(NOW))
        print(
            f"\n{'query (50 rows a page)':<30}{'rows/total':>16}{'median ms':>11}"
            f"{'p95 ms':>9}{'runs':>6}"
        )
        for what, run in cases(engine, args.deep_page, not args.no_exact):
            samples, result = measure(run, args.runs, args.budget)
            mark = "" if p95_ms(samples) <= 50 else "  > 50 ms"
            print(
                f"{what:<30}{rows_of(result):>16}{median_ms(samples):>11.2f}"
                f"{p95_ms(samples):>9.2f}{len(samples):>6}{mark}",
                flush=True,
            )
        print(f"\nrun_due's claim (plan of the query claim_due runs on {name}):")
        for line in claim_plan(name, store):
            print(f"  {line}")
        for label, lines in score_order_plans(name, store):
            print(f"\nthe score-ordered work list's join, {label} ({name}):")
            for line in lines:
                print(f"  {line}")
    finally:
        store.close()
        if args.drop:
            # After every store: PostgreSQL is filled from the SQLite file.
            drops.append(drop)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=1_000_000, help="leads (and enrollments)")
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument(
        "--pg",
        default=os.environ.get("SALESFLOW_PG_DSN"),
        help="PostgreSQL DSN (default: $SALESFLOW_PG_DSN)",
    )
    parser.add_argument("--dir", default="/tmp/sf-load", help="where the SQLite files live")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure an already filled database (fill it if it is not)",
    )
    parser.add_argument("--fill-only", action="store_true", help="fill, do not measure")
    parser.add_argument(
        "--pg-direct",
        action="store_true",
        help="fill PostgreSQL through the store too (slow) instead of copying the SQLite fill",
    )
    parser.add_argument("--drop", action="store_true", help="remove the databases at the end")
    parser.add_argument(
        "--no-exact", action="store_true", help="skip timing the views with an exact count"
    )
    parser.add_argument("--deep-page", type=int, default=200, help="the deep page timed")
    parser.add_argument("--runs", type=int, default=40, help="timed runs per query")
    parser.add_argument("--budget", type=float, default=6.0, help="seconds per query at most")
    parser.add_argument("--seed", type=int, default=20250106)
    args = parser.parse_args(argv)
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in args.stores if s not in ("sqlite", "postgres")]
    if unknown:
        parser.error(f"unknown store(s) {', '.join(unknown)}; choose sqlite or postgres")
    if args.leads < 100:
        parser.error("--leads must be at least 100")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "postgres" in args.stores and not args.pg:
        print("PostgreSQL skipped: set SALESFLOW_PG_DSN (or --pg DSN) to measure it too")
        args.stores.remove("postgres")
    print("salesflow load benchmark")
    for key, value in machine():
        print(f"  {key:<11}{value}")
    began = time.perf_counter()
    drops: list[Callable[[], None]] = []
    for name in args.stores:
        bench(name, args, drops)
    for drop in drops:
        drop()
    print(f"\ntotal wall time {time.perf_counter() - began:,.0f} s; load avg {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
