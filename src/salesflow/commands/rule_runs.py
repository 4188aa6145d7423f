"""Entering and leaving pipeline stages and running their rules: the stage's rules
are scheduled on entry, run at once when due or from ``pipeline.rule`` due items, in
parallel or after the previous rule, and canceled when the item leaves (see
`salesflow.commands.pipelines`)."""

from __future__ import annotations

from typing import Any

import attrs

from salesflow import activity as act
from salesflow.commands.core import RECORD_CLASSES
from salesflow.commands.rule_actions import ENTRY_ARCHIVE, RuleActions
from salesflow.commands.work import Work
from salesflow.conditions import evaluate
from salesflow.due import DueItem
from salesflow.errors import InvalidTransition, SalesflowError, StoreError, VersionConflict
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.pipeline_events import (
    AutomationRuleFinished,
    PipelineStageChanged,
)
from salesflow.pipeline_state import (
    OPEN_STATUSES,
    PipelineItem,
    RuleRun,
    RuleStatus,
    StageMove,
    entry_to_dict,
)
from salesflow.pipelines import Pipeline, StageKind
from salesflow.rules import (
    AutomationRule,
    FromField,
    RunMode,
    WorkingTime,
    rule_due_at,
)
from salesflow.stores.base import record_value
from salesflow.values import Record, RecordKind, RecordRef

__all__ = ["MAX_MOVES", "RULE_DUE", "RuleRuns"]

RULE_DUE = "pipeline.rule"
"""The due item kind of a delayed automation rule."""
MAX_MOVES = 20
"""How many stage entries one unit of work may chain (rules moving items that run
rules that move items): beyond it the rule fails, so no loop runs forever."""


_STATUS_OF_KIND = {
    StageKind.OPEN: OpportunityStatus.OPEN,
    StageKind.WON: OpportunityStatus.WON,
    StageKind.LOST: OpportunityStatus.LOST,
}
"""The status an opportunity has in a stage of each kind."""
_KIND_OF_STATUS = {status: kind for kind, status in _STATUS_OF_KIND.items()}


def _rule_key(ref: RecordRef, entry: int, rule_id: str) -> str:
    return f"pipeline:{ref}:{entry}:{rule_id}"


class RuleRuns(RuleActions):
    """Stage entries and the rule runs they start."""

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
            self._archive(
                work,
                attrs.evolve(
                    before, runs=tuple(self._closed(work, ref, r) for r in before.runs_of_entry())
                ),
            )
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
        runs: list[RuleRun] = []
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
            history=(move,),  # the earlier moves are in the entries' archives
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
            work.cancel_due_by_key(_rule_key(ref, run.entry, run.rule))
        return attrs.evolve(
            run, status=RuleStatus.CANCELED, finished_at=work.now, reason="the item left the stage"
        )

    def _leave(self, work: Work, item: PipelineItem) -> None:
        for activity_id in item.auto_complete:
            activity = work.uow.find(act.Activity, activity_id)
            if activity is not None and activity.state is act.ActivityState.OPEN:
                self._close_activity_in(work, activity, "complete", None)
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
        wanted = _STATUS_OF_KIND[kind]
        if deal.status is not wanted:
            if deal.status is not OpportunityStatus.OPEN:
                self._close_opportunity_in(work, deal.id, "reopen", None, follow_stage=False)
            if wanted is not OpportunityStatus.OPEN:
                self._close_opportunity_in(
                    work,
                    deal.id,
                    "win" if wanted is OpportunityStatus.WON else "lose",
                    None,
                    follow_stage=False,
                )
            deal = work.get(Opportunity, ref.id)
        if deal.stage != stage_id:
            work.update(attrs.evolve(deal, stage=stage_id, modified_at=work.now))

    def _close_opportunity_in(
        self,
        work: Work,
        opportunity_id: str,
        event: str,
        reason: str | None,
        *,
        follow_stage: bool = True,
    ) -> Opportunity:
        """Win, lose or reopen an opportunity in ``work``; with ``follow_stage``, its
        pipeline item follows (`_stage_for_status`). A stage move that changes the
        status passes False: the item is already entering its stage."""
        saved = super()._close_opportunity_in(work, opportunity_id, event, reason)
        if follow_stage:
            self._stage_for_status(work, saved)
            saved = work.get(Opportunity, opportunity_id)
        return saved

    def _stage_for_status(self, work: Work, deal: Opportunity) -> None:
        """Move a deal whose status was set directly (won, lost, reopened; by a
        command, a won quote or a sequence step) to a stage of that kind, so its
        stage's rules run as after `move_stage`: the pipeline's first won or lost
        stage, or on reopening the open stage it closed from (else the first open
        one). A pipeline without a stage of that kind leaves the item where it is."""
        _, item = self._item(work, deal.ref)
        if item is None:
            return
        pipeline = self._pipeline(work, item.pipeline, None)
        wanted = _KIND_OF_STATUS[deal.status]
        if pipeline.has_stage(item.stage) and pipeline.stage(item.stage).kind is wanted:
            return
        of_kind = [stage.id for stage in pipeline.stages if stage.kind is wanted]
        if not of_kind:
            return
        target = of_kind[0]
        if wanted is StageKind.OPEN:
            before = item.history[-1].from_stage
            if before is not None and before in of_kind:
                target = before
        self._enter(work, deal.ref, pipeline, target, by=None, via="status", depth=0)

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
        if entry == item.entry:
            runs = tuple(attrs.evolve(r, **changes) if r.rule == rule_id else r for r in item.runs)
            self._put(work, version, attrs.evolve(item, runs=runs))
            return
        # a rule that moved its item finishes after its entry was archived
        found = self._archived(work, ref, entry)
        assert found is not None
        archived_version, move, archived = found
        work.uow.put_state(
            ENTRY_ARCHIVE,
            f"{ref}#{entry}",
            entry_to_dict(
                move,
                tuple(attrs.evolve(r, **changes) if r.rule == rule_id else r for r in archived),
            ),
            expected_version=archived_version,
            now=work.now,
        )

    def _run_of(self, work: Work, ref: RecordRef, entry: int, rule_id: str) -> RuleRun | None:
        item = self._item(work, ref)[1]
        if item is not None and item.entry == entry:
            return item.run(entry, rule_id)
        found = self._archived(work, ref, entry)
        if found is None:
            return None
        return next((r for r in found[2] if r.rule == rule_id), None)

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
            # a refused action leaves nothing behind; the store failing, or another
            # worker changing the same records, fails the whole unit instead
            with work.savepoint():
                made = self._perform(work, item, pipeline, rule, record, depth)
        except (StoreError, VersionConflict):
            raise
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
        run = self._run_of(work, ref, entry, rule_id)
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
