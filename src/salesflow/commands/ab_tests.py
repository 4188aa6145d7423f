"""A/B test decisions of `Salesflow` (see `salesflow.sequences.abtest` for the rule).

When an A/B test step of a sequence version sends its first email, the engine
schedules a due item (kind ``sequence.ab_test``) that checks the test every
`CHECK_EVERY` until it is decided: by a significant difference, or at the
deadline (``deadline`` after that first email) for the default variant. The
decision is stored once per sequence version and step (a definition of kind
``ab_winner``, its state the winning variant) and published as `ABTestDecided`;
from then on every enrollment reaching the step is sent the winner.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from salesflow.commands.sequence_runs import SEQUENCE, SequenceRuns
from salesflow.commands.work import Work
from salesflow.definitions import StoredDefinition
from salesflow.due import DueItem
from salesflow.errors import NotFound, ValidationError
from salesflow.events import Event
from salesflow.sequences.abtest import ABTally, decide, tally
from salesflow.sequences.definition import ABTestStep
from salesflow.sequences.enrollment import Enrollment

__all__ = ["AB_DUE", "AB_WINNER", "CHECK_EVERY", "ABTestCommands", "ABTestDecided", "ABTestResult"]

AB_DUE = "sequence.ab_test"
"""The due item kind that checks an undecided A/B test."""

AB_WINNER = "ab_winner"
"""The definition kind that stores an A/B test's decision."""

CHECK_EVERY = timedelta(hours=6)
"""How often an undecided A/B test is checked for a significant difference."""


def _test_id(sequence_id: str, version: int, step_id: str) -> str:
    return f"{sequence_id}@{version}:{step_id}"


@attrs.frozen(kw_only=True)
class ABTestDecided(Event):
    """An A/B test step of a sequence version was decided (``reason``:
    ``significant`` or ``deadline``)."""

    sequence_id: str
    sequence_version: int
    step_id: str
    winner: str
    reason: str


@attrs.frozen(kw_only=True)
class ABTestResult:
    """Where an A/B test stands.

    Attributes:
        sequence_id: The sequence.
        sequence_version: Its version (each version is its own test).
        step_id: The A/B test step.
        tally: Emails sent and metric events per variant, counted now.
        winner: The decided variant, or None while undecided.
        reason: ``significant`` or ``deadline`` once decided.
        decided_at: When it was decided.
    """

    sequence_id: str
    sequence_version: int
    step_id: str
    tally: ABTally
    winner: str | None = None
    reason: str | None = None
    decided_at: datetime | None = None


class ABTestCommands(SequenceRuns):
    """A/B tests: the decision's due item, the winner lookups, and `ab_test_result`."""

    _ab_winners: dict[str, str]

    def ab_test_result(
        self, sequence_id: str, step_id: str, *, version: int | None = None
    ) -> ABTestResult:
        """The tally and decision of an A/B test step (the latest version by default).

        Raises:
            NotFound: no such sequence or version.
            ValidationError: ``step_id`` is not an A/B test step of it.
        """
        with self._command() as work:
            stored = self._stored_sequence(work, sequence_id, version)
            step = self._ab_step(work, sequence_id, stored.version, step_id)
            counts = tally(step, self._version_enrollments(work, sequence_id, stored.version))
            decision = work.uow.find_definition(
                AB_WINNER, _test_id(sequence_id, stored.version, step_id)
            )
        return ABTestResult(
            sequence_id=sequence_id,
            sequence_version=stored.version,
            step_id=step_id,
            tally=counts,
            winner=None if decision is None else decision.state,
            reason=None if decision is None else str(decision.document.get("reason")),
            decided_at=None if decision is None else decision.published_at,
        )

    def _ab_step(self, work: Work, sequence_id: str, version: int, step_id: str) -> ABTestStep:
        step = self._definition(work, sequence_id, version).by_id.get(step_id)
        if not isinstance(step, ABTestStep):
            raise ValidationError(
                f"sequence {sequence_id!r} version {version} has no A/B test step {step_id!r}",
                field="step_id",
                value=step_id,
            )
        return step

    def _version_enrollments(self, work: Work, sequence_id: str, version: int) -> list[Enrollment]:
        return [
            e
            for e in work.uow.enrollments(sequence_id=sequence_id)
            if e.sequence_version == version
        ]

    def _ab_winner(self, work: Work, sequence_id: str, version: int, step_id: str) -> str | None:
        test = _test_id(sequence_id, version, step_id)
        # a decision never changes once stored, so a found one is kept in memory
        known = self._ab_winners.get(test)
        if known is not None:
            return known
        decision = work.uow.find_definition(AB_WINNER, test)
        if decision is None:
            return None
        self._ab_winners[test] = decision.state
        return decision.state

    def _ab_sent(self, work: Work, e: Enrollment, step_id: str) -> None:
        if self._ab_winner(work, e.sequence_id, e.sequence_version, step_id) is not None:
            return
        step = self._ab_step(work, e.sequence_id, e.sequence_version, step_id)
        deadline = work.now + step.deadline.delta
        test = _test_id(e.sequence_id, e.sequence_version, step_id)
        # idempotent by key: only the test's first email schedules the checks
        work.schedule_due(
            AB_DUE,
            min(work.now + CHECK_EVERY, deadline),
            payload={
                "sequence_id": e.sequence_id,
                "version": e.sequence_version,
                "step_id": step_id,
                "deadline": deadline.isoformat(),
            },
            key=f"ab:{test}",
        )

    def _ab_due(self, work: Work, item: DueItem) -> None:
        """Handler of ``sequence.ab_test`` items: decide the test or check again later."""
        payload = item.payload
        try:
            sequence_id = str(payload["sequence_id"])
            version = int(payload["version"])
            step_id = str(payload["step_id"])
            deadline = datetime.fromisoformat(str(payload["deadline"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"due item {item.id!r} is not an A/B test check: {exc}",
                field="payload",
                value=payload,
            ) from exc
        if self._ab_winner(work, sequence_id, version, step_id) is not None:
            return
        if work.uow.find_definition(SEQUENCE, sequence_id, version) is None:
            raise NotFound("Sequence", f"{sequence_id} version {version}")
        step = self._ab_step(work, sequence_id, version, step_id)
        counts = tally(step, self._version_enrollments(work, sequence_id, version))
        decision = decide(step, counts, deadline_passed=work.now >= deadline)
        test = _test_id(sequence_id, version, step_id)
        if decision is None:
            assert item.key is not None
            work.cancel_due_by_key(item.key)
            work.schedule_due(
                AB_DUE, min(work.now + CHECK_EVERY, deadline), payload=payload, key=item.key
            )
            return
        winner, reason = decision
        work.uow.add_definition(
            StoredDefinition(
                kind=AB_WINNER,
                id=test,
                version=1,
                state=winner,
                document={"reason": reason, **attrs.asdict(counts)},
                published_at=work.now,
            )
        )
        work.events.append(
            ABTestDecided(
                occurred_at=work.now,
                sequence_id=sequence_id,
                sequence_version=version,
                step_id=step_id,
                winner=winner,
                reason=reason,
            )
        )
