"""Process flow commands of `Salesflow`: publish flows, run records through them,
and the two standard flows' rules.

Flows are versioned definitions (kind ``process_flow``). The two standard flows,
`LEAD_TO_OPPORTUNITY` (``lead_to_opportunity_sales_process``) and
`MARKETING_LEAD_PROCESS` (``marketing_lead_process``), are built in: they can be
started by id without being published, as version 1. Publishing a flow with one of
their ids stores a customized version 2 (then 3, …); records already on the
built-in version stay there until switched.

Each record's place in its flow is a `FlowState`, kept as a state document (kind
``process_flow``, key the record reference, e.g. ``lead:lead-1``) and changed with
optimistic versions. Every move is a pure function of `salesflow.process_runtime`
or `salesflow.process_standard`; a refused move changes nothing and publishes
nothing, and the events of a move (`StageChanged`, …) are published after commit.

The rules wired into other commands:

* qualifying a lead whose process is on its last lead stage of a flow that goes on
  on the opportunity (the "Lead to opportunity sales process": Qualify) hands the
  process over to the new opportunity, on Develop; the lead's document then points
  at the opportunity's, so `process_state` of the lead shows where it went;
* a lead on a marketing process (`MARKETING_LEAD_PROCESS` or a copy keeping its
  stage and checkbox ids) moves from Inquiry to Automated marketing qualification
  when it gets its first score, and skips to Sales acceptance when a score makes it
  sales-ready, in the unit that scored it; both switchable with
  `ProcessCommands.configure_marketing`. A lead that already has scores when its
  marketing process starts gets the same moves at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from salesflow import events as ev
from salesflow import lead as leads
from salesflow import process_runtime as runtime
from salesflow import process_standard as standard
from salesflow.commands.core import RECORD_CLASSES
from salesflow.commands.leads import LeadCommands
from salesflow.commands.work import Work, as_ref, require_editable
from salesflow.conditions import Condition
from salesflow.definitions import StateDocument
from salesflow.documents import Table
from salesflow.errors import InvalidTransition, NotFound, ValidationError
from salesflow.lead import Lead
from salesflow.process import FLOW_RECORD_TYPES, ProcessFlow, flow_record_type, require_valid
from salesflow.process_io import from_dict, to_dict
from salesflow.process_standard import (
    MARKETING_SETTINGS,
    MARKETING_SETTINGS_KEY,
    MarketingSettings,
    settings_from_document,
    settings_to_document,
)
from salesflow.process_state import FlowState, Outcome
from salesflow.process_state_io import state_from_dict, state_to_dict
from salesflow.scoring_criteria import criteria_met
from salesflow.sequences.io import condition_from_dict
from salesflow.stores.base import UnitOfWork
from salesflow.values import Record, RecordKind, RecordRef

__all__ = [
    "CRITERIA_KEY",
    "CRITERIA_STATE",
    "MARKETING_SETTINGS",
    "PROCESS_FLOW",
    "SALES_READY_STATE",
    "STANDARD_FLOWS",
    "ProcessCommands",
    "lead_is_sales_ready",
    "qualification_criteria_of",
]

PROCESS_FLOW = "process_flow"
"""The definition kind of process flows, and the state document kind of records'
process states."""

STANDARD_FLOWS: dict[str, ProcessFlow] = {
    standard.LEAD_TO_OPPORTUNITY.id: standard.LEAD_TO_OPPORTUNITY,
    standard.MARKETING_LEAD_PROCESS.id: standard.MARKETING_LEAD_PROCESS,
}
"""The built-in flows by id, available as version 1 without publishing."""

_HANDOVER = "process_handover"

_MARKETING_EVENTS = (ev.LeadScored, ev.LeadBecameSalesReady)
"""The events after which the marketing flow's rules may move a lead on."""

Move = Callable[[Work, ProcessFlow, FlowState, Record], Outcome]


def _record_fields(record: Record) -> dict[str, object]:
    """The record's fields by name for field steps: custom fields by their key
    (and as ``custom.<key>``), standard fields over custom ones of the same name."""
    values: dict[str, object] = {}
    for key, value in record.custom.items():
        values[key] = value
        values[f"custom.{key}"] = value
    for attribute in attrs.fields(type(record)):
        if attribute.name != "custom":
            values[attribute.name] = getattr(record, attribute.name)
    return values


def _is_marketing(flow: ProcessFlow) -> bool:
    return not standard.marketing_problems(flow)


def _lead_ref(lead: object) -> RecordRef:
    if isinstance(lead, str):
        return RecordRef(kind=RecordKind.LEAD, id=lead)
    ref = as_ref(lead)
    if ref.kind is not RecordKind.LEAD:
        raise ValidationError(
            f"{ref} is not a lead; the marketing process runs on leads",
            field="lead",
            value=lead,
        )
    return ref


def _joined(first: Outcome, second: Outcome) -> Outcome:
    return Outcome(
        state=second.state,
        events=first.events + second.events,
        assign_to=second.assign_to or first.assign_to,
    )


def marketing_settings_of(work: Work) -> MarketingSettings:
    """The marketing switches in force in ``work`` (read once per unit of work)."""
    held = work.memo.get(MARKETING_SETTINGS)
    if isinstance(held, MarketingSettings):
        return held
    stored = work.uow.get_state(MARKETING_SETTINGS, MARKETING_SETTINGS_KEY)
    settings = settings_from_document(None if stored is None else stored.document)
    work.memo[MARKETING_SETTINGS] = settings
    return settings


SALES_READY_STATE = "scoring.sales_ready"
"""The state document kind that keeps that a lead became sales-ready (one per lead,
keyed by its id): ``{"schema": 1, "since": <ISO time it was marked>, "model_id",
"model_version", "points"}``, the score that got it there (all three None when the
qualification criteria decided). Never removed: a lead once sales-ready stays so."""


CRITERIA_STATE = "scoring.criteria"
"""The state document kind of the qualification criteria (key `CRITERIA_KEY`):
``{"schema": 1, "criteria": <condition document> | None}``."""
CRITERIA_KEY = "default"


DEFAULT_PROCESSES = "process.defaults"
"""The state document kind of the default flow per record type (key
`DEFAULT_PROCESSES_KEY`): ``{"schema": 1, "flows": {"lead": "<flow id>", ...}}``."""
DEFAULT_PROCESSES_KEY = "default"


def _default_flows(stored: StateDocument | None) -> dict[str, str]:
    if stored is None:
        return {}
    flows = stored.document.get("flows", {})
    return {str(k): str(v) for k, v in flows.items()} if isinstance(flows, dict) else {}


def _is_editable(record: Record) -> bool:
    try:
        require_editable(record)
    except InvalidTransition:
        return False
    return True


def qualification_criteria_of(uow: UnitOfWork) -> Condition | None:
    """The qualification criteria in force (`salesflow.scoring_criteria`), or None: a
    lead is then sales-ready when any model's score reaches its threshold."""
    stored = uow.get_state(CRITERIA_STATE, CRITERIA_KEY)
    document = None if stored is None else stored.document.get("criteria")
    return None if document is None else condition_from_dict(document)


def lead_is_sales_ready(uow: UnitOfWork, lead_id: str) -> bool:
    """Whether the lead is sales-ready: marked so the first time it was (its scores
    met the qualification criteria, or without criteria some model's score reached
    that model's threshold; `SALES_READY_STATE`), whatever its scores are now.

    Without the mark its current scores decide, for leads scored by a salesflow that
    did not keep it yet."""
    if uow.get_state(SALES_READY_STATE, lead_id) is not None:
        return True
    scores = uow.scores(lead_id)
    criteria = qualification_criteria_of(uow)
    if criteria is not None:
        return criteria_met(criteria, {s.model_id: s for s in scores})
    return any(s.sales_ready for s in scores)


class ProcessCommands(LeadCommands):
    """Business process flows on records, and the standard flows' rules."""

    _process_cache: dict[tuple[str, int], ProcessFlow]

    @contextmanager
    def _looking(self) -> Iterator[Work]:
        """A read as a `Work` (nothing is written or published), for the helpers."""
        with self._read() as uow:
            yield Work(uow, self.now(), due_ids=self._due_ids)

    # --- flows ----------------------------------------------------------------------

    def publish_process_flow(self, flow: ProcessFlow) -> ProcessFlow:
        """Publish ``flow`` as the next version of its id, active.

        The first published version of a standard flow's id is version 2 (the
        built-in flow is version 1). Records stay on the version they follow until
        `switch_process` moves them.

        Returns:
            The published flow (its ``version`` set).

        Raises:
            InvalidDefinition: the flow has problems (`salesflow.process.validate`).
            ValidationError: ``flow`` is not a `ProcessFlow`.
        """
        if not isinstance(flow, ProcessFlow):
            raise ValidationError(
                f"publish_process_flow() takes a ProcessFlow, not {type(flow).__name__}",
                field="flow",
                value=flow,
            )
        with self._command() as work:
            latest = work.uow.find_definition(PROCESS_FLOW, flow.id)
            if latest is not None:
                version = latest.version + 1
            else:
                version = 2 if flow.id in STANDARD_FLOWS else 1
            published = attrs.evolve(flow, version=version)
            require_valid(published)
            work.publish(PROCESS_FLOW, flow.id, version, to_dict(published))
        self._process_cache[(flow.id, version)] = published
        return published

    def process_flow(self, flow_id: str, version: int | None = None) -> ProcessFlow:
        """The flow ``flow_id`` at ``version`` (the latest when None), published or
        built in.

        Raises:
            NotFound: no such flow or version.
        """
        with self._looking() as work:
            return self._flow(work, flow_id, version)

    def process_flows(self) -> list[ProcessFlow]:
        """The latest version of every flow (the standard ones included), by id."""
        with self._looking() as work:
            ids = {d.id for d in work.uow.definitions(PROCESS_FLOW)} | set(STANDARD_FLOWS)
            return [self._flow(work, flow_id, None) for flow_id in sorted(ids)]

    def _flow(self, work: Work, flow_id: str, version: int | None) -> ProcessFlow:
        if not isinstance(flow_id, str):
            raise ValidationError(
                f"flow_id={flow_id!r} must be a process flow id", field="flow_id", value=flow_id
            )
        stored = work.uow.find_definition(PROCESS_FLOW, flow_id, version)
        if stored is None:
            built_in = STANDARD_FLOWS.get(flow_id)
            if built_in is not None and version in (None, built_in.version):
                return built_in
            what = flow_id if version is None else f"{flow_id} version {version}"
            raise NotFound("ProcessFlow", what)
        key = (stored.id, stored.version)
        flow = self._process_cache.get(key)
        if flow is None:
            # versions never change once stored, so the parsed flow is kept
            flow = self._process_cache[key] = from_dict(stored.document)
        return flow

    # --- states ---------------------------------------------------------------------

    def _stored_state(
        self, work: Work, ref: RecordRef
    ) -> tuple[StateDocument, FlowState | RecordRef] | None:
        """The record's state document and what it holds: its state, or the record
        its process was handed over to."""
        doc = work.uow.get_state(PROCESS_FLOW, str(ref))
        if doc is None:
            return None
        if doc.document.get("kind") == _HANDOVER:
            to = Table(doc.document["to"], "to", ("kind", "id"), required=("kind", "id"))
            return doc, RecordRef(kind=to.get("kind", str), id=to.get("id", str))
        return doc, state_from_dict(doc.document)

    def _current(self, work: Work, ref: RecordRef) -> tuple[StateDocument, FlowState]:
        """The state a move starts from (refusing records without one)."""
        found = self._stored_state(work, ref)
        if found is None:
            raise InvalidTransition(
                f"{ref} follows no process flow; start one with start_process(record, flow_id)",
                state=None,
                event="move",
            )
        doc, held = found
        if isinstance(held, RecordRef):
            raise InvalidTransition(
                f"the process of {ref} went on to {held} when it was qualified; move it there",
                state=None,
                event="move",
            )
        return doc, held

    def _save(
        self, work: Work, ref: RecordRef, doc: StateDocument | None, outcome: Outcome
    ) -> None:
        if not outcome.changed:
            return
        work.uow.put_state(
            PROCESS_FLOW,
            str(ref),
            state_to_dict(outcome.state),
            expected_version=None if doc is None else doc.version,
            now=work.now,
        )
        work.events.extend(outcome.events)
        if outcome.assign_to is not None:
            lead = work.get(Lead, ref.id)
            self._assign_in(work, lead, outcome.assign_to)

    def _open_record(self, work: Work, ref: RecordRef) -> Record:
        record = work.get(RECORD_CLASSES[ref.kind], ref.id)
        if isinstance(record, Lead):
            leads.require_open(record, "moved along its process")
        else:
            require_editable(record)
        return record

    def _process_move(self, record: Record | RecordRef, move: Move) -> FlowState:
        ref = as_ref(record)
        with self._command() as work:
            current = self._open_record(work, ref)
            doc, state = self._current(work, ref)
            flow = self._flow(work, state.flow_id, state.flow_version)
            outcome = move(work, flow, state, current)
            self._save(work, ref, doc, outcome)
        return outcome.state

    def process_state(self, record: Record | RecordRef) -> FlowState | None:
        """Where ``record`` stands in its process flow, or None when it follows none.

        For a lead whose process went on to its opportunity, the opportunity's state
        (its ``continued_from`` is the lead).
        """
        ref = as_ref(record)
        with self._looking() as work:
            found = self._stored_state(work, ref)
            if found is not None and isinstance(found[1], RecordRef):
                found = self._stored_state(work, found[1])
            if found is None or isinstance(found[1], RecordRef):
                return None
            return found[1]

    # --- moves ----------------------------------------------------------------------

    def start_process(
        self, record: Record | RecordRef, flow_id: str, *, by: str | None = None
    ) -> FlowState:
        """Put ``record`` on the first stage of the latest version of ``flow_id``.

        A lead starting a marketing process with scores already moves on as the
        marketing rules say (first score; sales-ready).

        Args:
            record: The record (or its reference).
            flow_id: The flow; a standard flow's id works without publishing.
            by: The user starting it, or None for the system.

        Raises:
            NotFound: no such record or flow.
            InvalidTransition: the record follows a process already (switch it
                instead), or is closed.
            ValidationError: the flow runs on another record type.
        """
        ref = as_ref(record)
        with self._command() as work:
            self._open_record(work, ref)
            found = self._stored_state(work, ref)
            if found is not None:
                held = found[1]
                where = (
                    f"went on to {held}"
                    if isinstance(held, RecordRef)
                    else f"follows process flow {held.flow_id!r}"
                )
                raise InvalidTransition(
                    f"{ref} {where} already; use switch_process(record, flow_id) to move it "
                    f"to another flow",
                    state=None,
                    event="start",
                )
            flow = self._flow(work, flow_id, None)
            outcome = runtime.start(flow, ref, by=by, now=work.now)
            if ref.kind is RecordKind.LEAD and _is_marketing(flow):
                scores = work.uow.scores(ref.id)
                outcome = self._marketing_rules(
                    work,
                    flow,
                    outcome,
                    first_score=bool(scores),
                    sales_ready=lead_is_sales_ready(work.uow, ref.id),
                )
            self._save(work, ref, None, outcome)
        return outcome.state

    def next_stage(self, record: Record | RecordRef, *, by: str | None = None) -> FlowState:
        """Move ``record`` to the next stage once the current stage's required steps
        (its fields set, its checkboxes ticked) are complete.

        Raises:
            InvalidTransition: on the last stage, at a hand-over (qualify the lead),
                or with required steps missing (the message names them).
        """
        return self._process_move(
            record,
            lambda work, flow, state, current: runtime.next_stage(
                flow, state, _record_fields(current), by=by, now=work.now
            ),
        )

    def previous_stage(self, record: Record | RecordRef, *, by: str | None = None) -> FlowState:
        """Move ``record`` back to the stage before its current one in the flow.

        Raises:
            InvalidTransition: on the first stage, or the stage before is on the
                record this one was handed over from.
        """
        return self._process_move(
            record,
            lambda work, flow, state, _: runtime.previous_stage(flow, state, by=by, now=work.now),
        )

    def jump_to_stage(
        self, record: Record | RecordRef, stage_id: str, *, by: str | None = None
    ) -> FlowState:
        """Jump ``record`` to ``stage_id``, which its current stage must allow.

        Raises:
            InvalidTransition: the current stage allows no such jump.
        """
        return self._process_move(
            record,
            lambda work, flow, state, _: runtime.jump(flow, state, stage_id, by=by, now=work.now),
        )

    def check_step(
        self,
        record: Record | RecordRef,
        step_id: str,
        value: bool = True,
        *,
        by: str | None = None,
    ) -> FlowState:
        """Tick (``value`` True) or clear a checkbox of the current or an earlier stage.

        On a marketing process the gates act as the process says: ticking
        "Teleprospecting ready" or "Teleprospect accepted" on its stage moves the
        lead on, and ticking "Sales ready" in Teleprospecting qualification skips
        to Sales acceptance. "Sales accepted" needs a seller: use `accept_for_sales`.

        Raises:
            ValidationError: the flow has no such step.
            InvalidTransition: the step is a field, or on a stage not reached, or
                "Sales accepted" is ticked here.
        """

        def move(work: Work, flow: ProcessFlow, state: FlowState, current: Record) -> Outcome:
            fields = _record_fields(current)
            if value is True and _is_marketing(flow):
                if step_id == standard.TELEPROSPECTING_READY and state.stage == (
                    standard.AUTOMATED_MARKETING_QUALIFICATION
                ):
                    return standard.mark_teleprospecting_ready(
                        flow, state, record_fields=fields, by=by, now=work.now
                    )
                if step_id == standard.TELEPROSPECT_ACCEPTED and state.stage == (
                    standard.TELEPROSPECTING_ACCEPTANCE
                ):
                    return standard.accept_teleprospect(
                        flow, state, record_fields=fields, by=by, now=work.now
                    )
                if step_id == standard.SALES_READY and state.stage == (
                    standard.TELEPROSPECTING_QUALIFICATION
                ):
                    return standard.on_sales_ready(flow, state, by_score=False, by=by, now=work.now)
                if step_id == standard.SALES_ACCEPTED:
                    raise InvalidTransition(
                        f"{state.record} is accepted by sales with accept_for_sales(lead, "
                        f"seller_id), which also assigns the seller; not by ticking the box",
                        state=state.stage,
                        event="check",
                    )
            return runtime.check(flow, state, step_id, value, by=by, now=work.now)

        return self._process_move(record, move)

    def switch_process(
        self, record: Record | RecordRef, flow_id: str, *, by: str | None = None
    ) -> FlowState:
        """Move ``record`` to the latest version of another flow of its record type
        (or of its own flow, to migrate it to a new version).

        It lands on the stage with the same id when the new flow has one, else on
        the new flow's first stage for its record type; the history goes on.

        Raises:
            NotFound: no such flow.
            InvalidTransition: the record is on that flow version already, or the
                flow has no stage on its record type.
        """
        return self._process_move(
            record,
            lambda work, flow, state, _: runtime.switch_flow(
                self._flow(work, flow_id, None), state, by=by, now=work.now
            ),
        )

    # --- default processes ------------------------------------------------------------

    def set_default_process(
        self, record_type: RecordKind | str, flow_id: str | None
    ) -> dict[str, str]:
        """Start every new record of ``record_type`` on ``flow_id``, as the product
        applies a record type's first process flow when a record is created (None:
        start none).

        Every way a record is created counts (a command, intake and CSV import, a
        qualified lead's new opportunity when no process was handed over to it, a
        pipeline rule's repeat lead or copied deal), in the unit of work that creates
        it, after scoring: a lead scored on creation is moved by the marketing rules at
        once. A record following a process already, or created closed, is left alone.

        Returns:
            The default flow id of each record type that has one.

        Raises:
            ValidationError: ``record_type`` is not lead, opportunity, contact or
                account, or the flow starts on another record type.
            NotFound: no such flow (a standard flow's id works without publishing).
        """
        kind = flow_record_type("record_type", record_type)
        with self._command() as work:
            if flow_id is not None:
                flow = self._flow(work, flow_id, None)
                if flow.record_type is not kind:
                    raise ValidationError(
                        f"process flow {flow_id!r} starts on record type "
                        f"{flow.record_type.value!r}, not {kind.value!r}; name a flow of "
                        f"that record type",
                        field="flow_id",
                        value=flow_id,
                    )
            stored = work.uow.get_state(DEFAULT_PROCESSES, DEFAULT_PROCESSES_KEY)
            flows = dict(_default_flows(stored))
            if flow_id is None:
                flows.pop(kind.value, None)
            else:
                flows[kind.value] = flow_id
            work.uow.put_state(
                DEFAULT_PROCESSES,
                DEFAULT_PROCESSES_KEY,
                {"schema": 1, "flows": dict(sorted(flows.items()))},
                expected_version=None if stored is None else stored.version,
                now=work.now,
            )
        return flows

    def default_processes(self) -> dict[str, str]:
        """The flow each record type's new records start on (`set_default_process`),
        by record type value (``"lead"``)."""
        with self._read() as uow:
            return _default_flows(uow.get_state(DEFAULT_PROCESSES, DEFAULT_PROCESSES_KEY))

    def _start_default_processes(self, work: Work) -> None:
        """Start the records ``work`` created on their record type's default flow."""
        if work.written_kinds.isdisjoint(FLOW_RECORD_TYPES):
            return  # most units write activities only
        created = [
            ref
            for ref, (before, after) in work.written.items()
            if before is None and ref.kind in FLOW_RECORD_TYPES
        ]
        if not created:
            return
        flows = _default_flows(work.uow.get_state(DEFAULT_PROCESSES, DEFAULT_PROCESSES_KEY))
        for ref in created:
            flow_id = flows.get(ref.kind.value)
            if flow_id is None or self._stored_state(work, ref) is not None:
                continue
            record = work.get(RECORD_CLASSES[ref.kind], ref.id)
            if not (record.is_open if isinstance(record, Lead) else _is_editable(record)):
                continue
            flow = self._flow(work, flow_id, None)
            # Scores made in this unit move a marketing flow on below, like any lead's.
            self._save(work, ref, None, runtime.start(flow, ref, by=None, now=work.now))

    # --- the marketing process ------------------------------------------------------

    def configure_marketing(self, settings: MarketingSettings) -> MarketingSettings:
        """Switch the marketing process's and lead scoring's automatic rules on or off
        (see `MarketingSettings`): ``automated_marketing_qualification`` (a first
        score moves the lead from Inquiry), ``automatic_sales_ready`` (a score
        crossing the threshold skips to Sales acceptance), ``start_on_intake`` and
        ``remove_stopped_model_scores`` (deactivating a scoring model deletes its
        scores).

        Raises:
            ValidationError: ``settings`` is not a `MarketingSettings`.
        """
        if not isinstance(settings, MarketingSettings):
            raise ValidationError(
                f"configure_marketing() takes a MarketingSettings, not {type(settings).__name__}",
                field="settings",
                value=settings,
            )
        with self._command() as work:
            stored = work.uow.get_state(MARKETING_SETTINGS, MARKETING_SETTINGS_KEY)
            work.uow.put_state(
                MARKETING_SETTINGS,
                MARKETING_SETTINGS_KEY,
                settings_to_document(settings),
                expected_version=None if stored is None else stored.version,
                now=work.now,
            )
            work.memo.pop(MARKETING_SETTINGS, None)
        return settings

    def marketing_settings(self) -> MarketingSettings:
        """The marketing switches in force."""
        with self._looking() as work:
            return marketing_settings_of(work)

    def _marketing_rules(
        self,
        work: Work,
        flow: ProcessFlow,
        outcome: Outcome,
        *,
        first_score: bool,
        sales_ready: bool,
    ) -> Outcome:
        settings = marketing_settings_of(work)
        if first_score:
            outcome = _joined(
                outcome,
                standard.on_first_score(flow, outcome.state, now=work.now, settings=settings),
            )
        if sales_ready:
            outcome = _joined(
                outcome,
                standard.on_sales_ready(
                    flow, outcome.state, by_score=True, by=None, now=work.now, settings=settings
                ),
            )
        return outcome

    def _marketing_move(self, lead: object, move: Move) -> FlowState:
        def checked(work: Work, flow: ProcessFlow, state: FlowState, current: Record) -> Outcome:
            problems = standard.marketing_problems(flow)
            if problems:
                raise InvalidTransition(
                    f"{state.record} follows process flow {flow.id!r}, which is not a marketing "
                    f"process: {'; '.join(problems)}",
                    state=state.stage,
                    event="marketing",
                )
            return move(work, flow, state, current)

        return self._process_move(_lead_ref(lead), checked)

    def mark_sales_ready(self, lead: str | Lead | RecordRef, *, by: str | None = None) -> FlowState:
        """Mark a lead on a marketing process sales-ready by hand: "Sales ready" is
        ticked and the lead skips to Sales acceptance (whatever the switches say).

        Raises:
            InvalidTransition: the lead follows no marketing process, or is closed.
            NotFound: no such lead.
        """
        return self._marketing_move(
            lead,
            lambda work, flow, state, _: standard.on_sales_ready(
                flow, state, by_score=False, by=by, now=work.now
            ),
        )

    def accept_for_sales(
        self, lead: str | Lead | RecordRef, seller_id: str, *, by: str | None = None
    ) -> FlowState:
        """Sales accepts a lead on Sales acceptance: "Sales accepted" is ticked and the
        lead is assigned to ``seller_id`` in the same unit (as `assign_lead` does, so
        the sequences on the lead follow the seller).

        Raises:
            InvalidTransition: the lead is not on Sales acceptance, was accepted
                already, follows no marketing process, or is closed.
            ValidationError: ``seller_id`` is not a user id.
        """
        return self._marketing_move(
            lead,
            lambda work, flow, state, _: standard.accept_for_sales(
                flow, state, seller_id=seller_id, by=by, now=work.now
            ),
        )

    # --- hooks ----------------------------------------------------------------------

    def _lead_created_by_intake(self, work: Work, lead: Lead, *, route: bool) -> None:
        super()._lead_created_by_intake(work, lead, route=route)
        if not marketing_settings_of(work).start_on_intake:
            return
        flow = self._flow(work, standard.MARKETING_LEAD_PROCESS.id, None)
        # scores come later in this unit (scoring runs before the commit) and move
        # the lead on by the marketing rules then
        self._save(work, lead.ref, None, runtime.start(flow, lead.ref, by=None, now=work.now))

    def _lead_qualified(self, work: Work, lead: RecordRef, opportunity: RecordRef | None) -> None:
        super()._lead_qualified(work, lead, opportunity)
        if opportunity is None:
            return
        found = self._stored_state(work, lead)
        if found is None or isinstance(found[1], RecordRef):
            return
        doc, state = found[0], found[1]
        flow = self._flow(work, state.flow_id, state.flow_version)
        position = flow.index(state.stage)
        following = flow.stages[position + 1] if position + 1 < len(flow.stages) else None
        # Only a process standing at its hand-over goes on; any other stays on the lead
        # (qualifying is the lead lifecycle's decision, never the process's).
        if following is None or flow.record_type_of(following) is not RecordKind.OPPORTUNITY:
            return
        if work.uow.get_state(PROCESS_FLOW, str(opportunity)) is not None:
            return  # a reused opportunity keeps the process it has
        outcome = standard.on_lead_qualified(flow, state, opportunity, by=None, now=work.now)
        self._save(work, opportunity, None, outcome)
        pointer: dict[str, Any] = {
            "schema": 1,
            "kind": _HANDOVER,
            "to": {"kind": opportunity.kind.value, "id": opportunity.id},
        }
        work.uow.put_state(
            PROCESS_FLOW, str(lead), pointer, expected_version=doc.version, now=work.now
        )

    def _before_commit(self, work: Work) -> None:
        super()._before_commit(work)  # scoring runs in here
        self._start_default_processes(work)
        first: dict[str, None] = {}
        ready: dict[str, None] = {}
        for event in work.events:
            # one test per event first: most units score nothing
            if not isinstance(event, _MARKETING_EVENTS):
                continue
            if isinstance(event, ev.LeadScored):
                if event.previous_points is None:
                    first.setdefault(event.lead_id)
            else:
                ready.setdefault(event.lead_id)
        for lead_id in {**first, **ready}:
            ref = RecordRef(kind=RecordKind.LEAD, id=lead_id)
            found = self._stored_state(work, ref)
            if found is None or isinstance(found[1], RecordRef):
                continue
            doc, state = found[0], found[1]
            flow = self._flow(work, state.flow_id, state.flow_version)
            if not _is_marketing(flow):
                continue
            outcome = self._marketing_rules(
                work,
                flow,
                Outcome(state=state),
                first_score=lead_id in first,
                sales_ready=lead_id in ready,
            )
            self._save(work, ref, doc, outcome)
