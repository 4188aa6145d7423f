"""Reports on leads, computed by the store (memory and SQLite give the same rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from salesflow.cli import main
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import ValidationError
from salesflow.qualification import QualifyOptions
from salesflow.reports import rate
from salesflow.stores.url import open_store

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def book(url: str) -> tuple[Salesflow, FakeClock]:
    clock = FakeClock(T0)
    engine = Salesflow(open_store(url), clock=clock)
    plan = [  # (source, owner, outcome)
        ("web", "ana", "qualified"),
        ("web", "ana", "disqualified:lost"),
        ("web", "bo", None),
        ("partner", "bo", "qualified"),
        ("partner", "bo", "qualified"),
        ("partner", "ana", "disqualified:cannot_contact"),
        (None, "cy", "disqualified:lost"),
    ]
    for index, (source, owner, outcome) in enumerate(plan):
        clock.advance(timedelta(days=1))
        lead = engine.create_lead(
            topic=f"Deal {index}",
            last_name=f"P{index}",
            source=source,
            owner_id=owner,
            company_name=f"Co {index}",
        )
        if outcome == "qualified":
            engine.qualify_lead(lead.id, QualifyOptions(create_opportunity=True))
        elif outcome is not None:
            engine.disqualify_lead(lead.id, outcome.split(":")[1])
    return engine, clock


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Salesflow:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'r.db'}"
    return book(url)[0]


def test_lead_sources_and_their_conversion(engine: Salesflow) -> None:
    report = engine.report("lead_sources")
    assert report.columns == ("source", "leads", "opportunities", "conversion")
    assert [(str(r[0]), *r[1:]) for r in report.rows] == [
        ("partner", 3, 2, Decimal("66.7")),  # ties keep the option-set order
        ("web", 3, 1, Decimal("33.3")),
        ("None", 1, 0, Decimal("0.0")),
        ("all", 7, 3, Decimal("42.9")),
    ]


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_lead_types_rank_each_fields_values_by_conversion(url: str, tmp_path: Path) -> None:
    engine = Salesflow(
        open_store(url if url != "sqlite" else f"sqlite:///{tmp_path / 't.db'}"),
        clock=FakeClock(T0),
    )
    plan = [  # (rating, need, qualified)
        ("hot", "must_have", True),
        ("hot", "must_have", True),
        ("hot", "good_to_have", False),
        ("cold", "good_to_have", False),
        ("cold", "must_have", True),
        (None, None, False),
    ]
    for index, (rating, need, qualified) in enumerate(plan):
        lead = engine.create_lead(
            topic=f"Deal {index}", last_name=f"P{index}", rating=rating, need=need
        )
        if qualified:
            engine.qualify_lead(lead.id, QualifyOptions(create_opportunity=True))
    report = engine.report("lead_types")
    assert report.columns == ("field", "value", "leads", "opportunities", "conversion")
    by_field: dict[str, list[tuple[object, ...]]] = {}
    for row in report.rows:
        by_field.setdefault(str(row[0]), []).append((str(row[1]), *row[2:]))
    assert by_field["rating"] == [
        ("hot", 3, 2, Decimal("66.7")),
        ("cold", 2, 1, Decimal("50.0")),
        ("None", 1, 0, Decimal("0.0")),
    ]
    assert by_field["need"] == [
        ("must_have", 3, 3, Decimal("100.0")),
        ("good_to_have", 2, 0, Decimal("0.0")),
        ("None", 1, 0, Decimal("0.0")),
    ]
    assert by_field["industry"] == [("None", 6, 3, Decimal("50.0"))]
    engine.close()


def test_conversion_by_owner(engine: Salesflow) -> None:
    rows = engine.report("conversion_by_owner").rows
    assert rows == (
        ("bo", 3, 2, 0, 1, Decimal("100.0")),
        ("ana", 3, 1, 2, 0, Decimal("33.3")),
        ("cy", 1, 0, 1, 0, Decimal("0.0")),
    )


def test_disqualification_reasons_in_a_window(engine: Salesflow) -> None:
    every = engine.report("disqualification_reasons").rows
    assert every == (
        ("lost", 2, Decimal("66.7")),
        ("cannot_contact", 1, Decimal("33.3")),
        ("all", 3, Decimal("100.0")),
    )
    late = engine.report("disqualification_reasons", since=T0 + timedelta(days=3)).rows
    assert late == (
        ("cannot_contact", 1, Decimal("50.0")),
        ("lost", 1, Decimal("50.0")),
        ("all", 2, Decimal("100.0")),
    )
    assert engine.report("lead_sources", until=T0).rows == (("all", 0, 0, None),)


def test_bad_report_arguments(engine: Salesflow) -> None:
    with pytest.raises(ValidationError, match="no report 'pipeline'"):
        engine.report("pipeline")
    with pytest.raises(ValidationError, match="since"):
        engine.report("lead_sources", since=datetime(2026, 1, 1))


def test_rate_rounds_half_even() -> None:
    assert rate(1, 8) == Decimal("12.5")
    assert rate(1, 3) == Decimal("33.3")
    assert rate(0, 0) is None


def test_the_cli_prints_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    book(url)[0].close()
    assert main(["report", "conversion_by_owner", "--store", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Conversion rate by owner (qualified of the leads decided)"
    assert out[2].split() == ["owner", "leads", "qualified", "disqualified", "open", "conversion"]
    assert out[4].split() == ["bo", "3", "2", "0", "1", "100.0", "%"]


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 't.db'}"


def test_time_to_qualify_by_owner(url: str) -> None:
    clock = FakeClock(T0)
    engine = Salesflow(open_store(url), clock=clock)
    plan = {"ana": [2, 4], "bo": [1]}  # days until each lead is qualified
    leads = [
        (engine.create_lead(topic="t", last_name=f"{o}{i}", owner_id=o, company_name="Co"), d)
        for o, days in plan.items()
        for i, d in enumerate(days)
    ]
    engine.create_lead(topic="t", last_name="open", owner_id="bo")  # never qualified
    for lead, days in sorted(leads, key=lambda pair: pair[1]):
        clock.set(T0 + timedelta(days=days))
        engine.qualify_lead(lead.id)
    report = engine.report("time_to_qualify")
    assert report.rows == (
        ("bo", 1, Decimal("1.0"), Decimal("1.0"), Decimal("1.0")),
        ("ana", 2, Decimal("3.0"), Decimal("2.0"), Decimal("4.0")),
        ("all", 3, Decimal("2.3"), Decimal("1.0"), Decimal("4.0")),
    )
    assert engine.report("time_to_qualify", since=T0 + timedelta(days=9)).rows == ()


def test_sequence_success_against_the_previous_period(url: str) -> None:
    from salesflow.sequences import load_template

    clock = FakeClock(T0 - timedelta(days=60))
    engine = Salesflow(open_store(url), clock=clock)
    engine.publish_sequence(load_template("high_volume_outbound_prospecting"))

    def connect(days_ago: int, qualify: bool) -> None:
        clock.set(T0 - timedelta(days=days_ago))
        lead = engine.create_lead(
            topic="t", last_name=f"L{days_ago}", company_name="Co", email=f"l{days_ago}@co.example"
        )
        engine.connect(lead, "high_volume_outbound_prospecting")
        if qualify:
            engine.qualify_lead(lead.id, QualifyOptions(create_opportunity=True))

    connect(45, True)
    connect(40, True)  # previous 30 days: 2 of 2
    connect(12, False)
    connect(11, False)
    connect(10, True)  # last 30 days: 1 of 3
    clock.set(T0)
    rows = {(r[0], r[2]): r for r in engine.report("sequence_success").rows}
    assert rows[("lead", 30)][1:] == (
        "high_volume_outbound_prospecting",
        30,
        3,
        1,
        Decimal("33.3"),
        2,
        2,
        Decimal("100.0"),
        Decimal("-66.7"),
    )
    assert rows[("lead", 90)][3:6] == (5, 3, Decimal("60.0"))
    assert rows[("lead", 90)][6:] == (0, 0, None, None)
    assert sorted(days for kind, days in rows if kind == "lead") == [30, 90, 180, 365, 730]
    assert rows[("lead", 730)][3:6] == (5, 3, Decimal("60.0"))  # the product's "2 years"
    assert not any(r[0] == "opportunity" for r in engine.report("sequence_success").rows)
