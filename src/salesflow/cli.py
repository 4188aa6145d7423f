"""The ``salesflow`` command: ``salesflow demo`` builds and shows a small book of leads.

The CLI is part of the imperative shell: it may read the environment and the
system clock; the library itself never does.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from salesflow.clock import FakeClock, SystemClock
from salesflow.conditions import field
from salesflow.demo_rules import show_rules
from salesflow.engine import Salesflow
from salesflow.errors import SalesflowError
from salesflow.lead import Lead
from salesflow.qualification import QualifyOptions
from salesflow.reports import ReportName
from salesflow.stores.url import open_store
from salesflow.values import Money, RecordKind
from salesflow.views import LeadView, ViewResult

__all__ = ["main"]

DEFAULT_DEMO_STORE = "sqlite:///.salesflow/demo.db"

_PEOPLE = [
    ("Ana", "Ruiz", "Contoso Ltd", "Madrid", "Spain"),
    ("Jonas", "Petraitis", "Baltic Freight", "Vilnius", "Lithuania"),
    ("Wei", "Zhang", "Lotus Components", "Shenzhen", "China"),
    ("Marta", "Kowalska", "Wisła Foods", "Kraków", "Poland"),
    ("Ivan", "Sokolov", "Volga Tools", "Kazan", "Russia"),
    ("Emma", "Smith", "Northwind Traders", "Leeds", "United Kingdom"),
    ("Liam", "Murphy", "Fabrikam", "Cork", "Ireland"),
    ("Sofia", "Rossi", "Adventure Works", "Milan", "Italy"),
    ("Noah", "Müller", "Alpine Ski House", "Munich", "Germany"),
    ("Olivia", "Dubois", "Coho Winery", "Bordeaux", "France"),
    ("Lukas", "Jankauskas", "Baltic Freight", "Kaunas", "Lithuania"),
    ("Chen", "Li", "Lotus Components", "Shanghai", "China"),
]
_TOPICS = [
    "10 laptops for the new office",
    "Fleet telematics pilot",
    "Annual support contract",
    "Warehouse scanners",
    "CRM rollout for 40 sellers",
    "Trade show follow-up",
]
_SOURCES = ["web", "trade_show", "partner", "employee_referral", "advertisement", "seminar"]
_SELLERS = ["alice", "bruno", "chen"]


def _build_book(engine: Salesflow, clock: FakeClock, rng: random.Random) -> list[Lead]:
    leads: list[Lead] = []
    book = _PEOPLE * 2
    spacing = timedelta(days=14) / len(book)
    for n, (first, last, company, city, country) in enumerate(book):
        clock.advance(spacing * rng.uniform(0.8, 1.0))
        domain = company.split()[0].lower().replace("ł", "l") + ".example"
        leads.append(
            engine.create_lead(
                topic=_TOPICS[n % len(_TOPICS)],
                first_name=first,
                last_name=last,
                company_name=company,
                email=f"{first.lower()}.{n}@{domain}",
                city=city,
                country=country,
                source=_SOURCES[n % len(_SOURCES)],
                rating=["hot", "warm", "cold"][rng.randrange(3)],
                owner_id=_SELLERS[n % len(_SELLERS)],
                estimated_value=Money(amount=Decimal(rng.randrange(5, 120)) * 1000, currency="EUR"),
                custom={"segment": "enterprise" if n % 4 == 0 else "mid-market"},
            )
        )
    return leads


def _work_the_book(engine: Salesflow, leads: list[Lead], clock: FakeClock) -> dict[str, int]:
    tally = {"qualified": 0, "disqualified": 0, "reactivated": 0, "linked": 0}
    for n, lead in enumerate(leads):
        clock.advance(timedelta(minutes=5))
        if n % 3 == 0:
            engine.mark_lead_contacted(lead.id)
            engine.add_activity(
                lead.ref,
                "phone_call",
                f"Discovery call with {lead.full_name}",
                owner_id=lead.owner_id,
            )
        if n % 4 == 1:
            result = engine.qualify_lead(lead.id, QualifyOptions())
            tally["qualified"] += 1
            tally["linked"] += int(not result.account_created and result.account is not None)
        elif n % 5 == 2:
            reason = ["lost", "cannot_contact", "no_longer_interested"][n % 3]
            engine.disqualify_lead(lead.id, reason)
            tally["disqualified"] += 1
    first_closed = next(lead for n, lead in enumerate(leads) if n % 5 == 2 and n % 4 != 1)
    engine.reactivate_lead(first_closed.id)
    tally["reactivated"] += 1
    return tally


def _cell(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


_COLUMNS: list[tuple[str, int, Callable[[Lead], Any]]] = [
    ("Name", 18, lambda lead: lead.full_name),
    ("Company", 18, lambda lead: lead.company_name),
    ("Topic", 28, lambda lead: lead.topic),
    ("Status", 12, lambda lead: lead.status.value),
    ("Reason", 20, lambda lead: lead.status_reason),
    ("Owner", 6, lambda lead: lead.owner_id),
    ("Created", 16, lambda lead: lead.created_at.strftime("%Y-%m-%d %H:%M")),
]


def format_view(title: str, result: ViewResult[Lead]) -> str:
    """Render one page of a lead view as a plain-text table."""
    lines = [f"{title} — {result.total} lead(s)"]
    header = "  ".join(name.ljust(width) for name, width, _ in _COLUMNS).rstrip()
    lines += [header, "-" * len(header)]
    for lead in result.items:
        lines.append(
            "  ".join(_cell(get(lead), width).ljust(width) for _, width, get in _COLUMNS).rstrip()
        )
    if result.total > len(result.items):
        lines.append(f"… {result.total - len(result.items)} more (page 1 of {result.pages})")
    if result.groups:
        counts = ", ".join(f"{g.value}: {g.count}" for g in result.groups)
        lines.append(f"groups by {result.group_by}: {counts}")
    return "\n".join(lines)


def print_report(name: str, *, store_url: str, days: int | None, out: TextIO) -> None:
    """Print report ``name`` (`salesflow.reports`) of the store at ``store_url``, over
    the leads created in the last ``days`` days when given."""
    engine = Salesflow(open_store(store_url))
    try:
        since = None if days is None else engine.now() - timedelta(days=days)
        print(engine.report(name, since=since).table(), file=out)
    finally:
        engine.close()


def _reset_sqlite_file(url: str) -> None:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = Path(url[len("sqlite:///") :])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def demo(store_url: str, *, seed: int = 7, out: TextIO | None = None) -> None:
    """Build a small realistic book of leads on ``store_url`` and print the views.

    A SQLite file at ``store_url`` is replaced, so every run shows the same book.
    """
    out = out if out is not None else sys.stdout
    _reset_sqlite_file(store_url)
    real_now = SystemClock().now()
    # The book is built on a fake clock over the last two weeks so that the weekly
    # views have something to show; the views are then read at the real time.
    clock = FakeClock(real_now - timedelta(days=14))
    ids = {kind: 0 for kind in RecordKind}

    def next_id(kind: RecordKind) -> str:
        ids[kind] += 1
        return f"{kind.value}-{ids[kind]:03d}"

    engine = Salesflow(open_store(store_url), clock=clock, ids=next_id)
    try:
        rng = random.Random(seed)
        leads = _build_book(engine, clock, rng)
        tally = _work_the_book(engine, leads, clock)
        clock.set(max(clock.now(), real_now))
        print(f"salesflow demo on {store_url}", file=out)
        print(
            f"created {len(leads)} leads; qualified {tally['qualified']} "
            f"({tally['linked']} linked to an existing account instead of a duplicate), "
            f"disqualified {tally['disqualified']}, reactivated {tally['reactivated']}\n",
            file=out,
        )
        for view in LeadView:
            user = "alice" if view is LeadView.MY_OPEN_LEADS else None
            title = view.label + (" (alice)" if user else "")
            result = engine.lead_view(view, user_id=user, page_size=8)
            print(format_view(title, result) + "\n", file=out)
        hot = engine.lead_view("open_leads", search="baltic", group_by="rating", page_size=8)
        print(format_view("Open leads matching 'baltic', grouped by rating", hot), file=out)
        qualified = engine.lead_view("closed_leads", where=field("status").eq("qualified"))
        for lead in qualified.items[:1]:
            timeline = engine.timeline(lead.ref)
            print(
                f"\n{lead.full_name}'s lead was qualified into account "
                f"{lead.qualified_account_id}, contact {lead.qualified_contact_id} and "
                f"opportunity {lead.qualifying_opportunity_id}; its timeline has "
                f"{len(timeline)} activit{'y' if len(timeline) == 1 else 'ies'}.",
                file=out,
            )
        show_rules(engine, clock, out)
    finally:
        engine.close()
    print("\nA short simulation of the outbound prospecting sequence:", file=out)
    simulate_template("high_volume_outbound_prospecting", records=20_000, seed=seed, out=out)


_DEFAULT_MODEL = {"answer_rate": 0.3, "open_rate": 0.4, "reply_rate": 0.1}


def _progress_bar(stream: TextIO) -> Callable[[int, int], None]:
    """A one-line progress bar on ``stream`` (redrawn in place on a terminal)."""

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        bar = "#" * filled + "." * (width - filled)
        end = "\n" if done >= total else ""
        if stream.isatty() or done >= total:
            stream.write(f"\r[{bar}] {done:,}/{total:,} records{end}")
            stream.flush()

    return show


def simulate_template(
    name: str,
    *,
    records: int,
    seed: int,
    store_url: str | None = None,
    answer_rate: float = 0.3,
    open_rate: float = 0.4,
    reply_rate: float = 0.1,
    out: TextIO | None = None,
    progress: TextIO | None = None,
) -> None:
    """Run ``records`` simulated records through the template ``name`` and print the
    funnel: in memory with the Monte Carlo runner, or through the engine on
    ``store_url`` when given (every activity and enrollment is written there)."""
    from salesflow.sequences.templates import load_template
    from salesflow.testing.engine_run import run_on_engine
    from salesflow.testing.montecarlo import run_monte_carlo
    from salesflow.testing.response import ResponseModel

    out = out if out is not None else sys.stdout
    definition = load_template(name)
    model = ResponseModel(
        call_outcomes={"answered": answer_rate, "no_answer": 1 - answer_rate},
        opened=open_rate,
        replied=min(reply_rate, open_rate),
    )
    start = SystemClock().now().replace(microsecond=0)
    bar = _progress_bar(progress) if progress is not None and records >= 10_000 else None
    if store_url is None:
        funnel = run_monte_carlo(
            definition,
            records=records,
            model=model,
            seed=seed,
            start=start,
            owners=_SELLERS,
            progress=bar,
        )
        where = "in memory (Monte Carlo runner)"
    else:
        if progress is not None:
            bar = _progress_bar(progress)
        engine = Salesflow(open_store(store_url), clock=FakeClock(start))
        try:
            engine.publish_sequence(definition)
            funnel = run_on_engine(
                engine,
                definition.id,
                records=records,
                model=model,
                seed=seed,
                owners=_SELLERS,
                progress=bar,
            )
        finally:
            engine.close()
        where = f"through the engine on {store_url}"
    print(
        f"simulated {records:,} records {where}; calls answered {answer_rate:.0%}, emails "
        f"opened {open_rate:.0%}, replied {reply_rate:.0%}, seed {seed}\n",
        file=out,
    )
    print(funnel.table(), file=out)


def import_file(
    kind: str,
    path: str,
    *,
    store_url: str,
    mapping: dict[str, str],
    out: TextIO,
    progress: TextIO | None = None,
) -> None:
    """Import the leads or contacts of a CSV file into ``store_url`` and print the report."""
    engine = Salesflow(open_store(store_url))
    shown = _progress_rows(progress) if progress is not None else None
    try:
        report = engine.import_csv(
            Path(path), kind=kind.rstrip("s"), mapping=mapping or None, progress=shown
        )
    finally:
        engine.close()
    print(f"imported {path} into {store_url}", file=out)
    print(report.table(), file=out)


def _progress_rows(stream: TextIO) -> Callable[[int], None]:
    """A row counter redrawn in place on a terminal."""

    def show(done: int) -> None:
        if stream.isatty():
            stream.write(f"\r{done:,} rows")
            stream.flush()

    return show


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, field_name = pair.partition("=")
        if not sep or not column or not field_name:
            raise SalesflowError(
                f"--map {pair!r}: write COLUMN=FIELD, e.g. --map 'Surname=last_name'"
            )
        mapping[column] = field_name
    return mapping


def explain_score(lead_id: str, *, store_url: str, out: TextIO) -> None:
    """Print the lead's current score under each model and why."""
    engine = Salesflow(open_store(store_url))
    try:
        scores = engine.lead_scores(lead_id)
    finally:
        engine.close()
    if not scores:
        print(f"lead {lead_id!r} has no score (no active model scores it)", file=out)
        return
    for score in scores:
        ready = ", sales-ready" if score.sales_ready else ""
        grade = f", grade {score.grade}" if score.grade else ""
        print(
            f"{score.model_id} v{score.model_version}: {score.points} points{grade}{ready} "
            f"(scored {score.scored_at.isoformat()})",
            file=out,
        )
        for hit in score.explanation:
            times = f" x{hit.occurrences}" if hit.occurrences != 1 else ""
            shown = f"  [{', '.join(hit.interactions)}]" if hit.interactions else ""
            print(f"  {hit.points:+6d}  {hit.rule_name}{times}{shown}", file=out)
        if score.next_change_at is not None:
            print(f"  changes by itself at {score.next_change_at.isoformat()}", file=out)


def list_templates(out: TextIO) -> None:
    """Print the standard sequence templates: name, record type, steps, days."""
    from salesflow.sequences.templates import TEMPLATES, load_template
    from salesflow.sequences.validation import stats

    rows = []
    for name in TEMPLATES:
        definition = load_template(name)
        figures = stats(definition)
        rows.append(
            (name, definition.record_type.value, str(figures.steps), f"{figures.longest_days:g}")
        )
    header = ("Template", "Record type", "Steps", "Days")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i >= 2 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(header), file=out)
    print("-" * len(line(header)), file=out)
    for row in rows:
        print(line(row), file=out)


def show_template(name: str, fmt: str, out: TextIO) -> None:
    """Print one template as Mermaid, JSON or TOML."""
    from salesflow.sequences.io import dumps_json, dumps_toml
    from salesflow.sequences.render import mermaid
    from salesflow.sequences.templates import load_template

    definition = load_template(name)
    text = {"mermaid": mermaid, "json": dumps_json, "toml": dumps_toml}[fmt](definition)
    print(text.rstrip("\n"), file=out)


def _add_worker_parser(commands: Any) -> None:
    """The ``salesflow worker`` subcommand (see `salesflow.worker`)."""
    worker = commands.add_parser("worker", help="perform due items until SIGTERM")
    worker.add_argument(
        "--store",
        default=os.environ.get("SALESFLOW_STORE"),
        help="store URL (default: $SALESFLOW_STORE)",
    )
    worker.add_argument("--batch", type=int, default=100, help="items per run_due call (100)")
    worker.add_argument(
        "--poll", type=float, default=5.0, help="longest sleep when idle, seconds (5)"
    )
    worker.add_argument(
        "--heartbeat", type=float, default=60.0, help="seconds between heartbeat logs (60)"
    )
    worker.add_argument(
        "--until-idle", action="store_true", help="perform what is due now, then exit"
    )
    worker.add_argument(
        "--outbox-grace",
        type=float,
        default=60.0,
        help="with an engine made with outbox=True, publish outbox entries older than "
        "this many seconds that no process delivered (60)",
    )
    worker.add_argument(
        "--engine",
        default=None,
        metavar="MODULE:FUNCTION",
        help="build the engine (sink, handlers) as FUNCTION(store); default: a plain one",
    )
    worker.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (INFO)",
    )


def _run_worker(args: argparse.Namespace) -> int:
    from salesflow.worker import StopRequests, load_engine_factory, serve, stopping_on_signals

    if not args.store:
        raise SalesflowError("salesflow worker needs --store URL or $SALESFLOW_STORE")
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
        stream=sys.stderr,
    )
    factory = None if args.engine is None else load_engine_factory(args.engine)
    stops = StopRequests()
    # from before the store opens: a SIGTERM while starting is a clean stop too
    with stopping_on_signals(stops):
        return serve(
            open_store(args.store),
            batch=args.batch,
            poll=args.poll,
            heartbeat=args.heartbeat,
            until_idle=args.until_idle,
            engine_factory=factory,
            stops=stops,
            outbox_grace=args.outbox_grace,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``salesflow`` command."""
    parser = argparse.ArgumentParser(prog="salesflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="build a small book of leads and show the views")
    run_demo.add_argument(
        "--store",
        default=os.environ.get("SALESFLOW_STORE", DEFAULT_DEMO_STORE),
        help=f"store URL (default: $SALESFLOW_STORE or {DEFAULT_DEMO_STORE})",
    )
    run_demo.add_argument("--seed", type=int, default=7, help="random seed of the demo data")
    templates = commands.add_parser("templates", help="the standard sequence templates")
    template_commands = templates.add_subparsers(dest="template_command")
    show = template_commands.add_parser("show", help="print one template")
    show.add_argument("name", help="template name, as `salesflow templates` lists them")
    formats = show.add_mutually_exclusive_group()
    for fmt in ("mermaid", "json", "toml"):
        formats.add_argument(
            f"--{fmt}", dest="format", action="store_const", const=fmt, help=f"as {fmt}"
        )
    sim = commands.add_parser("simulate", help="run many simulated records through a template")
    sim.add_argument("name", help="template name, as `salesflow templates` lists them")
    sim.add_argument("--records", type=int, default=10_000, help="how many records (10000)")
    sim.add_argument("--seed", type=int, default=1, help="random seed (1)")
    sim.add_argument(
        "--store",
        default=None,
        help="run through the engine on this store URL instead of in memory",
    )
    for option, default in _DEFAULT_MODEL.items():
        sim.add_argument(
            f"--{option.replace('_', '-')}",
            type=float,
            default=default,
            help=f"probability, 0-1 (default {default})",
        )
    imports = commands.add_parser("import", help="import leads or contacts from a CSV file")
    imports.add_argument("kind", choices=["leads", "contacts"], help="what the rows are")
    imports.add_argument("file", help="the CSV file (UTF-8, a header row)")
    imports.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help="send a column to a field (repeatable); columns named like a field need none",
    )
    imports.add_argument(
        "--store",
        default=os.environ.get("SALESFLOW_STORE", DEFAULT_DEMO_STORE),
        help=f"store URL (default: $SALESFLOW_STORE or {DEFAULT_DEMO_STORE})",
    )
    scores = commands.add_parser("score", help="a lead's scores")
    scores.add_argument("lead_id", help="the lead")
    scores.add_argument(
        "--explain", action="store_true", help="list the rules that fired (always shown)"
    )
    scores.add_argument(
        "--store",
        default=os.environ.get("SALESFLOW_STORE", DEFAULT_DEMO_STORE),
        help=f"store URL (default: $SALESFLOW_STORE or {DEFAULT_DEMO_STORE})",
    )
    reports = commands.add_parser("report", help="a report on the leads")
    reports.add_argument("name", choices=[r.value for r in ReportName], help="which report")
    reports.add_argument(
        "--days", type=int, default=None, help="only leads created in the last N days"
    )
    reports.add_argument(
        "--store",
        default=os.environ.get("SALESFLOW_STORE", DEFAULT_DEMO_STORE),
        help=f"store URL (default: $SALESFLOW_STORE or {DEFAULT_DEMO_STORE})",
    )
    _add_worker_parser(commands)
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            demo(args.store, seed=args.seed)
        elif args.command == "simulate":
            simulate_template(
                args.name,
                records=args.records,
                seed=args.seed,
                store_url=args.store,
                answer_rate=args.answer_rate,
                open_rate=args.open_rate,
                reply_rate=args.reply_rate,
                progress=sys.stderr,
            )
        elif args.command == "report":
            print_report(args.name, store_url=args.store, days=args.days, out=sys.stdout)
        elif args.command == "score":
            explain_score(args.lead_id, store_url=args.store, out=sys.stdout)
        elif args.command == "import":
            import_file(
                args.kind,
                args.file,
                store_url=args.store,
                mapping=_mapping(args.map),
                out=sys.stdout,
                progress=sys.stderr,
            )
        elif args.command == "worker":
            return _run_worker(args)
        elif args.command == "templates" and args.template_command == "show":
            show_template(args.name, args.format or "toml", sys.stdout)
        elif args.command == "templates":
            list_templates(sys.stdout)
    except SalesflowError as error:
        print(f"salesflow: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
