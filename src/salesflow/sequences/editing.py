"""Editing a sequence as a graph: copy one (a standard template, say) and add or remove
steps, the branches rewired (SPEC R5.4: "a user copies one and adds or removes steps").

Every function returns a new `SequenceDefinition` and checks it with
`salesflow.sequences.validation.require_valid`, so an edit that would leave a broken
graph (a condition that can no longer tell which email it watches, a dead end) is
refused at once with every problem named, not at publishing.
"""

from __future__ import annotations

from typing import Any, cast, get_args

import attrs

from salesflow.errors import ValidationError
from salesflow.sequences.definition import (
    ConditionStep,
    SequenceDefinition,
    Step,
)
from salesflow.sequences.validation import require_valid

__all__ = ["copy_sequence", "insert_after", "insert_before", "remove_step"]


def copy_sequence(
    definition: SequenceDefinition, *, id: str, name: str | None = None
) -> SequenceDefinition:
    """A copy of ``definition`` under a new ``id`` (and ``name``), at version 1, to
    publish as a sequence of its own.

    Raises:
        ValidationError: ``id`` or ``name`` is malformed, or ``id`` is the original's.
    """
    _require_definition(definition)
    if id == definition.id:
        raise ValidationError(
            f"the copy of sequence {definition.id!r} needs an id of its own",
            field="id",
            value=id,
        )
    return attrs.evolve(definition, id=id, name=name or definition.name, version=1)


def _require_definition(definition: object) -> SequenceDefinition:
    if not isinstance(definition, SequenceDefinition):
        raise ValidationError(
            f"{definition!r} is not a SequenceDefinition; pass one (load_template(name) "
            f"gives a standard template)",
            field="definition",
            value=definition,
        )
    return definition


def _with_next(step: Step, target: str) -> Step:
    """``step`` leading on to ``target`` (a step kind with a single ``next``)."""
    changed: Step = attrs.evolve(cast(Any, step), next=target)
    return changed


def _retarget(step: Step, old: str, new: str) -> Step:
    """``step`` with every branch to ``old`` pointing at ``new`` instead."""
    if isinstance(step, ConditionStep):
        return attrs.evolve(
            step,
            yes=new if step.yes == old else step.yes,
            no=new if step.no == old else step.no,
        )
    if getattr(step, "next", None) == old:
        return _with_next(step, new)
    return step


def _check_new(definition: SequenceDefinition, step: Step) -> None:
    if not isinstance(step, get_args(Step)):
        raise ValidationError(
            f"{step!r} is not a step; pass an ActivityStep, WaitStep, UpdateFieldStep, "
            f"SetStatusStep or ABTestStep",
            field="step",
            value=step,
        )
    if step.id in definition.by_id:
        raise ValidationError(
            f"sequence {definition.id!r} has a step {step.id!r} already; give the new step "
            f"an id of its own",
            field="step",
            value=step.id,
        )


def _edited(definition: SequenceDefinition, steps: list[Step], entry: str) -> SequenceDefinition:
    edited = attrs.evolve(definition, steps=tuple(steps), entry=entry)
    require_valid(edited)
    return edited


def insert_before(definition: SequenceDefinition, step_id: str, step: Step) -> SequenceDefinition:
    """Put ``step`` in front of ``step_id``: every branch into ``step_id`` (and the
    entry, if it is the first step) now leads to ``step``, which leads on to
    ``step_id``. ``step`` must have a single way on (not a condition or an end).

    Raises:
        ValidationError: no such step, the new step's id is taken, or it has no
            single ``next``.
        InvalidDefinition: the edited sequence is not valid (every problem named).
    """
    _require_definition(definition).step(step_id)
    _check_new(definition, step)
    if not hasattr(step, "next") or isinstance(step, ConditionStep):
        raise ValidationError(
            f"step {step.id!r} cannot go before another step: it has no single next step "
            f"(insert a condition or an end by building the graph with its branches)",
            field="step",
            value=step.id,
        )
    new = _with_next(step, step_id)
    steps: list[Step] = []
    for existing in definition.steps:
        if existing.id == step_id:
            steps.append(new)
        steps.append(_retarget(existing, step_id, step.id))
    entry = step.id if definition.entry == step_id else definition.entry
    return _edited(definition, steps, entry)


def insert_after(definition: SequenceDefinition, step_id: str, step: Step) -> SequenceDefinition:
    """Put ``step`` right after ``step_id``, which must have a single next step: it
    now leads to ``step``, and ``step`` to what came after it.

    Raises:
        ValidationError: no such step, it has no single next step, the new step's id
            is taken, or the new step has no single ``next``.
        InvalidDefinition: the edited sequence is not valid (every problem named).
    """
    after = _require_definition(definition).step(step_id)
    _check_new(definition, step)
    following = getattr(after, "next", None)
    if isinstance(after, ConditionStep) or following is None:
        raise ValidationError(
            f"step {step_id!r} has no single next step to put {step.id!r} in front of; "
            f"use insert_before with the step the new one should lead to",
            field="step",
            value=step_id,
        )
    return insert_before(definition, following, step)


def remove_step(definition: SequenceDefinition, step_id: str) -> SequenceDefinition:
    """Take ``step_id`` out: every branch into it (and the entry) now leads to its next
    step. Only a step with a single next step can go; a condition's branches or an
    end cannot be joined up by themselves.

    Raises:
        ValidationError: no such step, or it has no single next step.
        InvalidDefinition: the edited sequence is not valid, e.g. a condition that
            watched the removed email (every problem named).
    """
    removed = _require_definition(definition).step(step_id)
    following = getattr(removed, "next", None)
    if isinstance(removed, ConditionStep) or following is None:
        raise ValidationError(
            f"step {step_id!r} has no single next step, so its branches cannot be joined "
            f"up; remove the steps of a branch one by one, or rebuild it",
            field="step",
            value=step_id,
        )
    steps = [
        _retarget(existing, step_id, following)
        for existing in definition.steps
        if existing.id != step_id
    ]
    entry = following if definition.entry == step_id else definition.entry
    return _edited(definition, steps, entry)
