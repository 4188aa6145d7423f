"""Scoring models: the reference example, grades, validation, windows and
``next_change_at``, account-based scoring, explanations, documents, and the safety
of the generated scorer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from salesflow.conditions import any_of, field, not_
from salesflow.errors import InvalidDefinition, ValidationError
from salesflow.interactions import Interaction
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.scoring import (
    Frequency,
    Grade,
    InteractionCondition,
    NotScored,
    NotScoredReason,
    ProblemCode,
    RuleHit,
    ScoreResult,
    ScoringModel,
    ScoringRule,
    compile_model,
    from_dict,
    require_valid,
    score,
    to_dict,
    validate,
)
from salesflow.values import Money

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GRADES = (
    Grade(name="cold", high=25),
    Grade(name="warm", low=26, high=60),
    Grade(name="hot", low=61),
)


def lead(**fields: Any) -> Lead:
    values: dict[str, Any] = {"id": "l1", "topic": "Trial", "last_name": "Lee"}
    values |= {"parent_contact_id": "c1"} | fields
    return Lead(created_at=NOW, modified_at=NOW, **values)


def contact(**fields: Any) -> Contact:
    values: dict[str, Any] = {"id": "c1", "last_name": "Lee"} | fields
    return Contact(created_at=NOW, modified_at=NOW, **values)


def account(**fields: Any) -> Account:
    values: dict[str, Any] = {"id": "a1", "name": "Contoso"} | fields
    return Account(created_at=NOW, modified_at=NOW, **values)


def opened(
    n: int, *, ago: timedelta, source: str | None = None, contact_id: str = "c1"
) -> Interaction:
    return Interaction(
        id=f"i{n}",
        kind="email_opened",
        occurred_at=NOW - ago,
        contact_id=contact_id,
        source_id=source,
    )


def rule(rule_id: str, points: int, *conditions: Any) -> ScoringRule:
    return ScoringRule(id=rule_id, name=rule_id.title(), conditions=conditions, points=points)


def model(*rules: ScoringRule, **options: Any) -> ScoringModel:
    values: dict[str, Any] = {"id": "m1", "name": "Model", "sales_ready_threshold": 1}
    values |= {"grades": GRADES} | options
    return ScoringModel(rules=rules, **values)


def scored(result: ScoreResult | NotScored) -> ScoreResult:
    assert isinstance(result, ScoreResult), result
    return result


REFERENCE = model(
    rule("london", 70, field("lead.city").eq("London")),
    rule("england", 40, field("lead.country").eq("England")),
    sales_ready_threshold=100,
)


# --- the reference example and grades ------------------------------------------------


def test_reference_example_scores_110_and_is_sales_ready() -> None:
    compiled = compile_model(REFERENCE)
    result = scored(
        score(compiled, lead=lead(city="London", country="England"), contact=contact(), now=NOW)
    )
    assert result.points == 110
    assert result.grade == "hot"
    assert result.sales_ready
    assert result.explanation == (
        RuleHit(rule_id="london", rule_name="London", points=70),
        RuleHit(rule_id="england", rule_name="England", points=40),
    )
    assert result.next_change_at is None
    assert compiled.points(lead(city="London", country="England"), contact()) == 110


@pytest.mark.parametrize(
    ("city", "country", "points", "grade", "ready"),
    [
        ("London", "England", 110, "hot", True),
        ("London", None, 70, "hot", False),
        (None, "England", 40, "warm", False),
        ("Paris", "France", 0, "cold", False),
    ],
)
def test_rules_apply_independently_and_grade(
    city: str | None, country: str | None, points: int, grade: str, ready: bool
) -> None:
    result = scored(
        score(
            compile_model(REFERENCE),
            lead=lead(city=city, country=country),
            contact=contact(),
            now=NOW,
        )
    )
    assert (result.points, result.grade, result.sales_ready) == (points, grade, ready)
    assert sum(hit.points for hit in result.explanation) == result.points


def test_negative_points_lower_the_score_and_grade_can_be_missing() -> None:
    compiled = compile_model(
        model(
            rule("gmail", -30, field("lead.email").contains("@gmail.")),
            rule("big", 20, field("lead.employees").ge(500)),
            grades=(Grade(name="any", low=0),),
        )
    )
    result = scored(
        score(compiled, lead=lead(email="x@gmail.com", employees=10), contact=contact(), now=NOW)
    )
    assert result.points == -30
    assert result.grade is None
    assert result.explanation == (RuleHit(rule_id="gmail", rule_name="Gmail", points=-30),)


def test_money_compares_by_amount_and_custom_fields_are_read() -> None:
    compiled = compile_model(
        model(
            rule("rich", 10, field("account.annual_revenue").ge(Decimal(1_000_000))),
            rule("segment", 5, field("lead.custom.segment").in_(["smb", "mid"])),
            rule("usd", 1, field("account.annual_revenue_currency").eq("USD")),
            target="account",
        )
    )
    rich = account(annual_revenue=Money(amount="2000000", currency="EUR"))
    the_lead = lead(parent_contact_id=None, parent_account_id="a1", custom={"segment": "mid"})
    assert compiled.points(the_lead, None, rich) == 15
    assert compiled.points(the_lead, None, account()) == 5


def test_all_any_not_and_mismatched_types_follow_the_shared_language() -> None:
    compiled = compile_model(
        model(
            rule(
                "either",
                3,
                any_of(field("lead.city").eq("Vilnius"), field("lead.rating").eq("hot")),
            ),
            rule("not_retail", 2, not_(field("lead.industry").eq("Retail"))),
            # comparing text with a number is false, never an error
            rule("odd", 7, field("lead.city").gt(5)),
            rule("starts", 1, field("lead.job_title").starts_with("VP")),
        )
    )
    assert compiled.points(lead(rating="hot", industry="Energy", job_title="vp sales")) == 6
    assert compiled.points(lead(city="Vilnius", industry="Retail")) == 3


# --- validation ------------------------------------------------------------------------


def test_validate_reports_every_problem_naming_rule_or_grade() -> None:
    bad = model(
        rule("a", 5, field("lead.nope").eq(1)),
        rule("a", 5, field("city").eq("x")),
        rule(
            "b",
            5,
            InteractionCondition(kind="email_opened", frequency="each"),
            InteractionCondition(kind="email_clicked", frequency="each"),
        ),
        rule("c", 5),
        grades=(
            Grade(name="cold", high=25),
            Grade(name="warm", low=20, high=40),
            Grade(name="hot", low=50),
            Grade(name="hot", low=60, high=70),
        ),
        audience=field("opportunity.name").eq("x"),
    )
    problems = validate(bad)
    codes = [(p.code, p.rule_id, p.grade) for p in problems]
    assert (ProblemCode.UNKNOWN_FIELD, None, None) in codes  # the audience
    assert (ProblemCode.UNKNOWN_FIELD, "a", None) in codes
    assert (ProblemCode.DUPLICATE_RULE_ID, "a", None) in codes
    assert (ProblemCode.SEVERAL_EACH, "b", None) in codes
    assert (ProblemCode.EMPTY_RULE, "c", None) in codes
    assert (ProblemCode.GRADE_OVERLAP, None, "warm") in codes
    assert (ProblemCode.GRADE_GAP, None, "hot") in codes
    assert (ProblemCode.DUPLICATE_GRADE, None, "hot") in codes
    assert (ProblemCode.GRADE_OPEN_END, None, "hot") in codes
    with pytest.raises(InvalidDefinition) as caught:
        require_valid(bad)
    assert len(caught.value.problems) == len(problems)
    assert "'lead.nope'" in str(caught.value)
    with pytest.raises(InvalidDefinition):
        compile_model(bad)


def test_validate_no_rules_and_unreachable_threshold() -> None:
    codes = {p.code for p in validate(model(sales_ready_threshold=1))}
    assert codes == {ProblemCode.NO_RULES}
    unreachable = model(rule("a", 10, field("lead.city").eq("x")), sales_ready_threshold=11)
    assert [p.code for p in validate(unreachable)] == [ProblemCode.THRESHOLD_UNREACHABLE]
    assert validate(REFERENCE) == []


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: rule("a", 0, field("lead.city").eq("x")), "non-zero"),
        (lambda: rule("a", True, field("lead.city").eq("x")), "non-zero"),
        (lambda: InteractionCondition(kind="email_opened", window=timedelta(0)), "positive"),
        (lambda: InteractionCondition(kind="email_opened", count=0), ">= 1"),
        (lambda: InteractionCondition(kind="email_opened", frequency="each", count=2), "at_least"),
        (lambda: InteractionCondition(kind="nope"), "choose one of"),
        (lambda: Grade(name="g", low=5, high=1), "swap"),
        (lambda: model(rule("a", 1, "lead.city = x")), "field condition"),
    ],
)
def test_local_rules_raise_on_construction(make: Any, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        make()


# --- interactions, windows, next_change_at --------------------------------------------

WINDOW = timedelta(days=28)


def test_frequencies_each_at_least_none() -> None:
    compiled = compile_model(
        model(
            rule(
                "each",
                5,
                InteractionCondition(kind="email_opened", frequency="each", window=WINDOW),
            ),
            rule(
                "three",
                20,
                InteractionCondition(kind="email_opened", frequency=Frequency.AT_LEAST, count=3),
            ),
            rule(
                "silent",
                -10,
                InteractionCondition(kind="email_clicked", frequency="none", window=WINDOW),
            ),
        )
    )
    items = [
        opened(1, ago=timedelta(days=1)),
        opened(2, ago=timedelta(days=2)),
        opened(3, ago=timedelta(days=40)),
    ]
    result = scored(score(compiled, lead=lead(), contact=contact(), interactions=items, now=NOW))
    assert result.explanation == (
        RuleHit(
            rule_id="each", rule_name="Each", points=10, interactions=("i2", "i1"), occurrences=2
        ),
        RuleHit(rule_id="three", rule_name="Three", points=20, interactions=("i3", "i2", "i1")),
        RuleHit(rule_id="silent", rule_name="Silent", points=-10),
    )
    assert result.points == 20
    assert compiled.points(lead(), contact(), None, items, NOW) == 20
    # the oldest counted interaction leaves the 28-day window first
    assert result.next_change_at == NOW - timedelta(days=2) + WINDOW


def test_score_falls_when_interactions_age_out_of_the_window() -> None:
    compiled = compile_model(
        model(
            rule(
                "opens",
                10,
                InteractionCondition(kind="email_opened", frequency="each", window=WINDOW),
            )
        )
    )
    items = [opened(1, ago=timedelta(days=27)), opened(2, ago=timedelta(days=3))]
    first = scored(score(compiled, lead=lead(), contact=contact(), interactions=items, now=NOW))
    assert first.points == 20
    assert first.next_change_at == NOW + timedelta(days=1)
    later = scored(
        score(
            compiled, lead=lead(), contact=contact(), interactions=items, now=first.next_change_at
        )
    )
    assert later.points == 10  # the window excludes its own end
    assert later.next_change_at == NOW + timedelta(days=25)
    assert (
        scored(
            score(
                compiled,
                lead=lead(),
                contact=contact(),
                interactions=items,
                now=NOW + timedelta(days=26),
            )
        ).points
        == 0
    )


def test_source_filter_and_future_interactions() -> None:
    compiled = compile_model(
        model(
            rule(
                "news",
                10,
                InteractionCondition(kind="email_opened", source_id="newsletter", window=WINDOW),
            )
        )
    )
    other = opened(1, ago=timedelta(days=1), source="promo")
    future = opened(2, ago=-timedelta(hours=1), source="newsletter")
    result = scored(
        score(compiled, lead=lead(), contact=contact(), interactions=[other, future], now=NOW)
    )
    assert result.points == 0
    assert result.next_change_at == NOW + timedelta(hours=1)


def test_account_based_counts_every_contact_of_the_account() -> None:
    compiled = compile_model(
        model(
            rule("team", 15, InteractionCondition(kind="email_opened", count=2)),
            rule("bank", 5, field("account.industry").eq("Banking")),
            target="account",
        )
    )
    items = [
        opened(1, ago=timedelta(days=1), contact_id="c1"),
        opened(2, ago=timedelta(days=2), contact_id="c2"),
    ]
    the_lead = lead(parent_contact_id=None, parent_account_id="a1")
    result = scored(
        score(
            compiled,
            lead=the_lead,
            account=account(industry="Banking"),
            interactions=items,
            now=NOW,
        )
    )
    assert result.points == 20
    assert result.explanation[0].interactions == ("i2", "i1")


# --- which leads are scored ------------------------------------------------------------


def test_lead_without_parent_is_not_scored_unless_the_model_says_so() -> None:
    orphan = lead(parent_contact_id=None, city="London")
    result = score(compile_model(REFERENCE), lead=orphan, now=NOW)
    assert isinstance(result, NotScored)
    assert result.reason is NotScoredReason.NO_PARENT
    assert "score_leads_without_parent" in result.message
    assert compile_model(REFERENCE).points(orphan) is None
    lenient = compile_model(model(*REFERENCE.rules, score_leads_without_parent=True))
    assert scored(score(lenient, lead=orphan, now=NOW)).points == 70
    # a lead with only an account parent has a parent, just not a contact
    account_only = lead(parent_contact_id=None, parent_account_id="a1", city="London")
    assert lenient.points(account_only, None, account()) is None


def test_audience_filter() -> None:
    compiled = compile_model(model(*REFERENCE.rules, audience=field("lead.country").eq("England")))
    outside = score(
        compiled, lead=lead(city="London", country="France"), contact=contact(), now=NOW
    )
    assert isinstance(outside, NotScored)
    assert outside.reason is NotScoredReason.OUTSIDE_AUDIENCE
    assert compiled.points(lead(city="London", country="France"), contact()) is None
    assert compiled.points(lead(city="London", country="England"), contact()) == 110


def test_score_checks_parents_and_now() -> None:
    compiled = compile_model(REFERENCE)
    with pytest.raises(ValidationError, match="pass it as contact="):
        score(compiled, lead=lead(), now=NOW)
    with pytest.raises(ValidationError, match="not the parent contact"):
        score(compiled, lead=lead(), contact=contact(id="c9"), now=NOW)
    with pytest.raises(ValidationError, match="timezone-aware"):
        score(compiled, lead=lead(), contact=contact(), now=datetime(2026, 1, 1))


@pytest.mark.parametrize("name", ["scored_at", "next_change_at"])
def test_score_result_refuses_naive_datetimes(name: str) -> None:
    values: dict[str, Any] = {
        "model_id": "m1",
        "model_version": 1,
        "lead_id": "l1",
        "points": 0,
        "grade": None,
        "sales_ready": False,
        "explanation": (),
        "next_change_at": None,
        "scored_at": NOW,
    }
    assert ScoreResult(**values).scored_at == NOW
    with pytest.raises(ValidationError, match="naive datetime; attach a time zone") as caught:
        ScoreResult(**values | {name: datetime(2026, 3, 2, 9, 0)})
    assert caught.value.field == f"ScoreResult.{name}"
    with pytest.raises(ValidationError, match="timezone-aware"):
        ScoreResult(**values | {name: "2026-03-02T09:00:00Z"})


def test_contact_fields_read_empty_when_the_contact_is_missing() -> None:
    compiled = compile_model(
        model(
            rule("no_job", 4, field("contact.job_title").is_null()),
            rule("job", 9, field("contact.job_title").not_null()),
            target="account",
        )
    )
    the_lead = lead(parent_contact_id=None, parent_account_id="a1")
    assert compiled.points(the_lead, None, account()) == 4


# --- documents -------------------------------------------------------------------------

FULL = model(
    rule("london", 70, field("lead.city").eq("London"), field("contact.do_not_email").eq(False)),
    rule(
        "opens",
        3,
        InteractionCondition(
            kind="email_opened", source_id="news", frequency="each", window=WINDOW
        ),
    ),
    rule(
        "clicks",
        -5,
        InteractionCondition(kind="email_clicked", frequency="none", window=timedelta(hours=36)),
        field("account.annual_revenue").ge(Decimal("1.5")),
    ),
    rule("many", 8, InteractionCondition(kind="website_visited", count=4)),
    audience=any_of(field("lead.country").in_(["England", "Wales"]), field("lead.employees").gt(9)),
    version=3,
    description="All of it",
    score_leads_without_parent=True,
)


def test_document_round_trip_through_json() -> None:
    text = json.dumps(to_dict(FULL))
    back = from_dict(json.loads(text))
    assert back == FULL
    assert to_dict(back) == json.loads(text)
    doc = to_dict(FULL)
    assert doc["schema"] == 1
    assert doc["kind"] == "scoring_model"
    assert doc["rules"][2]["conditions"][0]["window"] == {"days": 1, "hours": 12}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            lambda d: d["rules"][1]["conditions"][0].update(window={"days": "x"}),
            "rules[1].conditions[0].window.days",
        ),
        (lambda d: d["rules"][0].update(points=0), "rules[0].points"),
        (lambda d: d["rules"][0].update(extra=1), "rules[0].extra"),
        (
            lambda d: d["rules"][0]["conditions"][0].update(kind="magic"),
            "rules[0].conditions[0].kind",
        ),
        (
            lambda d: d["rules"][0]["conditions"][0]["condition"].update(op="nope"),
            "rules[0].conditions[0].condition",
        ),
        (lambda d: d["grades"][0].update(low="1"), "grades[0].low"),
        (lambda d: d.update(schema=2), "schema"),
        (lambda d: d.pop("sales_ready_threshold"), "sales_ready_threshold"),
        (lambda d: d.update(target="team"), "target"),
    ],
)
def test_malformed_documents_name_the_path(change: Any, path: str) -> None:
    doc = json.loads(json.dumps(to_dict(FULL)))
    change(doc)
    with pytest.raises(ValidationError) as caught:
        from_dict(doc)
    assert str(caught.value).startswith(path), str(caught.value)


# --- the generated scorer is safe ---------------------------------------------------------

HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "x'); __import__('os').system('touch {marker}'); ('",
    '"""\nimport os\nos.system("touch {marker}")\n"""',
    "\\'\n__import__('os').system('touch {marker}')#",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_values_are_data_not_code(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    value = payload.format(marker=marker)
    hostile = model(
        rule("v", 5, field("lead.description").eq(value)),
        rule("w", 7, field("lead.description").contains(value)),
        rule("x", 11, field("lead.custom.note").in_([value, "y"])),
        rule(
            "s", 13, InteractionCondition(kind="email_opened", source_id="s" + value.strip()[:150])
        ),
        audience=field("lead.topic").ne(value),
    )
    compiled = compile_model(hostile)
    assert value not in compiled.source
    assert "os" not in compiled.source.split()
    the_lead = lead(description=value, custom={"note": "y"})
    assert compiled.points(the_lead, contact(), None, (), NOW) == 23
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "lead.city == 1 or __import__('os').system('true') #",
        "lead.custom.x']); __import__('os')",
        "lead.__class__",
        "lead.city.__globals__",
        "__builtins__.city",
    ],
)
def test_hostile_field_names_are_refused(name: str) -> None:
    hostile = model(rule("r", 1, field(name).eq(1)))
    assert [p.code for p in validate(hostile)] == [ProblemCode.UNKNOWN_FIELD]
    with pytest.raises(InvalidDefinition):
        compile_model(hostile)


def test_generated_namespace_has_no_builtins() -> None:
    compiled = compile_model(REFERENCE)
    assert "import" not in compiled.source
    assert compiled.points.__globals__["__builtins__"] == {}
