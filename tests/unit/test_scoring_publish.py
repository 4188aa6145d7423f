"""Publishing a scoring model re-scores every open lead without leaving half a state.

The publishing unit of work stores the model and re-scores the first page of open
leads; further pages are re-scored by `run_due`, one unit of work per page, through a
keyed ``scoring.rescore`` item that carries the cursor (the last lead id re-scored).
These tests shrink the page to 3 leads so that a handful of leads spans several.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow.clock import FakeClock
from salesflow.commands import scoring as scoring_commands
from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.errors import StoreError
from salesflow.events import DefinitionPublished, LeadScored, ListSink
from salesflow.process_standard import MarketingSettings
from salesflow.scoring import ScoringModel, ScoringRule
from salesflow.scoring_compile import ScoreResult
from salesflow.stores.base import Store, UnitOfWork
from salesflow.stores.memory import MemoryStore
from salesflow.stores.url import open_store
from salesflow.testing import simulate
from salesflow.testing.faults import FaultyStore, store_snapshot

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
PAGE = 3
SWEEP = "scoring.publish:fit"


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring_commands, "_PAGE", PAGE)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def fit(points: int = 20, **changes: Any) -> ScoringModel:
    values: dict[str, Any] = {
        "id": "fit",
        "name": "Fit",
        "score_leads_without_parent": True,
        "sales_ready_threshold": points,
        "rules": [
            ScoringRule(
                id="lt",
                name="In Lithuania",
                conditions=[field("lead.country").eq("Lithuania")],
                points=points,
            )
        ],
    }
    values.update(changes)
    return ScoringModel(**values)


def engine_on(store: Store, clock: FakeClock, sink: ListSink, prefix: str = "") -> Salesflow:
    counter = itertools.count(1)
    return Salesflow(
        store,
        clock=clock,
        sink=sink,
        ids=lambda kind: f"{kind.value}-{prefix}{next(counter):04d}",  # id order = age
        due_ids=lambda: f"due-{prefix}{next(counter):04d}",
    )


def leads(engine: Salesflow, n: int) -> list[str]:
    return [
        engine.create_lead(topic="Laptops", last_name=f"L{i}", country="Lithuania").id
        for i in range(n)
    ]


def history(engine: Salesflow, lead_ids: list[str]) -> dict[str, list[tuple[int, int]]]:
    """Each lead's score history as (model version, points)."""
    return {
        lead_id: [(s.model_version, s.points) for s in engine.score_history(lead_id)]
        for lead_id in lead_ids
    }


def scored_once(sink: ListSink) -> Counter[str]:
    return Counter(e.lead_id for e in sink.events if isinstance(e, LeadScored))


def sweeps(engine: Salesflow) -> list[dict[str, Any]]:
    return [dict(i.payload) for i in engine.due_items() if (i.key or "").startswith(SWEEP)]


# --- the publishing unit -----------------------------------------------------------------


def test_a_small_store_is_rescored_before_publish_returns(store: Store) -> None:
    sink = ListSink()
    engine = engine_on(store, FakeClock(T0), sink)
    ids = leads(engine, PAGE)
    engine.publish_scoring_model(fit())
    assert history(engine, ids) == {i: [(1, 20)] for i in ids}
    assert sweeps(engine) == []  # one page: nothing left for run_due
    assert scored_once(sink) == Counter(ids)


def test_more_leads_than_a_page_are_rescored_by_run_due_a_page_per_unit(store: Store) -> None:
    sink = ListSink()
    engine = engine_on(store, FakeClock(T0), sink)
    ids = leads(engine, 3 * PAGE + 1)
    engine.publish_scoring_model(fit())
    # the publishing unit scored the first page and left the cursor for the rest
    assert [bool(h) for h in history(engine, ids).values()] == [True] * PAGE + [False] * (
        2 * PAGE + 1
    )
    assert sweeps(engine) == [{"model_id": "fit", "version": 1, "after": ids[PAGE - 1]}]
    assert engine.run_due(limit=1) == 1  # one page, committed on its own
    assert sweeps(engine) == [{"model_id": "fit", "version": 1, "after": ids[2 * PAGE - 1]}]
    assert sum(bool(h) for h in history(engine, ids).values()) == 2 * PAGE
    assert engine.run_due() == 2  # the last full page finds one more lead after it
    assert sweeps(engine) == []
    assert history(engine, ids) == {i: [(1, 20)] for i in ids}
    assert scored_once(sink) == Counter(ids)


def test_a_fault_at_any_write_of_a_publication_leaves_nothing(store: Store) -> None:
    faulty = FaultyStore(store)
    sink = ListSink()
    engine = engine_on(faulty, FakeClock(T0), sink)
    ids = leads(engine, 2 * PAGE)
    engine.publish_scoring_model(fit(id="other", name="Other"))
    sink.events.clear()
    before = store_snapshot(store, definition_kinds={"scoring_model"})
    for n in itertools.count(1):
        assert n < 100
        faulty.fail_at(n)
        try:
            engine.publish_scoring_model(fit())
        except StoreError:
            assert sink.events == []
            assert store_snapshot(store, definition_kinds={"scoring_model"}) == before
            assert engine.scoring_models() == [fit(id="other", name="Other", version=1)]
            continue
        break
    assert n > 2  # the faults hit the model, the scores and the sweep item
    faulty.fail_at(None)
    assert [e.version for e in sink.events if isinstance(e, DefinitionPublished)] == [1]
    assert sweeps(engine) == [{"model_id": "fit", "version": 1, "after": ids[PAGE - 1]}]
    simulate(engine, T0)
    assert {i: [s.model_id for s in engine.lead_scores(i)] for i in ids} == {
        i: ["fit", "other"] for i in ids
    }


def test_a_model_whose_publication_failed_is_not_kept_compiled() -> None:
    faulty = FaultyStore(MemoryStore())
    engine = engine_on(faulty, FakeClock(T0), ListSink())
    (lead_id,) = leads(engine, 1)
    faulty.fail_at(2)  # the model is stored and compiled, its first score fails
    with pytest.raises(StoreError):
        engine.publish_scoring_model(fit(points=5))
    engine.publish_scoring_model(fit(points=30))  # version 1 again, another document
    assert history(engine, [lead_id]) == {lead_id: [(1, 30)]}
    engine.update_lead(lead_id, topic="Phones")  # re-scored with the stored version 1
    assert history(engine, [lead_id]) == {lead_id: [(1, 30)]}


# --- the sweep ---------------------------------------------------------------------------


class _Crash(Exception):
    """A worker dying: not a SalesflowError, so run_due neither retries nor records it."""


class _CrashingStore:
    """Raises `_Crash` on the ``at``-th `add_score` from when it is armed, and on
    every one after it until disarmed (a dead worker does not redo the page itself:
    `run_due` would otherwise redo a failed batch item by item and succeed)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.at: int | None = None

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        with self.inner.unit_of_work(read_only=read_only) as uow:
            yield _CrashingUnit(self, uow)

    def migrate(self) -> int:
        return self.inner.migrate()

    def close(self) -> None:
        self.inner.close()


class _CrashingUnit:
    def __init__(self, store: _CrashingStore, inner: UnitOfWork) -> None:
        self._store = store
        self._inner = inner

    def add_score(self, result: ScoreResult) -> None:
        if self._store.at is not None:
            self._store.at = max(self._store.at - 1, 0)
            if self._store.at == 0:
                raise _Crash("the worker died")
        self._inner.add_score(result)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_sweep_whose_worker_dies_resumes_from_the_last_committed_page(store: Store) -> None:
    crashing = _CrashingStore(store)
    clock = FakeClock(T0)
    first_sink, second_sink = ListSink(), ListSink()
    first = engine_on(crashing, clock, first_sink)
    ids = leads(first, 3 * PAGE)
    first.publish_scoring_model(fit())
    assert first.run_due(limit=1) == 1  # the second page
    crashing.at = 2  # the third page dies half-way
    with pytest.raises(_Crash):
        first.run_due()
    crashing.at = None
    assert sum(bool(h) for h in history(first, ids).values()) == 2 * PAGE
    (item,) = [i for i in first.due_items() if i.key == f"{SWEEP}:1"]
    assert (item.payload["after"], item.attempts) == (ids[2 * PAGE - 1], 0)

    second = engine_on(crashing, clock, second_sink, prefix="w2-")
    assert second.run_due() == 1
    assert sweeps(second) == []
    assert history(second, ids) == {i: [(1, 20)] for i in ids}
    assert scored_once(first_sink) + scored_once(second_sink) == Counter(ids)


@pytest.mark.parametrize("persistent", [False, True], ids=["transient", "persistent"])
def test_a_sweep_page_that_meets_a_store_fault_is_done_again(
    store: Store, persistent: bool
) -> None:
    faulty = FaultyStore(store, persistent=persistent)
    clock = FakeClock(T0)
    sink = ListSink()
    engine = engine_on(faulty, clock, sink)
    ids = leads(engine, 2 * PAGE)
    engine.publish_scoring_model(fit())
    faulty.fail_at(2)  # the page's second write fails
    if persistent:  # and so does recording the failed attempt: run_due gives up
        with pytest.raises(StoreError):
            engine.run_due()
        assert sum(bool(h) for h in history(engine, ids).values()) == PAGE
    else:  # the batch is redone item by item at once
        assert engine.run_due() == 1
        assert faulty.faults == 1
    faulty.fail_at(None)
    simulate(engine, T0 + timedelta(hours=1))
    assert history(engine, ids) == {i: [(1, 20)] for i in ids}
    assert scored_once(sink) == Counter(ids)


def test_leads_closed_or_created_during_a_sweep_shift_no_lead_past_it(store: Store) -> None:
    sink = ListSink()
    engine = engine_on(store, FakeClock(T0), sink)
    ids = leads(engine, 3 * PAGE)
    engine.publish_scoring_model(fit())
    engine.disqualify_lead(ids[0], "lost")  # an offset would now skip a lead
    engine.disqualify_lead(ids[PAGE], "lost")  # not yet swept: keeps no score
    (late,) = leads(engine, 1)  # scored as it is created
    simulate(engine, T0)
    assert history(engine, [*ids, late]) == {
        **{i: [(1, 20)] for i in ids if i != ids[PAGE]},
        ids[PAGE]: [],
        late: [(1, 20)],
    }


def test_a_newer_version_supersedes_a_running_sweep(store: Store) -> None:
    sink = ListSink()
    engine = engine_on(store, FakeClock(T0), sink)
    ids = leads(engine, 3 * PAGE)
    engine.publish_scoring_model(fit())
    engine.publish_scoring_model(fit(points=40))
    assert len(sweeps(engine)) == 2
    assert simulate(engine, T0) == 1 + 2  # version 1's sweep stops at once
    assert sweeps(engine) == []
    first_page, rest = ids[:PAGE], ids[PAGE:]
    assert history(engine, ids) == {
        **{i: [(1, 20), (2, 40)] for i in first_page},
        **{i: [(2, 40)] for i in rest},  # version 1's sweep stopped: never scored with it
    }


def test_a_deactivated_model_stops_its_sweep(store: Store) -> None:
    engine = engine_on(store, FakeClock(T0), ListSink())
    # Kept scores, so that what the sweep did before it stopped can be seen.
    engine.configure_marketing(MarketingSettings(remove_stopped_model_scores=False))
    ids = leads(engine, 3 * PAGE)
    engine.publish_scoring_model(fit())
    engine.deactivate_scoring_model("fit")
    assert simulate(engine, T0) == 1  # it stops at once instead of paging through
    assert sweeps(engine) == []
    assert [bool(h) for h in history(engine, ids).values()] == [True] * PAGE + [False] * (2 * PAGE)


CLEANUP = "scoring.cleanup:fit"


def cleanups(engine: Salesflow) -> list[dict[str, Any]]:
    return [dict(i.payload) for i in engine.due_items() if (i.key or "").startswith(CLEANUP)]


def test_a_stopped_models_scores_are_removed_a_page_per_unit(store: Store) -> None:
    engine = engine_on(store, FakeClock(T0), ListSink())
    engine.publish_scoring_model(fit(name="Other", id="other", points=5))
    ids = leads(engine, 3 * PAGE + 1)
    engine.publish_scoring_model(fit())
    simulate(engine, T0)  # the publication's sweep: every lead scored by both
    assert all(len(engine.lead_scores(i)) == 2 for i in ids)
    engine.deactivate_scoring_model("fit")
    # The deactivating unit removed the first page and handed the rest on.
    assert [len(engine.lead_scores(i)) for i in ids] == [1] * PAGE + [2] * (2 * PAGE + 1)
    assert cleanups(engine) == [{"model_id": "fit", "version": 1}]
    assert simulate(engine, T0) == 3  # the other three pages, one unit each
    assert cleanups(engine) == []
    for lead_id in ids:
        assert [s.model_id for s in engine.lead_scores(lead_id)] == ["other"]
        assert engine.score_history(lead_id, "fit") == []
    with store.unit_of_work() as uow:  # the best scores follow: 5 is what is left
        assert {points for _, points in uow.top_scored_leads(100)} == {5}


def test_publishing_again_stops_the_clean_up_and_keeps_the_new_scores(store: Store) -> None:
    engine = engine_on(store, FakeClock(T0), ListSink())
    ids = leads(engine, 2 * PAGE + 1)
    engine.publish_scoring_model(fit())
    simulate(engine, T0)
    engine.deactivate_scoring_model("fit")
    engine.publish_scoring_model(fit(points=40))  # version 2 re-scores every lead
    simulate(engine, T0)
    assert cleanups(engine) == []
    assert {i: [(s.model_version, s.points) for s in engine.lead_scores(i)] for i in ids} == {
        i: [(2, 40)] for i in ids
    }


def test_with_the_switch_off_a_stopped_models_scores_stay(store: Store) -> None:
    engine = engine_on(store, FakeClock(T0), ListSink())
    engine.configure_marketing(MarketingSettings(remove_stopped_model_scores=False))
    assert engine.marketing_settings().remove_stopped_model_scores is False
    ids = leads(engine, PAGE)
    engine.publish_scoring_model(fit())
    engine.deactivate_scoring_model("fit")
    assert cleanups(engine) == []
    assert history(engine, ids) == {i: [(1, 20)] for i in ids}


def test_rescoring_again_keeps_no_second_entry_and_sends_no_event(store: Store) -> None:
    sink = ListSink()
    engine = engine_on(store, FakeClock(T0), sink)
    ids = leads(engine, 2 * PAGE)
    engine.publish_scoring_model(fit())
    simulate(engine, T0)
    sink.events.clear()
    assert engine.rescore_all() == 2 * PAGE
    assert sink.events == []
    assert history(engine, ids) == {i: [(1, 20)] for i in ids}


# --- whatever the page size, the store's size and where a worker dies --------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(min_value=0, max_value=11),
    page=st.integers(min_value=1, max_value=4),
    crash=st.one_of(st.none(), st.integers(min_value=1, max_value=12)),
)
def test_every_open_lead_ends_scored_once(
    monkeypatch: pytest.MonkeyPatch, n: int, page: int, crash: int | None
) -> None:
    monkeypatch.setattr(scoring_commands, "_PAGE", page)
    crashing = _CrashingStore(MemoryStore())
    clock = FakeClock(T0)
    sink = ListSink()
    engine = engine_on(crashing, clock, sink)
    ids = leads(engine, n)
    engine.publish_scoring_model(fit())
    crashing.at = crash
    with suppress(_Crash):
        simulate(engine, T0)
    crashing.at = None
    simulate(engine, T0)  # another worker takes over
    assert history(engine, ids) == {i: [(1, 20)] for i in ids}
    assert scored_once(sink) == Counter(ids)
    assert sweeps(engine) == []


def test_settings_kept_before_the_clean_up_switch_read_with_it_on() -> None:
    from salesflow.process_standard import settings_from_document, settings_to_document

    older = {
        "schema": 1,
        "automated_marketing_qualification": False,
        "automatic_sales_ready": True,
        "start_on_intake": False,
    }
    settings = settings_from_document(older)
    assert settings == MarketingSettings(automated_marketing_qualification=False)
    assert settings.remove_stopped_model_scores is True
    assert settings_from_document(settings_to_document(settings)) == settings
    assert settings_from_document(None) == MarketingSettings()
