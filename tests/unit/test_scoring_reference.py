"""Scoring as the product reference describes it (REFERENCE.md, "Scoring"): account
models count every contact of the account, a lead with both parents is contact-based,
and a lead once sales-ready stays so."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from salesflow.clock import FakeClock
from salesflow.commands import scoring as scoring_commands
from salesflow.commands.process import SALES_READY_STATE
from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.events import LeadBecameSalesReady, LeadScored, ListSink
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.routing_policy import RoutingPolicy, RoutingRule, ToUser
from salesflow.scoring import (
    InteractionCondition,
    NotScored,
    NotScoredReason,
    ScoreResult,
    ScoringModel,
    ScoringRule,
    compile_model,
    score,
)
from salesflow.stores.base import Store, UnitOfWork
from salesflow.stores.url import open_store
from salesflow.testing import simulate

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def opened(points: int) -> ScoringRule:
    return ScoringRule(
        id="opened",
        name="Opened an email",
        conditions=[InteractionCondition(kind="email_opened", frequency="each", window=28 * DAY)],
        points=points,
    )


def in_lithuania(points: int) -> ScoringRule:
    return ScoringRule(
        id="lt",
        name="In Lithuania",
        conditions=[field("lead.country").eq("Lithuania")],
        points=points,
    )


def model(**changes: object) -> ScoringModel:
    fields: dict[str, object] = {
        "id": "engagement",
        "name": "Engagement",
        "sales_ready_threshold": 50,
        "rules": [opened(25)],
    }
    fields.update(changes)
    return ScoringModel(**fields)  # type: ignore[arg-type]


@pytest.fixture
def url(store_url: str) -> str:
    """Each store: memory, SQLite, PostgreSQL (with ``SALESFLOW_PG_DSN``)."""
    return store_url


@pytest.fixture
def engine(url: str, clock: FakeClock, sink: ListSink) -> Iterator[Salesflow]:
    ids = itertools.count(1)
    crm = Salesflow(
        open_store(url), clock=clock, sink=sink, ids=lambda kind: f"{kind.value}-{next(ids)}"
    )
    yield crm
    crm.close()


def ready_events(sink: ListSink) -> list[tuple[str, str]]:
    return [(e.lead_id, e.model_id) for e in sink.events if isinstance(e, LeadBecameSalesReady)]


# --- account-based models count every contact of the account -----------------------------


def test_another_contact_of_the_account_acting_rescores_the_account_lead_at_once(
    engine: Salesflow,
) -> None:
    engine.publish_scoring_model(model(target="account"))
    account = engine.create_account(name="Contoso")
    first = engine.create_contact(last_name="Kim", account_id=account.id)
    second = engine.create_contact(last_name="Lee", account_id=account.id)
    other_account = engine.create_account(name="Fabrikam")
    outsider = engine.create_contact(last_name="Ode", account_id=other_account.id)
    lead = engine.create_lead(topic="Desks", last_name="Kim", parent_account_id=account.id)
    assert engine.lead_scores(lead.id)[0].points == 0

    engine.record_interaction("email_opened", contact_id=second.id, interaction_id="o-1")
    (now,) = engine.lead_scores(lead.id)  # no other change to the lead needed
    assert now.points == 25
    assert now.explanation[0].interactions == ("o-1",)
    engine.record_interaction("email_opened", contact_id=first.id, interaction_id="o-2")
    assert engine.lead_scores(lead.id)[0].points == 50
    engine.record_interaction("email_opened", contact_id=outsider.id, interaction_id="o-3")
    assert engine.lead_scores(lead.id)[0].points == 50  # another account's contact
    assert [s.points for s in engine.score_history(lead.id)] == [0, 25, 50]


def test_an_account_lead_falls_when_its_accounts_interactions_age(
    engine: Salesflow, clock: FakeClock
) -> None:
    engine.publish_scoring_model(model(target="account"))
    account = engine.create_account(name="Contoso")
    contact = engine.create_contact(last_name="Lee", account_id=account.id)
    lead = engine.create_lead(topic="Desks", last_name="Kim", parent_account_id=account.id)
    engine.record_interaction("email_opened", contact_id=contact.id)
    assert engine.lead_scores(lead.id)[0].next_change_at == T0 + 28 * DAY
    simulate(engine, T0 + 30 * DAY)
    assert engine.lead_scores(lead.id)[0].points == 0


# --- a lead with both parents is contact-based -------------------------------------------


def records() -> tuple[Lead, Contact, Account]:
    lead = Lead(
        id="l1",
        topic="t",
        last_name="Kim",
        country="Lithuania",
        parent_contact_id="c1",
        parent_account_id="a1",
        created_at=T0,
        modified_at=T0,
    )
    contact = Contact(id="c1", last_name="Kim", account_id="a1", created_at=T0, modified_at=T0)
    account = Account(id="a1", name="Contoso", created_at=T0, modified_at=T0)
    return lead, contact, account


@pytest.mark.parametrize("without_parent", [False, True])
def test_account_models_do_not_score_a_lead_with_a_parent_contact(without_parent: bool) -> None:
    lead, contact, account = records()
    compiled = compile_model(
        model(
            target="account",
            rules=[in_lithuania(10)],
            sales_ready_threshold=10,
            score_leads_without_parent=without_parent,
        )
    )
    result = score(compiled, lead=lead, contact=contact, account=account, now=T0)
    assert isinstance(result, NotScored)
    assert result.reason is NotScoredReason.CONTACT_BASED
    assert "contact-based" in result.message
    assert compiled.points(lead, contact, account) is None
    contact_only = Lead(
        id="l2", topic="t", last_name="Kim", parent_contact_id="c1", created_at=T0, modified_at=T0
    )
    assert compiled.points(contact_only, contact, None) is None
    # the contact model scores it
    by_contact = compile_model(model(rules=[in_lithuania(10)], sales_ready_threshold=10))
    assert by_contact.points(lead, contact, account) == 10
    # an account lead, or (with the switch) a lead with neither, is scored
    account_only = Lead(
        id="l3", topic="t", last_name="Kim", parent_account_id="a1", created_at=T0, modified_at=T0
    )
    assert compiled.points(account_only, None, account) == 0
    orphan = Lead(id="l4", topic="t", last_name="Kim", created_at=T0, modified_at=T0)
    assert compiled.points(orphan) == (0 if without_parent else None)


def test_the_engine_scores_a_lead_with_both_parents_by_contact_models_only(
    engine: Salesflow,
) -> None:
    fit = {"rules": [in_lithuania(10)], "sales_ready_threshold": 10}
    engine.publish_scoring_model(model(id="by-account", target="account", **fit))
    engine.publish_scoring_model(model(id="by-contact", **fit))
    account = engine.create_account(name="Contoso")
    contact = engine.create_contact(last_name="Kim", account_id=account.id)
    both = engine.create_lead(
        topic="t",
        last_name="Kim",
        country="Lithuania",
        parent_contact_id=contact.id,
        parent_account_id=account.id,
    )
    assert [(s.model_id, s.points) for s in engine.lead_scores(both.id)] == [("by-contact", 10)]
    account_only = engine.create_lead(
        topic="t", last_name="Kim", country="Lithuania", parent_account_id=account.id
    )
    assert [(s.model_id, s.points) for s in engine.lead_scores(account_only.id)] == [
        ("by-account", 10)
    ]


# --- sales-ready once, never undone by a score drop --------------------------------------


def test_a_lead_stays_sales_ready_and_is_announced_once(
    engine: Salesflow, clock: FakeClock, sink: ListSink, url: str
) -> None:
    engine.publish_scoring_model(model())
    contact = engine.create_contact(last_name="Kim")
    lead = engine.create_lead(topic="t", last_name="Kim", parent_contact_id=contact.id)
    for _ in range(2):
        engine.record_interaction("email_opened", contact_id=contact.id)
    assert engine.is_sales_ready(lead.id)
    assert ready_events(sink) == [(lead.id, "engagement")]

    simulate(engine, T0 + 30 * DAY)  # both opens leave the window: 0 points
    (dropped,) = engine.lead_scores(lead.id)
    assert (dropped.points, dropped.sales_ready) == (0, False)  # the score's own fact
    assert engine.is_sales_ready(lead.id)  # the lead's: never undone by a drop

    for _ in range(2):
        engine.record_interaction("email_opened", contact_id=contact.id)
    assert engine.lead_scores(lead.id)[0].sales_ready
    assert ready_events(sink) == [(lead.id, "engagement")]  # not announced again
    scored = [e.points for e in sink.events if isinstance(e, LeadScored)]
    assert scored == [0, 25, 50, 0, 25, 50]

    if url != "memory://":  # kept in the store, not in the engine
        engine.close()
        reopened = Salesflow(open_store(url), clock=clock)
        assert reopened.is_sales_ready(lead.id)
        reopened.close()


def test_routing_and_the_marketing_process_see_the_lead_sales_ready_after_a_drop(
    engine: Salesflow,
) -> None:
    engine.publish_scoring_model(model())
    contact = engine.create_contact(last_name="Kim")
    lead = engine.create_lead(topic="t", last_name="Kim", parent_contact_id=contact.id)
    for _ in range(2):
        engine.record_interaction("email_opened", contact_id=contact.id)
    simulate(engine, T0 + 30 * DAY)  # the score drops to 0
    assert engine.lead_scores(lead.id)[0].points == 0
    engine.publish_routing_policy(
        RoutingPolicy(
            id="ready_first",
            name="Sales-ready first",
            fallback_owner_id="nurture",
            rules=[
                RoutingRule(
                    id="ready",
                    name="Ready",
                    condition=field("sales_ready").eq(True),
                    target=ToUser(user_id="closer"),
                )
            ],
        )
    )
    assert engine.route_lead(lead.id).owner_id == "closer"
    # Started on the marketing process only now, the lead skips to Sales acceptance.
    assert engine.start_process(lead, "marketing_lead_process").stage == "sales_acceptance"


def test_a_lead_is_announced_once_whichever_model_makes_it_sales_ready(
    engine: Salesflow, sink: ListSink
) -> None:
    engine.publish_scoring_model(
        model(id="fit", rules=[in_lithuania(10)], sales_ready_threshold=10)
    )
    engine.publish_scoring_model(model())
    contact = engine.create_contact(last_name="Kim")
    lead = engine.create_lead(
        topic="t", last_name="Kim", country="Lithuania", parent_contact_id=contact.id
    )
    assert ready_events(sink) == [(lead.id, "fit")]
    for _ in range(2):
        engine.record_interaction("email_opened", contact_id=contact.id)
    assert [s.sales_ready for s in engine.lead_scores(lead.id)] == [True, True]
    assert ready_events(sink) == [(lead.id, "fit")]
    both = engine.create_lead(
        topic="t", last_name="Lee", country="Lithuania", parent_contact_id=contact.id
    )  # both models reach their thresholds in one unit: one announcement
    assert ready_events(sink)[1:] == [(both.id, "engagement")]


def test_a_lead_sales_ready_before_the_mark_was_kept_is_marked_when_next_ready(
    engine: Salesflow, clock: FakeClock, sink: ListSink
) -> None:
    """A store written before sales-ready was kept: the lead's old score does not
    count once it dropped; the next time it is ready it is marked and announced."""
    engine.publish_scoring_model(model())
    contact = engine.create_contact(last_name="Kim")
    lead = engine.create_lead(topic="t", last_name="Kim", parent_contact_id=contact.id)
    with engine.store.unit_of_work() as uow:
        for points, at in ((50, T0 + DAY), (0, T0 + 2 * DAY)):
            uow.add_score(
                ScoreResult(
                    model_id="engagement",
                    model_version=1,
                    lead_id=lead.id,
                    points=points,
                    grade=None,
                    sales_ready=points >= 50,
                    explanation=(),
                    next_change_at=None,
                    scored_at=at,
                )
            )
        uow.commit()
    assert not engine.is_sales_ready(lead.id)  # nothing kept the mark back then
    clock.set(T0 + 3 * DAY)
    for _ in range(2):
        engine.record_interaction("email_opened", contact_id=contact.id)
    assert engine.is_sales_ready(lead.id)
    assert ready_events(sink) == [(lead.id, "engagement")]


def test_a_lead_at_its_threshold_when_criteria_are_dropped_is_marked_at_its_next_scoring(
    engine: Salesflow, sink: ListSink
) -> None:
    """Found by the sales-ready property test: a score already at its threshold while
    criteria held the lead back makes it sales-ready once the criteria go, though it
    crossed nothing then, and a later drop does not undo it."""
    engine.publish_scoring_model(
        model(id="fit", rules=[in_lithuania(10)], sales_ready_threshold=10)
    )
    engine.publish_scoring_model(model())
    contact = engine.create_contact(last_name="Kim")
    lead = engine.create_lead(topic="t", last_name="Kim", parent_contact_id=contact.id)
    engine.set_qualification_criteria(field("score.engagement").ge(50))
    engine.update_lead(lead.id, country="Lithuania")  # fit ready; the criteria say no
    assert not engine.is_sales_ready(lead.id)
    engine.set_qualification_criteria(None)
    engine.rescore_all()
    assert ready_events(sink) == [(lead.id, "fit")]
    engine.update_lead(lead.id, country="Latvia")
    assert engine.is_sales_ready(lead.id)
    assert ready_events(sink) == [(lead.id, "fit")]


def test_every_child_of_a_units_parents_is_rescored_page_by_page(
    engine: Salesflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many parents written in one unit (a contact import), many leads per parent:
    small pages and chunks of parents still reach every child lead."""
    monkeypatch.setattr(scoring_commands, "_PAGE", 2)
    monkeypatch.setattr(scoring_commands, "_PARENTS", 2)
    ceo = ScoringRule(
        id="ceo", name="A CEO", conditions=[field("contact.job_title").eq("CEO")], points=10
    )
    engine.publish_scoring_model(model(rules=[ceo], sales_ready_threshold=10))
    people = [engine.create_contact(last_name="Kim", email=f"k{n}@x.example") for n in range(5)]
    children = [
        engine.create_lead(topic="t", last_name="Kim", parent_contact_id=person.id).id
        for person in people
        for _ in range(3)
    ]
    rows = "email,job_title\n" + "".join(f"k{n}@x.example,CEO\n" for n in range(5))
    report = engine.import_csv(io.StringIO(rows), kind="contact")
    assert report.updated == 5
    assert {lead_id: engine.lead_scores(lead_id)[0].points for lead_id in children} == {
        lead_id: 10 for lead_id in children
    }


class _MarkedElsewhere:
    """A store whose units do not see the sales-ready marks already stored, as a unit
    racing another on PostgreSQL would not: the mark it then tries to add exists."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        with self.inner.unit_of_work(read_only=read_only) as uow:
            yield cast(UnitOfWork, _Blind(uow))

    def migrate(self) -> int:
        return self.inner.migrate()

    def close(self) -> None:
        self.inner.close()


class _Blind:
    def __init__(self, inner: UnitOfWork) -> None:
        self._inner = inner

    def get_state(self, kind: str, key: str) -> Any:
        if kind == SALES_READY_STATE:
            return None
        return self._inner.get_state(kind, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_lead_another_unit_marked_first_is_not_announced_again(url: str) -> None:
    sink = ListSink()
    store = open_store(url)
    engine = Salesflow(store, clock=FakeClock(T0), sink=sink)
    engine.publish_scoring_model(model(rules=[in_lithuania(50)]))
    contact = engine.create_contact(last_name="Kim")
    lead = engine.create_lead(
        topic="t", last_name="Kim", country="Lithuania", parent_contact_id=contact.id
    )
    assert ready_events(sink) == [(lead.id, "engagement")]
    racing = Salesflow(_MarkedElsewhere(store), clock=FakeClock(T0), sink=sink)
    racing.score_lead(lead.id)  # finds no mark, adds one: it exists, so it goes on
    racing.update_lead(lead.id, description="still keen")
    assert ready_events(sink) == [(lead.id, "engagement")]
    assert engine.is_sales_ready(lead.id)
    engine.close()
