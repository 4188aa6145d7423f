"""Read-only units of work.

``store.unit_of_work(read_only=True)`` opens a unit that reads like any other and
refuses every write. The engine runs its queries (views, work lists, ``get_*``,
reports, ``up_next``) in one, so the store can start a transaction that takes no
write lock: on SQLite a deferred ``BEGIN``, which neither waits for another
process's write batch nor holds one up; on PostgreSQL ``BEGIN READ ONLY``.

Every store wraps its unit in `ReadOnlyUnit`, so the refusal is the same
everywhere and comes before the store is touched: a refused write leaves the unit
exactly as it was, and the unit can go on reading.
"""

from __future__ import annotations

from typing import Any, NoReturn, cast

from salesflow.errors import StoreError
from salesflow.stores.base import UnitOfWork

__all__ = ["READ_METHODS", "WRITE_METHODS", "ReadOnlyUnit", "read_only"]

WRITE_METHODS = frozenset(
    {
        "add",
        "update",
        "schedule",
        "cancel_due",
        "cancel_due_by_key",
        "claim_due",
        "complete_due",
        "replace_due",
        "add_definition",
        "set_definition_state",
        "add_enrollment",
        "update_enrollment",
        "add_interaction",
        "add_score",
        "remove_model_scores",
        "put_state",
        "put_outbox",
        "claim_outbox",
        "remove_outbox",
    }
)
"""The `UnitOfWork` methods that change what is stored (``claim_*`` too: they
take items for this unit). A read-only unit refuses them."""

READ_METHODS = frozenset(
    {
        "get",
        "find",
        "find_by",
        "find_many_by",
        "find_ids_by",
        "query",
        "group_counts",
        "span_stats",
        "sequence_conversions",
        "timeline",
        "next_due_at",
        "due_items",
        "find_definition",
        "definitions",
        "find_enrollment",
        "enrollments",
        "find_interaction",
        "interactions",
        "scores",
        "score_history",
        "best_scores",
        "top_scored_leads",
        "scored_lead_activities",
        "get_state",
        "states",
        "savepoint",
        "commit",
    }
)
"""The `UnitOfWork` methods a read-only unit passes through. ``commit`` ends the
transaction (there is nothing to write); ``savepoint`` is harmless."""


class ReadOnlyUnit:
    """A `UnitOfWork` that reads through ``unit`` and refuses every write with a
    `StoreError`. ``store`` names the store in the message (``"SQLiteStore"``).

    Build one with `read_only`, which types it as a `UnitOfWork`.
    """

    __slots__ = ("_store", "_unit")

    def __init__(self, unit: UnitOfWork, store: str) -> None:
        self._unit = unit
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name in WRITE_METHODS:
            return _Refusal(self._store, name)
        return getattr(self._unit, name)

    def __repr__(self) -> str:
        return f"ReadOnlyUnit({self._unit!r})"


class _Refusal:
    """What a read-only unit hands out for a write method: calling it raises."""

    __slots__ = ("_method", "_store")

    def __init__(self, store: str, method: str) -> None:
        self._store = store
        self._method = method

    def __call__(self, *args: object, **kwargs: object) -> NoReturn:
        raise StoreError(
            f"{self._method}() writes, and this unit of work on the {self._store} is "
            f"read-only; open the unit with unit_of_work() (without read_only=True) to "
            f"change what is stored"
        )


def read_only(unit: UnitOfWork, store: str) -> UnitOfWork:
    """``unit`` behind a `ReadOnlyUnit`: reads pass through, writes raise `StoreError`
    and change nothing. ``store`` names the store in the error (``"MemoryStore"``)."""
    return cast(UnitOfWork, ReadOnlyUnit(unit, store))
