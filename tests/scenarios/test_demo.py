"""The main job: `salesflow demo` builds a book of leads and prints the views."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from salesflow import LeadStatus, Salesflow, open_store
from salesflow.cli import demo, main


def test_demo_prints_every_standard_view(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--store", "memory://"]) == 0
    out = capsys.readouterr().out
    for title in (
        "Open leads",
        "Closed leads",
        "All leads",
        "My open leads (alice)",
        "Leads opened last week",
        "Leads opened this week",
    ):
        assert f"{title} — " in out
    assert "All leads — 24 lead(s)" in out
    assert "qualified into account" in out
    assert "rule to_delivery  done" in out
    assert "Six months later" in out
    assert (
        "repeat lead 'Service contract renewal: Fleet tracking, 40 trucks (Baltic Freight)'" in out
    )
    assert "waits in delivery/prep" in out


def test_demo_leaves_a_consistent_sqlite_book(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    demo(url, out=io.StringIO())
    demo(url, out=io.StringIO())  # a second run starts afresh instead of piling up
    engine = Salesflow(open_store(url))
    try:
        every = engine.lead_view("all_leads", page_size=100)
        assert every.total == 25  # the book's 24 and the automation rules' repeat lead
        closed = engine.lead_view("closed_leads", page_size=100).items
        assert {lead.status for lead in closed} == {LeadStatus.QUALIFIED, LeadStatus.DISQUALIFIED}
        for lead in closed:
            if lead.status is LeadStatus.QUALIFIED:
                assert lead.qualifying_opportunity_id is not None
                opportunity = engine.get_lead(lead.id).qualifying_opportunity_id
                assert opportunity == lead.qualifying_opportunity_id
    finally:
        engine.close()


def test_demo_reports_a_bad_store_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--store", "ftp://nowhere"]) == 1
    assert "memory://" in capsys.readouterr().err


def test_templates_lists_the_six_templates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["Template", "Record", "type", "Steps", "Days"]
    rows = {line.split()[0]: line.split()[1:] for line in out[2:]}
    assert rows["high_volume_outbound_prospecting"] == ["lead", "8", "9"]
    assert rows["upcoming_account_renewal"] == ["account", "13", "50"]
    assert len(rows) == 6


@pytest.mark.parametrize("fmt", ["--mermaid", "--json", "--toml"])
def test_templates_show_prints_one_template(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    from salesflow.sequences import load_template, loads_json, loads_toml

    assert main(["templates", "show", "no_show_follow_up", fmt]) == 0
    out = capsys.readouterr().out
    expected = load_template("no_show_follow_up")
    if fmt == "--mermaid":
        assert out.startswith("flowchart TD")
    elif fmt == "--json":
        assert loads_json(out) == expected
    else:
        assert loads_toml(out) == expected


def test_templates_show_refuses_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templates", "show", "cold_calling"]) == 1
    assert "no_show_follow_up" in capsys.readouterr().err
