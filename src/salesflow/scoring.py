"""Lead scoring: models, validation, the compiled scorer and model documents.

This module is the one place to import scoring from; the work is split by
responsibility:

* `salesflow.scoring_model` - `ScoringModel`, `ScoringRule`, `InteractionCondition`,
  `Grade` (field naming: ``lead.*``, ``contact.*``, ``account.*``);
* `salesflow.scoring_validation` - `validate` / `require_valid`;
* `salesflow.scoring_compile` - `compile_model` (one generated function per model
  version, written by `salesflow.scoring_codegen`) and `score` with its explanation;
* `salesflow.scoring_result` - what scoring answers: `ScoreResult`, `RuleHit`,
  `NotScored`;
* `salesflow.scoring_io` - `to_dict` / `from_dict` (schema-1 documents).

Example (the reference's: City = London +70 and Country = England +40 → 110):
    >>> from datetime import UTC, datetime
    >>> from salesflow.conditions import field
    >>> from salesflow.lead import Lead
    >>> model = ScoringModel(
    ...     id="uk", name="UK", sales_ready_threshold=100, score_leads_without_parent=True,
    ...     rules=[
    ...         ScoringRule(id="london", name="London",
    ...                     conditions=[field("lead.city").eq("London")], points=70),
    ...         ScoringRule(id="england", name="England",
    ...                     conditions=[field("lead.country").eq("England")], points=40),
    ...     ])
    >>> now = datetime(2026, 1, 5, tzinfo=UTC)
    >>> lead = Lead(id="l1", topic="t", last_name="Lee", city="London", country="England",
    ...             created_at=now, modified_at=now)
    >>> result = score(compile_model(model), lead=lead, now=now)
    >>> result.points, result.sales_ready, [h.rule_id for h in result.explanation]
    (110, True, ['london', 'england'])
"""

from __future__ import annotations

from salesflow.scoring_compile import (
    CompiledModel,
    NotScored,
    NotScoredReason,
    RuleHit,
    ScoreResult,
    compile_model,
    score,
)
from salesflow.scoring_io import from_dict, to_dict
from salesflow.scoring_model import (
    Frequency,
    Grade,
    InteractionCondition,
    RuleCondition,
    ScoringModel,
    ScoringRule,
    ScoringTarget,
)
from salesflow.scoring_validation import Problem, ProblemCode, require_valid, validate

__all__ = [
    "CompiledModel",
    "Frequency",
    "Grade",
    "InteractionCondition",
    "NotScored",
    "NotScoredReason",
    "Problem",
    "ProblemCode",
    "RuleCondition",
    "RuleHit",
    "ScoreResult",
    "ScoringModel",
    "ScoringRule",
    "ScoringTarget",
    "compile_model",
    "from_dict",
    "require_valid",
    "score",
    "to_dict",
    "validate",
]
