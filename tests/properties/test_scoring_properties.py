"""Properties of scoring: the compiled scorer equals a plain reference interpreter
over random models and records; scoring does not depend on the order of rules or
interactions; the explanation always sums to the score."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Not, Op, evaluate
from salesflow.interactions import Interaction
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.scoring import (
    Frequency,
    InteractionCondition,
    ScoreResult,
    ScoringModel,
    ScoringRule,
    compile_model,
    score,
)
from salesflow.stores.base import record_value
from salesflow.values import Money

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KINDS = ("email_opened", "email_clicked", "website_visited")
SOURCES = (None, "s1", "s2")
WINDOWS = (None, timedelta(days=1), timedelta(days=7), timedelta(days=28))

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "lead.city": st.sampled_from(["London", "Paris", "london", "Vilnius", 5]),
    "lead.country": st.sampled_from(["England", "France", "Lithuania"]),
    "lead.employees": st.integers(0, 1000) | st.sampled_from(["many", Decimal("10.5")]),
    "lead.rating": st.sampled_from(["hot", "warm", "cold"]),
    "lead.job_title": st.sampled_from(["VP Sales", "vp", "Engineer", "sales"]),
    "lead.do_not_email": st.booleans(),
    "lead.custom.segment": st.sampled_from(["smb", "mid", 3, True]),
    "contact.city": st.sampled_from(["London", "Paris"]),
    "account.industry": st.sampled_from(["Banking", "Retail"]),
    "account.annual_revenue": st.integers(0, 2_000_000),
}


@st.composite
def compares(draw: st.DrawFn) -> Compare:
    name = draw(st.sampled_from(sorted(FIELD_VALUES)))
    op = draw(st.sampled_from(list(Op)))
    values = FIELD_VALUES[name]
    if op in (Op.IS_NULL, Op.NOT_NULL):
        return Compare(field=name, op=op)
    if op in (Op.IN, Op.NOT_IN):
        return Compare(
            field=name, op=op, value=tuple(draw(st.lists(values, min_size=1, max_size=3)))
        )
    if op in (Op.STARTS_WITH, Op.CONTAINS):
        return Compare(field=name, op=op, value=draw(st.sampled_from(["lo", "VP", "s", "an"])))
    return Compare(field=name, op=op, value=draw(values))


def conditions(depth: int = 2) -> st.SearchStrategy[Condition]:
    if depth == 0:
        return compares()
    inner = conditions(depth - 1)
    return st.one_of(
        compares(),
        compares(),
        st.lists(inner, max_size=3).map(lambda cs: AllOf(conditions=tuple(cs))),
        st.lists(inner, max_size=3).map(lambda cs: AnyOf(conditions=tuple(cs))),
        inner.map(lambda c: Not(condition=c)),
    )


@st.composite
def interaction_conditions(draw: st.DrawFn) -> InteractionCondition:
    frequency = draw(st.sampled_from(list(Frequency)))
    return InteractionCondition(
        kind=draw(st.sampled_from(KINDS)),
        source_id=draw(st.sampled_from(SOURCES)),
        frequency=frequency,
        count=draw(st.integers(1, 3)) if frequency is Frequency.AT_LEAST else 1,
        window=draw(st.sampled_from(WINDOWS)),
    )


@st.composite
def rules(draw: st.DrawFn, index: int) -> ScoringRule:
    parts: list[Any] = draw(st.lists(conditions(), max_size=2))
    parts += draw(st.lists(interaction_conditions(), max_size=2))
    if not parts:
        parts = [draw(compares())]
    each = [p for p in parts if isinstance(p, InteractionCondition) and p.frequency == "each"]
    for extra in each[1:]:
        parts.remove(extra)
    draw(st.randoms()).shuffle(parts)
    points = draw(st.integers(-50, 50).filter(bool))
    return ScoringRule(id=f"r{index}", name=f"Rule {index}", conditions=parts, points=points)


@st.composite
def models(draw: st.DrawFn) -> ScoringModel:
    count = draw(st.integers(1, 8))
    return ScoringModel(
        id="m",
        name="Random",
        target=draw(st.sampled_from(["contact", "account"])),
        audience=draw(st.none() | conditions(1)),
        rules=[draw(rules(i)) for i in range(count)],
        sales_ready_threshold=-1_000_000,
        score_leads_without_parent=draw(st.booleans()),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@st.composite
def records(draw: st.DrawFn) -> tuple[Lead, Contact | None, Account | None]:
    has_contact, has_account = draw(st.booleans()), draw(st.booleans())
    segment = draw(st.none() | FIELD_VALUES["lead.custom.segment"])
    employees = draw(st.none() | st.integers(0, 1000))
    the_lead = Lead(
        id="l1",
        topic="t",
        last_name="Lee",
        created_at=NOW,
        modified_at=NOW,
        city=draw(st.none() | st.sampled_from(["London", "Paris", "Vilnius"])),
        country=draw(st.none() | FIELD_VALUES["lead.country"]),
        employees=employees,
        rating=draw(st.none() | FIELD_VALUES["lead.rating"]),
        job_title=draw(st.none() | FIELD_VALUES["lead.job_title"]),
        do_not_email=draw(st.booleans()),
        custom={} if segment is None else {"segment": segment},
        parent_contact_id="c1" if has_contact else None,
        parent_account_id="a1" if has_account else None,
    )
    contact = (
        Contact(
            id="c1",
            last_name="Lee",
            created_at=NOW,
            modified_at=NOW,
            city=draw(st.none() | FIELD_VALUES["contact.city"]),
        )
        if has_contact
        else None
    )
    revenue = draw(st.none() | FIELD_VALUES["account.annual_revenue"])
    account = (
        Account(
            id="a1",
            name="Contoso",
            created_at=NOW,
            modified_at=NOW,
            industry=draw(st.none() | FIELD_VALUES["account.industry"]),
            annual_revenue=None if revenue is None else Money(amount=revenue, currency="EUR"),
        )
        if has_account
        else None
    )
    return the_lead, contact, account


@st.composite
def interactions(draw: st.DrawFn) -> list[Interaction]:
    count = draw(st.integers(0, 8))
    return [
        Interaction(
            id=f"i{i}",
            kind=draw(st.sampled_from(KINDS)),
            occurred_at=NOW - timedelta(hours=draw(st.integers(-5, 24 * 40))),
            contact_id="c1",
            source_id=draw(st.sampled_from(SOURCES)),
        )
        for i in range(count)
    ]


# --- the reference interpreter ---------------------------------------------------------


def reference(
    model: ScoringModel,
    lead: Lead,
    contact: Contact | None,
    account: Account | None,
    items: list[Interaction],
) -> int | None:
    """The score by the plain definition: no compilation, no shortcuts."""
    if model.target == "account" and lead.parent_contact_id is not None:
        return None  # a lead with a parent contact is contact-based
    own = lead.parent_contact_id if model.target == "contact" else lead.parent_account_id
    orphan = lead.parent_contact_id is None and lead.parent_account_id is None
    if own is None and not (orphan and model.score_leads_without_parent):
        return None
    scopes = {"lead": lead, "contact": contact, "account": account}

    def value_of(name: str) -> Any:
        scope, _, rest = name.partition(".")
        record = scopes[scope]
        return None if record is None else record_value(record, rest)

    if model.audience is not None and not evaluate(model.audience, value_of):
        return None
    total = 0
    for rule in model.rules:
        times = 1
        holds = True
        for condition in rule.conditions:
            if isinstance(condition, InteractionCondition):
                n = sum(
                    1
                    for item in items
                    if item.kind == condition.kind
                    and condition.source_id in (None, item.source_id)
                    and item.occurred_at <= NOW
                    and (condition.window is None or NOW - item.occurred_at < condition.window)
                )
                if condition.frequency == "each":
                    times = n
                    holds = holds and n > 0
                elif condition.frequency == "none":
                    holds = holds and n == 0
                else:
                    holds = holds and n >= condition.count
            else:
                holds = holds and evaluate(condition, value_of)
        if holds:
            total += rule.points * times
    return total


@settings(max_examples=300, deadline=None)
@given(models(), records(), interactions())
def test_compiled_scorer_equals_the_reference(
    model: ScoringModel,
    record: tuple[Lead, Contact | None, Account | None],
    items: list[Interaction],
) -> None:
    lead, contact, account = record
    compiled = compile_model(model)
    expected = reference(model, lead, contact, account, items)
    assert compiled.points(lead, contact, account, items, NOW) == expected
    result = score(
        compiled, lead=lead, contact=contact, account=account, interactions=items, now=NOW
    )
    if expected is None:
        assert not isinstance(result, ScoreResult)
    else:
        assert isinstance(result, ScoreResult)
        assert result.points == expected
        assert sum(hit.points for hit in result.explanation) == result.points
        assert result.sales_ready


@settings(max_examples=200, deadline=None)
@given(models(), records(), interactions(), st.randoms(use_true_random=False))
def test_scoring_is_order_independent(
    model: ScoringModel,
    record: tuple[Lead, Contact | None, Account | None],
    items: list[Interaction],
    rnd: random.Random,
) -> None:
    lead, contact, account = record
    shuffled_rules = list(model.rules)
    rnd.shuffle(shuffled_rules)
    shuffled_items = list(items)
    rnd.shuffle(shuffled_items)
    other = ScoringModel(
        id=model.id,
        name=model.name,
        target=model.target,
        audience=model.audience,
        rules=shuffled_rules,
        sales_ready_threshold=model.sales_ready_threshold,
        score_leads_without_parent=model.score_leads_without_parent,
    )
    first = score(
        compile_model(model),
        lead=lead,
        contact=contact,
        account=account,
        interactions=items,
        now=NOW,
    )
    second = score(
        compile_model(other),
        lead=lead,
        contact=contact,
        account=account,
        interactions=shuffled_items,
        now=NOW,
    )
    if isinstance(first, ScoreResult):
        assert isinstance(second, ScoreResult)
        assert second.points == first.points
        assert set(second.explanation) == set(first.explanation)
        assert second.next_change_at == first.next_change_at
        for result in (first, second):
            assert sum(hit.points for hit in result.explanation) == result.points
    else:
        assert second == first


# --- many rules on few fields: the generated code's shortcuts -----------------------------
#
# The generator reads a field used by several rules once, inlines reads used once,
# case-folds a field once for all its text tests and binds values as constants of the
# code. Models of many rules over a few fields (option sets, text, mixed-kind custom
# values, money) make every one of those paths common.

AWARE = datetime(2026, 1, 1, tzinfo=UTC)
DENSE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "lead.job_title": st.sampled_from(["VP Sales", "vp", "Sales Director", "Straße", "SS", 3]),
    "lead.rating": st.sampled_from(["hot", "warm", "cold", 1]),
    "lead.source": st.sampled_from(["web", "seminar", "partner", "Web"]),
    "lead.employees": st.integers(0, 600)
    | st.sampled_from([10.5, Decimal("49.5"), "many", True, float("nan")]),
    "lead.custom.segment": st.sampled_from(
        ["smb", 3, 3.0, True, Decimal("3"), date(2026, 1, 1), AWARE, float("nan")]
    ),
    "account.annual_revenue": st.integers(0, 2_000_000) | st.just(Decimal("1000.5")),
}
TEXTS = ["vp", "SALES", "ss", "ß", "dir", "o"]


@st.composite
def dense_compares(draw: st.DrawFn) -> Compare:
    name = draw(st.sampled_from(sorted(DENSE_VALUES)))
    op = draw(st.sampled_from(list(Op)))
    values = DENSE_VALUES[name]
    if op in (Op.IS_NULL, Op.NOT_NULL):
        return Compare(field=name, op=op)
    if op in (Op.IN, Op.NOT_IN):
        return Compare(
            field=name, op=op, value=tuple(draw(st.lists(values, min_size=1, max_size=3)))
        )
    if op in (Op.STARTS_WITH, Op.CONTAINS):
        return Compare(field=name, op=op, value=draw(st.sampled_from(TEXTS)))
    return Compare(field=name, op=op, value=draw(values))


def dense_conditions() -> st.SearchStrategy[Condition]:
    inner = dense_compares()
    return st.one_of(
        inner,
        inner,
        inner,
        st.lists(inner, min_size=1, max_size=3).map(lambda cs: AllOf(conditions=tuple(cs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda cs: AnyOf(conditions=tuple(cs))),
        inner.map(lambda c: Not(condition=c)),
    )


@st.composite
def dense_models(draw: st.DrawFn) -> ScoringModel:
    rules_ = [
        ScoringRule(
            id=f"r{i}",
            name=f"Rule {i}",
            conditions=draw(st.lists(dense_conditions(), min_size=1, max_size=3)),
            points=draw(st.integers(-50, 50).filter(bool)),
        )
        for i in range(draw(st.integers(1, 12)))
    ]
    return ScoringModel(
        id="m",
        name="Dense",
        target="account",
        audience=draw(st.none() | dense_conditions()),
        rules=rules_,
        sales_ready_threshold=-1_000_000,
    )


@st.composite
def dense_records(draw: st.DrawFn) -> tuple[Lead, Contact | None, Account]:
    # stores keep no NaN, so records cannot hold one (models may compare with one)
    segment = draw(st.none() | DENSE_VALUES["lead.custom.segment"].filter(lambda v: v == v))
    revenue = draw(st.none() | st.integers(0, 2_000_000) | st.just(Decimal("1000.5")))
    the_lead = Lead(
        id="l1",
        topic="t",
        last_name="Lee",
        created_at=NOW,
        modified_at=NOW,
        job_title=draw(st.none() | st.sampled_from(["VP Sales", "vp", "Sales Director", "Straße"])),
        rating=draw(st.none() | st.sampled_from(["hot", "warm", "cold"])),
        source=draw(st.none() | st.sampled_from(["web", "seminar", "partner"])),
        employees=draw(st.none() | st.integers(0, 600)),
        custom={} if segment is None else {"segment": segment},
        parent_account_id="a1",
    )
    account = Account(
        id="a1",
        name="Contoso",
        created_at=NOW,
        modified_at=NOW,
        annual_revenue=None if revenue is None else Money(amount=revenue, currency="EUR"),
    )
    return the_lead, None, account


def fired(model: ScoringModel, lead: Lead, account: Account) -> list[str] | None:
    """The ids of the rules that fire, by the plain definition (``None``: not scored)."""

    def value_of(name: str) -> Any:
        scope, _, rest = name.partition(".")
        return record_value(lead if scope == "lead" else account, rest)

    if model.audience is not None and not evaluate(model.audience, value_of):
        return None
    return [
        rule.id
        for rule in model.rules
        if all(evaluate(c, value_of) for c in rule.conditions if not isinstance(c, Interaction))
    ]


@settings(max_examples=200, deadline=None)
@given(dense_models(), dense_records())
def test_dense_models_score_like_the_plain_definition(
    model: ScoringModel, record: tuple[Lead, Contact | None, Account]
) -> None:
    lead, _, account = record
    compiled = compile_model(model)
    expected = fired(model, lead, account)
    points = compiled.points(lead, None, account)
    result = score(compiled, lead=lead, account=account, now=NOW)
    if expected is None:
        assert points is None
        assert not isinstance(result, ScoreResult)
        return
    by_id = {rule.id: rule.points for rule in model.rules}
    assert points == sum(by_id[rule_id] for rule_id in expected)
    assert isinstance(result, ScoreResult)
    assert [hit.rule_id for hit in result.explanation] == expected
    assert sum(hit.points for hit in result.explanation) == result.points == points
