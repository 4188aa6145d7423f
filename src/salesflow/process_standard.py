"""The two standard process flows of the spec (R2.5) and the marketing process's rules.

* `LEAD_TO_OPPORTUNITY`, the "Lead to opportunity sales process": Qualify (on the
  lead) → Develop → Propose → Close (on the opportunity). Qualifying the lead closes
  it, creates an opportunity and moves the process to Develop on that opportunity:
  `on_lead_qualified` (the generic `salesflow.process_runtime.continue_on`).
* `MARKETING_LEAD_PROCESS`, the lead marketing sales process: Inquiry → Automated
  marketing qualification → Teleprospecting acceptance → Teleprospecting
  qualification → Sales acceptance, with its rules as pure functions:

  - `on_first_score`: a lead that gets its first score moves from Inquiry to
    Automated marketing qualification (when `MarketingSettings` has
    ``automated_marketing_qualification`` on);
  - `on_sales_ready`: a lead marked sales-ready, by its score crossing the model's
    threshold (when ``automatic_sales_ready`` is on) or by hand, has "Sales ready"
    ticked and skips both teleprospecting stages, going straight to Sales acceptance;
  - `mark_teleprospecting_ready` (by hand, in Automated marketing qualification) and
    `accept_teleprospect` ("Teleprospect accepted") tick their stage's gate, which
    moves the lead to the next stage; ticking "Sales ready" in Teleprospecting
    qualification is `on_sales_ready` by hand;
  - `accept_for_sales` ticks "Sales accepted" and hands back the seller the engine
    must assign the lead to (`Outcome.assign_to`).

  Any stage can also be moved by hand with the generic moves, as the seed says. The
  rules work on any flow with the standard stage and checkbox ids (an organization's
  customized copy); `marketing_problems` says what a flow lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from salesflow.documents import Table
from salesflow.errors import InvalidDefinition, InvalidTransition, ValidationError
from salesflow.events import Event
from salesflow.process import ProcessFlow, Stage, StageStep, StepKind
from salesflow.process_runtime import (
    ChangeReason,
    FlowState,
    Outcome,
    _check_by,
    _check_flow,
    _check_time,
    _set_checked,
    check,
    continue_on,
    move,
    next_stage,
)
from salesflow.values import RecordKind, RecordRef, flag

__all__ = [
    "AUTOMATED_MARKETING_QUALIFICATION",
    "CLOSE",
    "DEVELOP",
    "INQUIRY",
    "LEAD_TO_OPPORTUNITY",
    "MARKETING_LEAD_PROCESS",
    "MARKETING_SETTINGS",
    "MARKETING_SETTINGS_KEY",
    "PROPOSE",
    "QUALIFY",
    "SALES_ACCEPTANCE",
    "SALES_ACCEPTED",
    "SALES_READY",
    "TELEPROSPECTING_ACCEPTANCE",
    "TELEPROSPECTING_QUALIFICATION",
    "TELEPROSPECTING_READY",
    "TELEPROSPECTING_STAGES",
    "TELEPROSPECT_ACCEPTED",
    "MarketingSettings",
    "SalesAccepted",
    "accept_for_sales",
    "accept_teleprospect",
    "mark_teleprospecting_ready",
    "marketing_problems",
    "on_first_score",
    "on_lead_qualified",
    "on_sales_ready",
    "settings_from_document",
    "settings_to_document",
]

# --- Lead to opportunity sales process ----------------------------------------------

QUALIFY = "qualify"
DEVELOP = "develop"
PROPOSE = "propose"
CLOSE = "close"


def _field(name: str, label: str, *, required: bool = False) -> StageStep:
    return StageStep(id=name, label=label, kind=StepKind.FIELD, required=required)


def _box(box_id: str, label: str, *, required: bool = False) -> StageStep:
    return StageStep(id=box_id, label=label, kind=StepKind.CHECKBOX, required=required)


LEAD_TO_OPPORTUNITY = ProcessFlow(
    id="lead_to_opportunity_sales_process",
    name="Lead to opportunity sales process",
    record_type=RecordKind.LEAD,
    description=(
        "Qualify the lead; qualifying it creates the opportunity, which goes on through "
        "Develop, Propose and Close."
    ),
    stages=(
        Stage(
            id=QUALIFY,
            name="Qualify",
            steps=(
                _field("parent_contact_id", "Existing contact"),
                _field("parent_account_id", "Existing account"),
                _field("purchase_timeframe", "Purchase timeframe"),
                _field("budget_amount", "Estimated budget"),
                _field("purchase_process", "Purchase process"),
                _box("decision_maker_identified", "Identify decision maker"),
                _field("description", "Capture summary"),
            ),
        ),
        Stage(
            id=DEVELOP,
            name="Develop",
            record_type=RecordKind.OPPORTUNITY,
            steps=(
                _field("description", "Customer need", required=True),
                _field("proposed_solution", "Proposed solution"),
                _field("stakeholders", "Identify stakeholders"),
                _field("competitors", "Identify competitors"),
            ),
        ),
        Stage(
            id=PROPOSE,
            name="Propose",
            record_type=RecordKind.OPPORTUNITY,
            steps=(
                _box("sales_team_identified", "Identify sales team"),
                _box("proposal_developed", "Develop proposal", required=True),
                _box("internal_review_completed", "Complete internal review"),
                _box("proposal_presented", "Present proposal", required=True),
            ),
        ),
        Stage(
            id=CLOSE,
            name="Close",
            record_type=RecordKind.OPPORTUNITY,
            steps=(
                _box("final_proposal_completed", "Complete final proposal"),
                _box("final_proposal_presented", "Present final proposal", required=True),
                _field("estimated_close_date", "Confirm decision date", required=True),
                _box("thank_you_sent", "Send thank you"),
                _box("debrief_filed", "File de-brief"),
            ),
        ),
    ),
)
"""The "Lead to opportunity sales process": Qualify → Develop → Propose → Close."""


def on_lead_qualified(
    flow: ProcessFlow,
    state: FlowState,
    opportunity: RecordRef,
    *,
    by: str | None,
    now: datetime,
) -> Outcome:
    """The lead was qualified into ``opportunity``: the process goes on to Develop there.

    The same as `salesflow.process_runtime.continue_on`, named for the sales process.

    Raises:
        InvalidTransition: The process is not on the lead's last stage (Qualify), or
            ``opportunity`` is not an opportunity.
    """
    return continue_on(flow, state, opportunity, by=by, now=now)


# --- marketing lead process ---------------------------------------------------------

INQUIRY = "inquiry"
AUTOMATED_MARKETING_QUALIFICATION = "automated_marketing_qualification"
TELEPROSPECTING_ACCEPTANCE = "teleprospecting_acceptance"
TELEPROSPECTING_QUALIFICATION = "teleprospecting_qualification"
SALES_ACCEPTANCE = "sales_acceptance"

TELEPROSPECTING_STAGES = frozenset({TELEPROSPECTING_ACCEPTANCE, TELEPROSPECTING_QUALIFICATION})
"""The stages a sales-ready lead skips."""

TELEPROSPECTING_READY = "teleprospecting_ready"
TELEPROSPECT_ACCEPTED = "teleprospect_accepted"
SALES_READY = "sales_ready"
SALES_ACCEPTED = "sales_accepted"

_MARKETING_ORDER = (
    INQUIRY,
    AUTOMATED_MARKETING_QUALIFICATION,
    TELEPROSPECTING_ACCEPTANCE,
    TELEPROSPECTING_QUALIFICATION,
    SALES_ACCEPTANCE,
)
_MARKETING_BOXES = {
    TELEPROSPECTING_READY: AUTOMATED_MARKETING_QUALIFICATION,
    TELEPROSPECT_ACCEPTED: TELEPROSPECTING_ACCEPTANCE,
    SALES_READY: TELEPROSPECTING_QUALIFICATION,
    SALES_ACCEPTED: SALES_ACCEPTANCE,
}

MARKETING_LEAD_PROCESS = ProcessFlow(
    id="marketing_lead_process",
    name="Lead marketing sales process",
    record_type=RecordKind.LEAD,
    description=(
        "Tracks a lead from its first interaction to its acceptance by sales; a "
        "sales-ready lead skips the teleprospecting stages."
    ),
    stages=(
        Stage(
            id=INQUIRY,
            name="Inquiry",
            steps=(
                _field("parent_contact_id", "Existing contact"),
                _field("parent_account_id", "Existing account"),
            ),
            # A lead marked sales-ready by hand before its first score skips too.
            jumps_to=(SALES_ACCEPTANCE,),
        ),
        Stage(
            id=AUTOMATED_MARKETING_QUALIFICATION,
            name="Automated marketing qualification",
            steps=(_box(TELEPROSPECTING_READY, "Teleprospecting ready", required=True),),
            jumps_to=(SALES_ACCEPTANCE,),
        ),
        Stage(
            id=TELEPROSPECTING_ACCEPTANCE,
            name="Teleprospecting acceptance",
            steps=(_box(TELEPROSPECT_ACCEPTED, "Teleprospect accepted", required=True),),
            jumps_to=(SALES_ACCEPTANCE,),
        ),
        Stage(
            id=TELEPROSPECTING_QUALIFICATION,
            name="Teleprospecting qualification",
            steps=(
                # What the telemarketer learns on the call; informative, not a gate.
                _field("purchase_timeframe", "Purchase timeframe"),
                _field("budget_amount", "Estimated budget"),
                _field("purchase_process", "Purchase process"),
                _field("need", "Need"),
                _box(SALES_READY, "Sales ready", required=True),
            ),
        ),
        Stage(
            id=SALES_ACCEPTANCE,
            name="Sales acceptance",
            steps=(_box(SALES_ACCEPTED, "Sales accepted", required=True),),
        ),
    ),
)
"""The marketing lead process of seed 001 (Customer Insights – Journeys)."""


@attrs.frozen(kw_only=True)
class MarketingSettings:
    """The switches of the marketing process's automatic rules (both on by default,
    as the product ships them).

    Attributes:
        automated_marketing_qualification: A lead's first score moves it from
            Inquiry to Automated marketing qualification.
        automatic_sales_ready: A score crossing the model's sales-ready threshold
            marks the lead sales-ready (and so skips teleprospecting). Off, only a
            user can mark it.
        start_on_intake: Every lead intake creates (a form, an event registration,
            a CSV import) starts the latest version of the standard marketing lead
            process at Inquiry in the same unit of work (off by default: leads
            start a process with `Salesflow.start_process`).
        remove_stopped_model_scores: Deactivating a scoring model deletes the scores
            it gave (the product's "automatic clean-up of a stopped model's scores"):
            leads' current and best scores, the work list's score order and routing
            no longer see them. Off, they stay, and count, until the leads are scored
            again. A lead's process stage is never undone by it.
    """

    automated_marketing_qualification: bool = attrs.field(default=True, validator=flag)
    automatic_sales_ready: bool = attrs.field(default=True, validator=flag)
    start_on_intake: bool = attrs.field(default=False, validator=flag)
    remove_stopped_model_scores: bool = attrs.field(default=True, validator=flag)


MARKETING_SETTINGS = "marketing_settings"
"""The state document kind of the marketing switches (one document, key
`MARKETING_SETTINGS_KEY`)."""

MARKETING_SETTINGS_KEY = "default"

_SWITCHES = (
    ("automated_marketing_qualification", True),
    ("automatic_sales_ready", True),
    ("start_on_intake", False),
    ("remove_stopped_model_scores", True),
)
"""Every switch of `MarketingSettings` and its default (a document from before a
switch existed gets the default)."""


def settings_to_document(settings: MarketingSettings) -> dict[str, Any]:
    """The state document that keeps ``settings``."""
    return {"schema": 1, **{name: getattr(settings, name) for name, _ in _SWITCHES}}


def settings_from_document(document: Mapping[str, Any] | None) -> MarketingSettings:
    """The settings a `settings_to_document` document keeps (the defaults for None).

    Raises:
        ValidationError: a switch is not true or false, or the document has other keys.
    """
    if document is None:
        return MarketingSettings()
    table = Table(document, "", ("schema", *(name for name, _ in _SWITCHES)))
    return MarketingSettings(**{name: table.flag(name, default) for name, default in _SWITCHES})


_DEFAULTS = MarketingSettings()


@attrs.frozen(kw_only=True)
class SalesAccepted(Event):
    """Sales accepted a marketing lead; the engine assigns it to ``seller_id``."""

    flow_id: str
    record: RecordRef
    seller_id: str
    by: str | None


def marketing_problems(flow: ProcessFlow) -> list[str]:
    """What ``flow`` lacks for the marketing rules: the five standard stages in order
    and the four gate checkboxes in their stages. Empty for `MARKETING_LEAD_PROCESS`
    and for customized copies that keep those ids."""
    problems: list[str] = []
    ids = [stage.id for stage in flow.stages]
    missing = [s for s in _MARKETING_ORDER if s not in ids]
    if missing:
        problems.append(
            f"process flow {flow.id!r} has no stage {', '.join(map(repr, missing))}; the "
            f"marketing rules need the stages {', '.join(map(repr, _MARKETING_ORDER))}"
        )
    elif [s for s in ids if s in _MARKETING_ORDER] != list(_MARKETING_ORDER):
        problems.append(
            f"process flow {flow.id!r} lists the marketing stages out of order; put them "
            f"in the order {', '.join(map(repr, _MARKETING_ORDER))}"
        )
    for box, stage_id in _MARKETING_BOXES.items():
        if stage_id not in ids:
            continue
        stage = flow.stage(stage_id)
        if not any(s.id == box and s.kind is StepKind.CHECKBOX for s in stage.steps):
            problems.append(
                f"stage {stage_id!r} of process flow {flow.id!r} has no checkbox {box!r}; "
                f"add it (the marketing rules tick it)"
            )
    return problems


def _require_marketing(flow: ProcessFlow, state: FlowState) -> None:
    problems = marketing_problems(flow)
    if problems:
        raise InvalidDefinition(problems)
    _check_flow(flow, state)


def on_first_score(
    flow: ProcessFlow,
    state: FlowState,
    *,
    now: datetime,
    settings: MarketingSettings = _DEFAULTS,
) -> Outcome:
    """A lead got its first score: Inquiry → Automated marketing qualification.

    The system moves it (``by`` is ``None``). Nothing changes when the switch
    ``automated_marketing_qualification`` is off or the lead is no longer on Inquiry
    (it was moved by hand, or already skipped to Sales acceptance), so calling this
    again is harmless.

    Raises:
        InvalidDefinition: ``flow`` lacks the marketing stages or checkboxes.
    """
    _require_marketing(flow, state)
    _check_time(now)
    if not settings.automated_marketing_qualification or state.stage != INQUIRY:
        return Outcome(state=state)
    return move(
        flow,
        state,
        AUTOMATED_MARKETING_QUALIFICATION,
        by=None,
        now=now,
        reason=ChangeReason.FIRST_SCORE,
    )


def on_sales_ready(
    flow: ProcessFlow,
    state: FlowState,
    *,
    by_score: bool,
    by: str | None,
    now: datetime,
    settings: MarketingSettings = _DEFAULTS,
) -> Outcome:
    """The lead is sales-ready: tick "Sales ready" and skip to Sales acceptance.

    Whether by score (``by_score``, the threshold was crossed; ignored while the
    switch ``automatic_sales_ready`` is off) or by hand, a lead on any stage before
    Sales acceptance goes straight there, skipping the teleprospecting stages it has
    not passed. A lead already on Sales acceptance only gets the box ticked; one
    already sales-ready there is left as it is.

    Args:
        flow: The marketing flow version the lead is on.
        state: The lead's process state.
        by_score: True when the score crossed the threshold, False when a user
            marked the lead.
        by: The user who marked it, or ``None`` for the system.
        now: The current time (aware).
        settings: The marketing switches.

    Raises:
        InvalidDefinition: ``flow`` lacks the marketing stages or checkboxes.
    """
    _require_marketing(flow, state)
    when, who = _check_time(now), _check_by(by)
    if not isinstance(by_score, bool):
        raise ValidationError(
            f"by_score={by_score!r} must be True (the score crossed the threshold) or False "
            f"(marked by hand)",
            field="by_score",
            value=by_score,
        )
    if by_score and not settings.automatic_sales_ready:
        return Outcome(state=state)
    ticked = _set_checked(flow, state, SALES_READY, True, by=who, now=when)
    if flow.index(state.stage) >= flow.index(SALES_ACCEPTANCE):
        return ticked
    return move(
        flow,
        ticked.state,
        SALES_ACCEPTANCE,
        by=who,
        now=when,
        reason=ChangeReason.SALES_READY,
        extra=ticked.events,
    )


def _gate(
    flow: ProcessFlow,
    state: FlowState,
    box: str,
    record_fields: Mapping[str, object],
    *,
    by: str | None,
    now: datetime,
) -> Outcome:
    """Tick ``box`` of the current stage and move to the next stage, all or nothing."""
    _require_marketing(flow, state)
    owner = _MARKETING_BOXES[box]
    if state.stage != owner:
        raise InvalidTransition(
            f"the lead {state.record} is on stage {flow.stage(state.stage).name!r}; "
            f"{flow.step(box)[1].label!r} is ticked on {flow.stage(owner).name!r}: move the "
            f"lead there first",
            state=state.stage,
            event=box,
        )
    ticked = check(flow, state, box, True, by=by, now=now)
    moved = next_stage(flow, ticked.state, record_fields, by=by, now=now, reason=ChangeReason.GATE)
    return Outcome(state=moved.state, events=ticked.events + moved.events)


def mark_teleprospecting_ready(
    flow: ProcessFlow,
    state: FlowState,
    *,
    record_fields: Mapping[str, object] | None = None,
    by: str | None,
    now: datetime,
) -> Outcome:
    """A user marks the lead ready for teleprospecting in Automated marketing
    qualification: "Teleprospecting ready" is ticked and the lead moves to
    Teleprospecting acceptance.

    Raises:
        InvalidTransition: The lead is not on Automated marketing qualification, or
            other required steps of the stage are missing (nothing is ticked then).
        InvalidDefinition: ``flow`` lacks the marketing stages or checkboxes.
    """
    return _gate(flow, state, TELEPROSPECTING_READY, record_fields or {}, by=by, now=now)


def accept_teleprospect(
    flow: ProcessFlow,
    state: FlowState,
    *,
    record_fields: Mapping[str, object] | None = None,
    by: str | None,
    now: datetime,
) -> Outcome:
    """A telemarketer accepts the lead: "Teleprospect accepted" is ticked and the lead
    moves to Teleprospecting qualification.

    Raises:
        InvalidTransition: The lead is not on Teleprospecting acceptance, or other
            required steps of the stage are missing (nothing is ticked then).
        InvalidDefinition: ``flow`` lacks the marketing stages or checkboxes.
    """
    return _gate(flow, state, TELEPROSPECT_ACCEPTED, record_fields or {}, by=by, now=now)


def accept_for_sales(
    flow: ProcessFlow,
    state: FlowState,
    *,
    seller_id: str,
    by: str | None,
    now: datetime,
) -> Outcome:
    """A sales manager accepts the lead: "Sales accepted" is ticked and the outcome's
    ``assign_to`` names the seller the engine must assign the lead to.

    Raises:
        InvalidTransition: The lead is not on Sales acceptance, or was accepted
            already (reassign it instead).
        ValidationError: ``seller_id`` is not a user id.
        InvalidDefinition: ``flow`` lacks the marketing stages or checkboxes.
    """
    _require_marketing(flow, state)
    when, who = _check_time(now), _check_by(by)
    if not isinstance(seller_id, str) or not seller_id or seller_id != seller_id.strip():
        raise ValidationError(
            f"seller_id={seller_id!r} must be the id of the seller to assign the lead to",
            field="seller_id",
            value=seller_id,
        )
    if state.stage != SALES_ACCEPTANCE:
        raise InvalidTransition(
            f"the lead {state.record} is on stage {flow.stage(state.stage).name!r}; sales "
            f"accepts a lead on {flow.stage(SALES_ACCEPTANCE).name!r}: mark it sales-ready "
            f"first",
            state=state.stage,
            event=SALES_ACCEPTED,
        )
    if SALES_ACCEPTED in state.checked:
        raise InvalidTransition(
            f"the lead {state.record} was accepted by sales already; to give it to another "
            f"seller, reassign it",
            state=state.stage,
            event=SALES_ACCEPTED,
        )
    ticked = _set_checked(flow, state, SALES_ACCEPTED, True, by=who, now=when)
    accepted = SalesAccepted(
        occurred_at=when, flow_id=flow.id, record=state.record, seller_id=seller_id, by=who
    )
    return Outcome(state=ticked.state, events=(*ticked.events, accepted), assign_to=seller_id)
