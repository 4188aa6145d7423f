"""The Monte Carlo experiment through the real engine, and `salesflow simulate`."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from salesflow.cli import main, simulate_template
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import ValidationError
from salesflow.sequences.templates import TEMPLATES, load_template
from salesflow.stores.url import open_store
from salesflow.testing import ResponseModel, run_monte_carlo
from salesflow.testing.engine_run import run_on_engine
from salesflow.values import RecordRef

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def engine_on(url: str = "memory://") -> Salesflow:
    ids = itertools.count(1)
    return Salesflow(
        open_store(url),
        clock=FakeClock(T0),
        ids=lambda kind: f"{kind.value}-{next(ids)}",
        due_ids=lambda: f"due-{next(ids)}",
        enrollment_ids=lambda: f"enr-{next(ids)}",
    )


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("answered", [0.0, 1.0])
def test_a_certain_model_gives_the_monte_carlo_funnel_exactly(name: str, answered: float) -> None:
    """With probabilities 0 or 1 nothing is left to chance, so the engine and the
    in-memory runner must agree on every figure but the workload's days."""
    definition = load_template(name)
    model = ResponseModel(
        call_outcomes={"answered": answered, "no_answer": 1 - answered},
        opened=answered,
        replied=answered,
    )
    engine = engine_on()
    engine.publish_sequence(definition)
    through_engine = run_on_engine(engine, definition.id, records=6, model=model, seed=3)
    in_memory = run_monte_carlo(definition, records=6, model=model, seed=3, start=T0)
    assert through_engine.outcomes == in_memory.outcomes
    assert through_engine.times == in_memory.times
    assert [(s.step_id, s.reached, s.performed, s.declined) for s in through_engine.steps] == [
        (s.step_id, s.reached, s.performed, s.declined) for s in in_memory.steps
    ]
    assert through_engine.activities == {k: n for k, n in in_memory.activities.items() if n}


def test_the_engine_run_agrees_with_the_runner_in_distribution() -> None:
    definition = load_template("high_volume_outbound_prospecting")
    model = ResponseModel(call_outcomes={"answered": 0.3, "no_answer": 0.7})
    engine = engine_on()
    engine.publish_sequence(definition)
    through_engine = run_on_engine(engine, definition.id, records=400, model=model, seed=9)
    in_memory = run_monte_carlo(definition, records=4000, model=model, seed=9, start=T0)
    # 1 - 0.7**3 = 65.7 % book a meeting; 400 records keep within ~3 standard errors
    assert abs(through_engine.share("meeting_booked") - 0.657) < 0.075
    assert abs(in_memory.share("meeting_booked") - 0.657) < 0.025
    assert engine.enrollments(running=True) == []
    assert engine.due_items() == []


def test_the_same_seed_gives_the_same_engine_run() -> None:
    definition = load_template("webinar_follow_up")
    model = ResponseModel(
        call_outcomes={"answered": 0.5, "no_answer": 0.5}, opened=0.5, replied=0.2, skip=0.1
    )
    runs = []
    for _ in range(2):
        engine = engine_on()
        engine.publish_sequence(definition)
        runs.append(run_on_engine(engine, definition.id, records=30, model=model, seed=5))
    assert runs[0] == runs[1]


def test_records_created_beforehand_give_the_same_run() -> None:
    """A benchmark creates the leads first (to time that apart): connecting them
    plays the same run as letting `run_on_engine` create them."""
    definition = load_template("high_volume_outbound_prospecting")
    model = ResponseModel(call_outcomes={"answered": 0.3, "no_answer": 0.7})
    runs = []
    for given in (False, True):
        engine = engine_on()
        engine.publish_sequence(definition)
        records: int | list[RecordRef] = 40
        if given:
            records = [
                engine.create_lead(
                    topic=f"Simulated {i}",
                    last_name=f"Simulated {i}",
                    owner_id="owner",
                    email=f"simulated{i}@example.com",
                    mobile_phone="+1 555 0100",
                ).ref
                for i in range(40)
            ]
        runs.append(run_on_engine(engine, definition.id, records=records, model=model, seed=4))
    assert runs[0] == runs[1]
    assert runs[0].records == 40


def test_run_on_engine_refuses_a_real_clock_and_no_records() -> None:
    definition = load_template("no_show_follow_up")
    engine = Salesflow()
    engine.publish_sequence(definition)
    with pytest.raises(ValidationError, match="FakeClock"):
        run_on_engine(engine, definition.id, records=1, model=ResponseModel(), seed=1)
    faked = engine_on()
    faked.publish_sequence(definition)
    with pytest.raises(ValidationError, match="records=0"):
        run_on_engine(faked, definition.id, records=0, model=ResponseModel(), seed=1)
    for refs in ([], ["lead-1"]):
        with pytest.raises(ValidationError, match="sequence of RecordRef"):
            run_on_engine(faked, definition.id, records=refs, model=ResponseModel(), seed=1)  # type: ignore[arg-type]


def test_simulate_prints_the_funnel_in_memory_and_through_a_store(tmp_path: Path) -> None:
    out = io.StringIO()
    simulate_template("no_show_follow_up", records=200, seed=2, out=out)
    text = out.getvalue()
    assert "simulated 200 records in memory" in text
    assert "no_show_follow_up v1: 200 records, seed 2" in text
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    out = io.StringIO()
    simulate_template("no_show_follow_up", records=20, seed=2, store_url=url, out=out)
    assert f"through the engine on {url}" in out.getvalue()
    engine = Salesflow(open_store(url))
    try:
        assert len(engine.enrollments()) == 20
        assert engine.enrollments(running=True) == []
    finally:
        engine.close()


def test_the_simulate_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "invite_to_upcoming_event", "--records", "100", "--seed", "4"]) == 0
    assert "invite_to_upcoming_event v1: 100 records, seed 4" in capsys.readouterr().out
    assert main(["simulate", "no_such_template", "--records", "10"]) == 1
    assert "no_such_template" in capsys.readouterr().err


def test_the_horizon_leaves_long_runs_active() -> None:
    definition = load_template("upcoming_account_renewal")  # 50 days long
    engine = engine_on()
    engine.publish_sequence(definition)
    funnel = run_on_engine(
        engine, definition.id, records=3, model=ResponseModel(), seed=1, horizon=timedelta(days=10)
    )
    assert funnel.outcomes == {"active": 3}
