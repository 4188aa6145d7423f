"""The organization's calendar: its time zone and the day its weeks start.

Calendar questions ("this week", "last week") are answered in the
organization's time zone and returned as UTC instants. Working hours and
holidays extend this module for sequences.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from dateutil.relativedelta import MO, relativedelta, weekday

from salesflow.errors import ValidationError

__all__ = ["OrganizationCalendar", "Weekday"]

Weekday = weekday
"""dateutil's weekday constants (``MO``, ``TU``, …, ``SU``)."""


def _zone(value: Any) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"OrganizationCalendar.timezone={value!r} is not a known IANA time zone; use a "
            f"name such as 'Europe/Vilnius' or 'UTC'",
            field="OrganizationCalendar.timezone",
            value=value,
        ) from None


def _weekday(value: Any) -> weekday:
    if isinstance(value, weekday):
        return weekday(value.weekday)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return weekday(value)
    raise ValidationError(
        f"OrganizationCalendar.week_start={value!r} must be a weekday (dateutil MO..SU or "
        f"0 for Monday .. 6 for Sunday)",
        field="OrganizationCalendar.week_start",
        value=value,
    )


@attrs.frozen(kw_only=True)
class OrganizationCalendar:
    """Where the organization lives in time.

    Args:
        timezone: IANA zone name or `ZoneInfo`; defaults to UTC.
        week_start: The first day of the week; defaults to Monday.
    """

    timezone: ZoneInfo = attrs.field(default=ZoneInfo("UTC"), converter=_zone)
    week_start: weekday = attrs.field(default=MO, converter=_weekday)

    def week_bounds(self, now: datetime, weeks_ago: int = 0) -> tuple[datetime, datetime]:
        """The UTC start (inclusive) and end (exclusive) of the week holding ``now``,
        or of the week ``weeks_ago`` weeks before it.

        Weeks run from local midnight of `week_start` to the next one, so a week
        that contains a daylight-saving change is 167 or 169 hours long.
        """
        local = now.astimezone(self.timezone)
        start_day = local.date() + relativedelta(weekday=self.week_start(-1))
        start_day -= timedelta(weeks=weeks_ago)
        end_day = start_day + timedelta(weeks=1)

        def midnight(day: Any) -> datetime:
            return datetime.combine(day, time(0), tzinfo=self.timezone).astimezone(UTC)

        return midnight(start_day), midnight(end_day)
