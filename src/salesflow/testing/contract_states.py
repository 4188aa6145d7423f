"""`StateContract`: the store contract for running state (`StateDocument`).

`salesflow.testing.contract.StoreContract` inherits these tests, so every store's
test module runs them with the store it builds (``make_store``, ``reopen`` and the
``store`` fixture of `StoreContract`).
"""

from __future__ import annotations

import abc
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from salesflow.definitions import StateDocument
from salesflow.errors import AlreadyExists, NotFound, ValidationError, VersionConflict
from salesflow.stores.base import Store
from salesflow.stores.codec import Codec
from salesflow.testing.contract_records import T0

__all__ = ["StateContract", "nested_document"]

CEST = timezone(timedelta(hours=2))
FLOW = "process_flow"


def nested_document() -> dict[str, Any]:
    """A state document using every kind of JSON value, nested."""
    return {
        "stage": "qualify",
        "steps": [
            {"id": "s1", "done": True, "at": "2026-03-02T09:00:00+00:00"},
            {"id": "s2", "done": False, "at": None, "tries": 0},
        ],
        "counters": {"calls": 3, "ratio": 0.25, "tiny": 1.5e-7, "big": 2**53 + 1, "neg": -7},
        "names": ["Zoë", "日本", "", 'a"b\\c'],
        "nested": {"a": {"b": {"c": [[1, 2], [], {}]}}},
        "empty": {},
        "flag": False,
        "nothing": None,
    }


class StateContract(abc.ABC):
    """The running-state behaviour every `Store` must have (part of `StoreContract`,
    which supplies the methods and the ``store`` fixture)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    @abc.abstractmethod
    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        """Close ``store`` and return a store over the same data (see
        `StoreContract.reopen`)."""

    def create_states(
        self, store: Store, *keyed: tuple[str, str, dict[str, Any]]
    ) -> list[StateDocument]:
        """Create ``(kind, key, document)`` states at T0 in one committed unit."""
        with store.unit_of_work() as uow:
            created = [
                uow.put_state(kind, key, doc, expected_version=None, now=T0)
                for kind, key, doc in keyed
            ]
            uow.commit()
        return created

    def test_a_state_round_trips_exactly(self, store: Store) -> None:
        at = datetime(2026, 3, 2, 11, 0, 0, 123456, tzinfo=CEST)
        with store.unit_of_work() as uow:
            created = uow.put_state(
                FLOW, "lead/lead-0001", nested_document(), expected_version=None, now=at
            )
            assert created == StateDocument(
                kind=FLOW,
                key="lead/lead-0001",
                version=1,
                document=nested_document(),
                updated_at=at,
            )
            uow.commit()
        with store.unit_of_work() as uow:
            found = uow.get_state(FLOW, "lead/lead-0001")
        assert found == created
        assert found is not None
        assert found.document == nested_document()
        assert found.updated_at == datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
        assert found.updated_at.utcoffset() is not None
        assert isinstance(found.document["counters"]["big"], int)
        assert isinstance(found.document["counters"]["ratio"], float)

    def test_tuples_are_stored_as_lists(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            put = uow.put_state(FLOW, "k", {"pair": (1, ("a", 2))}, expected_version=None, now=T0)
            assert put.document == {"pair": [1, ["a", 2]]}
            uow.commit()
        with store.unit_of_work() as uow:
            found = uow.get_state(FLOW, "k")
        assert found is not None
        assert found.document == {"pair": [1, ["a", 2]]}

    def test_a_missing_state_is_none(self, store: Store) -> None:
        self.create_states(store, (FLOW, "k", {"n": 1}))
        with store.unit_of_work() as uow:
            assert uow.get_state(FLOW, "other") is None
            assert uow.get_state("routing", "k") is None  # the kind is part of the key
            assert uow.get_state(FLOW, "K") is None  # keys are exact

    def test_creating_an_existing_state_is_refused(self, store: Store) -> None:
        self.create_states(store, (FLOW, "k", {"n": 1}))
        with store.unit_of_work() as uow:
            with pytest.raises(AlreadyExists):
                uow.put_state(FLOW, "k", {"n": 2}, expected_version=None, now=T0)
            uow.put_state(FLOW, "mine", {"n": 3}, expected_version=None, now=T0)
            with pytest.raises(AlreadyExists):  # also one this unit created
                uow.put_state(FLOW, "mine", {"n": 4}, expected_version=None, now=T0)
            # the unit carries on after a refusal
            uow.put_state("routing", "k", {"n": 5}, expected_version=None, now=T0)
            uow.commit()
        with store.unit_of_work() as uow:
            assert self.documents(uow.states(FLOW)) == [("k", 1, {"n": 1}), ("mine", 1, {"n": 3})]
            assert self.documents(uow.states("routing")) == [("k", 1, {"n": 5})]

    def test_an_update_at_the_read_version_stores_the_next_version(self, store: Store) -> None:
        self.create_states(store, (FLOW, "k", {"n": 1}))
        later = T0 + timedelta(minutes=5)
        with store.unit_of_work() as uow:
            read = uow.get_state(FLOW, "k")
            assert read is not None
            second = uow.put_state(
                FLOW, "k", {"n": 2, "more": [1]}, expected_version=read.version, now=later
            )
            assert (second.version, second.document, second.updated_at) == (
                2,
                {"n": 2, "more": [1]},
                later,
            )
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.get_state(FLOW, "k") == second
            third = uow.put_state(FLOW, "k", {}, expected_version=2, now=later + timedelta(hours=1))
            assert third.version == 3
            uow.commit()
        with store.unit_of_work() as uow:
            found = uow.get_state(FLOW, "k")
        assert found == third
        assert found is not None
        assert found.document == {}
        assert found.updated_at == T0 + timedelta(hours=1, minutes=5)

    def test_a_stale_update_conflicts_and_changes_nothing(self, store: Store) -> None:
        self.create_states(store, (FLOW, "k", {"n": 1}))
        with store.unit_of_work() as uow:
            uow.put_state(FLOW, "k", {"n": 2}, expected_version=1, now=T0)
            uow.commit()
        with store.unit_of_work() as uow:
            with pytest.raises(VersionConflict) as caught:
                uow.put_state(FLOW, "k", {"n": 99}, expected_version=1, now=T0)
            assert (caught.value.expected, caught.value.actual) == (1, 2)
            with pytest.raises(VersionConflict):
                uow.put_state(FLOW, "k", {"n": 99}, expected_version=3, now=T0)
            found = uow.get_state(FLOW, "k")
            assert found is not None
            assert (found.version, found.document) == (2, {"n": 2})
            # the unit carries on: the right version still goes through
            uow.put_state(FLOW, "k", {"n": 3}, expected_version=2, now=T0)
            uow.commit()
        with store.unit_of_work() as uow:
            found = uow.get_state(FLOW, "k")
        assert found is not None
        assert (found.version, found.document) == (3, {"n": 3})

    def test_updating_a_missing_state_is_not_found(self, store: Store) -> None:
        self.create_states(store, ("routing", "k", {"n": 1}))
        with store.unit_of_work() as uow:
            with pytest.raises(NotFound):
                uow.put_state(FLOW, "k", {"n": 2}, expected_version=1, now=T0)
            with pytest.raises(NotFound):
                uow.put_state(FLOW, "none", {"n": 2}, expected_version=7, now=T0)
            assert uow.get_state(FLOW, "k") is None
            assert uow.states(FLOW) == []
            uow.put_state(FLOW, "k", {"n": 3}, expected_version=None, now=T0)  # carries on
            uow.commit()
        with store.unit_of_work() as uow:
            assert self.documents(uow.states(FLOW)) == [("k", 1, {"n": 3})]
            assert self.documents(uow.states("routing")) == [("k", 1, {"n": 1})]

    @staticmethod
    def documents(found: list[StateDocument]) -> list[tuple[str, int, dict[str, Any]]]:
        """``(key, version, document)`` of each state, in the order given."""
        return [(s.key, s.version, s.document) for s in found]

    def test_states_of_a_kind_are_ordered_by_key(self, store: Store) -> None:
        keys = ["b", "B", "a-1", "ä", "a", "Z", "10", "9", "a/b", "a b"]
        self.create_states(store, *((FLOW, k, {"k": k}) for k in keys))
        self.create_states(store, ("routing", "a", {"k": "r"}), ("process", "a", {"k": "p"}))
        expected = sorted(keys)
        assert expected == ["10", "9", "B", "Z", "a", "a b", "a-1", "a/b", "b", "ä"]
        with store.unit_of_work() as uow:
            found = uow.states(FLOW)
            assert [s.key for s in found] == expected
            assert all(s.kind == FLOW and s.document == {"k": s.key} for s in found)
            assert self.documents(uow.states("routing")) == [("a", 1, {"k": "r"})]
            assert self.documents(uow.states("process")) == [("a", 1, {"k": "p"})]
            assert uow.states("proc") == []
            assert uow.states("none") == []

    @pytest.mark.parametrize(
        "document",
        [
            {"at": T0},
            {"x": float("nan")},
            {"x": [1, float("inf")]},
            {"x": {1, 2}},
            {"x": {"deep": object()}},
            {1: "int key"},
            ["not", "a", "mapping"],
            "text",
        ],
        ids=["datetime", "nan", "inf", "set", "object", "int-key", "list", "str"],
    )
    def test_a_document_that_is_not_json_is_refused(self, store: Store, document: Any) -> None:
        self.create_states(store, (FLOW, "k", {"n": 1}))
        with store.unit_of_work() as uow:
            with pytest.raises(ValidationError):
                uow.put_state(FLOW, "new", document, expected_version=None, now=T0)
            with pytest.raises(ValidationError):
                uow.put_state(FLOW, "k", document, expected_version=1, now=T0)
            assert uow.get_state(FLOW, "new") is None
            uow.put_state(FLOW, "other", {"n": 2}, expected_version=None, now=T0)  # carries on
            uow.commit()
        with store.unit_of_work() as uow:
            assert self.documents(uow.states(FLOW)) == [
                ("k", 1, {"n": 1}),
                ("other", 1, {"n": 2}),
            ]

    def test_a_naive_now_is_refused(self, store: Store) -> None:
        self.create_states(store, (FLOW, "k", {"n": 1}))
        naive = T0.replace(tzinfo=None)
        with store.unit_of_work() as uow:
            with pytest.raises(ValidationError, match="naive"):
                uow.put_state(FLOW, "new", {"n": 2}, expected_version=None, now=naive)
            with pytest.raises(ValidationError, match="naive"):
                uow.put_state(FLOW, "k", {"n": 2}, expected_version=1, now=naive)
            uow.commit()
        with store.unit_of_work() as uow:
            assert self.documents(uow.states(FLOW)) == [("k", 1, {"n": 1})]

    @pytest.mark.parametrize(("kind", "key"), [("", "k"), (FLOW, ""), (FLOW, "k" * 401)])
    def test_an_empty_or_overlong_kind_or_key_is_refused(
        self, store: Store, kind: str, key: str
    ) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(ValidationError):
                uow.put_state(kind, key, {"n": 1}, expected_version=None, now=T0)
            uow.put_state(FLOW, "k" * 400, {"n": 1}, expected_version=None, now=T0)
            uow.commit()
        with store.unit_of_work() as uow:
            assert [s.key for s in uow.states(FLOW)] == ["k" * 400]

    def test_uncommitted_state_changes_are_rolled_back(self, store: Store) -> None:
        self.create_states(store, (FLOW, "k", {"n": 1}))
        with store.unit_of_work() as uow:
            uow.put_state(FLOW, "k", {"n": 2}, expected_version=1, now=T0)
            uow.put_state(FLOW, "new", {"n": 3}, expected_version=None, now=T0)
        with store.unit_of_work() as uow:
            assert self.documents(uow.states(FLOW)) == [("k", 1, {"n": 1})]
            # the rolled-back version 2 is free again
            assert uow.put_state(FLOW, "k", {"n": 4}, expected_version=1, now=T0).version == 2
            uow.put_state(FLOW, "new", {"n": 5}, expected_version=None, now=T0)
            uow.commit()
        with store.unit_of_work() as uow:
            assert self.documents(uow.states(FLOW)) == [("k", 2, {"n": 4}), ("new", 1, {"n": 5})]

    def test_an_exception_rolls_back_state_changes(self, store: Store) -> None:
        class BoomError(Exception):
            pass

        self.create_states(store, (FLOW, "k", {"n": 1}))

        def half_done() -> None:
            with store.unit_of_work() as uow:
                uow.put_state(FLOW, "k", {"n": 2}, expected_version=1, now=T0)
                uow.put_state(FLOW, "new", {"n": 3}, expected_version=None, now=T0)
                raise BoomError

        with pytest.raises(BoomError):
            half_done()
        with store.unit_of_work() as uow:
            assert self.documents(uow.states(FLOW)) == [("k", 1, {"n": 1})]

    def test_state_reads_see_the_units_own_writes(self, store: Store) -> None:
        self.create_states(store, (FLOW, "b", {"n": 1}))
        with store.unit_of_work() as uow:
            created = uow.put_state(FLOW, "a", {"n": 2}, expected_version=None, now=T0)
            assert uow.get_state(FLOW, "a") == created
            updated = uow.put_state(FLOW, "b", {"n": 3}, expected_version=1, now=T0)
            assert uow.get_state(FLOW, "b") == updated
            # a chain of changes in one unit, each over the one before
            again = uow.put_state(FLOW, "a", {"n": 4}, expected_version=1, now=T0)
            assert again.version == 2
            with pytest.raises(VersionConflict):
                uow.put_state(FLOW, "a", {"n": 5}, expected_version=1, now=T0)
            assert self.documents(uow.states(FLOW)) == [("a", 2, {"n": 4}), ("b", 2, {"n": 3})]
            uow.commit()
        with store.unit_of_work() as uow:
            assert self.documents(uow.states(FLOW)) == [("a", 2, {"n": 4}), ("b", 2, {"n": 3})]

    def test_returned_and_passed_documents_do_not_change_the_stored_one(self, store: Store) -> None:
        passed: dict[str, Any] = {"list": [1], "map": {"x": 1}}
        with store.unit_of_work() as uow:
            put = uow.put_state(FLOW, "k", passed, expected_version=None, now=T0)
            passed["list"].append(2)
            passed["map"]["x"] = 99
            passed["added"] = True
            put.document["list"].append(3)
            put.document["map"]["y"] = 1
            read = uow.get_state(FLOW, "k")
            assert read is not None
            assert read.document == {"list": [1], "map": {"x": 1}}
            read.document["list"].clear()
            read.document.pop("map")
            again = uow.get_state(FLOW, "k")
            assert again is not None
            assert again.document == {"list": [1], "map": {"x": 1}}
            listed = uow.states(FLOW)[0]
            listed.document["list"].append(4)
            uow.commit()
        with store.unit_of_work() as uow:
            found = uow.get_state(FLOW, "k")
            assert found is not None
            assert found.document == {"list": [1], "map": {"x": 1}}
            found.document["list"].append(5)
            assert self.documents(uow.states(FLOW)) == [("k", 1, {"list": [1], "map": {"x": 1}})]

    def test_states_survive_reopening(self) -> None:
        store = self.make_store()
        at = datetime(2026, 3, 2, 11, 30, tzinfo=CEST)
        with store.unit_of_work() as uow:
            uow.put_state(FLOW, "k", nested_document(), expected_version=None, now=T0)
            uow.put_state(FLOW, "k", {"n": 2}, expected_version=1, now=at)
            uow.put_state("routing", "team-1", {"next": "u3"}, expected_version=None, now=T0)
            uow.commit()
        store = self.reopen(store)
        try:
            with store.unit_of_work() as uow:
                assert uow.get_state(FLOW, "k") == StateDocument(
                    kind=FLOW, key="k", version=2, document={"n": 2}, updated_at=at
                )
                assert self.documents(uow.states("routing")) == [("team-1", 1, {"next": "u3"})]
                with pytest.raises(VersionConflict):
                    uow.put_state(FLOW, "k", {"n": 3}, expected_version=1, now=T0)
                assert uow.put_state(FLOW, "k", {"n": 3}, expected_version=2, now=T0).version == 3
                uow.commit()
            with store.unit_of_work() as uow:
                found = uow.get_state(FLOW, "k")
                assert found is not None
                assert (found.version, found.document) == (3, {"n": 3})
        finally:
            store.close()
