"""Pipeline commands of `Salesflow`: publish pipelines, place items, move them between
stages (by hand, by triggers, by rules) and run the stages' automation rules.

An item's place is a state document (kind ``"pipeline"``, key ``kind:id``) holding a
`PipelineItem`. Entering a stage schedules that stage's rules: a rule due now runs
in the same unit of work; a later one becomes a ``pipeline.rule`` due item keyed by
item, entry and rule, so it is stored once, survives restarts and is performed once
(`run_due`). Leaving the stage cancels the due items of every rule of that entry that
has not run, and completes the activities its rules flagged
``complete_on_stage_change``. A rule's condition is read when it is due. A failing
action marks the run failed with the error's message; it never undoes the move.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Unpack

import attrs

from salesflow import activity as act
from salesflow import events as ev
from salesflow.commands.activities import ActivityCommands
from salesflow.commands.core import RECORD_CLASSES
from salesflow.commands.records import RECORD_SYSTEM
from salesflow.commands.segments import SegmentCommands
from salesflow.commands.work import CREATED, UPDATED, Work, as_ref, fields_changed
from salesflow.conditions import evaluate
from salesflow.definitions import ACTIVE
from salesflow.due import DueItem
from salesflow.errors import (
    InvalidTransition,
    NotFound,
    SalesflowError,
    ValidationError,
)
from salesflow.fields import OpportunityFields
from salesflow.interactions import InteractionKind
from salesflow.lead import Lead, LeadStatus
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.party import Account, Contact
from salesflow.pipeline_events import (
    AutomationRuleFinished,
    DealCopied,
    PipelineStageChanged,
    RepeatLeadCreated,
    RuleNotification,
)
from salesflow.pipeline_state import (
    OPEN_STATUSES,
    PipelineItem,
    RuleRun,
    RuleStatus,
    StageMove,
)
from salesflow.pipeline_state import (
    from_dict as item_from_dict,
)
from salesflow.pipeline_state import (
    to_dict as item_to_dict,
)
from salesflow.pipelines import PIPELINE, Pipeline, StageKind, TriggerEvent, require_valid
from salesflow.pipelines_io import from_dict, to_dict
from salesflow.rules import (
    AutomationRule,
    ChangeStage,
    ConnectSequence,
    CopyDeal,
    CreateRepeatLead,
    FromField,
    Notify,
    Responsible,
    RunMode,
    ScheduleActivity,
    UpdateField,
    WorkingTime,
    activity_due_at,
    rule_due_at,
)
from salesflow.stores.base import record_value
from salesflow.values import Record, RecordKind, RecordRef, check_fields

__all__ = ["MAX_COPY_DEPTH", "MAX_MOVES", "RULE_DUE", "PipelineCommands"]

RULE_DUE = "pipeline.rule"
"""The due item kind of a delayed automation rule."""
MAX_MOVES = 20
"""How many stage entries one unit of work may chain (rules moving items that run
rules that move items): beyond it the rule fails, so no loop runs forever."""
MAX_COPY_DEPTH = 10
"""How many generations of copies a deal may have."""

_INTERACTION_TRIGGERS = {
    InteractionKind.EMAIL_OPENED: TriggerEvent.EMAIL_OPENED,
    InteractionKind.EMAIL_CLICKED: TriggerEvent.LINK_CLICKED,
    InteractionKind.EMAIL_REPLIED: TriggerEvent.EMAIL_REPLIED,
    InteractionKind.LANDING_PAGE_SUBMITTED: TriggerEvent.FORM_SUBMITTED,
    InteractionKind.LINKEDIN_FORM_SUBMITTED: TriggerEvent.FORM_SUBMITTED,
    InteractionKind.CALL: TriggerEvent.CALL,
    InteractionKind.MEETING: TriggerEvent.MEETING,
}
"""Interactions recorded for a lead that fire the lead's pipeline triggers."""

_COPY_SKIP = RECORD_SYSTEM | {"status", "close_reason", "actual_close_date", "stage"}


def _rule_key(ref: RecordRef, entry: int, rule_id: str) -> str:
    return f"pipeline:{ref}:{entry}:{rule_id}"


def _pick(responsible: Responsible, owner: str | None, seed: str) -> str | None:
    users = responsible.users
    if not users:
        return owner
    if len(users) == 1:
        return users[0]
    digest = hashlib.sha256(seed.encode()).digest()
    return users[int.from_bytes(digest[:8], "big") % len(users)]


def _reader(record: Record, work: Work) -> Any:
    """Template values: the item's fields, ``contact.*`` and ``account.*``."""
    parents: dict[str, Record | None] = {}

    def parent(kind: str) -> Record | None:
        if kind not in parents:
            if isinstance(record, Opportunity):
                ids = {"contact": record.contact_id, "account": record.account_id}
            elif isinstance(record, Lead):
                ids = {"contact": record.parent_contact_id, "account": record.parent_account_id}
            else:
                ids = {}
            cls = Contact if kind == "contact" else Account
            found = ids.get(kind)
            parents[kind] = work.uow.find(cls, found) if found else None
        return parents[kind]

    def value(name: str) -> Any:
        head, _, rest = name.partition(".")
        target: Record | None = record
        if head in ("contact", "account"):
            target, name = parent(head), rest
        if target is None:
            return None
        if name.startswith("custom."):
            return target.custom.get(name[7:])
        if name in attrs.fields_dict(type(target)):
            return getattr(target, name)
        return record_value(target, name)

    return value


class PipelineCommands(SegmentCommands, ActivityCommands):
    """Pipelines, stage moves, triggers and automation rules."""

    _pipeline_cache: dict[tuple[str, int], Pipeline]

    @contextmanager
    def _pipeline_read(self) -> Iterator[Work]:
        """A read as a `Work` (nothing is written or published)."""
        with self._read() as uow:
            yield Work(uow, self.now(), due_ids=self._due_ids)

    # --- definitions ----------------------------------------------------------------

    def publish_pipeline(self, pipeline: Pipeline) -> Pipeline:
        """Publish ``pipeline`` as the next version of its id.

        Items stay where they are; rules of the new version apply to stage entries
        from now on (rules already scheduled run as their version defined them, so a
        rule added to a stage does not reach items already in it).

        Returns:
            The published pipeline (its ``version`` set).

        Raises:
            InvalidDefinition: the pipeline has problems (`salesflow.pipelines.validate`),
                or a copy rule names an unpublished pipeline.
            ValidationError: ``pipeline`` is not a `Pipeline`.
        """
        if not isinstance(pipeline, Pipeline):
            raise ValidationError(
                f"publish_pipeline() takes a Pipeline, not {type(pipeline).__name__}",
                field="pipeline",
                value=pipeline,
            )
        with self._command() as work:
            latest = work.uow.find_definition(PIPELINE, pipeline.id)
            version = 1 if latest is None else latest.version + 1
            published = attrs.evolve(pipeline, version=version)
            others = [
                self._pipeline(work, d.id, d.version)
                for d in work.uow.definitions(PIPELINE)
                if d.id != pipeline.id and d.state == ACTIVE
            ]
            require_valid(published, others)
            work.publish(PIPELINE, pipeline.id, version, to_dict(published))
        self._pipeline_cache[(pipeline.id, version)] = published
        return published

    def pipeline(self, pipeline_id: str, version: int | None = None) -> Pipeline:
        """The pipeline ``pipeline_id`` at ``version`` (the latest when None).

        Raises:
            NotFound: no such pipeline or version.
        """
        with self._pipeline_read() as work:
            return self._pipeline(work, pipeline_id, version)

    def pipelines(self) -> list[Pipeline]:
        """The latest version of every published pipeline, by id."""
        with self._pipeline_read() as work:
            ids = sorted({d.id for d in work.uow.definitions(PIPELINE)})
            return [self._pipeline(work, i, None) for i in ids]

    def _pipeline(self, work: Work, pipeline_id: str, version: int | None) -> Pipeline:
        if not isinstance(pipeline_id, str):
            raise ValidationError(
                f"pipeline_id={pipeline_id!r} must be a pipeline id",
                field="pipeline_id",
                value=pipeline_id,
            )
        stored = work.uow.find_definition(PIPELINE, pipeline_id, version)
        if stored is None:
            what = pipeline_id if version is None else f"{pipeline_id} version {version}"
            raise NotFound("Pipeline", what)
        key = (stored.id, stored.version)
        found = self._pipeline_cache.get(key)
        if found is None:
            # versions never change once stored, so the parsed pipeline is kept
            found = self._pipeline_cache[key] = from_dict(stored.document)
        return found

    # --- items ----------------------------------------------------------------------

    def pipeline_item(self, record: Record | RecordRef) -> PipelineItem | None:
        """Where ``record`` is: its pipeline, stage, history and rule runs (None when
        it is in no pipeline)."""
        ref = as_ref(record)
        with self._pipeline_read() as work:
            return self._item(work, ref)[1]

    def _item(self, work: Work, ref: RecordRef) -> tuple[int | None, PipelineItem | None]:
        doc = work.uow.get_state(PIPELINE, str(ref))
        if doc is None:
            return None, None
        return doc.version, item_from_dict(doc.document)

    def _put(self, work: Work, version: int | None, item: PipelineItem) -> int:
        stored = work.uow.put_state(
            PIPELINE, str(item.record), item_to_dict(item), expected_version=version, now=work.now
        )
        return stored.version

    def create_deal(
        self,
        pipeline_id: str,
        *,
        stage_id: str | None = None,
        by: str | None = None,
        **fields: Unpack[OpportunityFields],
    ) -> Opportunity:
        """Create an opportunity in the pipeline's stage ``stage_id`` (its first by
        default), in one unit of work: the stage's rules start as for any entry.

        Raises:
            NotFound: no such pipeline or stage, or a linked record is missing.
            ValidationError: a field is unknown, missing or malformed, or the pipeline
                is not for opportunities.
        """
        with self._command() as work:
            pipeline = self._pipeline(work, pipeline_id, None)
            self._require_type(pipeline, RecordKind.OPPORTUNITY)
            target = pipeline.stage(stage_id) if stage_id is not None else pipeline.stages[0]
            check_fields(
                Opportunity, dict(fields), RECORD_SYSTEM | {"status", "stage"}, creating=True
            )
            deal = Opportunity(
                id=self._ids(RecordKind.OPPORTUNITY),
                created_at=work.now,
                modified_at=work.now,
                **fields,
            )
            work.check_references(deal)
            work.add(deal)
            work.events.append(CREATED[RecordKind.OPPORTUNITY](work.now, deal.id))
            self._enter(work, deal.ref, pipeline, target.id, by=by, via="created", depth=0)
            saved = work.get(Opportunity, deal.id)
        return saved

    def place_in_pipeline(
        self,
        record: Record | RecordRef,
        pipeline_id: str,
        *,
        stage: str | None = None,
        by: str | None = None,
    ) -> PipelineItem:
        """Put an existing deal or lead into a pipeline's stage (its first by default),
        or move it from its pipeline into another one; the stage's rules start.

        Raises:
            NotFound: no such record, pipeline or stage.
            ValidationError: the pipeline is for another record type.
            InvalidTransition: the item is already in this pipeline (use `move_stage`),
                or it is a closed lead.
        """
        ref = as_ref(record)
        with self._command() as work:
            pipeline = self._pipeline(work, pipeline_id, None)
            self._require_type(pipeline, ref.kind)
            _, item = self._item(work, ref)
            if item is not None and item.pipeline == pipeline.id:
                raise InvalidTransition(
                    f"{ref} is already in pipeline {pipeline.id!r} (stage {item.stage!r}); "
                    "move it with move_stage",
                    state=item.stage,
                    event="place",
                )
            target = pipeline.stage(stage) if stage is not None else pipeline.stages[0]
            self._require_movable(work, ref)
            result = self._enter(work, ref, pipeline, target.id, by=by, via="user", depth=0)
        return result

    def move_stage(
        self, record: Record | RecordRef, stage: str, *, by: str | None = None
    ) -> PipelineItem:
        """Move an item to ``stage`` of its pipeline (any stage, forwards or back).

        Moving into a won or lost stage wins or loses an opportunity; moving it from
        such a stage into an open one reopens it. Every rule of the stage left that
        has not run is canceled; the new stage's rules start. Moving to the current
        stage changes nothing.

        Raises:
            NotFound: no such record or stage.
            InvalidTransition: the item is in no pipeline, or is a closed lead.
        """
        ref = as_ref(record)
        with self._command() as work:
            _, item = self._item(work, ref)
            if item is None:
                raise InvalidTransition(
                    f"{ref} is in no pipeline; put it in one with place_in_pipeline",
                    state=None,
                    event="move",
                )
            pipeline = self._pipeline(work, item.pipeline, None)
            pipeline.stage(stage)
            if stage == item.stage:
                return item
            self._require_movable(work, ref)
            result = self._enter(work, ref, pipeline, stage, by=by, via="user", depth=0)
        return result

    def fire_trigger(
        self,
        record: Record | RecordRef,
        event: TriggerEvent | str,
        *,
        field: str | None = None,
    ) -> PipelineItem | None:
        """Tell the item's pipeline that ``event`` happened to ``record``: the first
        trigger for it moves the item to the trigger's stage, unless that is the
        current stage or an earlier one (and the trigger does not allow going back).

        Returns:
            The item after the move, or None when nothing moved (no pipeline, no
            trigger, or the trigger does not apply).

        Raises:
            ValidationError: ``event`` is not a `TriggerEvent`.
        """
        ref = as_ref(record)
        try:
            chosen = TriggerEvent(event)
        except ValueError:
            raise ValidationError(
                f"event={event!r} is not a trigger event; use one of "
                + ", ".join(e.value for e in TriggerEvent),
                field="event",
                value=event,
            ) from None
        with self._command() as work:
            return self._trigger(work, ref, chosen, field)

    def _trigger(
        self, work: Work, ref: RecordRef, event: TriggerEvent, field: str | None
    ) -> PipelineItem | None:
        _, item = self._item(work, ref)
        if item is None:
            return None
        pipeline = self._pipeline(work, item.pipeline, None)
        for trigger in pipeline.triggers:
            if trigger.event is not event or (
                event is TriggerEvent.FIELD_CHANGED and trigger.field != field
            ):
                continue
            if trigger.stage == item.stage:
                return None
            backwards = pipeline.position(trigger.stage) < pipeline.position(item.stage)
            if backwards and not trigger.allow_backwards:
                return None
            if not self._movable(work, ref):
                return None
            return self._enter(
                work, ref, pipeline, trigger.stage, by=None, via=f"trigger:{event.value}", depth=0
            )
        return None

    def _require_type(self, pipeline: Pipeline, kind: RecordKind) -> None:
        if pipeline.record_type is not kind:
            raise ValidationError(
                f"pipeline {pipeline.id!r} is for {pipeline.record_type.value} records, "
                f"not {kind.value}",
                field="pipeline_id",
                value=pipeline.id,
            )

    def _movable(self, work: Work, ref: RecordRef) -> bool:
        record = work.get(RECORD_CLASSES[ref.kind], ref.id)
        return not (isinstance(record, Lead) and record.status is not LeadStatus.OPEN)

    def _require_movable(self, work: Work, ref: RecordRef) -> None:
        if not self._movable(work, ref):
            raise InvalidTransition(
                f"{ref} is a closed lead; reactivate it before moving it",
                state="closed",
                event="move",
            )

    # --- entering and leaving stages ------------------------------------------------

    def _enter(
        self,
        work: Work,
        ref: RecordRef,
        pipeline: Pipeline,
        stage_id: str,
        *,
        by: str | None,
        via: str,
        depth: int,
        copy_of: RecordRef | None = None,
        lineage: tuple[str, ...] = (),
    ) -> PipelineItem:
        if depth >= MAX_MOVES:
            raise InvalidTransition(
                f"{ref} was moved {MAX_MOVES} times in one unit of work; the pipeline's "
                "rules move it in a loop (check its change_stage and copy rules)",
                state=stage_id,
                event="move",
            )
        version, before = self._item(work, ref)
        if before is not None:
            self._leave(work, before)
        self._sync_record(work, ref, pipeline.stage(stage_id).kind, stage_id)
        entry = 1 if before is None else before.entry + 1
        move = StageMove(
            from_stage=None if before is None or before.pipeline != pipeline.id else before.stage,
            to_stage=stage_id,
            at=work.now,
            by=by,
            via=via,
            pipeline=pipeline.id,
        )
        runs = [] if before is None else [self._closed(work, before.record, r) for r in before.runs]
        rules = pipeline.rules_of(stage_id)
        for index, rule in enumerate(rules):
            waits = rule.run is RunMode.AFTER_PREVIOUS and index > 0
            runs.append(
                RuleRun(
                    entry=entry,
                    stage=stage_id,
                    rule=rule.id,
                    version=pipeline.version,
                    status=RuleStatus.WAITING if waits else RuleStatus.PENDING,
                )
            )
        item = PipelineItem(
            record=ref,
            pipeline=pipeline.id,
            stage=stage_id,
            entered_at=work.now,
            entry=entry,
            history=(() if before is None else before.history) + (move,),
            runs=tuple(runs),
            auto_complete=(),
            copy_of=copy_of if before is None else before.copy_of,
            lineage=lineage if before is None else before.lineage,
        )
        self._put(work, version, item)
        work.events.append(
            PipelineStageChanged(
                occurred_at=work.now,
                record=str(ref),
                pipeline_id=pipeline.id,
                from_stage=move.from_stage,
                to_stage=stage_id,
                by=by,
                via=via,
            )
        )
        for index, rule in enumerate(rules):
            if rule.run is RunMode.AFTER_PREVIOUS and index > 0:
                continue
            self._schedule(work, ref, entry, pipeline, rule, depth)
            if not self._still_in(work, ref, entry):
                break
        return self._item(work, ref)[1] or item

    def _closed(self, work: Work, ref: RecordRef, run: RuleRun) -> RuleRun:
        """A run of the entry being left: canceled when it had not run."""
        if run.status not in OPEN_STATUSES:
            return run
        if run.status is RuleStatus.PENDING:
            work.uow.cancel_due_by_key(_rule_key(ref, run.entry, run.rule))
        return attrs.evolve(
            run, status=RuleStatus.CANCELED, finished_at=work.now, reason="the item left the stage"
        )

    def _leave(self, work: Work, item: PipelineItem) -> None:
        for activity_id in item.auto_complete:
            activity = work.uow.find(act.Activity, activity_id)
            if activity is None or activity.state is not act.ActivityState.OPEN:
                continue
            done = attrs.evolve(
                activity,
                state=act.ActivityState.COMPLETED,
                closed_at=work.now,
                modified_at=work.now,
            )
            work.update(done)
            work.events.append(ev.ActivityCompleted(occurred_at=work.now, activity_id=activity_id))
            self._activity_closed(work, done, "complete")
        for run in item.runs_of_entry():
            if run.status in OPEN_STATUSES:
                work.events.append(
                    AutomationRuleFinished(
                        occurred_at=work.now,
                        record=str(item.record),
                        pipeline_id=item.pipeline,
                        rule_id=run.rule,
                        stage=run.stage,
                        entry=run.entry,
                        status=RuleStatus.CANCELED.value,
                        reason="the item left the stage",
                    )
                )

    def _sync_record(self, work: Work, ref: RecordRef, kind: StageKind, stage_id: str) -> None:
        """Keep an opportunity's status and ``stage`` field in step with its stage."""
        if ref.kind is not RecordKind.OPPORTUNITY:
            return
        deal = work.get(Opportunity, ref.id)
        wanted = {
            StageKind.OPEN: OpportunityStatus.OPEN,
            StageKind.WON: OpportunityStatus.WON,
            StageKind.LOST: OpportunityStatus.LOST,
        }[kind]
        if deal.status is not wanted:
            if deal.status is not OpportunityStatus.OPEN:
                self._close_opportunity_in(work, deal.id, "reopen", None)
            if wanted is not OpportunityStatus.OPEN:
                self._close_opportunity_in(
                    work, deal.id, "win" if wanted is OpportunityStatus.WON else "lose", None
                )
            deal = work.get(Opportunity, ref.id)
        if deal.stage != stage_id:
            work.update(attrs.evolve(deal, stage=stage_id, modified_at=work.now))

    def _still_in(self, work: Work, ref: RecordRef, entry: int) -> bool:
        item = self._item(work, ref)[1]
        return item is not None and item.entry == entry

    # --- running rules --------------------------------------------------------------

    def _calendar_for(self, rule: AutomationRule, record: Record) -> Any:
        if rule.working_time is WorkingTime.ANY:
            return None
        if rule.working_time is WorkingTime.ORGANIZATION:
            return self.calendar
        return self.sequence_config.calendars.for_owner(getattr(record, "owner_id", None))

    def _schedule(
        self,
        work: Work,
        ref: RecordRef,
        entry: int,
        pipeline: Pipeline,
        rule: AutomationRule,
        depth: int,
    ) -> None:
        """Time a rule of the current entry: run it now or leave a due item."""
        record = work.get(RECORD_CLASSES[ref.kind], ref.id)
        timing = rule.timing
        value = getattr(record, timing.field, None) if isinstance(timing, FromField) else None
        due = rule_due_at(
            rule,
            start=work.now,
            field_value=value,
            calendar=self.calendar,
            working=self._calendar_for(rule, record),
        )
        if due is None:
            assert isinstance(timing, FromField)
            self._finish(
                work,
                ref,
                entry,
                rule.id,
                RuleStatus.FAILED,
                f"its timing counts from {timing.field!r}, which is empty",
                depth,
            )
            return
        self._update_run(work, ref, entry, rule.id, status=RuleStatus.PENDING, due_at=due)
        if due <= work.now:
            self._run(work, ref, entry, rule.id, depth)
            return
        work.schedule_due(
            RULE_DUE,
            due,
            subject=ref,
            payload={"entry": entry, "rule": rule.id, "version": pipeline.version},
            key=_rule_key(ref, entry, rule.id),
        )

    def _rule_due(self, work: Work, item: DueItem) -> None:
        """The handler of ``pipeline.rule`` due items."""
        assert item.subject is not None
        assert item.payload is not None
        self._run(work, item.subject, int(item.payload["entry"]), str(item.payload["rule"]), 0)

    def _update_run(
        self, work: Work, ref: RecordRef, entry: int, rule_id: str, **changes: Any
    ) -> None:
        version, item = self._item(work, ref)
        assert item is not None
        runs = tuple(
            attrs.evolve(r, **changes) if r.entry == entry and r.rule == rule_id else r
            for r in item.runs
        )
        self._put(work, version, attrs.evolve(item, runs=runs))

    def _run(self, work: Work, ref: RecordRef, entry: int, rule_id: str, depth: int) -> None:
        _, item = self._item(work, ref)
        if item is None or item.entry != entry:
            return  # the item left the stage: this run was canceled then
        run = item.run(entry, rule_id)
        if run is None or run.status is not RuleStatus.PENDING:
            return
        pipeline = self._pipeline(work, item.pipeline, run.version)
        rule = pipeline.rule(rule_id)
        record = work.get(RECORD_CLASSES[ref.kind], ref.id)
        if rule.condition is not None and not evaluate(
            rule.condition, lambda name: record_value(record, name)
        ):
            self._finish(
                work, ref, entry, rule_id, RuleStatus.SKIPPED, "its condition did not hold", depth
            )
            return
        # marked done while it runs, so a move it makes does not cancel it
        self._update_run(work, ref, entry, rule_id, status=RuleStatus.DONE, finished_at=work.now)
        try:
            made = self._perform(work, item, pipeline, rule, record, depth)
        except SalesflowError as error:
            self._finish(work, ref, entry, rule_id, RuleStatus.FAILED, str(error), depth)
            return
        self._finish(work, ref, entry, rule_id, RuleStatus.DONE, made, depth)

    def _finish(
        self,
        work: Work,
        ref: RecordRef,
        entry: int,
        rule_id: str,
        status: RuleStatus,
        reason: str | None,
        depth: int,
    ) -> None:
        _version, item = self._item(work, ref)
        assert item is not None
        run = item.run(entry, rule_id)
        assert run is not None
        self._update_run(
            work, ref, entry, rule_id, status=status, finished_at=work.now, reason=reason
        )
        work.events.append(
            AutomationRuleFinished(
                occurred_at=work.now,
                record=str(ref),
                pipeline_id=item.pipeline,
                rule_id=rule_id,
                stage=run.stage,
                entry=entry,
                status=status.value,
                reason=reason,
            )
        )
        if not self._still_in(work, ref, entry):
            return
        # the next rule of the stage that waits for this one starts now
        pipeline = self._pipeline(work, item.pipeline, run.version)
        rules = pipeline.rules_of(run.stage)
        ids = [r.id for r in rules]
        position = ids.index(rule_id)
        if position + 1 < len(rules):
            following = rules[position + 1]
            current = self._item(work, ref)[1]
            assert current is not None
            waiting = current.run(entry, following.id)
            if waiting is not None and waiting.status is RuleStatus.WAITING:
                self._schedule(work, ref, entry, pipeline, following, depth)

    def _perform(
        self,
        work: Work,
        item: PipelineItem,
        pipeline: Pipeline,
        rule: AutomationRule,
        record: Record,
        depth: int,
    ) -> str:
        """Run ``rule``'s action; return what it made (for the run's ``reason``).
        Every action checks before it writes, so a refusal leaves nothing behind."""
        action = rule.action
        ref = item.record
        seed = f"{ref}:{item.entry}:{rule.id}"
        owner = getattr(record, "owner_id", None)
        values = _reader(record, work)
        if isinstance(action, CreateRepeatLead):
            return self._repeat_lead(
                work, record, rule, action, _pick(action.responsible, owner, seed), values
            )
        if isinstance(action, CopyDeal):
            return self._copy_deal(work, item, pipeline, rule, action, record, seed, depth)
        if isinstance(action, ScheduleActivity):
            return self._plan_activity(
                work, item, record, action, _pick(action.responsible, owner, seed), values
            )
        if isinstance(action, ChangeStage):
            self._require_movable(work, ref)
            latest = self._pipeline(work, item.pipeline, None)
            self._enter(
                work, ref, latest, action.stage, by=None, via=f"rule:{rule.id}", depth=depth + 1
            )
            return f"moved to {action.stage}"
        if isinstance(action, UpdateField):
            return self._set(work, record, action)
        if isinstance(action, ConnectSequence):
            enrollment = self._connect_in(work, ref, action.sequence, owner)
            return f"connected to {action.sequence} ({enrollment.id})"
        assert isinstance(action, Notify)
        users = action.users or ((owner,) if owner else ())
        message = action.message.render(values)
        work.events.append(
            RuleNotification(
                occurred_at=work.now, record=str(ref), rule_id=rule.id, users=users, message=message
            )
        )
        return f"notified {', '.join(users) or 'nobody'}"

    def _repeat_lead(
        self,
        work: Work,
        record: Record,
        rule: AutomationRule,
        action: CreateRepeatLead,
        owner: str | None,
        values: Any,
    ) -> str:
        if isinstance(record, Opportunity):
            contact_id, account_id = record.contact_id, record.account_id
        elif isinstance(record, Lead):
            contact_id, account_id = record.parent_contact_id, record.parent_account_id
        else:  # pragma: no cover - pipelines hold deals and leads only
            raise ValidationError(f"{record.ref} cannot have repeat leads")
        if contact_id is None and account_id is None:
            raise ValidationError(
                f"{record.ref} has neither a contact nor a company; a repeat lead is bound "
                "to them, so link the item to a contact or an account",
                field="contact_id",
            )
        contact = work.uow.find(Contact, contact_id) if contact_id else None
        account = work.uow.find(Account, account_id) if account_id else None
        topic = _cut(action.name.render(values), 300) or f"Repeat: {record.ref}"
        last_name = contact.last_name if contact is not None else None
        if last_name is None and account is not None:
            last_name = _cut(account.name, 50)
        lead = Lead(
            id=self._ids(RecordKind.LEAD),
            created_at=work.now,
            modified_at=work.now,
            topic=topic,
            first_name=contact.first_name if contact is not None else None,
            last_name=last_name or "Unknown",
            email=contact.email if contact is not None else None,
            company_name=_cut(account.name, 100) if account is not None else None,
            parent_contact_id=contact.id if contact is not None else None,
            parent_account_id=account.id if account is not None else None,
            owner_id=owner,
            custom={"repeat_of": str(record.ref)},
        )
        work.add(lead)
        work.events.append(ev.LeadCreated(occurred_at=work.now, lead_id=lead.id))
        work.events.append(
            RepeatLeadCreated(
                occurred_at=work.now, lead_id=lead.id, source=str(record.ref), rule_id=rule.id
            )
        )
        return f"created repeat lead {lead.id}"

    def _copy_deal(
        self,
        work: Work,
        item: PipelineItem,
        pipeline: Pipeline,
        rule: AutomationRule,
        action: CopyDeal,
        record: Record,
        seed: str,
        depth: int,
    ) -> str:
        assert isinstance(record, Opportunity)
        step = f"{pipeline.id}/{rule.id}"
        if step in item.lineage or len(item.lineage) >= MAX_COPY_DEPTH:
            raise InvalidTransition(
                f"copying {record.ref} again with rule {rule.id!r} would start an endless "
                f"chain of copies (this deal descends from copies made by "
                f"{', '.join(item.lineage)}); the copy was not made",
                state=item.stage,
                event="copy",
            )
        target = self._pipeline(work, action.pipeline, None)
        self._require_type(target, RecordKind.OPPORTUNITY)
        stage = target.stage(action.stage).id if action.stage else target.stages[0].id
        fields = {
            a.name: getattr(record, a.name)
            for a in attrs.fields(Opportunity)
            if a.name not in _COPY_SKIP
        }
        fields["name"] = _cut(
            action.name.render(_reader(record, work)) if action.name else f"{record.name} (Copy)",
            300,
        )
        fields["owner_id"] = _pick(action.responsible, record.owner_id, seed)
        copy = Opportunity(
            id=self._ids(RecordKind.OPPORTUNITY),
            created_at=work.now,
            modified_at=work.now,
            **fields,
        )
        work.add(copy)
        work.events.append(CREATED[RecordKind.OPPORTUNITY](work.now, copy.id))
        work.events.append(
            DealCopied(
                occurred_at=work.now,
                original_id=record.id,
                copy_id=copy.id,
                pipeline_id=target.id,
                stage=stage,
                rule_id=rule.id,
            )
        )
        self._enter(
            work,
            copy.ref,
            target,
            stage,
            by=None,
            via=f"rule:{rule.id}",
            depth=depth + 1,
            copy_of=record.ref,
            lineage=(*item.lineage, step),
        )
        return f"copied to {copy.id} in {target.id}/{stage}"

    def _plan_activity(
        self,
        work: Work,
        item: PipelineItem,
        record: Record,
        action: ScheduleActivity,
        owner: str | None,
        values: Any,
    ) -> str:
        if isinstance(record, Lead) and record.status is not LeadStatus.OPEN:
            raise InvalidTransition(
                f"{record.ref} is closed; closed leads get no new activities",
                state=record.status.value,
                event="schedule_activity",
            )
        calendar = self.sequence_config.calendars.for_owner(owner)
        activity = act.Activity(
            id=self._ids(RecordKind.ACTIVITY),
            created_at=work.now,
            modified_at=work.now,
            kind=action.kind,
            subject=_cut(action.subject.render(values), 200) or action.kind.value,
            description=action.description.render(values) if action.description else None,
            regarding=record.ref,
            owner_id=owner,
            due_at=activity_due_at(action.due, work.now, calendar),
        )
        work.add(activity)
        work.events.append(
            ev.ActivityCreated(
                occurred_at=work.now, activity_id=activity.id, regarding=str(record.ref)
            )
        )
        if action.complete_on_stage_change:
            version, current = self._item(work, item.record)
            assert current is not None
            self._put(
                work,
                version,
                attrs.evolve(current, auto_complete=(*current.auto_complete, activity.id)),
            )
        return f"scheduled activity {activity.id}"

    def _set(self, work: Work, record: Record, action: UpdateField) -> str:
        if isinstance(record, Lead) and record.status is not LeadStatus.OPEN:
            raise InvalidTransition(
                f"{record.ref} is closed and read-only", state=record.status.value, event="update"
            )
        if isinstance(record, Opportunity) and record.status is not OpportunityStatus.OPEN:
            raise InvalidTransition(
                f"{record.ref} is {record.status.value} and read-only; the field was not set",
                state=record.status.value,
                event="update",
            )
        if action.field.startswith("custom."):
            custom = dict(record.custom)
            custom[action.field[7:]] = action.value
            updated = attrs.evolve(record, custom=custom, modified_at=work.now)
        else:
            updated = attrs.evolve(record, **{action.field: action.value}, modified_at=work.now)
        work.check_references(updated)
        work.update(updated)
        changed = fields_changed(record, updated, [action.field.partition(".")[0]])
        work.events.append(UPDATED[record.KIND](work.now, record.id, changed))
        if "owner_id" in changed:
            self._owner_changed(work, record.ref, getattr(updated, "owner_id", None))
        return f"set {action.field}"

    # --- automatic triggers ---------------------------------------------------------

    def _before_commit(self, work: Work) -> None:
        # before the other hooks, so scoring and segments see what the moves wrote
        touched = [
            (ref, pair)
            for ref, pair in list(work.written.items())
            if ref.kind in (RecordKind.LEAD, RecordKind.OPPORTUNITY) and pair[0] is not None
        ]
        if (touched or work.recorded) and self._has_triggers(work):
            for interaction in list(work.recorded):
                event = _INTERACTION_TRIGGERS.get(interaction.kind)
                if event is not None and interaction.lead_id is not None:
                    ref = RecordRef(kind=RecordKind.LEAD, id=interaction.lead_id)
                    if self._movable(work, ref):
                        self._trigger(work, ref, event, None)
            for ref, (before, after) in touched:
                assert before is not None
                for name in _changed_fields(before, after):
                    self._trigger(work, ref, TriggerEvent.FIELD_CHANGED, name)
        super()._before_commit(work)

    def _has_triggers(self, work: Work) -> bool:
        return any(
            self._pipeline(work, d.id, d.version).triggers
            for d in work.uow.definitions(PIPELINE)
            if d.state == ACTIVE
        )


def _changed_fields(before: Record, after: Record) -> Iterable[str]:
    skip = {"version", "modified_at", "stage", "status", "close_reason", "actual_close_date"}
    for a in attrs.fields(type(after)):
        if a.name not in skip and getattr(before, a.name) != getattr(after, a.name):
            yield a.name


def _cut(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text[:limit] if len(text) > limit else text
