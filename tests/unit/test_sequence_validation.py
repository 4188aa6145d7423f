"""Sequence validation and statistics: every problem named with its step, all at once,
and durations computed by hand on small graphs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from salesflow.conditions import field
from salesflow.errors import InvalidDefinition
from salesflow.sequences.definition import (
    ABTestStep,
    ActivityStep,
    AdvanceStep,
    CallWatch,
    ConditionStep,
    EmailWatch,
    EndStep,
    FieldWatch,
    SequenceDefinition,
    SetStatusStep,
    Span,
    Step,
    UpdateFieldStep,
    WaitStep,
)
from salesflow.sequences.validation import (
    Problem,
    ProblemCode,
    SequenceStats,
    require_valid,
    stats,
    validate,
)
from salesflow.values import RecordKind


def seq(*steps: Step, entry: str | None = None, **kw: Any) -> SequenceDefinition:
    """A lead sequence starting at its first step unless ``entry`` says otherwise."""
    kw.setdefault("record_type", RecordKind.LEAD)
    return SequenceDefinition(
        id=kw.pop("id", "seq-1"),
        name="Test sequence",
        entry=entry if entry is not None else steps[0].id,
        steps=steps,
        **kw,
    )


def email(id: str, next: str | None = None, kind: str = "email") -> ActivityStep:
    return ActivityStep(id=id, kind=kind, subject=f"Email {id}", next=next)


def call(id: str, next: str | None = None) -> ActivityStep:
    return ActivityStep(id=id, kind="call", subject=f"Call {id}", next=next)


def task(id: str, next: str | None = None) -> ActivityStep:
    return ActivityStep(id=id, kind="task", subject=f"Task {id}", next=next)


def wait(id: str, next: str | None, days: int = 0, hours: int = 0) -> WaitStep:
    return WaitStep(id=id, span=Span(days=days, hours=hours), next=next)


def replied(id: str, yes: str, no: str, days: int = 2, **kw: Any) -> ConditionStep:
    return ConditionStep(
        id=id, watch=EmailWatch(events="replied"), within=Span(days=days), yes=yes, no=no, **kw
    )


def answered(id: str, yes: str, no: str, **kw: Any) -> ConditionStep:
    return ConditionStep(id=id, watch=CallWatch(), yes=yes, no=no, **kw)


def end(id: str, outcome: str = "done") -> EndStep:
    return EndStep(id=id, outcome=outcome)


def codes(problems: list[Problem]) -> list[tuple[str | None, str]]:
    return [(p.step_id, p.code) for p in problems]


VALID = seq(
    email("e1", "c1"),
    replied("c1", yes="booked", no="call1"),
    call("call1", "c2"),
    answered("c2", yes="booked", no="w1"),
    wait("w1", "e2", days=2),
    email("e2", "dq", kind="auto_email"),
    SetStatusStep(id="dq", status="disqualified", reason="cannot_contact", next="lost"),
    end("booked", "meeting_booked"),
    end("lost", "disqualified"),
)


# --- valid graphs -------------------------------------------------------------------


def test_a_valid_graph_has_no_problems() -> None:
    assert validate(VALID) == []
    require_valid(VALID)


def test_every_step_kind_in_a_valid_graph() -> None:
    definition = seq(
        wait("w0", "ab", hours=4),
        ABTestStep(id="ab", variant_a="A", variant_b="B", next="c1"),
        replied("c1", yes="upd", no="fld"),
        UpdateFieldStep(id="upd", field="rating", value="hot", next="done"),
        ConditionStep(
            id="fld", watch=FieldWatch(condition=field("rating").eq("hot")), yes="done", no="adv"
        ),
        AdvanceStep(id="adv", sequence_id="nurture"),
        end("done"),
    )
    assert validate(definition, active_sequences={"nurture": RecordKind.LEAD}) == []


def test_a_loop_through_a_wait_is_allowed() -> None:
    definition = seq(
        call("call1", "c1"),
        answered("c1", yes="done", no="w1"),
        wait("w1", "call1", days=1),
        end("done"),
    )
    assert validate(definition) == []


def test_explicit_watches_may_look_past_a_wait() -> None:
    definition = seq(
        email("e1", "w1"),
        wait("w1", "c1", days=1),
        replied("c1", yes="done", no="done", watches="e1"),
        end("done"),
    )
    assert validate(definition) == []


def test_several_email_steps_before_one_condition_are_fine() -> None:
    definition = seq(
        call("call1", "c0"),
        answered("c0", yes="e1", no="e2"),
        email("e1", "c1"),
        email("e2", "c1", kind="auto_email"),
        replied("c1", yes="done", no="done"),
        end("done"),
    )
    assert validate(definition) == []


# --- each problem, named with its step ----------------------------------------------


def test_missing_entry() -> None:
    problems = validate(seq(email("e1", "done"), end("done"), entry="start"))
    assert codes(problems) == [(None, ProblemCode.MISSING_ENTRY)]
    assert "'start'" in problems[0].message
    assert "set entry" in problems[0].message


def test_branch_to_a_missing_step() -> None:
    problems = validate(
        seq(email("e1", "c1"), replied("c1", yes="nowhere", no="done"), end("done"))
    )
    assert codes(problems) == [("c1", ProblemCode.MISSING_TARGET)]
    assert "'nowhere'" in problems[0].message
    assert "(yes)" in problems[0].message


def test_unreachable_step() -> None:
    problems = validate(seq(email("e1", "done"), task("orphan", "done"), end("done")))
    assert codes(problems) == [("orphan", ProblemCode.UNREACHABLE)]
    assert "delete it" in problems[0].message


@pytest.mark.parametrize(
    "step",
    [
        task("last"),
        UpdateFieldStep(id="last", field="rating", value="hot"),
        SetStatusStep(id="last", status="qualified"),
        ABTestStep(id="last", variant_a="A", variant_b="B"),
    ],
    ids=["task", "update_field", "set_status", "ab_test"],
)
def test_dead_end_without_end(step: Step) -> None:
    problems = validate(seq(email("e1", "last"), step))
    assert codes(problems) == [("last", ProblemCode.DEAD_END)]
    assert "add an end step" in problems[0].message


def test_advance_ends_a_path_by_design() -> None:
    definition = seq(email("e1", "adv"), AdvanceStep(id="adv", sequence_id="other"))
    assert validate(definition) == []


def test_wait_before_an_end() -> None:
    problems = validate(seq(email("e1", "w1"), wait("w1", "done", days=1), end("done")))
    assert codes(problems) == [("w1", ProblemCode.WAIT_LAST)]
    assert "may not end with a wait" in problems[0].message


def test_wait_with_nothing_after_it() -> None:
    problems = validate(seq(email("e1", "w1"), wait("w1", None, days=1)))
    assert codes(problems) == [("w1", ProblemCode.WAIT_LAST)]


def test_wait_of_exactly_thirty_days_is_allowed() -> None:
    definition = seq(wait("w1", "e1", days=29, hours=24), email("e1", "done"), end("done"))
    assert validate(definition) == []


@pytest.mark.parametrize(("days", "hours"), [(31, 0), (30, 1), (0, 721)])
def test_wait_longer_than_thirty_days(days: int, hours: int) -> None:
    problems = validate(
        seq(wait("w1", "e1", days=days, hours=hours), email("e1", "done"), end("done"))
    )
    assert codes(problems) == [("w1", ProblemCode.WAIT_TOO_LONG)]
    assert "at most 30 days" in problems[0].message


def test_loop_without_a_wait() -> None:
    problems = validate(
        seq(call("call1", "c1"), answered("c1", yes="done", no="call1"), end("done"))
    )
    assert codes(problems) == [("call1", ProblemCode.CYCLE_WITHOUT_WAIT)]
    assert "'call1', 'c1'" in problems[0].message
    assert "add a wait" in problems[0].message


def test_a_step_pointing_at_itself_is_a_loop() -> None:
    problems = validate(seq(task("t1", "t1")))
    assert codes(problems) == [("t1", ProblemCode.CYCLE_WITHOUT_WAIT)]


def test_a_loop_that_bypasses_its_wait_is_still_reported() -> None:
    definition = seq(
        call("call1", "c1"),
        answered("c1", yes="w1", no="call1"),
        wait("w1", "call1", days=1),
    )
    assert codes(validate(definition)) == [("call1", ProblemCode.CYCLE_WITHOUT_WAIT)]


def test_email_condition_after_a_call() -> None:
    problems = validate(seq(call("call1", "c1"), replied("c1", yes="done", no="done"), end("done")))
    assert codes(problems) == [("c1", ProblemCode.WRONG_WATCHED_KIND)]
    assert "'call1'" in problems[0].message
    assert "set watches" in problems[0].message


def test_call_condition_after_an_email() -> None:
    problems = validate(seq(email("e1", "c1"), answered("c1", yes="done", no="done"), end("done")))
    assert codes(problems) == [("c1", ProblemCode.WRONG_WATCHED_KIND)]


def test_email_condition_after_a_wait_needs_watches() -> None:
    definition = seq(
        email("e1", "w1"),
        wait("w1", "c1", days=1),
        replied("c1", yes="done", no="done"),
        end("done"),
    )
    assert codes(validate(definition)) == [("c1", ProblemCode.WRONG_WATCHED_KIND)]


def test_condition_watching_a_missing_step() -> None:
    definition = seq(email("e1", "c1"), replied("c1", yes="done", no="done", watches="gone"))
    definition = seq(*definition.steps, end("done"))
    problems = validate(definition)
    assert codes(problems) == [("c1", ProblemCode.MISSING_WATCHED_STEP)]
    assert "'gone'" in problems[0].message


def test_condition_watching_a_step_of_the_wrong_kind() -> None:
    definition = seq(
        call("call1", "c1"), replied("c1", yes="done", no="done", watches="call1"), end("done")
    )
    assert codes(validate(definition)) == [("c1", ProblemCode.WRONG_WATCHED_KIND)]


def test_condition_watching_a_step_that_never_comes_before_it() -> None:
    definition = seq(
        email("e1", "c1"),
        replied("c1", yes="done", no="e2", watches="e2"),
        email("e2", "done"),
        end("done"),
    )
    assert codes(validate(definition)) == [("c1", ProblemCode.WATCHED_STEP_NOT_BEFORE)]


def test_condition_reached_from_steps_of_different_kinds_needs_watches() -> None:
    definition = seq(
        email("e1", "c0"),
        replied("c0", yes="call1", no="t1"),
        call("call1", "c1"),
        task("t1", "c1"),
        answered("c1", yes="done", no="done"),
        end("done"),
    )
    problems = validate(definition)
    assert codes(problems) == [("c1", ProblemCode.AMBIGUOUS_WATCH)]
    assert "'call1', 't1'" in problems[0].message
    fixed = seq(*definition.steps[:4], answered("c1", yes="done", no="done", watches="call1"))
    assert validate(seq(*fixed.steps, end("done"))) == []


def test_condition_as_the_entry_has_nothing_to_watch() -> None:
    problems = validate(seq(replied("c1", yes="done", no="done"), end("done")))
    assert codes(problems) == [("c1", ProblemCode.AMBIGUOUS_WATCH)]
    assert "no step comes before it" in problems[0].message


def test_email_condition_needs_a_time_limit() -> None:
    problems = validate(
        seq(email("e1", "c1"), replied("c1", yes="done", no="done", days=0), end("done"))
    )
    assert codes(problems) == [("c1", ProblemCode.NO_TIME_LIMIT)]
    assert "within" in problems[0].message


def test_call_condition_may_have_no_time_limit() -> None:
    definition = seq(call("call1", "c1"), answered("c1", yes="done", no="done"), end("done"))
    assert validate(definition) == []


@pytest.mark.parametrize(
    ("record_type", "status", "ok"),
    [
        (RecordKind.LEAD, "qualified", True),
        (RecordKind.LEAD, "won", False),
        (RecordKind.LEAD, "inactive", False),
        (RecordKind.OPPORTUNITY, "won", True),
        (RecordKind.OPPORTUNITY, "lost", True),
        (RecordKind.OPPORTUNITY, "disqualified", False),
        (RecordKind.CONTACT, "inactive", True),
        (RecordKind.CONTACT, "lost", False),
        (RecordKind.ACCOUNT, "inactive", True),
        (RecordKind.ACCOUNT, "qualified", False),
    ],
)
def test_set_status_per_record_type(record_type: RecordKind, status: str, ok: bool) -> None:
    definition = seq(
        SetStatusStep(id="s1", status=status, next="done"), end("done"), record_type=record_type
    )
    problems = validate(definition)
    assert codes(problems) == ([] if ok else [("s1", ProblemCode.WRONG_STATUS)])
    if not ok:
        assert record_type.value in problems[0].message


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_disqualifying_a_lead_needs_a_reason(reason: str | None) -> None:
    definition = seq(
        SetStatusStep(id="s1", status="disqualified", reason=reason, next="done"), end("done")
    )
    problems = validate(definition)
    assert codes(problems) == [("s1", ProblemCode.MISSING_REASON)]
    assert "set reason" in problems[0].message


def test_any_non_empty_disqualify_reason_is_accepted() -> None:
    definition = seq(
        SetStatusStep(id="s1", status="disqualified", reason="went with a rival", next="done"),
        end("done"),
    )
    assert validate(definition) == []


def test_advance_as_the_first_step() -> None:
    problems = validate(seq(AdvanceStep(id="adv", sequence_id="other")))
    assert codes(problems) == [("adv", ProblemCode.ADVANCE_FIRST)]
    assert "never first" in problems[0].message


def test_advance_to_the_same_sequence() -> None:
    definition = seq(email("e1", "adv"), AdvanceStep(id="adv", sequence_id="seq-1"))
    problems = validate(definition, active_sequences={"seq-1": RecordKind.LEAD})
    assert codes(problems) == [("adv", ProblemCode.ADVANCE_TO_SELF)]


def test_advance_to_an_inactive_sequence() -> None:
    definition = seq(email("e1", "adv"), AdvanceStep(id="adv", sequence_id="other"))
    assert validate(definition) == []  # not checked without the active sequences
    problems = validate(definition, active_sequences={"nurture": RecordKind.LEAD})
    assert codes(problems) == [("adv", ProblemCode.ADVANCE_TARGET_INACTIVE)]
    assert "'other'" in problems[0].message


def test_advance_to_a_sequence_of_another_record_type() -> None:
    definition = seq(email("e1", "adv"), AdvanceStep(id="adv", sequence_id="other"))
    problems = validate(definition, active_sequences={"other": RecordKind.CONTACT})
    assert codes(problems) == [("adv", ProblemCode.ADVANCE_TARGET_WRONG_TYPE)]
    assert "contact" in problems[0].message


def test_an_entry_wait_is_allowed() -> None:
    assert validate(seq(wait("w1", "e1", days=1), email("e1", "done"), end("done"))) == []


# --- several problems at once -------------------------------------------------------


def test_every_problem_is_reported_together() -> None:
    definition = seq(
        email("e1", "c1"),
        answered("c1", yes="w1", no="ghost"),
        wait("w1", "done", days=40),
        SetStatusStep(id="s1", status="won", next="done"),
        task("t1", "t1"),
        task("dead"),
        end("done"),
    )
    assert codes(validate(definition)) == [
        ("c1", ProblemCode.MISSING_TARGET),
        ("c1", ProblemCode.WRONG_WATCHED_KIND),
        ("w1", ProblemCode.WAIT_TOO_LONG),
        ("w1", ProblemCode.WAIT_LAST),
        ("s1", ProblemCode.UNREACHABLE),
        ("s1", ProblemCode.WRONG_STATUS),
        ("t1", ProblemCode.UNREACHABLE),
        ("dead", ProblemCode.UNREACHABLE),
        ("dead", ProblemCode.DEAD_END),
        ("t1", ProblemCode.CYCLE_WITHOUT_WAIT),
    ]


def test_every_message_names_its_step() -> None:
    definition = seq(
        email("e1", "c1"),
        answered("c1", yes="w1", no="ghost"),
        wait("w1", "done", days=40),
        end("done"),
        entry="e1",
    )
    for problem in validate(definition):
        assert problem.step_id is not None
        assert repr(problem.step_id) in problem.message
        assert str(problem) == problem.message


def test_require_valid_raises_with_every_message() -> None:
    definition = seq(email("e1", "w1"), wait("w1", "done", days=31), end("done"))
    with pytest.raises(InvalidDefinition) as caught:
        require_valid(definition)
    assert len(caught.value.problems) == 2
    assert caught.value.problems == tuple(p.message for p in validate(definition))


def test_require_valid_checks_advance_targets() -> None:
    definition = seq(email("e1", "adv"), AdvanceStep(id="adv", sequence_id="other"))
    with pytest.raises(InvalidDefinition, match="not an active sequence"):
        require_valid(definition, active_sequences={})


# --- stats --------------------------------------------------------------------------


def test_stats_of_a_straight_line() -> None:
    definition = seq(
        email("e1", "w1"),
        wait("w1", "call1", days=2, hours=12),
        call("call1", "done"),
        end("done"),
    )
    assert stats(definition) == SequenceStats(
        steps=2, shortest=timedelta(days=2, hours=12), longest=timedelta(days=2, hours=12)
    )
    assert stats(definition).shortest_days == 2.5


def test_stats_count_actions_only() -> None:
    stat = stats(VALID)
    # e1, call1, e2, dq count; c1, c2 (conditions), w1 (wait), booked, lost (ends) do not.
    assert stat.steps == 4


def test_stats_of_the_valid_graph_by_hand() -> None:
    # e1 -c1(2 d)-> booked: 2 d; -> call1 -c2(0)-> booked: 2 d; -> w1 2 d -> ... lost: 4 d.
    stat = stats(VALID)
    assert stat.shortest == timedelta(days=2)
    assert stat.longest == timedelta(days=4)
    assert (stat.shortest_days, stat.longest_days) == (2.0, 4.0)


def test_a_condition_costs_its_limit_on_both_branches_by_default() -> None:
    definition = seq(email("e1", "c1"), replied("c1", yes="done", no="done", days=3), end("done"))
    assert stats(definition) == SequenceStats(
        steps=1, shortest=timedelta(days=3), longest=timedelta(days=3)
    )


def test_advance_early_makes_the_yes_branch_possibly_instant() -> None:
    definition = seq(
        email("e1", "c1"),
        replied("c1", yes="t1", no="w2", days=3, advance_early=True),
        task("t1", "w1"),
        wait("w1", "t2", hours=5),
        task("t2", "done"),
        wait("w2", "t3", hours=30),
        task("t3", "done"),
        end("done"),
    )
    stat = stats(definition)
    assert stat.steps == 4
    # yes: 0..3 d + 5 h; no: 3 d + 30 h
    assert stat.shortest == timedelta(hours=5)
    assert stat.longest == timedelta(days=3, hours=30)
    assert stat.longest_days == 4.25


def test_advance_early_longest_includes_the_yes_limit() -> None:
    # The event may arrive just before the limit, so the yes branch can take 2 d + 5 d.
    definition = seq(
        email("e1", "c1"),
        replied("c1", yes="w1", no="done", days=2, advance_early=True),
        wait("w1", "t1", days=5),
        task("t1", "done"),
        end("done"),
    )
    stat = stats(definition)
    assert (stat.shortest, stat.longest) == (timedelta(days=2), timedelta(days=7))


def test_ab_test_and_advance_cost_nothing_and_count() -> None:
    definition = seq(
        ABTestStep(id="ab", variant_a="A", variant_b="B", deadline=Span(days=5), next="w1"),
        wait("w1", "adv", hours=6),
        AdvanceStep(id="adv", sequence_id="other"),
    )
    assert stats(definition) == SequenceStats(
        steps=2, shortest=timedelta(hours=6), longest=timedelta(hours=6)
    )


def test_stats_on_shared_paths() -> None:
    # A diamond chain: every path is a choice of 0 d or 1 d at each of 3 levels.
    steps: list[Step] = []
    for level in range(3):
        nxt = f"call{level + 1}" if level < 2 else "wrap_up"
        steps += [
            call(f"call{level}", f"c{level}"),
            answered(f"c{level}", yes=f"w{level}", no=nxt),
            wait(f"w{level}", nxt, days=1),
        ]
    definition = seq(*steps, task("wrap_up", "done"), end("done"))
    assert validate(definition) == []
    assert stats(definition) == SequenceStats(
        steps=4, shortest=timedelta(0), longest=timedelta(days=3)
    )


def test_stats_refuse_a_loop() -> None:
    definition = seq(
        call("call1", "c1"),
        answered("c1", yes="done", no="w1"),
        wait("w1", "call1", days=1),
        end("done"),
    )
    with pytest.raises(InvalidDefinition, match="without loops"):
        stats(definition)


def test_stats_refuse_a_missing_entry_or_target() -> None:
    with pytest.raises(InvalidDefinition, match="entry step 'nope'"):
        stats(seq(email("e1", "done"), end("done"), entry="nope"))
    with pytest.raises(InvalidDefinition, match="'ghost', which does not exist"):
        stats(seq(email("e1", "ghost")))


def test_stats_count_a_dead_end_as_the_end_of_its_path() -> None:
    definition = seq(email("e1", "w1"), wait("w1", "t1", days=1), task("t1"))
    assert stats(definition).longest == timedelta(days=1)


def test_stats_of_a_long_sequence_do_not_recurse() -> None:
    n = 5000
    steps: list[Step] = []
    for i in range(n):
        steps += [task(f"t{i}", f"w{i}"), wait(f"w{i}", f"t{i + 1}" if i + 1 < n else "last")]
    steps[-1] = wait(f"w{n - 1}", "last", hours=1)
    definition = seq(*steps, task("last", "done"), end("done"))
    assert validate(definition) == []
    assert stats(definition) == SequenceStats(
        steps=n + 1, shortest=timedelta(hours=1), longest=timedelta(hours=1)
    )


def test_only_an_end_may_follow_a_status_that_closes_the_record() -> None:
    definition = seq(
        SetStatusStep(id="s1", status="disqualified", reason="lost", next="c1"),
        call("c1", "done"),
        end("done"),
    )
    problems = validate(definition)
    assert codes(problems) == [("s1", ProblemCode.STEP_AFTER_CLOSE)]
    assert "'c1' (call) follows" in problems[0].message
    fixed = seq(
        SetStatusStep(id="s1", status="disqualified", reason="lost", next="done"), end("done")
    )
    assert validate(fixed) == []
