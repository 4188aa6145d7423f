"""Process flows run by the engine: the standard flows, the qualify hand-over, the
marketing rules driven by real scoring, refusals and persistence."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from salesflow.clock import FakeClock
from salesflow.conditions import field
from salesflow.engine import Salesflow
from salesflow.errors import InvalidDefinition, InvalidTransition, NotFound, ValidationError
from salesflow.events import LeadAssigned, ListSink
from salesflow.process import ProcessFlow, Stage, StageStep
from salesflow.process_standard import (
    AUTOMATED_MARKETING_QUALIFICATION,
    DEVELOP,
    INQUIRY,
    LEAD_TO_OPPORTUNITY,
    MARKETING_LEAD_PROCESS,
    PROPOSE,
    QUALIFY,
    SALES_ACCEPTANCE,
    SALES_ACCEPTED,
    SALES_READY,
    TELEPROSPECT_ACCEPTED,
    TELEPROSPECTING_ACCEPTANCE,
    TELEPROSPECTING_QUALIFICATION,
    TELEPROSPECTING_READY,
    MarketingSettings,
    SalesAccepted,
)
from salesflow.process_state import ChangeReason, FlowState, StageChanged
from salesflow.process_state_io import state_from_dict, state_to_dict
from salesflow.scoring import InteractionCondition, ScoringModel, ScoringRule
from salesflow.stores.memory import MemoryStore
from salesflow.values import RecordKind, RecordRef

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
L2O = LEAD_TO_OPPORTUNITY.id
MARKETING = MARKETING_LEAD_PROCESS.id


def scoring_model() -> ScoringModel:
    return ScoringModel(
        id="marketing",
        name="Marketing",
        sales_ready_threshold=50,
        rules=[
            ScoringRule(
                id="lt",
                name="In Lithuania",
                conditions=[field("lead.country").eq("Lithuania")],
                points=20,
            ),
            ScoringRule(
                id="opened",
                name="Opened an email",
                conditions=[
                    InteractionCondition(
                        kind="email_opened", frequency="each", window=timedelta(days=28)
                    )
                ],
                points=15,
            ),
        ],
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def make_engine(
    store: MemoryStore, clock: FakeClock, sink: ListSink, prefix: str = ""
) -> Salesflow:
    ids = itertools.count(1)
    return Salesflow(
        store, clock=clock, sink=sink, ids=lambda kind: f"{prefix}{kind.value}-{next(ids)}"
    )


@pytest.fixture
def engine(store: MemoryStore, clock: FakeClock, sink: ListSink) -> Salesflow:
    return make_engine(store, clock, sink)


def person(engine: Salesflow, **fields: object) -> tuple[str, str]:
    contact = engine.create_contact(last_name="Kim", email="kim@x.example")
    lead = engine.create_lead(
        topic="10 laptops",
        last_name="Kim",
        parent_contact_id=contact.id,
        **fields,  # type: ignore[arg-type]
    )
    return lead.id, contact.id


def lead_ref(lead_id: str) -> RecordRef:
    return RecordRef(kind=RecordKind.LEAD, id=lead_id)


def stage_of(engine: Salesflow, lead_id: str) -> str:
    state = engine.process_state(lead_ref(lead_id))
    assert state is not None
    return state.stage


# --- the lead to opportunity sales process -------------------------------------------


def test_the_sales_process_goes_on_to_develop_on_the_new_opportunity(
    engine: Salesflow, sink: ListSink, clock: FakeClock
) -> None:
    lead = engine.create_lead(topic="10 laptops", last_name="Ruiz", company_name="Contoso")
    started = engine.start_process(lead, L2O, by="ana")
    assert (started.stage, started.flow_version) == (QUALIFY, 1)
    with pytest.raises(InvalidTransition, match="qualified"):
        engine.next_stage(lead, by="ana")  # the hand-over is qualifying, not next

    clock.advance(timedelta(hours=1))
    opportunity = engine.qualify_lead(lead.id).opportunity
    assert opportunity is not None
    on_opportunity = engine.process_state(opportunity)
    assert on_opportunity is not None
    assert on_opportunity.stage == DEVELOP
    assert on_opportunity.record == opportunity.ref
    assert on_opportunity.continued_from == lead.ref
    assert engine.process_state(lead) == on_opportunity  # the lead shows where it went
    changed = [e for e in sink.events if isinstance(e, StageChanged)]
    assert [(e.to_stage, e.reason) for e in changed] == [(DEVELOP, ChangeReason.CONTINUED)]

    with pytest.raises(InvalidTransition, match="Customer need"):
        engine.next_stage(opportunity, by="ana")
    engine.update_opportunity(opportunity.id, description="Laptops for the new office")
    assert engine.next_stage(opportunity, by="ana").stage == PROPOSE
    engine.check_step(opportunity, "proposal_developed", by="ana")
    engine.check_step(opportunity, "proposal_presented", by="ana")
    closing = engine.next_stage(opportunity, by="ana")
    assert closing.stage == "close"
    back = engine.previous_stage(opportunity, by="bo")
    assert back.stage == PROPOSE
    assert [(c.to_stage, c.reason, c.by) for c in back.history] == [
        (QUALIFY, ChangeReason.STARTED, "ana"),
        (DEVELOP, ChangeReason.CONTINUED, None),
        (PROPOSE, ChangeReason.NEXT, "ana"),
        ("close", ChangeReason.NEXT, "ana"),
        (PROPOSE, ChangeReason.BACK, "bo"),
    ]
    assert back.history[1].at == T0 + timedelta(hours=1)


def test_a_lead_handed_over_is_moved_on_its_opportunity(engine: Salesflow) -> None:
    lead = engine.create_lead(topic="t", last_name="Ruiz", company_name="Contoso")
    engine.start_process(lead, L2O)
    engine.qualify_lead(lead.id)
    engine.reactivate_lead(lead.id)
    with pytest.raises(InvalidTransition, match="went on to opportunity"):
        engine.check_step(lead, "decision_maker_identified")


def test_a_lead_on_a_lead_only_flow_keeps_it_when_qualified(engine: Salesflow) -> None:
    lead_id, _ = person(engine)
    engine.start_process(lead_ref(lead_id), MARKETING)
    engine.qualify_lead(lead_id)
    assert stage_of(engine, lead_id) == INQUIRY


# --- the marketing process, driven by scoring ----------------------------------------


def test_first_score_and_sales_ready_move_the_marketing_process(
    engine: Salesflow, sink: ListSink
) -> None:
    lead_id, contact_id = person(engine, country="Lithuania")
    engine.start_process(lead_ref(lead_id), MARKETING, by="marketer")
    assert stage_of(engine, lead_id) == INQUIRY

    engine.publish_scoring_model(scoring_model())  # scores every open lead: 20 points
    assert stage_of(engine, lead_id) == AUTOMATED_MARKETING_QUALIFICATION
    engine.record_interaction("email_opened", contact_id=contact_id)  # 35
    assert stage_of(engine, lead_id) == AUTOMATED_MARKETING_QUALIFICATION
    engine.record_interaction("email_opened", contact_id=contact_id)  # 50: sales-ready
    state = engine.process_state(lead_ref(lead_id))
    assert state is not None
    assert state.stage == SALES_ACCEPTANCE
    assert SALES_READY in state.checked
    assert [(c.to_stage, c.reason, c.by) for c in state.history] == [
        (INQUIRY, ChangeReason.STARTED, "marketer"),
        (AUTOMATED_MARKETING_QUALIFICATION, ChangeReason.FIRST_SCORE, None),
        (SALES_ACCEPTANCE, ChangeReason.SALES_READY, None),
    ]

    engine.accept_for_sales(lead_id, "seller-1", by="manager")
    assert engine.get_lead(lead_id).owner_id == "seller-1"
    accepted = engine.process_state(lead_ref(lead_id))
    assert accepted is not None
    assert SALES_ACCEPTED in accepted.checked
    assigned = [e for e in sink.events if isinstance(e, LeadAssigned)]
    assert [(e.lead_id, e.owner_id) for e in assigned] == [(lead_id, "seller-1")]
    assert any(isinstance(e, SalesAccepted) for e in sink.events)


def test_starting_the_marketing_process_on_a_scored_lead_applies_the_rules(
    engine: Salesflow,
) -> None:
    engine.publish_scoring_model(scoring_model())
    lead_id, _ = person(engine)  # scored 0 when created
    assert stage_of_started(engine, lead_id) == AUTOMATED_MARKETING_QUALIFICATION


def stage_of_started(engine: Salesflow, lead_id: str) -> str:
    return engine.start_process(lead_ref(lead_id), MARKETING).stage


def test_the_switches_turn_the_rules_off(engine: Salesflow) -> None:
    engine.configure_marketing(MarketingSettings(automatic_sales_ready=False))
    assert engine.marketing_settings() == MarketingSettings(automatic_sales_ready=False)
    lead_id, contact_id = person(engine, country="Lithuania")
    engine.start_process(lead_ref(lead_id), MARKETING)
    engine.publish_scoring_model(scoring_model())
    for _ in range(2):
        engine.record_interaction("email_opened", contact_id=contact_id)
    assert engine.is_sales_ready(lead_id)
    assert stage_of(engine, lead_id) == AUTOMATED_MARKETING_QUALIFICATION
    assert engine.mark_sales_ready(lead_id, by="marketer").stage == SALES_ACCEPTANCE

    engine.configure_marketing(MarketingSettings(automated_marketing_qualification=False))
    other = engine.create_lead(topic="t", last_name="Lee")
    engine.start_process(other, MARKETING)
    engine.update_lead(other.id, country="Lithuania")  # no contact: not scored
    contact = engine.create_contact(last_name="Lee")
    engine.update_lead(other.id, parent_contact_id=contact.id)  # first score
    assert engine.lead_scores(other.id)
    assert stage_of(engine, other.id) == INQUIRY


def test_the_gates_move_the_lead_through_teleprospecting(engine: Salesflow) -> None:
    engine.publish_scoring_model(scoring_model())
    lead_id, _ = person(engine)
    lead = lead_ref(lead_id)
    engine.start_process(lead, MARKETING)
    assert engine.check_step(lead, TELEPROSPECTING_READY).stage == TELEPROSPECTING_ACCEPTANCE
    assert engine.check_step(lead, TELEPROSPECT_ACCEPTED).stage == TELEPROSPECTING_QUALIFICATION
    with pytest.raises(InvalidTransition, match="accept_for_sales"):
        engine.check_step(lead, SALES_ACCEPTED)
    ready = engine.check_step(lead, SALES_READY, by="caller")
    assert ready.stage == SALES_ACCEPTANCE
    assert ready.history[-1].reason == ChangeReason.SALES_READY


# --- refusals ------------------------------------------------------------------------


def test_refusals_change_nothing_and_publish_nothing(
    engine: Salesflow, store: MemoryStore, sink: ListSink
) -> None:
    lead_id, _ = person(engine)
    lead = lead_ref(lead_id)
    engine.start_process(lead, MARKETING)
    before = store.dump()
    published = len(sink.events)
    refusals: list[tuple[type[Exception], Callable[[], object]]] = [
        (InvalidTransition, lambda: engine.start_process(lead, L2O)),
        (InvalidTransition, lambda: engine.jump_to_stage(lead, TELEPROSPECTING_QUALIFICATION)),
        (InvalidTransition, lambda: engine.previous_stage(lead)),
        (ValidationError, lambda: engine.check_step(lead, "no_such_box")),
        (InvalidTransition, lambda: engine.accept_for_sales(lead_id, "seller-1")),
        (InvalidTransition, lambda: engine.switch_process(lead, MARKETING)),
        (NotFound, lambda: engine.switch_process(lead, "nope")),
        (InvalidTransition, lambda: engine.check_step(lead, SALES_ACCEPTED)),
        (ValidationError, lambda: engine.mark_sales_ready(lead_id, by=" ")),
    ]
    for error, refused in refusals:
        with pytest.raises(error):
            refused()
    assert store.dump() == before
    assert len(sink.events) == published


def test_switching_keeps_the_history(engine: Salesflow) -> None:
    lead_id, _ = person(engine)
    lead = lead_ref(lead_id)
    engine.start_process(lead, MARKETING)
    switched = engine.switch_process(lead, L2O, by="ana")
    assert (switched.flow_id, switched.stage) == (L2O, QUALIFY)
    assert [c.reason for c in switched.history] == [ChangeReason.STARTED, ChangeReason.SWITCHED]


def test_a_record_without_a_process_is_refused(engine: Salesflow) -> None:
    lead = engine.create_lead(topic="t", last_name="X")
    assert engine.process_state(lead) is None
    with pytest.raises(InvalidTransition, match="start_process"):
        engine.next_stage(lead)
    with pytest.raises(InvalidTransition, match="follows no process"):
        engine.mark_sales_ready(lead.id)


# --- published flows -----------------------------------------------------------------


def custom_flow(flow_id: str = "onboarding") -> ProcessFlow:
    return ProcessFlow(
        id=flow_id,
        name="Partner onboarding",
        record_type="lead",
        stages=[
            Stage(
                id="contact",
                name="First contact",
                steps=[StageStep(id="called", label="Intro call done", kind="checkbox")],
            ),
            Stage(id="contract", name="Contract"),
        ],
    )


def test_published_flows_are_versioned(engine: Salesflow) -> None:
    assert engine.publish_process_flow(custom_flow()).version == 1
    assert engine.publish_process_flow(custom_flow()).version == 2
    # a customized standard flow is version 2: the built-in one is version 1
    copy = ProcessFlow(
        id=MARKETING,
        name="Our marketing process",
        record_type="lead",
        stages=MARKETING_LEAD_PROCESS.stages,
    )
    assert engine.publish_process_flow(copy).version == 2
    assert engine.process_flow(MARKETING, 1) == MARKETING_LEAD_PROCESS
    assert engine.process_flow(MARKETING).name == "Our marketing process"
    assert [f.id for f in engine.process_flows()] == [L2O, MARKETING, "onboarding"]

    lead = engine.create_lead(topic="t", last_name="X")
    engine.start_process(lead, "onboarding")
    with pytest.raises(InvalidTransition, match="Intro call done"):
        engine.next_stage(lead)
    engine.check_step(lead, "called")
    assert engine.next_stage(lead).stage == "contract"
    with pytest.raises(NotFound):
        engine.process_flow("onboarding", 7)
    with pytest.raises(InvalidDefinition):
        engine.publish_process_flow(
            ProcessFlow(id="bad", name="Bad", record_type="lead", stages=[])
        )


# --- persistence ---------------------------------------------------------------------


def test_the_state_survives_a_dump_and_load(
    engine: Salesflow, store: MemoryStore, clock: FakeClock, sink: ListSink
) -> None:
    engine.publish_scoring_model(scoring_model())
    lead_id, _ = person(engine)
    lead = lead_ref(lead_id)
    engine.start_process(lead, MARKETING, by="ana")
    engine.check_step(lead, TELEPROSPECTING_READY, by="ana")
    engine.configure_marketing(MarketingSettings(automatic_sales_ready=False))
    state = engine.process_state(lead)
    assert state is not None

    again = make_engine(MemoryStore.load(store.dump()), clock, sink, prefix="again-")
    assert again.process_state(lead) == state
    assert again.marketing_settings() == MarketingSettings(automatic_sales_ready=False)
    assert again.check_step(lead, TELEPROSPECT_ACCEPTED).stage == TELEPROSPECTING_QUALIFICATION


def test_state_documents_round_trip(engine: Salesflow) -> None:
    lead = engine.create_lead(topic="t", last_name="X")
    engine.start_process(lead, L2O, by="ana")
    state = engine.check_step(lead, "decision_maker_identified", by="bo")
    assert isinstance(state, FlowState)
    assert state_from_dict(state_to_dict(state)) == state
    broken = {**state_to_dict(state), "history": [{"flow_id": L2O}]}
    with pytest.raises(ValidationError, match=r"history\[0\]"):
        state_from_dict(broken)


def test_leads_from_intake_start_the_marketing_process_when_switched_on(
    engine: Salesflow,
) -> None:
    from salesflow.intake import IntakeOptions, Submission

    def arrive(email: str, **fields: object) -> str:
        result = engine.intake(
            Submission(
                channel="landing_page",
                form_id="spring",
                fields={"topic": "Docks", "last_name": "Lind", "email": email, **fields},
            ),
            IntakeOptions(create_contact=True),
        )
        assert result.lead is not None
        return result.lead.id

    before = arrive("a@x.example")
    assert engine.process_state(lead_ref(before)) is None  # off by default
    engine.configure_marketing(MarketingSettings(start_on_intake=True))
    assert engine.marketing_settings().start_on_intake
    fresh = arrive("b@x.example")
    assert stage_of(engine, fresh) == INQUIRY
    engine.publish_scoring_model(scoring_model())
    scored = arrive("c@x.example", country="Lithuania")  # scored in the same unit
    state = engine.process_state(lead_ref(scored))
    assert state is not None
    assert [c.to_stage for c in state.history] == [INQUIRY, AUTOMATED_MARKETING_QUALIFICATION]


# --- default processes: new records start on their record type's flow ------------------


ONBOARDING = ProcessFlow(
    id="onboarding",
    name="Customer onboarding",
    record_type="account",
    stages=[Stage(id="welcome", name="Welcome"), Stage(id="live", name="Live")],
)


def test_new_records_start_on_their_record_types_default_flow(engine: Salesflow) -> None:
    assert engine.default_processes() == {}
    engine.publish_process_flow(ONBOARDING)
    assert engine.set_default_process("lead", MARKETING) == {"lead": MARKETING}
    assert engine.set_default_process(RecordKind.ACCOUNT, "onboarding") == {
        "account": "onboarding",
        "lead": MARKETING,
    }
    typed = engine.create_lead(topic="t", last_name="Ruiz")
    assert stage_of(engine, typed.id) == INQUIRY
    account = engine.create_account(name="Contoso")
    state = engine.process_state(account)
    assert state is not None
    assert (state.flow_id, state.stage) == ("onboarding", "welcome")
    contact = engine.create_contact(last_name="Kim")
    assert engine.process_state(contact) is None  # no default for contacts
    from salesflow.intake import Submission

    came = engine.intake(Submission(channel="landing_page", fields={"last_name": "Lee"})).lead
    assert came is not None
    assert stage_of(engine, came.id) == INQUIRY


def test_a_lead_scored_when_it_is_created_starts_and_moves_on_in_one_unit(
    engine: Salesflow,
) -> None:
    engine.publish_scoring_model(scoring_model())
    engine.set_default_process("lead", MARKETING)
    lead_id, _ = person(engine, country="Lithuania")  # scored 20 as it is created
    assert stage_of(engine, lead_id) == AUTOMATED_MARKETING_QUALIFICATION


def test_an_opportunity_handed_a_process_by_its_lead_keeps_it(engine: Salesflow) -> None:
    engine.publish_process_flow(
        ProcessFlow(
            id="deal_desk",
            name="Deal desk",
            record_type="opportunity",
            stages=[Stage(id="review", name="Review")],
        )
    )
    engine.set_default_process("lead", L2O)
    engine.set_default_process("opportunity", "deal_desk")
    assert engine.process_state(engine.create_opportunity(name="Docks")).stage == "review"
    lead = engine.create_lead(topic="10 laptops", last_name="Ruiz", company_name="Contoso")
    assert stage_of(engine, lead.id) == QUALIFY
    from salesflow.qualification import QualifyOptions

    qualified = engine.qualify_lead(lead.id, QualifyOptions(create_opportunity=True))
    assert qualified.opportunity is not None
    handed = engine.process_state(qualified.opportunity)
    assert handed is not None
    assert (handed.flow_id, handed.stage) == (L2O, DEVELOP)  # the hand-over, not a restart


def test_a_default_flow_must_exist_and_fit_the_record_type(engine: Salesflow) -> None:
    with pytest.raises(NotFound, match="nope"):
        engine.set_default_process("lead", "nope")
    engine.publish_process_flow(ONBOARDING)
    with pytest.raises(ValidationError, match="starts on record type 'account', not 'lead'"):
        engine.set_default_process("lead", "onboarding")
    with pytest.raises(ValidationError, match="'activity' is not valid; process flows run on"):
        engine.set_default_process("activity", MARKETING)
    assert engine.default_processes() == {}
    engine.set_default_process("lead", MARKETING)
    assert engine.set_default_process("lead", None) == {}
    assert engine.process_state(engine.create_lead(topic="t", last_name="Ng")) is None
