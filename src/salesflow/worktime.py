"""The organization's calendar: its time zone, the day its weeks start, its working
hours and holidays, and business-time arithmetic for sequences.

Calendar questions ("this week", "last week") are answered in the organization's
time zone and returned as UTC instants. The working-time queries
(`OrganizationCalendar.is_working_time`, `~OrganizationCalendar.next_working_time`,
`~OrganizationCalendar.add_working_days`, `~OrganizationCalendar.add_working_time`
and `~OrganizationCalendar.schedule_after`) take aware instants and return aware UTC
instants; they never read the wall clock (DESIGN §1.2). `Calendars` gives each seller
their own calendar, with the organization's as the fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from dateutil.relativedelta import MO, relativedelta, weekday
from dateutil.rrule import rrule, rruleset

from salesflow.errors import ValidationError

__all__ = [
    "DEFAULT_WORKING_HOURS",
    "Calendars",
    "DaysAndHours",
    "HolidayRule",
    "Interval",
    "OrganizationCalendar",
    "Weekday",
    "WorkingHours",
]

Weekday = weekday
"""dateutil's weekday constants (``MO``, ``TU``, …, ``SU``)."""

Interval = tuple[time, time]
"""One working interval of a day, local wall time: start (inclusive), end (exclusive)."""

WorkingHours = tuple[tuple[Interval, ...], ...]
"""Seven tuples of intervals, Monday first."""

HolidayRule = rrule | rruleset
"""A dateutil recurrence whose occurrences are holiday dates (e.g. every 24 December)."""

_NINE_TO_FIVE: tuple[Interval, ...] = ((time(8), time(17)),)
DEFAULT_WORKING_HOURS: WorkingHours = (_NINE_TO_FIVE,) * 5 + ((), ())
"""Monday to Friday 08:00–17:00, no weekend: the seller default of the reference."""

_SEARCH_DAYS = 366 * 5
"""How many days in a row may have no working time before a search gives up.

Holidays could in principle cover every working weekday (a daily holiday rule), so
every search is bounded; five years is far beyond any real closure."""

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


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


_HOURS_FIELD = "OrganizationCalendar.working_hours"


def _clock_time(value: Any, where: str) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None:
            # The calendar's zone decides what a wall time means; a second zone on the
            # time itself would make the interval mean two things.
            raise ValidationError(
                f"{_HOURS_FIELD}: {where} {value!r} carries a time zone; give a plain wall "
                f"time and set the calendar's timezone instead",
                field=_HOURS_FIELD,
                value=value,
            )
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(
        f"{_HOURS_FIELD}: {where} {value!r} is not a time; use a time of day such as "
        f"time(8) or '08:00'",
        field=_HOURS_FIELD,
        value=value,
    )


def _day_intervals(value: Any, day_name: str) -> tuple[Interval, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{_HOURS_FIELD}: {day_name} must be a sequence of (start, end) pairs such as "
            f"[('08:00', '12:00'), ('13:00', '17:00')], not {value!r}",
            field=_HOURS_FIELD,
            value=value,
        )
    intervals: list[Interval] = []
    for pair in value:
        try:
            start_value, end_value = pair
        except (TypeError, ValueError):
            raise ValidationError(
                f"{_HOURS_FIELD}: {day_name} interval {pair!r} must be a (start, end) pair",
                field=_HOURS_FIELD,
                value=pair,
            ) from None
        start = _clock_time(start_value, f"{day_name} start")
        end = _clock_time(end_value, f"{day_name} end")
        if not start < end:
            raise ValidationError(
                f"{_HOURS_FIELD}: {day_name} interval {start:%H:%M}–{end:%H:%M} must start "
                f"before it ends (intervals cannot cross midnight; split them by day)",
                field=_HOURS_FIELD,
                value=pair,
            )
        intervals.append((start, end))
    for (_, previous_end), (start, _) in pairwise(intervals):
        if start < previous_end:
            raise ValidationError(
                f"{_HOURS_FIELD}: {day_name} intervals must be sorted and must not overlap; "
                f"one starts at {start:%H:%M} before the previous one ends at "
                f"{previous_end:%H:%M}",
                field=_HOURS_FIELD,
                value=value,
            )
    return tuple(intervals)


def _working_hours(value: Any) -> WorkingHours:
    if isinstance(value, Mapping):
        days: list[Any] = [None] * 7
        for key, intervals in value.items():
            if isinstance(key, weekday):
                index = key.weekday
            elif isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 6:
                index = key
            else:
                raise ValidationError(
                    f"{_HOURS_FIELD}: key {key!r} must be a weekday (dateutil MO..SU or 0 for "
                    f"Monday .. 6 for Sunday)",
                    field=_HOURS_FIELD,
                    value=key,
                )
            days[index] = intervals
    elif isinstance(value, (list, tuple)) and len(value) == 7:
        days = list(value)
    else:
        raise ValidationError(
            f"{_HOURS_FIELD}={value!r} must map weekdays to intervals, e.g. "
            f"{{MO: [('08:00', '17:00')]}}, or list seven days Monday first",
            field=_HOURS_FIELD,
            value=value,
        )
    hours = tuple(
        _day_intervals(intervals, name) for intervals, name in zip(days, _DAY_NAMES, strict=True)
    )
    if not any(hours):
        # Every search for working time would run forever (or hit its bound) on such a
        # calendar, so refuse it where the mistake is made.
        raise ValidationError(
            f"{_HOURS_FIELD} has no working time on any weekday; give at least one interval",
            field=_HOURS_FIELD,
            value=value,
        )
    return hours


def _holidays(value: Any) -> frozenset[date]:
    if value is None:
        return frozenset()
    if isinstance(value, (rrule, rruleset)):
        raise ValidationError(
            "OrganizationCalendar.holidays takes dates; pass a dateutil rule as "
            "holiday_rules=... instead",
            field="OrganizationCalendar.holidays",
            value=value,
        )
    days = frozenset(value) if isinstance(value, Iterable) else None
    bad = (
        [value] if days is None else [d for d in days if type(d) is not date]  # datetime too
    )
    if days is None or bad:
        raise ValidationError(
            f"OrganizationCalendar.holidays must be dates (datetime.date), not {bad[0]!r}",
            field="OrganizationCalendar.holidays",
            value=bad[0],
        )
    return days


def _holiday_rules(value: Any) -> tuple[HolidayRule, ...]:
    if value is None:
        return ()
    rules = (value,) if isinstance(value, (rrule, rruleset)) else value
    if not isinstance(rules, Iterable) or isinstance(rules, (str, bytes)):
        rules = (rules,)
    result = tuple(rules)
    for rule in result:
        if not isinstance(rule, (rrule, rruleset)):
            raise ValidationError(
                f"OrganizationCalendar.holiday_rules must be dateutil rrule or rruleset "
                f"values, not {rule!r}",
                field="OrganizationCalendar.holiday_rules",
                value=rule,
            )
    return result


def _aware(value: Any, argument: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationError(
            f"{argument}={value!r} must be an aware datetime (with a tzinfo such as "
            f"datetime.UTC); naive times are ambiguous",
            field=argument,
            value=value,
        )
    return value


def _non_negative(value: Any, argument: str) -> timedelta:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise ValidationError(
            f"{argument}={value!r} must be a timedelta of zero or more",
            field=argument,
            value=value,
        )
    return value


class DaysAndHours(Protocol):
    """A wait authored as whole days plus hours, such as a sequence step's ``Span``.

    Unlike a `timedelta`, which folds every 24 hours into a day, it keeps a 72-hour
    wait apart from a 3-day one: the hours are elapsed time, the days are calendar
    (or working) days.
    """

    @property
    def days(self) -> int:
        """Whole days."""
        ...  # pragma: no cover

    @property
    def hours(self) -> int:
        """Hours, added as exact elapsed time."""
        ...  # pragma: no cover


def _wait_parts(value: Any) -> tuple[int, timedelta]:
    """Split a wait into (whole days, elapsed remainder)."""
    if isinstance(value, timedelta):
        wait = _non_negative(value, "wait")
        return wait.days, wait - timedelta(days=wait.days)
    days = getattr(value, "days", None)
    hours = getattr(value, "hours", None)
    if (
        isinstance(days, int)
        and isinstance(hours, int)
        and not isinstance(days, bool)
        and not isinstance(hours, bool)
        and days >= 0
        and hours >= 0
    ):
        return days, timedelta(hours=hours)
    raise ValidationError(
        f"wait={value!r} must be a timedelta of zero or more, or have whole days and hours "
        f"of zero or more (like a sequence Span)",
        field="wait",
        value=value,
    )


def _rule_has(rule: HolidayRule, day: date, zone: ZoneInfo) -> bool:
    low = datetime.combine(day, time.min)
    high = datetime.combine(day, time.max)
    try:
        return bool(rule.between(low, high, inc=True))
    except TypeError:
        # The rule was built with an aware dtstart; dateutil then refuses naive bounds,
        # so ask about the same local day in the calendar's zone.
        return bool(rule.between(low.replace(tzinfo=zone), high.replace(tzinfo=zone), inc=True))


@attrs.frozen(kw_only=True)
class OrganizationCalendar:
    """Where the organization (or one seller) lives in time.

    The same class serves as a seller's own calendar (see `Calendars`).

    Args:
        timezone: IANA zone name or `ZoneInfo`; defaults to UTC.
        week_start: The first day of the week; defaults to Monday.
        working_hours: Per weekday, sorted non-overlapping ``(start, end)`` intervals
            of local wall time (``datetime.time`` or ``"HH:MM"``), start inclusive and
            end exclusive. Either a mapping from weekday (dateutil ``MO``..``SU`` or
            0..6) to intervals, days left out having none, or seven entries Monday
            first. Defaults to Monday–Friday 08:00–17:00.
        holidays: Dates with no working time (public holidays, a seller's days off).
        holiday_rules: dateutil ``rrule``/``rruleset`` values (one or several) whose
            occurrences are holiday dates, e.g. every 24 December.

    Raises:
        ValidationError: An unknown zone, a bad weekday, an interval that is empty,
            unsorted or overlapping, a week with no working time at all, or holidays
            that are not dates or rules.
    """

    timezone: ZoneInfo = attrs.field(default=ZoneInfo("UTC"), converter=_zone)
    week_start: weekday = attrs.field(default=MO, converter=_weekday)
    working_hours: WorkingHours = attrs.field(
        default=DEFAULT_WORKING_HOURS, converter=_working_hours
    )
    holidays: frozenset[date] = attrs.field(default=frozenset(), converter=_holidays)
    holiday_rules: tuple[HolidayRule, ...] = attrs.field(default=(), converter=_holiday_rules)
    # Rules are re-expanded from their dtstart on every question, so remember answers
    # per date; the cache is not part of the value.
    _rule_cache: dict[date, bool] = attrs.field(
        init=False, factory=dict, eq=False, hash=False, repr=False
    )

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

    # -- days -------------------------------------------------------------------------

    def with_holidays(self, days: Iterable[date]) -> OrganizationCalendar:
        """This calendar with ``days`` added to its holidays (e.g. a seller's time off).

        Args:
            days: Local dates with no working time.

        Returns:
            A new calendar; this one is unchanged.

        Raises:
            ValidationError: An element of ``days`` is not a date.
        """
        return attrs.evolve(self, holidays=self.holidays | _holidays(days))

    def is_holiday(self, day: date) -> bool:
        """Whether the local date ``day`` is a holiday (listed or produced by a rule).

        Args:
            day: A date in the calendar's zone.

        Returns:
            True for a listed date or an occurrence of a holiday rule.
        """
        if day in self.holidays:
            return True
        if not self.holiday_rules:
            return False
        cached = self._rule_cache.get(day)
        if cached is None:
            cached = any(_rule_has(rule, day, self.timezone) for rule in self.holiday_rules)
            self._rule_cache[day] = cached
        return cached

    def is_working_day(self, day: date) -> bool:
        """Whether the local date ``day`` has working hours and is not a holiday.

        Args:
            day: A date in the calendar's zone.

        Returns:
            True when some working time falls on ``day``.
        """
        return bool(self.working_hours[day.weekday()]) and not self.is_holiday(day)

    def intervals_on(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working intervals of the local date ``day`` as UTC instants.

        A wall time that does not exist on the day (the spring-forward gap) is read
        with the offset before the change, i.e. it moves forward by the gap.

        Args:
            day: A date in the calendar's zone.

        Returns:
            ``(start, end)`` pairs, start inclusive and end exclusive, in order; empty
            on holidays and days without working hours.
        """
        if not self.is_working_day(day):
            return ()
        result = []
        for start, end in self.working_hours[day.weekday()]:
            start_utc = self._utc(day, start)
            end_utc = self._utc(day, end)
            if start_utc < end_utc:  # a DST gap can swallow a tiny interval
                result.append((start_utc, end_utc))
        return tuple(result)

    def _utc(self, day: date, wall: time) -> datetime:
        return datetime.combine(day, wall, tzinfo=self.timezone).astimezone(UTC)

    def _local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.timezone).date()

    def _days_from(self, day: date) -> Iterator[tuple[date, tuple[tuple[datetime, datetime], ...]]]:
        """Each date from ``day`` on with its intervals, giving up after `_SEARCH_DAYS`
        days in a row without working time."""
        idle = 0
        while True:
            intervals = self.intervals_on(day)
            if intervals:
                idle = 0
            else:
                idle += 1
                if idle > _SEARCH_DAYS:
                    raise ValidationError(
                        f"OrganizationCalendar has no working time for {_SEARCH_DAYS} days in "
                        f"a row from {day - timedelta(days=_SEARCH_DAYS)}; check its holidays "
                        f"and holiday_rules",
                        field="OrganizationCalendar.holidays",
                        value=day,
                    )
            yield day, intervals
            day += timedelta(days=1)

    # -- instants ---------------------------------------------------------------------

    def is_working_time(self, instant: datetime) -> bool:
        """Whether ``instant`` falls inside a working interval.

        Intervals include their start and exclude their end: with 08:00–17:00,
        08:00 is working time and 17:00 is not.

        Args:
            instant: An aware datetime.

        Returns:
            True inside working hours on a non-holiday.

        Raises:
            ValidationError: ``instant`` is naive.
        """
        instant = _aware(instant, "instant")
        return any(
            start <= instant < end for start, end in self.intervals_on(self._local_day(instant))
        )

    def next_working_time(self, instant: datetime) -> datetime:
        """``instant`` itself when it is working time, else the start of the next
        working interval, skipping days off and holidays.

        Args:
            instant: An aware datetime.

        Returns:
            An aware UTC datetime at or after ``instant`` that is working time.

        Raises:
            ValidationError: ``instant`` is naive, or holidays leave no working time
                for years.
        """
        instant = _aware(instant, "instant")
        for _, intervals in self._days_from(self._local_day(instant)):
            for start, end in intervals:
                if instant < end:
                    return max(instant.astimezone(UTC), start)
        raise AssertionError("unreachable: _days_from is endless or raises")  # pragma: no cover

    def _working_day_starts(self, instant: datetime) -> Iterator[datetime]:
        """The start of each working day whose first interval starts at or after
        ``instant``, in order."""
        for _, intervals in self._days_from(self._local_day(instant)):
            if intervals and intervals[0][0] >= instant:
                yield intervals[0][0]

    def add_working_days(self, instant: datetime, days: int) -> datetime:
        """``days`` working days after ``instant`` at the same local wall time, or the
        next working time after that.

        The day of ``instant`` itself is never counted: from a Wednesday, one working
        day later is Thursday (Monday if Thursday and Friday are holidays).

        Args:
            instant: An aware datetime.
            days: Working days to add, zero or more; zero gives
                ``next_working_time(instant)``.

        Returns:
            An aware UTC datetime that is working time.

        Raises:
            ValidationError: ``instant`` is naive or ``days`` is negative or not an int.
        """
        instant = _aware(instant, "instant")
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            raise ValidationError(
                f"days={days!r} must be a whole number of working days, zero or more",
                field="days",
                value=days,
            )
        if days == 0:
            # Rebuilding the wall time would drop the fold of an ambiguous autumn hour.
            return self.next_working_time(instant)
        local = instant.astimezone(self.timezone)
        counted = 0
        target = local.date()
        for day, intervals in self._days_from(local.date() + timedelta(days=1)):
            if intervals:
                counted += 1
                if counted == days:
                    target = day
                    break
        wall = datetime.combine(target, local.time(), tzinfo=self.timezone)
        return self.next_working_time(wall)

    def add_working_time(self, instant: datetime, amount: timedelta) -> datetime:
        """Business-time arithmetic: ``amount`` of working time after ``instant``.

        Only working intervals consume time, as real elapsed time (an interval that
        contains a DST change is an hour shorter or longer). The result is always
        working time: work that ends exactly when an interval closes is reported at
        the start of the next one, so ``add_working_time(x, a + b)`` equals
        ``add_working_time(add_working_time(x, a), b)``.

        Args:
            instant: An aware datetime.
            amount: Working time to add, zero or more; zero gives
                ``next_working_time(instant)``.

        Returns:
            An aware UTC datetime that is working time.

        Raises:
            ValidationError: ``instant`` is naive or ``amount`` is negative.
        """
        current = self.next_working_time(instant)
        remaining = _non_negative(amount, "amount")
        for _, intervals in self._days_from(self._local_day(current)):
            for start, end in intervals:
                if end <= current:
                    continue
                begin = max(start, current)
                available = end - begin
                if remaining < available:
                    return begin + remaining
                remaining -= available
                current = end
        raise AssertionError("unreachable: _days_from is endless or raises")  # pragma: no cover

    def schedule_after(
        self,
        instant: datetime,
        wait: timedelta | DaysAndHours,
        *,
        skip_non_working: bool = False,
        count_working_days: bool = False,
    ) -> datetime:
        """When a sequence step that waits ``wait`` after ``instant`` becomes due.

        The wait's whole days and its remainder (hours, minutes) are treated apart.
        A `timedelta` folds every 24 hours into a day, so ``timedelta(hours=72)`` is
        3 days here; pass a `DaysAndHours` value (a sequence step's ``Span``) to keep
        72 hours as 72 elapsed hours.

        * **Calendar only** (``count_working_days=False``): the days are added in the
          calendar's zone, keeping the local wall time across DST changes (a wall time
          that does not exist that day moves forward by the gap); the remainder is
          added as exact elapsed time.
        * **Working days** (``count_working_days=True``): the days count **full
          working days**. The partial day on which the wait begins never counts: the
          wait begins at the start of the next working day (the current one if its
          first interval has not started yet), runs through that many full working
          days, and ends at the start of the working day after them. From an email on
          Wednesday afternoon, 3 days are Thursday, Friday and Monday, so the step is
          due on Tuesday at the start of work. The remainder is then added as elapsed
          time. A wait of under one day is just the remainder.
        * ``skip_non_working``: a due time outside working time moves to the next
          working time (Wednesday + 3 calendar days = Saturday → Monday 08:00).

        Args:
            instant: When the wait starts (an aware datetime).
            wait: How long the step waits, zero or more: a `timedelta` or a
                `DaysAndHours` value.
            skip_non_working: Move a due time outside working time to the next working
                time.
            count_working_days: Count the wait's days in full working days.

        Returns:
            The due time, an aware UTC datetime.

        Raises:
            ValidationError: ``instant`` is naive or ``wait`` is negative.
        """
        instant = _aware(instant, "instant")
        days, remainder = _wait_parts(wait)
        if days == 0:
            due = instant.astimezone(UTC) + remainder
        elif count_working_days:
            starts = self._working_day_starts(instant)
            for _ in range(days):
                next(starts)  # one full working day of the wait
            due = next(starts) + remainder
        else:
            local = instant.astimezone(self.timezone).replace(tzinfo=None)
            wall = (local + relativedelta(days=days)).replace(tzinfo=self.timezone, fold=0)
            due = wall.astimezone(UTC) + remainder
        return self.next_working_time(due) if skip_non_working else due


def _owner_calendars(value: Any) -> Mapping[str, OrganizationCalendar]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"Calendars.owners={value!r} must map owner ids to OrganizationCalendar values",
            field="Calendars.owners",
            value=value,
        )
    for owner_id, calendar in value.items():
        if not isinstance(owner_id, str) or not isinstance(calendar, OrganizationCalendar):
            raise ValidationError(
                f"Calendars.owners[{owner_id!r}]={calendar!r}: keys must be owner ids (str) "
                f"and values OrganizationCalendar",
                field="Calendars.owners",
                value=owner_id,
            )
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Calendars:
    """The organization calendar plus the sellers' own calendars.

    Sellers may work other hours, in another time zone, and take days off; a seller
    without a calendar of their own works on the organization's.

    Args:
        organization: The fallback calendar; defaults to Monday–Friday 08:00–17:00 UTC.
        owners: Owner id → that seller's calendar.

    Raises:
        ValidationError: ``owners`` is not a mapping of str to `OrganizationCalendar`.
    """

    organization: OrganizationCalendar = attrs.field(factory=OrganizationCalendar)
    # A read-only view keeps the value immutable; it is unhashable, so hashing skips
    # it (equal values still hash equal).
    owners: Mapping[str, OrganizationCalendar] = attrs.field(
        factory=dict, converter=_owner_calendars, hash=False
    )

    def for_owner(self, owner_id: str | None) -> OrganizationCalendar:
        """The calendar ``owner_id`` works on.

        Args:
            owner_id: A seller's id, or None for unowned work.

        Returns:
            The seller's own calendar, else the organization's.
        """
        if owner_id is None:
            return self.organization
        return self.owners.get(owner_id, self.organization)

    def with_owner(self, owner_id: str, calendar: OrganizationCalendar) -> Calendars:
        """These calendars with ``owner_id`` working on ``calendar``.

        Args:
            owner_id: The seller's id.
            calendar: Their calendar.

        Returns:
            New `Calendars`; this value is unchanged.

        Raises:
            ValidationError: ``owner_id`` is not a str or ``calendar`` not a calendar.
        """
        return attrs.evolve(self, owners={**self.owners, owner_id: calendar})

    def with_time_off(self, owner_id: str, days: Iterable[date]) -> Calendars:
        """These calendars with ``days`` off for ``owner_id``, as extra holidays.

        A seller without a calendar of their own gets a copy of the organization's
        with the days off added, so their activities move to their next available
        slot while everyone else keeps the organization's calendar.

        Args:
            owner_id: The seller's id.
            days: Local dates (in the seller's zone) the seller does not work.

        Returns:
            New `Calendars`; this value is unchanged.

        Raises:
            ValidationError: An element of ``days`` is not a date.
        """
        return self.with_owner(owner_id, self.for_owner(owner_id).with_holidays(days))
