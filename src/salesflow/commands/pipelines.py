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

from collections.abc import Callable, Iterable
from typing import Unpack

import attrs

from salesflow import events as ev
from salesflow.commands.records import RECORD_SYSTEM
from salesflow.commands.rule_actions import MAX_COPY_DEPTH
from salesflow.commands.rule_runs import MAX_MOVES, RULE_DUE, RuleRuns
from salesflow.commands.work import CREATED, Work, as_ref
from salesflow.definitions import ACTIVE
from salesflow.errors import (
    InvalidTransition,
    ValidationError,
)
from salesflow.fields import LeadFields, OpportunityFields
from salesflow.interactions import InteractionKind
from salesflow.lead import Lead, new_lead
from salesflow.opportunity import Opportunity
from salesflow.pipeline_state import (
    PipelineItem,
)
from salesflow.pipelines import PIPELINE, Pipeline, TriggerEvent, require_valid
from salesflow.pipelines_io import to_dict
from salesflow.values import Record, RecordKind, RecordRef, check_fields

__all__ = ["MAX_COPY_DEPTH", "MAX_MOVES", "RULE_DUE", "PipelineCommands"]

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

_TRIGGERED_KINDS = frozenset({RecordKind.LEAD, RecordKind.OPPORTUNITY})
"""The records whose field changes fire triggers."""


class PipelineCommands(RuleRuns):
    """Pipelines, stage moves, triggers and automation rules."""

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

    # --- items ----------------------------------------------------------------------

    def pipeline_item(self, record: Record | RecordRef) -> PipelineItem | None:
        """Where ``record`` is: its pipeline, stage, the history of every move and the
        rule runs of every stage entry (None when it is in no pipeline). The moves
        themselves return the current entry only (its move and runs), since an item
        keeps each left entry in a document of its own and a move need not read them
        back."""
        ref = as_ref(record)
        with self._pipeline_read() as work:
            return self._full_item(work, ref)

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
        check_fields(Opportunity, dict(fields), RECORD_SYSTEM | {"status", "stage"}, creating=True)

        def build(work: Work) -> tuple[Record, ev.Event]:
            deal = Opportunity(
                id=self._ids(RecordKind.OPPORTUNITY),
                created_at=work.now,
                modified_at=work.now,
                **fields,
            )
            return deal, CREATED[RecordKind.OPPORTUNITY](work.now, deal.id)

        made = self._create_in(pipeline_id, RecordKind.OPPORTUNITY, stage_id, by, build)
        assert isinstance(made, Opportunity)
        return made

    def create_pipeline_lead(
        self,
        pipeline_id: str,
        *,
        stage_id: str | None = None,
        by: str | None = None,
        **fields: Unpack[LeadFields],
    ) -> Lead:
        """Create an open lead in a lead pipeline's stage ``stage_id`` (its first by
        default), in one unit of work: the stage's rules start as for any entry.

        Raises:
            NotFound: no such pipeline or stage, or a linked record is missing.
            ValidationError: a field is unknown, missing or malformed, or the pipeline
                is not for leads.
        """

        def build(work: Work) -> tuple[Record, ev.Event]:
            return new_lead(lead_id=self._ids(RecordKind.LEAD), fields=dict(fields), now=work.now)

        made = self._create_in(pipeline_id, RecordKind.LEAD, stage_id, by, build)
        assert isinstance(made, Lead)
        return made

    def _create_in(
        self,
        pipeline_id: str,
        kind: RecordKind,
        stage_id: str | None,
        by: str | None,
        build: Callable[[Work], tuple[Record, ev.Event]],
    ) -> Record:
        """Create the record ``build`` makes in a stage of ``pipeline_id``, one unit."""
        with self._command() as work:
            pipeline = self._pipeline(work, pipeline_id, None)
            self._require_type(pipeline, kind)
            target = pipeline.stage(stage_id) if stage_id is not None else pipeline.stages[0]
            record, created = build(work)
            work.check_references(record)
            work.add(record)
            work.events.append(created)
            self._enter(work, record.ref, pipeline, target.id, by=by, via="created", depth=0)
            saved = work.get(type(record), record.id)
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
            self._enter(work, ref, pipeline, target.id, by=by, via="user", depth=0)
            result = self._item(work, ref)[1]
        assert result is not None
        return result

    def move_stage(
        self, record: Record | RecordRef, stage: str, *, by: str | None = None
    ) -> PipelineItem:
        """Move an item to ``stage`` of its pipeline (any stage, forwards or back).

        Returns the item's current entry: its stage, the move into it and its rule
        runs (`pipeline_item` has the whole history).

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
            if stage != item.stage:
                self._require_movable(work, ref)
                self._enter(work, ref, pipeline, stage, by=by, via="user", depth=0)
            result = self._item(work, ref)[1]
        assert result is not None
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
            The item's new entry (as `move_stage` returns it), or None when nothing
            moved (no pipeline, no trigger, or the trigger does not apply).

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
            self._enter(
                work, ref, pipeline, trigger.stage, by=None, via=f"trigger:{event.value}", depth=0
            )
            return self._item(work, ref)[1]
        return None

    # --- automatic triggers ---------------------------------------------------------

    def _before_commit(self, work: Work) -> None:
        # before the other hooks, so scoring and segments see what the moves wrote
        touched = (
            [
                (ref, pair)
                for ref, pair in list(work.written.items())
                if ref.kind in _TRIGGERED_KINDS and pair[0] is not None
            ]
            if not work.written_kinds.isdisjoint(_TRIGGERED_KINDS)
            else []
        )
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
