"""Hypothesis strategies that generate salesflow's own values and records.

Reused by salesflow's tests and offered to hosts for theirs::

    from hypothesis import given
    from salesflow.testing.strategies import lead_fields

    @given(lead_fields())
    def test_any_lead_can_be_created(fields): ...
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from salesflow.lead import (
    Budget,
    Lead,
    LeadSource,
    Need,
    PurchaseProcess,
    PurchaseTimeframe,
    Rating,
)
from salesflow.values import CustomValue, Money

__all__ = ["aware_datetimes", "custom_values", "lead_fields", "leads", "money"]

_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and s.strip() != "")


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """UTC datetimes between 2000 and 2100, with microseconds."""
    return st.datetimes(
        # hypothesis takes naive bounds and attaches the zone itself
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    )


def money() -> st.SearchStrategy[Money]:
    """Exact amounts with up to two decimals in a few currencies."""
    return st.builds(
        Money,
        amount=st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
        currency=st.sampled_from(["EUR", "USD", "PLN", "CNY"]),
    )


def custom_values() -> st.SearchStrategy[CustomValue]:
    """Every kind of value a record's ``custom`` mapping may hold."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False, width=64),
        _TEXT,
        st.decimals(
            allow_nan=False, allow_infinity=False, places=4, max_value=10**12, min_value=-(10**12)
        ),
        st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)),
        aware_datetimes(),
    )


def lead_fields() -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments ``Salesflow.create_lead`` accepts (valid ones)."""
    optional = {
        "first_name": _TEXT,
        "email": st.emails().filter(lambda e: len(e) <= 254),
        "company_name": _TEXT,
        "city": _TEXT,
        "employees": st.integers(0, 1_000_000),
        "annual_revenue": money(),
        "estimated_value": money(),
        "estimated_close_date": st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
        "rating": st.sampled_from(Rating),
        "source": st.sampled_from(LeadSource),
        "budget": st.sampled_from(Budget),
        "purchase_timeframe": st.sampled_from(PurchaseTimeframe),
        "purchase_process": st.sampled_from(PurchaseProcess),
        "need": st.sampled_from(Need),
        "do_not_email": st.booleans(),
        "owner_id": st.sampled_from(["u1", "u2", "team-emea"]),
        "custom": st.dictionaries(
            st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True), custom_values(), max_size=4
        ),
    }
    return st.fixed_dictionaries({"topic": _TEXT, "last_name": _TEXT}, optional=optional)


def leads() -> st.SearchStrategy[Lead]:
    """Whole `Lead` records (open, version 1) with generated ids and times."""

    def build(fields: dict[str, Any], n: int, created: datetime) -> Lead:
        return Lead(
            id=f"lead-{n}",
            created_at=created,
            modified_at=created + timedelta(seconds=1),
            **fields,
        )

    return st.builds(build, lead_fields(), st.integers(0, 10**9), aware_datetimes())
