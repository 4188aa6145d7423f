"""Pipelines, automation rule definitions, templates and rule timing (the pure parts)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from salesflow.conditions import field
from salesflow.errors import InvalidDefinition, NotFound, ValidationError
from salesflow.pipelines import Pipeline, Stage, StageKind, Trigger, require_valid, validate
from salesflow.pipelines_io import dumps_json, from_dict, loads_json, to_dict
from salesflow.rules import (
    ActivityDue,
    After,
    At,
    AutomationRule,
    ChangeStage,
    ConnectSequence,
    CopyDeal,
    CreateRepeatLead,
    Delay,
    FromField,
    Immediately,
    Notify,
    Responsible,
    ScheduleActivity,
    UpdateField,
    activity_due_at,
    rule_due_at,
)
from salesflow.templating import Template
from salesflow.values import Money, RecordKind
from salesflow.worktime import OrganizationCalendar

STAGES = [
    Stage(id="new", name="New"),
    Stage(id="approval", name="Contract approval"),
    Stage(id="won", name="Closed won", kind="won"),
    Stage(id="lost", name="Closed lost", kind="lost"),
]
UTC_CAL = OrganizationCalendar()
WARSAW = OrganizationCalendar(timezone="Europe/Warsaw")


def rule(**kw: object) -> AutomationRule:
    fields: dict[str, object] = {"id": "r1", "stage": "won", "action": Notify(message="Won")}
    fields.update(kw)
    return AutomationRule(**fields)  # type: ignore[arg-type]


def sales(*rules: AutomationRule, triggers: tuple[Trigger, ...] = ()) -> Pipeline:
    return Pipeline(id="sales", name="Sales", stages=STAGES, rules=rules, triggers=triggers)


# --- templates -----------------------------------------------------------------------


def test_template_renders_fields_and_escapes_braces() -> None:
    t = Template("{{literal}} {name} for {account.name}: {estimated_value}")
    values = {
        "name": "Laptops",
        "account.name": "Contoso",
        "estimated_value": Money(amount="10", currency="EUR"),
    }
    assert t.render(values) == "{literal} Laptops for Contoso: 10 EUR"
    assert t.placeholders == ("name", "account.name", "estimated_value")


def test_template_renders_missing_values_as_empty() -> None:
    assert Template("[{name}]").render({}) == "[]"


@pytest.mark.parametrize(
    "text",
    [
        "{name.__class__}",
        "{0}",
        "{name!r}",
        "{name:>10}",
        "{contact.__dict__}",
        "{ }",
        "a { b",
        "a } b",
        "{owner.name}",
        "{name[0]}",
    ],
)
def test_template_refuses_anything_but_a_field(text: str) -> None:
    with pytest.raises(ValidationError, match="template"):
        Template(text)


def test_template_check_names_the_missing_field() -> None:
    Template("{name} {contact.last_name} {account.name} {custom.tier}").check(
        RecordKind.OPPORTUNITY
    )
    with pytest.raises(ValidationError, match="nickname"):
        Template("Hi {contact.nickname}").check(RecordKind.OPPORTUNITY)
    with pytest.raises(ValidationError, match="topic"):
        Template("{topic}").check(RecordKind.OPPORTUNITY)


def test_template_refuses_long_or_binary_text() -> None:
    with pytest.raises(ValidationError, match="at most"):
        Template("x" * 2001)
    with pytest.raises(ValidationError, match="NUL"):
        Template("a\x00b")
    with pytest.raises(ValidationError, match="text"):
        Template(5)  # type: ignore[arg-type]


# --- definitions ---------------------------------------------------------------------


def test_a_valid_pipeline_has_no_problems() -> None:
    pipeline = sales(
        rule(
            id="renewal",
            timing=After(delay=Delay(months=6)),
            action=CreateRepeatLead(name="Renewal: {name}", responsible=Responsible(users=["u1"])),
        ),
        rule(id="copy", action=CopyDeal(pipeline="sales", stage="new")),
        rule(
            id="call",
            stage="approval",
            action=ScheduleActivity(
                kind="phone_call",
                subject="Call {contact.last_name}",
                due=ActivityDue(days=1, at=time(14)),
                complete_on_stage_change=True,
            ),
        ),
        rule(id="then", stage="approval", run="after_previous", action=ChangeStage(stage="won")),
        triggers=(Trigger(event="email_replied", stage="approval"),),
    )
    assert validate(pipeline) == []
    require_valid(pipeline)


def test_validate_reports_every_problem_at_once() -> None:
    pipeline = Pipeline(
        id="p",
        name="P",
        stages=[Stage(id="a", name="A"), Stage(id="a", name="A again")],
        rules=[
            AutomationRule(id="r", stage="nowhere", action=ChangeStage(stage="a")),
            AutomationRule(id="r", stage="a", action=ChangeStage(stage="a")),
            AutomationRule(id="t", stage="a", action=Notify(message="{nope}")),
            AutomationRule(
                id="f", stage="a", timing=FromField(field="name"), action=Notify(message="x")
            ),
            AutomationRule(id="u", stage="a", action=UpdateField(field="status", value="won")),
            AutomationRule(
                id="c", stage="a", condition=field("colour").eq("red"), action=Notify(message="x")
            ),
        ],
        triggers=[
            Trigger(event="email_opened", stage="b"),
            Trigger(event="field_changed", stage="a"),
        ],
    )
    text = "\n".join(str(p) for p in validate(pipeline))
    for expected in [
        "stage a: the stage id is used twice",
        "rule r: its stage 'nowhere' is not a stage",
        "rule r: the rule id is used twice",
        "rule r: it moves the item to its own stage",
        "rule t: template",
        "rule f: its timing counts from 'name', which is not a date",
        "rule u: 'status' is kept by the engine",
        "rule c:",
        "trigger 0: its stage 'b' is not a stage",
        "trigger 1: a field-changed trigger names a field",
    ]:
        assert expected in text
    with pytest.raises(InvalidDefinition):
        require_valid(pipeline)


def test_first_rule_of_a_stage_cannot_wait_for_a_previous_one() -> None:
    problems = validate(sales(rule(run="after_previous")))
    assert any("first rule of stage 'won'" in str(p) for p in problems)


def test_copy_targets_are_checked_against_published_pipelines() -> None:
    pipeline = sales(rule(action=CopyDeal(pipeline="delivery", stage="prep")))
    with pytest.raises(InvalidDefinition, match="not published"):
        require_valid(pipeline)
    delivery = Pipeline(id="delivery", name="Delivery", stages=[Stage(id="start", name="Start")])
    with pytest.raises(InvalidDefinition, match="'prep' is not a stage of 'delivery'"):
        require_valid(pipeline, [delivery])
    leads = Pipeline(id="leads", name="Leads", record_type="lead", stages=STAGES[:1])
    with pytest.raises(InvalidDefinition, match="not for deals"):
        require_valid(sales(rule(action=CopyDeal(pipeline="leads"))), [leads])
    lead_copy = Pipeline(
        id="lp",
        name="L",
        record_type="lead",
        stages=STAGES[:1],
        rules=[AutomationRule(id="x", stage="new", action=CopyDeal(pipeline="lp"))],
    )
    assert any("only deals" in str(p) for p in validate(lead_copy))


def test_bad_values_are_refused_when_built() -> None:
    with pytest.raises(ValidationError, match="months"):
        Delay(months=121)
    with pytest.raises(ValidationError, match="days"):
        Delay(days=-1)
    with pytest.raises(ValidationError, match="kind"):
        ScheduleActivity(kind="email", subject="x")
    with pytest.raises(ValidationError, match="twice"):
        Responsible(users=["u1", "u1"])
    with pytest.raises(ValidationError, match="record_type"):
        Pipeline(id="p", name="P", record_type="contact", stages=STAGES)
    with pytest.raises(ValidationError, match="naive"):
        At(at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="action"):
        AutomationRule(id="r", stage="s", action="copy")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="stages: new, approval, won, lost"):
        sales().stage("paid")


# --- timing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2026, 1, 31, 10, tzinfo=UTC), 1, datetime(2026, 2, 28, 10, tzinfo=UTC)),
        (datetime(2027, 12, 31, 10, tzinfo=UTC), 2, datetime(2028, 2, 29, 10, tzinfo=UTC)),
        (datetime(2026, 8, 31, 10, tzinfo=UTC), 6, datetime(2027, 2, 28, 10, tzinfo=UTC)),
        (datetime(2026, 3, 15, 10, tzinfo=UTC), 6, datetime(2026, 9, 15, 10, tzinfo=UTC)),
    ],
)
def test_months_clamp_to_the_end_of_a_shorter_month(
    start: datetime, months: int, expected: datetime
) -> None:
    r = rule(timing=After(delay=Delay(months=months)))
    assert rule_due_at(r, start=start, field_value=None, calendar=UTC_CAL, working=None) == expected


def test_months_keep_the_local_time_across_daylight_saving() -> None:
    # 10:00 in Warsaw in January is 09:00 UTC; six months later (summer time) 08:00 UTC
    start = datetime(2026, 1, 15, 9, tzinfo=UTC)
    r = rule(timing=After(delay=Delay(months=6)))
    due = rule_due_at(r, start=start, field_value=None, calendar=WARSAW, working=None)
    assert due == datetime(2026, 7, 15, 8, tzinfo=UTC)
    # hours are elapsed time: 24 hours over the spring change are 25 h on the wall clock
    r = rule(timing=After(delay=Delay(hours=24)))
    due = rule_due_at(
        r,
        start=datetime(2026, 3, 28, 12, tzinfo=UTC),
        field_value=None,
        calendar=WARSAW,
        working=None,
    )
    assert due == datetime(2026, 3, 29, 12, tzinfo=UTC)
    r = rule(timing=After(delay=Delay(days=1)))
    due = rule_due_at(
        r,
        start=datetime(2026, 3, 28, 12, tzinfo=UTC),
        field_value=None,
        calendar=WARSAW,
        working=None,
    )
    assert due == datetime(2026, 3, 29, 11, tzinfo=UTC)  # same wall time, one hour less


def test_from_field_before_and_after_a_date() -> None:
    r = rule(timing=FromField(field="estimated_close_date", delay=Delay(days=3), before=True))
    due = rule_due_at(
        r,
        start=datetime(2026, 1, 1, tzinfo=UTC),
        field_value=date(2026, 5, 10),
        calendar=WARSAW,
        working=None,
    )
    assert due == datetime(2026, 5, 7, 7, tzinfo=UTC)  # 09:00 Warsaw summer time
    r = rule(timing=FromField(field="estimated_close_date", at=time(14)))
    due = rule_due_at(
        r,
        start=datetime(2026, 1, 1, tzinfo=UTC),
        field_value=date(2026, 5, 10),
        calendar=UTC_CAL,
        working=None,
    )
    assert due == datetime(2026, 5, 10, 14, tzinfo=UTC)
    assert (
        rule_due_at(
            r,
            start=datetime(2026, 1, 1, tzinfo=UTC),
            field_value=None,
            calendar=UTC_CAL,
            working=None,
        )
        is None
    )


def test_working_time_moves_a_weekend_time_to_monday_morning() -> None:
    r = rule(timing=After(delay=Delay(days=1)))
    friday = datetime(2026, 3, 6, 10, tzinfo=UTC)
    due = rule_due_at(r, start=friday, field_value=None, calendar=UTC_CAL, working=UTC_CAL)
    assert due == datetime(2026, 3, 9, 8, tzinfo=UTC)


def test_exact_and_immediate_timings() -> None:
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert (
        rule_due_at(
            rule(timing=At(at=at)), start=start, field_value=None, calendar=UTC_CAL, working=None
        )
        == at
    )
    assert (
        rule_due_at(
            rule(timing=Immediately()),
            start=start,
            field_value=None,
            calendar=UTC_CAL,
            working=None,
        )
        == start
    )


def test_activity_due_is_on_the_responsible_users_wall_clock() -> None:
    now = datetime(2026, 3, 6, 22, 30, tzinfo=UTC)  # already Saturday 06:30 in Tokyo
    tokyo = OrganizationCalendar(timezone="Asia/Tokyo")
    tomorrow_14 = activity_due_at(ActivityDue(days=1, at=time(14)), now, tokyo)
    assert tomorrow_14 == datetime(2026, 3, 8, 5, tzinfo=UTC)  # Sunday 14:00 JST
    assert activity_due_at(ActivityDue(days=2, at=time(12)), now, UTC_CAL) == datetime(
        2026, 3, 8, 12, tzinfo=UTC
    )
    assert activity_due_at(ActivityDue(hours=4), now, UTC_CAL) == datetime(
        2026, 3, 7, 2, 30, tzinfo=UTC
    )


# --- documents -----------------------------------------------------------------------


def every_kind_of_rule() -> Pipeline:
    return sales(
        rule(
            id="a",
            timing=After(delay=Delay(months=6, days=1, hours=2, minutes=3, weeks=1)),
            action=CreateRepeatLead(name="R {name}", responsible=Responsible(users=["u1", "u2"])),
            condition=field("probability").ge(50),
            working_time="owner",
            name="Repeat",
        ),
        rule(id="b", action=CopyDeal(pipeline="sales", stage="new", name="{name} again")),
        rule(
            id="c",
            run="after_previous",
            timing=FromField(
                field="estimated_close_date", delay=Delay(days=2), before=True, at=time(8, 30)
            ),
            action=ScheduleActivity(
                kind="task",
                subject="Prepare documents",
                description="For {account.name}",
                due=ActivityDue(days=2, at=time(12)),
                complete_on_stage_change=True,
            ),
        ),
        rule(
            id="d",
            stage="new",
            timing=At(at=datetime(2026, 6, 1, tzinfo=UTC)),
            action=ChangeStage(stage="approval"),
        ),
        rule(id="e", stage="new", action=UpdateField(field="probability", value=90)),
        rule(id="f", stage="new", action=ConnectSequence(sequence="nurture")),
        rule(id="g", stage="new", action=Notify(message="New: {name}", users=["boss"])),
        rule(
            id="h",
            stage="new",
            action=UpdateField(field="estimated_close_date", value=date(2026, 5, 1)),
        ),
        triggers=(
            Trigger(event="payment_received", stage="won", allow_backwards=True),
            Trigger(event="field_changed", stage="approval", field="probability"),
        ),
    )


def test_documents_round_trip_every_kind_of_rule() -> None:
    pipeline = every_kind_of_rule()
    assert validate(pipeline) == []
    assert from_dict(to_dict(pipeline)) == pipeline
    assert loads_json(dumps_json(pipeline)) == pipeline


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema=2), "schema 2 is newer"),
        (lambda d: d.update(colour="red"), "unknown key 'colour'"),
        (lambda d: d["rules"][0].update(timing={"soon": {}}), r"rules\[0\].timing"),
        (lambda d: d["rules"][0].update(timing={"after": {"months": "six"}}), "months"),
        (lambda d: d["rules"][0].update(action={"copy_deal": {}}), "pipeline"),
        (lambda d: d["rules"][0].update(action={"notify": {"message": "{x.y.z}"}}), "template"),
        (lambda d: d["stages"][0].update(kind="maybe"), r"stages\[0\]"),
        (lambda d: d["rules"][2].update(timing={"at": "2026-06-01T00:00:00"}), "time zone"),
    ],
)
def test_bad_documents_name_where(change: object, message: str) -> None:
    doc = to_dict(every_kind_of_rule())
    change(doc)  # type: ignore[operator]
    with pytest.raises(ValidationError, match=message):
        from_dict(doc)


def test_loads_json_refuses_oversized_and_broken_text() -> None:
    with pytest.raises(ValidationError, match="limit"):
        loads_json(" " * 1_000_001)
    with pytest.raises(ValidationError, match="not JSON"):
        loads_json("{")


def test_stage_kinds() -> None:
    assert [s.kind for s in STAGES] == [
        StageKind.OPEN,
        StageKind.OPEN,
        StageKind.WON,
        StageKind.LOST,
    ]
