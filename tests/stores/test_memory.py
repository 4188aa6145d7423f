"""MemoryStore runs the store contract; reopening goes through dump/load."""

from __future__ import annotations

import json

from salesflow.stores.base import Store
from salesflow.stores.memory import MemoryStore
from salesflow.testing.contract import StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self) -> Store:
        return MemoryStore()

    def reopen(self, store: Store) -> Store:
        assert isinstance(store, MemoryStore)
        snapshot = json.loads(json.dumps(store.dump()))
        store.close()
        return MemoryStore.load(snapshot)
