"""Checks both SQL stores' test modules run on data only raw SQL can write."""

from __future__ import annotations

from salesflow.lead import Lead
from salesflow.stores.base import Query, SortKey, Store

__all__ = ["check_option_walk"]


def check_option_walk(store: Store) -> None:
    """Leads 1-6 with statuses open, qualified, open, disqualified, zebra, aardvark."""
    # Ascending: open (1, 3), qualified, disqualified, then other text by text.
    # Descending: the groups reversed, ids still ascending within one.
    up = ["lead-0001", "lead-0003", "lead-0002", "lead-0004", "lead-0006", "lead-0005"]
    down = ["lead-0005", "lead-0006", "lead-0004", "lead-0002", "lead-0001", "lead-0003"]
    with store.unit_of_work() as uow:
        for descending, want in ((False, up), (True, down)):
            by_status = (SortKey(field="status", descending=descending), SortKey(field="id"))
            for offset in range(7):
                for limit in (1, 2, 4):
                    page = uow.query(Lead, Query(order_by=by_status, offset=offset, limit=limit))
                    assert [r.id for r in page.items] == want[offset : offset + limit]
        bounded = uow.group_counts(Lead, Query(count_limit=1), "status")
        exact = uow.group_counts(Lead, Query(), "status")
    assert [(g.value, g.count, g.exact) for g in bounded] == [
        ("open", 1, False),
        ("qualified", 1, True),
        ("disqualified", 1, True),
        ("aardvark", 1, True),
        ("zebra", 1, True),
    ]
    assert [(g.value, g.count) for g in exact] == [
        ("open", 2),
        ("qualified", 1),
        ("disqualified", 1),
        ("aardvark", 1),
        ("zebra", 1),
    ]
