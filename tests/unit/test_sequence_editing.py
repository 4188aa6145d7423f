"""Copying a sequence and adding or removing steps with the branches rewired (SPEC
R5.4), each edit checked at once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.errors import InvalidDefinition, ValidationError
from salesflow.sequences import (
    TEMPLATES,
    ActivityStep,
    EndStep,
    Span,
    WaitStep,
    copy_sequence,
    insert_after,
    insert_before,
    load_template,
    remove_step,
    stats,
    successors,
    validate,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
OUTBOUND = load_template("high_volume_outbound_prospecting")


def test_a_copy_is_a_new_sequence_at_version_1() -> None:
    mine = copy_sequence(OUTBOUND, id="my_outbound", name="My outbound")
    assert (mine.id, mine.name, mine.version) == ("my_outbound", "My outbound", 1)
    assert mine.steps == OUTBOUND.steps
    with pytest.raises(ValidationError, match="needs an id of its own"):
        copy_sequence(OUTBOUND, id=OUTBOUND.id)


def test_a_task_goes_in_after_the_research_and_a_step_comes_out() -> None:
    mine = copy_sequence(OUTBOUND, id="my_outbound")
    prepare = ActivityStep(id="prepare", kind="task", subject="Prepare the call notes")
    longer = insert_after(mine, "linkedin_research", prepare)
    assert longer.step("linkedin_research").next == "prepare"  # type: ignore[union-attr]
    assert longer.step("prepare").next == "call_first"  # type: ignore[union-attr]
    assert stats(longer).steps == stats(mine).steps + 1
    shorter = remove_step(longer, "linkedin_research")
    assert shorter.step("auto_email_introduction").next == "prepare"  # type: ignore[union-attr]
    assert "linkedin_research" not in shorter.by_id
    assert validate(shorter) == []


def test_the_first_step_can_be_preceded_and_removed() -> None:
    mine = copy_sequence(OUTBOUND, id="my_outbound")
    wait = WaitStep(id="settle_in", span=Span(days=1))
    later = insert_before(mine, mine.entry, wait)
    assert later.entry == "settle_in"
    assert stats(later).longest_days == stats(mine).longest_days + 1
    assert remove_step(later, "settle_in").entry == mine.entry


def test_edits_that_break_the_graph_are_refused_with_every_problem() -> None:
    webinar = copy_sequence(load_template("webinar_follow_up"), id="my_webinar")
    with pytest.raises(InvalidDefinition, match="cannot tell which step it watches"):
        remove_step(webinar, webinar.entry)  # the email its condition watches
    with pytest.raises(ValidationError, match="no single next step"):
        remove_step(webinar, "replied_to_thank_you")  # a condition
    with pytest.raises(ValidationError, match="has a step 'auto_email_thank_you' already"):
        insert_after(
            webinar,
            "email_confirmation_after_thank_you",
            ActivityStep(id="auto_email_thank_you", kind="task", subject="Again"),
        )
    with pytest.raises(ValidationError, match="no single next step"):
        insert_before(webinar, webinar.entry, EndStep(id="stop", outcome="stopped"))
    with pytest.raises(ValidationError, match="has no step 'nope'"):
        remove_step(webinar, "nope")
    with pytest.raises(ValidationError, match="is not a SequenceDefinition"):
        remove_step("webinar_follow_up", "x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="is not a SequenceDefinition"):
        copy_sequence(None, id="mine")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="is not a step"):
        insert_after(webinar, "email_confirmation_after_thank_you", {"id": "x"})  # type: ignore[arg-type]


@given(name=st.sampled_from(sorted(TEMPLATES)), pick=st.integers(0, 100))
def test_removing_any_removable_step_leaves_a_valid_graph_or_is_refused(
    name: str, pick: int
) -> None:
    template = load_template(name)
    removable = [s for s in template.steps if getattr(s, "next", None) is not None]
    step = removable[pick % len(removable)]
    try:
        edited = remove_step(template, step.id)
    except InvalidDefinition:
        return  # e.g. a condition watching it: refused, nothing half-done
    assert validate(edited) == []
    into = [s.id for s in edited.steps if step.id in successors(s)]
    assert into == []  # nothing leads to the removed step any more


def test_an_edited_copy_runs_on_the_engine() -> None:
    engine = Salesflow(clock=FakeClock(T0))
    mine = insert_after(
        copy_sequence(OUTBOUND, id="my_outbound"),
        "linkedin_research",
        ActivityStep(id="prepare", kind="task", subject="Prepare the call notes"),
    )
    engine.publish_sequence(mine)
    lead = engine.create_lead(topic="t", last_name="Kim", email="kim@example.com")
    running = engine.connect(lead, "my_outbound")
    running = engine.complete_step(running.id, "linkedin_research")
    assert running.current_step == "prepare"
