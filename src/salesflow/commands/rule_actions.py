"""The actions automation rules perform (create a repeat lead, copy a deal, schedule
an activity, change stage, set a field, connect a sequence, notify), and the reads
of pipeline definitions and item state every pipeline command shares. Every action
checks before it writes, so a refused action leaves nothing behind (see
`salesflow.commands.pipelines`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from salesflow import activity as act
from salesflow import events as ev
from salesflow.commands.activities import ActivityCommands
from salesflow.commands.core import RECORD_CLASSES
from salesflow.commands.records import RECORD_SYSTEM
from salesflow.commands.segments import SegmentCommands
from salesflow.commands.work import CREATED, UPDATED, Work, fields_changed
from salesflow.errors import (
    InvalidTransition,
    NotFound,
    ValidationError,
)
from salesflow.lead import Lead, LeadStatus
from salesflow.opportunity import Opportunity, OpportunityStatus
from salesflow.party import Account, Contact
from salesflow.pipeline_events import (
    DealCopied,
    RepeatLeadCreated,
    RuleNotification,
)
from salesflow.pipeline_state import (
    PipelineItem,
    RuleRun,
    StageMove,
    entry_from_dict,
    entry_to_dict,
)
from salesflow.pipeline_state import (
    from_dict as item_from_dict,
)
from salesflow.pipeline_state import (
    to_dict as item_to_dict,
)
from salesflow.pipelines import PIPELINE, Pipeline
from salesflow.pipelines_io import from_dict
from salesflow.rules import (
    AutomationRule,
    ChangeStage,
    ConnectSequence,
    CopyDeal,
    CreateRepeatLead,
    Notify,
    Responsible,
    ScheduleActivity,
    UpdateField,
    activity_due_at,
)
from salesflow.stores.base import record_value
from salesflow.values import Record, RecordKind, RecordRef

__all__ = ["ENTRY_ARCHIVE", "MAX_COPY_DEPTH", "RuleActions"]

ENTRY_ARCHIVE = "pipeline_entry"
"""The state kind of an item's past stage entries (key ``<kind>:<id>#<entry>``)."""

MAX_COPY_DEPTH = 10
"""How many generations of copies a deal may have."""

_COPY_SKIP = RECORD_SYSTEM | {"status", "close_reason", "actual_close_date", "stage"}


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


class RuleActions(SegmentCommands, ActivityCommands):
    """What rules do, and the pipeline reads the pipeline commands share."""

    _pipeline_cache: dict[tuple[str, int], Pipeline]

    @contextmanager
    def _pipeline_read(self) -> Iterator[Work]:
        """A read as a `Work` (nothing is written or published)."""
        with self._read() as uow:
            yield Work(uow, self.now(), due_ids=self._due_ids)

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

    def _item(self, work: Work, ref: RecordRef) -> tuple[int | None, PipelineItem | None]:
        """The item's current state: its stage, the move into it and the current
        entry's runs (past entries are archived, see `_archive`); read once per unit
        of work, which then keeps it up to date through `_put`."""
        key = f"{PIPELINE}:{ref}"
        held = work.memo.get(key)
        if held is not None:
            return held  # type: ignore[no-any-return]
        doc = work.uow.get_state(PIPELINE, str(ref))
        found = (None, None) if doc is None else (doc.version, item_from_dict(doc.document))
        work.memo[key] = found
        return found

    def _put(self, work: Work, version: int | None, item: PipelineItem) -> int:
        stored = work.uow.put_state(
            PIPELINE, str(item.record), item_to_dict(item), expected_version=version, now=work.now
        )
        work.memo[f"{PIPELINE}:{item.record}"] = (stored.version, item)
        return stored.version

    def _archive(self, work: Work, item: PipelineItem) -> None:
        """Keep a left entry (the move into it and its final runs) in a document of its
        own, so the item's document stays small however often it moves."""
        work.uow.put_state(
            ENTRY_ARCHIVE,
            f"{item.record}#{item.entry}",
            entry_to_dict(item.history[-1], item.runs_of_entry()),
            expected_version=None,
            now=work.now,
        )

    def _archived(
        self, work: Work, ref: RecordRef, entry: int
    ) -> tuple[int, StageMove, tuple[RuleRun, ...]] | None:
        doc = work.uow.get_state(ENTRY_ARCHIVE, f"{ref}#{entry}")
        if doc is None:
            return None
        move, runs = entry_from_dict(doc.document)
        return doc.version, move, runs

    def _full_item(self, work: Work, ref: RecordRef) -> PipelineItem | None:
        """The item with the history of every move and the runs of every entry."""
        item = self._item(work, ref)[1]
        if item is None:
            return None
        moves: list[StageMove] = []
        runs: list[RuleRun] = []
        for entry in range(1, item.entry):
            found = self._archived(work, ref, entry)
            if found is not None:
                moves.append(found[1])
                runs.extend(found[2])
        return attrs.evolve(
            item,
            history=(*moves, *item.history[-1:]),
            runs=(*runs, *item.runs_of_entry()),
        )

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

    if TYPE_CHECKING:  # `salesflow.commands.rule_runs.RuleRuns` defines it

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
        ) -> PipelineItem: ...

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


def _cut(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text[:limit] if len(text) > limit else text
