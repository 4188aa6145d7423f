"""The clock port: FakeClock only moves when told, and only forwards; naive times are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from salesflow.clock import Clock, FakeClock, SystemClock, require_aware
from salesflow.errors import SalesflowError, ValidationError

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_fake_clock_stands_still_until_moved() -> None:
    clock = FakeClock(START)
    assert clock.now() == START
    assert clock.now() == START


def test_advance_moves_forward_and_returns_the_new_instant() -> None:
    clock = FakeClock(START)
    assert clock.advance(timedelta(hours=2, minutes=30)) == datetime(2026, 3, 2, 11, 30, tzinfo=UTC)
    assert clock.now() == datetime(2026, 3, 2, 11, 30, tzinfo=UTC)


def test_advance_by_zero_is_allowed() -> None:
    clock = FakeClock(START)
    assert clock.advance(timedelta(0)) == START


def test_advance_backwards_is_refused_and_the_clock_stays() -> None:
    clock = FakeClock(START)
    with pytest.raises(ValidationError, match="non-negative") as caught:
        clock.advance(timedelta(seconds=-1))
    assert caught.value.field == "delta"
    assert clock.now() == START


def test_set_moves_to_a_later_instant_in_any_zone() -> None:
    clock = FakeClock(START)
    later = datetime(2026, 3, 2, 12, 0, tzinfo=ZoneInfo("Europe/Vilnius"))  # 10:00 UTC
    assert clock.set(later) == later
    assert clock.now() == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_set_to_the_same_instant_is_allowed() -> None:
    clock = FakeClock(START)
    assert clock.set(START) == START


def test_set_backwards_is_refused_and_the_clock_stays() -> None:
    clock = FakeClock(START)
    with pytest.raises(ValidationError, match="cannot go back") as caught:
        clock.set(START - timedelta(microseconds=1))
    assert caught.value.field == "instant"
    assert clock.now() == START


def test_set_to_a_naive_instant_is_refused() -> None:
    clock = FakeClock(START)
    with pytest.raises(ValidationError, match="naive"):
        clock.set(datetime(2026, 3, 3, 9, 0))
    assert clock.now() == START


def test_fake_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValidationError, match=r"FakeClock\.start.*naive"):
        FakeClock(datetime(2026, 3, 2, 9, 0))


def test_fake_clock_refuses_a_start_that_is_not_a_datetime() -> None:
    with pytest.raises(ValidationError, match="must be a datetime"):
        FakeClock("2026-03-02T09:00:00Z")  # type: ignore[arg-type]


def test_require_aware_returns_aware_values_unchanged() -> None:
    value = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert require_aware(value, "x") is value


def test_require_aware_names_the_field_and_value_of_a_naive_datetime() -> None:
    naive = datetime(2026, 3, 2, 9, 0)
    with pytest.raises(ValidationError) as caught:
        require_aware(naive, "Lead.created_at")
    assert caught.value.field == "Lead.created_at"
    assert caught.value.value == naive
    assert "Lead.created_at" in str(caught.value)
    assert "2026-03-02T09:00:00" in str(caught.value)
    assert isinstance(caught.value, SalesflowError)


def test_fake_and_system_clocks_satisfy_the_clock_protocol() -> None:
    assert isinstance(FakeClock(START), Clock)
    assert isinstance(SystemClock(), Clock)


def test_system_clock_tells_aware_utc_time() -> None:
    # Only the time zone is checked: the value itself is the wall clock's business.
    assert SystemClock().now().utcoffset() == timedelta(0)
