"""The outbox (`salesflow.outbox`): with ``Salesflow(outbox=True)`` a unit's events
are stored in that unit and dropped once the sink has them; what a killed process
or a failing sink left behind is published by `Salesflow.deliver_outbox` (and by
every worker loop), so no event is lost. Every event class survives the JSON round
trip the outbox stores it through."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import typing
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import T0, counting_ids

from salesflow import open_store
from salesflow.access import SALESPERSON, Actor
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import PermissionDenied, StoreError, ValidationError
from salesflow.events import Event, LeadCreated, ListSink
from salesflow.stores.base import Store
from salesflow.stores.codec import decode_event, encode_event, event_types
from salesflow.stores.memory import MemoryStore
from salesflow.values import Money, RecordKind, RecordRef
from salesflow.worker import Worker

# --- the event codec -----------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def _strategy(tp: Any) -> st.SearchStrategy[Any]:
    args = typing.get_args(tp)
    if type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return st.none() | _strategy(inner)
    if typing.get_origin(tp) is tuple:
        return st.lists(_strategy(args[0]), max_size=3).map(tuple)
    if typing.get_origin(tp) is dict:
        return st.dictionaries(st.text(max_size=6), _JSON, max_size=3)
    if tp is datetime:
        return st.datetimes(
            min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
        )
    if tp is RecordRef:
        return st.builds(RecordRef, kind=st.sampled_from(RecordKind), id=st.text(min_size=1))
    if tp is Money:
        return st.builds(
            Money,
            amount=st.decimals(min_value=-(10**9), max_value=10**9, places=2).map(Decimal),
            currency=st.sampled_from(["EUR", "USD", "PLN"]),
        )
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(list(tp))
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(0, 10**6)
    assert tp is str, tp
    return st.text(max_size=20)


def _events() -> st.SearchStrategy[Event]:
    def build(cls: type[Event]) -> st.SearchStrategy[Event]:
        hints = typing.get_type_hints(cls)
        fields = {a.name: _strategy(hints[a.name]) for a in attrs.fields(cls)}
        return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))

    return st.sampled_from(sorted(event_types().values(), key=lambda c: c.__name__)).flatmap(build)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(event=_events())
def test_every_event_survives_the_outbox_document(event: Event) -> None:
    document = encode_event(event)
    assert document["type"] == type(event).__name__
    assert decode_event(document) == event


def test_every_event_class_of_the_engine_is_known() -> None:
    import importlib
    import pkgutil

    import salesflow

    for module in pkgutil.walk_packages(salesflow.__path__, "salesflow."):
        importlib.import_module(module.name)
    pending: list[type[Event]] = [Event]
    found: set[type[Event]] = set()
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            module = sys.modules[sub.__module__]
            if (
                sub.__module__.startswith("salesflow.")
                and "testing" not in sub.__module__
                and getattr(module, sub.__name__, None) is sub  # not attrs' pre-slots class
            ):
                found.add(sub)
    assert found == set(event_types().values())
    assert len(event_types()) > 60


def test_a_foreign_event_or_a_bad_document_is_refused() -> None:
    @attrs.frozen(kw_only=True)
    class HostEvent(Event):
        note: str

    with pytest.raises(ValidationError, match="not one of salesflow's events"):
        encode_event(HostEvent(occurred_at=T0, note="x"))
    with pytest.raises(StoreError, match="names no event"):
        decode_event({"type": "HostEvent", "occurred_at": "2026-03-02T09:00:00+00:00"})
    with pytest.raises(StoreError, match="LeadCreated event is not valid"):
        decode_event({"type": "LeadCreated", "occurred_at": "yesterday", "lead_id": "l1"})
    with pytest.raises(StoreError, match="LeadCreated event is not valid"):
        decode_event({"type": "LeadCreated", "occurred_at": "2026-03-02T09:00:00+00:00"})


# --- the engine ------------------------------------------------------------------------


class FailingSink:
    """Raises on the first ``failures`` publishes, then keeps what it hears."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.events: list[Event] = []

    def publish(self, events: Sequence[Event]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the message bus is down")
        self.events.extend(events)


def _pending(store: Store) -> list[str]:
    with store.unit_of_work() as uow:
        return [e.id for e in uow.claim_outbox(datetime.max.replace(tzinfo=UTC), 10_000)]


def _engine(url: str, sink: Any, clock: FakeClock | None = None) -> Salesflow:
    return Salesflow(
        open_store(url), clock=clock or FakeClock(T0), sink=sink, ids=counting_ids(), outbox=True
    )


def test_delivered_events_leave_nothing_in_the_outbox(store_url: str) -> None:
    sink = ListSink()
    engine = _engine(store_url, sink)
    try:
        lead = engine.create_lead(topic="Fleet", last_name="Kim")
        engine.update_lead(lead.id, first_name="Ana")
        assert [type(e).__name__ for e in sink.events] == ["LeadCreated", "LeadUpdated"]
        assert _pending(engine.store) == []
        assert engine.deliver_outbox(older_than=timedelta(0)) == 0
    finally:
        engine.close()


def test_events_a_failing_sink_missed_are_published_later_once(store_url: str) -> None:
    clock = FakeClock(T0)
    failing = FailingSink()
    engine = _engine(store_url, failing, clock)
    try:
        with pytest.raises(RuntimeError, match="bus is down"):
            engine.create_lead(topic="Fleet", last_name="Kim")
        (lead,) = engine.lead_view("all_leads").items
        assert len(_pending(engine.store)) == 1  # the lead committed, its event waits
        engine.create_lead(topic="Vans", last_name="Lee")  # this one is delivered
        assert len(failing.events) == 1
        # Too young: the engine that made an entry normally delivers it itself.
        assert engine.deliver_outbox() == 0
        clock.advance(timedelta(minutes=2))
        assert engine.deliver_outbox() == 1
        late = failing.events[1]
        assert isinstance(late, LeadCreated)
        assert late == LeadCreated(occurred_at=T0, lead_id=lead.id)
        assert _pending(engine.store) == []
        assert engine.deliver_outbox(older_than=timedelta(0)) == 0
    finally:
        engine.close()


def test_run_due_keeps_and_drops_the_events_of_its_units(store_url: str) -> None:
    clock = FakeClock(T0)
    sink = ListSink()
    engine = _engine(store_url, sink, clock)
    try:
        handled: list[str] = []

        def handler(work: Any, item: Any) -> None:
            handled.append(item.id)
            work.events.append(LeadCreated(occurred_at=work.now, lead_id=item.payload["lead"]))

        engine.register_handler("demo", handler)
        for n in range(5):
            engine.schedule_due("demo", due_at=T0, payload={"lead": f"l{n}"})
        clock.advance(timedelta(seconds=1))
        assert engine.run_due(limit=3) == 3
        assert engine.run_due() == 2
        assert sorted(e.lead_id for e in sink.events if isinstance(e, LeadCreated)) == [
            f"l{n}" for n in range(5)
        ]
        assert _pending(engine.store) == []
    finally:
        engine.close()


def test_a_worker_publishes_what_a_dead_process_left(store_url: str) -> None:
    clock = FakeClock(T0)
    engine = _engine(store_url, FailingSink(failures=2), clock)
    heard = ListSink()
    try:
        for name in ("Kim", "Lee"):
            with pytest.raises(RuntimeError):
                engine.create_lead(topic="Fleet", last_name=name)
        clock.advance(timedelta(minutes=5))
        # A worker whose engine keeps no outbox (its events dropped) leaves them.
        plain = Worker(Salesflow(engine.store, clock=clock), sleep=lambda seconds: None)
        plain.run(until_idle=True)
        assert (plain.delivered, len(_pending(engine.store))) == (0, 2)
        other = Salesflow(engine.store, clock=clock, sink=heard, outbox=True)
        worker = Worker(other, sleep=lambda seconds: None, outbox_grace=60)
        worker.run(until_idle=True)
        assert worker.delivered == 2
        assert [type(e).__name__ for e in heard.events] == ["LeadCreated", "LeadCreated"]
        assert _pending(engine.store) == []
    finally:
        engine.close()


def test_deliver_outbox_refuses_bad_arguments_and_sellers() -> None:
    engine = Salesflow(clock=FakeClock(T0), outbox=True)
    for older_than in (timedelta(seconds=-1), 60, None):
        with pytest.raises(ValidationError, match="older_than"):
            engine.deliver_outbox(older_than=older_than)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="limit"):
        engine.deliver_outbox(limit=0)
    with pytest.raises(ValidationError, match="outbox"):
        Salesflow(outbox="yes")  # type: ignore[arg-type]
    seller = engine.as_actor(Actor(user_id="ana", roles={SALESPERSON}))
    with pytest.raises(PermissionDenied, match="run_due"):
        seller.deliver_outbox()


def test_an_engine_without_the_outbox_writes_none() -> None:
    store = MemoryStore()
    engine = Salesflow(store, clock=FakeClock(T0), sink=FailingSink())
    with pytest.raises(RuntimeError):
        engine.create_lead(topic="Fleet", last_name="Kim")
    assert _pending(store) == []  # at most once: that event is gone


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime
    from salesflow import open_store
    from salesflow.clock import FakeClock
    from salesflow.engine import Salesflow

    class DieOnPublish:
        def publish(self, events):
            os.kill(os.getpid(), signal.SIGKILL)  # between the commit and the sink

    engine = Salesflow(
        open_store(sys.argv[1]),
        clock=FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        sink=DieOnPublish(),
        outbox=True,
    )
    engine.create_lead(topic="Fleet", last_name="Kim")
    """
)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_process_killed_between_commit_and_sink_loses_no_event(
    kind: str, tmp_path: Any, postgres_url: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}" if kind == "sqlite" else postgres_url("sf_outbox")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    heard = ListSink()
    reader = Salesflow(open_store(url), clock=FakeClock(T0 + timedelta(minutes=5)), sink=heard)
    try:
        (lead,) = reader.lead_view("all_leads").items
        assert reader.deliver_outbox() == 1
        assert heard.events == [LeadCreated(occurred_at=T0, lead_id=lead.id)]
        assert reader.deliver_outbox() == 0
    finally:
        reader.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_fault_at_any_write_keeps_the_outbox_and_the_records_together(
    kind: str, tmp_path: Any
) -> None:
    """A fault inside the command's unit (the lead or its outbox entry) leaves neither
    and publishes nothing; a fault when the delivered entry is dropped leaves the
    entry, which is published again later: at least once, never lost."""
    from salesflow.testing.faults import FaultyStore

    inner = open_store("memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'f.db'}")
    faulty = FaultyStore(inner)
    clock = FakeClock(T0)
    sink = ListSink()
    engine = Salesflow(faulty, clock=clock, sink=sink, ids=counting_ids(), outbox=True)
    outcomes = []
    for n in (1, 2, 3, 4):
        sink.events.clear()
        faulty.fail_at(n)
        try:
            engine.create_lead(topic=f"Try {n}", last_name="Kim")
        except StoreError as error:
            outcomes.append(("refused", len(sink.events), len(_pending(inner))))
            assert "injected fault" in str(error)  # noqa: PT017
        else:
            outcomes.append(("done", len(sink.events), len(_pending(inner))))
        faulty.fail_at(None)
    # Writes of one create_lead: the lead, its outbox entry, then (after the sink)
    # dropping the entry; the fourth try meets no fault.
    assert outcomes == [("refused", 0, 0), ("refused", 0, 0), ("done", 1, 1), ("done", 1, 1)]
    assert len(engine.lead_view("all_leads").items) == 2
    clock.advance(timedelta(minutes=5))
    sink.events.clear()
    assert engine.deliver_outbox() == 1
    (third,) = [lead for lead in engine.lead_view("all_leads").items if lead.topic == "Try 3"]
    assert sink.events == [LeadCreated(occurred_at=T0, lead_id=third.id)]
    engine.close()
