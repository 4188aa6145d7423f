"""Scores kept current by the engine: on every change, on interactions, when
interactions leave their window, and when a model is published."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from salesflow.cli import main
from salesflow.clock import FakeClock
from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.errors import InvalidDefinition, NotFound, ValidationError
from salesflow.events import LeadBecameSalesReady, LeadGradeChanged, LeadScored, ListSink
from salesflow.scoring import Grade, InteractionCondition, ScoringModel, ScoringRule
from salesflow.stores.memory import MemoryStore
from salesflow.stores.url import open_store

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def model(**changes: object) -> ScoringModel:
    fields: dict[str, object] = {
        "id": "marketing",
        "name": "Marketing",
        "sales_ready_threshold": 50,
        "rules": [
            ScoringRule(
                id="lt",
                name="In Lithuania",
                conditions=[field("lead.country").eq("Lithuania")],
                points=20,
            ),
            ScoringRule(
                id="opened",
                name="Opened an email",
                conditions=[
                    InteractionCondition(
                        kind="email_opened", frequency="each", window=timedelta(days=28)
                    )
                ],
                points=15,
            ),
        ],
        "grades": [
            Grade(name="cold", low=0, high=29),
            Grade(name="warm", low=30, high=49),
            Grade(name="hot", low=50, high=None),
        ],
    }
    fields.update(changes)
    return ScoringModel(**fields)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def engine(clock: FakeClock, sink: ListSink) -> Salesflow:
    ids = itertools.count(1)
    return Salesflow(clock=clock, sink=sink, ids=lambda kind: f"{kind.value}-{next(ids)}")


def lead_of(engine: Salesflow, **fields: object) -> tuple[str, str]:
    contact = engine.create_contact(last_name="Kim", email="kim@x.example")
    lead = engine.create_lead(
        topic="t",
        last_name="Kim",
        parent_contact_id=contact.id,
        **fields,  # type: ignore[arg-type]
    )
    return lead.id, contact.id


def test_a_lead_is_scored_as_it_changes(engine: Salesflow, sink: ListSink) -> None:
    engine.publish_scoring_model(model())
    lead_id, contact_id = lead_of(engine)
    (first,) = engine.lead_scores(lead_id)
    assert (first.points, first.grade, first.sales_ready) == (0, "cold", False)
    engine.update_lead(lead_id, country="Lithuania")
    for _ in range(2):
        engine.record_interaction("email_opened", contact_id=contact_id)
    (now,) = engine.lead_scores(lead_id)
    assert (now.points, now.grade, now.sales_ready) == (50, "hot", True)
    assert [h.rule_id for h in now.explanation] == ["lt", "opened"]
    assert sum(h.points for h in now.explanation) == now.points
    assert engine.is_sales_ready(lead_id)
    assert [s.points for s in engine.score_history(lead_id)] == [0, 20, 35, 50]
    ready = [e for e in sink.events if isinstance(e, LeadBecameSalesReady)]
    assert [(e.lead_id, e.points) for e in ready] == [(lead_id, 50)]
    grades = [e.grade for e in sink.events if isinstance(e, LeadGradeChanged)]
    assert grades == ["cold", "warm", "hot"]


def test_scores_fall_when_interactions_leave_the_window(
    engine: Salesflow, clock: FakeClock, sink: ListSink
) -> None:
    from salesflow.testing import simulate

    engine.publish_scoring_model(model())
    lead_id, contact_id = lead_of(engine)
    engine.record_interaction("email_opened", contact_id=contact_id)
    assert engine.lead_scores(lead_id)[0].points == 15
    (due,) = [i for i in engine.due_items() if i.kind == "scoring.rescore"]
    assert due.due_at == T0 + 28 * DAY  # not a nightly batch: exactly when it leaves
    simulate(engine, T0 + 30 * DAY)
    assert engine.lead_scores(lead_id)[0].points == 0
    assert [i for i in engine.due_items() if i.kind == "scoring.rescore"] == []
    scored = [e.points for e in sink.events if isinstance(e, LeadScored)]
    assert scored == [0, 15, 0]


def test_an_unchanged_score_is_not_kept_twice(engine: Salesflow) -> None:
    engine.publish_scoring_model(model())
    lead_id, _ = lead_of(engine)
    engine.update_lead(lead_id, topic="another topic")
    engine.score_lead(lead_id)
    assert len(engine.score_history(lead_id)) == 1


def test_publishing_a_version_rescores_every_open_lead(engine: Salesflow) -> None:
    lead_id, _ = lead_of(engine, country="Lithuania")
    assert engine.lead_scores(lead_id) == []  # no model yet
    engine.publish_scoring_model(model())
    assert engine.lead_scores(lead_id)[0].points == 20
    doubled = model(
        sales_ready_threshold=40,
        rules=[
            ScoringRule(
                id="lt",
                name="In Lithuania",
                conditions=[field("lead.country").eq("Lithuania")],
                points=40,
            )
        ],
    )
    assert engine.publish_scoring_model(doubled).version == 2
    (score,) = engine.lead_scores(lead_id)
    assert (score.model_version, score.points, score.sales_ready) == (2, 40, True)
    assert [m.version for m in engine.scoring_models()] == [2]


def test_several_models_and_no_parent(engine: Salesflow) -> None:
    engine.publish_scoring_model(model())
    engine.publish_scoring_model(
        model(id="firmo", name="Firmographic", sales_ready_threshold=10, grades=[])
    )
    lead_id, _ = lead_of(engine, country="Lithuania")
    assert [(s.model_id, s.sales_ready) for s in engine.lead_scores(lead_id)] == [
        ("firmo", True),
        ("marketing", False),
    ]
    assert engine.is_sales_ready(lead_id)  # as soon as any model says so
    orphan = engine.create_lead(topic="t", last_name="Lone", country="Lithuania")
    assert engine.lead_scores(orphan.id) == []  # neither contact nor account


def test_closed_leads_keep_their_last_score(engine: Salesflow) -> None:
    engine.publish_scoring_model(model())
    lead_id, contact_id = lead_of(engine)
    engine.disqualify_lead(lead_id, "lost")
    engine.record_interaction("email_opened", contact_id=contact_id)
    assert engine.lead_scores(lead_id)[0].points == 0


def test_deactivated_models_stop_scoring(engine: Salesflow) -> None:
    engine.publish_scoring_model(model())
    engine.deactivate_scoring_model("marketing")
    assert engine.scoring_models() == []
    lead_id, _ = lead_of(engine)
    assert engine.lead_scores(lead_id) == []
    with pytest.raises(NotFound):
        engine.deactivate_scoring_model("nope")


def test_bad_models_are_refused(engine: Salesflow) -> None:
    with pytest.raises(InvalidDefinition):
        engine.publish_scoring_model(
            model(grades=[Grade(name="a", low=0, high=10), Grade(name="b", low=20, high=None)])
        )
    with pytest.raises(ValidationError, match="ScoringModel"):
        engine.publish_scoring_model("not a model")  # type: ignore[arg-type]
    assert engine.scoring_models() == []


def test_scores_survive_save_and_restore(engine: Salesflow, clock: FakeClock) -> None:
    engine.publish_scoring_model(model())
    lead_id, contact_id = lead_of(engine, country="Lithuania")
    engine.record_interaction("email_opened", contact_id=contact_id)
    store = engine.store
    assert isinstance(store, MemoryStore)
    restored = Salesflow(MemoryStore.load(store.dump()), clock=clock)
    assert restored.lead_scores(lead_id) == engine.lead_scores(lead_id)
    assert restored.score_history(lead_id) == engine.score_history(lead_id)


def test_the_score_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = Salesflow(open_store(url), clock=FakeClock(T0))
    engine.publish_scoring_model(model())
    lead_id, contact_id = lead_of(engine, country="Lithuania")
    engine.record_interaction("email_opened", contact_id=contact_id, interaction_id="open-1")
    engine.close()
    assert main(["score", lead_id, "--explain", "--store", url]) == 0
    out = capsys.readouterr().out
    assert "marketing v1: 35 points, grade warm" in out
    assert "+20  In Lithuania" in out
    assert "+15  Opened an email  [open-1]" in out
    assert main(["score", "nope", "--store", url]) == 1
    assert "Lead 'nope'" in capsys.readouterr().err
