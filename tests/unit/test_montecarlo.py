"""The Monte Carlo runner against the pure runtime it must agree with.

`drive` walks one record through `salesflow.sequences.runtime` the way the
runner's module docstring says a `ResponseModel` is played (the seller acts
``seller_delay`` after a step is due; an email's events arrive ``event_delay``
later, before anything due at the same instant). With probabilities of 0 or 1
both are deterministic, so every template must give exactly the same outcomes,
durations, activities and workload; with p = 0.3 the outcome shares must agree
within sampling error.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest

from salesflow.errors import InvalidDefinition, ValidationError
from salesflow.sequences import runtime as rt
from salesflow.sequences.definition import (
    ActivityStep,
    AdvanceStep,
    EmailEvent,
    SequenceDefinition,
    StepKind,
    step_kind,
)
from salesflow.sequences.enrollment import (
    Advance,
    CreateActivity,
    EnrollmentStatus,
    ExitReason,
    RuntimeConfig,
    SendEmail,
    SendSms,
    StaticFacts,
)
from salesflow.sequences.templates import TEMPLATES, load_template
from salesflow.testing import Funnel, ResponseModel, StepResponse, run_monte_carlo
from salesflow.testing.montecarlo import enrollment_id
from salesflow.values import RecordRef
from salesflow.worktime import Calendars, OrganizationCalendar

T0 = datetime(2026, 3, 4, 14, 30, tzinfo=UTC)  # a Wednesday afternoon
OUTBOUND = "high_volume_outbound_prospecting"
P30 = {"answered": 0.3, "no_answer": 0.7}


@attrs.frozen
class Walked:
    """One record walked through the runtime."""

    outcome: str
    duration: timedelta
    activities: Counter[str]
    due: Counter[tuple[str, str, date]]  # (owner, kind, local day) of each manual step


def drive(
    definition: SequenceDefinition,
    model: ResponseModel,
    *,
    index: int = 0,
    owner: str = "owner",
    config: RuntimeConfig = rt.DEFAULT_CONFIG,
    rng: random.Random | None = None,
    start: datetime = T0,
) -> Walked:
    """Walk record ``index`` through the runtime, playing ``model``."""
    rng = rng or random.Random(index)
    by_id = definition.by_id
    facts = model.facts if isinstance(model.facts, StaticFacts) else None
    pending: list[tuple[datetime, int, str, EmailEvent]] = []
    seq = itertools.count()
    activities: Counter[str] = Counter()
    due: Counter[tuple[str, str, date]] = Counter()
    zone = config.calendars.for_owner(owner).timezone

    def sent(step_id: str, variant: str | None, now: datetime) -> None:
        m = model.for_step(step_id, f"{step_id}:{variant}") if variant else model.for_step(step_id)
        if not m.opened or rng.random() >= m.opened:
            return
        at = now + m.event_delay
        heapq.heappush(pending, (at, next(seq), step_id, EmailEvent.OPENED))
        for p, event in (
            (m.replied, EmailEvent.REPLIED),
            (m.link_clicked, EmailEvent.LINK_CLICKED),
            (m.attachment_downloaded, EmailEvent.ATTACHMENT_DOWNLOADED),
        ):
            given = p / m.opened
            if given and (given >= 1 or rng.random() < given):
                heapq.heappush(pending, (at, next(seq), step_id, event))

    def note(advance: Advance, now: datetime) -> Any:
        for action in advance.actions:
            if isinstance(action, SendEmail):
                activities[step_kind(by_id[action.step_id]).value] += 1
                sent(action.step_id, action.variant, now)
            elif isinstance(action, SendSms):
                activities["auto_sms"] += 1
            elif isinstance(action, CreateActivity):
                due[owner, action.kind.value, action.due_at.astimezone(zone).date()] += 1
        return advance.enrollment

    now = start
    e = note(
        rt.start(
            definition,
            enrollment_id=enrollment_id(index),
            record=RecordRef(kind=definition.record_type, id=f"r{index}"),
            owner_id=owner,
            now=now,
            config=config,
            facts=facts,
        ),
        now,
    )
    while not e.ended:
        step = by_id[e.current_step]
        manual = isinstance(step, ActivityStep) and step.kind.manual
        m = model.for_step(step.id)
        at = e.due_at + (m.seller_delay if manual else timedelta(0))
        if pending and pending[0][0] <= at:
            now, _, step_id, event = heapq.heappop(pending)
            e = note(
                rt.record_email_event(
                    definition, e, step_id, event, now, config=config, facts=facts
                ),
                now,
            )
            continue
        now = at
        if not manual:
            e = note(rt.on_due(definition, e, now, config=config, facts=facts), now)
        elif m.skip and rng.random() < m.skip:
            e = note(rt.skip_step(definition, e, step.id, now, config=config, facts=facts), now)
        else:
            assert isinstance(step, ActivityStep)
            outcome = None
            if step.kind is StepKind.CALL:
                u, total = rng.random(), 0.0
                for name, p in m.call_outcomes:
                    total += p
                    if p and u < total:
                        outcome = name
                        break
                outcome = outcome or m.call_outcomes[-1][0]
            advance = rt.complete_step(
                definition, e, step.id, now, outcome=outcome, config=config, facts=facts
            )
            activities[step.kind.value] += 1
            if step.kind is StepKind.EMAIL:
                sent(step.id, None, now)
            e = note(advance, now)
    if e.status is EnrollmentStatus.COMPLETED:
        outcome = e.outcome or "completed"
    elif e.exit_reason is ExitReason.ADVANCED_TO_SEQUENCE:
        last = by_id[e.history[-1].step_id]
        assert isinstance(last, AdvanceStep)
        outcome = f"advanced_to:{last.sequence_id}"
    else:
        outcome = f"exited:{e.exit_reason}"
    return Walked(outcome, now - start, activities, due)


def nearest_rank(values: list[timedelta], share_num: int, share_den: int) -> timedelta:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share_num // share_den))
    return ordered[rank - 1]


def assert_agrees(
    funnel: Funnel,
    definition: SequenceDefinition,
    model: ResponseModel,
    *,
    owners: tuple[str, ...] = ("owner",),
    config: RuntimeConfig = rt.DEFAULT_CONFIG,
) -> None:
    """The funnel equals the runtime walked record by record (deterministic models)."""
    walks = [
        drive(definition, model, index=i, owner=owners[i % len(owners)], config=config)
        for i in range(funnel.records)
    ]
    outcomes = Counter(w.outcome for w in walks)
    assert funnel.outcomes == dict(outcomes)
    for outcome in outcomes:
        durations = [w.duration for w in walks if w.outcome == outcome]
        times = funnel.times[outcome]
        assert times.median == nearest_rank(durations, 1, 2)
        assert times.p90 == nearest_rank(durations, 9, 10)
        assert times.longest == max(durations)
    activities: Counter[str] = sum((w.activities for w in walks), Counter())
    assert {k: v for k, v in funnel.activities.items() if v} == dict(activities)
    due: Counter[tuple[str, str, date]] = sum((w.due for w in walks), Counter())
    simulated = {
        (load.owner_id, load.kind, day): count
        for load in funnel.workload
        for day, count in load.per_day.items()
    }
    assert simulated == dict(due)


def deterministic_models() -> Iterable[tuple[str, ResponseModel]]:
    yield "nobody answers", ResponseModel()
    yield "everyone answers", ResponseModel(call_outcomes={"answered": 1.0})
    yield (
        "replies at once",
        ResponseModel(opened=1, replied=1, event_delay=timedelta(0), call_outcomes={"busy": 1}),
    )
    yield (
        "opens only, slow seller",
        ResponseModel(opened=1, seller_delay=timedelta(hours=5), event_delay=timedelta(hours=30)),
    )
    yield "everything skipped", ResponseModel(skip=1, opened=1, replied=1)
    yield (
        "second call answered",
        ResponseModel(
            call_outcomes={"no_answer": 1.0},
            steps={
                "call_second": StepResponse(call_outcomes={"answered": 1.0}),
                "call_final": StepResponse(skip=1.0),
            },
        ),
    )


@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize("exit_on_reply", [False, True])
def test_deterministic_models_match_the_runtime_on_every_template(
    name: str, exit_on_reply: bool
) -> None:
    definition = attrs.evolve(load_template(name), exit_on_reply=exit_on_reply)
    known = definition.by_id
    for label, model in deterministic_models():
        steps = {k: v for k, v in model.steps.items() if k in known}
        model = attrs.evolve(model, steps=steps)
        funnel = run_monte_carlo(
            definition, records=4, model=model, seed=3, start=T0, owners=("ann", "bob")
        )
        assert funnel.records == 4, label
        assert_agrees(funnel, definition, model, owners=("ann", "bob"))


def test_working_time_config_matches_the_runtime() -> None:
    calendar = OrganizationCalendar(timezone="Europe/Vilnius", holidays=[date(2026, 3, 11)])
    config = RuntimeConfig(calendars=Calendars(organization=calendar), count_working_days=True)
    start = datetime(2026, 3, 27, 15, tzinfo=UTC)  # Friday before the DST change
    for name in TEMPLATES:
        definition = attrs.evolve(load_template(name), skip_non_working_time=True)
        for _, model in itertools.islice(deterministic_models(), 4):
            model = attrs.evolve(model, steps={})
            funnel = run_monte_carlo(
                definition, records=2, model=model, seed=1, start=start, config=config
            )
            walks = [drive(definition, model, index=i, config=config, start=start) for i in (0, 1)]
            assert funnel.outcomes == dict(Counter(w.outcome for w in walks))
            assert {t.longest for t in funnel.times.values()} == {w.duration for w in walks}


def test_the_worked_example_calls_move_to_working_days() -> None:
    # Outbound, nobody answers: three calls, the limits and waits between them in
    # calendar days, then in full working days (a wait starts at the next working day).
    definition = load_template(OUTBOUND)

    def call_days(config: RuntimeConfig) -> tuple[list[str], timedelta]:
        funnel = run_monte_carlo(
            definition, records=1, model=ResponseModel(), seed=1, start=T0, config=config
        )
        calls = {load.kind: sorted(load.per_day) for load in funnel.workload}["call"]
        return [d.isoformat() for d in calls], funnel.times["disqualified"].longest

    assert call_days(RuntimeConfig()) == (
        ["2026-03-04", "2026-03-09", "2026-03-12"],  # Wed, Mon, Thu
        timedelta(days=9),
    )
    assert call_days(RuntimeConfig(count_working_days=True)) == (
        ["2026-03-04", "2026-03-12", "2026-03-17"],  # Wed, next Thu, next Tue
        datetime(2026, 3, 18, 8, tzinfo=UTC) - T0,  # the last limit ends Wed 08:00
    )


def test_the_same_seed_gives_the_same_funnel_and_another_seed_another() -> None:
    definition = load_template(OUTBOUND)
    model = ResponseModel(call_outcomes=P30, skip=0.1, opened=0.5, replied=0.1)
    one = run_monte_carlo(definition, records=3000, model=model, seed=7, start=T0)
    two = run_monte_carlo(definition, records=3000, model=model, seed=7, start=T0)
    other = run_monte_carlo(definition, records=3000, model=model, seed=8, start=T0)
    assert one == two
    assert one.table() == two.table()
    assert one.outcomes != other.outcomes
    assert sum(one.outcomes.values()) == 3000


def test_reference_template_agrees_with_the_runtime_statistically() -> None:
    definition = load_template(OUTBOUND)
    model = ResponseModel(call_outcomes=P30)
    funnel = run_monte_carlo(definition, records=2000, model=model, seed=11, start=T0)
    rng = random.Random(12)
    walks = Counter(drive(definition, model, index=i, rng=rng).outcome for i in range(2000))
    expected = 1 - 0.7**3
    for share in (funnel.share("meeting_booked"), walks["meeting_booked"] / 2000):
        assert abs(share - expected) < 0.04
    first = funnel.step("answered_first_call")
    assert first.yes_share is not None
    assert abs(first.yes_share - 0.3) < 0.04
    assert funnel.step("linkedin_connect").conversion("meeting_booked") == 1.0
    assert funnel.step("disqualify").conversion("meeting_booked") == 0.0


@pytest.mark.parametrize("name", ["no_show_follow_up", "webinar_follow_up"])
def test_email_templates_agree_with_the_runtime_statistically(name: str) -> None:
    definition = attrs.evolve(load_template(name), exit_on_reply=True)
    model = ResponseModel(opened=0.6, replied=0.2, call_outcomes=P30, skip=0.1)
    funnel = run_monte_carlo(definition, records=2000, model=model, seed=5, start=T0)
    rng = random.Random(6)
    walks = Counter(drive(definition, model, index=i, rng=rng).outcome for i in range(1000))
    for outcome in set(walks) | set(funnel.outcomes):
        assert abs(funnel.share(outcome) - walks[outcome] / 1000) < 0.07, outcome


def test_the_funnel_table_names_outcomes_steps_and_workload() -> None:
    funnel = run_monte_carlo(
        load_template(OUTBOUND),
        records=500,
        model=ResponseModel(call_outcomes=P30),
        seed=1,
        start=T0,
        owners=("ann", "bob"),
    )
    text = funnel.table()
    assert "meeting_booked" in text
    assert "answered_first_call" in text
    assert "ann" in text
    assert "bob" in text
    titles = [title for title, _ in funnel.rows()]
    assert titles[1:] == ["steps", "workload (manual steps due per day)"]
    assert funnel.goal == "meeting_booked"
    assert funnel.steps_entered > 500 * 5


def test_progress_is_reported_and_ends_at_the_total() -> None:
    seen: list[tuple[int, int]] = []
    run_monte_carlo(
        load_template(OUTBOUND),
        records=25_000,
        model=ResponseModel(),
        seed=1,
        start=T0,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(10_000, 25_000), (20_000, 25_000), (25_000, 25_000)]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: ResponseModel(replied=1.5), "ResponseModel.replied"),
        (lambda: ResponseModel(opened=-0.1), "ResponseModel.opened"),
        (lambda: ResponseModel(opened=0.1, replied=0.2), "ResponseModel.replied"),
        (lambda: ResponseModel(call_outcomes={"answered": 0.3}), "call_outcomes"),
        (lambda: ResponseModel(skip=True), "ResponseModel.skip"),
        (lambda: ResponseModel(seller_delay=timedelta(hours=-1)), "ResponseModel.seller_delay"),
        (lambda: ResponseModel(steps={"x": StepResponse(skip=2)}), "StepResponse.skip"),
        (lambda: ResponseModel(steps={"x": 1}), "ResponseModel.steps"),
        (
            lambda: ResponseModel(opened=0.5, steps={"x": StepResponse(replied=0.9)}),
            "ResponseModel.steps['x'].replied",
        ),
        (lambda: ResponseModel(facts=42), "ResponseModel.facts"),
    ],
)
def test_a_bad_model_names_the_field(build: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build()
    assert caught.value.field == field
    assert "must" in str(caught.value) or "exceeds" in str(caught.value)


def test_bad_run_arguments_are_refused() -> None:
    definition = load_template(OUTBOUND)
    model = ResponseModel()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"records": 0}, "records"),
        ({"owners": ()}, "owners"),
        ({"owners": "ann"}, "owners"),
        ({"start": datetime(2026, 3, 4)}, "start"),
        ({"goal": "won"}, "goal"),
        ({"horizon": timedelta(0)}, "horizon"),
    ]
    for change, field in cases:
        kwargs: dict[str, Any] = {"records": 10, "model": model, "seed": 1, "start": T0}
        kwargs.update(change)
        with pytest.raises(ValidationError) as caught:
            run_monte_carlo(definition, **kwargs)
        assert caught.value.field == field
    with pytest.raises(ValidationError, match="no such step"):
        run_monte_carlo(
            definition,
            records=1,
            model=ResponseModel(steps={"nope": StepResponse(skip=1)}),
            seed=1,
            start=T0,
        )
    broken = attrs.evolve(definition, entry="nowhere")
    with pytest.raises(InvalidDefinition):
        run_monte_carlo(broken, records=1, model=model, seed=1, start=T0)
