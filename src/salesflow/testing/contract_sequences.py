"""`SequenceContract`: the store contract for definitions and enrollments.

`salesflow.testing.contract.StoreContract` inherits these tests, so every store's
test module runs them with the store it builds (``make_store``, ``reopen`` and the
``store`` fixture of `StoreContract`).
"""

from __future__ import annotations

import abc
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from salesflow.definitions import ACTIVE, INACTIVE, StoredDefinition
from salesflow.errors import AlreadyExists, NotFound, ValidationError, VersionConflict
from salesflow.sequences import runtime
from salesflow.sequences.definition import EmailEvent, StepKind
from salesflow.sequences.enrollment import (
    Advance,
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    HistoryEntry,
)
from salesflow.sequences.io import from_dict, to_dict
from salesflow.sequences.templates import load_template
from salesflow.stores.base import Store
from salesflow.stores.codec import Codec
from salesflow.testing.contract_records import T0
from salesflow.values import RecordKind, RecordRef

__all__ = ["SequenceContract", "definition", "enrollment", "template_enrollment_states"]

TEMPLATE = "high_volume_outbound_prospecting"


def definition(
    definition_id: str, version: int = 1, *, kind: str = "sequence", **fields: Any
) -> StoredDefinition:
    """A stored definition version; ``fields`` override the defaults."""
    base: dict[str, Any] = {
        "kind": kind,
        "id": definition_id,
        "version": version,
        "state": ACTIVE,
        "document": {"id": definition_id, "version": version, "steps": [{"n": version}]},
        "published_at": T0 + timedelta(days=version),
    }
    base.update(fields)
    return StoredDefinition(**base)


def enrollment(n: int, **fields: Any) -> Enrollment:
    """An enrollment numbered ``n`` (of lead ``lead-<n>`` on sequence ``seq-a``, active,
    version 1); ``fields`` override the defaults."""
    base: dict[str, Any] = {
        "id": f"enr-{n:04d}",
        "sequence_id": "seq-a",
        "sequence_version": 1,
        "record": RecordRef(kind=RecordKind.LEAD, id=f"lead-{n:04d}"),
        "owner_id": "u1",
        "current_step": "call",
        "step_owner_id": "u1",
        "due_at": T0 + timedelta(hours=n),
        "step_started_at": T0,
    }
    base.update(fields)
    return Enrollment(**base)


def template_enrollment_states() -> list[Enrollment]:
    """Successive states (versions 1, 2, …) of one enrollment run by the runtime on the
    ``high_volume_outbound_prospecting`` template: email events, a call outcome,
    history, an activity id, a pause (with the remaining time to the microsecond),
    a resume and an exit."""
    sequence = load_template(TEMPLATE)
    record = RecordRef(kind=RecordKind.LEAD, id="lead-0001")
    started = runtime.start(
        sequence, enrollment_id="enr-run", record=record, owner_id="u1", now=T0
    ).enrollment
    # The engine sets the activity of the current manual step without a new version.
    states = [attrs.evolve(started, activity_id="act-linkedin")]

    def then(advance: Advance) -> None:
        states.append(advance.enrollment)

    at = T0 + timedelta(minutes=5)
    then(runtime.record_email_event(sequence, states[-1], "auto_email_introduction", "opened", at))
    then(
        runtime.record_email_event(
            sequence, states[-1], "auto_email_introduction", EmailEvent.LINK_CLICKED, at
        )
    )
    then(runtime.complete_step(sequence, states[-1], "linkedin_research", T0 + timedelta(hours=1)))
    then(
        runtime.complete_step(
            sequence, states[-1], "call_first", T0 + timedelta(hours=2), outcome="no_answer"
        )
    )
    then(runtime.pause(sequence, states[-1], T0 + timedelta(hours=3, microseconds=7)))
    then(runtime.resume(sequence, states[-1], T0 + timedelta(hours=4)))
    then(
        runtime.exit_enrollment(
            sequence, states[-1], ExitReason.CUSTOMER_REPLIED, T0 + timedelta(hours=5)
        )
    )
    return states


class SequenceContract(abc.ABC):
    """The definition and enrollment behaviour every `Store` must have (part of
    `StoreContract`, which supplies the methods and the ``store`` fixture)."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store (see `StoreContract.make_store`)."""

    @abc.abstractmethod
    def reopen(self, store: Store, codec: Codec | None = None) -> Store:
        """Close ``store`` and return a store over the same data (see
        `StoreContract.reopen`)."""

    def add_definitions(self, store: Store, *definitions: StoredDefinition) -> None:
        """Add ``definitions`` in one committed unit of work."""
        with store.unit_of_work() as uow:
            for item in definitions:
                uow.add_definition(item)
            uow.commit()

    def add_enrollments(self, store: Store, *enrollments: Enrollment) -> None:
        """Add ``enrollments`` in one committed unit of work."""
        with store.unit_of_work() as uow:
            for item in enrollments:
                uow.add_enrollment(item)
            uow.commit()

    # --- definitions -----------------------------------------------------------------

    def test_definitions_round_trip_exactly(self, store: Store) -> None:
        sequence = to_dict(load_template(TEMPLATE))
        published = definition(
            TEMPLATE,
            document=sequence,
            published_at=datetime(2026, 3, 2, 9, 0, 1, 123456, tzinfo=UTC),
        )
        odd = definition(
            "seg-ü",
            kind="segment",
            state=INACTIVE,
            document={"text": "Grüße ✓", "n": [1, 2.5, None, True], "deep": {"a": {"b": []}}},
        )
        self.add_definitions(store, published, odd)
        with store.unit_of_work() as uow:
            assert uow.find_definition("sequence", TEMPLATE, 1) == published
            assert uow.find_definition("sequence", TEMPLATE) == published
            assert uow.find_definition("segment", "seg-ü") == odd
            found = uow.find_definition("sequence", TEMPLATE)
        assert found is not None
        assert from_dict(found.document) == load_template(TEMPLATE)

    def test_find_definition_gives_the_asked_or_the_latest_version(self, store: Store) -> None:
        # Published out of order: the latest is the highest version, not the last added.
        self.add_definitions(store, definition("seq-a", 1), definition("seq-a", 3))
        self.add_definitions(store, definition("seq-a", 2), definition("seq-b", 1))
        with store.unit_of_work() as uow:
            assert uow.find_definition("sequence", "seq-a") == definition("seq-a", 3)
            for version in (1, 2, 3):
                assert uow.find_definition("sequence", "seq-a", version) == definition(
                    "seq-a", version
                )
            assert uow.find_definition("sequence", "seq-a", 4) is None
            assert uow.find_definition("sequence", "seq-c") is None
            assert uow.find_definition("segment", "seq-a") is None  # kinds are apart
            assert uow.find_definition("sequence", "seq-b") == definition("seq-b", 1)

    def test_adding_a_stored_definition_version_is_refused(self, store: Store) -> None:
        self.add_definitions(store, definition("seq-a", 1))
        with store.unit_of_work() as uow:
            with pytest.raises(AlreadyExists, match="seq-a version 1"):
                uow.add_definition(definition("seq-a", 1, state=INACTIVE))
            uow.add_definition(definition("seq-a", 2))
            with pytest.raises(AlreadyExists, match="seq-a version 2"):
                uow.add_definition(definition("seq-a", 2))  # also one the unit added
            uow.add_definition(definition("seq-a", 1, kind="segment"))  # another kind
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find_definition("sequence", "seq-a", 1) == definition("seq-a", 1)
            assert uow.find_definition("segment", "seq-a") == definition("seq-a", 1, kind="segment")

    def test_add_definition_takes_only_a_stored_definition(self, store: Store) -> None:
        with store.unit_of_work() as uow, pytest.raises(ValidationError, match="StoredDefinition"):
            uow.add_definition({"kind": "sequence"})  # type: ignore[arg-type]

    def test_set_definition_state_changes_only_that_version(self, store: Store) -> None:
        self.add_definitions(store, definition("seq-a", 1), definition("seq-a", 2))
        with store.unit_of_work() as uow:
            changed = uow.set_definition_state("sequence", "seq-a", 2, INACTIVE)
            assert changed == definition("seq-a", 2, state=INACTIVE)
            assert uow.find_definition("sequence", "seq-a") == changed  # its own write
            assert uow.definitions("sequence") == [changed]
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find_definition("sequence", "seq-a", 2) == changed
            assert uow.find_definition("sequence", "seq-a", 1) == definition("seq-a", 1)
            again = uow.set_definition_state("sequence", "seq-a", 2, ACTIVE)
            assert again == definition("seq-a", 2)
            # not committed: rolled back below
        with store.unit_of_work() as uow:
            assert uow.find_definition("sequence", "seq-a", 2) == changed

    def test_set_definition_state_of_a_missing_version_is_not_found(self, store: Store) -> None:
        self.add_definitions(store, definition("seq-a", 1))
        with store.unit_of_work() as uow:
            with pytest.raises(NotFound, match="seq-a version 2"):
                uow.set_definition_state("sequence", "seq-a", 2, INACTIVE)
            with pytest.raises(NotFound, match="seq-b version 1"):
                uow.set_definition_state("sequence", "seq-b", 1, INACTIVE)
            with pytest.raises(NotFound):
                uow.set_definition_state("segment", "seq-a", 1, INACTIVE)

    def test_definitions_lists_the_latest_version_of_each_id_of_a_kind(self, store: Store) -> None:
        self.add_definitions(
            store,
            definition("seq-b", 1),
            definition("seq-b", 2),
            definition("seq-a", 1),
            definition("seq-c", 2),  # versions need not start at 1 to be listed
            definition("seq-a", 1, kind="segment"),
            definition("seq-a", 5, kind="segment"),
        )
        with store.unit_of_work() as uow:
            assert uow.definitions("sequence") == [
                definition("seq-a", 1),
                definition("seq-b", 2),
                definition("seq-c", 2),
            ]
            assert uow.definitions("segment") == [definition("seq-a", 5, kind="segment")]
            assert uow.definitions("routing") == []
            uow.add_definition(definition("seq-b", 3))
            uow.add_definition(definition("seq-0", 1))
            assert [(d.id, d.version) for d in uow.definitions("sequence")] == [
                ("seq-0", 1),
                ("seq-a", 1),
                ("seq-b", 3),
                ("seq-c", 2),
            ]

    def test_definitions_and_enrollments_are_ordered_by_id_code_point(self, store: Store) -> None:
        ids = ["b", "B", "a-1", "ä", "a", "Z"]
        self.add_definitions(store, *(definition(i) for i in ids))
        self.add_enrollments(store, *(enrollment(1, id=i) for i in ids))
        ordered = ["B", "Z", "a", "a-1", "b", "ä"]  # as Python sorts text
        assert sorted(ids) == ordered
        with store.unit_of_work() as uow:
            assert [d.id for d in uow.definitions("sequence")] == ordered
            assert [e.id for e in uow.enrollments()] == ordered
            assert [e.id for e in uow.enrollments(sequence_id="seq-a")] == ordered
            assert [e.id for e in uow.enrollments(record=enrollment(1).record)] == ordered

    def test_uncommitted_definition_writes_are_rolled_back(self, store: Store) -> None:
        self.add_definitions(store, definition("seq-a", 1))
        with store.unit_of_work() as uow:
            uow.add_definition(definition("seq-a", 2))
            uow.add_definition(definition("seq-b", 1))
            uow.set_definition_state("sequence", "seq-a", 1, INACTIVE)
            assert uow.find_definition("sequence", "seq-a") == definition("seq-a", 2)
            assert uow.find_definition("sequence", "seq-b") == definition("seq-b", 1)
        with store.unit_of_work() as uow:
            assert uow.definitions("sequence") == [definition("seq-a", 1)]
            assert uow.find_definition("sequence", "seq-b") is None

    def test_definitions_survive_reopening(self) -> None:
        store = self.make_store()
        self.add_definitions(store, definition("seq-a", 1), definition("seq-a", 2))
        with store.unit_of_work() as uow:
            uow.set_definition_state("sequence", "seq-a", 1, INACTIVE)
            uow.commit()
        store = self.reopen(store)
        try:
            with store.unit_of_work() as uow:
                assert uow.find_definition("sequence", "seq-a", 1) == definition(
                    "seq-a", 1, state=INACTIVE
                )
                assert uow.definitions("sequence") == [definition("seq-a", 2)]
                with pytest.raises(AlreadyExists):
                    uow.add_definition(definition("seq-a", 2))
        finally:
            store.close()

    # --- enrollments -----------------------------------------------------------------

    def test_enrollments_round_trip_exactly(self, store: Store) -> None:
        full = enrollment(
            1,
            status=EnrollmentStatus.PAUSED,
            due_at=None,
            step_started_at=datetime(2026, 3, 2, 9, 0, 0, 654321, tzinfo=UTC),
            paused_remaining=timedelta(days=2, microseconds=3),
            activity_id="act-1",
            email_events={
                "email_b": frozenset({EmailEvent.OPENED}),
                "email_a": frozenset({EmailEvent.REPLIED, EmailEvent.ATTACHMENT_DOWNLOADED}),
            },
            call_outcomes={"call_2": "no_answer", "call_1": "answered"},
            history=(
                HistoryEntry(
                    step_id="email_a",
                    kind=StepKind.AUTO_EMAIL,
                    outcome="sent",
                    at=T0,
                    owner_id=None,
                ),
                HistoryEntry(
                    step_id="call_1",
                    kind=StepKind.CALL,
                    outcome="answered",
                    at=T0 + timedelta(seconds=1, microseconds=1),
                    owner_id="u2",
                ),
            ),
        )
        ended = enrollment(
            2,
            record=RecordRef(kind=RecordKind.CONTACT, id="con-ü"),
            owner_id=None,
            status=EnrollmentStatus.EXITED,
            current_step=None,
            step_owner_id=None,
            due_at=None,
            step_started_at=None,
            outcome="meeting_booked",
            exit_reason=ExitReason.SEQUENCE_DEACTIVATED,
        )
        self.add_enrollments(store, full, ended, enrollment(3))
        with store.unit_of_work() as uow:
            assert uow.find_enrollment("enr-0001") == full
            assert uow.find_enrollment("enr-0002") == ended
            assert uow.find_enrollment("enr-0003") == enrollment(3)
            assert uow.find_enrollment("enr-9999") is None

    def test_every_state_the_runtime_gives_is_stored_as_the_next_version(
        self, store: Store
    ) -> None:
        states = template_enrollment_states()
        assert [s.version for s in states] == list(range(1, len(states) + 1))
        self.add_enrollments(store, states[0])
        for state in states[1:]:
            with store.unit_of_work() as uow:
                uow.update_enrollment(state)
                assert uow.find_enrollment(state.id) == state  # its own write
                uow.commit()
            with store.unit_of_work() as uow:
                assert uow.find_enrollment(state.id) == state
        paused = next(s for s in states if s.status is EnrollmentStatus.PAUSED)
        assert paused.paused_remaining is not None
        assert paused.paused_remaining.microseconds != 0  # kept to the microsecond
        assert states[-1].exit_reason is ExitReason.CUSTOMER_REPLIED
        assert dict(states[-1].email_events) == {
            "auto_email_introduction": frozenset({EmailEvent.OPENED, EmailEvent.LINK_CLICKED})
        }
        assert dict(states[-1].call_outcomes) == {"call_first": "no_answer"}

    def test_adding_an_existing_enrollment_is_refused(self, store: Store) -> None:
        self.add_enrollments(store, enrollment(1))
        with store.unit_of_work() as uow:
            with pytest.raises(AlreadyExists, match="enr-0001"):
                uow.add_enrollment(enrollment(1, owner_id="u2"))
            with pytest.raises(AlreadyExists, match="enr-0001"):
                uow.add_enrollment(enrollment(1, version=2))
            uow.add_enrollment(enrollment(2))
            with pytest.raises(AlreadyExists, match="enr-0002"):
                uow.add_enrollment(enrollment(2))  # also one the unit added
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find_enrollment("enr-0001") == enrollment(1)
            assert uow.find_enrollment("enr-0002") == enrollment(2)

    def test_a_new_enrollment_must_be_at_version_1(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(VersionConflict, match="enr-0001"):
                uow.add_enrollment(enrollment(1, version=2))
            assert uow.find_enrollment("enr-0001") is None

    def test_add_enrollment_takes_only_an_enrollment(self, store: Store) -> None:
        with store.unit_of_work() as uow, pytest.raises(ValidationError, match="Enrollment"):
            uow.add_enrollment({"id": "enr-0001"})  # type: ignore[arg-type]

    def test_update_enrollment_needs_the_previous_version_stored(self, store: Store) -> None:
        self.add_enrollments(store, enrollment(1))
        second = enrollment(1, current_step="email", version=2)
        with store.unit_of_work() as uow:
            uow.update_enrollment(second)
            uow.commit()
        with store.unit_of_work() as uow:
            with pytest.raises(VersionConflict) as stale:
                uow.update_enrollment(enrollment(1, current_step="lost", version=2))
            assert (stale.value.expected, stale.value.actual) == (1, 2)
            with pytest.raises(VersionConflict) as ahead:
                uow.update_enrollment(enrollment(1, current_step="lost", version=4))
            assert (ahead.value.expected, ahead.value.actual) == (3, 2)
            with pytest.raises(VersionConflict):
                uow.update_enrollment(enrollment(1, current_step="lost", version=1))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.find_enrollment("enr-0001") == second

    def test_a_stale_enrollment_update_loses_to_the_first(self, store: Store) -> None:
        self.add_enrollments(store, enrollment(1))
        with store.unit_of_work() as uow:
            read = uow.find_enrollment("enr-0001")
        assert read is not None
        with store.unit_of_work() as uow:
            uow.update_enrollment(attrs.evolve(read, current_step="winner", version=2))
            uow.commit()
        with store.unit_of_work() as uow, pytest.raises(VersionConflict, match="enr-0001"):
            uow.update_enrollment(attrs.evolve(read, current_step="loser", version=2))
        with store.unit_of_work() as uow:
            found = uow.find_enrollment("enr-0001")
        assert found is not None
        assert (found.current_step, found.version) == ("winner", 2)

    def test_update_of_a_missing_enrollment_is_not_found(self, store: Store) -> None:
        with store.unit_of_work() as uow, pytest.raises(NotFound, match="enr-0009"):
            uow.update_enrollment(enrollment(9, version=2))

    def test_enrollments_are_found_by_record_by_sequence_and_running(self, store: Store) -> None:
        lead = RecordRef(kind=RecordKind.LEAD, id="x-1")
        contact = RecordRef(kind=RecordKind.CONTACT, id="x-1")  # same id, other kind
        ended = {"current_step": None, "due_at": None}
        self.add_enrollments(
            store,
            enrollment(5, record=lead, sequence_id="seq-a"),
            enrollment(
                3, record=lead, sequence_id="seq-b", status=EnrollmentStatus.COMPLETED, **ended
            ),
            enrollment(4, record=lead, sequence_id="seq-a", status=EnrollmentStatus.PAUSED),
            enrollment(
                2, record=lead, sequence_id="seq-a", status=EnrollmentStatus.EXITED, **ended
            ),
            enrollment(1, record=contact, sequence_id="seq-a"),
            enrollment(6, sequence_id="seq-b"),
        )

        def ids(**how: Any) -> list[str]:
            with store.unit_of_work() as uow:
                return [e.id[-1] for e in uow.enrollments(**how)]

        assert ids() == ["1", "2", "3", "4", "5", "6"]
        assert ids(running=True) == ["1", "4", "5", "6"]
        assert ids(record=lead) == ["2", "3", "4", "5"]
        assert ids(record=lead, running=True) == ["4", "5"]
        assert ids(record=contact) == ["1"]
        assert ids(record=RecordRef(kind=RecordKind.LEAD, id="x-2")) == []
        assert ids(sequence_id="seq-a") == ["1", "2", "4", "5"]
        assert ids(sequence_id="seq-a", running=True) == ["1", "4", "5"]
        assert ids(sequence_id="seq-b") == ["3", "6"]
        assert ids(sequence_id="seq-b", running=True) == ["6"]
        assert ids(sequence_id="seq-z") == []
        assert ids(record=lead, sequence_id="seq-b") == ["3"]
        assert ids(record=lead, sequence_id="seq-b", running=True) == []
        with store.unit_of_work() as uow:
            (found,) = uow.enrollments(record=contact)
        assert found == enrollment(1, record=contact, sequence_id="seq-a")

    def test_enrollment_lookups_see_the_units_own_writes(self, store: Store) -> None:
        self.add_enrollments(store, enrollment(1), enrollment(2))
        lead_2 = enrollment(2).record
        with store.unit_of_work() as uow:
            uow.add_enrollment(enrollment(3, record=lead_2))
            completed = enrollment(
                2, status=EnrollmentStatus.COMPLETED, current_step=None, due_at=None, version=2
            )
            uow.update_enrollment(completed)
            assert uow.find_enrollment("enr-0003") == enrollment(3, record=lead_2)
            assert uow.find_enrollment("enr-0002") == completed
            assert [e.id for e in uow.enrollments(record=lead_2)] == ["enr-0002", "enr-0003"]
            assert [e.id for e in uow.enrollments(record=lead_2, running=True)] == ["enr-0003"]
            assert [e.id for e in uow.enrollments(sequence_id="seq-a", running=True)] == [
                "enr-0001",
                "enr-0003",
            ]
            assert uow.enrollments(record=lead_2)[0] == completed

    def test_uncommitted_enrollment_writes_are_rolled_back(self, store: Store) -> None:
        self.add_enrollments(store, enrollment(1))
        with store.unit_of_work() as uow:
            uow.add_enrollment(enrollment(2))
            uow.update_enrollment(enrollment(1, current_step="email", version=2))
        with store.unit_of_work() as uow:
            assert uow.find_enrollment("enr-0002") is None
            assert uow.find_enrollment("enr-0001") == enrollment(1)
            assert uow.enrollments() == [enrollment(1)]

    def test_an_exception_rolls_back_enrollment_writes(self, store: Store) -> None:
        self.add_enrollments(store, enrollment(1))

        class BoomError(Exception):
            pass

        def half_done() -> None:
            with store.unit_of_work() as uow:
                uow.add_enrollment(enrollment(2))
                uow.update_enrollment(enrollment(1, current_step="email", version=2))
                uow.add_definition(definition("seq-a"))
                raise BoomError

        with pytest.raises(BoomError):
            half_done()
        with store.unit_of_work() as uow:
            assert uow.enrollments() == [enrollment(1)]
            assert uow.definitions("sequence") == []

    def test_returned_enrollments_are_copies(self, store: Store) -> None:
        self.add_enrollments(store, enrollment(1))
        with store.unit_of_work() as uow:
            found = uow.find_enrollment("enr-0001")
            assert found is not None
            found.current_step = "mutated"
            (listed,) = uow.enrollments()
            listed.owner_id = "mutated"
            assert uow.find_enrollment("enr-0001") == enrollment(1)

    def test_enrollments_survive_reopening(self) -> None:
        store = self.make_store()
        states = template_enrollment_states()
        self.add_enrollments(store, states[0], enrollment(1))
        with store.unit_of_work() as uow:
            for state in states[1:5]:
                uow.update_enrollment(state)
            uow.commit()
        store = self.reopen(store)
        try:
            with store.unit_of_work() as uow:
                assert uow.find_enrollment(states[0].id) == states[4]
                assert uow.enrollments(record=states[0].record) == [enrollment(1), states[4]]
                assert uow.enrollments(sequence_id=TEMPLATE, running=True) == [states[4]]
                uow.update_enrollment(states[5])  # the version check carries on
                with pytest.raises(VersionConflict):
                    uow.update_enrollment(states[5])
                uow.commit()
        finally:
            store.close()
