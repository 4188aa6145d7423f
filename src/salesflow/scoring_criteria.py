"""Qualification criteria: when a lead is sales-ready, as a condition over its models'
scores (the newer product's "qualification criteria combine models with AND/OR").

Without criteria a lead is sales-ready as soon as any model's score reaches that
model's threshold. With criteria it is sales-ready when the criteria hold for its
current scores. The criteria are a `salesflow.conditions.Condition` (the shared
predicate language: `all_of`, `any_of`, `not_`, comparisons) whose fields name one fact
of one model's current score of the lead:

==================  ======================================================
``score.<model>``   the points (a whole number)
``grade.<model>``   the grade's name (``"hot"``), None without grades
``ready.<model>``   whether that score reaches its model's threshold
==================  ======================================================

A model that has not scored the lead (or no longer does) gives None for each of its
facts, so ``field("score.fit").ge(50)`` is false for it and
``field("score.fit").is_null()`` true. For example, sales-ready when the fit model
says hot and the engagement model has reached its threshold, or fit alone scores 90
or more::

    any_of(
        all_of(field("grade.fit").eq("hot"), field("ready.engagement").eq(True)),
        field("score.fit").ge(90),
    )

This module is pure: checking criteria and evaluating them on a lead's scores. The
engine keeps them (`Salesflow.set_qualification_criteria`) and applies them whenever
it scores a lead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Not, evaluate, fields_of
from salesflow.errors import ValidationError
from salesflow.scoring_compile import ScoreResult

__all__ = ["FACTS", "check_criteria", "criteria_met", "models_of"]

FACTS = ("score", "grade", "ready")
"""The facts of a model's score that criteria can test: ``<fact>.<model id>``."""


def _split(name: str) -> tuple[str, str] | None:
    fact, dot, model_id = name.partition(".")
    if not dot or fact not in FACTS or not model_id:
        return None
    return fact, model_id


def models_of(criteria: Condition) -> list[str]:
    """The model ids the criteria test, each once, in the order they first appear."""
    seen: dict[str, None] = {}
    for name in fields_of(criteria):
        split = _split(name)
        if split is not None:
            seen.setdefault(split[1])
    return list(seen)


def check_criteria(criteria: object, model_ids: Iterable[str]) -> Condition:
    """Return ``criteria`` when every field names a fact of one of ``model_ids``.

    Raises:
        ValidationError: ``criteria`` is not a condition, a field is not
            ``score.<model>``, ``grade.<model>`` or ``ready.<model>``, or names a model
            that was never published (the message lists the published ones).
    """
    if not isinstance(criteria, Compare | AllOf | AnyOf | Not):
        raise ValidationError(
            f"qualification criteria must be a condition (field(...), all_of, any_of, "
            f"not_), not {type(criteria).__name__}",
            field="criteria",
            value=criteria,
        )
    known = set(model_ids)
    for name in fields_of(criteria):
        split = _split(name)
        if split is None:
            raise ValidationError(
                f"criteria field {name!r} is not a fact of a model's score; use "
                f"'score.<model id>', 'grade.<model id>' or 'ready.<model id>'",
                field="criteria",
                value=name,
            )
        if split[1] not in known:
            published = ", ".join(sorted(known)) or "none yet"
            raise ValidationError(
                f"criteria field {name!r} names model {split[1]!r}, which was never "
                f"published (published models: {published})",
                field="criteria",
                value=name,
            )
    return criteria


def criteria_met(criteria: Condition, scores: Mapping[str, ScoreResult]) -> bool:
    """Whether ``criteria`` hold for a lead whose current scores are ``scores`` (by
    model id)."""

    def value_of(name: str) -> Any:
        split = _split(name)
        found = None if split is None else scores.get(split[1])
        if split is None or found is None:
            return None
        if split[0] == "score":
            return found.points
        if split[0] == "grade":
            return found.grade
        return found.sales_ready

    return evaluate(criteria, value_of)
