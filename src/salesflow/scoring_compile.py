"""Compiling a scoring model into one fast function, and scoring leads with it.

`compile_model` turns a valid `ScoringModel` into a `CompiledModel` once per model
version: it generates the source of one Python function that evaluates every rule
in a row (DESIGN §7: one generated function is ~3x faster than a loop over rule
objects, and closures per rule are slower still) and compiles it with `compile` /
`exec`.

The generator is safe by construction: nothing a model author wrote is ever spliced
into the source. The source only holds names the generator made up (``g3``, ``c7``,
``v2``), rule indexes and fixed attribute names of salesflow's own records; field
values are bound as constants in the function's namespace and fields are read
through getters resolved beforehand (`salesflow.scoring_model.resolve_field`), and
the namespace has no builtins except the two it needs. `CompiledModel.source` shows
the generated text.

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

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import attrs

from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Op, comparisons
from salesflow.errors import ValidationError
from salesflow.interactions import Interaction, InteractionKind
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.scoring_model import (
    FieldAccess,
    Frequency,
    Grade,
    InteractionCondition,
    ScoringModel,
    ScoringTarget,
    field_access,
)
from salesflow.scoring_validation import require_valid

# The field names of each scope's record class: the only attribute names the
# generated source may contain.
_ATTRIBUTES: dict[str, frozenset[str]] = {
    "lead": frozenset(a.name for a in attrs.fields(Lead)),
    "contact": frozenset(a.name for a in attrs.fields(Contact)),
    "account": frozenset(a.name for a in attrs.fields(Account)),
}

__all__ = [
    "CompiledModel",
    "NotScored",
    "NotScoredReason",
    "RuleHit",
    "ScoreResult",
    "compile_model",
    "score",
]


class NotScoredReason(StrEnum):
    """Why a model does not score a lead."""

    NO_PARENT = "no_parent"
    """The lead lacks the parent the model's target needs."""
    OUTSIDE_AUDIENCE = "outside_audience"
    """The model's audience filter does not hold for the lead."""


@attrs.frozen(kw_only=True)
class RuleHit:
    """One rule that fired, in an explanation.

    Attributes:
        rule_id: The rule.
        rule_name: Its name, for people.
        points: What it added: the rule's points times ``occurrences``.
        interactions: The ids of the interactions that made it fire (those counted by
            its ``each`` and ``at_least`` conditions), oldest first.
        occurrences: How many times it scored: the count of its ``each`` condition,
            else 1.
    """

    rule_id: str
    rule_name: str
    points: int
    interactions: tuple[str, ...] = ()
    occurrences: int = 1


@attrs.frozen(kw_only=True)
class ScoreResult:
    """A lead's score under one model version, and why.

    Attributes:
        model_id: The model.
        model_version: Its version.
        lead_id: The lead scored.
        points: The score: the sum of ``explanation`` 's points.
        grade: The name of the grade ``points`` falls in, or ``None``.
        sales_ready: ``points`` reached the model's sales-ready threshold.
        explanation: Every rule that fired, in model order.
        next_change_at: The earliest instant after ``scored_at`` at which the score
            may change by itself (an interaction leaving, or a future-dated one
            entering, a rule's window): re-score then. ``None`` when time alone never
            changes it.
        scored_at: The ``now`` the score was computed for.
    """

    model_id: str
    model_version: int
    lead_id: str
    points: int
    grade: str | None
    sales_ready: bool
    explanation: tuple[RuleHit, ...]
    next_change_at: datetime | None
    scored_at: datetime


@attrs.frozen(kw_only=True)
class NotScored:
    """The model does not score the lead.

    Attributes:
        model_id: The model.
        model_version: Its version.
        lead_id: The lead.
        reason: Why (`NotScoredReason`).
        message: The same as a sentence.
    """

    model_id: str
    model_version: int
    lead_id: str
    reason: NotScoredReason
    message: str


class _Empty:
    """Stands in for a missing contact or account: every field reads as empty."""

    __slots__ = ()
    custom: Any = MappingProxyType({})

    def __getattr__(self, name: str) -> None:
        return None


_EMPTY = _Empty()
_ERRORS = (TypeError, ArithmeticError)
_SAFE_SET_TYPES = (str, int, Decimal, date)


class _Generator:
    """Builds the source of the scoring functions and the namespace it runs in."""

    def __init__(self, model: ScoringModel) -> None:
        self.model = model
        self.namespace: dict[str, Any] = {
            "__builtins__": {},
            "_isinstance": isinstance,
            "_str": str,
            "_ERR": _ERRORS,
            "_E": _EMPTY,
            "_NO_PARENT": NotScoredReason.NO_PARENT,
            "_OUTSIDE": NotScoredReason.OUTSIDE_AUDIENCE,
        }
        self.counter = 0
        self.reads: list[str] = []  # statements reading every field into a local
        self.var: dict[str, str] = {}  # field name -> the local holding its value
        self.pre: list[str] = []  # statements evaluated before the rules (risky compares)
        self.scopes: set[str] = set()
        self.types: dict[str, type | None] = {}
        self.interactions: list[InteractionCondition] = []

    def name(self, prefix: str, value: Any) -> str:
        self.counter += 1
        identifier = f"{prefix}{self.counter}"
        self.namespace[identifier] = value
        return identifier

    def prepare(self) -> None:
        """Resolve every field once and write the statements reading them all up front.

        The plain attributes a model reads from one record are read into locals once,
        as plain attribute reads of the record classes' own field names.
        """
        accesses: dict[str, FieldAccess] = {}
        for condition in self._field_conditions():
            for compare in comparisons(condition):
                if compare.field not in accesses:
                    accesses[compare.field] = field_access(compare.field)
        attributes: dict[str, dict[str, str]] = {}  # scope -> attribute -> local
        for access in accesses.values():
            self.scopes.add(access.scope)
            wanted = "custom" if access.part == "custom" else access.attribute
            if wanted is not None:
                mine = attributes.setdefault(access.scope, {})
                if wanted not in mine:
                    self.counter += 1
                    mine[wanted] = f"a{self.counter}"
        for scope, mine in attributes.items():
            for attribute, local in mine.items():
                # The attribute names are the record classes' own field names
                # (field_access resolves and checks them), never user text, so they
                # may appear in the source: a plain attribute read is the fastest.
                if not attribute.isidentifier() or attribute not in _ATTRIBUTES[scope]:
                    raise AssertionError(f"unexpected attribute {attribute!r} of {scope}")
                self.reads.append(f"    {local} = {scope}.{attribute}")
        for field_name, access in accesses.items():
            self.types[field_name] = access.value_type
            if access.part == "value" and access.attribute is not None:
                self.var[field_name] = attributes[access.scope][access.attribute]
                continue
            self.counter += 1
            var = self.var[field_name] = f"v{self.counter}"
            if access.part == "custom":
                held = attributes[access.scope]["custom"]
                self.reads.append(f"    {var} = {held}.get({self.name('c', access.key)})")
            elif access.part in ("amount", "currency") and access.attribute is not None:
                held = attributes[access.scope][access.attribute]
                self.reads.append(f"    {var} = None if {held} is None else {held}.{access.part}")
            else:
                self.reads.append(f"    {var} = {self.name('g', access.read)}({access.scope})")
        for rule in self.model.rules:
            self.interactions += [c for c in rule.conditions if isinstance(c, InteractionCondition)]

    def _field_conditions(self) -> Iterable[Condition]:
        if self.model.audience is not None:
            yield self.model.audience
        for rule in self.model.rules:
            for condition in rule.conditions:
                if not isinstance(condition, InteractionCondition):
                    yield condition

    def read(self, field_name: str) -> tuple[str, str]:
        """The expression reading ``field_name`` the first time, and after that."""
        return self.var[field_name], self.var[field_name]

    def condition(self, condition: Condition) -> str:
        if isinstance(condition, Compare):
            return self.compare(condition)
        if isinstance(condition, AllOf):
            parts = [self.condition(c) for c in condition.conditions]
            return "(" + " and ".join(parts) + ")" if parts else "True"
        if isinstance(condition, AnyOf):
            parts = [self.condition(c) for c in condition.conditions]
            return "(" + " or ".join(parts) + ")" if parts else "False"
        return f"(not {self.condition(condition.condition)})"

    def compare(self, compare: Compare) -> str:
        op, value = compare.op, compare.value
        first, again = self.read(compare.field)
        if op is Op.IS_NULL:
            return f"({first} is None)"
        if op is Op.NOT_NULL:
            return f"({first} is not None)"
        if op in (Op.STARTS_WITH, Op.CONTAINS):
            folded = self.name("c", value.casefold())
            test = (
                f"{again}.casefold().startswith({folded})"
                if op is Op.STARTS_WITH
                else f"{folded} in {again}.casefold()"
            )
            return f"(_isinstance({first}, _str) and {test})"
        if op in (Op.IN, Op.NOT_IN):
            safe = all(_settable(v) for v in value)
            constant = self.name("c", frozenset(value) if safe else value)
            word = "in" if op is Op.IN else "not in"
            expression = f"({first} is not None and {again} {word} {constant})"
        else:
            safe = (
                _settable(value)
                if op in (Op.EQ, Op.NE)
                else _ordered(self.types[compare.field], value)
            )
            constant = self.name("c", value)
            symbol = {
                Op.EQ: "==",
                Op.NE: "!=",
                Op.LT: "<",
                Op.LE: "<=",
                Op.GT: ">",
                Op.GE: ">=",
            }[op]
            if op is Op.EQ and safe:
                # a missing value (None) never equals a constant, which is never None
                return f"({first} == {constant})"
            expression = f"({first} is not None and {again} {symbol} {constant})"
        if safe:
            return expression
        # comparing values of different kinds raises; the shared language says False,
        # so such comparisons run up front inside a try (expressions cannot hold one)
        self.counter += 1
        flag = f"b{self.counter}"
        self.pre += [
            "    try:",
            f"        {flag} = {expression}",
            "    except _ERR:",
            f"        {flag} = False",
        ]
        return flag

    def interaction(self, index: int, condition: InteractionCondition) -> str:
        if condition.frequency is Frequency.NONE:
            return f"(n[{index}] == 0)"
        if condition.frequency is Frequency.EACH:
            return f"(n[{index}] > 0)"
        return f"(n[{index}] >= {self.name('c', condition.count)})"

    def body(self, *, hits: bool) -> list[str]:
        """The statements of one function: the points function, or (``hits``) the one
        listing the indexes of the rules that fire."""
        self.pre = []
        model = self.model
        lines: list[str] = []
        own, other = (
            ("parent_contact_id", "parent_account_id")
            if model.target is ScoringTarget.CONTACT
            else ("parent_account_id", "parent_contact_id")
        )
        if model.score_leads_without_parent:
            lines.append(f"    if lead.{own} is None and lead.{other} is not None:")
        else:
            lines.append(f"    if lead.{own} is None:")
        lines.append("        return _NO_PARENT" if hits else "        return None")
        for scope in sorted(self.scopes - {"lead"}):
            lines += [f"    if {scope} is None:", f"        {scope} = _E"]
        lines += self.reads
        if model.audience is not None:
            # the audience's risky comparisons run before its test; the rules' after
            # it, so a lead outside the audience costs no more than needed
            audience = self.condition(model.audience)
            lines += self.pre
            self.pre = []
            lines.append(f"    if not {audience}:")
            lines.append("        return _OUTSIDE" if hits else "        return None")
        rule_lines: list[str] = []
        index = 0
        for i, rule in enumerate(model.rules):
            parts: list[str] = []
            each: int | None = None
            for condition in rule.conditions:
                if isinstance(condition, InteractionCondition):
                    parts.append(self.interaction(index, condition))
                    if condition.frequency is Frequency.EACH:
                        each = index
                    index += 1
                else:
                    parts.append(self.condition(condition))
            test = " and ".join(parts) or "True"
            rule_lines.append(f"    if {test}:")
            if hits:
                rule_lines.append(f"        h.append({i})")
            else:
                points = self.name("k", rule.points)
                times = f" * n[{each}]" if each is not None else ""
                rule_lines.append(f"        p += {points}{times}")
        if self.interactions and not hits:
            lines.append("    n = _counts(interactions, now)")
        lines += self.pre
        lines.append("    h = []" if hits else "    p = 0")
        lines += rule_lines
        lines.append("    return h" if hits else "    return p")
        return lines


def _settable(value: Any) -> bool:
    """True for constants that compare without raising and hash like they compare."""
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, _SAFE_SET_TYPES)


def _ordered(value_type: type | None, value: Any) -> bool:
    """True when ordering a field of ``value_type`` against ``value`` cannot raise."""
    if value_type in (int, bool, float, Decimal):
        return not isinstance(value, str | date) and _settable(value)
    if value_type is str:
        return isinstance(value, str)
    if value_type is date:
        return type(value) is date
    if value_type is datetime:
        return isinstance(value, datetime) and value.utcoffset() is not None
    return False


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

    __slots__ = ("_grades", "_hits", "_interactions", "_offsets", "model", "points", "source")

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
    generator = _Generator(model)
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
    namespace = generator.namespace
    code = compile(source, f"<scoring model {model.id!r} v{model.version}>", "exec")
    exec(code, namespace)
    return CompiledModel(model, namespace["points"], namespace["hits"], interactions, source)


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
    items = tuple(interactions)
    model = compiled.model
    found, change = compiled._interactions.gather(items, now)
    fired = compiled._hits(lead, contact, account, [len(ids) for ids in found])
    if isinstance(fired, NotScoredReason):
        message = (
            f"Lead {lead.id!r} is outside the audience of scoring model {model.id!r}"
            if fired is NotScoredReason.OUTSIDE_AUDIENCE
            else f"Lead {lead.id!r} has no parent {model.target.value}, which scoring model "
            f"{model.id!r} needs (set score_leads_without_parent to score leads with neither)"
        )
        return NotScored(
            model_id=model.id,
            model_version=model.version,
            lead_id=lead.id,
            reason=fired,
            message=message,
        )
    explanation = []
    offsets = compiled._offsets
    for i in fired:
        rule = model.rules[i]
        occurrences = 1
        counted: dict[str, Interaction] = {}
        for j, condition in offsets[i]:
            if condition.frequency is Frequency.EACH:
                occurrences = len(found[j])
            if condition.frequency is not Frequency.NONE:
                counted.update((item.id, item) for item in found[j])
        ordered = sorted(counted.values(), key=lambda item: (item.occurred_at, item.id))
        explanation.append(
            RuleHit(
                rule_id=rule.id,
                rule_name=rule.name,
                points=rule.points * occurrences,
                interactions=tuple(item.id for item in ordered),
                occurrences=occurrences,
            )
        )
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
