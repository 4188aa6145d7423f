"""The code generator behind `salesflow.scoring_compile.compile_model`.

`Generator` writes the source of the two functions a compiled model runs (``points``,
the hot path, and ``hits``, the indexes of the rules that fire, for explanations);
`optimise` then tidies the parsed source and binds the constants into the code.

Safety: nothing a model author wrote is ever spliced into the source. The source only
holds names the generator made up (``g3``, ``c7``, ``v2``), rule indexes and fixed
attribute names of salesflow's own records; values live in the namespace the code
runs in, and `optimise` swaps the names of plain literal values (text, numbers,
booleans, sets and tuples of them) for the values themselves in the parsed tree,
never in text, so they are loaded as the code's own constants.

What makes the generated code fast (each scoring is a few hundred nanoseconds, so
every bytecode counts):

* every field is read once per lead, a plain attribute read of the record classes'
  own field names, into a local when several conditions use it and right where it
  is used when only one does (``optimise`` inlines single-use reads, which also
  skips the read when an earlier ``and`` already failed);
* a field with several ``starts_with`` / ``contains`` conditions is case-folded once;
* constants are the code's own (``LOAD_CONST``), not globals;
* comparisons that cannot raise are plain inline expressions; only those that may
  (values of different kinds) pay for a ``try``, once, before the rules;
* a model without interaction conditions never touches the interaction machinery.
"""

from __future__ import annotations

import ast
import math
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs

from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Op, comparisons
from salesflow.lead import Lead
from salesflow.party import Account, Contact
from salesflow.scoring_model import (
    FieldAccess,
    Frequency,
    InteractionCondition,
    ScoringModel,
    ScoringTarget,
    field_access,
)
from salesflow.scoring_result import NotScoredReason

__all__ = ["Generator", "optimise"]

# The field names of each scope's record class: the only attribute names the
# generated source may contain.
_ATTRIBUTES: dict[str, frozenset[str]] = {
    "lead": frozenset(a.name for a in attrs.fields(Lead)),
    "contact": frozenset(a.name for a in attrs.fields(Contact)),
    "account": frozenset(a.name for a in attrs.fields(Account)),
}
_SCOPES = frozenset(_ATTRIBUTES)


class _Empty:
    """Stands in for a missing contact or account: every field reads as empty."""

    __slots__ = ()
    custom: Any = MappingProxyType({})

    def __getattr__(self, name: str) -> None:
        return None


_EMPTY = _Empty()
_ERRORS = (TypeError, ArithmeticError)
_SAFE_SET_TYPES = (str, int, Decimal, date)
_SYMBOLS = {Op.EQ: "==", Op.NE: "!=", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}


class Generator:
    """Builds the source of the scoring functions and the namespace it runs in.

    Attributes:
        model: The model.
        namespace: The globals the generated code runs in.
        constants: The names in ``namespace`` that hold a value of the model (a
            compared value or a rule's points), which `optimise` may turn into
            constants of the code.
        interactions: The model's interaction conditions, in rule order.
    """

    def __init__(self, model: ScoringModel) -> None:
        self.model = model
        self.namespace: dict[str, Any] = {
            "__builtins__": {},
            "_isinstance": isinstance,
            "_str": str,
            "_ERR": _ERRORS,
            "_E": _EMPTY,
            "_NO_PARENT": NotScoredReason.NO_PARENT,
            "_CONTACT_BASED": NotScoredReason.CONTACT_BASED,
            "_OUTSIDE": NotScoredReason.OUTSIDE_AUDIENCE,
        }
        self.constants: set[str] = set()
        self.counter = 0
        self.reads: list[str] = []  # statements reading every field into a local
        self.var: dict[str, str] = {}  # field name -> the local holding its value
        self.folds: dict[str, str] = {}  # field name -> the local holding it case-folded
        self.pre: list[str] = []  # statements evaluated before the rules (risky compares)
        self.pending: list[str] = []  # folds to compute before the statement being built
        self.folded: set[str] = set()  # folds already computed in the function being built
        self.scopes: set[str] = set()
        self.types: dict[str, type | None] = {}
        self.interactions: list[InteractionCondition] = []

    def name(self, prefix: str, value: Any) -> str:
        """A new global name bound to ``value``."""
        self.counter += 1
        identifier = f"{prefix}{self.counter}"
        self.namespace[identifier] = value
        if prefix in ("c", "k"):
            self.constants.add(identifier)
        return identifier

    def prepare(self) -> None:
        """Resolve every field once and write the statements reading them all up front.

        The plain attributes a model reads from one record are read into locals once,
        as plain attribute reads of the record classes' own field names.
        """
        accesses: dict[str, FieldAccess] = {}
        text_tests: Counter[str] = Counter()
        for condition in self._field_conditions():
            for compare in comparisons(condition):
                if compare.field not in accesses:
                    accesses[compare.field] = field_access(compare.field)
                if compare.op in (Op.STARTS_WITH, Op.CONTAINS):
                    text_tests[compare.field] += 1
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
            if text_tests[field_name] > 1:
                self.counter += 1
                self.folds[field_name] = f"f{self.counter}"
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

    def condition(self, condition: Condition) -> str:
        """The expression testing ``condition``."""
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
        """The expression testing one comparison (with the shared language's rules:
        a missing value fails every test but ``is_null``; values of different kinds
        are simply not equal, nor ordered)."""
        op, value = compare.op, compare.value
        held = self.var[compare.field]
        if op is Op.IS_NULL:
            return f"({held} is None)"
        if op is Op.NOT_NULL:
            return f"({held} is not None)"
        if op in (Op.STARTS_WITH, Op.CONTAINS):
            return self._text_test(compare.field, op, value)
        if op in (Op.IN, Op.NOT_IN):
            safe = all(_settable(v) for v in value)
            constant = self.name("c", frozenset(value) if safe else value)
            word = "in" if op is Op.IN else "not in"
            expression = f"({held} is not None and {held} {word} {constant})"
        else:
            safe = (
                _settable(value)
                if op in (Op.EQ, Op.NE)
                else _ordered(self.types[compare.field], value)
            )
            constant = self.name("c", value)
            if op is Op.EQ and safe:
                # a missing value (None) never equals a constant, which is never None
                return f"({held} == {constant})"
            expression = f"({held} is not None and {held} {_SYMBOLS[op]} {constant})"
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

    def _text_test(self, field_name: str, op: Op, value: str) -> str:
        held = self.var[field_name]
        folded = self.name("c", value.casefold())
        fold = self.folds.get(field_name)
        if fold is None:
            test = (
                f"{held}.casefold().startswith({folded})"
                if op is Op.STARTS_WITH
                else f"{folded} in {held}.casefold()"
            )
            return f"(_isinstance({held}, _str) and {test})"
        if fold not in self.folded:
            # computed just before the first statement that tests it (see `flush`)
            self.folded.add(fold)
            self.pending.append(
                f"    {fold} = {held}.casefold() if _isinstance({held}, _str) else None"
            )
        test = f"{fold}.startswith({folded})" if op is Op.STARTS_WITH else f"{folded} in {fold}"
        return f"({fold} is not None and {test})"

    def flush(self) -> list[str]:
        """The fold statements the statement just built needs, to put before it."""
        pending, self.pending = self.pending, []
        return pending

    def interaction(self, index: int, condition: InteractionCondition) -> str:
        """The expression testing an interaction condition on the counts ``n``."""
        if condition.frequency is Frequency.NONE:
            return f"(n[{index}] == 0)"
        if condition.frequency is Frequency.EACH:
            return f"(n[{index}] > 0)"
        return f"(n[{index}] >= {self.name('c', condition.count)})"

    def body(self, *, hits: bool) -> list[str]:
        """The statements of one function: the points function, or (``hits``) the one
        listing the indexes of the rules that fire."""
        self.pre, self.pending, self.folded = [], [], set()
        model = self.model
        lines: list[str] = []
        # A lead with a parent contact is contact-based, even with a parent account
        # too: account models never score it (REFERENCE.md, "Scoring").
        if model.target is ScoringTarget.CONTACT:
            if model.score_leads_without_parent:
                lines.append(
                    "    if lead.parent_contact_id is None and lead.parent_account_id is not None:"
                )
            else:
                lines.append("    if lead.parent_contact_id is None:")
            lines.append("        return _NO_PARENT" if hits else "        return None")
        else:
            lines.append("    if lead.parent_contact_id is not None:")
            lines.append("        return _CONTACT_BASED" if hits else "        return None")
            if not model.score_leads_without_parent:
                lines.append("    if lead.parent_account_id is None:")
                lines.append("        return _NO_PARENT" if hits else "        return None")
        for scope in sorted(self.scopes - {"lead"}):
            lines += [f"    if {scope} is None:", f"        {scope} = _E"]
        lines += self.reads
        if model.audience is not None:
            # the audience's risky comparisons run before its test; the rules' after
            # it, so a lead outside the audience costs no more than needed
            audience = self.condition(model.audience)
            lines += self.flush() + self.pre
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
            rule_lines += self.flush()
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


# --- the pass over the parsed source ----------------------------------------------------


def optimise(source: str, generator: Generator) -> tuple[str, ast.Module]:
    """Inline the reads used once, and turn literal values into constants.

    Args:
        source: The source ``generator`` wrote.
        generator: The generator (its namespace and constant names).

    Returns:
        The source with the reads inlined (what `CompiledModel.source` shows: still
        no value of the model in it) and the tree to compile, constants bound.
    """
    tree = ast.parse(source)
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef):
            raise AssertionError("the generated source holds only functions")
        _inline_reads(function)
    shown = ast.unparse(tree)
    # parsed again so that line numbers (in tracebacks) are those of the shown source
    tree = ast.parse(shown)
    namespace = generator.namespace
    for slot, name in _name_slots(tree):
        if name.id in generator.constants and _literal(value := namespace[name.id]):
            _put(slot, ast.copy_location(ast.Constant(value=value), name))
    return shown, tree


def _inline_reads(function: ast.FunctionDef) -> None:
    """Move each read whose local is used exactly once to where it is used.

    Only reads that cannot fail or have effects move: attribute reads of the records
    (slotted fields; `_Empty` answers ``None``) and ``.get(name)`` on their custom
    mapping. The records' names are rebound (to `_Empty`) only before the reads, so
    a moved read sees the same record.
    """
    slots: dict[str, list[_Slot]] = {}
    stores: Counter[str] = Counter()
    for slot, name in _name_slots(function, stores):
        slots.setdefault(name.id, []).append(slot)
    moved: dict[str, ast.expr] = {}
    kept: list[ast.stmt] = []
    for statement in function.body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(target := statement.targets[0], ast.Name)
            and len(slots.get(target.id, ())) == 1
            and stores[target.id] == 1
            and _pure_read(statement.value, moved)
        ):
            moved[target.id] = statement.value
        else:
            kept.append(statement)
    function.body = kept
    for local, expression in moved.items():
        _put(slots[local][0], expression)


def _pure_read(node: ast.expr, moved: dict[str, ast.expr]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in moved
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id in _SCOPES
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and _pure_read(node.func.value, moved)
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Name)
        and not node.keywords
    )


def _literal(value: Any) -> bool:
    """True for values the compiler takes as constants of the code."""
    if type(value) in (frozenset, tuple):
        return all(_literal(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


_Slot: TypeAlias = tuple[ast.AST, str, int | None]
"""Where a node sits: ``parent.field``, or ``parent.field[index]`` when it is a list."""


def _put(slot: _Slot, node: ast.expr) -> None:
    parent, field, index = slot
    if index is None:
        setattr(parent, field, node)
    else:
        getattr(parent, field)[index] = node


def _name_slots(tree: ast.AST, stores: Counter[str] | None = None) -> list[tuple[_Slot, ast.Name]]:
    """Every load of a name in ``tree`` with where it sits, in one pass (models may
    have hundreds of rules; this is a fraction of the cost of `ast.walk` plus a
    visitor). Counts the names stored to into ``stores``."""
    found: list[tuple[_Slot, ast.Name]] = []
    stack = [tree]
    while stack:
        parent = stack.pop()
        for field in parent._fields:
            value = getattr(parent, field, None)
            items = enumerate(value) if isinstance(value, list) else ((None, value),)
            for index, item in items:
                if isinstance(item, ast.Name):
                    if isinstance(item.ctx, ast.Load):
                        found.append(((parent, field, index), item))
                    elif stores is not None:
                        stores[item.id] += 1
                elif isinstance(item, ast.AST):
                    stack.append(item)
    return found
