"""Running python-statemachine lifecycles transiently around a stored state.

Every lifecycle (lead status, opportunity, activity, later quotes and
enrollments) is declared once as a `StateMachine` class. The state itself is a
plain ``str`` on the attrs entity: a command builds a machine around a tiny slot
holding that string, fires one event and reads the new state back. Entity
methods therefore never become callbacks by accident, and no machine outlives
the command.
"""

from __future__ import annotations

from typing import Any

from statemachine import StateMachine
from statemachine.exceptions import TransitionNotAllowed

from salesflow.errors import InvalidTransition

__all__ = ["fire", "mermaid", "transitions"]


class _Slot:
    """The machine's model: holds only the state value."""

    __slots__ = ("state",)

    def __init__(self, state: str | None) -> None:
        self.state = state


def fire(machine: type[StateMachine], state: str, event: str, *, what: str, **context: Any) -> str:
    """Fire ``event`` on a machine restored at ``state``; return the new state.

    Args:
        machine: The lifecycle class.
        state: The stored state value to restore (entry actions do not run).
        event: The event name, as declared on the class.
        what: How to name the record in an error (``"Lead 'l-1'"``).
        **context: Passed to the machine's guards (``cond=``) as keyword arguments.

    Raises:
        InvalidTransition: The event is not allowed in ``state`` or a guard refused it.
    """
    slot = _Slot(state)
    sm = machine(model=slot, state_field="state")
    try:
        sm.send(event, **context)
    except TransitionNotAllowed:
        allowed = sorted(
            {e for t in machine.states_map[state].transitions for e in str(t.event).split()}
        )
        if event in allowed:
            hint = "a condition of the lifecycle refused it"
        elif allowed:
            hint = f"allowed now: {', '.join(allowed)}"
        else:
            hint = "no move is allowed now"
        raise InvalidTransition(
            f"{what} cannot {event.replace('_', ' ')} while {state} ({hint})",
            state=state,
            event=event,
        ) from None
    assert isinstance(slot.state, str)
    return slot.state


def transitions(machine: type[StateMachine]) -> dict[tuple[str, str], str]:
    """The machine's transition table ``{(state, event): target}``, guards ignored.

    For hot paths that cannot afford building a machine, derived from the class so
    the class stays the single source of truth.
    """
    table: dict[tuple[str, str], str] = {}
    for state in machine.states_map.values():
        for transition in state.transitions:
            for event in str(transition.event).split():
                table[(str(state.value), event)] = str(transition.target.value)
    return table


def mermaid(machine: type[StateMachine]) -> str:
    """Render the lifecycle as a Mermaid state diagram (no active-state marks)."""
    sm = machine(model=_Slot(None), state_field="state")
    lines = format(sm, "mermaid").splitlines()
    keep = [ln for ln in lines if "classDef active" not in ln and ":::active" not in ln]
    return "\n".join(keep).rstrip() + "\n"
