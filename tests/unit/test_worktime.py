"""The organization calendar: weeks start at local midnight of the chosen day, in the
organization's time zone, and are returned as UTC instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import MO, SU, WE

from salesflow.errors import ValidationError
from salesflow.worktime import OrganizationCalendar

VILNIUS = ZoneInfo("Europe/Vilnius")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_defaults_are_utc_weeks_starting_monday() -> None:
    calendar = OrganizationCalendar()
    assert calendar.timezone == ZoneInfo("UTC")
    # Wednesday 4 March 2026 -> Monday 2 March .. Monday 9 March
    assert calendar.week_bounds(utc(2026, 3, 4, 15, 30)) == (utc(2026, 3, 2), utc(2026, 3, 9))


def test_last_week_is_the_seven_days_before() -> None:
    calendar = OrganizationCalendar()
    assert calendar.week_bounds(utc(2026, 3, 4, 15, 30), weeks_ago=1) == (
        utc(2026, 2, 23),
        utc(2026, 3, 2),
    )
    assert calendar.week_bounds(utc(2026, 3, 4), weeks_ago=2) == (
        utc(2026, 2, 16),
        utc(2026, 2, 23),
    )


def test_the_first_instant_of_a_week_belongs_to_it_and_the_last_to_the_one_before() -> None:
    calendar = OrganizationCalendar()
    assert calendar.week_bounds(utc(2026, 3, 2)) == (utc(2026, 3, 2), utc(2026, 3, 9))
    just_before = utc(2026, 3, 2) - timedelta(microseconds=1)
    assert calendar.week_bounds(just_before) == (utc(2026, 2, 23), utc(2026, 3, 2))


def test_weeks_are_computed_in_the_organization_time_zone() -> None:
    calendar = OrganizationCalendar(timezone="Europe/Vilnius")
    # Sunday 1 March 22:30 UTC is already Monday 2 March 00:30 in Vilnius (UTC+2).
    start, end = calendar.week_bounds(utc(2026, 3, 1, 22, 30))
    assert (start, end) == (utc(2026, 3, 1, 22), utc(2026, 3, 8, 22))
    assert start.tzinfo is UTC
    assert start.astimezone(VILNIUS) == datetime(2026, 3, 2, tzinfo=VILNIUS)


def test_a_week_with_the_spring_dst_change_is_167_hours_long() -> None:
    # Vilnius moves from EET (+2) to EEST (+3) at 03:00 on Sunday 29 March 2026.
    calendar = OrganizationCalendar(timezone=VILNIUS)
    start, end = calendar.week_bounds(utc(2026, 3, 26, 12))
    assert start == utc(2026, 3, 22, 22)  # Mon 23 March 00:00 EET
    assert end == utc(2026, 3, 29, 21)  # Mon 30 March 00:00 EEST
    assert end - start == timedelta(hours=167)


def test_a_week_with_the_autumn_dst_change_is_169_hours_long() -> None:
    # Vilnius moves back from EEST (+3) to EET (+2) at 04:00 on Sunday 25 October 2026.
    calendar = OrganizationCalendar(timezone=VILNIUS)
    start, end = calendar.week_bounds(utc(2026, 10, 25, 12))
    assert start == utc(2026, 10, 18, 21)  # Mon 19 October 00:00 EEST
    assert end == utc(2026, 10, 25, 22)  # Mon 26 October 00:00 EET
    assert end - start == timedelta(hours=169)


def test_the_week_after_a_dst_change_is_168_hours_again() -> None:
    calendar = OrganizationCalendar(timezone=VILNIUS)
    start, end = calendar.week_bounds(utc(2026, 4, 1, 12))
    assert (start, end) == (utc(2026, 3, 29, 21), utc(2026, 4, 5, 21))


def test_last_week_across_the_dst_change() -> None:
    calendar = OrganizationCalendar(timezone=VILNIUS)
    assert calendar.week_bounds(utc(2026, 4, 1, 12), weeks_ago=1) == (
        utc(2026, 3, 22, 22),
        utc(2026, 3, 29, 21),
    )


def test_weeks_can_start_on_sunday() -> None:
    calendar = OrganizationCalendar(week_start=SU)
    # Wednesday 4 March -> Sunday 1 March .. Sunday 8 March
    assert calendar.week_bounds(utc(2026, 3, 4, 12)) == (utc(2026, 3, 1), utc(2026, 3, 8))
    # a Sunday starts its own week; the Saturday before ends the previous one
    assert calendar.week_bounds(utc(2026, 3, 8)) == (utc(2026, 3, 8), utc(2026, 3, 15))
    assert calendar.week_bounds(utc(2026, 3, 7, 23, 59)) == (utc(2026, 3, 1), utc(2026, 3, 8))


def test_sunday_weeks_in_vilnius_through_the_spring_change() -> None:
    calendar = OrganizationCalendar(timezone="Europe/Vilnius", week_start=SU)
    # Saturday 28 March 22:30 UTC is Sunday 29 March 00:30 EET: a new week has begun,
    # and it ends at Sunday 5 April 00:00 EEST.
    start, end = calendar.week_bounds(utc(2026, 3, 28, 22, 30))
    assert (start, end) == (utc(2026, 3, 28, 22), utc(2026, 4, 4, 21))
    assert end - start == timedelta(hours=167)


@pytest.mark.parametrize(
    ("week_start", "expected_start"),
    [(MO, utc(2026, 3, 2)), (WE, utc(2026, 3, 4)), (2, utc(2026, 3, 4)), (6, utc(2026, 3, 1))],
)
def test_week_start_accepts_dateutil_weekdays_and_numbers(
    week_start: Any, expected_start: datetime
) -> None:
    calendar = OrganizationCalendar(week_start=week_start)
    start, end = calendar.week_bounds(utc(2026, 3, 4, 12))
    assert start == expected_start
    assert end == expected_start + timedelta(weeks=1)


def test_week_start_with_an_offset_is_normalized() -> None:
    assert OrganizationCalendar(week_start=MO(+2)) == OrganizationCalendar(week_start=MO)


@pytest.mark.parametrize("value", [7, -1, True, "monday", None])
def test_bad_week_starts_are_refused(value: Any) -> None:
    with pytest.raises(ValidationError, match="week_start") as caught:
        OrganizationCalendar(week_start=value)
    assert caught.value.field == "OrganizationCalendar.week_start"


@pytest.mark.parametrize("value", ["Mars/Olympus_Mons", "", "../etc"])
def test_unknown_time_zones_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="IANA time zone") as caught:
        OrganizationCalendar(timezone=value)
    assert caught.value.value == value
