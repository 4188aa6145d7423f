"""The one predicate language: field comparisons combined with all / any / not.

Views filter with it now; scoring, routing, sequence conditions and automation
rules use the same conditions. A condition is plain frozen data, so it can be
stored, compared and translated: the memory store evaluates it in Python, the
SQL stores compile it to a ``WHERE`` clause with the same meaning.

Semantics (identical in every store): a comparison with a missing value
(``None``) is false, except ``is_null``; text comparisons are exact and
case-sensitive, except ``starts_with`` and ``contains``, which ignore case;
``Money`` fields compare by amount.

Example:
    >>> from salesflow.conditions import field, all_of
    >>> cond = all_of(field("rating").eq("hot"), field("employees").ge(50))
    >>> cond.describe()
    "(rating = 'hot' and employees >= 50)"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum, StrEnum
from typing import Any, TypeAlias, TypeVar

import attrs

from salesflow.errors import ValidationError
from salesflow.values import to_enum

T = TypeVar("T")

__all__ = [
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "FieldRef",
    "Not",
    "Op",
    "all_of",
    "any_of",
    "compile_predicate",
    "evaluate",
    "field",
    "not_",
]


class Op(StrEnum):
    """Comparison operators."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    NOT_IN = "not_in"
    IS_NULL = "is_null"
    NOT_NULL = "not_null"
    STARTS_WITH = "starts_with"
    CONTAINS = "contains"


_SYMBOL = {
    Op.EQ: "=",
    Op.NE: "!=",
    Op.LT: "<",
    Op.LE: "<=",
    Op.GT: ">",
    Op.GE: ">=",
    Op.IN: "in",
    Op.NOT_IN: "not in",
    Op.STARTS_WITH: "starts with",
    Op.CONTAINS: "contains",
}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _check_value(instance: Compare, _: attrs.Attribute[Any], value: Any) -> None:
    op = instance.op
    if op in (Op.IS_NULL, Op.NOT_NULL):
        if value is not None:
            raise ValidationError(
                f"{op.value} on {instance.field!r} takes no value, got {value!r}",
                field=instance.field,
                value=value,
            )
        return
    if op in (Op.IN, Op.NOT_IN):
        if not isinstance(value, tuple) or not value:
            raise ValidationError(
                f"{op.value} on {instance.field!r} needs a non-empty list of values, got {value!r}",
                field=instance.field,
                value=value,
            )
        return
    if value is None:
        raise ValidationError(
            f"{op.value} on {instance.field!r} cannot compare with None; use is_null() "
            f"or not_null()",
            field=instance.field,
            value=value,
        )
    if op in (Op.STARTS_WITH, Op.CONTAINS) and not isinstance(value, str):
        raise ValidationError(
            f"{op.value} on {instance.field!r} needs text, got {value!r}",
            field=instance.field,
            value=value,
        )


def _value(value: Any) -> Any:
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(_plain(v) for v in value)
    return _plain(value)


def _op(value: object) -> Op:
    result: Op = to_enum(Op, value, "Compare.op", optional=False)
    return result


@attrs.frozen(kw_only=True)
class Compare:
    """``field op value``; ``field`` is a record field or ``custom.<name>``."""

    field: str
    op: Op = attrs.field(converter=_op)
    value: Any = attrs.field(default=None, converter=_value, validator=_check_value)

    def describe(self) -> str:
        """A readable form, e.g. ``employees >= 50``."""
        if self.op is Op.IS_NULL:
            return f"{self.field} is empty"
        if self.op is Op.NOT_NULL:
            return f"{self.field} is not empty"
        return f"{self.field} {_SYMBOL[self.op]} {self.value!r}"


@attrs.frozen(kw_only=True)
class AllOf:
    """True when every condition holds (true when empty)."""

    conditions: tuple[Condition, ...]

    def describe(self) -> str:
        """A readable form."""
        return "(" + " and ".join(c.describe() for c in self.conditions) + ")"


@attrs.frozen(kw_only=True)
class AnyOf:
    """True when at least one condition holds (false when empty)."""

    conditions: tuple[Condition, ...]

    def describe(self) -> str:
        """A readable form."""
        return "(" + " or ".join(c.describe() for c in self.conditions) + ")"


@attrs.frozen(kw_only=True)
class Not:
    """True when the condition does not hold."""

    condition: Condition

    def describe(self) -> str:
        """A readable form."""
        return f"not {self.condition.describe()}"


Condition: TypeAlias = Compare | AllOf | AnyOf | Not


@attrs.frozen
class FieldRef:
    """Builds comparisons on one field: ``field("rating").eq("hot")``."""

    name: str

    def eq(self, value: Any) -> Compare:
        """Equal to ``value``."""
        return Compare(field=self.name, op=Op.EQ, value=value)

    def ne(self, value: Any) -> Compare:
        """Set and different from ``value``."""
        return Compare(field=self.name, op=Op.NE, value=value)

    def lt(self, value: Any) -> Compare:
        """Less than ``value``."""
        return Compare(field=self.name, op=Op.LT, value=value)

    def le(self, value: Any) -> Compare:
        """Less than or equal to ``value``."""
        return Compare(field=self.name, op=Op.LE, value=value)

    def gt(self, value: Any) -> Compare:
        """Greater than ``value``."""
        return Compare(field=self.name, op=Op.GT, value=value)

    def ge(self, value: Any) -> Compare:
        """Greater than or equal to ``value``."""
        return Compare(field=self.name, op=Op.GE, value=value)

    def in_(self, values: Iterable[Any]) -> Compare:
        """Equal to one of ``values``."""
        return Compare(field=self.name, op=Op.IN, value=tuple(values))

    def not_in(self, values: Iterable[Any]) -> Compare:
        """Set and equal to none of ``values``."""
        return Compare(field=self.name, op=Op.NOT_IN, value=tuple(values))

    def is_null(self) -> Compare:
        """Empty (``None``)."""
        return Compare(field=self.name, op=Op.IS_NULL)

    def not_null(self) -> Compare:
        """Not empty."""
        return Compare(field=self.name, op=Op.NOT_NULL)

    def starts_with(self, prefix: str) -> Compare:
        """Text that starts with ``prefix``, ignoring case."""
        return Compare(field=self.name, op=Op.STARTS_WITH, value=prefix)

    def contains(self, part: str) -> Compare:
        """Text that contains ``part``, ignoring case."""
        return Compare(field=self.name, op=Op.CONTAINS, value=part)


def field(name: str) -> FieldRef:
    """Start a comparison on the field ``name`` (or ``custom.<name>``)."""
    return FieldRef(name)


def all_of(*conditions: Condition) -> AllOf:
    """All of ``conditions``."""
    return AllOf(conditions=conditions)


def any_of(*conditions: Condition) -> AnyOf:
    """Any of ``conditions``."""
    return AnyOf(conditions=conditions)


def not_(condition: Condition) -> Not:
    """The negation of ``condition``."""
    return Not(condition=condition)


def fields_of(condition: Condition) -> Iterable[str]:
    """Every field name ``condition`` reads, in order."""
    return (compare.field for compare in comparisons(condition))


def comparisons(condition: Condition) -> Iterable[Compare]:
    """Every comparison inside ``condition``, in order."""
    if isinstance(condition, Compare):
        yield condition
    elif isinstance(condition, AllOf | AnyOf):
        for inner in condition.conditions:
            yield from comparisons(inner)
    else:
        yield from comparisons(condition.condition)


def _compare(op: Op, actual: Any, expected: Any) -> bool:
    if op is Op.IS_NULL:
        return actual is None
    if op is Op.NOT_NULL:
        return actual is not None
    if actual is None:
        return False
    try:
        match op:
            case Op.EQ:
                return bool(actual == expected)
            case Op.NE:
                return bool(actual != expected)
            case Op.LT:
                return bool(actual < expected)
            case Op.LE:
                return bool(actual <= expected)
            case Op.GT:
                return bool(actual > expected)
            case Op.GE:
                return bool(actual >= expected)
            case Op.IN:
                return actual in expected
            case Op.NOT_IN:
                return actual not in expected
            case Op.STARTS_WITH:
                return isinstance(actual, str) and actual.casefold().startswith(expected.casefold())
            case Op.CONTAINS:
                return isinstance(actual, str) and expected.casefold() in actual.casefold()
    except (TypeError, ArithmeticError):
        # values of different kinds never match, as in the SQL stores
        return False
    raise AssertionError(op)  # pragma: no cover - every Op is matched above


def compile_predicate(
    condition: Condition, reader: Callable[[str], Callable[[T], Any]]
) -> Callable[[T], bool]:
    """Compile ``condition`` once into a function of one item.

    ``reader(field)`` returns the function that reads ``field`` from an item; it is
    called once per field, not once per item. The result answers exactly as
    `evaluate` does.
    """
    if isinstance(condition, Compare):
        read = reader(condition.field)
        op, expected = condition.op, condition.value
        return lambda item: _compare(op, _plain(read(item)), expected)
    if isinstance(condition, AllOf | AnyOf):
        parts = [compile_predicate(c, reader) for c in condition.conditions]
        if isinstance(condition, AllOf):
            return lambda item: all(p(item) for p in parts)
        return lambda item: any(p(item) for p in parts)
    inner = compile_predicate(condition.condition, reader)
    return lambda item: not inner(item)


def evaluate(condition: Condition, value_of: Callable[[str], Any]) -> bool:
    """Evaluate ``condition`` with ``value_of(field)`` giving each field's value."""
    if isinstance(condition, Compare):
        return _compare(condition.op, _plain(value_of(condition.field)), condition.value)
    if isinstance(condition, AllOf):
        return all(evaluate(c, value_of) for c in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, value_of) for c in condition.conditions)
    return not evaluate(condition.condition, value_of)
