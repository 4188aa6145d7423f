"""A/B tests: counting each variant's results and deciding the winner.

An ``ab_test`` step sends one of two automated emails; ``split_percent`` of the
audience gets variant A (a stable split by enrollment id). The test is decided
once, for its sequence version:

* **significance**: as soon as each variant has been sent at least `MIN_SENT`
  times and a two-sided two-proportion z-test on the step's metric (replies,
  link clicks or opens per email sent) gives |z| >= `Z_CRITICAL` (95 %
  confidence), the variant with the higher rate wins;
* **deadline**: otherwise, when ``deadline`` has passed since the first email of
  the test was sent, the ``default_variant`` is used.

From then on every enrollment that reaches the step gets the winner. This module
is pure: the engine counts from the stored enrollments (`tally`), decides
(`decide`) in a due item it schedules when the first email goes out, and stores
the decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs

from salesflow.sequences.definition import ABMetric, ABTestStep, EmailEvent
from salesflow.sequences.enrollment import Enrollment

__all__ = ["METRIC_EVENTS", "MIN_SENT", "Z_CRITICAL", "ABTally", "decide", "tally"]

MIN_SENT = 30
"""How many emails each variant needs before a difference can count as significant."""

Z_CRITICAL = 1.959964
"""The |z| of a two-sided test at 95 % confidence."""

METRIC_EVENTS: dict[ABMetric, EmailEvent] = {
    ABMetric.REPLIES: EmailEvent.REPLIED,
    ABMetric.CLICKS: EmailEvent.LINK_CLICKED,
    ABMetric.OPENS: EmailEvent.OPENED,
}
"""The email event each metric counts."""


@attrs.frozen(kw_only=True)
class ABTally:
    """What each variant of one A/B test step achieved so far.

    Attributes:
        sent_a: Emails of variant A sent.
        hits_a: Of those, how many had the metric's event.
        sent_b: Emails of variant B sent.
        hits_b: Of those, how many had the metric's event.
    """

    sent_a: int = 0
    hits_a: int = 0
    sent_b: int = 0
    hits_b: int = 0

    def rate(self, variant: str) -> float | None:
        """The metric's rate of ``variant`` (``a``/``b``); None before any email."""
        sent, hits = (self.sent_a, self.hits_a) if variant == "a" else (self.sent_b, self.hits_b)
        return hits / sent if sent else None

    @property
    def z(self) -> float | None:
        """The two-proportion z statistic (A minus B); None when it is undefined."""
        if not self.sent_a or not self.sent_b:
            return None
        pooled = (self.hits_a + self.hits_b) / (self.sent_a + self.sent_b)
        spread = math.sqrt(pooled * (1 - pooled) * (1 / self.sent_a + 1 / self.sent_b))
        if spread == 0:
            return None
        return (self.hits_a / self.sent_a - self.hits_b / self.sent_b) / spread


def tally(step: ABTestStep, enrollments: Iterable[Enrollment]) -> ABTally:
    """Count the emails ``step`` sent to ``enrollments`` and the metric's events.

    Args:
        step: The A/B test step.
        enrollments: Enrollments of the step's sequence version (others are
            harmless: they never sent this step).

    Returns:
        The tally; an enrollment counts once, with the variant it was sent.
    """
    event = METRIC_EVENTS[step.metric]
    counts = {"a": [0, 0], "b": [0, 0]}
    for e in enrollments:
        variant = e.variants.get(step.id)
        if variant not in counts:
            continue
        counts[variant][0] += 1
        if event in e.email_events.get(step.id, frozenset()):
            counts[variant][1] += 1
    return ABTally(
        sent_a=counts["a"][0], hits_a=counts["a"][1], sent_b=counts["b"][0], hits_b=counts["b"][1]
    )


def decide(step: ABTestStep, counts: ABTally, *, deadline_passed: bool) -> tuple[str, str] | None:
    """The winner of ``step`` from ``counts``, and why.

    Args:
        step: The A/B test step.
        counts: What each variant achieved.
        deadline_passed: Whether ``step.deadline`` has passed since its first email.

    Returns:
        ``(variant, "significant")`` when the difference is significant,
        ``(step.default_variant, "deadline")`` when the deadline passed without
        one, else None (keep splitting).
    """
    z = counts.z
    if min(counts.sent_a, counts.sent_b) >= MIN_SENT and z is not None and abs(z) >= Z_CRITICAL:
        return ("a" if z > 0 else "b"), "significant"
    if deadline_passed:
        return step.default_variant, "deadline"
    return None
