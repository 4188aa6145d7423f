"""Where records live: the store port, the three stores, the codec, `open_store`.

Public: `Store`, `UnitOfWork`, `Query`, `Page`, `SortKey`, `GroupCount`,
`MemoryStore`, `SQLiteStore`, `PostgresStore` (needs the ``postgres`` extra when
opened), `Codec` and `open_store`. The modules ``sql`` and ``base``'s helpers are
the stores' own machinery.
"""

from __future__ import annotations

from salesflow.stores.base import GroupCount, Page, Query, SortKey, Store, UnitOfWork
from salesflow.stores.codec import Codec
from salesflow.stores.memory import MemoryStore
from salesflow.stores.postgres import PostgresStore
from salesflow.stores.sqlite import SQLiteStore
from salesflow.stores.url import open_store

__all__ = [
    "Codec",
    "GroupCount",
    "MemoryStore",
    "Page",
    "PostgresStore",
    "Query",
    "SQLiteStore",
    "SortKey",
    "Store",
    "UnitOfWork",
    "open_store",
]
