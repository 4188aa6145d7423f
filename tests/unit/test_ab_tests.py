"""A/B test steps: the tally, the significance rule, and the engine deciding winners."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from salesflow.clock import FakeClock
from salesflow.engine import ABTestDecided, Salesflow
from salesflow.errors import ValidationError
from salesflow.events import ListSink
from salesflow.sequences import runtime as rt
from salesflow.sequences.abtest import MIN_SENT, ABTally, decide, tally
from salesflow.sequences.definition import (
    ABTestStep,
    ActivityStep,
    EndStep,
    SequenceDefinition,
    Span,
    WaitStep,
)
from salesflow.sequences.enrollment import SendEmailRequested, StaticFacts
from salesflow.testing import simulate
from salesflow.values import RecordKind, RecordRef

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def ab_sequence(**step: object) -> SequenceDefinition:
    fields: dict[str, object] = {"variant_a": "tpl_a", "variant_b": "tpl_b", "next": "wait"}
    fields.update(step)
    return SequenceDefinition(
        id="ab_seq",
        name="A/B",
        record_type=RecordKind.LEAD,
        entry="ab",
        steps=[
            ABTestStep(id="ab", **fields),  # type: ignore[arg-type]
            WaitStep(id="wait", span=Span(days=20), next="call"),
            ActivityStep(id="call", kind="call", subject="Call", next="end"),
            EndStep(id="end", outcome="done"),
        ],
    )


# --- the pure rule -------------------------------------------------------------------


def test_a_significant_difference_picks_the_better_variant() -> None:
    step = ABTestStep(id="ab", variant_a="A", variant_b="B")
    assert decide(
        step, ABTally(sent_a=100, hits_a=30, sent_b=100, hits_b=10), deadline_passed=False
    ) == (
        "a",
        "significant",
    )
    assert decide(
        step, ABTally(sent_a=100, hits_a=5, sent_b=100, hits_b=25), deadline_passed=False
    ) == (
        "b",
        "significant",
    )


def test_a_small_or_insignificant_difference_keeps_splitting_until_the_deadline() -> None:
    step = ABTestStep(id="ab", variant_a="A", variant_b="B", default_variant="b")
    few = ABTally(sent_a=MIN_SENT - 1, hits_a=MIN_SENT - 1, sent_b=MIN_SENT, hits_b=0)
    close = ABTally(sent_a=200, hits_a=21, sent_b=200, hits_b=20)
    silent = ABTally(sent_a=200, hits_a=0, sent_b=200, hits_b=0)
    for counts in (few, close, silent):
        assert decide(step, counts, deadline_passed=False) is None
        assert decide(step, counts, deadline_passed=True) == ("b", "deadline")
    assert silent.z is None
    assert close.rate("a") == pytest.approx(0.105)


def test_tally_counts_each_enrollment_once_with_the_variant_it_was_sent() -> None:
    definition = ab_sequence(metric="clicks")
    enrollments = []
    for i in range(40):
        e = rt.start(
            definition,
            enrollment_id=f"e-{i}",
            record=RecordRef(kind=RecordKind.LEAD, id=f"l-{i}"),
            owner_id="ann",
            now=T0,
        ).enrollment
        if i % 4 == 0:
            e = rt.record_email_event(definition, e, "ab", "link_clicked", T0).enrollment
            e = rt.record_email_event(definition, e, "ab", "replied", T0).enrollment
        enrollments.append(e)
    counts = tally(definition.by_id["ab"], enrollments)  # type: ignore[arg-type]
    assert counts.sent_a + counts.sent_b == 40
    assert counts.hits_a + counts.hits_b == 10
    assert counts.sent_a == sum(1 for e in enrollments if e.variants["ab"] == "a")


def test_a_decided_winner_is_sent_to_everyone() -> None:
    definition = ab_sequence(split_percent=50)
    variants = {
        rt.start(
            definition,
            enrollment_id=f"e-{i}",
            record=RecordRef(kind=RecordKind.LEAD, id=f"l-{i}"),
            owner_id=None,
            now=T0,
            facts=StaticFacts(winners={"ab": "b"}),
        ).enrollment.variants["ab"]
        for i in range(50)
    }
    assert variants == {"b"}


# --- through the engine --------------------------------------------------------------


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def engine(sink: ListSink) -> Salesflow:
    ids = itertools.count(1)
    return Salesflow(
        clock=FakeClock(T0),
        sink=sink,
        ids=lambda kind: f"{kind.value}-{next(ids)}",
        enrollment_ids=lambda: f"enr-{next(ids)}",
        due_ids=lambda: f"due-{next(ids)}",
    )


def connect_many(engine: Salesflow, n: int) -> list[str]:
    return [
        engine.connect(
            engine.create_lead(topic=f"t{i}", last_name=f"L{i}", email=f"l{i}@example.com"),
            "ab_seq",
        ).id
        for i in range(n)
    ]


def test_the_engine_decides_by_significance_and_then_sends_the_winner(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(ab_sequence(metric="replies"))
    ids = connect_many(engine, 120)
    for enrollment_id in ids:  # variant B's readers reply, A's do not
        if engine.enrollment(enrollment_id).variants["ab"] == "b":
            engine.record_email_event(enrollment_id, "ab", "replied")
    undecided = engine.ab_test_result("ab_seq", "ab")
    assert undecided.winner is None
    assert undecided.tally.sent_a + undecided.tally.sent_b == 120
    simulate(engine, T0 + timedelta(hours=6))
    (decided,) = [e for e in sink.events if isinstance(e, ABTestDecided)]
    assert (decided.winner, decided.reason) == ("b", "significant")
    result = engine.ab_test_result("ab_seq", "ab")
    assert result.winner == "b"
    assert result.decided_at == T0 + timedelta(hours=6)
    sink.events.clear()
    later = connect_many(engine, 20)
    assert {engine.enrollment(i).variants["ab"] for i in later} == {"b"}
    templates = {e.template for e in sink.events if isinstance(e, SendEmailRequested)}
    assert templates == {"tpl_b"}


def test_without_a_significant_difference_the_default_wins_at_the_deadline(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_sequence(ab_sequence(deadline=Span(days=3), default_variant="b"))
    connect_many(engine, 60)
    simulate(engine, T0 + 3 * DAY - timedelta(minutes=1))
    assert engine.ab_test_result("ab_seq", "ab").winner is None
    simulate(engine, T0 + 3 * DAY)
    (decided,) = [e for e in sink.events if isinstance(e, ABTestDecided)]
    assert (decided.winner, decided.reason) == ("b", "deadline")
    # the checks stop once the test is decided
    assert [i.kind for i in engine.due_items() if i.kind == "sequence.ab_test"] == []


def test_ab_test_result_refuses_a_step_that_is_not_an_ab_test(engine: Salesflow) -> None:
    engine.publish_sequence(ab_sequence())
    with pytest.raises(ValidationError, match="no A/B test step 'wait'"):
        engine.ab_test_result("ab_seq", "wait")
