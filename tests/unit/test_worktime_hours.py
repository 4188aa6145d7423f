"""Working hours, holidays and business-time arithmetic (issue 3 item 5).

The worked example of the reference: an email on Wednesday and a call "after 3 days"
is due on Monday with calendar-only scheduling (the wait ends on Saturday and moves to
the next working time) and on Tuesday when waits count full working days (the
partial Wednesday does not count: Thursday, Friday and Monday do).

Dates: Wednesday 4 March 2026; Vilnius springs forward at 03:00 on Sunday 29 March
2026 (EET +2 → EEST +3) and falls back at 04:00 on Sunday 25 October 2026.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import FR, MO, SA, SU, TH, TU, WE
from dateutil.rrule import DAILY, YEARLY, rrule, rruleset
from hypothesis import given
from hypothesis import strategies as st

from salesflow.errors import ValidationError
from salesflow.sequences.definition import Span
from salesflow.worktime import DEFAULT_WORKING_HOURS, Calendars, OrganizationCalendar

VILNIUS = ZoneInfo("Europe/Vilnius")
NEW_YORK = ZoneInfo("America/New_York")
DAY = timedelta(days=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def vilnius(*args: int) -> datetime:
    return datetime(*args, tzinfo=VILNIUS)  # type: ignore[misc,arg-type]


def is_utc(value: datetime) -> bool:
    return value.tzinfo is UTC


CHRISTMAS_EVE = rrule(YEARLY, bymonth=12, bymonthday=24, dtstart=datetime(2000, 1, 1))
DEFAULT = OrganizationCalendar()
SPLIT = OrganizationCalendar(
    timezone=VILNIUS,
    working_hours={day: [("08:00", "12:00"), ("13:00", "17:00")] for day in (MO, TU, WE, TH, FR)},
    holiday_rules=CHRISTMAS_EVE,
    holidays={date(2026, 3, 11)},
)


# -- the worked example ---------------------------------------------------------------


WEDNESDAY = utc(2026, 3, 4, 14, 30)  # the email is sent on Wednesday afternoon
THREE_DAYS = timedelta(days=3)


def test_worked_example_calendar_only_shows_the_call_on_monday() -> None:
    due = DEFAULT.schedule_after(WEDNESDAY, THREE_DAYS, skip_non_working=True)
    assert due == utc(2026, 3, 9, 8)  # Saturday 14:30 moved to Monday 08:00
    assert due.weekday() == MO.weekday


def test_worked_example_without_skipping_ends_on_saturday() -> None:
    assert DEFAULT.schedule_after(WEDNESDAY, THREE_DAYS) == utc(2026, 3, 7, 14, 30)


def test_worked_example_counting_working_days_shows_the_call_on_tuesday() -> None:
    due = DEFAULT.schedule_after(
        WEDNESDAY, THREE_DAYS, skip_non_working=True, count_working_days=True
    )
    assert due == utc(2026, 3, 10, 8)  # Thursday, Friday, Monday in full; due Tuesday
    assert due.weekday() == TU.weekday
    # skip_non_working changes nothing: the due time is already the start of work
    assert DEFAULT.schedule_after(WEDNESDAY, THREE_DAYS, count_working_days=True) == due


@pytest.mark.parametrize(
    "sent", [utc(2026, 3, 4, 8, 1), utc(2026, 3, 4, 16, 59), utc(2026, 3, 4, 20)]
)
def test_any_time_during_or_after_wednesdays_work_gives_tuesday(sent: datetime) -> None:
    due = DEFAULT.schedule_after(sent, THREE_DAYS, count_working_days=True)
    assert due == utc(2026, 3, 10, 8)


def test_a_wait_begun_before_work_starts_counts_that_day_in_full() -> None:
    # 07:00 on Wednesday: Wednesday, Thursday and Friday are full working days.
    due = DEFAULT.schedule_after(utc(2026, 3, 4, 7), THREE_DAYS, count_working_days=True)
    assert due == utc(2026, 3, 9, 8)
    # exactly 08:00 is the start of Wednesday's work, so Wednesday counts too
    due = DEFAULT.schedule_after(utc(2026, 3, 4, 8), THREE_DAYS, count_working_days=True)
    assert due == utc(2026, 3, 9, 8)


def test_worked_example_in_the_sellers_time_zone() -> None:
    calendar = OrganizationCalendar(timezone=VILNIUS)
    sent = vilnius(2026, 3, 4, 14, 30)
    monday = calendar.schedule_after(sent, THREE_DAYS, skip_non_working=True)
    tuesday = calendar.schedule_after(sent, THREE_DAYS, count_working_days=True)
    assert monday == vilnius(2026, 3, 9, 8) == utc(2026, 3, 9, 6)
    assert tuesday == vilnius(2026, 3, 10, 8)
    assert is_utc(monday)
    assert is_utc(tuesday)


def test_the_hours_of_a_wait_are_added_after_its_days() -> None:
    wait = timedelta(days=3, hours=4)
    assert DEFAULT.schedule_after(WEDNESDAY, wait, count_working_days=True) == utc(2026, 3, 10, 12)
    assert DEFAULT.schedule_after(WEDNESDAY, wait) == utc(2026, 3, 7, 18, 30)
    assert DEFAULT.schedule_after(WEDNESDAY, wait, skip_non_working=True) == utc(2026, 3, 9, 8)


def test_a_wait_under_a_day_is_elapsed_time_even_when_counting_working_days() -> None:
    friday = utc(2026, 3, 6, 15)
    wait = timedelta(hours=4)
    assert DEFAULT.schedule_after(friday, wait, count_working_days=True) == utc(2026, 3, 6, 19)
    assert DEFAULT.schedule_after(friday, wait, skip_non_working=True) == utc(2026, 3, 9, 8)
    assert DEFAULT.schedule_after(friday, timedelta(0)) == friday


def test_a_holiday_is_not_a_working_day_of_the_wait() -> None:
    calendar = OrganizationCalendar(holidays=[date(2026, 3, 9)])  # Monday off
    assert calendar.schedule_after(WEDNESDAY, THREE_DAYS, skip_non_working=True) == utc(
        2026, 3, 10, 8
    )
    # Thursday, Friday, Tuesday in full: due Wednesday
    assert calendar.schedule_after(WEDNESDAY, THREE_DAYS, count_working_days=True) == utc(
        2026, 3, 11, 8
    )


# -- working time at the edges ---------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "working"),
    [
        (utc(2026, 3, 4, 8), True),
        (utc(2026, 3, 4, 7, 59, 59, 999999), False),
        (utc(2026, 3, 4, 16, 59, 59, 999999), True),
        (utc(2026, 3, 4, 17), False),
        (utc(2026, 3, 7, 10), False),  # Saturday
        (utc(2026, 3, 8, 10), False),  # Sunday
    ],
)
def test_intervals_include_their_start_and_exclude_their_end(
    instant: datetime, working: bool
) -> None:
    assert DEFAULT.is_working_time(instant) is working


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 3, 4, 8), utc(2026, 3, 4, 8)),
        (utc(2026, 3, 4, 12, 15), utc(2026, 3, 4, 12, 15)),
        (utc(2026, 3, 4, 7), utc(2026, 3, 4, 8)),
        (utc(2026, 3, 4, 17), utc(2026, 3, 5, 8)),
        (utc(2026, 3, 6, 17), utc(2026, 3, 9, 8)),  # Friday evening -> Monday
        (utc(2026, 3, 7, 12), utc(2026, 3, 9, 8)),
    ],
)
def test_next_working_time(instant: datetime, expected: datetime) -> None:
    result = DEFAULT.next_working_time(instant)
    assert result == expected
    assert is_utc(result)


def test_next_working_time_of_an_instant_in_another_zone_is_returned_in_utc() -> None:
    result = DEFAULT.next_working_time(vilnius(2026, 3, 4, 12))  # 10:00 UTC
    assert result == utc(2026, 3, 4, 10)
    assert is_utc(result)


def test_the_default_calendar_is_the_sellers_default() -> None:
    assert DEFAULT.working_hours == DEFAULT_WORKING_HOURS
    assert DEFAULT.working_hours[0] == ((time(8), time(17)),)
    assert DEFAULT.working_hours[5:] == ((), ())
    assert DEFAULT.timezone == ZoneInfo("UTC")
    assert DEFAULT.holidays == frozenset()
    assert DEFAULT.holiday_rules == ()


def test_working_hours_accept_weekday_maps_numbers_strings_and_seven_day_lists() -> None:
    by_constant = OrganizationCalendar(
        working_hours={d: [(time(8), time(17))] for d in (MO, TU, WE, TH, FR)}
    )
    by_number = OrganizationCalendar(working_hours={d: [("08:00", "17:00")] for d in range(5)})
    by_list = OrganizationCalendar(working_hours=[[("08:00", "17:00")]] * 5 + [[], None])
    assert by_constant == by_number == by_list == DEFAULT


# -- split days ------------------------------------------------------------------------


def test_a_split_day_has_a_lunch_break() -> None:
    assert SPLIT.is_working_time(vilnius(2026, 3, 4, 11, 59))
    assert not SPLIT.is_working_time(vilnius(2026, 3, 4, 12))
    assert not SPLIT.is_working_time(vilnius(2026, 3, 4, 12, 30))
    assert SPLIT.is_working_time(vilnius(2026, 3, 4, 13))
    assert SPLIT.next_working_time(vilnius(2026, 3, 4, 12, 30)) == vilnius(2026, 3, 4, 13)


def test_business_time_skips_the_lunch_break_and_the_night() -> None:
    start = vilnius(2026, 3, 4, 8)
    assert SPLIT.add_working_time(start, timedelta(hours=5)) == vilnius(2026, 3, 4, 14)
    # 8 working hours fill the day; the result is the next working time, Thursday 08:00
    assert SPLIT.add_working_time(start, timedelta(hours=8)) == vilnius(2026, 3, 5, 8)
    assert SPLIT.add_working_time(start, timedelta(hours=10)) == vilnius(2026, 3, 5, 10)
    # work ending exactly at the break resumes after it
    assert SPLIT.add_working_time(vilnius(2026, 3, 4, 11), timedelta(hours=1)) == vilnius(
        2026, 3, 4, 13
    )
    # starting in the break starts at 13:00
    assert SPLIT.add_working_time(vilnius(2026, 3, 4, 12, 10), timedelta(minutes=30)) == vilnius(
        2026, 3, 4, 13, 30
    )


def test_business_time_skips_weekends_and_holidays() -> None:
    friday = utc(2026, 3, 6, 16)
    assert DEFAULT.add_working_time(friday, timedelta(hours=2)) == utc(2026, 3, 9, 9)
    # Wednesday 11 March is a holiday on SPLIT: Tuesday 16:00 + 2 h -> Thursday 09:00
    assert SPLIT.add_working_time(vilnius(2026, 3, 10, 16), timedelta(hours=2)) == vilnius(
        2026, 3, 12, 9
    )


def test_adding_working_days_keeps_the_wall_time() -> None:
    wednesday = utc(2026, 3, 4, 10, 30)
    assert DEFAULT.add_working_days(wednesday, 1) == utc(2026, 3, 5, 10, 30)
    assert DEFAULT.add_working_days(wednesday, 3) == utc(2026, 3, 9, 10, 30)
    assert DEFAULT.add_working_days(wednesday, 0) == wednesday
    # a wall time outside working hours moves to the next working time
    assert DEFAULT.add_working_days(utc(2026, 3, 4, 18), 1) == utc(2026, 3, 6, 8)
    # the holiday on Wednesday 11 March is skipped
    assert SPLIT.add_working_days(vilnius(2026, 3, 10, 9), 1) == vilnius(2026, 3, 12, 9)
    assert SPLIT.add_working_days(vilnius(2026, 3, 10, 12, 30), 1) == vilnius(2026, 3, 12, 13)


# -- holidays --------------------------------------------------------------------------


def test_holidays_from_a_list() -> None:
    calendar = OrganizationCalendar(holidays=[date(2026, 3, 5), date(2026, 3, 6)])
    assert calendar.is_holiday(date(2026, 3, 5))
    assert not calendar.is_working_time(utc(2026, 3, 5, 10))
    assert calendar.next_working_time(utc(2026, 3, 4, 17)) == utc(2026, 3, 9, 8)
    assert calendar.intervals_on(date(2026, 3, 6)) == ()


def test_holidays_from_a_yearly_rule() -> None:
    calendar = OrganizationCalendar(holiday_rules=CHRISTMAS_EVE)
    for year in (2026, 2027, 2031):
        assert calendar.is_holiday(date(year, 12, 24))
        assert not calendar.is_holiday(date(year, 12, 23))
    # 24 December 2026 is a Thursday
    assert not calendar.is_working_time(utc(2026, 12, 24, 10))
    assert calendar.next_working_time(utc(2026, 12, 23, 17)) == utc(2026, 12, 25, 8)


def test_holidays_from_an_rruleset_with_an_exception_and_a_list_together() -> None:
    rules = rruleset()
    rules.rrule(rrule(YEARLY, bymonth=12, bymonthday=(24, 25, 26), dtstart=datetime(2020, 1, 1)))
    rules.exdate(datetime(2026, 12, 26))  # this year the 26th is worked (it is a Saturday anyway)
    calendar = OrganizationCalendar(holiday_rules=rules, holidays={date(2026, 12, 28)})
    assert calendar.is_holiday(date(2026, 12, 24))
    assert calendar.is_holiday(date(2026, 12, 25))
    assert not calendar.is_holiday(date(2026, 12, 26))
    assert calendar.is_holiday(date(2027, 12, 26))
    # Wed 23 Dec 17:00 -> Thu 24, Fri 25 holidays, weekend, Mon 28 listed -> Tue 29
    assert calendar.next_working_time(utc(2026, 12, 23, 17)) == utc(2026, 12, 29, 8)


def test_a_rule_with_an_aware_start_is_read_in_the_calendars_zone() -> None:
    rule = rrule(YEARLY, bymonth=12, bymonthday=24, dtstart=datetime(2020, 1, 1, tzinfo=VILNIUS))
    calendar = OrganizationCalendar(timezone=VILNIUS, holiday_rules=[rule])
    assert calendar.is_holiday(date(2026, 12, 24))
    assert not calendar.is_working_time(vilnius(2026, 12, 24, 10))


def test_holidays_in_the_calendars_zone_not_utc() -> None:
    calendar = OrganizationCalendar(timezone=VILNIUS, holidays={date(2026, 3, 5)})
    # 22:30 UTC on Wednesday is already Thursday 00:30 in Vilnius: the holiday
    assert calendar.next_working_time(utc(2026, 3, 4, 22, 30)) == vilnius(2026, 3, 6, 8)


def test_holidays_that_leave_no_working_time_for_years_are_reported() -> None:
    mondays_only = OrganizationCalendar(working_hours={MO: [("08:00", "17:00")]})
    every_monday = {date(2026, 3, 2) + timedelta(weeks=n) for n in range(52 * 6)}
    closed = mondays_only.with_holidays(every_monday)
    with pytest.raises(ValidationError, match="no working time for"):
        closed.next_working_time(utc(2026, 3, 2))


# -- daylight saving time ---------------------------------------------------------------


VILNIUS_CALENDAR = OrganizationCalendar(timezone=VILNIUS)


def test_day_waits_keep_the_wall_time_across_spring_forward() -> None:
    friday = vilnius(2026, 3, 27, 10)  # 08:00 UTC, EET
    due = VILNIUS_CALENDAR.schedule_after(friday, THREE_DAYS)
    assert due == vilnius(2026, 3, 30, 10) == utc(2026, 3, 30, 7)  # EEST
    assert due - friday == timedelta(hours=71)
    assert VILNIUS_CALENDAR.add_working_days(friday, 1) == utc(2026, 3, 30, 7)


def test_hour_waits_are_exact_elapsed_time_across_spring_forward() -> None:
    friday = vilnius(2026, 3, 27, 10)
    due = VILNIUS_CALENDAR.schedule_after(friday, Span(hours=72))
    assert due == utc(2026, 3, 30, 8) == vilnius(2026, 3, 30, 11)
    saturday = vilnius(2026, 3, 28, 20)
    due = VILNIUS_CALENDAR.schedule_after(saturday, timedelta(hours=12))
    assert due == vilnius(2026, 3, 29, 9)  # 12 real hours; the clock lost one


def test_a_timedelta_folds_24_hours_into_a_day_a_span_does_not() -> None:
    friday = vilnius(2026, 3, 27, 10)
    assert timedelta(hours=72) == THREE_DAYS
    assert VILNIUS_CALENDAR.schedule_after(friday, timedelta(hours=72)) == vilnius(2026, 3, 30, 10)
    assert VILNIUS_CALENDAR.schedule_after(friday, Span(days=3)) == vilnius(2026, 3, 30, 10)
    assert VILNIUS_CALENDAR.schedule_after(friday, Span(days=1, hours=48)) == vilnius(
        2026, 3, 30, 11
    )


def test_day_waits_keep_the_wall_time_across_fall_back() -> None:
    friday = vilnius(2026, 10, 23, 10)  # 07:00 UTC, EEST
    due = VILNIUS_CALENDAR.schedule_after(friday, THREE_DAYS)
    assert due == vilnius(2026, 10, 26, 10) == utc(2026, 10, 26, 8)  # EET
    assert due - friday == timedelta(hours=73)
    assert VILNIUS_CALENDAR.add_working_days(friday, 1) == utc(2026, 10, 26, 8)


def test_hour_waits_are_exact_elapsed_time_across_fall_back() -> None:
    friday = vilnius(2026, 10, 23, 10)
    due = VILNIUS_CALENDAR.schedule_after(friday, Span(hours=72))
    assert due == utc(2026, 10, 26, 7) == vilnius(2026, 10, 26, 9)
    saturday = vilnius(2026, 10, 24, 20)
    due = VILNIUS_CALENDAR.schedule_after(saturday, timedelta(hours=12))
    assert due == vilnius(2026, 10, 25, 7)  # 12 real hours; the clock gained one


def test_working_hours_follow_the_local_clock_across_a_change() -> None:
    assert VILNIUS_CALENDAR.intervals_on(date(2026, 3, 27)) == (
        (utc(2026, 3, 27, 6), utc(2026, 3, 27, 15)),
    )
    assert VILNIUS_CALENDAR.intervals_on(date(2026, 3, 30)) == (
        (utc(2026, 3, 30, 5), utc(2026, 3, 30, 14)),
    )
    assert VILNIUS_CALENDAR.next_working_time(vilnius(2026, 3, 27, 18)) == utc(2026, 3, 30, 5)


def test_working_day_waits_across_a_change_start_at_local_start_of_work() -> None:
    due = VILNIUS_CALENDAR.schedule_after(
        vilnius(2026, 3, 27, 12), timedelta(days=1), count_working_days=True
    )
    assert due == vilnius(2026, 3, 31, 8) == utc(2026, 3, 31, 5)


def test_a_wall_time_lost_to_spring_forward_moves_forward_by_the_gap() -> None:
    saturday = vilnius(2026, 3, 28, 3, 30)  # 03:30 does not exist on Sunday
    due = VILNIUS_CALENDAR.schedule_after(saturday, DAY)
    assert due == utc(2026, 3, 29, 1, 30) == vilnius(2026, 3, 29, 4, 30)


def test_business_time_over_a_night_with_a_change_counts_real_hours() -> None:
    friday = vilnius(2026, 10, 23, 16)
    assert VILNIUS_CALENDAR.add_working_time(friday, timedelta(hours=2)) == vilnius(2026, 10, 26, 9)


# -- per-owner calendars -----------------------------------------------------------------


ORGANIZATION = OrganizationCalendar(timezone=VILNIUS)
NEW_YORK_SELLER = OrganizationCalendar(
    timezone=NEW_YORK, working_hours={d: [("09:00", "17:30")] for d in (MO, TU, WE, TH, FR)}
)
CALENDARS = Calendars(organization=ORGANIZATION, owners={"u-ny": NEW_YORK_SELLER})


def test_sellers_without_a_calendar_use_the_organizations() -> None:
    assert CALENDARS.for_owner("u-ny") is NEW_YORK_SELLER
    assert CALENDARS.for_owner("u-other") is ORGANIZATION
    assert CALENDARS.for_owner(None) is ORGANIZATION
    assert Calendars().for_owner("anyone") == OrganizationCalendar()


def test_a_seller_in_another_zone_works_their_own_hours() -> None:
    instant = utc(2026, 3, 4, 16)  # 18:00 Vilnius (after work), 11:00 New York (working)
    assert not CALENDARS.for_owner("u-vilnius").is_working_time(instant)
    assert CALENDARS.for_owner("u-ny").is_working_time(instant)
    # Friday 17:30 New York -> Monday 09:00 New York (EDT from 8 March 2026)
    ny = CALENDARS.for_owner("u-ny")
    assert ny.next_working_time(datetime(2026, 3, 6, 17, 30, tzinfo=NEW_YORK)) == utc(
        2026, 3, 9, 13
    )
    # the worked example in New York, sent Wednesday 14:30 local
    sent = datetime(2026, 3, 4, 14, 30, tzinfo=NEW_YORK)
    assert ny.schedule_after(sent, THREE_DAYS, skip_non_working=True) == datetime(
        2026, 3, 9, 9, tzinfo=NEW_YORK
    )
    assert ny.schedule_after(sent, THREE_DAYS, count_working_days=True) == datetime(
        2026, 3, 10, 9, tzinfo=NEW_YORK
    )


def test_time_off_is_a_sellers_own_holiday() -> None:
    off = CALENDARS.with_time_off("u-vilnius", [date(2026, 3, 9)])
    seller = off.for_owner("u-vilnius")
    assert seller.timezone == VILNIUS
    assert seller.holidays == {date(2026, 3, 9)}
    # the seller's call moves to Tuesday; the organization still works Monday
    sent = vilnius(2026, 3, 4, 14, 30)
    assert seller.schedule_after(sent, THREE_DAYS, skip_non_working=True) == vilnius(2026, 3, 10, 8)
    assert off.organization.schedule_after(sent, THREE_DAYS, skip_non_working=True) == vilnius(
        2026, 3, 9, 8
    )
    # the original value is unchanged, and a seller with a calendar keeps their hours
    assert CALENDARS.for_owner("u-vilnius") is ORGANIZATION
    ny_off = CALENDARS.with_time_off("u-ny", [date(2026, 3, 9)]).for_owner("u-ny")
    assert ny_off.working_hours == NEW_YORK_SELLER.working_hours
    assert ny_off.timezone == NEW_YORK
    assert ny_off.is_holiday(date(2026, 3, 9))


def test_calendars_are_values() -> None:
    assert Calendars(owners={"a": ORGANIZATION}) == Calendars().with_owner("a", ORGANIZATION)
    assert hash(Calendars()) == hash(Calendars())
    with pytest.raises(TypeError):
        CALENDARS.owners["x"] = ORGANIZATION  # type: ignore[index]


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda c, t: c.is_working_time(t), "instant"),
        (lambda c, t: c.next_working_time(t), "instant"),
        (lambda c, t: c.add_working_days(t, 1), "instant"),
        (lambda c, t: c.add_working_time(t, DAY), "instant"),
        (lambda c, t: c.schedule_after(t, DAY), "instant"),
    ],
)
def test_naive_instants_are_refused_naming_the_argument(call: Any, argument: str) -> None:
    with pytest.raises(ValidationError, match="aware") as caught:
        call(DEFAULT, datetime(2026, 3, 4, 10))
    assert caught.value.field == argument


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        DEFAULT.schedule_after(WEDNESDAY, -DAY)
    assert caught.value.field == "wait"
    with pytest.raises(ValidationError) as caught:
        DEFAULT.schedule_after(WEDNESDAY, Span(days=1, hours=0).delta * -1)
    assert caught.value.field == "wait"
    with pytest.raises(ValidationError) as caught:
        DEFAULT.schedule_after(WEDNESDAY, "3 days")  # type: ignore[arg-type]
    assert caught.value.field == "wait"
    with pytest.raises(ValidationError) as caught:
        DEFAULT.add_working_time(WEDNESDAY, -DAY)
    assert caught.value.field == "amount"
    with pytest.raises(ValidationError) as caught:
        DEFAULT.add_working_days(WEDNESDAY, -1)
    assert caught.value.field == "days"


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({MO: [("17:00", "08:00")]}, "must start before it ends"),
        ({MO: [("08:00", "08:00")]}, "must start before it ends"),
        ({MO: [("13:00", "17:00"), ("08:00", "12:00")]}, "sorted and must not overlap"),
        ({MO: [("08:00", "13:00"), ("12:00", "17:00")]}, "sorted and must not overlap"),
        ({MO: [("8 o'clock", "17:00")]}, "is not a time"),
        ({MO: [(time(8, tzinfo=UTC), time(17))]}, "carries a time zone"),
        ({MO: "08:00-17:00"}, r"\(start, end\) pairs"),
        ({MO: [("08:00",)]}, r"\(start, end\) pair"),
        ({"monday": [("08:00", "17:00")]}, "must be a weekday"),
        ({}, "no working time on any weekday"),
        ({SA: [], SU: None}, "no working time on any weekday"),
        ([[("08:00", "17:00")]] * 6, "seven days"),
    ],
)
def test_bad_working_hours_are_refused(hours: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        OrganizationCalendar(working_hours=hours)
    assert caught.value.field == "OrganizationCalendar.working_hours"


def test_touching_intervals_are_allowed() -> None:
    calendar = OrganizationCalendar(working_hours={MO: [("08:00", "12:00"), ("12:00", "17:00")]})
    monday = utc(2026, 3, 2, 8)
    assert calendar.is_working_time(utc(2026, 3, 2, 12))
    assert calendar.add_working_time(monday, timedelta(hours=4)) == utc(2026, 3, 2, 12)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"holidays": [datetime(2026, 12, 24)]}, "OrganizationCalendar.holidays"),
        ({"holidays": ["2026-12-24"]}, "OrganizationCalendar.holidays"),
        ({"holidays": CHRISTMAS_EVE}, "OrganizationCalendar.holidays"),
        ({"holiday_rules": [date(2026, 12, 24)]}, "OrganizationCalendar.holiday_rules"),
    ],
)
def test_bad_holidays_are_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OrganizationCalendar(**kwargs)
    assert caught.value.field == field


def test_bad_owner_calendars_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"Calendars\.owners"):
        Calendars(owners={"u1": "Europe/Vilnius"})
    with pytest.raises(ValidationError, match=r"Calendars\.owners"):
        Calendars(owners=[("u1", ORGANIZATION)])


# -- properties -------------------------------------------------------------------------


PROPERTY_CALENDARS = [
    DEFAULT,
    SPLIT,
    VILNIUS_CALENDAR.with_holidays({date(2026, 3, 30), date(2026, 10, 26)}),
    NEW_YORK_SELLER,
    OrganizationCalendar(
        timezone="Europe/Vilnius",
        working_hours={SA: [("02:30", "03:30"), ("03:45", "04:30")], SU: [("03:00", "04:00")]},
        holiday_rules=rrule(DAILY, interval=9, dtstart=datetime(2026, 1, 1)),
    ),
]

calendars = st.sampled_from(PROPERTY_CALENDARS)
instants = st.datetimes(
    min_value=datetime(2025, 12, 1),
    max_value=datetime(2027, 2, 1),
    timezones=st.sampled_from([UTC, VILNIUS, NEW_YORK]),
)
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=100))


@given(calendars, instants)
def test_next_working_time_is_working_time_not_before_the_instant(
    calendar: OrganizationCalendar, instant: datetime
) -> None:
    result = calendar.next_working_time(instant)
    assert result >= instant
    assert calendar.is_working_time(result)
    assert is_utc(result)
    assert (result == instant) is calendar.is_working_time(instant)


@given(calendars, instants, spans, spans)
def test_business_time_adds_up(
    calendar: OrganizationCalendar, instant: datetime, a: timedelta, b: timedelta
) -> None:
    whole = calendar.add_working_time(instant, a + b)
    in_steps = calendar.add_working_time(calendar.add_working_time(instant, a), b)
    assert whole == in_steps
    assert is_utc(whole)
    assert calendar.is_working_time(whole)
    assert whole >= instant + a


@given(
    calendars,
    instants,
    st.one_of(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
        st.builds(Span, days=st.integers(0, 30), hours=st.integers(0, 100)),
    ),
    st.booleans(),
)
def test_skipped_schedules_are_working_time_after_the_instant(
    calendar: OrganizationCalendar, instant: datetime, wait: timedelta | Span, working_days: bool
) -> None:
    due = calendar.schedule_after(
        instant, wait, skip_non_working=True, count_working_days=working_days
    )
    assert is_utc(due)
    assert calendar.is_working_time(due)
    assert due >= instant
    plain = calendar.schedule_after(instant, wait, count_working_days=working_days)
    assert is_utc(plain)
    assert calendar.next_working_time(plain) == due


@given(calendars, instants, st.integers(min_value=0, max_value=20))
def test_working_days_land_on_working_time(
    calendar: OrganizationCalendar, instant: datetime, days: int
) -> None:
    result = calendar.add_working_days(instant, days)
    assert is_utc(result)
    assert calendar.is_working_time(result)
    assert result >= instant
