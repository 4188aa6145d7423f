"""The events of pipelines and automation rules (published after the commit, like
every `salesflow.events.Event`)."""

from __future__ import annotations

import attrs

from salesflow.events import Event

__all__ = [
    "AutomationRuleFinished",
    "DealCopied",
    "PipelineStageChanged",
    "RepeatLeadCreated",
    "RuleNotification",
]


@attrs.frozen(kw_only=True)
class PipelineStageChanged(Event):
    """An item entered a stage (``from_stage`` None: it entered the pipeline).

    Attributes:
        record: The item, as ``kind:id``.
        via: What moved it: ``user``, ``created``, ``trigger:<event>``,
            ``rule:<rule id>``.
    """

    record: str
    pipeline_id: str
    from_stage: str | None
    to_stage: str
    by: str | None
    via: str


@attrs.frozen(kw_only=True)
class AutomationRuleFinished(Event):
    """A rule ran, was skipped, failed or was canceled for one stage entry of an
    item (``status`` a `salesflow.pipeline_state.RuleStatus` value; ``entry`` the
    item's stage entry, as in `salesflow.pipeline_state.RuleRun`)."""

    record: str
    pipeline_id: str
    rule_id: str
    stage: str
    entry: int
    status: str
    reason: str | None


@attrs.frozen(kw_only=True)
class RepeatLeadCreated(Event):
    """A rule created a repeat lead from a deal (or a lead)."""

    lead_id: str
    source: str
    rule_id: str


@attrs.frozen(kw_only=True)
class DealCopied(Event):
    """A rule copied a deal into a pipeline."""

    original_id: str
    copy_id: str
    pipeline_id: str
    stage: str
    rule_id: str


@attrs.frozen(kw_only=True)
class RuleNotification(Event):
    """A rule asks the host to tell ``users`` something about an item."""

    record: str
    rule_id: str
    users: tuple[str, ...]
    message: str
