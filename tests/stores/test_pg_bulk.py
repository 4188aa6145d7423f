"""`salesflow.testing.pg_bulk.copy_to_postgres`: what the memory engine built reads
back from PostgreSQL as it was, table by table (records of every kind, due items,
definitions, enrollments, state documents, scores).

Needs a server: set ``SALESFLOW_PG_DSN`` (``.ci/run`` does).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.pipelines import Pipeline, Stage
from salesflow.rules import After, AutomationRule, Delay, Notify
from salesflow.scoring_result import ScoreResult
from salesflow.sequences import ActivityStep, EndStep, SequenceDefinition, Span, WaitStep
from salesflow.stores.base import Query, UnitOfWork, iter_kinds
from salesflow.stores.memory import MemoryStore
from salesflow.stores.postgres import PostgresStore
from salesflow.testing.pg_bulk import copy_to_postgres

DSN = os.environ.get("SALESFLOW_PG_DSN", "")
pytestmark = pytest.mark.skipif(
    not DSN, reason="SALESFLOW_PG_DSN is not set; the bulk copy needs a PostgreSQL server"
)
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def target() -> Iterator[PostgresStore]:
    import psycopg
    from psycopg import sql

    store = PostgresStore(DSN, schema=f"bulk_{uuid4().hex[:12]}")
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(store.schema))
            )


def contents(uow: UnitOfWork, lead_ids: list[str], states: set[str]) -> dict[str, object]:
    """Everything the test's engine stored, read through the unit of work."""
    found: dict[str, object] = {}
    for kind, cls in iter_kinds():
        found[kind.value] = sorted(
            uow.query(cls, Query(limit=10_000)).items, key=lambda record: record.id
        )
    found["due"] = uow.due_items()
    found["definitions"] = [d for kind in ("sequence", "pipeline") for d in uow.definitions(kind)]
    found["enrollments"] = uow.enrollments(sequence_id="drip")
    found["scores"] = [uow.score_history(lead_id) for lead_id in lead_ids]
    found["states"] = [s for kind in sorted(states) for s in uow.states(kind)]
    return found


def test_the_copy_reads_back_as_the_memory_store_holds_it(target: PostgresStore) -> None:
    clock = FakeClock(T0)
    memory = MemoryStore()
    engine = Salesflow(memory, clock=clock)
    engine.publish_sequence(
        SequenceDefinition(
            id="drip",
            name="Drip",
            record_type="lead",
            entry="hello",
            steps=[
                ActivityStep(id="hello", kind="auto_email", subject="Hello", next="w1"),
                WaitStep(id="w1", span=Span(days=1), next="bye"),
                ActivityStep(id="bye", kind="auto_email", subject="Bye", next="end"),
                EndStep(id="end", outcome="sent"),
            ],
        )
    )
    engine.publish_pipeline(
        Pipeline(
            id="sales",
            name="Sales",
            stages=[Stage(id="new", name="New"), Stage(id="won", name="Won", kind="won")],
            rules=[
                AutomationRule(
                    id="check",
                    stage="won",
                    timing=After(delay=Delay(days=2)),
                    action=Notify(message="check on {name}"),
                )
            ],
        )
    )
    leads = [
        engine.create_lead(topic=f"Lead {n}", last_name=f"Ruiz {n}", email=f"ruiz{n}@example.com")
        for n in range(5)
    ]
    engine.connect_many(leads[:3], "drip")
    account = engine.create_account(name="Contoso")
    deal = engine.create_deal("sales", name="Deal", account_id=account.id, owner_id="u1")
    engine.move_stage(deal, "won", by="u1")
    lead_ids = [lead.id for lead in leads]
    with memory.unit_of_work() as uow:
        for n, lead_id in enumerate(lead_ids[:2]):
            for points in (10, 20 + n):
                uow.add_score(
                    ScoreResult(
                        model_id="fit",
                        model_version=1,
                        lead_id=lead_id,
                        points=points,
                        grade=None,
                        sales_ready=False,
                        explanation=(),
                        next_change_at=None,
                        scored_at=T0 + timedelta(minutes=points),
                    )
                )
        uow.commit()

    counts = copy_to_postgres(memory, target)

    assert (counts["lead"], counts["enrollments"], counts["scores"]) == (5, 3, 4)
    kinds = {kind for kind, _ in memory._states}
    with memory.unit_of_work() as mine, target.unit_of_work() as theirs:
        want, got = contents(mine, lead_ids, kinds), contents(theirs, lead_ids, kinds)
    # the test copies something of each
    assert [] not in (want["due"], want["states"], want["scores"], want["enrollments"])
    for key in want:
        assert got[key] == want[key], key
