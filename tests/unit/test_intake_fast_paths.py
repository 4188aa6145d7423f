"""The CSV intake's fast paths give what the plain code gives: a lead's full name, a
new lead built from the blank lead of its instant, a submission's fields checked
without the generic tests, and an import's batches, which skip writing reasons."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow import Salesflow
from salesflow.clock import FakeClock
from salesflow.commands.imports import IntakeBatch
from salesflow.errors import ValidationError
from salesflow.intake import Channel, IntakeOptions, Submission
from salesflow.lead import Lead, new_lead
from salesflow.stores.memory import MemoryStore

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
names = st.one_of(st.none(), st.text(max_size=5).map(lambda s: s.strip() or None))


@given(first=names, last=st.text(min_size=1, max_size=5).filter(str.strip))
def test_full_name_joins_the_names_it_has(first: str | None, last: str) -> None:
    lead = Lead(id="lead-1", created_at=T0, modified_at=T0, topic="t", last_name=last)
    lead.first_name = first
    assert lead.full_name == " ".join(p for p in (lead.first_name, lead.last_name) if p)


def test_new_leads_of_one_instant_and_the_next_get_their_own_times() -> None:
    later = T0 + timedelta(seconds=1)
    a, _ = new_lead(lead_id="lead-a", fields={"topic": "t", "last_name": "A"}, now=T0)
    b, _ = new_lead(lead_id="lead-b", fields={"topic": "t", "last_name": "B"}, now=T0)
    c, _ = new_lead(lead_id="lead-c", fields={"topic": "t", "last_name": "C"}, now=later)
    assert (a.created_at, b.modified_at, c.created_at, c.modified_at) == (T0, T0, later, later)
    a.custom["x"] = "only a"
    assert b.custom == {}
    assert c.custom == {}
    plus_two = timezone(timedelta(hours=2))
    d, _ = new_lead(
        lead_id="lead-d", fields={"topic": "t", "last_name": "D"}, now=later.astimezone(plus_two)
    )
    assert d.created_at == later
    assert d.created_at.tzinfo is UTC


def test_a_naive_instant_is_refused_as_the_lead_refuses_it() -> None:
    naive = datetime(2026, 3, 2, 9)
    with pytest.raises(ValidationError) as built:
        Lead(id="lead-1", created_at=naive, modified_at=naive, topic="t", last_name="A")
    with pytest.raises(ValidationError) as made:
        new_lead(lead_id="lead-1", fields={"topic": "t", "last_name": "A"}, now=naive)
    assert str(made.value) == str(built.value)
    with pytest.raises(ValidationError, match=r"Lead\.email"):  # the fields are still checked
        new_lead(lead_id="lead-2", fields={"topic": "t", "last_name": "A", "email": "x"}, now=T0)


@pytest.mark.parametrize("fields", [{"": "x"}, {"last_name": "A", 3: "x"}])
def test_a_submission_with_a_bad_field_name_is_refused(fields: dict[object, str]) -> None:
    with pytest.raises(ValidationError, match=r"Submission\.fields"):
        Submission(channel=Channel.CSV, fields=fields)


def test_submitted_fields_are_copied() -> None:
    fields = {"last_name": "A"}
    submission = Submission(channel=Channel.CSV, fields=fields)
    fields["last_name"] = "B"
    assert submission.fields == {"last_name": "A"}


def test_a_batch_writes_reasons_only_when_asked() -> None:
    engine = Salesflow(MemoryStore(), clock=FakeClock(T0))
    assert engine.import_csv(io.StringIO("Last Name,Email\nAna,ana@x.example\n")).created == 1
    for explain in (False, True):
        new = Submission(
            channel=Channel.CSV,
            fields={"last_name": f"B{explain}", "email": f"b{explain}@x.example"},
        )
        known = Submission(
            channel=Channel.CSV, fields={"last_name": "Ana", "email": "ana@x.example"}
        )
        with engine._command() as work:
            batch = IntakeBatch(work, engine._strategy, explain=explain)
            batch.prefetch([new, known], IntakeOptions())
            results = [engine._intake_in(work, s, IntakeOptions(), batch) for s in (new, known)]
        assert [r.lead_action for r in results] == ["created", "unchanged"]
        assert [bool(r.reasons) for r in results] == [explain, explain]
        assert results[1].lead is not None
        assert results[1].lead.last_name == "Ana"
