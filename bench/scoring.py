"""Benchmark: lead scorings/s of a 20-rule model, compiled scorer against a plain loop.

The reference (issue 4, item 9): a 20-rule model of field conditions scores 1M leads
in 3.1 s as a plain loop over rule objects and 0.95 s as one generated function; the
target is >= 1,000,000 lead scorings/s, compiled once per model version. Cases, all
in this one run, over the same leads:

* ``baseline``: a loop over rule objects written here (each rule a tuple of
  ``(record, getter, test, value)`` checks resolved once, with `salesflow.conditions`
  semantics, stopping at the first failing check);
* ``compiled points``: `CompiledModel.points`, the hot path (an ``int`` per lead);
* ``score() + explanation``: `salesflow.scoring.score`, the full `ScoreResult` with
  its explanation, grade and ``next_change_at`` (run on ``--explain`` leads).

Leads are real `Lead` records (with their parent contact and account), built once as
a pool of ``--pool`` distinct leads and scored round-robin up to ``--leads``
scorings, because a million 50-field records would need ~1 GB on this shared box.
Each case reports the best of ``--repeat`` runs.

Run::

    .venv/bin/python bench/scoring.py                       # 1,000,000 scorings
    .venv/bin/python bench/scoring.py --leads 200000 --repeat 1

Figures go to ``docs/performance.md``. Benchmarks may read the wall clock; the
library may not.
"""

from __future__ import annotations

import argparse
import gc
import operator
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from salesflow.conditions import Compare, Op, all_of, field
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.scoring import Grade, ScoringModel, ScoringRule, compile_model, score
from salesflow.values import Money

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TARGET = 1_000_000

CITIES = ["London", "Paris", "Vilnius", "Berlin", "Madrid", "Leeds"]
COUNTRIES = ["England", "France", "Lithuania", "Germany", "Spain"]
INDUSTRIES = ["Banking", "Retail", "Energy", "Media", "Health"]
TITLES = ["VP Sales", "Director of IT", "Engineer", "CEO", "Buyer"]
SOURCES = ["web", "partner", "trade_show", "seminar", None]


def model() -> ScoringModel:
    """The 20-rule model: demographic and firmographic field conditions."""

    def r(rule_id: str, points: int, *conditions: Any) -> ScoringRule:
        return ScoringRule(id=rule_id, name=rule_id, conditions=conditions, points=points)

    rules = [
        r("london", 70, field("lead.city").eq("London")),
        r("england", 40, field("lead.country").eq("England")),
        r("banking", 25, field("lead.industry").eq("Banking")),
        r("retail", 10, field("lead.industry").eq("Retail")),
        r("big", 20, field("lead.employees").ge(500)),
        r("mid", 10, all_of(field("lead.employees").ge(50), field("lead.employees").lt(500))),
        r("tiny", -15, field("lead.employees").lt(10)),
        r("hot", 30, field("lead.rating").eq("hot")),
        r("cold", -10, field("lead.rating").eq("cold")),
        r("web", 5, field("lead.source").eq("web")),
        r("events", 8, field("lead.source").in_(["trade_show", "seminar"])),
        r("vp", 15, field("lead.job_title").starts_with("vp")),
        r("director", 12, field("lead.job_title").contains("director")),
        r("no_email", -20, field("lead.do_not_email").eq(True)),
        r("budget", 18, field("lead.budget").eq("can_buy")),
        r("now", 22, field("lead.purchase_timeframe").eq("immediate")),
        r("contact_uk", 6, field("contact.country").eq("England")),
        r("acct_bank", 9, field("account.industry").eq("Banking")),
        r("acct_rich", 14, field("account.annual_revenue").ge(Decimal(1_000_000))),
        r("segment", 7, field("lead.custom.segment").eq("enterprise")),
    ]
    return ScoringModel(
        id="bench",
        name="Benchmark",
        rules=rules,
        grades=[
            Grade(name="cold", high=25),
            Grade(name="warm", low=26, high=60),
            Grade(name="hot", low=61),
        ],
        sales_ready_threshold=100,
    )


def records(pool: int, seed: int) -> list[tuple[Lead, Contact, Account]]:
    """``pool`` leads with their parent contact and account."""
    rnd = random.Random(seed)
    out = []
    for i in range(pool):
        account = Account(
            id=f"a{i}",
            name=f"Company {i}",
            created_at=NOW,
            modified_at=NOW,
            industry=rnd.choice(INDUSTRIES),
            annual_revenue=Money(amount=rnd.randint(10_000, 5_000_000), currency="EUR"),
        )
        contact = Contact(
            id=f"c{i}",
            last_name="Lee",
            created_at=NOW,
            modified_at=NOW,
            country=rnd.choice(COUNTRIES),
            account_id=account.id,
        )
        lead = Lead(
            id=f"l{i}",
            topic="Trial",
            last_name="Lee",
            created_at=NOW,
            modified_at=NOW,
            city=rnd.choice(CITIES),
            country=rnd.choice(COUNTRIES),
            industry=rnd.choice(INDUSTRIES),
            employees=rnd.choice([None, rnd.randint(1, 5000)]),
            rating=rnd.choice(["hot", "warm", "cold", None]),
            source=rnd.choice(SOURCES),
            job_title=rnd.choice(TITLES),
            do_not_email=rnd.random() < 0.1,
            budget=rnd.choice(["can_buy", "may_buy", None]),
            purchase_timeframe=rnd.choice(["immediate", "this_year", None]),
            custom={"segment": rnd.choice(["enterprise", "smb"])},
            parent_contact_id=contact.id,
            parent_account_id=account.id,
        )
        out.append((lead, contact, account))
    return out


# --- the baseline: a plain loop over rule objects -----------------------------------------
#
# Written the way one would without a code generator, and without handicaps: each check
# is resolved once into (record index, getter, test function, value), tests are plain
# functions of `operator` or one-liners (no dispatch on the op per call), and a rule
# stops at its first failing check. A missing value fails every check (the model has no
# null tests); values of different kinds do not compare (False), as in
# `salesflow.conditions`.


def _starts_with(actual: Any, expected: str) -> bool:
    return isinstance(actual, str) and actual.casefold().startswith(expected)


def _contains(actual: Any, expected: str) -> bool:
    return isinstance(actual, str) and expected in actual.casefold()


TESTS: dict[Op, Callable[[Any, Any], Any]] = {
    Op.EQ: operator.eq,
    Op.LT: operator.lt,
    Op.GE: operator.ge,
    Op.IN: lambda actual, expected: actual in expected,
    Op.STARTS_WITH: _starts_with,
    Op.CONTAINS: _contains,
}


def _getter(name: str) -> tuple[int, Callable[[Any], Any]]:
    scope, _, rest = name.partition(".")
    index = ("lead", "contact", "account").index(scope)
    if rest.startswith("custom."):
        key = rest[7:]
        return index, lambda record: record.custom.get(key)
    if rest == "annual_revenue":
        return (
            index,
            lambda record: None if record.annual_revenue is None else record.annual_revenue.amount,
        )
    return index, operator.attrgetter(rest)


class BaselineRule:
    """A rule as an object: (record index, getter, test, value) checks and points."""

    __slots__ = ("checks", "points")

    def __init__(self, rule: ScoringRule) -> None:
        checks = []
        for condition in rule.conditions:
            parts = condition.conditions if hasattr(condition, "conditions") else (condition,)
            for part in parts:
                assert isinstance(part, Compare)
                index, read = _getter(part.field)
                value = part.value
                if part.op in (Op.STARTS_WITH, Op.CONTAINS):
                    value = value.casefold()
                elif part.op is Op.IN:
                    value = frozenset(value)
                checks.append((index, read, TESTS[part.op], value))
        self.checks = tuple(checks)
        self.points = rule.points


def baseline_points(rules: list[BaselineRule], records: tuple[Any, ...]) -> int:
    total = 0
    for rule in rules:
        for index, read, test, value in rule.checks:
            actual = read(records[index])
            if actual is None:
                break
            try:
                if not test(actual, value):
                    break
            except (TypeError, ArithmeticError):
                break
        else:
            total += rule.points
    return total


# --- cases ------------------------------------------------------------------------------


def timed(run: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
        gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000, help="scorings per case")
    parser.add_argument("--pool", type=int, default=20_000, help="distinct leads")
    parser.add_argument("--explain", type=int, default=200_000, help="scorings for score()")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    print("salesflow scoring benchmark")
    print(f"  python    {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"  load avg  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    the_model = model()
    start = time.perf_counter()
    compiled = compile_model(the_model)
    compile_s = time.perf_counter() - start
    pool = records(args.pool, args.seed)
    rounds, rest = divmod(args.leads, len(pool))
    batch = pool * rounds + pool[:rest]
    explain_batch = batch[: args.explain]
    rules = [BaselineRule(rule) for rule in the_model.rules]
    points = compiled.points

    # every case must agree before it is timed
    for lead, contact, account in pool[:2000]:
        expected = baseline_points(rules, (lead, contact, account))
        assert points(lead, contact, account) == expected
        result = score(compiled, lead=lead, contact=contact, account=account, now=NOW)
        assert getattr(result, "points", None) == expected

    def run_baseline() -> None:
        for record in batch:
            baseline_points(rules, record)

    def run_compiled() -> None:
        for lead, contact, account in batch:
            points(lead, contact, account)

    def run_score() -> None:
        for lead, contact, account in explain_batch:
            score(compiled, lead=lead, contact=contact, account=account, now=NOW)

    results = [
        ("baseline (loop over rule objects)", len(batch), timed(run_baseline, args.repeat)),
        ("compiled points", len(batch), timed(run_compiled, args.repeat)),
        ("score() + explanation", len(explain_batch), timed(run_score, args.repeat)),
    ]
    base_rate = results[0][1] / results[0][2]
    print(
        f"\n20 rules, {len(batch):,} scorings ({len(pool):,} distinct leads), "
        f"compile {compile_s * 1000:.1f} ms"
    )
    print(
        f"{'case':<36}{'scorings':>12}{'seconds':>10}{'scorings/s':>14}"
        f"{'vs baseline':>13}{'target':>9}"
    )
    for name, count, seconds in results:
        rate = count / seconds
        verdict = "ok" if rate >= TARGET else "-"
        if name.startswith("baseline") or name.startswith("score"):
            verdict = ""
        print(
            f"{name:<36}{count:>12,}{seconds:>10.3f}{rate:>14,.0f}"
            f"{rate / base_rate:>12.2f}x{verdict:>9}"
        )
    print(f"\ntarget: >= {TARGET:,} scorings/s for the compiled scorer (issue 4, item 9)")
    print(f"load avg at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
