"""MemoryStore runs the store contract; reopening goes through dump/load."""

from __future__ import annotations

import json

import pytest

from salesflow.errors import StoreError
from salesflow.lead import Lead
from salesflow.stores.base import Store
from salesflow.stores.codec import Codec
from salesflow.stores.memory import MemoryStore
from salesflow.testing.contract import StoreContract, lead, upgraded_codec
from salesflow.testing.contract_interactions import interaction
from salesflow.testing.contract_scores import score


class TestMemoryStore(StoreContract):
    migrates_when_opened = True  # load() decodes every document

    def make_store(self) -> Store:
        return MemoryStore()

    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        assert isinstance(store, MemoryStore)
        snapshot = json.loads(json.dumps(store.dump()))
        store.close()
        return MemoryStore.load(snapshot, codec)


def test_a_loaded_snapshot_is_dumped_at_the_current_schemas() -> None:
    old = MemoryStore()
    with old.unit_of_work() as uow:
        uow.add(lead(1, custom={"tier": "gold"}))
        uow.commit()
    snapshot = old.dump()
    assert snapshot["records"]["lead"][0]["schema"] == 1
    upgraded = MemoryStore.load(snapshot, upgraded_codec())
    again = upgraded.dump()
    assert again["records"]["lead"][0]["schema"] == 2
    assert again["records"]["lead"][0]["custom"] == {"segment": "gold"}
    assert upgraded.migrate() == 0
    with upgraded.unit_of_work() as uow:
        assert uow.get(Lead, "lead-0001").version == 1


def test_a_closed_store_refuses_to_migrate() -> None:
    store = MemoryStore()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.migrate()


def test_interactions_are_dumped_and_loaded_and_older_snapshots_have_none() -> None:
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.add(lead(1))
        uow.add_interaction(interaction(1, lead_id="lead-0001"))
        uow.commit()
    snapshot = json.loads(json.dumps(store.dump()))
    assert [doc["id"] for doc in snapshot["interactions"]] == ["int-0001"]
    with MemoryStore.load(snapshot).unit_of_work() as uow:
        assert uow.interactions(lead_id="lead-0001") == [interaction(1, lead_id="lead-0001")]
    del snapshot["interactions"]  # as dumped before stores kept interactions
    with MemoryStore.load(snapshot).unit_of_work() as uow:
        assert uow.get(Lead, "lead-0001") == lead(1)
        assert uow.interactions(contact_ids=["c1"], lead_id="lead-0001") == []


def test_scores_are_dumped_and_loaded_and_older_snapshots_have_none() -> None:
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.add(lead(1))
        uow.add_score(score(1, lead_id="lead-0001"))
        uow.add_score(score(2, lead_id="lead-0001"))  # the same instant: added later wins
        uow.commit()
    snapshot = json.loads(json.dumps(store.dump()))
    assert [doc["points"] for doc in snapshot["scores"]] == [1, 2]
    with MemoryStore.load(snapshot).unit_of_work() as uow:
        assert uow.scores("lead-0001") == [score(2, lead_id="lead-0001")]
    del snapshot["scores"]  # as dumped before stores kept scores
    with MemoryStore.load(snapshot).unit_of_work() as uow:
        assert uow.get(Lead, "lead-0001") == lead(1)
        assert uow.score_history("lead-0001") == []
