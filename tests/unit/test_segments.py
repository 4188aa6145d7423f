"""Segments: records connected to a sequence the moment they start matching."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from salesflow.clock import FakeClock
from salesflow.conditions import all_of, field
from salesflow.engine import Salesflow
from salesflow.errors import NotFound, ValidationError
from salesflow.events import DefinitionPublished, ListSink
from salesflow.sequences.segments import Segment, segment_from_dict, segment_to_dict
from salesflow.sequences.templates import load_template
from salesflow.stores.memory import MemoryStore

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
OUTBOUND = "high_volume_outbound_prospecting"


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def engine(sink: ListSink) -> Salesflow:
    ids = itertools.count(1)
    engine = Salesflow(
        clock=FakeClock(T0),
        sink=sink,
        ids=lambda kind: f"{kind.value}-{next(ids)}",
        enrollment_ids=lambda: f"enr-{next(ids)}",
    )
    engine.publish_sequence(load_template(OUTBOUND))
    engine.save_segment(
        "hot", record_type="lead", where=field("rating").eq("hot"), sequence_id=OUTBOUND
    )
    return engine


def test_a_record_created_matching_is_connected_in_the_same_command(engine: Salesflow) -> None:
    hot = engine.create_lead(topic="Desks", last_name="Kim", rating="hot", email="kim@example.com")
    cold = engine.create_lead(
        topic="Chairs", last_name="Lee", rating="cold", email="lee@example.com"
    )
    (enrollment,) = engine.enrollments(hot)
    assert enrollment.sequence_id == OUTBOUND
    assert engine.enrollments(cold) == []


def test_a_record_that_starts_matching_is_connected_once(engine: Salesflow) -> None:
    lead = engine.create_lead(
        topic="Desks", last_name="Kim", rating="cold", email="kim@example.com"
    )
    engine.update_lead(lead.id, rating="hot")
    assert len(engine.enrollments(lead)) == 1
    engine.update_lead(lead.id, topic="Standing desks")  # keeps matching: no second run
    assert len(engine.enrollments(lead)) == 1


def test_a_record_that_stops_and_starts_matching_again_is_connected_again(
    engine: Salesflow,
) -> None:
    lead = engine.create_lead(topic="Desks", last_name="Kim", email="kim@example.com", rating="hot")
    (first,) = engine.enrollments(lead)
    engine.disconnect(first.id)
    engine.update_lead(lead.id, rating="warm")
    engine.update_lead(lead.id, rating="hot")
    running = engine.enrollments(lead, running=True)
    assert len(running) == 1
    assert running[0].id != first.id


def test_a_record_already_on_the_sequence_is_not_connected_twice(engine: Salesflow) -> None:
    lead = engine.create_lead(
        topic="Desks", last_name="Kim", email="kim@example.com", rating="cold"
    )
    engine.connect(lead, OUTBOUND)
    engine.update_lead(lead.id, rating="hot")
    assert len(engine.enrollments(lead)) == 1


def test_existing_matching_records_are_not_connected_retroactively() -> None:
    engine = Salesflow(clock=FakeClock(T0))
    engine.publish_sequence(load_template(OUTBOUND))
    before = engine.create_lead(
        topic="Desks", last_name="Kim", rating="hot", email="kim@example.com"
    )
    engine.save_segment(
        "hot", record_type="lead", where=field("rating").eq("hot"), sequence_id=OUTBOUND
    )
    assert engine.enrollments(before) == []


def test_a_deactivated_segment_or_sequence_connects_nothing(engine: Salesflow) -> None:
    engine.deactivate_segment("hot")
    assert engine.segments(active=True) == []
    assert (
        engine.enrollments(
            engine.create_lead(topic="a", last_name="A", rating="hot", email="a@example.com")
        )
        == []
    )
    engine.save_segment(
        "hot", record_type="lead", where=field("rating").eq("hot"), sequence_id=OUTBOUND
    )
    engine.deactivate_sequence(OUTBOUND)
    assert (
        engine.enrollments(
            engine.create_lead(topic="b", last_name="B", rating="hot", email="b@example.com")
        )
        == []
    )


def test_saving_again_publishes_a_new_version(engine: Salesflow, sink: ListSink) -> None:
    where = all_of(field("rating").eq("hot"), field("country").eq("Lithuania"))
    segment = engine.save_segment("hot", record_type="lead", where=where, sequence_id=OUTBOUND)
    assert segment.version == 2
    published = [e for e in sink.events if isinstance(e, DefinitionPublished)]
    assert [(e.kind, e.version) for e in published][-1] == ("segment", 2)
    assert (
        engine.enrollments(
            engine.create_lead(topic="a", last_name="A", rating="hot", email="a@example.com")
        )
        == []
    )
    lithuanian = engine.create_lead(
        topic="b", last_name="B", rating="hot", country="Lithuania", email="b@example.com"
    )
    assert len(engine.enrollments(lithuanian)) == 1


def test_bad_segments_are_refused_and_change_nothing(engine: Salesflow) -> None:
    with pytest.raises(ValidationError, match="no_such_field"):
        engine.save_segment(
            "x", record_type="lead", where=field("no_such_field").eq(1), sequence_id=OUTBOUND
        )
    with pytest.raises(NotFound):
        engine.save_segment(
            "x", record_type="lead", where=field("rating").eq("hot"), sequence_id="nope"
        )
    with pytest.raises(ValidationError, match="runs on lead records"):
        engine.save_segment(
            "x", record_type="contact", where=field("last_name").eq("Kim"), sequence_id=OUTBOUND
        )
    with pytest.raises(ValidationError, match="record_type"):
        engine.save_segment(
            "x", record_type="activity", where=field("subject").eq("x"), sequence_id=OUTBOUND
        )
    with pytest.raises(NotFound):
        engine.deactivate_segment("x")
    assert [s.id for s in engine.segments()] == ["hot"]


def test_segments_survive_save_and_restore(engine: Salesflow) -> None:
    store = engine.store
    assert isinstance(store, MemoryStore)
    restored = Salesflow(MemoryStore.load(store.dump()), clock=FakeClock(T0))
    assert restored.segments() == engine.segments()
    lead = restored.create_lead(
        topic="Desks", last_name="Kim", rating="hot", email="kim@example.com"
    )
    assert len(restored.enrollments(lead)) == 1


def test_a_segment_round_trips_through_its_document() -> None:
    segment = Segment(
        id="s",
        record_type="opportunity",
        where=all_of(field("stage").eq("Propose"), field("custom.tier").in_(["gold", "silver"])),
        sequence_id="demo",
        version=3,
    )
    assert segment_from_dict(segment_to_dict(segment)) == segment
    with pytest.raises(ValidationError, match="lacks 'where'"):
        segment_from_dict({"id": "s", "version": 1, "record_type": "lead", "sequence_id": "d"})
