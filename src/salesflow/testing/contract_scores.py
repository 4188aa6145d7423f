"""`ScoreContract`: the store contract for lead scores.

`salesflow.testing.contract.StoreContract` inherits these tests, so every store's
test module runs them with the store it builds (``make_store``, ``reopen`` and the
``store`` fixture of `StoreContract`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from salesflow.errors import ValidationError
from salesflow.scoring_compile import RuleHit, ScoreResult
from salesflow.stores.base import Store
from salesflow.stores.codec import Codec
from salesflow.testing.contract_records import T0

__all__ = ["ScoreContract", "score"]

CEST = timezone(timedelta(hours=2))


def score(points: int, minutes: int = 0, **fields: Any) -> ScoreResult:
    """A score of ``points`` for lead ``l1`` under model ``m1``, computed ``minutes``
    after 09:00 on 2 March 2026, with one rule hit; ``fields`` override the defaults."""
    base: dict[str, Any] = {
        "model_id": "m1",
        "model_version": 1,
        "lead_id": "l1",
        "points": points,
        "grade": None,
        "sales_ready": False,
        "explanation": (RuleHit(rule_id="r1", rule_name="Rule 1", points=points),),
        "next_change_at": None,
        "scored_at": T0 + timedelta(minutes=minutes),
    }
    base.update(fields)
    return ScoreResult(**base)


def _points(found: Sequence[ScoreResult]) -> list[tuple[str, int]]:
    return [(s.model_id, s.points) for s in found]


class ScoreContract(abc.ABC):
    """The lead-score behaviour every `Store` must have (part of `StoreContract`,
    which supplies the methods and the ``store`` fixture)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    @abc.abstractmethod
    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        """Close ``store`` and return a store over the same data (see
        `StoreContract.reopen`)."""

    def add_scores(self, store: Store, *scores: ScoreResult) -> None:
        """Add ``scores`` in one committed unit of work."""
        with store.unit_of_work() as uow:
            for item in scores:
                uow.add_score(item)
            uow.commit()

    def test_scores_round_trip_exactly(self, store: Store) -> None:
        explained = score(
            35,
            model_id="fit-ü",
            model_version=7,
            grade="A",
            sales_ready=True,
            explanation=(
                RuleHit(rule_id="title", rule_name="Title is VP", points=10),
                RuleHit(
                    rule_id="opens",
                    rule_name="Opened an email ✓",
                    points=15,
                    interactions=("int-0001", "int-0004", "int-0009"),
                    occurrences=3,
                ),
                RuleHit(
                    rule_id="demo", rule_name="Asked for a demo", points=10, interactions=("x",)
                ),
            ),
            next_change_at=datetime(2026, 3, 9, 11, 0, 0, 654321, tzinfo=CEST),
            scored_at=datetime(2026, 3, 2, 11, 0, 0, 123456, tzinfo=CEST),
        )
        bare = score(0, model_id="m2", explanation=())
        self.add_scores(store, explained, bare)
        with store.unit_of_work() as uow:
            found = uow.scores("l1")
            assert found == [explained, bare]
            assert uow.score_history("l1") == [bare, explained]
        stored = found[0]
        assert stored.explanation[1].interactions == ("int-0001", "int-0004", "int-0009")
        assert isinstance(stored.explanation[1].interactions, tuple)
        assert stored.scored_at == datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
        assert stored.next_change_at == datetime(2026, 3, 9, 9, 0, 0, 654321, tzinfo=UTC)
        assert stored.scored_at.utcoffset() is not None

    def test_add_score_takes_only_a_score_result(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(ValidationError, match="ScoreResult"):
                uow.add_score({"lead_id": "l1", "points": 3})  # type: ignore[arg-type]
            with pytest.raises(ValidationError, match="ScoreResult"):
                uow.add_score(None)  # type: ignore[arg-type]
            uow.add_score(score(3))  # the unit carries on after a refusal
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.score_history("l1") == [score(3)]

    def test_the_current_score_is_the_latest_per_model_and_history_keeps_all(
        self, store: Store
    ) -> None:
        first, second, third = score(10, 0), score(20, 30), score(15, 60)
        other = score(5, 45, model_id="m2")
        # A late-added score computed earlier is history, not current.
        backdated = score(99, 10)
        self.add_scores(store, first, second, other)
        self.add_scores(store, third, backdated)
        with store.unit_of_work() as uow:
            assert uow.scores("l1") == [third, other]
            assert uow.score_history("l1") == [first, backdated, second, other, third]
            assert uow.score_history("l1", "m1") == [first, backdated, second, third]
            assert uow.score_history("l1", model_id="m2") == [other]
            assert uow.score_history("l1", "m-none") == []
            assert uow.scores("l-none") == []
            assert uow.score_history("l-none") == []

    def test_on_equal_scored_at_the_latest_added_is_current(self, store: Store) -> None:
        # The same instant written in two zones is one instant.
        at = T0.astimezone(CEST)
        self.add_scores(store, score(1), score(2, scored_at=at))
        with store.unit_of_work() as uow:
            assert _points(uow.scores("l1")) == [("m1", 2)]
        self.add_scores(store, score(3), score(4, 0, model_id="m0"))
        with store.unit_of_work() as uow:
            assert _points(uow.scores("l1")) == [("m0", 4), ("m1", 3)]
            # Ties in time: model id, then the order added.
            assert _points(uow.score_history("l1")) == [("m0", 4), ("m1", 1), ("m1", 2), ("m1", 3)]
            assert _points(uow.score_history("l1", "m1")) == [("m1", 1), ("m1", 2), ("m1", 3)]

    def test_scores_are_kept_per_lead(self, store: Store) -> None:
        self.add_scores(
            store,
            score(1, 0, lead_id="l1"),
            score(2, 0, lead_id="l2"),
            score(3, 5, lead_id="l2", model_id="m2"),
            score(4, 10, lead_id="l1"),
            score(5, 10, lead_id="l10"),
            score(6, 20, lead_id="L1"),
        )
        with store.unit_of_work() as uow:
            assert _points(uow.scores("l1")) == [("m1", 4)]
            assert _points(uow.scores("l2")) == [("m1", 2), ("m2", 3)]
            assert _points(uow.score_history("l1")) == [("m1", 1), ("m1", 4)]
            assert _points(uow.score_history("l2", "m2")) == [("m2", 3)]
            assert _points(uow.score_history("L1")) == [("m1", 6)]  # ids are exact
            assert {s.lead_id for s in uow.score_history("l10")} == {"l10"}

    def test_scores_are_ordered_by_model_id_and_history_by_time(self, store: Store) -> None:
        models = ["b", "B", "a-1", "ä", "a", "Z"]
        # Added in neither model nor time order; the model ids sort by code point.
        self.add_scores(store, *(score(n, 60 - n, model_id=m) for n, m in enumerate(models)))
        self.add_scores(store, score(100, 30, model_id="a"), score(101, 30, model_id="B"))
        by_model = sorted(models)
        assert by_model == ["B", "Z", "a", "a-1", "b", "ä"]
        with store.unit_of_work() as uow:
            assert [s.model_id for s in uow.scores("l1")] == by_model
            assert [s.points for s in uow.scores("l1")] == [1, 5, 4, 2, 0, 3]
            history = uow.score_history("l1")
        assert _points(history) == [
            ("B", 101),
            ("a", 100),
            ("Z", 5),
            ("a", 4),
            ("ä", 3),
            ("a-1", 2),
            ("B", 1),
            ("b", 0),
        ]
        # One second later is later, whatever the zone the instant is written in.
        later = (T0 + timedelta(minutes=60, seconds=1)).astimezone(CEST)
        self.add_scores(store, score(7, model_id="Z", scored_at=later))
        with store.unit_of_work() as uow:
            assert _points(uow.scores("l1"))[1] == ("Z", 7)
            assert _points(uow.score_history("l1"))[-1] == ("Z", 7)

    def test_score_reads_see_the_units_own_writes(self, store: Store) -> None:
        self.add_scores(store, score(1, 0), score(2, 10, model_id="m2"))
        with store.unit_of_work() as uow:
            uow.add_score(score(3, 0))  # ties with the committed one and is added later
            uow.add_score(score(4, 5, model_id="m2"))
            uow.add_score(score(5, 5, lead_id="l2"))
            assert _points(uow.scores("l1")) == [("m1", 3), ("m2", 2)]
            assert _points(uow.score_history("l1")) == [("m1", 1), ("m1", 3), ("m2", 4), ("m2", 2)]
            assert _points(uow.score_history("l2")) == [("m1", 5)]
            uow.commit()
        with store.unit_of_work() as uow:
            assert _points(uow.scores("l1")) == [("m1", 3), ("m2", 2)]
            assert _points(uow.scores("l2")) == [("m1", 5)]

    def test_uncommitted_scores_are_rolled_back(self, store: Store) -> None:
        self.add_scores(store, score(1))
        with store.unit_of_work() as uow:
            uow.add_score(score(2, 5))
            uow.add_score(score(3, 5, lead_id="l2"))
            assert _points(uow.scores("l1")) == [("m1", 2)]
        with store.unit_of_work() as uow:
            assert uow.scores("l1") == [score(1)]
            assert uow.score_history("l1") == [score(1)]
            assert uow.scores("l2") == []
            uow.add_score(score(4))
            uow.commit()
        with store.unit_of_work() as uow:
            assert _points(uow.score_history("l1")) == [("m1", 1), ("m1", 4)]
            assert _points(uow.scores("l1")) == [("m1", 4)]

    def test_an_exception_rolls_back_score_writes(self, store: Store) -> None:
        class BoomError(Exception):
            pass

        def half_done() -> None:
            with store.unit_of_work() as uow:
                uow.add_score(score(1))
                raise BoomError

        with pytest.raises(BoomError):
            half_done()
        with store.unit_of_work() as uow:
            assert uow.scores("l1") == []
            assert uow.score_history("l1") == []

    def test_scores_survive_reopening(self) -> None:
        store = self.make_store()
        hit = RuleHit(rule_id="r", rule_name="R", points=5, interactions=("int-1", "int-2"))
        first = score(5, 0, explanation=(hit,), grade="B")
        tied = score(6, 0, next_change_at=T0 + timedelta(days=7))
        other = score(7, 3, lead_id="l2", model_id="m2", sales_ready=True)
        self.add_scores(store, first, tied, other)
        store = self.reopen(store)
        try:
            with store.unit_of_work() as uow:
                assert uow.scores("l1") == [tied]
                assert uow.score_history("l1") == [first, tied]
                assert uow.scores("l2") == [other]
                # Added after reopening, so later than both: it wins their tie.
                uow.add_score(score(8, 0))
                uow.commit()
            with store.unit_of_work() as uow:
                assert _points(uow.scores("l1")) == [("m1", 8)]
                assert _points(uow.score_history("l1", "m1")) == [("m1", 5), ("m1", 6), ("m1", 8)]
        finally:
            store.close()

    def test_a_models_scores_are_removed_a_page_of_leads_at_a_time(self, store: Store) -> None:
        self.add_scores(
            store,
            score(90, 0, lead_id="b"),
            score(20, 1, lead_id="a"),
            score(30, 2, lead_id="a"),
            score(50, 0, lead_id="a", model_id="m2"),
            score(70, 0, lead_id="c"),
            score(10, 0, lead_id="d", model_id="m2"),
        )
        with store.unit_of_work() as uow:
            assert uow.remove_model_scores("m1", 2) == ["a", "b"]
            # The unit sees its removal: a keeps its m2 score, b has none left.
            assert _points(uow.scores("a")) == [("m2", 50)]
            assert uow.score_history("a", "m1") == []
            assert uow.scores("b") == []
            assert uow.best_scores(["a", "b", "c"]) == {"a": 50, "c": 70}
            uow.add_score(score(40, 5, lead_id="b"))  # scored again after the removal
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.top_scored_leads(10) == [("c", 70), ("a", 50), ("b", 40), ("d", 10)]
            assert uow.remove_model_scores("m1", 10) == ["b", "c"]
            assert uow.remove_model_scores("m1", 10) == []
            assert uow.remove_model_scores("nobody", 10) == []
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.top_scored_leads(10) == [("a", 50), ("d", 10)]
            assert _points(uow.score_history("a")) == [("m2", 50)]
            assert uow.scores("c") == []

    def test_a_removal_not_committed_leaves_every_score(self, store: Store) -> None:
        kept = [score(20, 0, lead_id="a"), score(50, 0, lead_id="a", model_id="m2")]
        self.add_scores(store, *kept)
        with store.unit_of_work() as uow:
            assert uow.remove_model_scores("m1", 5) == ["a"]  # no commit
        with store.unit_of_work() as uow:
            assert sorted(uow.score_history("a"), key=lambda s: s.model_id) == kept
            assert uow.best_scores(["a"]) == {"a": 50}
            for bad_model, bad_limit in (("", 5), (None, 5), ("m1", 0), ("m1", 10_001)):
                with pytest.raises(ValidationError, match=r"model_id|limit"):
                    uow.remove_model_scores(bad_model, bad_limit)  # type: ignore[arg-type]
