"""Where an item is in its pipeline: the running state the engine keeps per item.

`PipelineItem` is what `Salesflow.pipeline_item` returns: the pipeline and stage, the
history of every move (who, when, from where, and what moved it), every rule run
with its status, and the copy and repeat-lead lineage. The engine stores it as a
state document (kind ``"pipeline"``, key the item's reference) written by `to_dict`
and read by `from_dict`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

from salesflow.documents import Table
from salesflow.values import RecordRef

__all__ = [
    "PipelineItem",
    "RuleRun",
    "RuleStatus",
    "StageMove",
    "entry_from_dict",
    "entry_to_dict",
    "from_dict",
    "to_dict",
]


class RuleStatus(StrEnum):
    """Where one rule stands for one stage entry of one item."""

    PENDING = "pending"
    """Scheduled: it runs at ``due_at``."""
    WAITING = "waiting"
    """Runs after the previous rule of the stage, which has not finished."""
    DONE = "done"
    """Ran."""
    SKIPPED = "skipped"
    """Its condition did not hold when it was due."""
    CANCELED = "canceled"
    """The item left the stage before it ran."""
    FAILED = "failed"
    """It could not run; ``reason`` says why."""


OPEN_STATUSES = (RuleStatus.PENDING, RuleStatus.WAITING)


@attrs.frozen(kw_only=True)
class StageMove:
    """One move of an item.

    Attributes:
        from_stage: Where it was (None when it entered the pipeline).
        to_stage: Where it went.
        at: When.
        by: The user who moved it, or None (a trigger, a rule, the engine).
        via: What moved it: ``"user"``, ``"created"``, ``"trigger:<event>"`` or
            ``"rule:<rule id>"``.
        pipeline: The pipeline it moved in.
    """

    from_stage: str | None
    to_stage: str
    at: datetime
    by: str | None
    via: str
    pipeline: str


@attrs.frozen(kw_only=True)
class RuleRun:
    """One rule for one stage entry.

    Attributes:
        entry: Which entry into a stage (1 for the item's first) it belongs to.
        stage: The stage.
        rule: The rule's id.
        version: The pipeline version it was scheduled from.
        status: Where it stands (`RuleStatus`).
        due_at: When it runs or ran (None while waiting for the previous rule).
        finished_at: When it was done, skipped, canceled or failed.
        reason: Why it failed, was skipped or was canceled; what it made when done.
    """

    entry: int
    stage: str
    rule: str
    version: int
    status: RuleStatus
    due_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None

    @property
    def key(self) -> str:
        """Unique per item: entry and rule."""
        return f"{self.entry}:{self.rule}"


@attrs.frozen(kw_only=True)
class PipelineItem:
    """An item's place in its pipeline (see the module docstring).

    Attributes:
        record: The item.
        pipeline: The pipeline's id.
        stage: The current stage.
        entered_at: When it entered the current stage.
        entry: How many stage entries it has had (the current one's number).
        history: Every move, oldest first.
        runs: Every rule run, oldest first.
        auto_complete: Activities that complete when the item leaves the stage.
        copy_of: The deal this one was copied from, if any.
        lineage: The copy rules that made this deal and its ancestors, as
            ``pipeline/rule`` (the copy loop guard).
    """

    record: RecordRef
    pipeline: str
    stage: str
    entered_at: datetime
    entry: int
    history: tuple[StageMove, ...] = ()
    runs: tuple[RuleRun, ...] = ()
    auto_complete: tuple[str, ...] = ()
    copy_of: RecordRef | None = None
    lineage: tuple[str, ...] = ()

    def runs_of_entry(self, entry: int | None = None) -> tuple[RuleRun, ...]:
        """The runs of one entry (the current one by default)."""
        wanted = self.entry if entry is None else entry
        return tuple(r for r in self.runs if r.entry == wanted)

    def run(self, entry: int, rule: str) -> RuleRun | None:
        """The run of ``rule`` in ``entry``, if any."""
        for run in self.runs:
            if run.entry == entry and run.rule == rule:
                return run
        return None


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _ref(value: RecordRef | None) -> dict[str, str] | None:
    return None if value is None else {"kind": value.kind.value, "id": value.id}


def to_dict(item: PipelineItem) -> dict[str, Any]:
    """``item`` as a JSON-able document."""
    return {
        "record": _ref(item.record),
        "pipeline": item.pipeline,
        "stage": item.stage,
        "entered_at": _time(item.entered_at),
        "entry": item.entry,
        "history": [_move_to(m) for m in item.history],
        "runs": [_run_to(r) for r in item.runs],
        "auto_complete": list(item.auto_complete),
        "copy_of": _ref(item.copy_of),
        "lineage": list(item.lineage),
    }


def _move_to(m: StageMove) -> dict[str, Any]:
    return {
        "from": m.from_stage,
        "to": m.to_stage,
        "at": _time(m.at),
        "by": m.by,
        "via": m.via,
        "pipeline": m.pipeline,
    }


def _run_to(r: RuleRun) -> dict[str, Any]:
    return {
        "entry": r.entry,
        "stage": r.stage,
        "rule": r.rule,
        "version": r.version,
        "status": r.status.value,
        "due_at": _time(r.due_at),
        "finished_at": _time(r.finished_at),
        "reason": r.reason,
    }


def entry_to_dict(move: StageMove, runs: tuple[RuleRun, ...]) -> dict[str, Any]:
    """A past stage entry (the move into it and its rule runs) as a JSON-able document:
    the engine archives each entry when the item leaves it, so the document it
    rewrites on every move holds only the current entry."""
    return {"move": _move_to(move), "runs": [_run_to(r) for r in runs]}


def entry_from_dict(data: object) -> tuple[StageMove, tuple[RuleRun, ...]]:
    """The move and runs of a document written by `entry_to_dict`.

    Raises:
        ValidationError: the document is malformed.
    """
    table = Table(data, "", ("move", "runs"), required=("move", "runs"))
    return _move_from(table.data["move"], "move"), tuple(
        _run_from(raw, f"runs[{i}]") for i, raw in enumerate(table.items("runs"))
    )


def _move_from(raw: object, path: str) -> StageMove:
    m = Table(raw, path, ("from", "to", "at", "by", "via", "pipeline"))
    at = _read_time(m, "at")
    assert at is not None
    return StageMove(
        from_stage=m.optional_text("from"),
        to_stage=m.text("to"),
        at=at,
        by=m.optional_text("by"),
        via=m.text("via"),
        pipeline=m.text("pipeline"),
    )


def _run_from(raw: object, path: str) -> RuleRun:
    r = Table(
        raw,
        path,
        ("entry", "stage", "rule", "version", "status", "due_at", "finished_at", "reason"),
    )
    return RuleRun(
        entry=r.integer("entry"),
        stage=r.text("stage"),
        rule=r.text("rule"),
        version=r.integer("version"),
        status=RuleStatus(r.text("status")),
        due_at=_read_time(r, "due_at"),
        finished_at=_read_time(r, "finished_at"),
        reason=r.optional_text("reason"),
    )


def _read_time(table: Table, key: str) -> datetime | None:
    text = table.optional_text(key)
    return None if text is None else datetime.fromisoformat(text)


def _read_ref(data: object, path: str) -> RecordRef | None:
    if data is None:
        return None
    table = Table(data, path, ("kind", "id"), required=("kind", "id"))
    return RecordRef(kind=table.text("kind"), id=table.text("id"))


def from_dict(data: object) -> PipelineItem:
    """The item of a document written by `to_dict`.

    Raises:
        ValidationError: the document is malformed.
    """
    table = Table(
        data,
        "",
        (
            "record",
            "pipeline",
            "stage",
            "entered_at",
            "entry",
            "history",
            "runs",
            "auto_complete",
            "copy_of",
            "lineage",
        ),
        required=("record", "pipeline", "stage", "entered_at", "entry"),
    )
    history = [
        _move_from(raw, f"history[{index}]") for index, raw in enumerate(table.items("history", []))
    ]
    runs = [_run_from(raw, f"runs[{index}]") for index, raw in enumerate(table.items("runs", []))]
    record = _read_ref(table.data["record"], "record")
    entered = _read_time(table, "entered_at")
    assert record is not None
    assert entered is not None
    return PipelineItem(
        record=record,
        pipeline=table.text("pipeline"),
        stage=table.text("stage"),
        entered_at=entered,
        entry=table.integer("entry"),
        history=tuple(history),
        runs=tuple(runs),
        auto_complete=tuple(table.items("auto_complete", [])),
        copy_of=_read_ref(table.data.get("copy_of"), "copy_of"),
        lineage=tuple(table.items("lineage", [])),
    )
