"""How fields sort: option sets (enums) in declaration order, everything else by value.

`sort_order` is the rule every store follows (the memory store in Python, the SQL
stores with a CASE expression), checked here against hand-written expectations.
"""

from __future__ import annotations

from typing import Any

import pytest

from salesflow.activity import ActivityKind, ActivityState
from salesflow.lead import LeadStatus, Rating
from salesflow.opportunity import OpportunityStatus
from salesflow.stores.base import Column, columns_of, sort_order
from salesflow.values import OwnerType, RecordKind


def column(kind: RecordKind, name: str) -> Column:
    return next(c for c in columns_of(kind) if c.name == name)


@pytest.mark.parametrize(
    ("kind", "name", "options"),
    [
        (RecordKind.LEAD, "rating", ("hot", "warm", "cold")),
        (RecordKind.LEAD, "status", ("open", "qualified", "disqualified")),
        (RecordKind.LEAD, "owner_type", ("user", "team")),
        (RecordKind.OPPORTUNITY, "status", ("open", "won", "lost")),
        (RecordKind.ACTIVITY, "state", ("open", "completed", "canceled")),
    ],
)
def test_enum_fields_list_their_options_in_declaration_order(
    kind: RecordKind, name: str, options: tuple[str, ...]
) -> None:
    assert column(kind, name).options == options


def test_options_are_the_enums_values() -> None:
    pairs: list[tuple[RecordKind, str, Any]] = [
        (RecordKind.LEAD, "rating", Rating),
        (RecordKind.LEAD, "status", LeadStatus),
        (RecordKind.LEAD, "owner_type", OwnerType),
        (RecordKind.OPPORTUNITY, "status", OpportunityStatus),
        (RecordKind.ACTIVITY, "kind", ActivityKind),
        (RecordKind.ACTIVITY, "state", ActivityState),
    ]
    for kind, name, enum in pairs:
        assert column(kind, name).options == tuple(m.value for m in enum)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (RecordKind.LEAD, "topic"),
        (RecordKind.LEAD, "status_reason"),  # text: hosts register their own reasons
        (RecordKind.LEAD, "employees"),
        (RecordKind.LEAD, "estimated_value_currency"),
        (RecordKind.ACTIVITY, "regarding_kind"),  # part of a reference, not an option set
    ],
)
def test_other_fields_have_no_options(kind: RecordKind, name: str) -> None:
    assert column(kind, name).options is None


def test_ratings_sort_hot_warm_cold_with_empty_first() -> None:
    key = sort_order(RecordKind.LEAD, "rating")
    assert sorted(["cold", None, "warm", "hot"], key=key) == [None, "hot", "warm", "cold"]
    assert sorted(["cold", None, "warm", "hot"], key=key, reverse=True) == [
        "cold",
        "warm",
        "hot",
        None,
    ]
    assert sorted([Rating.COLD, Rating.HOT], key=key) == [Rating.HOT, Rating.COLD]


def test_values_outside_the_options_sort_after_them_by_text() -> None:
    key = sort_order(RecordKind.LEAD, "rating")
    values = ["zebra", "cold", None, "aardvark", "hot", "Zebra", "warm"]
    assert sorted(values, key=key) == [None, "hot", "warm", "cold", "Zebra", "aardvark", "zebra"]


@pytest.mark.parametrize("name", ["status_reason", "last_name", "custom.rating"])
def test_text_and_custom_fields_sort_by_value(name: str) -> None:
    key = sort_order(RecordKind.LEAD, name)
    assert sorted(["warm", None, "hot", "cold"], key=key) == [None, "cold", "hot", "warm"]


def test_numbers_sort_by_value() -> None:
    key = sort_order(RecordKind.LEAD, "employees")
    assert sorted([30, None, 4, 120], key=key) == [None, 4, 30, 120]
