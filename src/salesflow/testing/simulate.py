"""`simulate`: run an engine on a fake clock from due item to due item."""

from __future__ import annotations

from datetime import datetime

from salesflow.clock import FakeClock, require_aware
from salesflow.engine import Salesflow
from salesflow.errors import ValidationError

__all__ = ["simulate"]

_BATCH = 100


def simulate(engine: Salesflow, until: datetime, *, max_items: int = 1_000_000) -> int:
    """Move ``engine``'s fake clock through every due item up to ``until``.

    Repeatedly: find the earliest due item (`Salesflow.next_due_at`); stop when there
    is none or it is due after ``until``; otherwise set the clock to its ``due_at``
    (never backwards: items already overdue run at the current time) and call
    `Salesflow.run_due` until nothing more is due at that instant, so items that
    handlers schedule for the same instant run too. At the end the clock is set to
    ``until`` when that is later. No test ever sleeps.

    Args:
        engine: An engine whose ``clock`` is a `FakeClock`.
        until: Where time stops (aware).
        max_items: A safety limit against handlers that keep scheduling work for
            the same instant: when this many items were taken and more are due by
            ``until``, the simulation stops where it is (the clock is not moved to
            ``until``).

    Returns:
        How many items `Salesflow.run_due` took (performed, retried or failed).

    Raises:
        ValidationError: the clock is not a `FakeClock`, ``until`` is naive, or
            ``max_items`` is not a whole number >= 0.
    """
    clock = engine.clock
    if not isinstance(clock, FakeClock):
        raise ValidationError(
            f"simulate() moves the engine's clock, so it needs a FakeClock, not "
            f"{type(clock).__name__}; create the engine with clock=FakeClock(start)",
            field="clock",
            value=clock,
        )
    require_aware(until, "until")
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
        raise ValidationError(
            f"max_items={max_items!r} must be a whole number >= 0",
            field="max_items",
            value=max_items,
        )
    taken = 0
    while True:
        due = engine.next_due_at()
        if due is None or due > until:
            break
        if taken >= max_items:
            return taken  # stopped by the limit with work left: the clock stays here
        if due > clock.now():
            clock.set(due)
        ran = 0
        while taken < max_items:
            step = engine.run_due(limit=min(_BATCH, max_items - taken))
            taken += step
            ran += step
            if step == 0:
                break
        if ran == 0:
            break  # due items exist but none could be claimed (another process has them)
    if until > clock.now():
        clock.set(until)
    return taken
