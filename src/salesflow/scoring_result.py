"""What scoring a lead answers: `ScoreResult` with its `RuleHit` explanation, or
`NotScored` with a `NotScoredReason`.

`salesflow.scoring_compile.score` builds them; stores keep `ScoreResult` s as the
lead's score history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import attrs

from salesflow.values import aware, optional_aware

__all__ = ["NotScored", "NotScoredReason", "RuleHit", "ScoreResult"]


class NotScoredReason(StrEnum):
    """Why a model does not score a lead."""

    NO_PARENT = "no_parent"
    """The lead lacks the parent the model's target needs."""
    CONTACT_BASED = "contact_based"
    """The model targets accounts, but the lead has a parent contact: a lead with a
    parent contact is contact-based (also when it has a parent account too), so only
    contact-target models score it."""
    OUTSIDE_AUDIENCE = "outside_audience"
    """The model's audience filter does not hold for the lead."""


@attrs.frozen(kw_only=True)
class RuleHit:
    """One rule that fired, in an explanation.

    Attributes:
        rule_id: The rule.
        rule_name: Its name, for people.
        points: What it added: the rule's points times ``occurrences``.
        interactions: The ids of the interactions that made it fire (those counted by
            its ``each`` and ``at_least`` conditions), oldest first.
        occurrences: How many times it scored: the count of its ``each`` condition,
            else 1.
    """

    rule_id: str
    rule_name: str
    points: int
    interactions: tuple[str, ...] = ()
    occurrences: int = 1


@attrs.frozen(kw_only=True)
class ScoreResult:
    """A lead's score under one model version, and why.

    Attributes:
        model_id: The model.
        model_version: Its version.
        lead_id: The lead scored.
        points: The score: the sum of ``explanation`` 's points.
        grade: The name of the grade ``points`` falls in, or ``None``.
        sales_ready: ``points`` reached the model's sales-ready threshold.
        explanation: Every rule that fired, in model order.
        next_change_at: The earliest instant after ``scored_at`` at which the score
            may change by itself (an interaction leaving, or a future-dated one
            entering, a rule's window): re-score then. ``None`` when time alone never
            changes it. Timezone-aware.
        scored_at: The ``now`` the score was computed for (timezone-aware; a naive
            datetime raises `ValidationError`).
    """

    model_id: str
    model_version: int
    lead_id: str
    points: int
    grade: str | None
    sales_ready: bool
    explanation: tuple[RuleHit, ...]
    next_change_at: datetime | None = attrs.field(validator=optional_aware)
    scored_at: datetime = attrs.field(validator=aware)


@attrs.frozen(kw_only=True)
class NotScored:
    """The model does not score the lead.

    Attributes:
        model_id: The model.
        model_version: Its version.
        lead_id: The lead.
        reason: Why (`NotScoredReason`).
        message: The same as a sentence.
    """

    model_id: str
    model_version: int
    lead_id: str
    reason: NotScoredReason
    message: str
