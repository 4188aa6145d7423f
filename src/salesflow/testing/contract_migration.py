"""Migration every store performs alike (part of `StoreContract`): `Store.migrate`
rewrites old documents with the codec's migrations so queries see them, and refuses
documents newer than its codec. `upgraded_codec` is the upgrade the tests play."""

from __future__ import annotations

import abc
from typing import Any

import attrs
import pytest

from salesflow.conditions import field
from salesflow.errors import StoreError
from salesflow.lead import Lead, Rating
from salesflow.party import Contact
from salesflow.stores.base import Query, Store
from salesflow.stores.codec import Codec
from salesflow.testing.contract_records import T0, lead
from salesflow.values import Record, RecordKind

__all__ = ["MigrationContract", "tier_to_segment", "upgraded_codec"]


def tier_to_segment(doc: dict[str, Any]) -> dict[str, Any]:
    """Lead documents 1 → 2: custom "tier" is now "segment", and an unrated gold
    lead is rated hot (so both a custom field and a typed column change)."""
    custom = dict(doc["custom"])
    if "tier" in custom:
        custom["segment"] = custom.pop("tier")
    rating = doc["rating"]
    if rating is None and custom.get("segment") == "gold":
        rating = Rating.HOT.value
    return {**doc, "custom": custom, "rating": rating}


def upgraded_codec() -> Codec:
    """A codec at lead schema 2 that migrates schema-1 leads with `tier_to_segment`."""
    return Codec(migrations={(RecordKind.LEAD, 1): tier_to_segment}, current={RecordKind.LEAD: 2})


class MigrationContract(abc.ABC):
    """Schema migration (part of `StoreContract`, which supplies `put`)."""

    migrates_when_opened: bool = False
    """See `StoreContract.migrates_when_opened`."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    @abc.abstractmethod
    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        """Close ``store`` and return a store over the same data (see
        `StoreContract.reopen`)."""

    @abc.abstractmethod
    def put(self, store: Store, *records: Record) -> None:
        """Add ``records`` in one committed unit of work (see `StoreContract.put`)."""

    def test_migrate_rewrites_old_documents_so_queries_see_them(self) -> None:
        store = self.make_store()
        leads = [lead(n, custom={"tier": ["gold", "silver"][n % 2]}) for n in range(1, 6)]
        contact = Contact(id="con-1", created_at=T0, modified_at=T0, last_name="Ruiz")
        self.put(store, *leads, contact)
        with store.unit_of_work() as uow:
            edited = uow.update(attrs.evolve(uow.get(Lead, "lead-0001"), topic="Edited"))
            uow.commit()
        assert isinstance(edited, Lead)
        leads[0] = edited
        want = [
            attrs.evolve(
                r,
                custom={"segment": r.custom["tier"]},
                rating=Rating.HOT if r.custom["tier"] == "gold" else None,
            )
            for r in leads
        ]
        gold = sorted(r.id for r in want if r.custom["segment"] == "gold")
        store = self.reopen(store, upgraded_codec())
        try:
            with store.unit_of_work() as uow:  # reads migrate before migrate() does
                assert [uow.get(Lead, r.id) for r in want] == want
            assert store.migrate() == (0 if self.migrates_when_opened else len(leads))
            assert store.migrate() == 0
            for _ in range(2):  # and the rewritten documents are stored
                with store.unit_of_work() as uow:
                    # Versions and modification times are kept: a migration is no edit.
                    assert [uow.get(Lead, r.id) for r in want] == want
                    assert uow.get(Contact, "con-1") == contact
                    segment = Query(where=field("custom.segment").eq("gold"))
                    assert [r.id for r in uow.query(Lead, segment).items] == gold
                    hot = Query(where=field("rating").eq("hot"))
                    assert [r.id for r in uow.query(Lead, hot).items] == gold
                    tier = Query(where=field("custom.tier").not_null())
                    assert uow.query(Lead, tier).total == 0
                store = self.reopen(store, upgraded_codec())
                assert store.migrate() == 0
        finally:
            store.close()

    def test_migrate_refuses_documents_newer_than_the_codec(self) -> None:
        store = self.make_store()
        self.put(store, lead(1, custom={"tier": "gold"}))
        store = self.reopen(store, upgraded_codec())
        try:
            self.put(store, lead(2, custom={"segment": "silver"}))  # written at schema 2
            store.migrate()
        except BaseException:
            store.close()
            raise

        def migrate_as_older_salesflow() -> None:
            older = self.reopen(store, Codec())  # a store may refuse already here
            try:
                older.migrate()
            finally:
                older.close()

        # The default codec (an older salesflow) must not rewrite what it cannot read.
        with pytest.raises(StoreError, match="newer than this salesflow"):
            migrate_as_older_salesflow()
