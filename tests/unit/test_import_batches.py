"""A batched CSV import (`IntakeBatch`: strategies resolved once, email keys looked up
together, new people costing no lookup) ends exactly as taking each row through
`intake` on its own: same report, same records, on every store."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.unit import intake_runs as runs
from tests.unit.intake_runs import snapshot

from salesflow.clock import FakeClock
from salesflow.commands import imports as import_commands
from salesflow.commands.imports import IntakeBatch
from salesflow.commands.work import Work
from salesflow.engine import Salesflow
from salesflow.imports import read_rows
from salesflow.intake import IntakeOptions
from salesflow.lead import Lead
from salesflow.matching import MatchField, MatchingStrategy
from salesflow.party import Contact
from salesflow.stores.base import Store
from salesflow.stores.memory import MemoryStore
from salesflow.stores.sqlite import SQLiteStore
from salesflow.stores.url import open_store
from salesflow.values import RecordKind

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)

ROWS = [
    # new people, the second one twice in one batch (the repeat updates it)
    "Ana,Ruiz,ana@new.example,,Contoso,10",
    "Bo,Lind,bo@new.example,,Lind AB,20",
    "Bo,Lind,BO@new.example ,,Lind Holding,20",
    # the seeded contact (a child lead is created and linked) and its own lead
    "Cy,Park,cy@known.example,,Park Co,30",
    "Cy,Park,cy@known.example,webinar,Park Co,31",
    # the seeded open lead on form webinar: updated; on another form: a new lead
    "Di,Moss,di@known.example,webinar,Moss Ltd,40",
    "Di,Moss,di@known.example,expo,Moss Ltd,40",
    # the seeded closed lead: left alone or a new one, as intake decides
    "Ed,Vance,ed@closed.example,,Vance,50",
    # no last name: refused (its batch is taken again row by row)
    "Fay,,fay@new.example,,Fay Inc,60",
    # a cell that does not parse: rejected before intake
    "Gus,Hale,gus@new.example,,Hale,many",
    # no email: matches nobody
    "Hal,Ito,,,Ito KK,70",
    "Hal,Ito,,,Ito KK,70",
    # the same person again, in a later batch
    "Ana,Ruiz,Ana@New.example,,Contoso Group,11",
    "Bo,Lind,bo@new.example,webinar,Lind AB,22",
    "Cy,Park,cy@known.example,,Park Co,30",
    "Ivy,Stone,ivy@new.example,,Stone,80",
    "Ivy,Stone,ivy@new.example,,Stone,80",
]
CSV = "First Name,Last Name,Email,Form Id,Company Name,Employees\n" + "\n".join(ROWS) + "\n"


def seed(engine: Salesflow) -> None:
    account = engine.create_account(name="Park Co")
    engine.create_contact(last_name="Park", email="Cy@Known.example", account_id=account.id)
    engine.create_contact(last_name="Old", email="old@known.example", active=False)
    engine.create_lead(
        topic="Webinar", last_name="Moss", email="di@known.example", form_id="webinar"
    )
    closed = engine.create_lead(topic="Old deal", last_name="Vance", email="ed@closed.example")
    engine.disqualify_lead(closed.id)


def make_engine(store: Store) -> Salesflow:
    ids = itertools.count(1)
    engine = Salesflow(store, clock=FakeClock(T0), ids=lambda kind: f"{kind.value}-{next(ids)}")
    seed(engine)
    return engine


def one_by_one(engine: Salesflow, kind: str, options: IntakeOptions | None) -> tuple[Any, ...]:
    """The report of taking each row of `CSV` through `intake` in a unit of its own,
    with `import_csv`'s default options for ``kind`` unless ``options`` are given."""
    target = RecordKind(kind)
    if options is None:
        options = (
            IntakeOptions()
            if target is RecordKind.LEAD
            else IntakeOptions(create_contact=True, leads=False)
        )
    result: tuple[Any, ...] = runs.one_by_one(engine, CSV, target, options)
    return result


STORES = [
    pytest.param(lambda _, __: MemoryStore(), id="memory"),
    pytest.param(lambda folder, _: SQLiteStore(folder / "import.db"), id="sqlite"),
    pytest.param(lambda _, postgres_url: open_store(postgres_url("sf_import")), id="postgres"),
]

STRICT_LEADS = MatchingStrategy(
    id="lead_email_company",
    target=RecordKind.LEAD,
    fields=(MatchField(name="email"), MatchField(name="company_name", normalizer="name")),
)

OPTIONS: list[tuple[str, IntakeOptions | None]] = [
    ("lead", None),
    ("lead", IntakeOptions(create_contact=True)),
    ("lead", IntakeOptions(match_inactive=True, update_matched=False)),
    ("lead", IntakeOptions(create_when_no_match=False)),
    ("lead", IntakeOptions(lead_strategy="lead_email_company")),
    ("contact", None),
]


@pytest.mark.parametrize("batch", [1, 3, 500])
@pytest.mark.parametrize(("kind", "options"), OPTIONS)
@pytest.mark.parametrize("store", STORES)
def test_a_batched_import_ends_as_intake_row_by_row(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: Callable[[str], str],
    batch: int,
    kind: str,
    options: IntakeOptions | None,
    store: Callable[[Path, Callable[[str], str]], Store],
) -> None:
    monkeypatch.setattr(import_commands, "IMPORT_BATCH", batch)
    batched = make_engine(store(tmp_path, postgres_url))
    reference = make_engine(MemoryStore())
    for engine in (batched, reference):
        engine.save_matching_strategy(STRICT_LEADS)
    report = batched.import_csv(io.StringIO(CSV), kind=kind, options=options)
    expected = one_by_one(reference, kind, options)
    got = (
        report.rows,
        report.created,
        report.updated,
        report.unchanged,
        tuple((r.row, r.reason) for r in report.rejected),
    )
    assert got == expected
    assert snapshot(batched) == snapshot(reference)
    assert report.rejected  # the file has refused rows: the fallback ran
    batched.close()


def test_an_unknown_strategy_rejects_every_row_as_before(tmp_path: Path) -> None:
    engine = make_engine(SQLiteStore(tmp_path / "import.db"))
    report = engine.import_csv(
        io.StringIO(CSV), kind="lead", options=IntakeOptions(lead_strategy="nope")
    )
    assert report.created == report.updated == report.unchanged == 0
    assert len(report.rejected) == len(ROWS)
    assert "nope" in report.rejected[0].reason
    engine.close()


def test_a_write_intake_did_not_make_drops_what_the_batch_knew() -> None:
    engine = make_engine(MemoryStore())
    submissions = [
        import_commands._submission(row)
        for row in read_rows(io.StringIO(CSV), RecordKind.LEAD)[0]
        if row.rejection is None
    ]
    with engine.store.unit_of_work() as uow:
        work = Work(uow, T0)
        batch = IntakeBatch(work, engine._strategy)
        batch.prefetch(submissions, IntakeOptions())
        assert batch.absent(Contact, "ana@new.example")
        assert batch.absent(Lead, "ana@new.example")
        assert not batch.absent(Contact, "cy@known.example")  # seeded: look it up
        # intake's own write drops only its own key
        mine = Lead(
            id="l-x",
            created_at=T0,
            modified_at=T0,
            topic="t",
            last_name="B",
            email="Bo@new.example",
        )
        work.add(mine)
        batch.wrote(mine)
        assert not batch.absent(Lead, "bo@new.example")
        assert batch.absent(Lead, "ana@new.example")
        # a write by anything else: nothing is known absent any more
        work.add(Contact(id="c-x", created_at=T0, modified_at=T0, last_name="R"))
        assert not batch.absent(Lead, "ana@new.example")
        assert not batch.absent(Contact, "ivy@new.example")
