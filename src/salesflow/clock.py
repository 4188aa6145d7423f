"""Time as a port: the only module that reads the wall clock.

The domain never calls ``datetime.now()``; the engine asks its injected
:class:`Clock`. Tests and simulations use :class:`FakeClock`, which only moves
when told to.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from salesflow.errors import ValidationError

__all__ = ["Clock", "FakeClock", "SystemClock", "require_aware"]


@runtime_checkable
class Clock(Protocol):
    """Tells the current time, always timezone-aware."""

    def now(self) -> datetime:
        """Return the current instant as an aware datetime."""
        ...


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        """Return the wall-clock time in UTC."""
        return datetime.now(UTC)


def require_aware(value: datetime, field: str) -> datetime:
    """Return ``value`` if it carries a time zone, else raise `ValidationError`.

    Args:
        value: The datetime to check.
        field: The name to report in the error (``"Lead.created_at"``).

    Raises:
        ValidationError: ``value`` is naive or not a datetime.
    """
    if not isinstance(value, datetime):
        raise ValidationError(
            f"{field} must be a datetime, got {value!r} ({type(value).__name__})",
            field=field,
            value=value,
        )
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError(
            f"{field} is a naive datetime ({value.isoformat()}); pass an aware one, "
            f"e.g. datetime(..., tzinfo=datetime.UTC) or with a ZoneInfo",
            field=field,
            value=value,
        )
    return value


class FakeClock:
    """A clock that stands still until `set` or `advance` moves it.

    Args:
        start: The initial instant; must be timezone-aware.

    Example:
        >>> from datetime import UTC, datetime, timedelta
        >>> clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
        >>> clock.advance(timedelta(hours=2)).hour
        11
    """

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "FakeClock.start")

    def now(self) -> datetime:
        """Return the instant the clock was last set to."""
        return self._now

    def set(self, instant: datetime) -> datetime:
        """Move the clock to ``instant``; it may not go backwards.

        Raises:
            ValidationError: ``instant`` is naive or earlier than now.
        """
        require_aware(instant, "FakeClock.set(instant)")
        if instant < self._now:
            raise ValidationError(
                f"FakeClock cannot go back from {self._now.isoformat()} to "
                f"{instant.isoformat()}; create a new FakeClock to restart time",
                field="instant",
                value=instant,
            )
        self._now = instant
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new instant.

        Raises:
            ValidationError: ``delta`` is negative.
        """
        if delta < timedelta(0):
            raise ValidationError(
                f"FakeClock.advance needs a non-negative timedelta, got {delta}",
                field="delta",
                value=delta,
            )
        self._now = self._now + delta
        return self._now
