"""Pins of the python-statemachine behaviours salesflow relies on (DESIGN §1.5).

If an upgrade changes any of these, the lifecycles built on `salesflow.lifecycle.fire`
would silently change meaning; these tests fail first.
"""

from __future__ import annotations

from typing import Any

import pytest
from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from salesflow.activity import ActivityLifecycle
from salesflow.errors import InvalidTransition
from salesflow.lead import LeadLifecycle
from salesflow.lifecycle import fire, mermaid, transitions
from salesflow.opportunity import OpportunityLifecycle


class Slot:
    """A model that holds nothing but the state value, like `salesflow.lifecycle`'s."""

    __slots__ = ("state",)

    def __init__(self, state: str | None) -> None:
        self.state = state


class Door(StateMachine):
    """A tiny machine that records every state it enters."""

    closed = State("Closed", initial=True, value="closed")
    opened = State("Opened", value="opened")
    locked = State("Locked", final=True, value="locked")

    open_ = closed.to(opened, cond="has_key", event="open")
    close = opened.to(closed, unless="jammed")
    lock = closed.to(locked)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.entered: list[str] = []
        super().__init__(*args, **kwargs)

    def on_enter_closed(self) -> None:
        self.entered.append("closed")

    def on_enter_opened(self) -> None:
        self.entered.append("opened")

    def has_key(self, has_key: bool = True) -> bool:
        return has_key

    def jammed(self, jammed: bool = False) -> bool:
        return jammed


def door(state: str | None) -> Door:
    return Door(model=Slot(state), state_field="state")


def test_the_defaults_salesflow_relies_on() -> None:
    assert StateMachine.allow_event_without_transition is False
    assert StateMachine.catch_errors_as_events is False
    assert StateMachine.atomic_configuration_update is True


@pytest.mark.parametrize("lifecycle", [LeadLifecycle, OpportunityLifecycle, ActivityLifecycle])
def test_salesflow_lifecycles_keep_the_defaults(lifecycle: type[StateMachine]) -> None:
    assert lifecycle.allow_event_without_transition is False
    assert lifecycle.catch_errors_as_events is False
    assert lifecycle.atomic_configuration_update is True


def test_a_new_machine_enters_its_initial_state() -> None:
    # The control for the next test: entry callbacks do run when the machine starts fresh.
    machine = door(None)
    assert machine.entered == ["closed"]
    assert machine.model.state == "closed"


@pytest.mark.parametrize("stored", ["closed", "opened"])
def test_restoring_from_a_stored_value_does_not_run_on_enter(stored: str) -> None:
    machine = door(stored)
    assert machine.entered == []
    assert machine.model.state == stored


def test_a_transition_runs_on_enter_of_the_target_only() -> None:
    machine = door("closed")
    machine.send("open")
    assert machine.entered == ["opened"]
    assert machine.model.state == "opened"


def test_an_event_not_allowed_in_the_current_state_raises() -> None:
    machine = door("opened")
    with pytest.raises(TransitionNotAllowed):
        machine.send("lock")
    assert machine.model.state == "opened"


def test_an_event_in_a_final_state_raises() -> None:
    machine = door("locked")
    with pytest.raises(TransitionNotAllowed):
        machine.send("open")
    assert machine.model.state == "locked"


def test_an_unknown_event_raises() -> None:
    machine = door("closed")
    with pytest.raises(TransitionNotAllowed):
        machine.send("fly")
    assert machine.model.state == "closed"


def test_a_failing_cond_guard_raises_and_keeps_the_state() -> None:
    machine = door("closed")
    with pytest.raises(TransitionNotAllowed):
        machine.send("open", has_key=False)
    assert machine.model.state == "closed"
    assert machine.entered == []


def test_a_failing_unless_guard_raises_and_keeps_the_state() -> None:
    machine = door("opened")
    with pytest.raises(TransitionNotAllowed):
        machine.send("close", jammed=True)
    assert machine.model.state == "opened"
    machine.send("close", jammed=False)
    assert machine.model.state == "closed"


def test_event_keyword_arguments_reach_the_guards() -> None:
    assert fire(Door, "closed", "open", what="Door", has_key=True) == "opened"
    with pytest.raises(InvalidTransition):
        fire(Door, "closed", "open", what="Door", has_key=False)


# --- salesflow's use of it -----------------------------------------------------------


def test_lead_lifecycle_transition_table() -> None:
    assert transitions(LeadLifecycle) == {
        ("open", "qualify"): "qualified",
        ("open", "disqualify"): "disqualified",
        ("qualified", "reactivate"): "open",
        ("disqualified", "reactivate"): "open",
    }


def test_opportunity_lifecycle_transition_table() -> None:
    assert transitions(OpportunityLifecycle) == {
        ("open", "win"): "won",
        ("open", "lose"): "lost",
        ("won", "reopen"): "open",
        ("lost", "reopen"): "open",
    }


def test_activity_lifecycle_transition_table() -> None:
    assert transitions(ActivityLifecycle) == {
        ("open", "complete"): "completed",
        ("open", "cancel"): "canceled",
    }


def test_fire_reports_a_refused_event_as_invalid_transition_naming_the_record() -> None:
    with pytest.raises(InvalidTransition, match="Lead 'lead-1' cannot reactivate while open") as e:
        fire(LeadLifecycle, "open", "reactivate", what="Lead 'lead-1'")
    assert (e.value.state, e.value.event) == ("open", "reactivate")
    assert "allowed now: disqualify, qualify" in str(e.value)


def test_fire_applies_the_lead_disqualify_guard() -> None:
    assert (
        fire(LeadLifecycle, "open", "disqualify", what="Lead", has_open_opportunity=False)
        == "disqualified"
    )
    with pytest.raises(InvalidTransition):
        fire(LeadLifecycle, "open", "disqualify", what="Lead", has_open_opportunity=True)


def test_fire_in_a_final_state_says_no_move_is_allowed() -> None:
    with pytest.raises(InvalidTransition, match="no move is allowed now"):
        fire(ActivityLifecycle, "completed", "complete", what="Activity 'a'")


def test_the_lead_diagram_is_generated_from_the_class() -> None:
    diagram = mermaid(LeadLifecycle)
    assert diagram.startswith("stateDiagram-v2\n")
    for line in [
        "[*] --> open",
        "open --> qualified : Qualify",
        "open --> disqualified : Disqualify [!has_open_opportunity]",
        "qualified --> open : Reactivate",
        "disqualified --> open : Reactivate",
    ]:
        assert line in diagram
    assert "active" not in diagram
