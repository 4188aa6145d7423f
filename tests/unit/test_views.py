"""The standard lead views through the engine: which leads each one lists, with search,
filters, sorting, grouping and paging.

The book: five leads created at chosen instants around the week boundaries (weeks start
Monday 00:00 UTC), then looked at on Wednesday 4 March 2026 at 12:00 UTC, when
"this week" is Mon 2 March .. Mon 9 March and "last week" Mon 23 Feb .. Mon 2 March.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dateutil.relativedelta import SU

from salesflow.clock import FakeClock
from salesflow.conditions import all_of, field
from salesflow.engine import Salesflow
from salesflow.errors import ValidationError
from salesflow.lead import Lead
from salesflow.stores.base import GroupCount, SortKey
from salesflow.stores.memory import MemoryStore
from salesflow.views import LeadView, ViewResult, lead_view_query, read_lead_view
from salesflow.worktime import OrganizationCalendar

US = timedelta(microseconds=1)
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)

BOOK: list[tuple[str, datetime, dict[str, Any]]] = [
    (
        "a",
        datetime(2026, 2, 23, tzinfo=UTC) - US,  # the last instant before last week
        {
            "first_name": "Ana",
            "last_name": "Ruiz",
            "company_name": "Contoso",
            "email": "ana@contoso.com",
            "rating": "hot",
            "owner_id": "user-1",
            "custom": {"region": "EMEA"},
        },
    ),
    (
        "b",
        datetime(2026, 2, 23, tzinfo=UTC),  # the first instant of last week
        {
            "first_name": "Ben",
            "last_name": "Smith",
            "company_name": "Fabrikam",
            "email": "ben@fabrikam.com",
            "rating": "warm",
            "owner_id": "user-2",
        },
    ),
    (
        "c",
        datetime(2026, 3, 2, tzinfo=UTC) - US,  # the last instant of last week
        {
            "first_name": "Cara",
            "last_name": "Smithson",
            "company_name": "Contoso Retail",
            "email": "cara@northwind.com",
            "rating": "cold",
            "owner_id": "user-1",
            "custom": {"region": "APAC"},
        },
    ),
    (
        "d",
        datetime(2026, 3, 2, tzinfo=UTC),  # the first instant of this week
        {"first_name": "Dan", "last_name": "Brown", "rating": "hot", "owner_id": "user-1"},
    ),
    (
        "e",
        datetime(2026, 3, 4, 10, 0, tzinfo=UTC),
        {
            "first_name": "Eve",
            "last_name": "Stone",
            "company_name": "Northwind",
            "email": "eve@contoso.com",
            "owner_id": "user-2",
            "custom": {"region": "EMEA"},
        },
    ),
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 2, 16, 9, 0, tzinfo=UTC))


@pytest.fixture
def book(engine: Salesflow, clock: FakeClock) -> dict[str, str]:
    """Create the book; qualify b and disqualify c; return letter -> lead id."""
    made: dict[str, str] = {}
    for letter, at, fields in BOOK:
        clock.set(at)
        made[letter] = engine.create_lead(topic=f"Deal {letter.upper()}", **fields).id
    clock.set(NOW - timedelta(hours=1))
    engine.qualify_lead(made["b"])
    engine.disqualify_lead(made["c"], "no_longer_interested")
    clock.set(NOW)
    return made


def letters(result: ViewResult[Lead], book: dict[str, str]) -> list[str]:
    by_id = {v: k for k, v in book.items()}
    return [by_id[lead.id] for lead in result.items]


View = Callable[..., list[str]]


@pytest.fixture
def view(engine: Salesflow, book: dict[str, str]) -> View:
    def run(name: LeadView | str, **kwargs: Any) -> list[str]:
        return letters(engine.lead_view(name, **kwargs), book)

    return run


def test_the_book_has_the_ids_the_counting_factory_gives(book: dict[str, str]) -> None:
    assert book == {"a": "lead-1", "b": "lead-2", "c": "lead-3", "d": "lead-4", "e": "lead-5"}


# --- which leads each view lists (newest first by default) ------------------------------


def test_all_leads(view: View) -> None:
    assert view("all_leads") == ["e", "d", "c", "b", "a"]


def test_open_leads(view: View) -> None:
    assert view(LeadView.OPEN_LEADS) == ["e", "d", "a"]


def test_closed_leads_are_qualified_and_disqualified_ones(view: View) -> None:
    assert view("closed_leads") == ["c", "b"]


def test_my_open_leads_are_the_users_open_leads(view: View) -> None:
    assert view("my_open_leads", user_id="user-1") == ["d", "a"]  # c is closed
    assert view("my_open_leads", user_id="user-2") == ["e"]  # b is closed
    assert view("my_open_leads", user_id="user-3") == []


@pytest.mark.parametrize("user_id", [None, ""])
def test_my_open_leads_needs_a_user(engine: Salesflow, user_id: str | None) -> None:
    with pytest.raises(ValidationError, match="needs user_id") as caught:
        engine.lead_view("my_open_leads", user_id=user_id)
    assert caught.value.field == "user_id"


def test_opened_this_week_starts_at_monday_midnight(view: View) -> None:
    assert view("opened_this_week") == ["e", "d"]


def test_opened_last_week_is_the_whole_previous_week_closed_or_not(view: View) -> None:
    assert view("opened_last_week") == ["c", "b"]


def test_weekly_views_follow_the_clock(
    engine: Salesflow, clock: FakeClock, book: dict[str, str]
) -> None:
    clock.set(datetime(2026, 3, 9, tzinfo=UTC))  # next Monday: this week is empty again
    assert letters(engine.lead_view("opened_this_week"), book) == []
    assert letters(engine.lead_view("opened_last_week"), book) == ["e", "d"]


def test_weekly_views_use_the_organization_calendar() -> None:
    # Weeks start Sunday 00:00 in Vilnius (UTC+2 in winter): Saturday 28 Feb 21:59:59 UTC
    # is still last week there, 22:00 UTC is already Sunday 1 March 00:00.
    clock = FakeClock(datetime(2026, 2, 20, tzinfo=UTC))
    engine = Salesflow(
        MemoryStore(),
        clock=clock,
        calendar=OrganizationCalendar(timezone="Europe/Vilnius", week_start=SU),
    )
    instants = {
        "before last week": datetime(2026, 2, 21, 21, 59, 59, tzinfo=UTC),
        "last week start": datetime(2026, 2, 21, 22, 0, tzinfo=UTC),
        "last week end": datetime(2026, 2, 28, 21, 59, 59, tzinfo=UTC),
        "this week start": datetime(2026, 2, 28, 22, 0, tzinfo=UTC),
        "monday utc": datetime(2026, 3, 2, 0, 0, tzinfo=UTC),
    }
    for name, at in instants.items():
        clock.set(at)
        engine.create_lead(topic=name, last_name="X")
    clock.set(NOW)
    this_week = [lead.topic for lead in engine.lead_view("opened_this_week").items]
    last_week = [lead.topic for lead in engine.lead_view("opened_last_week").items]
    assert this_week == ["monday utc", "this week start"]
    assert last_week == ["last week end", "last week start"]


# --- search --------------------------------------------------------------------------


def test_search_matches_the_start_of_last_name_ignoring_case(view: View) -> None:
    assert view("all_leads", search="SMITH") == ["c", "b"]


def test_search_matches_full_name_company_and_email(view: View) -> None:
    assert view("all_leads", search="ana r") == ["a"]
    assert view("all_leads", search="fabrikam") == ["b"]
    assert view("all_leads", search="contoso") == ["c", "a"]
    assert view("all_leads", search="eve@") == ["e"]


def test_search_matches_the_topic(view: View) -> None:
    assert view("all_leads", search="deal d") == ["d"]


def test_a_leading_star_searches_inside(view: View) -> None:
    # Contoso (a), Contoso Retail (c) and eve@contoso.com (e)
    assert view("all_leads", search="*contoso") == ["e", "c", "a"]
    assert view("all_leads", search="contoso.com") == []


def test_search_narrows_the_view(view: View) -> None:
    assert view("open_leads", search="*contoso") == ["e", "a"]


@pytest.mark.parametrize("blank", ["", "   ", "*"])
def test_a_blank_search_lists_everything(view: View, blank: str) -> None:
    assert view("all_leads", search=blank) == ["e", "d", "c", "b", "a"]


# --- filters -------------------------------------------------------------------------


def test_filter_on_a_field(view: View) -> None:
    assert view("open_leads", where=field("rating").eq("hot")) == ["d", "a"]


def test_filter_on_an_empty_field(view: View) -> None:
    assert view("all_leads", where=field("company_name").is_null()) == ["d"]
    assert view("all_leads", where=field("rating").is_null()) == ["e"]


def test_filter_on_a_custom_field(view: View) -> None:
    assert view("all_leads", where=field("custom.region").eq("EMEA")) == ["e", "a"]


def test_filter_on_the_status_reason(view: View) -> None:
    where = field("status_reason").eq("no_longer_interested")
    assert view("closed_leads", where=where) == ["c"]


def test_filter_on_a_datetime(view: View) -> None:
    where = all_of(
        field("created_at").ge(datetime(2026, 2, 23, tzinfo=UTC)),
        field("created_at").lt(datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
    )
    assert view("all_leads", where=where) == ["c", "b"]


def test_filter_search_and_view_combine(view: View) -> None:
    assert view("my_open_leads", user_id="user-1") == ["d", "a"]
    mine = {"user_id": "user-1", "where": field("rating").eq("hot")}
    assert view("my_open_leads", search="*contoso", **mine) == ["a"]  # c is closed


# --- sorting -------------------------------------------------------------------------


def test_sort_by_a_field(view: View) -> None:
    assert view("all_leads", order_by=[SortKey(field="last_name")]) == ["d", "a", "b", "c", "e"]


def test_sort_descending(view: View) -> None:
    assert view("all_leads", order_by=[SortKey(field="last_name", descending=True)]) == [
        "e",
        "c",
        "b",
        "a",
        "d",
    ]


def test_empty_values_sort_first_and_ties_break_by_id(view: View) -> None:
    # rating: e has none; a (lead-1) and d (lead-4) are both hot, b warm, c cold.
    # Ratings sort in option order (hot, warm, cold), not alphabetically.
    assert view("all_leads", order_by=[SortKey(field="rating")]) == ["e", "a", "d", "b", "c"]
    assert view("all_leads", order_by=[SortKey(field="rating", descending=True)]) == [
        "c",
        "b",
        "a",
        "d",
        "e",
    ]


def test_status_sorts_in_option_order(view: View) -> None:
    # open (a, d, e), qualified (b), disqualified (c): not alphabetical, which
    # would put disqualified first.
    order = [SortKey(field="status"), SortKey(field="created_at")]
    assert view("all_leads", order_by=order) == ["a", "d", "e", "b", "c"]


def test_oldest_first(view: View) -> None:
    assert view("all_leads", order_by=[SortKey(field="created_at")]) == ["a", "b", "c", "d", "e"]


# --- grouping ------------------------------------------------------------------------


def test_group_by_sorts_by_the_group_then_the_view_order_and_counts_every_group(
    engine: Salesflow, book: dict[str, str]
) -> None:
    result = engine.lead_view("all_leads", group_by="rating")
    # Groups in option order (empty, hot, warm, cold); newest first within a group.
    assert letters(result, book) == ["e", "d", "a", "b", "c"]
    assert result.groups == (
        GroupCount(value=None, count=1),
        GroupCount(value="hot", count=2),
        GroupCount(value="warm", count=1),
        GroupCount(value="cold", count=1),
    )
    grouped = [(value, [lead.id for lead in leads]) for value, leads in result.grouped()]
    assert grouped == [
        (None, [book["e"]]),
        ("hot", [book["d"], book["a"]]),
        ("warm", [book["b"]]),
        ("cold", [book["c"]]),
    ]


def test_group_counts_cover_the_whole_view_not_just_the_page(
    engine: Salesflow, book: dict[str, str]
) -> None:
    result = engine.lead_view("all_leads", group_by="rating", page=2, page_size=2)
    # Rows e | d, a | b | c by group; page 2 holds a (hot, with d on page 1) and b.
    assert letters(result, book) == ["a", "b"]
    assert [(g.value, g.count) for g in result.groups] == [
        (None, 1),
        ("hot", 2),
        ("warm", 1),
        ("cold", 1),
    ]
    a, b = result.items
    assert result.grouped() == [("hot", [a]), ("warm", [b])]


def test_group_counts_follow_the_view(engine: Salesflow, book: dict[str, str]) -> None:
    assert engine.lead_view_counts("open_leads", "owner_id") == [
        GroupCount(value="user-1", count=2),
        GroupCount(value="user-2", count=1),
    ]
    assert engine.lead_view_counts("my_open_leads", "rating", user_id="user-1") == [
        GroupCount(value="hot", count=2)
    ]


def test_an_ungrouped_result_is_one_group(engine: Salesflow, book: dict[str, str]) -> None:
    result = engine.lead_view("open_leads")
    assert result.groups == ()
    assert result.grouped() == [(None, list(result.items))]


# --- paging --------------------------------------------------------------------------


def test_paging(engine: Salesflow, book: dict[str, str]) -> None:
    pages = [engine.lead_view("all_leads", page=n, page_size=2) for n in (1, 2, 3, 4)]
    assert [letters(p, book) for p in pages] == [["e", "d"], ["c", "b"], ["a"], []]
    assert {p.total for p in pages} == {5}
    assert {p.pages for p in pages} == {3}
    assert [p.page for p in pages] == [1, 2, 3, 4]
    assert pages[0].view == "all_leads"
    assert pages[0].page_size == 2


def test_a_bounded_count_is_exact_up_to_its_bound_and_says_when_it_stopped(
    engine: Salesflow, store: MemoryStore, book: dict[str, str]
) -> None:
    def page(n: int, count_limit: int | None) -> tuple[list[str], int, bool, int]:
        query = lead_view_query(
            "all_leads",
            now=NOW,
            calendar=engine.calendar,
            group_by="status",
            page=n,
            page_size=2,
            count_limit=count_limit,
        )
        with store.unit_of_work() as uow:
            got = read_lead_view(uow, query, view="all_leads", group_by="status")
        assert (got.page, got.page_size, got.view) == (n, 2, "all_leads")
        assert sum(g.count for g in got.groups) == 5  # groups count the whole view
        return letters(got, book), got.total, got.total_exact, got.pages

    assert page(1, None) == (["e", "d"], 5, True, 3)  # open leads first, newest first
    assert page(1, 5) == (["e", "d"], 5, True, 3)
    assert page(1, 3) == (["e", "d"], 3, False, 2)  # "3+"
    assert page(2, 3) == (["a", "b"], 4, False, 2)  # at least what was paged through
    assert page(3, 3) == (["c"], 5, True, 3)  # the last page knows the end
    assert engine.lead_view("all_leads").total_exact  # the engine counts exactly


def test_an_empty_view_has_one_page(engine: Salesflow, book: dict[str, str]) -> None:
    result = engine.lead_view("my_open_leads", user_id="nobody")
    assert (result.total, result.pages, result.items) == (0, 1, ())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"page": 0}, "page"),
        ({"page": True}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 10_001}, "page_size"),
        ({"page_size": "10"}, "page_size"),
    ],
)
def test_bad_paging_is_refused(engine: Salesflow, kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValidationError, match=name) as caught:
        engine.lead_view("all_leads", **kwargs)
    assert caught.value.field == name


def test_views_have_display_labels() -> None:
    assert [v.label for v in LeadView] == [
        "Open leads",
        "Closed leads",
        "All leads",
        "My open leads",
        "Leads opened last week",
        "Leads opened this week",
    ]


def test_views_are_read_only(engine: Salesflow, store: MemoryStore, book: dict[str, str]) -> None:
    before = store.dump()
    for name in LeadView:
        engine.lead_view(name, user_id="user-1", group_by="rating")
    assert store.dump() == before
