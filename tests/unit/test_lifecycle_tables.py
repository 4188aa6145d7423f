"""`salesflow.lifecycle.fire` answers from a table derived from each lifecycle class
(guards included) exactly as a machine built around the state would, and falls
back to the machine for classes the table cannot stand for."""

from __future__ import annotations

import itertools

import pytest
from statemachine import State, StateMachine

from salesflow.activity import ActivityLifecycle
from salesflow.errors import InvalidTransition
from salesflow.lead import LeadLifecycle
from salesflow.lifecycle import fire, fire_machine, guarded_transitions
from salesflow.opportunity import OpportunityLifecycle
from salesflow.sequences.enrollment import EnrollmentLifecycle

LIFECYCLES: list[type[StateMachine]] = [
    LeadLifecycle,
    OpportunityLifecycle,
    ActivityLifecycle,
    EnrollmentLifecycle,
]


def _events(machine: type[StateMachine]) -> set[str]:
    return {
        event
        for state in machine.states_map.values()
        for transition in state.transitions
        for event in str(transition.event).split()
    }


def _outcome(call: object, *args: object, **kwargs: object) -> object:
    try:
        return call(*args, **kwargs)  # type: ignore[operator]
    except InvalidTransition as refused:
        return ("refused", str(refused), refused.state, refused.event)


@pytest.mark.parametrize("machine", LIFECYCLES, ids=lambda m: m.__name__)
def test_the_table_answers_as_the_machine_for_every_state_event_and_guard(
    machine: type[StateMachine],
) -> None:
    assert guarded_transitions(machine) is not None  # salesflow's lifecycles are tabled
    contexts: list[dict[str, object]] = [
        {},
        {"has_open_opportunity": True},
        {"has_open_opportunity": False},
    ]
    checked = 0
    for state, event, context in itertools.product(
        machine.states_map, sorted(_events(machine) | {"no_such_event"}), contexts
    ):
        table = _outcome(fire, machine, state, event, what="Record 'r-1'", **context)
        built = _outcome(fire_machine, machine, state, event, what="Record 'r-1'", **context)
        assert table == built, (state, event, context)
        checked += 1
    assert checked >= len(machine.states_map) * 2


def test_the_lead_guard_refuses_disqualifying_with_an_open_opportunity() -> None:
    assert fire(LeadLifecycle, "open", "disqualify", what="Lead 'l'") == "disqualified"
    with pytest.raises(InvalidTransition, match="a condition of the lifecycle refused it"):
        fire(LeadLifecycle, "open", "disqualify", what="Lead 'l'", has_open_opportunity=True)


class _Noisy(StateMachine):
    """A lifecycle with a callback: the table cannot stand for it."""

    first = State("First", initial=True, value="first")
    second = State("Second", final=True, value="second")

    go = first.to(second)

    def on_go(self) -> None:
        _Noisy.calls += 1

    calls = 0


class _Needy(StateMachine):
    """A guard with an argument it requires: only a machine can supply it."""

    first = State("First", initial=True, value="first")
    second = State("Second", final=True, value="second")

    go = first.to(second, cond="allowed")

    def allowed(self, permit: bool = False) -> bool:
        return permit


def test_a_class_with_callbacks_runs_as_a_machine() -> None:
    assert guarded_transitions(_Noisy) is None
    before = _Noisy.calls
    assert fire(_Noisy, "first", "go", what="x") == "second"
    assert _Noisy.calls == before + 1  # the callback ran: a machine was built


def test_guards_read_their_keyword_arguments() -> None:
    assert guarded_transitions(_Needy) is not None
    with pytest.raises(InvalidTransition):
        fire(_Needy, "first", "go", what="x")
    assert fire(_Needy, "first", "go", what="x", permit=True) == "second"
    assert fire(_Needy, "first", "go", what="x", permit=True, other=1) == "second"


def test_an_unknown_state_behaves_as_the_machine() -> None:
    with pytest.raises(KeyError):
        fire(LeadLifecycle, "bogus", "qualify", what="Lead 'l'")
