"""Whole-model rules of a scoring model: every problem at once.

`validate` returns every `Problem` of a `ScoringModel`, each naming the rule or grade
at fault and saying how to fix it; `require_valid` turns them into one
`InvalidDefinition` (compiling and publishing call it). Local rules are checked when
the objects are built, in `salesflow.scoring_model`.
"""

from __future__ import annotations

from enum import StrEnum

import attrs

from salesflow.conditions import Condition, comparisons
from salesflow.errors import InvalidDefinition, ValidationError
from salesflow.scoring_model import (
    MAX_RULES,
    Frequency,
    Grade,
    InteractionCondition,
    ScoringModel,
    field_access,
)

__all__ = ["Problem", "ProblemCode", "require_valid", "validate"]


class ProblemCode(StrEnum):
    """What is wrong with a model; the ``code`` of a `Problem`."""

    NO_RULES = "no_rules"
    TOO_MANY_RULES = "too_many_rules"
    DUPLICATE_RULE_ID = "duplicate_rule_id"
    EMPTY_RULE = "empty_rule"
    UNKNOWN_FIELD = "unknown_field"
    SEVERAL_EACH = "several_each"
    DUPLICATE_GRADE = "duplicate_grade"
    GRADE_OVERLAP = "grade_overlap"
    GRADE_GAP = "grade_gap"
    GRADE_OPEN_END = "grade_open_end"
    THRESHOLD_UNREACHABLE = "threshold_unreachable"


@attrs.frozen
class Problem:
    """One thing wrong with a model.

    Attributes:
        rule_id: The rule at fault, or ``None``.
        grade: The grade at fault (its name), or ``None``.
        code: A `ProblemCode` value, stable for hosts to match on.
        message: A complete sentence naming the rule or grade and saying how to fix it.
    """

    rule_id: str | None
    grade: str | None
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def _field_problems(condition: Condition, where: str, rule_id: str | None) -> list[Problem]:
    found = []
    for compare in comparisons(condition):
        try:
            field_access(compare.field)
        except ValidationError as exc:
            found.append(Problem(rule_id, None, ProblemCode.UNKNOWN_FIELD, f"{where}: {exc}"))
    return found


def validate(model: ScoringModel) -> list[Problem]:
    """Every problem of ``model`` at once, each naming the rule or grade at fault.

    Args:
        model: The model to check.

    Returns:
        The problems found, in model order; empty when the model is valid.
    """
    problems: list[Problem] = []
    name = f"scoring model {model.id!r}"
    if not model.rules:
        problems.append(
            Problem(None, None, ProblemCode.NO_RULES, f"{name} has no rules; add at least one")
        )
    if len(model.rules) > MAX_RULES:
        problems.append(
            Problem(
                None,
                None,
                ProblemCode.TOO_MANY_RULES,
                f"{name} has {len(model.rules)} rules; a model may have at most {MAX_RULES}",
            )
        )
    if model.audience is not None:
        problems += _field_problems(model.audience, f"the audience of {name}", None)
    seen: set[str] = set()
    for rule in model.rules:
        where = f"rule {rule.id!r} of {name}"
        if rule.id in seen:
            problems.append(
                Problem(
                    rule.id,
                    None,
                    ProblemCode.DUPLICATE_RULE_ID,
                    f"{where} uses an id an earlier rule has; give every rule its own id",
                )
            )
        seen.add(rule.id)
        if not rule.conditions:
            problems.append(
                Problem(
                    rule.id,
                    None,
                    ProblemCode.EMPTY_RULE,
                    f"{where} has no conditions and would score every lead; add a condition",
                )
            )
        each = 0
        for condition in rule.conditions:
            if isinstance(condition, InteractionCondition):
                each += condition.frequency is Frequency.EACH
            else:
                problems += _field_problems(condition, where, rule.id)
        if each > 1:
            problems.append(
                Problem(
                    rule.id,
                    None,
                    ProblemCode.SEVERAL_EACH,
                    f"{where} has {each} conditions of frequency 'each'; a rule scores per "
                    f"occurrence of at most one; split it into one rule per interaction",
                )
            )
    problems += _grade_problems(model, name)
    problems += _threshold_problems(model, name)
    return problems


def _grade_problems(model: ScoringModel, name: str) -> list[Problem]:
    problems: list[Problem] = []
    names: set[str] = set()
    for grade in model.grades:
        if grade.name in names:
            problems.append(
                Problem(
                    None,
                    grade.name,
                    ProblemCode.DUPLICATE_GRADE,
                    f"grade {grade.name!r} of {name} appears twice; give each grade its own name",
                )
            )
        names.add(grade.name)
    ordered = sorted(model.grades, key=lambda g: (g.low is not None, g.low or 0))
    for i, grade in enumerate(ordered):
        if grade.low is None and i > 0:
            problems.append(
                Problem(
                    None,
                    grade.name,
                    ProblemCode.GRADE_OPEN_END,
                    f"grade {grade.name!r} of {name} has no low end, but only the lowest "
                    f"grade may be open below; give it a low end",
                )
            )
        if grade.high is None and i < len(ordered) - 1:
            problems.append(
                Problem(
                    None,
                    grade.name,
                    ProblemCode.GRADE_OPEN_END,
                    f"grade {grade.name!r} of {name} has no high end, but only the highest "
                    f"grade may be open above; give it a high end",
                )
            )
        if i == 0 or grade.low is None:
            continue
        before = ordered[i - 1]
        if before.high is None or before.high >= grade.low:
            problems.append(
                Problem(
                    None,
                    grade.name,
                    ProblemCode.GRADE_OVERLAP,
                    f"grade {grade.name!r} of {name} ({_range(grade)}) overlaps grade "
                    f"{before.name!r} ({_range(before)}); make the ranges disjoint",
                )
            )
        elif before.high + 1 < grade.low:
            problems.append(
                Problem(
                    None,
                    grade.name,
                    ProblemCode.GRADE_GAP,
                    f"grade {grade.name!r} of {name} starts at {grade.low}, but grade "
                    f"{before.name!r} ends at {before.high}: scores {before.high + 1} to "
                    f"{grade.low - 1} have no grade; make the ranges continuous",
                )
            )
    return problems


def _range(grade: Grade) -> str:
    low = "..." if grade.low is None else str(grade.low)
    high = "..." if grade.high is None else str(grade.high)
    return f"{low} to {high}"


def _threshold_problems(model: ScoringModel, name: str) -> list[Problem]:
    if not model.rules:
        return []
    unbounded = any(
        isinstance(c, InteractionCondition) and c.frequency is Frequency.EACH
        for rule in model.rules
        for c in rule.conditions
    )
    best = sum(rule.points for rule in model.rules if rule.points > 0)
    if unbounded or model.sales_ready_threshold <= best:
        return []
    return [
        Problem(
            None,
            None,
            ProblemCode.THRESHOLD_UNREACHABLE,
            f"the sales-ready threshold {model.sales_ready_threshold} of {name} cannot be "
            f"reached: all positive points together make {best}; lower the threshold or "
            f"add points",
        )
    ]


def require_valid(model: ScoringModel) -> None:
    """Raise unless ``model`` is valid (compiling and publishing call this).

    Raises:
        InvalidDefinition: With every problem's message, when `validate` finds any.
    """
    problems = validate(model)
    if problems:
        raise InvalidDefinition(problems=[p.message for p in problems])
