"""The lead the store contract's tests are built from: `lead` numbered ``n``, and `T0`,
the instant its times (and the other contract records' times) count from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from salesflow.lead import Lead

__all__ = ["T0", "lead"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""The instant the contract's records are created at, or count their times from."""


def lead(n: int, **fields: Any) -> Lead:
    """A valid lead numbered ``n``; ``fields`` override the defaults."""
    base: dict[str, Any] = {
        "id": f"lead-{n:04d}",
        "created_at": T0 + timedelta(hours=n),
        "modified_at": T0 + timedelta(hours=n),
        "topic": f"Topic {n}",
        "last_name": f"Name{n}",
    }
    base.update(fields)
    return Lead(**base)
