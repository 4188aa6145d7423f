"""Sequence definitions: steps refuse bad local values; the graph is plain data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from salesflow.conditions import field
from salesflow.errors import ValidationError
from salesflow.sequences.definition import (
    ABMetric,
    ABTestStep,
    ActivityStep,
    AdvanceStep,
    CallWatch,
    ConditionStep,
    EmailEvent,
    EmailWatch,
    EndStep,
    FieldWatch,
    Match,
    SequenceDefinition,
    SetStatusStep,
    Span,
    StepKind,
    WaitStep,
    step_kind,
    successors,
)
from salesflow.values import RecordKind


def small(**overrides: Any) -> SequenceDefinition:
    fields: dict[str, Any] = {
        "id": "seq-1",
        "name": "Intro",
        "record_type": "lead",
        "entry": "mail",
        "steps": [
            ActivityStep(id="mail", kind="email", subject="Hello", next="replied"),
            ConditionStep(
                id="replied",
                watch=EmailWatch(events=["replied"]),
                within=Span(days=2),
                yes="won",
                no="wait",
            ),
            WaitStep(id="wait", span=Span(days=1), next="call"),
            ActivityStep(id="call", kind="call", subject="Call", next="lost"),
            EndStep(id="won", outcome="meeting_booked"),
            EndStep(id="lost", outcome="no_response"),
        ],
    }
    fields.update(overrides)
    return SequenceDefinition(**fields)


def test_a_definition_holds_its_steps_by_id() -> None:
    definition = small()
    assert definition.record_type is RecordKind.LEAD
    assert definition.version == 1
    assert definition.step("call").subject == "Call"  # type: ignore[union-attr]
    assert set(definition.by_id) == {"mail", "replied", "wait", "call", "won", "lost"}
    with pytest.raises(ValidationError, match="no step 'nope'"):
        definition.step("nope")


def test_successors_are_labelled_edges() -> None:
    definition = small()
    assert list(successors(definition.step("mail"))) == [("next", "replied")]
    assert list(successors(definition.step("replied"))) == [("yes", "won"), ("no", "wait")]
    assert list(successors(definition.step("won"))) == []
    assert list(successors(AdvanceStep(id="go", sequence_id="other"))) == []
    assert list(successors(ActivityStep(id="x", kind="task", subject="T"))) == []


def test_step_kinds_and_manual_steps() -> None:
    assert step_kind(ActivityStep(id="a", kind="auto_email", subject="Hi")) is StepKind.AUTO_EMAIL
    assert step_kind(WaitStep(id="w", span=Span(hours=3))) is StepKind.WAIT
    assert StepKind.CALL.manual
    assert not StepKind.AUTO_EMAIL.manual
    assert not StepKind.WAIT.manual


def test_spans_are_days_and_hours() -> None:
    assert Span(days=2, hours=5).delta == timedelta(days=2, hours=5)
    assert str(Span(days=3)) == "3 d"
    assert str(Span()) == "0 h"
    with pytest.raises(ValidationError, match=r"Span\.days"):
        Span(days=-1)
    with pytest.raises(ValidationError, match=r"Span\.hours"):
        Span(hours=1.5)  # type: ignore[arg-type]


def test_watches_normalize_their_values() -> None:
    watch = EmailWatch(events=("opened", "replied", "opened"), match="all")
    assert watch.events == (EmailEvent.OPENED, EmailEvent.REPLIED)
    assert watch.match is Match.ALL
    assert CallWatch().outcomes is None
    assert CallWatch(outcomes=["voicemail", " answered "]).outcomes == ("answered", "voicemail")
    with pytest.raises(ValidationError, match=r"EmailWatch\.events"):
        EmailWatch(events=[])
    with pytest.raises(ValidationError, match="'bounced'"):
        EmailWatch(events=["bounced"])
    with pytest.raises(ValidationError, match=r"CallWatch\.outcomes"):
        CallWatch(outcomes=[""])
    assert FieldWatch(condition=field("rating").eq("hot")).condition.describe() == "rating = 'hot'"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ActivityStep(id="a", kind="wait", subject="x"), "not an activity"),
        (lambda: ActivityStep(id="a", kind="fax", subject="x"), r"ActivityStep\.kind"),
        (lambda: ActivityStep(id="", kind="call", subject="x"), r"ActivityStep\.id"),
        (lambda: ActivityStep(id="a", kind="call", subject=""), r"ActivityStep\.subject"),
        (
            lambda: ActivityStep(id="a", kind="linkedin", subject="x", linkedin_action="poke"),
            r"ActivityStep\.linkedin_action",
        ),
        (lambda: ABTestStep(id="t", variant_a="A", variant_b="B", split_percent=95), "10 to 90"),
        (lambda: ABTestStep(id="t", variant_a="A", variant_b="B", split_percent=5), "10 to 90"),
        (lambda: ABTestStep(id="t", variant_a="A", variant_b="B", metric="likes"), "metric"),
        (lambda: ABTestStep(id="t", variant_a="A", variant_b="B", default_variant="c"), "'a'"),
        (lambda: EndStep(id="e", outcome=" "), r"EndStep\.outcome"),
        (lambda: SetStatusStep(id="s", status=""), r"SetStatusStep\.status"),
    ],
)
def test_steps_refuse_bad_values(build: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()


def test_ab_tests_default_to_an_even_split_on_replies() -> None:
    step = ABTestStep(id="t", variant_a="A", variant_b="B")
    assert (step.split_percent, step.metric, step.default_variant) == (50, ABMetric.REPLIES, "a")
    assert step.deadline == Span(days=7)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"record_type": "activity"}, "leads, contacts, accounts and opportunities"),
        ({"record_type": "deal"}, r"SequenceDefinition\.record_type"),
        ({"steps": []}, "non-empty list"),
        ({"steps": ["not a step"]}, "not a step"),
        (
            {"steps": [EndStep(id="x", outcome="a"), EndStep(id="x", outcome="b")]},
            "used twice",
        ),
        ({"version": 0}, "version"),
        ({"name": ""}, r"SequenceDefinition\.name"),
    ],
)
def test_definitions_refuse_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        small(**overrides)


def test_definitions_are_immutable_values() -> None:
    assert small() == small()
    assert small() != small(version=2)
    assert hash(small()) == hash(small())
