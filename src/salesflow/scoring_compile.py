"""Compiling a scoring model into one fast function, and scoring leads with it.

`compile_model` turns a valid `ScoringModel` into a `CompiledModel` once per model
version: it generates the source of one Python function that evaluates every rule
in a row (DESIGN §7: one generated function is ~3x faster than a loop over rule
objects, and closures per rule are slower still) and compiles it. The generator
(`salesflow.scoring_codegen`) is safe by construction: nothing a model author wrote
is ever spliced into the source; values are bound as constants, never parsed from
text. `CompiledModel.source` shows the generated text.

Two entry points:

* `CompiledModel.points` - the hot path: ``points(lead, contact, account,
  interactions, now)`` returns the score as an ``int``, or ``None`` when the model
  does not score the lead. It trusts its caller (no consistency checks).
* `score` - the full answer (`ScoreResult`): points, grade, sales-ready, an
  explanation whose points always sum to the score, and the next instant the score
  changes by itself; or `NotScored` saying why the model does not apply.

Which leads are scored: a contact-target model scores leads with a parent contact,
an account-target model leads with a parent account; a lead with neither is scored
only when the model sets ``score_leads_without_parent`` (its missing records read as
empty). A lead outside the model's audience is not scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from salesflow.errors import ValidationError
from salesflow.interactions import Interaction, InteractionKind
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.scoring_codegen import Generator, optimise
from salesflow.scoring_model import (
    Frequency,
    Grade,
    InteractionCondition,
    ScoringModel,
)
from salesflow.scoring_result import NotScored, NotScoredReason, RuleHit, ScoreResult
from salesflow.scoring_validation import require_valid

__all__ = [
    "CompiledModel",
    "NotScored",
    "NotScoredReason",
    "RuleHit",
    "ScoreResult",
    "compile_model",
    "score",
]


class _Interactions:
    """Counts, per interaction condition of a model, the interactions in its window."""

    def __init__(self, conditions: Sequence[InteractionCondition]) -> None:
        self.conditions = tuple(conditions)
        by_kind: dict[InteractionKind, list[int]] = {}
        for j, condition in enumerate(self.conditions):
            by_kind.setdefault(condition.kind, []).append(j)
        self.by_kind = {kind: tuple(js) for kind, js in by_kind.items()}

    def _starts(self, now: datetime) -> list[datetime | None]:
        _aware(now)
        return [None if c.window is None else now - c.window for c in self.conditions]

    def counts(self, interactions: Iterable[Interaction], now: datetime) -> list[int]:
        """How many of ``interactions`` each condition counts at ``now``."""
        starts = self._starts(now)
        counts = [0] * len(self.conditions)
        conditions, by_kind = self.conditions, self.by_kind
        for item in interactions:
            js = by_kind.get(item.kind)
            if js is None or item.occurred_at > now:
                continue
            for j in js:
                source, start = conditions[j].source_id, starts[j]
                if (source is None or item.source_id == source) and (
                    start is None or item.occurred_at > start
                ):
                    counts[j] += 1
        return counts

    def gather(
        self, interactions: Iterable[Interaction], now: datetime
    ) -> tuple[list[list[Interaction]], datetime | None]:
        """The interactions each condition counts at ``now``, and the earliest later
        instant at which one of them leaves (or a future one enters) a window."""
        starts = self._starts(now)
        found: list[list[Interaction]] = [[] for _ in self.conditions]
        change: datetime | None = None
        for item in interactions:
            for j in self.by_kind.get(item.kind, ()):
                condition = self.conditions[j]
                if condition.source_id is not None and item.source_id != condition.source_id:
                    continue
                at = item.occurred_at
                if at > now:
                    change = at if change is None else min(change, at)
                    continue
                start = starts[j]
                if start is not None and at <= start:
                    continue
                found[j].append(item)
                if condition.window is not None:
                    leaves = at + condition.window
                    change = leaves if change is None else min(change, leaves)
        return found, change


def _aware(now: object) -> None:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValidationError(
            f"now={now!r} must be a timezone-aware datetime (scoring counts interactions "
            f"in time windows ending at now)",
            field="now",
            value=now,
        )


class CompiledModel:
    """A scoring model compiled for fast scoring; build it with `compile_model`.

    Attributes:
        model: The model it was compiled from.
        points: The hot path: ``points(lead, contact=None, account=None,
            interactions=(), now=None) -> int | None`` - the score, or ``None`` when
            the model does not score the lead. ``now`` is required when the model
            has interaction conditions. It trusts its caller: pass the lead's own
            parent contact and account.
        source: The generated source text (for inspection; it holds no value or field
            name a model author wrote).
    """

    __slots__ = (
        "_fixed",
        "_grades",
        "_hits",
        "_interactions",
        "_offsets",
        "model",
        "points",
        "source",
    )

    def __init__(
        self,
        model: ScoringModel,
        points: Callable[..., int | None],
        hits: Callable[..., Any],
        interactions: _Interactions,
        source: str,
    ) -> None:
        self.model = model
        self.points = points
        self.source = source
        self._hits = hits
        self._interactions = interactions
        self._grades: tuple[Grade, ...] = model.grades
        self._offsets = _offsets(model)
        # a rule that counts no interactions always explains itself the same way, and
        # a RuleHit is immutable: build it once
        self._fixed: tuple[RuleHit | None, ...] = tuple(
            None
            if any(c.frequency is not Frequency.NONE for _, c in mine)
            else RuleHit(rule_id=rule.id, rule_name=rule.name, points=rule.points)
            for rule, mine in zip(model.rules, self._offsets, strict=True)
        )

    def grade_of(self, points: int) -> str | None:
        """The name of the grade ``points`` falls in, or ``None``."""
        for grade in self._grades:
            if grade.holds(points):
                return grade.name
        return None

    def __repr__(self) -> str:
        return f"<CompiledModel {self.model.id!r} v{self.model.version}>"


def compile_model(model: ScoringModel) -> CompiledModel:
    """Compile ``model`` into a `CompiledModel` (do it once per model version).

    Args:
        model: A scoring model.

    Returns:
        The compiled model.

    Raises:
        InvalidDefinition: the model is not valid (see `salesflow.scoring_model.validate`).
    """
    require_valid(model)
    generator = Generator(model)
    generator.prepare()
    interactions = _Interactions(generator.interactions)
    generator.namespace["_counts"] = interactions.counts
    source = "\n".join(
        [
            "def points(lead, contact=None, account=None, interactions=(), now=None):",
            *generator.body(hits=False),
            "",
            "def hits(lead, contact, account, n):",
            *generator.body(hits=True),
            "",
        ]
    )
    shown, tree = optimise(source, generator)
    namespace = generator.namespace
    code = compile(tree, f"<scoring model {model.id!r} v{model.version}>", "exec")
    exec(code, namespace)
    return CompiledModel(model, namespace["points"], namespace["hits"], interactions, shown)


def _check_parents(lead: Lead, contact: Contact | None, account: Account | None) -> None:
    for record, parent, what in (
        (contact, lead.parent_contact_id, "contact"),
        (account, lead.parent_account_id, "account"),
    ):
        if record is None and parent is not None:
            raise ValidationError(
                f"Lead {lead.id!r} has the parent {what} {parent!r}; pass it as {what}= "
                f"to score the lead",
                field=what,
                value=None,
            )
        if record is not None and record.id != parent:
            raise ValidationError(
                f"{what} {record.id!r} is not the parent {what} of Lead {lead.id!r} "
                f"(which is {parent!r}); pass the lead's own parent {what}",
                field=what,
                value=record.id,
            )


def score(
    compiled: CompiledModel,
    *,
    lead: Lead,
    contact: Contact | None = None,
    account: Account | None = None,
    interactions: Iterable[Interaction] = (),
    now: datetime,
) -> ScoreResult | NotScored:
    """Score ``lead`` with ``compiled`` at ``now``, with the explanation.

    Args:
        compiled: The compiled model.
        lead: The lead.
        contact: The lead's parent contact (required when the lead names one).
        account: The lead's parent account (required when the lead names one).
        interactions: What the scored people did: the contact's interactions (and the
            lead's own) for a contact-target model, those of every contact of the
            account for an account-target model. Interactions after ``now`` do not
            count yet (they set ``next_change_at``).
        now: The instant to score at (aware).

    Returns:
        A `ScoreResult`, or `NotScored` when the model does not apply to the lead.

    Raises:
        ValidationError: ``now`` is naive, or ``contact`` / ``account`` is missing or
            not the lead's parent.
    """
    _aware(now)
    _check_parents(lead, contact, account)
    model = compiled.model
    found: list[list[Interaction]] = []
    change: datetime | None = None
    if compiled._interactions.conditions:
        found, change = compiled._interactions.gather(interactions, now)
    fired = compiled._hits(lead, contact, account, [len(ids) for ids in found])
    if isinstance(fired, NotScoredReason):
        if fired is NotScoredReason.OUTSIDE_AUDIENCE:
            message = f"Lead {lead.id!r} is outside the audience of scoring model {model.id!r}"
        elif fired is NotScoredReason.CONTACT_BASED:
            message = (
                f"Lead {lead.id!r} has a parent contact, so it is contact-based: account-target "
                f"scoring model {model.id!r} does not score it (contact-target models do)"
            )
        else:
            message = (
                f"Lead {lead.id!r} has no parent {model.target.value}, which scoring model "
                f"{model.id!r} needs (set score_leads_without_parent to score leads with "
                f"neither)"
            )
        return NotScored(
            model_id=model.id,
            model_version=model.version,
            lead_id=lead.id,
            reason=fired,
            message=message,
        )
    explanation = []
    fixed = compiled._fixed
    for i in fired:
        hit = fixed[i]
        explanation.append(hit if hit is not None else _counted_hit(compiled, i, found))
    total = sum(hit.points for hit in explanation)
    return ScoreResult(
        model_id=model.id,
        model_version=model.version,
        lead_id=lead.id,
        points=total,
        grade=compiled.grade_of(total),
        sales_ready=total >= model.sales_ready_threshold,
        explanation=tuple(explanation),
        next_change_at=change,
        scored_at=now,
    )


def _counted_hit(compiled: CompiledModel, i: int, found: list[list[Interaction]]) -> RuleHit:
    """The explanation of rule ``i``, which counts interactions, when it fired."""
    rule = compiled.model.rules[i]
    occurrences = 1
    counted: dict[str, Interaction] = {}
    for j, condition in compiled._offsets[i]:
        if condition.frequency is Frequency.EACH:
            occurrences = len(found[j])
        if condition.frequency is not Frequency.NONE:
            counted.update((item.id, item) for item in found[j])
    ordered = sorted(counted.values(), key=lambda item: (item.occurred_at, item.id))
    return RuleHit(
        rule_id=rule.id,
        rule_name=rule.name,
        points=rule.points * occurrences,
        interactions=tuple(item.id for item in ordered),
        occurrences=occurrences,
    )


def _offsets(model: ScoringModel) -> list[list[tuple[int, InteractionCondition]]]:
    """Per rule, its interaction conditions with their index in the model's list."""
    result: list[list[tuple[int, InteractionCondition]]] = []
    index = 0
    for rule in model.rules:
        mine = []
        for condition in rule.conditions:
            if isinstance(condition, InteractionCondition):
                mine.append((index, condition))
                index += 1
        result.append(mine)
    return result
