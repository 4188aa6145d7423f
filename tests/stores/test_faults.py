"""A failed command leaves no partial state, on every store, for every command family.

Each command runs in a world built through a `FaultyStore`: first with a fault at its
1st write, then at its 2nd, … until a run meets no fault (its write count W is then
known). Every failed run must raise `StoreError`, publish no event, and leave the
store exactly as before: the `store_snapshot` read through the unit-of-work API and
the raw stored rows (the memory store's dump, every SQL table) are compared. The
engine that saw all the failures then runs the command cleanly, and the result must
equal a clean run on a fresh world (a failed unit must not leave stale engine caches
behind either).

PostgreSQL runs when ``SALESFLOW_PG_DSN`` is set, each world in its own schema.
"""

from __future__ import annotations

import inspect
import io
import itertools
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from salesflow.clock import FakeClock
from salesflow.conditions import field as where
from salesflow.engine import Salesflow
from salesflow.errors import StoreError, ValidationError
from salesflow.events import ListSink
from salesflow.intake import Channel, Submission
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.pipelines import Pipeline, Stage
from salesflow.pricing import OpportunityLine, PriceList, Product
from salesflow.routing_policy import FollowUp, Member, RoundRobin, RoutingPolicy, RoutingRule, Team
from salesflow.rules import AutomationRule, ScheduleActivity, UpdateField
from salesflow.scoring import ScoringModel, ScoringRule
from salesflow.sequences.definition import (
    ActivityStep,
    EndStep,
    SequenceDefinition,
    Span,
    WaitStep,
)
from salesflow.stores.base import Query, Store, UnitOfWork
from salesflow.stores.memory import MemoryStore
from salesflow.stores.sqlite import SQLiteStore
from salesflow.testing.faults import READS, WRITES, FaultyStore, store_snapshot
from salesflow.values import Money, RecordKind

DSN = os.environ.get("SALESFLOW_PG_DSN", "")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday

# --- the wrapper itself -------------------------------------------------------------------


def test_every_unit_of_work_method_is_classified_as_read_or_write() -> None:
    declared = {
        name
        for name, member in vars(UnitOfWork).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }
    assert not READS & WRITES
    assert declared - {"commit", "savepoint"} == READS | WRITES


def test_the_nth_write_fails_and_the_unit_rolls_back() -> None:
    faulty = FaultyStore(MemoryStore(), fail_on=2)
    engine = Salesflow(faulty, clock=FakeClock(T0))
    engine.create_lead(topic="One", last_name="First")  # write 1
    with pytest.raises(StoreError, match="injected fault at write 2"):
        engine.create_lead(topic="Two", last_name="Second")
    assert faulty.writes == 2
    assert faulty.faults == 1
    engine.create_lead(topic="Three", last_name="Third")  # a one-off fault: write 3 works
    with faulty.unit_of_work() as uow:
        assert sorted(r.topic for r in uow.query(Lead, _all()).items) == ["One", "Three"]


def test_a_persistent_fault_fails_every_later_write() -> None:
    faulty = FaultyStore(MemoryStore(), persistent=True)
    engine = Salesflow(faulty, clock=FakeClock(T0))
    faulty.fail_at(1)
    for _ in range(2):
        with pytest.raises(StoreError, match="injected fault"):
            engine.create_lead(topic="Never", last_name="Stored")
    faulty.fail_at(None)
    engine.create_lead(topic="Stored", last_name="At last")
    assert store_snapshot(faulty)["records"]["lead"][0].topic == "Stored"


def test_a_fault_after_the_write_is_rolled_back_too() -> None:
    inner = MemoryStore()
    faulty = FaultyStore(inner, fail_on=1, after_write=True)
    with pytest.raises(StoreError), faulty.unit_of_work() as uow:
        uow.put_state("k", "a", {"n": 1}, expected_version=None, now=T0)
    with inner.unit_of_work() as uow:
        assert uow.get_state("k", "a") is None
    assert faulty.kinds_seen()["state_kinds"] == {"k"}


def test_an_unclassified_method_is_refused_rather_than_passed_through() -> None:
    faulty = FaultyStore(MemoryStore())  # its units have private helpers: not the protocol
    with faulty.unit_of_work() as uow, pytest.raises(AttributeError, match="READS or WRITES"):
        uow._due_current("x")  # type: ignore[attr-defined]


def test_bad_fail_on_is_refused() -> None:
    for bad in (0, True, "2"):
        with pytest.raises(ValidationError, match="whole number >= 1"):
            FaultyStore(MemoryStore(), fail_on=bad)  # type: ignore[arg-type]


def _all() -> Query:
    return Query(limit=10_000)


# --- stores -------------------------------------------------------------------------------


@dataclass
class Backend:
    """Opens fresh stores of one kind and reads their raw stored rows."""

    name: str
    open: Callable[[], Store]
    raw: Callable[[Store], Any]


def _memory_raw(store: Store) -> Any:
    assert isinstance(store, MemoryStore)
    return store.dump()


def _sqlite_raw(path: Path) -> Any:
    with sqlite3.connect(path) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}


def _pg_raw(schema: str) -> Any:
    import psycopg

    with psycopg.connect(DSN) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "ORDER BY table_name",
                [schema],
            )
        ]
        return {
            t: sorted(map(repr, conn.execute(f'SELECT * FROM "{schema}"."{t}"').fetchall()))
            for t in tables
        }


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", MemoryStore, _memory_raw)
        return
    if request.param == "sqlite":
        paths: dict[int, Path] = {}
        opened = itertools.count()

        def open_sqlite() -> Store:
            # A counter, not len(paths): a closed store's id() may be reused by the
            # next one, which would then be given the same file again.
            path = tmp_path / f"w{next(opened)}.db"
            store = SQLiteStore(path)
            paths[id(store)] = path
            return store

        yield Backend("sqlite", open_sqlite, lambda s: _sqlite_raw(paths[id(s)]))
        return
    if not DSN:
        pytest.skip("SALESFLOW_PG_DSN is not set; the PostgreSQL cases need a server")
    from salesflow.stores.postgres import PostgresStore

    schemas: list[str] = []

    def open_pg() -> Store:
        schemas.append(f"sf_fault_{uuid4().hex[:10]}")
        return PostgresStore(DSN, schema=schemas[-1])

    def pg_raw(store: Store) -> Any:
        assert isinstance(store, PostgresStore)
        return _pg_raw(store.schema)

    yield Backend("postgres", open_pg, pg_raw)
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        for name in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# --- worlds -------------------------------------------------------------------------------


class World:
    """A small CRM on a `FaultyStore`: an account, a contact and an open lead.

    Ids are deterministic and restart at the same number before each run of the
    command under test, so a clean run after failed ones can be compared with a
    clean run on a fresh world.
    """

    def __init__(self, backend: Backend, *, persistent: bool, after_write: bool) -> None:
        self.backend = backend
        self.faulty = FaultyStore(backend.open(), persistent=persistent, after_write=after_write)
        self.clock = FakeClock(T0)
        self.sink = ListSink()
        self._counter = itertools.count(1)
        self.engine = self.new_engine()
        self.account = self.engine.create_account(name="Contoso")
        self.contact = self.engine.create_contact(
            first_name="Ana", last_name="Ruiz", email="ana@contoso.example"
        )
        self.lead = self.engine.create_lead(
            topic="Laptops",
            last_name="Ozols",
            first_name="Janis",
            email="janis@baltic.example",
            company_name="Baltic Trade",
            country="Lithuania",
        )

    def new_engine(self) -> Salesflow:
        def ids(kind: RecordKind) -> str:
            return f"{kind.value}-{next(self._counter)}"

        return Salesflow(
            self.faulty,
            clock=self.clock,
            sink=self.sink,
            ids=ids,
            due_ids=lambda: f"due-{next(self._counter)}",
            enrollment_ids=lambda: f"enr-{next(self._counter)}",
        )

    def restart_ids(self) -> None:
        self._counter = itertools.count(1000)

    def snapshot(self) -> tuple[Any, Any]:
        kinds = self.faulty.kinds_seen()
        return store_snapshot(self.faulty.inner, **kinds), self.backend.raw(self.faulty.inner)

    def close(self) -> None:
        self.faulty.close()


Setup = Callable[[World], dict[str, Any]]
Run = Callable[[Salesflow, dict[str, Any]], Any]


@dataclass(frozen=True)
class Command:
    name: str
    run: Run
    setup: Setup = lambda w: {}
    retries: bool = False
    """The command retries in new units (run_due, import_csv): faults are persistent."""
    bug: str | None = None
    """A known bug that makes the command leave state or swallow the fault (xfail)."""


def _sequence() -> SequenceDefinition:
    return SequenceDefinition(
        id="nurture",
        name="Nurture",
        record_type="lead",
        entry="task",
        steps=[
            ActivityStep(id="task", kind="task", subject="Prepare", next="wait"),
            WaitStep(id="wait", span=Span(days=2), next="call"),
            ActivityStep(id="call", kind="call", subject="Call the lead", next="end"),
            EndStep(id="end", outcome="done"),
        ],
    )


def _connected(w: World) -> dict[str, Any]:
    w.engine.publish_sequence(_sequence())
    return {"enrollment": w.engine.connect(w.lead, "nurture").id}


def _waiting(w: World) -> dict[str, Any]:
    ctx = _connected(w)
    w.engine.complete_step(ctx["enrollment"], "task")
    w.clock.advance(timedelta(days=3))
    return ctx


def _scoring_model() -> ScoringModel:
    return ScoringModel(
        id="marketing",
        name="Marketing",
        score_leads_without_parent=True,
        sales_ready_threshold=20,
        rules=[
            ScoringRule(
                id="lt",
                name="In Lithuania",
                conditions=[where("lead.country").eq("Lithuania")],
                points=20,
            )
        ],
    )


BALTIC = Team(id="baltic", name="Baltic", members=[Member(user_id="ana"), Member(user_id="jo")])


def _policy() -> RoutingPolicy:
    return RoutingPolicy(
        id="default",
        name="Default routing",
        fallback_owner_id="manager",
        rules=[
            RoutingRule(
                id="baltics",
                name="Baltics",
                condition=where("country").in_(["Lithuania", "Latvia"]),
                target=RoundRobin(team_id="baltic"),
                follow_ups=[
                    FollowUp(kind="phone_call", subject="Call the lead", due_in=Span(hours=1))
                ],
            )
        ],
    )


def _team_and_policy(w: World) -> dict[str, Any]:
    w.engine.save_team(BALTIC)
    w.engine.publish_routing_policy(_policy())
    return {}


def _pipeline(*, rules: bool = True) -> Pipeline:
    """Three stages; with ``rules``, two immediate rules on entering ``approval``."""
    return Pipeline(
        id="sales",
        name="Sales",
        stages=[
            Stage(id="new", name="New"),
            Stage(id="approval", name="Approval"),
            Stage(id="won", name="Won", kind="won"),
        ],
        rules=[
            AutomationRule(
                id="call",
                stage="approval",
                action=ScheduleActivity(kind="phone_call", subject="Call about {name}"),
            ),
            AutomationRule(
                id="likely", stage="approval", action=UpdateField(field="probability", value=75)
            ),
        ]
        if rules
        else [],
    )


def _deal(w: World, *, rules: bool = True) -> dict[str, Any]:
    w.engine.publish_pipeline(_pipeline(rules=rules))
    deal = w.engine.create_deal("sales", name="10 laptops", account_id=w.account.id)
    return {"deal": deal.id}


def _eur(amount: str) -> Money:
    return Money(amount=amount, currency="EUR")


def _priced_deal(w: World) -> dict[str, Any]:
    w.engine.save_product(Product(id="laptop", name="Laptop"))
    w.engine.save_price_list(
        PriceList(id="eu", name="Europe", currency="EUR", items={"laptop": _eur("1199.00")})
    )
    ctx = _deal(w)
    w.engine.set_opportunity_lines(
        ctx["deal"],
        [OpportunityLine(product_id="laptop", quantity=Decimal(10))],
        price_list_id="eu",
    )
    return ctx


def _active_quote(w: World) -> dict[str, Any]:
    ctx = _priced_deal(w)
    quote = w.engine.create_quote(ctx["deal"], name="Offer")
    w.engine.activate_quote(quote.id)
    return {**ctx, "quote": quote.id}


def _deal_ref(rules: bool) -> Setup:
    def setup(w: World) -> dict[str, Any]:
        ctx = _deal(w, rules=rules)
        return {"ref": w.engine.get(Opportunity, ctx["deal"]).ref}

    return setup


CSV = (
    "first_name,last_name,email,company_name,topic\n"
    "Janis,Ozols,janis@baltic.example,Baltic Trade,More laptops\n"  # updates the lead
    "Mia,Berg,mia@nordic.example,Nordic,Phones\n"
    "Tom,Lind,tom@nordic.example,Nordic,Tablets\n"
)


COMMANDS = [
    Command("create_lead", lambda e, c: e.create_lead(topic="Phones", last_name="Berg")),
    Command(
        "update_lead",
        lambda e, c: e.update_lead(c["lead"], topic="Tablets"),
        lambda w: {"lead": w.lead.id},
    ),
    Command("qualify_lead", lambda e, c: e.qualify_lead(c["lead"]), lambda w: {"lead": w.lead.id}),
    Command(
        "disqualify_lead", lambda e, c: e.disqualify_lead(c["lead"]), lambda w: {"lead": w.lead.id}
    ),
    Command(
        "create_opportunity",
        lambda e, c: e.create_opportunity(name="Phones", account_id=c["account"]),
        lambda w: {"account": w.account.id},
    ),
    Command(
        "win_opportunity",
        lambda e, c: e.win_opportunity(c["opp"]),
        lambda w: {"opp": w.engine.create_opportunity(name="Phones").id},
    ),
    Command(
        "add_activity",
        lambda e, c: e.add_activity(c["lead"], "phone_call", "Call Janis"),
        lambda w: {"lead": w.lead.ref},
    ),
    Command(
        "complete_activity",
        lambda e, c: e.complete_activity(c["activity"]),
        lambda w: {"activity": w.engine.add_activity(w.lead, "task", "Send the offer").id},
    ),
    Command("publish_sequence", lambda e, c: e.publish_sequence(_sequence())),
    Command(
        "connect",
        lambda e, c: e.connect(c["lead"], "nurture"),
        lambda w: {"lead": w.lead.ref, "_": w.engine.publish_sequence(_sequence())},
    ),
    Command("complete_step", lambda e, c: e.complete_step(c["enrollment"], "task"), _connected),
    Command("run_due", lambda e, c: e.run_due(), _waiting, retries=True),
    Command(
        "intake",
        lambda e, c: e.intake(
            Submission(
                channel=Channel.LANDING_PAGE,
                fields={"last_name": "Berg", "email": "mia@nordic.example", "topic": "Phones"},
            )
        ),
    ),
    Command("import_csv", lambda e, c: e.import_csv(io.StringIO(CSV)), retries=True),
    Command("publish_scoring_model", lambda e, c: e.publish_scoring_model(_scoring_model())),
    Command("save_team", lambda e, c: e.save_team(BALTIC)),
    Command(
        "publish_routing_policy",
        lambda e, c: e.publish_routing_policy(_policy()),
        lambda w: {"_": w.engine.save_team(BALTIC)},
    ),
    Command(
        "route_lead",
        lambda e, c: e.route_lead(c["lead"]),
        lambda w: {**_team_and_policy(w), "lead": w.lead.id},
    ),
    Command("publish_pipeline", lambda e, c: e.publish_pipeline(_pipeline())),
    Command(
        "create_deal",
        lambda e, c: e.create_deal("sales", name="Phones", stage_id="approval"),
        lambda w: {"_": w.engine.publish_pipeline(_pipeline(rules=False))},
    ),
    Command(
        "create_deal_with_rules",
        lambda e, c: e.create_deal("sales", name="Phones", stage_id="approval"),
        lambda w: {"_": w.engine.publish_pipeline(_pipeline())},
    ),
    Command("move_stage", lambda e, c: e.move_stage(c["ref"], "approval"), _deal_ref(False)),
    Command(
        "move_stage_with_rules",
        lambda e, c: e.move_stage(c["ref"], "approval"),
        _deal_ref(True),
    ),
    Command("create_quote", lambda e, c: e.create_quote(c["deal"], name="Offer"), _priced_deal),
    Command("win_quote", lambda e, c: e.win_quote(c["quote"]), _active_quote),
]


def _clean_run(backend: Backend, command: Command) -> tuple[Any, Any]:
    """The command run once without faults on a fresh world: snapshot and events."""
    world = World(backend, persistent=False, after_write=False)
    try:
        ctx = command.setup(world)
        world.restart_ids()
        world.sink.events.clear()
        command.run(world.new_engine(), ctx)
        return world.snapshot()[0], list(world.sink.events)
    finally:
        world.close()


def fault_every_write(world: World, command: Command, ctx: dict[str, Any]) -> tuple[Any, Any]:
    """Run ``command`` with a fault at its 1st write, its 2nd, … on one engine, checking
    that each failed run changed nothing, until a run meets no fault.

    Returns:
        The snapshot and the events of that last, clean run.
    """
    before = world.snapshot()
    engine = world.new_engine()
    n = 0
    while True:
        n += 1
        assert n < 200, f"{command.name} never ran without meeting a fault"
        world.restart_ids()
        world.sink.events.clear()
        faults, start = world.faulty.faults, world.faulty.writes
        world.faulty.fail_at(n)
        try:
            result = command.run(engine, ctx)
        except StoreError as error:
            failure = str(error)
        else:
            if world.faulty.faults == faults:
                break  # no write failed: the command is done
            _assert_fault_reported(command, result)
            failure = "injected fault (absorbed)"
        assert "injected fault" in failure
        assert world.faulty.faults > faults
        assert world.sink.events == [], f"{command.name} published events of a failed unit"
        assert world.snapshot() == before, f"{command.name} left state after write {n} failed"
    writes = world.faulty.writes - start
    assert writes == n - 1 >= 1, f"{command.name}: {writes} writes, {n - 1} faults tried"
    after = world.snapshot()
    assert after != before
    return after[0], list(world.sink.events)


@pytest.mark.parametrize("after_write", [False, True], ids=["fail-before", "fail-after"])
@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_a_command_failing_at_any_write_leaves_no_trace(
    request: pytest.FixtureRequest, backend: Backend, command: Command, after_write: bool
) -> None:
    if command.bug is not None:
        request.applymarker(pytest.mark.xfail(reason=command.bug, strict=True))
    world = World(backend, persistent=command.retries, after_write=after_write)
    try:
        done = fault_every_write(world, command, command.setup(world))
    finally:
        world.close()
    # the engine that met every fault ends where a fresh one does
    assert done == _clean_run(backend, command)


class _KeepsFailedWrites:
    """A broken store: a unit that ends without commit keeps its writes anyway."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        with self.inner.unit_of_work(read_only=read_only) as uow:
            try:
                yield uow
            finally:
                uow.commit()

    def migrate(self) -> int:
        return self.inner.migrate()

    def close(self) -> None:
        self.inner.close()


def test_the_check_finds_a_store_that_keeps_a_failed_units_writes(backend: Backend) -> None:
    broken = Backend(
        backend.name,
        lambda: _KeepsFailedWrites(backend.open()),
        lambda store: backend.raw(store.inner),  # type: ignore[attr-defined]
    )
    command = next(c for c in COMMANDS if c.name == "qualify_lead")
    world = World(broken, persistent=False, after_write=False)
    try:
        with pytest.raises(AssertionError, match="left state after write"):
            fault_every_write(world, command, command.setup(world))
    finally:
        world.close()


def _assert_fault_reported(command: Command, result: Any) -> None:
    """A command that retries in new units may absorb a store fault: `import_csv`
    reports each row whose unit failed as rejected (with the fault as its reason)."""
    assert command.name == "import_csv", f"{command.name} swallowed a store fault"
    assert result.created == result.updated == result.unchanged == 0
    assert result.rejected
    assert all("injected fault" in r.reason for r in result.rejected)


def _copy_world(backend: Backend) -> tuple[World, Opportunity]:
    """A deal in ``sales``, whose ``won`` stage copies it into ``delivery``."""
    from salesflow.rules import CopyDeal

    world = World(backend, persistent=False, after_write=False)
    world.engine.publish_pipeline(
        Pipeline(
            id="delivery",
            name="Delivery",
            stages=[Stage(id="prep", name="Prep"), Stage(id="done", name="Done", kind="won")],
        )
    )
    world.engine.publish_pipeline(
        Pipeline(
            id="sales",
            name="Sales",
            stages=[Stage(id="new", name="New"), Stage(id="won", name="Won", kind="won")],
            rules=[AutomationRule(id="copy", stage="won", action=CopyDeal(pipeline="delivery"))],
        )
    )
    return world, world.engine.create_deal("sales", name="10 laptops")


def test_a_copy_rule_that_meets_a_fault_leaves_no_half_copied_deal(backend: Backend) -> None:
    half_copied: list[int] = []
    for n in range(1, 50):
        world, deal = _copy_world(backend)
        try:
            world.faulty.fail_at(n)
            try:
                world.engine.move_stage(deal, "won")
            except StoreError:
                continue
            if not world.faulty.faults:
                break  # a clean run: every write was tried
            with world.faulty.inner.unit_of_work() as uow:
                copies = [o for o in uow.query(Opportunity, _all()).items if o.id != deal.id]
            if any(world.engine.pipeline_item(o) is None for o in copies):
                half_copied.append(n)
        finally:
            world.close()
    assert half_copied == [], "a fault at these writes committed a copy outside any pipeline"
