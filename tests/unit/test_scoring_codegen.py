"""The shape of the generated scorer: each field read once, single-use reads inlined,
text folded once per field, values bound as the code's own constants, and no
interaction machinery for a model without interaction conditions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from salesflow.conditions import field
from salesflow.interactions import Interaction
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.scoring import (
    InteractionCondition,
    RuleHit,
    ScoreResult,
    ScoringModel,
    ScoringRule,
    compile_model,
    score,
)
from salesflow.values import Money

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def rule(rule_id: str, points: int, *conditions: Any) -> ScoringRule:
    return ScoringRule(id=rule_id, name=rule_id.title(), conditions=conditions, points=points)


def model(*rules: ScoringRule, **options: Any) -> ScoringModel:
    return ScoringModel(id="m1", name="Model", sales_ready_threshold=1, rules=rules, **options)


def records(**fields: Any) -> tuple[Lead, Contact, Account]:
    the_contact = Contact(id="c1", last_name="Lee", created_at=NOW, modified_at=NOW)
    the_account = Account(
        id="a1",
        name="Contoso",
        created_at=NOW,
        modified_at=NOW,
        annual_revenue=Money(amount=Decimal(2_000_000), currency="EUR"),
    )
    the_lead = Lead(
        id="l1",
        topic="Trial",
        last_name="Lee",
        created_at=NOW,
        modified_at=NOW,
        parent_contact_id="c1",
        parent_account_id="a1",
        **fields,
    )
    return the_lead, the_contact, the_account


def points_source(source: str) -> str:
    return source.split("\ndef hits")[0]


TEXT = model(
    rule("vp", 15, field("lead.job_title").starts_with("VP")),
    rule("director", 12, field("lead.job_title").contains("Director")),
    rule("sales", 3, field("lead.job_title").contains("sales")),
    rule("london", 70, field("lead.city").eq("London")),
    rule("segment", 7, field("lead.custom.segment").eq("enterprise")),
    rule("rich", 9, field("account.annual_revenue").ge(Decimal(1_000_000))),
)


def test_a_field_with_several_text_tests_is_folded_once() -> None:
    compiled = compile_model(TEXT)
    source = points_source(compiled.source)
    assert source.count("job_title") == 1
    assert source.count(".casefold()") == 1
    for title, expected in [("VP of Sales", 15 + 3), ("Sales Director", 12 + 3), (None, 0)]:
        lead, contact, account = records(job_title=title)
        assert compiled.points(lead, contact, account) == expected + 9


def test_reads_used_once_are_inlined_and_values_are_constants() -> None:
    compiled = compile_model(TEXT)
    source = points_source(compiled.source)
    # the read sits in its test, not in a local of its own
    assert "if lead.city == c" in source
    assert ".get(c" in source
    assert "London" not in compiled.source
    constants = compiled.points.__code__.co_consts
    assert "London" in constants
    assert "enterprise" in constants
    # a Decimal is no constant the compiler takes: it stays a bound name
    assert Decimal(1_000_000) not in constants
    lead, contact, account = records(city="London", custom={"segment": "enterprise"})
    assert compiled.points(lead, contact, account) == 70 + 7 + 9


def test_a_field_used_by_several_rules_is_read_once() -> None:
    compiled = compile_model(
        model(
            rule("big", 20, field("lead.employees").ge(500)),
            rule("mid", 10, field("lead.employees").ge(50), field("lead.employees").lt(500)),
            rule("tiny", -15, field("lead.employees").lt(10)),
        )
    )
    assert points_source(compiled.source).count("lead.employees") == 1
    for employees, expected in [(None, 0), (5, -15), (50, 10), (499, 10), (500, 20)]:
        lead, contact, account = records(employees=employees)
        assert compiled.points(lead, contact, account) == expected


def test_no_interaction_conditions_no_interaction_work() -> None:
    compiled = compile_model(TEXT)
    assert "_counts" not in compiled.source
    lead, contact, account = records(job_title="VP")

    def never_read() -> Any:
        raise AssertionError("a model without interaction conditions read the interactions")
        yield

    result = score(
        compiled, lead=lead, contact=contact, account=account, interactions=never_read(), now=NOW
    )
    assert isinstance(result, ScoreResult)
    assert result.points == 15 + 9
    assert result.explanation == (
        RuleHit(rule_id="vp", rule_name="Vp", points=15),
        RuleHit(rule_id="rich", rule_name="Rich", points=9),
    )
    assert result.next_change_at is None


def test_rules_counting_interactions_still_explain_them() -> None:
    compiled = compile_model(
        model(
            rule("opened", 5, InteractionCondition(kind="email_opened", frequency="each")),
            rule("quiet", 2, InteractionCondition(kind="email_clicked", frequency="none")),
            rule("vp", 15, field("lead.job_title").starts_with("VP")),
        )
    )
    lead, contact, account = records(job_title="VP")
    opened = [
        Interaction(id=f"i{n}", kind="email_opened", occurred_at=NOW, contact_id="c1")
        for n in (2, 1)
    ]
    result = score(
        compiled, lead=lead, contact=contact, account=account, interactions=opened, now=NOW
    )
    assert isinstance(result, ScoreResult)
    assert result.explanation == (
        RuleHit(
            rule_id="opened",
            rule_name="Opened",
            points=10,
            interactions=("i1", "i2"),
            occurrences=2,
        ),
        RuleHit(rule_id="quiet", rule_name="Quiet", points=2),
        RuleHit(rule_id="vp", rule_name="Vp", points=15),
    )
    assert compiled.points(lead, contact, account, opened, NOW) == 27
