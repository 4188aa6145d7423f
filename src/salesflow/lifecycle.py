"""Running python-statemachine lifecycles transiently around a stored state.

Every lifecycle (lead status, opportunity, activity, later quotes and
enrollments) is declared once as a `StateMachine` class. The state itself is a
plain ``str`` on the attrs entity: a command builds a machine around a tiny slot
holding that string, fires one event and reads the new state back. Entity
methods therefore never become callbacks by accident, and no machine outlives
the command. Where the class has no callbacks to run, `fire` answers from a
transition table derived once from the class (guards included) instead of
building the machine: the same answer for a microsecond instead of ~0.2 ms, and
the class stays the single source of truth (DESIGN §1.5).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from statemachine import StateMachine
from statemachine.exceptions import TransitionNotAllowed

from salesflow.errors import InvalidTransition

__all__ = [
    "Guard",
    "GuardedTable",
    "fire",
    "fire_machine",
    "guarded_transitions",
    "mermaid",
    "transitions",
]


class _Slot:
    """The machine's model: holds only the state value."""

    __slots__ = ("state",)

    def __init__(self, state: str | None) -> None:
        self.state = state


def fire(machine: type[StateMachine], state: str, event: str, *, what: str, **context: Any) -> str:
    """Fire ``event`` on a machine restored at ``state``; return the new state.

    Lifecycles without callbacks (the ones salesflow declares) move through a table
    derived once from the class, guards included (`guarded_transitions`): building a
    machine costs ~0.2 ms, a table look-up a microsecond, and the answer is the
    same. A class with callbacks, or guards the table cannot evaluate, is run as a
    machine.

    Args:
        machine: The lifecycle class.
        state: The stored state value to restore (entry actions do not run).
        event: The event name, as declared on the class.
        what: How to name the record in an error (``"Lead 'l-1'"``).
        **context: Passed to the machine's guards (``cond=``) as keyword arguments.

    Raises:
        InvalidTransition: The event is not allowed in ``state`` or a guard refused it.
    """
    table = guarded_transitions(machine)
    if table is None or state not in machine.states_map:
        return fire_machine(machine, state, event, what=what, **context)
    for target, guards in table.get((state, event), ()):
        passed = True
        for guard in guards:
            verdict = guard.check(context)
            if verdict is None:  # the guard needs what only a machine gives it
                return fire_machine(machine, state, event, what=what, **context)
            if not verdict:
                passed = False
                break
        if passed:
            return target
    raise _refused(machine, state, event, what)


def fire_machine(
    machine: type[StateMachine], state: str, event: str, *, what: str, **context: Any
) -> str:
    """`fire` by building the machine around ``state`` (what the table stands for)."""
    slot = _Slot(state)
    sm = machine(model=slot, state_field="state")
    try:
        sm.send(event, **context)
    except TransitionNotAllowed:
        raise _refused(machine, state, event, what) from None
    assert isinstance(slot.state, str)
    return slot.state


def _refused(machine: type[StateMachine], state: str, event: str, what: str) -> InvalidTransition:
    allowed = sorted(
        {e for t in machine.states_map[state].transitions for e in str(t.event).split()}
    )
    if event in allowed:
        hint = "a condition of the lifecycle refused it"
    elif allowed:
        hint = f"allowed now: {', '.join(allowed)}"
    else:
        hint = "no move is allowed now"
    return InvalidTransition(
        f"{what} cannot {event.replace('_', ' ')} while {state} ({hint})",
        state=state,
        event=event,
    )


class Guard:
    """One guard of a transition, evaluated without a machine: a method of the
    lifecycle class named by ``cond=``/``unless=`` that reads only its keyword
    arguments (python-statemachine passes the ones its signature names)."""

    __slots__ = ("expected", "func", "names", "required", "takes_all")

    def __init__(self, func: Callable[..., Any], expected: bool) -> None:
        self.func = func
        self.expected = expected
        parameters = list(inspect.signature(func).parameters.values())[1:]  # after self
        self.takes_all = any(p.kind is p.VAR_KEYWORD for p in parameters)
        self.names = frozenset(
            p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        self.required = frozenset(
            p.name
            for p in parameters
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )

    def check(self, context: dict[str, Any]) -> bool | None:
        """Whether the guard lets the transition happen; None when ``context`` lacks
        an argument the guard requires (only a machine can supply it)."""
        if not self.required <= context.keys():
            return None
        kwargs = context if self.takes_all else {k: context[k] for k in self.names & context.keys()}
        return bool(self.func(None, **kwargs)) == self.expected


GuardedTable = dict[tuple[str, str], tuple[tuple[str, tuple[Guard, ...]], ...]]
"""``{(state, event): ((target, guards), ...)}`` in declaration order: the first
transition whose guards all pass is taken."""

_GUARDED: dict[type[StateMachine], GuardedTable | None] = {}


def guarded_transitions(machine: type[StateMachine]) -> GuardedTable | None:
    """The machine's transitions with their guards, derived once per class; None when
    the class has anything a table cannot stand for (callbacks that would run on a
    transition, validators, guards that are not plain methods of the class)."""
    if machine in _GUARDED:
        return _GUARDED[machine]
    table = _derive(machine)
    _GUARDED[machine] = table
    return table


def _quiet(machine: type[StateMachine], specs: Any) -> bool:
    """True when none of ``specs`` would call anything: conventional names the class
    does not define."""
    return all(s.is_convention and not hasattr(machine, s.func) for s in specs)


def _derive(machine: type[StateMachine]) -> GuardedTable | None:
    moves: dict[tuple[str, str], list[tuple[str, tuple[Guard, ...]]]] = {}
    for state in machine.states_map.values():
        if not (_quiet(machine, state.enter) and _quiet(machine, state.exit)):
            return None
        for transition in state.transitions:
            if list(transition.validators) or not all(
                _quiet(machine, group)
                for group in (transition.before, transition.on, transition.after)
            ):
                return None
            guards = []
            for spec in transition.cond:
                func = inspect.getattr_static(machine, str(spec.func), None)
                if (
                    spec.is_convention
                    or not str(spec.func).isidentifier()
                    or not inspect.isfunction(func)
                ):
                    return None
                guards.append(Guard(func, bool(spec.expected_value)))
            for event in str(transition.event).split():
                moves.setdefault((str(state.value), event), []).append(
                    (str(transition.target.value), tuple(guards))
                )
    return {key: tuple(found) for key, found in moves.items()}


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
