"""Qualification criteria (REFERENCE.md, "Scoring": "qualification criteria combine
models with AND/OR"): a condition over the models' scores decides when a lead is
sales-ready, on every store."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.clock import FakeClock
from salesflow.conditions import all_of, any_of, field, not_
from salesflow.engine import Salesflow
from salesflow.errors import ValidationError
from salesflow.events import LeadBecameSalesReady, ListSink
from salesflow.scoring import Grade, InteractionCondition, ScoringModel, ScoringRule
from salesflow.scoring_compile import ScoreResult
from salesflow.scoring_criteria import check_criteria, criteria_met, models_of
from salesflow.stores.url import open_store
from salesflow.testing import simulate

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
DAY = timedelta(days=1)

FIT = ScoringModel(
    id="fit",
    name="Fit",
    sales_ready_threshold=50,
    rules=[
        ScoringRule(
            id="lt",
            name="In Lithuania",
            conditions=[field("lead.country").eq("Lithuania")],
            points=60,
        )
    ],
    grades=[Grade(name="cold", low=None, high=59), Grade(name="hot", low=60, high=None)],
)
ENGAGEMENT = ScoringModel(
    id="engagement",
    name="Engagement",
    sales_ready_threshold=50,
    rules=[
        ScoringRule(
            id="opened",
            name="Opened an email",
            conditions=[
                InteractionCondition(kind="email_opened", frequency="each", window=28 * DAY)
            ],
            points=25,
        )
    ],
)
BOTH = all_of(field("grade.fit").eq("hot"), field("score.engagement").ge(25))


def result(model_id: str, points: int, grade: str | None, ready: bool) -> ScoreResult:
    return ScoreResult(
        lead_id="lead-1",
        model_id=model_id,
        model_version=1,
        points=points,
        grade=grade,
        sales_ready=ready,
        explanation=(),
        scored_at=T0,
        next_change_at=None,
    )


# --- the pure part ---------------------------------------------------------------------


def test_criteria_read_each_fact_of_each_models_score() -> None:
    scores = {
        "fit": result("fit", 60, "hot", True),
        "engagement": result("engagement", 0, None, False),
    }
    assert criteria_met(field("score.fit").ge(60), scores)
    assert criteria_met(field("grade.fit").eq("hot"), scores)
    assert criteria_met(field("ready.fit").eq(True), scores)
    assert not criteria_met(BOTH, scores)
    assert criteria_met(any_of(BOTH, field("ready.fit").eq(True)), scores)
    # A model that has not scored the lead gives None for every fact.
    assert not criteria_met(field("score.other").ge(0), scores)
    assert criteria_met(field("score.other").is_null(), scores)
    assert criteria_met(not_(field("ready.other").eq(True)), scores)
    assert models_of(any_of(BOTH, field("ready.fit").eq(True))) == ["fit", "engagement"]


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ("score.fit >= 50", "must be a condition"),
        (field("fit").ge(50), r"'fit' is not a fact of a model's score"),
        (field("points.fit").ge(50), r"'points.fit' is not a fact"),
        (field("score.").ge(50), r"'score.' is not a fact"),
        (field("score.nope").ge(50), r"names model 'nope', which was never published"),
    ],
)
def test_criteria_that_name_no_models_fact_are_refused(criteria: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_criteria(criteria, ["fit", "engagement"])


@given(
    points=st.dictionaries(st.sampled_from(["fit", "engagement"]), st.integers(0, 200)),
    threshold=st.integers(0, 200),
)
def test_any_models_readiness_as_criteria_is_the_default_rule(
    points: dict[str, int], threshold: int
) -> None:
    scores = {m: result(m, p, None, p >= threshold) for m, p in points.items()}
    either = any_of(field("ready.fit").eq(True), field("ready.engagement").eq(True))
    assert criteria_met(either, scores) == any(s.sales_ready for s in scores.values())


# --- in the engine ----------------------------------------------------------------------


@pytest.fixture
def engine(store_url: str) -> Iterator[tuple[Salesflow, ListSink, FakeClock]]:
    ids = itertools.count(1)
    sink, clock = ListSink(), FakeClock(T0)
    crm = Salesflow(
        open_store(store_url),
        clock=clock,
        sink=sink,
        ids=lambda kind: f"{kind.value}-{next(ids)}",
    )
    crm.publish_scoring_model(FIT)
    crm.publish_scoring_model(ENGAGEMENT)
    yield crm, sink, clock
    crm.close()


def _ready(sink: ListSink) -> list[tuple[str, str | None, int | None]]:
    return [
        (e.lead_id, e.model_id, e.points)
        for e in sink.events
        if isinstance(e, LeadBecameSalesReady)
    ]


def test_with_criteria_one_models_threshold_is_not_enough(
    engine: tuple[Salesflow, ListSink, FakeClock],
) -> None:
    crm, sink, clock = engine
    assert crm.set_qualification_criteria(BOTH) == BOTH
    assert crm.qualification_criteria() == BOTH
    contact = crm.create_contact(last_name="Kim")
    lead = crm.create_lead(
        topic="t", last_name="Kim", country="Lithuania", parent_contact_id=contact.id
    )
    assert [s.sales_ready for s in crm.lead_scores(lead.id) if s.model_id == "fit"] == [True]
    assert not crm.is_sales_ready(lead.id)  # fit alone reached its threshold
    assert _ready(sink) == []

    crm.record_interaction("email_opened", contact_id=contact.id)  # engagement 25
    assert crm.is_sales_ready(lead.id)
    assert _ready(sink) == [(lead.id, None, None)]  # the criteria decided

    simulate(crm, clock.now() + 30 * DAY)  # the open ages out: criteria no longer met
    assert crm.is_sales_ready(lead.id)  # sales-ready for good
    assert _ready(sink) == [(lead.id, None, None)]


def test_without_criteria_any_model_decides_again(
    engine: tuple[Salesflow, ListSink, FakeClock],
) -> None:
    crm, sink, _ = engine
    crm.set_qualification_criteria(BOTH)
    assert crm.set_qualification_criteria(None) is None
    assert crm.qualification_criteria() is None
    lead = crm.create_lead(
        topic="t",
        last_name="Kim",
        country="Lithuania",
        parent_contact_id=crm.create_contact(last_name="Kim").id,
    )
    assert crm.is_sales_ready(lead.id)
    assert _ready(sink) == [(lead.id, "fit", 60)]


def test_criteria_naming_an_unknown_model_are_refused_and_nothing_changes(
    engine: tuple[Salesflow, ListSink, FakeClock],
) -> None:
    crm, _, _ = engine
    crm.set_qualification_criteria(BOTH)
    with pytest.raises(ValidationError, match="never published"):
        crm.set_qualification_criteria(field("score.budget").ge(10))
    assert crm.qualification_criteria() == BOTH


def test_rescore_all_applies_new_criteria_to_leads_scored_before(
    engine: tuple[Salesflow, ListSink, FakeClock],
) -> None:
    crm, sink, _ = engine
    crm.set_qualification_criteria(BOTH)
    contact = crm.create_contact(last_name="Kim")
    lead = crm.create_lead(
        topic="t", last_name="Kim", country="Lithuania", parent_contact_id=contact.id
    )
    assert not crm.is_sales_ready(lead.id)
    crm.set_qualification_criteria(field("grade.fit").eq("hot"))
    # Read at once from the current scores, though not announced until scored again.
    assert crm.is_sales_ready(lead.id)
    assert _ready(sink) == []
    assert crm.rescore_all() == 1
    assert _ready(sink) == [(lead.id, None, None)]
    crm.rescore_all()
    assert _ready(sink) == [(lead.id, None, None)]  # once
