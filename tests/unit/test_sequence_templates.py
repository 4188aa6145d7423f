"""The six standard templates: each loads from its data file, is valid, has its
documented record type, duration and step count (or says why not), and every path
through it performs the narrative's actions on the right days and ends in the
narrative's outcome."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from salesflow.errors import ValidationError
from salesflow.sequences.definition import (
    ConditionStep,
    EndStep,
    SequenceDefinition,
    SetStatusStep,
    WaitStep,
    step_kind,
)
from salesflow.sequences.io import dumps_json, dumps_toml, loads_json, loads_toml
from salesflow.sequences.templates import TEMPLATES, load_template, template_text

validation = pytest.importorskip(
    "salesflow.sequences.validation",
    reason="salesflow.sequences.validation (validate, stats) is not written yet",
)

# name: (record type, documented steps, documented days, steps under salesflow's rule)
DOCUMENTED = {
    "no_show_follow_up": ("contact", 7, 5, 7),
    "high_volume_outbound_prospecting": ("lead", 7, 9, 8),
    "invite_to_upcoming_event": ("contact", 6, 5, 6),
    "meeting_for_product_demo_requests": ("opportunity", 9, 5, 10),
    "upcoming_account_renewal": ("account", 13, 50, 13),
    "webinar_follow_up": ("lead", 10, 7, 10),
}


@attrs.frozen
class Walk:
    """One way through a sequence: the condition answers taken, the actions
    performed with the day each falls on, the outcome and the total days."""

    choices: tuple[str, ...]
    actions: tuple[str, ...]
    outcome: str
    days: float
    statuses: tuple[SetStatusStep, ...]


def walks(definition: SequenceDefinition) -> list[Walk]:
    """Every path from the entry to an end, yes before no at each condition.

    A wait costs its span; a condition costs its time limit on both branches (the
    yes branch starts when the limit has passed), except that with advance_early the
    yes branch costs nothing.
    """
    found: list[Walk] = []
    day = timedelta(days=1)

    def go(
        step_id: str,
        elapsed: timedelta,
        choices: tuple[str, ...],
        actions: tuple[str, ...],
        statuses: tuple[SetStatusStep, ...],
    ) -> None:
        step = definition.step(step_id)
        if isinstance(step, EndStep):
            found.append(Walk(choices, actions, step.outcome, elapsed / day, statuses))
        elif isinstance(step, WaitStep):
            assert step.next is not None
            go(step.next, elapsed + step.span.delta, choices, actions, statuses)
        elif isinstance(step, ConditionStep):
            limit = step.within.delta
            yes_cost = timedelta(0) if step.advance_early else limit
            go(step.yes, elapsed + yes_cost, (*choices, "yes"), actions, statuses)
            go(step.no, elapsed + limit, (*choices, "no"), actions, statuses)
        else:
            assert step.next is not None, f"{step.id} has no next step"
            action = f"d{elapsed // day} {step_kind(step).value}"
            if isinstance(step, SetStatusStep):
                statuses = (*statuses, step)
            go(step.next, elapsed, choices, (*actions, action), statuses)

    go(definition.entry, timedelta(0), (), (), ())
    return found


def _actions(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


# name: [(yes/no answers, actions with their day, outcome, total days)]
SCENARIOS: dict[str, list[tuple[str, str, str, float]]] = {
    "no_show_follow_up": [
        # replies to the missed-meeting email: call and share the details
        ("yes", "d0 email, d1 call", "meeting_rescheduled", 1),
        # no reply, answers the call: discuss, then share the details
        ("no yes", "d0 email, d1 call, d1 email", "meeting_rescheduled", 1),
        # no answer: wait two days, placeholder email; replies: call and share
        ("no no yes", "d0 email, d1 call, d3 email, d5 call", "meeting_rescheduled", 5),
        # never replies: reach out to other contacts at the company
        ("no no no", "d0 email, d1 call, d3 email, d5 task", "no_response", 5),
    ],
    "high_volume_outbound_prospecting": [
        # answers the first call: connect on LinkedIn and book the meeting
        (
            "yes",
            "d0 auto_email, d0 linkedin, d0 call, d2 linkedin",
            "meeting_booked",
            2,
        ),
        # answers the second call, three days after the automated follow-up
        (
            "no yes",
            "d0 auto_email, d0 linkedin, d0 call, d2 auto_email, d5 call",
            "meeting_booked",
            6,
        ),
        # answers the final call, two days later
        (
            "no no yes",
            "d0 auto_email, d0 linkedin, d0 call, d2 auto_email, d5 call, d8 call",
            "meeting_booked",
            9,
        ),
        # never answers: disqualified after nine days
        (
            "no no no",
            "d0 auto_email, d0 linkedin, d0 call, d2 auto_email, d5 call, d8 call, d9 set_status",
            "disqualified",
            9,
        ),
    ],
    "invite_to_upcoming_event": [
        ("yes", "d0 email, d3 email", "registered", 3),
        ("no yes", "d0 email, d3 email, d5 email", "registered", 5),
        # answers the call: discuss and send the confirmation
        ("no no yes", "d0 email, d3 email, d5 call, d5 email", "registered", 5),
        ("no no no", "d0 email, d3 email, d5 call", "flagged_for_future_events", 5),
    ],
    "meeting_for_product_demo_requests": [
        (
            "yes",
            "d0 email, d0 linkedin, d0 linkedin, d1 email, d3 task",
            "meeting_booked",
            3,
        ),
        (
            "no yes",
            "d0 email, d0 linkedin, d0 linkedin, d1 email, d3 call, d3 task",
            "meeting_booked",
            3,
        ),
        (
            "no no yes",
            "d0 email, d0 linkedin, d0 linkedin, d1 email, d3 call, d5 call, d5 task",
            "meeting_booked",
            5,
        ),
        (
            "no no no",
            "d0 email, d0 linkedin, d0 linkedin, d1 email, d3 call, d5 call, d5 set_status",
            "disqualified",
            5,
        ),
    ],
    "upcoming_account_renewal": [
        (
            "",
            "d0 task, d0 email, d7 task, d7 call, d12 task, d12 email, d19 task, d19 task, "
            "d26 call, d26 email, d33 call, d47 task, d50 email",
            "renewal_signed",
            50,
        ),
    ],
    "webinar_follow_up": [
        ("yes", "d0 auto_email, d2 email, d2 set_status", "meeting_booked", 2),
        ("no yes", "d0 auto_email, d2 email, d3 email, d3 set_status", "meeting_booked", 3),
        (
            "no no yes",
            "d0 auto_email, d2 email, d3 call, d3 email, d3 set_status",
            "meeting_booked",
            3,
        ),
        (
            "no no no yes",
            "d0 auto_email, d2 email, d3 call, d5 email, d7 email, d7 set_status",
            "meeting_booked",
            7,
        ),
        (
            "no no no no",
            "d0 auto_email, d2 email, d3 call, d5 email, d7 set_status",
            "disqualified",
            7,
        ),
    ],
}


def test_the_six_templates_are_listed() -> None:
    assert set(TEMPLATES) == set(DOCUMENTED)
    assert len(TEMPLATES) == 6


def test_unknown_template_names_are_refused_with_the_list() -> None:
    with pytest.raises(ValidationError, match=r"no_show_follow_up.*webinar_follow_up"):
        load_template("cold_calling")


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_is_valid(name: str) -> None:
    definition = load_template(name)
    assert definition.id == name
    assert validation.validate(definition) == []


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_has_its_documented_record_type_and_days(name: str) -> None:
    record_type, _, days, _ = DOCUMENTED[name]
    definition = load_template(name)
    assert definition.record_type.value == record_type
    assert validation.stats(definition).longest == timedelta(days=days)
    assert validation.stats(definition).longest_days == days


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_step_count_is_documented_or_explained(name: str) -> None:
    _, documented, days, counted = DOCUMENTED[name]
    definition = load_template(name)
    assert validation.stats(definition).steps == counted
    description = definition.description or ""
    assert f"Documented: {documented} steps" in description
    assert f"encoded: {counted} steps, {days} days" in description
    if counted != documented:
        assert "The extra step" in description, "a differing count says why"


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_path_performs_the_narrative(name: str) -> None:
    found = {" ".join(w.choices): w for w in walks(load_template(name))}
    expected = {choices: rest for choices, *rest in SCENARIOS[name]}
    assert set(found) == set(expected), "every yes/no branch of the narrative, and no other"
    for choices, (actions, outcome, days) in expected.items():
        walk = found[choices]
        assert walk.actions == _actions(actions), choices
        assert walk.outcome == outcome, choices
        assert walk.days == days, choices


@pytest.mark.parametrize("name", TEMPLATES)
def test_longest_walk_is_the_documented_duration(name: str) -> None:
    _, _, days, _ = DOCUMENTED[name]
    assert max(w.days for w in walks(load_template(name))) == days


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_step_is_on_some_path(name: str) -> None:
    definition = load_template(name)
    counted = {a for w in walks(definition) for a in w.actions}
    assert counted, "the template performs actions"
    kinds_on_paths = {a.split(" ", 1)[1] for a in counted}
    kinds_defined = {
        step_kind(s).value
        for s in definition.steps
        if not isinstance(s, WaitStep | ConditionStep | EndStep)
    }
    assert kinds_on_paths == kinds_defined


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("high_volume_outbound_prospecting", "cannot_contact"),
        ("webinar_follow_up", "no_longer_interested"),
    ],
)
def test_lead_templates_disqualify_with_a_reason(name: str, reason: str) -> None:
    disqualified = [w for w in walks(load_template(name)) if w.outcome == "disqualified"]
    assert len(disqualified) == 1
    (status,) = disqualified[0].statuses
    assert (status.status, status.reason) == ("disqualified", reason)


def test_webinar_qualifies_the_lead_on_every_yes_branch() -> None:
    booked = [w for w in walks(load_template("webinar_follow_up")) if w.outcome == "meeting_booked"]
    assert len(booked) == 4
    assert all([s.status for s in w.statuses] == ["qualified"] for w in booked)


def test_demo_request_disqualification_closes_the_opportunity_as_lost() -> None:
    walk = walks(load_template("meeting_for_product_demo_requests"))[-1]
    assert walk.outcome == "disqualified"
    assert [s.status for s in walk.statuses] == ["lost"]


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_round_trips_through_json_and_toml(name: str) -> None:
    definition = load_template(name)
    assert loads_json(dumps_json(definition)) == definition
    assert loads_toml(dumps_toml(definition)) == definition
    assert loads_toml(template_text(name)) == definition
