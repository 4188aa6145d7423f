"""Similarity of two normalized values, for the additional conditions of matching
rules (`salesflow.matching.MatchingStrategy` with a main condition): a ratio from
`difflib` against a threshold per level. Pure; the standard library only."""

from __future__ import annotations

from collections.abc import Mapping
from difflib import SequenceMatcher
from enum import StrEnum

__all__ = ["SIMILARITY_THRESHOLDS", "Similarity", "similar", "similarity_ratio"]


class Similarity(StrEnum):
    """How close an additional condition's values must be (`similar`): equal, or a
    `similarity_ratio` of at least `SIMILARITY_THRESHOLDS` of the level."""

    EXACT = "exact"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SIMILARITY_THRESHOLDS: Mapping[Similarity, float] = {
    Similarity.HIGH: 0.85,
    Similarity.MEDIUM: 0.75,
    Similarity.LOW: 0.65,
}
"""The least `similarity_ratio` of each non-exact `Similarity`.

The ratio is ``2 * M / T`` (M matching characters, T the two lengths together), so
one wrong letter in an n-letter name gives ``(n - 1) / n`` and one letter too many
or too few ``2n / (2n + 1)``. ``high`` (0.85) takes one wrong letter in a name of 7
letters or more ("jonathan"/"jonathon" 0.875, "catherine"/"katherine" 0.889) and a
missing letter ("thompson"/"thomson" 0.933); ``medium`` (0.75) also one wrong
letter in a short name ("smith"/"smyth" 0.8, "ruiz"/"ruis" 0.75); ``low`` (0.65)
two differences in a longer one ("kowalski"/"kowalczyk" 0.706), but not
"petraitis"/"petrauskas" (0.632). No level takes "ruiz"/"perez" (0.444)."""


def similarity_ratio(a: str, b: str) -> float:
    """How alike two normalized values are, from 0 (nothing in common) to 1 (equal):
    `difflib.SequenceMatcher`'s ratio, the same whichever value comes first."""
    return _matcher(a, b).ratio()


def _matcher(a: str, b: str) -> SequenceMatcher[str]:
    # SequenceMatcher's ratio depends on the order of its arguments ("ca" against
    # "acba" is 0.67, the other way 0.33): one order for both, so that a submission
    # matches a record exactly when the record would match the submission
    return SequenceMatcher(None, a, b) if a <= b else SequenceMatcher(None, b, a)


def similar(similarity: Similarity, a: str | None, b: str | None) -> bool:
    """Whether normalized values ``a`` and ``b`` are alike enough for ``similarity``.

    An empty value (None) is like only another empty value, at every level.
    """
    if a is None or b is None:
        return a is b
    if a == b:
        return True
    if similarity is Similarity.EXACT:
        return False
    least = SIMILARITY_THRESHOLDS[similarity]
    matcher = _matcher(a, b)
    # the cheap upper bounds first, as difflib.get_close_matches does
    return (
        matcher.real_quick_ratio() >= least
        and matcher.quick_ratio() >= least
        and matcher.ratio() >= least
    )
