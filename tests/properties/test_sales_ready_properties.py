"""Sales-ready is for good, whatever happens to the scores: over random runs of
interactions, field edits, time passing, criteria changes and model publications,
a lead once sales-ready stays so and is announced exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow.clock import FakeClock
from salesflow.conditions import all_of, field
from salesflow.engine import Salesflow
from salesflow.events import LeadBecameSalesReady, ListSink
from salesflow.scoring import InteractionCondition, ScoringModel, ScoringRule
from salesflow.testing import simulate

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def engagement(points: int, threshold: int) -> ScoringModel:
    return ScoringModel(
        id="engagement",
        name="Engagement",
        sales_ready_threshold=threshold,
        rules=[
            ScoringRule(
                id="opened",
                name="Opened an email",
                conditions=[
                    InteractionCondition(
                        kind="email_opened", frequency="each", window=timedelta(days=7)
                    )
                ],
                points=points,
            )
        ],
    )


FIT = ScoringModel(
    id="fit",
    name="Fit",
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
CRITERIA = [
    None,
    all_of(field("ready.fit").eq(True), field("score.engagement").ge(20)),
    field("score.engagement").ge(30),
]

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(0, 1)),
        st.tuples(st.just("country"), st.sampled_from(["Lithuania", "Latvia"])),
        st.tuples(st.just("days"), st.integers(1, 10)),
        st.tuples(st.just("criteria"), st.integers(0, len(CRITERIA) - 1)),
        st.tuples(st.just("publish"), st.integers(10, 40)),
    ),
    max_size=15,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_a_lead_once_sales_ready_stays_so_and_is_announced_once(
    steps: list[tuple[str, int | str]],
) -> None:
    clock, sink = FakeClock(T0), ListSink()
    crm = Salesflow(clock=clock, sink=sink)
    crm.publish_scoring_model(FIT)
    crm.publish_scoring_model(engagement(10, 50))
    contacts = [crm.create_contact(last_name=f"C{i}") for i in range(2)]
    lead = crm.create_lead(topic="t", last_name="L", parent_contact_id=contacts[0].id)
    was_ready = False
    for kind, value in steps:
        if kind == "open":
            assert isinstance(value, int)
            crm.record_interaction("email_opened", contact_id=contacts[value].id)
        elif kind == "country":
            crm.update_lead(lead.id, country=value)
        elif kind == "days":
            assert isinstance(value, int)
            simulate(crm, clock.now() + timedelta(days=value))
        elif kind == "criteria":
            assert isinstance(value, int)
            crm.set_qualification_criteria(CRITERIA[value])
            crm.rescore_all()
        else:
            assert isinstance(value, int)
            crm.publish_scoring_model(engagement(value, 50))
        ready = crm.is_sales_ready(lead.id)
        assert ready or not was_ready  # never undone
        was_ready = ready
        announced = [e for e in sink.events if isinstance(e, LeadBecameSalesReady)]
        # Announced once, when it became ready (a current-score fallback may read
        # ready before the next scoring marks it; the mark then announces it).
        assert len(announced) <= 1
        if announced:
            assert ready
