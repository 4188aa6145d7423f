"""Random valid sequences run through the engine on every store.

Graphs come from ``test_sequence_graphs.valid_definitions``; a few records of the
sequence's record type are connected, then a random stream of actions is applied
(complete the current manual step with a random call outcome, skip it, snooze it,
an email event on a sent email step, pause/resume, the clock moving to the next due
time or a few hours on). What holds:

* no enrollment is ever stuck: an active one sits on a manual step or has exactly
  one ``sequence.step`` due item at its ``due_at``; paused and ended ones have none;
* actions the engine refuses (`InvalidTransition`, `ValidationError`) change nothing;
* the same inputs give the same enrollments, timelines and due items on the memory
  store, SQLite and PostgreSQL;
* saving and restoring mid-stream (``MemoryStore.load(store.dump())``, or closing
  and reopening a SQLite file) gives the same end state as not doing it;
* when the seller completes every manual step at once and nothing is paused or
  snoozed, every enrollment ends no later than ``stats(definition).longest`` after
  it was connected.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sequence_graphs import valid_definitions

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import InvalidDefinition, InvalidTransition, ValidationError
from salesflow.sequences.definition import (
    ABTestStep,
    ActivityStep,
    EmailEvent,
    EndStep,
    SequenceDefinition,
    SetStatusStep,
    Span,
    StepKind,
    UpdateFieldStep,
    WaitStep,
)
from salesflow.sequences.enrollment import Enrollment, EnrollmentStatus
from salesflow.sequences.validation import ProblemCode, stats, validate
from salesflow.stores.base import Store
from salesflow.stores.codec import encode_enrollment
from salesflow.stores.memory import MemoryStore
from salesflow.stores.url import open_store
from salesflow.testing.simulate import simulate
from salesflow.values import RecordKind, RecordRef

DSN = os.environ.get("SALESFLOW_PG_DSN", "")
needs_server = pytest.mark.skipif(
    not DSN, reason="SALESFLOW_PG_DSN is not set; the PostgreSQL cases need a server"
)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
STEP_DUE = "sequence.step"
OUTCOMES = ["answered", "no_answer", "busy"]
EVENTS = [e.value for e in EmailEvent]
EMAIL_KINDS = {StepKind.EMAIL, StepKind.AUTO_EMAIL, StepKind.AB_TEST}
REFUSED = (InvalidTransition, ValidationError)
EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


definitions = valid_definitions()

# An action is (op, a, b): ``a`` picks the enrollment, ``b`` the detail.
actions = st.lists(
    st.tuples(st.integers(0, 9), st.integers(0, 99), st.integers(0, 99)), max_size=25
)


# --- the world: definitions, engines, records ------------------------------------------


def follow_ups(record_type: RecordKind) -> list[SequenceDefinition]:
    """The ``next-1..3`` sequences that generated advance steps move records to."""
    return [
        SequenceDefinition(
            id=f"next-{i}",
            name=f"Follow-up {i}",
            record_type=record_type,
            entry="first",
            steps=[
                ActivityStep(id="first", kind="call", subject="Follow-up call", next="pause")
                if i == 1
                else ActivityStep(id="first", kind="auto_email", subject="Follow-up", next="pause"),
                WaitStep(id="pause", span=Span(hours=6 * i), next="wrap"),
                ActivityStep(id="wrap", kind="task", subject="Wrap up", next="done"),
                EndStep(id="done", outcome="lost"),
            ],
        )
        for i in range(1, 4)
    ]


class Counters:
    """Deterministic ids that keep counting across engines (save/restore)."""

    def __init__(self) -> None:
        self.records = itertools.count(1)
        self.due = itertools.count(1)
        self.enrollments = itertools.count(1)

    def engine(self, store: Store, clock: FakeClock) -> Salesflow:
        return Salesflow(
            store,
            clock=clock,
            ids=lambda kind: f"{kind.value}-{next(self.records)}",
            due_ids=lambda: f"due-{next(self.due)}",
            enrollment_ids=lambda: f"enr-{next(self.enrollments)}",
        )


def create_record(engine: Salesflow, kind: RecordKind, n: int) -> RecordRef:
    """Record ``n``: it (an account or a deal: its contact) can be sent automated
    emails and SMS, except the third, whose recipient refused email, so the runs
    cover the enrollment that ends in error at its first automated email too."""
    address: dict[str, Any] = {
        "email": f"name{n}@example.com",
        "mobile_phone": "+1 555 0100",
        "do_not_email": n == 2,
    }
    if kind is RecordKind.LEAD:
        record: Any = engine.create_lead(
            topic=f"Topic {n}", last_name=f"Name{n}", owner_id="ann", **address
        )
        return RecordRef(kind=kind, id=record.id)
    contact = engine.create_contact(last_name=f"Name{n}", owner_id="ann", **address)
    if kind is RecordKind.CONTACT:
        record = contact
    elif kind is RecordKind.ACCOUNT:
        record = engine.create_account(
            name=f"Account {n}", owner_id="ann", primary_contact_id=contact.id
        )
    else:
        record = engine.create_opportunity(name=f"Deal {n}", owner_id="ann", contact_id=contact.id)
    return RecordRef(kind=kind, id=record.id)


class Run:
    """One engine on one store, driven by a stream of actions."""

    def __init__(
        self,
        definition: SequenceDefinition,
        records: int,
        open_: Callable[[], Store],
        *,
        check: bool = True,
    ) -> None:
        self.open = open_
        self.clock = FakeClock(T0)
        self.counters = Counters()
        self.engine = self.counters.engine(open_(), self.clock)
        self.check = check
        self.definitions = {d.id: d for d in [definition, *follow_ups(definition.record_type)]}
        self.trace: list[Any] = []
        for d in self.definitions.values():
            if d.id != definition.id:
                self.engine.publish_sequence(d)
        self.engine.publish_sequence(definition)
        self.records = [
            create_record(self.engine, definition.record_type, n) for n in range(records)
        ]
        self.connected: dict[str, datetime] = {}
        for ref in self.records:
            self.attempt(partial(self.engine.connect, ref, definition.id))
        self.checked()
        self.seen()

    # --- state -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        e = self.engine
        return {
            "now": self.clock.now(),
            "enrollments": [encode_enrollment(x) for x in e.enrollments()],
            "due": [(d.id, d.kind, d.due_at, d.subject, d.payload) for d in e.due_items()],
            "timelines": {
                str(ref): [
                    (a.id, a.kind.value, a.subject, a.state.value, a.due_at, a.closed_at, a.outcome)
                    for a in e.timeline(ref)
                ]
                for ref in self.records
            },
        }

    def checked(self) -> None:
        """Assert that no enrollment is stuck."""
        if not self.check:
            return
        due = self.engine.due_items()
        for e in self.engine.enrollments():
            mine = [d for d in due if d.kind == STEP_DUE and d.payload.get("enrollment_id") == e.id]
            if e.status is EnrollmentStatus.ACTIVE:
                if self.manual(e) is not None:
                    current = self.engine.up_next(e.id).current
                    assert current is not None, e
                    assert current.kind.manual, (e, current)
                    assert len(mine) <= 1, (e, mine)
                else:
                    assert e.due_at is not None, e
                    assert [d.due_at for d in mine] == [e.due_at], (e, mine)
            else:
                assert mine == [], (e, mine)
                if e.status is not EnrollmentStatus.PAUSED:
                    assert e.current_step is None, e
                    assert e.due_at is None, e

    def seen(self) -> None:
        """Note when each enrollment was first seen: when it was connected."""
        for e in self.engine.enrollments():
            self.connected.setdefault(e.id, self.clock.now())

    def manual(self, e: Enrollment) -> ActivityStep | None:
        d = self.definitions[e.sequence_id]
        step = d.by_id.get(e.current_step) if e.current_step else None
        return step if isinstance(step, ActivityStep) and step.kind.manual else None

    def attempt(self, action: Callable[[], object], *, refused: bool | None = False) -> None:
        """Do ``action``: refused (True) or accepted (False) as said, or either (None).
        When the engine refuses it, nothing may have changed."""
        before = self.state()
        error: Exception | None = None
        try:
            action()
        except REFUSED as raised:
            error = raised
        if error is not None:
            assert refused is not False, f"the engine refused a valid action: {error}"
            self.trace.append(("refused", type(error).__name__))
            assert self.state() == before, "a refused action changed the state"
            return
        assert not refused, "the engine accepted an action it must refuse"
        self.trace.append("done")

    # --- actions -----------------------------------------------------------------------

    def to_next_due(self) -> None:
        at = self.engine.next_due_at()
        if at is not None:
            simulate(self.engine, until=max(at, self.clock.now()))

    def apply(self, op: int, a: int, b: int) -> None:
        running = self.engine.enrollments(running=True)
        if not running or op in (6, 7):
            self.to_next_due()
        elif op == 9:
            simulate(self.engine, until=self.clock.now() + timedelta(hours=b % 48))
        else:
            self.act_on(running[a % len(running)], op, b)
        self.trace.append(self.clock.now())
        self.checked()

    def act_on(self, e: Enrollment, op: int, b: int) -> None:
        eng = self.engine
        definition = self.definitions[e.sequence_id]
        step = self.manual(e)
        sent = sorted(
            # a manual email the seller completed was sent by hand: events count too
            {h.step_id for h in e.history if h.kind in EMAIL_KINDS and h.outcome != "skipped"}
        )
        if op == 5:
            if e.status is EnrollmentStatus.PAUSED:
                self.attempt(lambda: eng.resume_enrollment(e.id))
            else:
                self.attempt(lambda: eng.pause_enrollment(e.id))
        elif op == 4 and sent:
            event = EVENTS[b % len(EVENTS)]
            self.attempt(lambda: eng.record_email_event(e.id, sent[b % len(sent)], event))
        elif op == 8:
            self.refused(e, definition, step, sent, b)
        elif e.status is EnrollmentStatus.PAUSED or step is None:
            self.to_next_due()
        elif op in (0, 1, 4):
            outcome = OUTCOMES[b % 3] if step.kind is StepKind.CALL else None
            self.attempt(lambda: eng.complete_step(e.id, step.id, outcome=outcome))
        elif op == 2:
            self.attempt(lambda: eng.skip_step(e.id, step.id))
        else:
            assert e.due_at is not None
            until = max(self.clock.now(), e.due_at) + timedelta(hours=1 + b % 24)
            self.attempt(
                lambda: eng.snooze_step(e.id, step.id, until),
                refused=step.kind is StepKind.TASK,
            )

    def refused(
        self,
        e: Enrollment,
        definition: SequenceDefinition,
        step: ActivityStep | None,
        sent: list[str],
        b: int,
    ) -> None:
        """An action the engine must refuse, chosen by ``b``."""
        eng = self.engine
        other = sorted(
            s.id
            for s in definition.steps
            if isinstance(s, ActivityStep) and s.kind.manual and s.id != e.current_step
        )
        unsent = sorted(
            s.id
            for s in definition.steps
            if isinstance(s, ActivityStep | ABTestStep)
            and (isinstance(s, ABTestStep) or s.kind in EMAIL_KINDS)
            and s.id not in sent
        )
        choice = b % 4
        if choice == 0 and other:
            self.attempt(lambda: eng.complete_step(e.id, other[b % len(other)]), refused=True)
        elif choice == 1 and step is not None and step.kind is StepKind.TASK:
            until = self.clock.now() + timedelta(days=1)
            self.attempt(lambda: eng.snooze_step(e.id, step.id, until), refused=True)
        elif choice == 2 and step is not None and e.status is EnrollmentStatus.ACTIVE:
            # snoozing to the past
            until = self.clock.now() - timedelta(hours=1)
            self.attempt(lambda: eng.snooze_step(e.id, step.id, until), refused=True)
        elif choice == 3 and unsent and not e.ended:
            target = unsent[b % len(unsent)]
            self.attempt(lambda: eng.record_email_event(e.id, target, "opened"), refused=True)
        else:
            self.attempt(lambda: eng.skip_step(e.id, "no-such-step"), refused=True)

    def drain(self, moves: int = 200) -> None:
        """Complete every manual step at once and let due times come, to the end."""
        for _ in range(moves):
            running = self.engine.enrollments(running=True)
            if not running:
                return
            paused = [e for e in running if e.status is EnrollmentStatus.PAUSED]
            manual = [(e, s) for e in running if (s := self.manual(e)) is not None]
            if paused:
                self.engine.resume_enrollment(paused[0].id)
            elif manual:
                e, step = manual[0]
                outcome = "answered" if step.kind is StepKind.CALL else None
                self.engine.complete_step(e.id, step.id, outcome=outcome)
            else:
                self.to_next_due()
            self.checked()
            self.seen()
        raise AssertionError(f"enrollments still running after {moves} moves")

    def reopen(self, open_: Callable[[Store], Store]) -> None:
        """Swap the store for ``open_(old store)``; same clock, ids continue."""
        self.engine = self.counters.engine(open_(self.engine.store), self.clock)


def play(
    run: Run, stream: list[tuple[int, int, int]], restore_at: int = -1, reopen: Any = None
) -> tuple[dict[str, Any], list[Any]]:
    for i, (op, a, b) in enumerate(stream):
        if i == restore_at:
            run.reopen(reopen)
        run.apply(op, a, b)
    run.drain()
    return run.state(), run.trace


# --- stores --------------------------------------------------------------------------


def memory() -> Store:
    return MemoryStore()


def restored(store: Store) -> Store:
    assert isinstance(store, MemoryStore)
    return MemoryStore.load(store.dump())


@pytest.fixture(scope="module")
def folder() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as name:
        yield name


def sqlite_in(folder: str) -> Callable[[], Store]:
    path = os.path.join(folder, f"{uuid4().hex}.db")
    return lambda: open_store(f"sqlite:///{path}")


def reopened_sqlite(url_store: Callable[[], Store]) -> Callable[[Store], Store]:
    def reopen(store: Store) -> Store:
        store.close()
        return url_store()

    return reopen


@pytest.fixture(scope="module")
def pg_schemas() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    if names:
        import psycopg
        from psycopg import sql

        with psycopg.connect(DSN, autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


def postgres_in(names: list[str]) -> Callable[[], Store]:
    name = f"seqprop_{uuid4().hex[:12]}"
    names.append(name)
    separator = "&" if "?" in DSN else "?"
    return lambda: open_store(f"{DSN}{separator}schema={name}")


# --- properties ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=needs_server)])
@EXAMPLES
@given(definition=definitions, records=st.integers(1, 3), stream=actions)
def test_every_store_runs_the_same_and_nothing_is_stuck(
    kind: str,
    folder: str,
    pg_schemas: list[str],
    definition: SequenceDefinition,
    records: int,
    stream: list[tuple[int, int, int]],
) -> None:
    expected = play(Run(definition, records, memory), stream)
    open_ = sqlite_in(folder) if kind == "sqlite" else postgres_in(pg_schemas)
    run = Run(definition, records, open_)
    try:
        got = play(run, stream)
    finally:
        run.engine.close()
    assert got[1] == expected[1], "the stores accepted or refused different actions"
    assert got[0] == expected[0]


@EXAMPLES
@given(
    definition=definitions,
    records=st.integers(1, 3),
    stream=actions,
    restore=st.integers(0, 25),
)
def test_save_and_restore_mid_stream_changes_nothing(
    folder: str,
    definition: SequenceDefinition,
    records: int,
    stream: list[tuple[int, int, int]],
    restore: int,
) -> None:
    expected = play(Run(definition, records, memory, check=False), stream)
    assert play(Run(definition, records, memory), stream, restore, restored) == expected
    url_store = sqlite_in(folder)
    run = Run(definition, records, url_store, check=False)
    try:
        assert play(run, stream, restore, reopened_sqlite(url_store)) == expected
    finally:
        run.engine.close()


@EXAMPLES
@given(definition=definitions, records=st.integers(1, 3))
def test_a_seller_acting_at_once_ends_within_the_longest_path(
    definition: SequenceDefinition, records: int
) -> None:
    run = Run(definition, records, memory)
    run.drain()
    for e in run.engine.enrollments():
        assert e.ended, e
        started = run.connected[e.id]
        ended = max((h.at for h in e.history), default=started)
        longest = stats(run.definitions[e.sequence_id]).longest
        assert ended - started <= longest, (e.id, ended - started, longest)


# --- engine bugs found by these properties --------------------------------------------


def closing_then_editing(entry: str) -> SequenceDefinition:
    """A valid lead sequence whose ``set_status`` closes the lead before an
    ``update_field`` step: ``validate()`` accepts it, the engine cannot run it."""
    first = (
        ActivityStep(id="first", kind="call", subject="Call", next="disqualify")
        if entry == "call"
        else WaitStep(id="first", span=Span(hours=1), next="disqualify")
    )
    return SequenceDefinition(
        id="s",
        name="Closing then editing",
        record_type="lead",
        entry="first",
        steps=[
            first,
            SetStatusStep(id="disqualify", status="disqualified", reason="lost", next="rate"),
            UpdateFieldStep(id="rate", field="rating", value="hot", next="end"),
            EndStep(id="end", outcome="lead_disqualified"),
        ],
    )


@pytest.mark.parametrize("entry", ["call", "wait"])
def test_a_step_after_a_closing_set_status_is_refused_before_it_can_get_stuck(
    entry: str,
) -> None:
    # found by these properties: the engine could not perform an edit of a record a
    # set_status step had closed, and the enrollment got stuck; validate() now
    # refuses such graphs, so they can never be published
    definition = closing_then_editing(entry)
    assert [p.code for p in validate(definition)] == [ProblemCode.STEP_AFTER_CLOSE]
    engine = Salesflow(clock=FakeClock(T0))
    with pytest.raises(InvalidDefinition, match="closes it"):
        engine.publish_sequence(definition)
