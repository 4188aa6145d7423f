"""Sequence commands of `Salesflow`: publish and deactivate definitions, connect
records, up next, and the seller's and the customer's actions on an enrollment.

Records closing (qualified, disqualified, won, lost) end their enrollments, an
owner change hands later steps to the new owner, and a seller completing or
canceling a step's activity from the timeline completes or skips the step; how
all of it is performed is in `salesflow.commands.sequence_runs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import attrs

from salesflow.commands.ab_tests import ABTestCommands
from salesflow.commands.sequence_runs import SEQUENCE, no_sequence
from salesflow.commands.work import Work, as_ref
from salesflow.definitions import ACTIVE, INACTIVE, StoredDefinition
from salesflow.errors import InvalidDefinition, NotFound, ValidationError
from salesflow.sequences import runtime as rt
from salesflow.sequences.definition import AdvanceStep, EmailEvent, SequenceDefinition
from salesflow.sequences.enrollment import Advance as _Advance
from salesflow.sequences.enrollment import (
    Enrollment,
    ExitReason,
    UpNext,
)
from salesflow.sequences.io import to_dict
from salesflow.sequences.render import Progress, mermaid
from salesflow.sequences.validation import require_valid
from salesflow.values import Record, RecordRef

__all__ = ["PublishedSequence", "SequenceCommands"]


@attrs.frozen(kw_only=True)
class PublishedSequence:
    """A stored version of a sequence with its state.

    Attributes:
        definition: The definition (its ``version`` is the published version).
        state: ``active`` (records may be connected) or ``inactive``.
        published_at: When this version was published.
    """

    definition: SequenceDefinition
    state: str
    published_at: datetime

    @property
    def active(self) -> bool:
        """True when records may be connected to it."""
        return self.state == ACTIVE


class SequenceCommands(ABTestCommands):
    """Sequences: publish and deactivate definitions, connect records (one or many), up next,
    complete/skip/snooze/assign steps, email events, pause/resume, disconnect."""

    # --- definitions ------------------------------------------------------------------

    def publish_sequence(self, definition: SequenceDefinition) -> PublishedSequence:
        """Publish ``definition`` as the next version of its id, active.

        The first publication is version 1; publishing an id again stores version
        n + 1 (``definition.version`` is ignored) and new connections use it, while
        enrolled records stay on the version they started on. Publishing a
        definition equal to the latest version changes nothing and returns it.

        Raises:
            InvalidDefinition: ``validate()`` finds problems, or an
                ``advance_to_sequence`` step names a sequence that is not published
                or runs on another record type.
            ValidationError: ``definition`` is not a `SequenceDefinition`.
        """
        if not isinstance(definition, SequenceDefinition):
            raise ValidationError(
                f"publish_sequence() takes a SequenceDefinition, not {type(definition).__name__}"
                f" (load one with salesflow.sequences.loads_toml or load_template)",
                field="definition",
                value=definition,
            )
        require_valid(definition)
        with self._command() as work:
            latest = work.uow.find_definition(SEQUENCE, definition.id)
            version = 1 if latest is None else latest.version + 1
            self._check_advances(work, definition)
            if latest is not None:
                current = self._definition(work, definition.id, latest.version)
                if to_dict(attrs.evolve(definition, version=latest.version)) == to_dict(current):
                    return _published(latest, current)
            published = attrs.evolve(definition, version=version)
            stored = work.publish(SEQUENCE, definition.id, version, to_dict(published))
        self._definition_cache[(definition.id, version)] = published
        return _published(stored, published)

    def _check_advances(self, work: Work, definition: SequenceDefinition) -> None:
        problems = []
        for step in definition.steps:
            if not isinstance(step, AdvanceStep) or step.sequence_id == definition.id:
                continue
            target = work.uow.find_definition(SEQUENCE, step.sequence_id)
            if target is None:
                problems.append(
                    f"step {step.id!r} advances to sequence {step.sequence_id!r}, which is not "
                    f"published; publish it first"
                )
                continue
            kind = self._definition(work, target.id, target.version).record_type
            if kind is not definition.record_type:
                problems.append(
                    f"step {step.id!r} advances to sequence {step.sequence_id!r}, which runs on "
                    f"{kind.value} records, not {definition.record_type.value}"
                )
        if problems:
            raise InvalidDefinition(problems)

    def _set_sequence_state(self, sequence_id: str, state: str) -> PublishedSequence:
        with self._command() as work:
            latest = self._stored_sequence(work, sequence_id, None)
            if latest.state == state:
                return _published(latest, self._definition(work, sequence_id, latest.version))
            stored = work.set_definition_state(SEQUENCE, sequence_id, latest.version, state)
            if state == INACTIVE:
                for enrollment in work.uow.enrollments(sequence_id=sequence_id, running=True):
                    self._exit(work, enrollment, ExitReason.SEQUENCE_DEACTIVATED)
            return _published(stored, self._definition(work, sequence_id, latest.version))

    def deactivate_sequence(self, sequence_id: str) -> PublishedSequence:
        """Stop using a sequence: no new connections, and every record still on it
        (any version) exits with reason ``sequence_deactivated``.

        Raises:
            NotFound: no such sequence.
        """
        return self._set_sequence_state(sequence_id, INACTIVE)

    def activate_sequence(self, sequence_id: str) -> PublishedSequence:
        """Let records be connected to a deactivated sequence again.

        Raises:
            NotFound: no such sequence.
        """
        return self._set_sequence_state(sequence_id, ACTIVE)

    def get_sequence(self, sequence_id: str, version: int | None = None) -> PublishedSequence:
        """A published sequence: ``version``, or the latest when None.

        Raises:
            NotFound: no such sequence or version.
        """
        with self._read() as uow:
            stored = uow.find_definition(SEQUENCE, sequence_id, version)
            if stored is None:
                raise no_sequence(sequence_id, version)
            return _published(stored, self._decode(stored))

    def sequences(self) -> list[PublishedSequence]:
        """The latest version of every published sequence, by id."""
        with self._read() as uow:
            return [_published(s, self._decode(s)) for s in uow.definitions(SEQUENCE)]

    # --- connecting -------------------------------------------------------------------

    def connect(
        self, record: RecordRef | Record, sequence_id: str, *, owner_id: str | None = None
    ) -> Enrollment:
        """Connect ``record`` to the latest version of an active sequence.

        The entry step starts at once: automated steps run until a manual step (its
        activity is put on the record's timeline), a wait or an undecided condition.

        Args:
            record: The record (or its `RecordRef`).
            sequence_id: The sequence.
            owner_id: Who gets the steps; the record's owner by default.

        Returns:
            The new enrollment.

        Raises:
            NotFound: no such record or sequence.
            ValidationError: the sequence runs on another record type.
            InvalidTransition: the sequence is inactive, the record is closed
                (a qualified or disqualified lead, a won or lost opportunity), or
                the record is already on this sequence.
        """
        ref = as_ref(record)
        with self._command() as work:
            return self._connect_in(work, ref, sequence_id, owner_id)

    def connect_many(
        self,
        records: Sequence[RecordRef | Record],
        sequence_id: str,
        *,
        owner_id: str | None = None,
    ) -> list[Enrollment]:
        """Connect several records to a sequence in one unit of work: all of them or
        none (a list's or a view's selection added to a sequence at once).

        Each record is connected as `connect` connects it, in the order given, and
        the events of all of them are published together after the one commit. One
        command instead of one per record saves the per-command work (and, on SQL
        stores, a transaction per record).

        Args:
            records: The records (or their `RecordRef` values).
            sequence_id: The sequence.
            owner_id: Who gets the steps of every record; each record's own owner
                by default.

        Returns:
            The new enrollments, in the order of ``records``.

        Raises:
            ValidationError: ``records`` is not a list or tuple of records, or a
                record is of another type than the sequence's.
            NotFound: a record or the sequence does not exist.
            InvalidTransition: the sequence is inactive, a record is closed, or a
                record is on the sequence already (a record given twice is too);
                nothing is connected then.
        """
        if not isinstance(records, list | tuple):
            raise ValidationError(
                f"records={records!r} must be a list or tuple of records or RecordRef values",
                field="records",
                value=records,
            )
        refs = [as_ref(record) for record in records]
        with self._command() as work:
            return [self._connect_in(work, ref, sequence_id, owner_id) for ref in refs]

    # --- reads ------------------------------------------------------------------------

    def enrollment(self, enrollment_id: str) -> Enrollment:
        """The enrollment with ``enrollment_id`` (`NotFound` if there is none)."""
        with self._read() as uow:
            found = uow.find_enrollment(enrollment_id)
        if found is None:
            raise NotFound("Enrollment", enrollment_id)
        return found

    def enrollments(
        self,
        record: RecordRef | Record | None = None,
        *,
        sequence_id: str | None = None,
        running: bool = False,
    ) -> list[Enrollment]:
        """The enrollments of ``record`` and/or ``sequence_id``, only active and
        paused ones when ``running``, ordered by id."""
        ref = None if record is None else as_ref(record)
        with self._read() as uow:
            return uow.enrollments(record=ref, sequence_id=sequence_id, running=running)

    def sequence_diagram(self, enrollment_id: str) -> str:
        """A Mermaid flowchart of the enrollment's sequence version with its progress:
        the current step highlighted, the finished ones marked done
        (`salesflow.sequences.render.mermaid`)."""
        with self._read() as uow:
            found = uow.find_enrollment(enrollment_id)
            if found is None:
                raise NotFound("Enrollment", enrollment_id)
            stored = uow.find_definition(SEQUENCE, found.sequence_id, found.sequence_version)
            if stored is None:
                raise no_sequence(found.sequence_id, found.sequence_version)
            definition = self._decode(stored)
        progress = Progress(
            current=found.current_step, done=frozenset(h.step_id for h in found.history)
        )
        return mermaid(definition, progress=progress)

    def up_next(self, enrollment_id: str) -> UpNext:
        """The enrollment's current step (actionable, with its due time) and the steps
        after it (both branches after a condition)."""
        with self._read() as uow:
            found = uow.find_enrollment(enrollment_id)
            if found is None:
                raise NotFound("Enrollment", enrollment_id)
            stored = uow.find_definition(SEQUENCE, found.sequence_id, found.sequence_version)
            if stored is None:
                raise no_sequence(found.sequence_id, found.sequence_version)
            return rt.up_next(self._decode(stored), found)

    # --- seller and customer actions --------------------------------------------------

    def _move(
        self,
        enrollment_id: str,
        step: Callable[[Work, SequenceDefinition, Enrollment], _Advance],
    ) -> Enrollment:
        with self._command() as work:
            enrollment = work.uow.find_enrollment(enrollment_id)
            if enrollment is None:
                raise NotFound("Enrollment", enrollment_id)
            definition = self._definition(work, enrollment.sequence_id, enrollment.sequence_version)
            advance = step(work, definition, enrollment)
            if advance.enrollment is enrollment:
                return enrollment
            return self._apply(work, definition, enrollment, advance)

    def complete_step(
        self, enrollment_id: str, step_id: str, *, outcome: str | None = None
    ) -> Enrollment:
        """The seller did the current manual step (a call with its ``outcome``; which
        outcomes count as answered is ``RuntimeConfig.answered``). Its activity is
        completed and the enrollment moves on.

        Raises:
            NotFound: no such enrollment.
            InvalidTransition: not active, or ``step_id`` is not its current manual step.
        """
        return self._move(
            enrollment_id,
            lambda work, d, e: rt.complete_step(
                d,
                e,
                step_id,
                work.now,
                outcome=outcome,
                config=self.sequence_config,
                facts=self._facts(work, e),
            ),
        )

    def skip_step(self, enrollment_id: str, step_id: str) -> Enrollment:
        """The seller skipped the current manual step: its activity is canceled and a
        condition watching it takes the no branch.

        Raises:
            NotFound: no such enrollment.
            InvalidTransition: not active, or ``step_id`` is not its current manual step.
        """
        return self._move(
            enrollment_id,
            lambda work, d, e: rt.skip_step(
                d,
                e,
                step_id,
                work.now,
                config=self.sequence_config,
                facts=self._facts(work, e),
            ),
        )

    def snooze_step(self, enrollment_id: str, step_id: str, until: datetime) -> Enrollment:
        """Move the current manual step (and its activity) to ``until``; not for tasks.

        Raises:
            NotFound: no such enrollment.
            InvalidTransition: not active, not its current manual step, or a task.
            ValidationError: ``until`` is naive or not later than now and the due time.
        """
        return self._move(
            enrollment_id, lambda work, d, e: rt.snooze(d, e, step_id, until, work.now)
        )

    def assign_step(self, enrollment_id: str, step_id: str, owner_id: str | None) -> Enrollment:
        """Give the current manual step and its activity to ``owner_id`` (up next's
        "assign"); later steps still go to the enrollment's owner. Works on a paused
        enrollment too. Assigning to whoever has the step already changes nothing.
        (Delegating the step's activity with ``update_activity(owner_id=...)`` does
        the same.)

        Raises:
            NotFound: no such enrollment.
            InvalidTransition: ended, or ``step_id`` is not its current manual step.
            ValidationError: ``owner_id`` is not None or an id.
        """
        return self._move(
            enrollment_id,
            lambda work, d, e: rt.assign_step(d, e, step_id, owner_id, work.now),
        )

    def record_email_event(
        self, enrollment_id: str, step_id: str, event: EmailEvent | str
    ) -> Enrollment:
        """The customer opened, replied to, clicked in or downloaded from the email
        that ``step_id`` sent. A condition waiting on it is resolved (at its limit, or
        at once with ``advance_early``); a reply ends the enrollment when the sequence
        has ``exit_on_reply``. Events for an ended enrollment are ignored.

        Raises:
            NotFound: no such enrollment.
            ValidationError: ``step_id`` is not an email step, or ``event`` not an email event.
            InvalidTransition: that email has not been sent to the record yet.
        """
        return self._move(
            enrollment_id,
            lambda work, d, e: rt.record_email_event(
                d,
                e,
                step_id,
                event,
                work.now,
                config=self.sequence_config,
                facts=self._facts(work, e),
            ),
        )

    def pause_enrollment(self, enrollment_id: str) -> Enrollment:
        """Pause an active enrollment; its current step keeps the time it has left."""
        return self._move(enrollment_id, lambda work, d, e: rt.pause(d, e, work.now))

    def resume_enrollment(self, enrollment_id: str) -> Enrollment:
        """Resume a paused enrollment: due again after the time its step had left."""
        return self._move(
            enrollment_id,
            lambda work, d, e: rt.resume(
                d, e, work.now, config=self.sequence_config, facts=self._facts(work, e)
            ),
        )

    def disconnect(self, enrollment_id: str) -> Enrollment:
        """A user takes the record off its sequence (reason ``disconnected``); an open
        step's activity is canceled."""
        return self._move(
            enrollment_id,
            lambda work, d, e: rt.exit_enrollment(d, e, ExitReason.DISCONNECTED, work.now),
        )

    def change_enrollment_owner(self, enrollment_id: str, owner_id: str | None) -> Enrollment:
        """Give later steps to ``owner_id``; the current step stays with its owner.
        (Assigning the record to a new owner does this for all its enrollments.)"""
        return self._move(
            enrollment_id, lambda work, d, e: rt.change_owner(d, e, owner_id, work.now)
        )


def _published(stored: StoredDefinition, definition: SequenceDefinition) -> PublishedSequence:
    return PublishedSequence(
        definition=definition, state=stored.state, published_at=stored.published_at
    )
