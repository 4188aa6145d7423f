"""Segment commands of `Salesflow`: save a condition whose matching records are
connected to a sequence automatically (see `salesflow.sequences.segments`)."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from salesflow.commands.sequence_runs import SEQUENCE
from salesflow.commands.sequences import SequenceCommands
from salesflow.commands.work import Work
from salesflow.conditions import Condition, compile_predicate
from salesflow.definitions import ACTIVE, INACTIVE, StoredDefinition
from salesflow.errors import InvalidTransition, NotFound, ValidationError
from salesflow.sequences.segments import SEGMENT, Segment, segment_from_dict, segment_to_dict
from salesflow.stores.base import Query, field_reader
from salesflow.values import Record, RecordKind

__all__ = ["SegmentCommands"]

_MAX_PASSES = 10
"""How many rounds of connecting a unit may do: connecting can write records
(a sequence's first automated steps) that start matching further segments."""

_ACTIVITIES_ONLY = frozenset({RecordKind.ACTIVITY})
"""Segments match no activities: a unit that wrote nothing else has nothing for them."""


class SegmentCommands(SequenceCommands):
    """Segments: saved conditions that connect matching records to a sequence."""

    _segment_cache: dict[tuple[str, int], tuple[Segment, Callable[[Record], bool]]]

    def save_segment(
        self,
        segment_id: str,
        *,
        record_type: RecordKind | str,
        where: Condition,
        sequence_id: str,
    ) -> Segment:
        """Publish a segment (a new version when ``segment_id`` exists), active.

        From the next command on, every record of ``record_type`` that a command
        creates or changes so that it starts matching ``where`` is connected to
        ``sequence_id`` in that command's unit of work. Records that already match
        are not connected retroactively.

        Raises:
            ValidationError: a field of ``where`` is unknown for the record type, a
                value does not fit it, or the sequence runs on another record type.
            NotFound: no such sequence.
        """
        segment = Segment(
            id=segment_id, record_type=record_type, where=where, sequence_id=sequence_id
        )
        Query(where=segment.where).check(segment.record_type)
        with self._command() as work:
            stored_sequence = self._stored_sequence(work, sequence_id, None)
            sequence = self._definition(work, sequence_id, stored_sequence.version)
            if sequence.record_type is not segment.record_type:
                raise ValidationError(
                    f"segment {segment_id!r} selects {segment.record_type.value} records but "
                    f"sequence {sequence_id!r} runs on {sequence.record_type.value} records",
                    field="sequence_id",
                    value=sequence_id,
                )
            latest = work.uow.find_definition(SEGMENT, segment_id)
            version = 1 if latest is None else latest.version + 1
            segment = attrs.evolve(segment, version=version)
            work.publish(SEGMENT, segment_id, version, segment_to_dict(segment))
        return segment

    def deactivate_segment(self, segment_id: str) -> Segment:
        """Stop connecting records through a segment (records already connected stay).

        Raises:
            NotFound: no such segment.
        """
        with self._command() as work:
            latest = work.uow.find_definition(SEGMENT, segment_id)
            if latest is None:
                raise NotFound("Segment", segment_id)
            if latest.state != INACTIVE:
                work.set_definition_state(SEGMENT, segment_id, latest.version, INACTIVE)
            return self._segment(latest)[0]

    def segments(self, *, active: bool = False) -> list[Segment]:
        """The latest version of every segment (only active ones when ``active``)."""
        with self._read() as uow:
            stored = uow.definitions(SEGMENT)
        return [self._segment(s)[0] for s in stored if not active or s.state == ACTIVE]

    def _segment(self, stored: StoredDefinition) -> tuple[Segment, Callable[[Record], bool]]:
        key = (stored.id, stored.version)
        cached = self._segment_cache.get(key)
        if cached is None:
            segment = segment_from_dict(stored.document)
            kind = segment.record_type
            matches = compile_predicate(segment.where, lambda name: field_reader(kind, name))
            cached = self._segment_cache[key] = (segment, matches)
        return cached

    def _before_commit(self, work: Work) -> None:
        super()._before_commit(work)
        if work.written_kinds <= _ACTIVITIES_ONLY:
            return
        active = [self._segment(s) for s in work.uow.definitions(SEGMENT) if s.state == ACTIVE]
        if not active:
            return
        done: set[tuple[str, str, int]] = set()
        for _ in range(_MAX_PASSES):
            connected = False
            for ref, (before, after) in list(work.written.items()):
                for segment, matches in active:
                    mark = (segment.id, ref.id, after.version)
                    if segment.record_type is not ref.kind or mark in done:
                        continue
                    done.add(mark)
                    if not matches(after) or (before is not None and matches(before)):
                        continue
                    connected |= self._connect_matching(work, segment, after)
            if not connected:
                return

    def _connect_matching(self, work: Work, segment: Segment, record: Record) -> bool:
        """Connect a record that started matching; False when it cannot be (closed,
        already on the sequence, the sequence inactive or gone)."""
        stored = work.uow.find_definition(SEQUENCE, segment.sequence_id)
        if stored is None or stored.state != ACTIVE:
            return False
        if any(
            e.sequence_id == segment.sequence_id
            for e in work.uow.enrollments(record=record.ref, running=True)
        ):
            return False
        try:
            self._connect_in(work, record.ref, segment.sequence_id, None)
        except InvalidTransition:
            return False  # a closed record: segments only ever connect open ones
        return True
