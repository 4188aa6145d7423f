"""Scoring model definitions: rules, interaction conditions, grades, and their validation.

A `ScoringModel` is an immutable, versioned definition (DESIGN §1.3). It is a list
of independent `ScoringRule` s, each a list of conditions that must all hold and the
points it adds (or, when negative, takes away); the score is the sum of the points
of every rule that fires. Grades name ranges of points; the sales-ready threshold
marks a lead sales-ready when its score reaches it.

Naming of field conditions: a rule's field conditions are ordinary conditions of the
shared predicate language (`salesflow.conditions`) whose field names carry the record
they read as a prefix:

* ``lead.<field>`` - the lead being scored (``lead.city``, ``lead.custom.segment``);
* ``contact.<field>`` - the lead's parent contact;
* ``account.<field>`` - the lead's parent account.

``<field>`` is any field a view can filter on (a `Money` field compares by amount,
``<name>_currency`` is its currency) or ``custom.<name>`` for a host field. When the
record is missing (no parent contact, say) every one of its fields reads as empty
(``None``), so only ``is_null`` holds on it.

Local rules (non-zero points, positive windows, counts >= 1) are checked when an
object is built and raise `ValidationError`; rules about the whole model (unique ids,
known fields, continuous grades) are reported all at once by
`salesflow.scoring_validation.validate`.
"""

from __future__ import annotations

import operator
import re
import types
import typing
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from enum import Enum, StrEnum
from functools import cache
from typing import Any, TypeAlias

import attrs

from salesflow.conditions import AllOf, AnyOf, Compare, Condition, Not
from salesflow.errors import ValidationError
from salesflow.interactions import InteractionKind
from salesflow.values import Money, RecordKind, RecordRef, to_enum

__all__ = [
    "MAX_RULES",
    "FieldAccess",
    "Frequency",
    "Grade",
    "InteractionCondition",
    "RuleCondition",
    "ScoringModel",
    "ScoringRule",
    "ScoringTarget",
    "field_access",
    "resolve_field",
]

MAX_RULES = 500
"""The most rules a model may hold."""

MAX_POINTS = 1_000_000
"""The largest number of points (either sign) one rule may add."""


class ScoringTarget(StrEnum):
    """Whose behaviour a model scores."""

    CONTACT = "contact"
    """The lead's parent contact: its fields and its interactions."""
    ACCOUNT = "account"
    """The lead's parent account: its fields and the interactions of all its contacts.
    Only leads without a parent contact: a lead with both parents is contact-based."""


class Frequency(StrEnum):
    """How interactions in the window make an interaction condition hold."""

    EACH = "each"
    """Every occurrence scores: the rule adds its points once per occurrence."""
    AT_LEAST = "at_least"
    """Holds once when there are at least ``count`` occurrences."""
    NONE = "none"
    """Holds when there is no occurrence in the window."""


# --- local validators ------------------------------------------------------------------


def _fail(where: str, value: object, fix: str) -> ValidationError:
    return ValidationError(f"{where}={value!r} is not valid: {fix}", field=where, value=value)


def _identifier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, str)
        or not value.strip()
        or value != value.strip()
        or len(value) > 200
    ):
        raise _fail(
            f"{type(instance).__name__}.{attribute.name}",
            value,
            "use a non-empty id of at most 200 characters without surrounding spaces",
        )


def _optional_identifier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _identifier(instance, attribute, value)


def _label(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise _fail(
            f"{type(instance).__name__}.{attribute.name}",
            value,
            "use text of 1 to 200 characters",
        )


def _optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > 2000):
        raise _fail(
            f"{type(instance).__name__}.{attribute.name}",
            value,
            "use text of at most 2000 characters, or None",
        )


def _whole(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{type(instance).__name__}.{attribute.name}", value, "use a whole number")


def _optional_whole(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _whole(instance, attribute, value)


def _points(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise _fail(
            "ScoringRule.points",
            value,
            "use a non-zero whole number (negative points lower the score)",
        )
    if abs(value) > MAX_POINTS:
        raise _fail("ScoringRule.points", value, f"use at most {MAX_POINTS:,} points either way")


def _version(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail("ScoringModel.version", value, "use a whole number >= 1")


def _flag(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise _fail(f"{type(instance).__name__}.{attribute.name}", value, "use True or False")


def _kind(value: object) -> InteractionKind:
    kind: InteractionKind = to_enum(
        InteractionKind, value, "InteractionCondition.kind", optional=False
    )
    return kind


def _frequency(value: object) -> Frequency:
    result: Frequency = to_enum(Frequency, value, "InteractionCondition.frequency", optional=False)
    return result


def _target(value: object) -> ScoringTarget:
    result: ScoringTarget = to_enum(ScoringTarget, value, "ScoringModel.target", optional=False)
    return result


def _window(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, timedelta) or value <= timedelta(0) or value.microseconds:
        raise _fail(
            "InteractionCondition.window",
            value,
            "use a positive timedelta of whole seconds (e.g. timedelta(days=28)), or None "
            "for all time",
        )


def _is_condition(value: object) -> bool:
    return isinstance(value, Compare | AllOf | AnyOf | Not)


# --- the definition classes ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class InteractionCondition:
    """A condition on what the scored person did: interactions of ``kind`` (and, when
    given, about ``source_id``: which email, page, event or form) within ``window``.

    Attributes:
        kind: The interaction kind counted.
        source_id: Only interactions about this source count; ``None`` counts all.
        frequency: `Frequency.EACH` (the rule scores once per occurrence),
            `Frequency.AT_LEAST` (holds once ``count`` occurrences are in the window)
            or `Frequency.NONE` (holds when there is none).
        count: The occurrences `Frequency.AT_LEAST` needs; must stay 1 otherwise.
        window: How far back interactions count (``timedelta(days=28)`` = "in the last
            28 days"): an interaction counts from its ``occurred_at`` until, not
            including, ``occurred_at + window``. ``None`` counts all time.
    """

    kind: InteractionKind = attrs.field(converter=_kind)
    source_id: str | None = attrs.field(default=None, validator=_optional_identifier)
    frequency: Frequency = attrs.field(default=Frequency.AT_LEAST, converter=_frequency)
    count: int = attrs.field(default=1, validator=_whole)
    window: timedelta | None = attrs.field(default=None, validator=_window)

    def __attrs_post_init__(self) -> None:
        if self.count < 1:
            raise _fail("InteractionCondition.count", self.count, "use a whole number >= 1")
        if self.count != 1 and self.frequency is not Frequency.AT_LEAST:
            raise _fail(
                "InteractionCondition.count",
                self.count,
                f"a count only applies to frequency 'at_least'; leave it at 1 for "
                f"{self.frequency.value!r}",
            )

    def describe(self) -> str:
        """A readable form, e.g. ``at least 3 email_opened in the last 28 days``."""
        what = self.kind.value + (f" of {self.source_id!r}" if self.source_id else "")
        when = f" in the last {_span(self.window)}" if self.window else ""
        if self.frequency is Frequency.EACH:
            return f"each {what}{when}"
        if self.frequency is Frequency.NONE:
            return f"no {what}{when}"
        return f"at least {self.count} {what}{when}"


def _span(window: timedelta) -> str:
    if window.seconds == 0:
        return f"{window.days} days" if window.days != 1 else "1 day"
    return str(window)


RuleCondition: TypeAlias = Condition | InteractionCondition
"""One condition of a rule: a prefixed field condition or an `InteractionCondition`."""


def _conditions(value: object) -> tuple[RuleCondition, ...]:
    items = tuple(value) if isinstance(value, list | tuple) else None
    if items is None:
        raise _fail("ScoringRule.conditions", value, "use a list of conditions")
    for item in items:
        if not (_is_condition(item) or isinstance(item, InteractionCondition)):
            raise _fail(
                "ScoringRule.conditions",
                item,
                "each condition is a field condition (salesflow.conditions) or an "
                "InteractionCondition",
            )
    return items


@attrs.frozen(kw_only=True)
class ScoringRule:
    """Conditions that must all hold, and the points added when they do.

    Attributes:
        id: Unique within the model; explanations name it.
        name: What the rule is about, for people ("Lives in London").
        conditions: Field conditions (``lead.*``, ``contact.*``, ``account.*``) and
            interaction conditions, ANDed; at most one of frequency ``each``.
        points: Added to the score when the rule fires (negative points subtract);
            with an ``each`` condition, added once per occurrence.
        description: Optional notes.
    """

    id: str = attrs.field(validator=_identifier)
    name: str = attrs.field(validator=_label)
    conditions: tuple[RuleCondition, ...] = attrs.field(converter=_conditions)
    points: int = attrs.field(validator=_points)
    description: str | None = attrs.field(default=None, validator=_optional_text)


@attrs.frozen(kw_only=True)
class Grade:
    """A named range of points, both ends included; ``None`` leaves an end open.

    Attributes:
        name: The grade ("cold", "warm", "hot").
        low: The lowest score in the grade, or ``None`` (the first grade only).
        high: The highest score in the grade, or ``None`` (the last grade only).
    """

    name: str = attrs.field(validator=_label)
    low: int | None = attrs.field(default=None, validator=_optional_whole)
    high: int | None = attrs.field(default=None, validator=_optional_whole)

    def __attrs_post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise _fail(
                "Grade.low",
                self.low,
                f"grade {self.name!r} starts above its end {self.high}; swap low and high",
            )

    def holds(self, points: int) -> bool:
        """True when ``points`` is in this grade's range."""
        return (self.low is None or points >= self.low) and (
            self.high is None or points <= self.high
        )


def _rules(value: object) -> tuple[ScoringRule, ...]:
    items = tuple(value) if isinstance(value, list | tuple) else None
    if items is None:
        raise _fail("ScoringModel.rules", value, "use a list of ScoringRule")
    for item in items:
        if not isinstance(item, ScoringRule):
            raise _fail("ScoringModel.rules", item, "every rule is a ScoringRule")
    return items


def _grades(value: object) -> tuple[Grade, ...]:
    items = tuple(value) if isinstance(value, list | tuple) else None
    if items is None:
        raise _fail("ScoringModel.grades", value, "use a list of Grade")
    for item in items:
        if not isinstance(item, Grade):
            raise _fail("ScoringModel.grades", item, "every grade is a Grade")
    return items


def _audience(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not _is_condition(value):
        raise _fail(
            "ScoringModel.audience",
            value,
            "use a field condition (salesflow.conditions) or None for every lead",
        )


@attrs.frozen(kw_only=True)
class ScoringModel:
    """A scoring model: one published version of a set of rules.

    Attributes:
        id: The model's id (the same across versions).
        version: Its version (>= 1); editing a published model publishes a new one.
        name: For people.
        target: `ScoringTarget.CONTACT` scores a lead with a parent contact, from that
            contact's interactions; `ScoringTarget.ACCOUNT` scores a lead with a
            parent account and no parent contact, from the interactions of every
            contact of the account. A lead with both parents is contact-based: account
            models do not score it (`NotScoredReason.CONTACT_BASED`).
        audience: Only leads for which this field condition holds are scored
            (same prefixed field names as rules); ``None`` scores every lead.
        rules: The rules, applied independently; the score is the sum of the
            points of those that fire.
        grades: Named, continuous, non-overlapping ranges of points (may be empty).
        sales_ready_threshold: A lead whose score reaches this is sales-ready.
        score_leads_without_parent: Also score leads with neither a parent contact
            nor a parent account (their missing records read as empty).
        description: Optional notes.
    """

    id: str = attrs.field(validator=_identifier)
    version: int = attrs.field(default=1, validator=_version)
    name: str = attrs.field(validator=_label)
    target: ScoringTarget = attrs.field(default=ScoringTarget.CONTACT, converter=_target)
    audience: Condition | None = attrs.field(default=None, validator=_audience)
    rules: tuple[ScoringRule, ...] = attrs.field(converter=_rules)
    grades: tuple[Grade, ...] = attrs.field(default=(), converter=_grades)
    sales_ready_threshold: int = attrs.field(validator=_whole)
    score_leads_without_parent: bool = attrs.field(default=False, validator=_flag)
    description: str | None = attrs.field(default=None, validator=_optional_text)


# --- fields ------------------------------------------------------------------------------

SCOPES: dict[str, RecordKind] = {
    "lead": RecordKind.LEAD,
    "contact": RecordKind.CONTACT,
    "account": RecordKind.ACCOUNT,
}
"""The prefixes of field names and the record each reads."""

_CUSTOM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _custom_getter(key: str) -> Callable[[Any], Any]:
    custom_of = operator.attrgetter("custom")

    def read(record: Any) -> Any:
        return custom_of(record).get(key)

    return read


_UNIONS = (typing.Union, types.UnionType)


@cache
def _declared(kind: RecordKind) -> dict[str, tuple[Any, ...]]:
    """Each field of ``kind`` 's record class and the types it holds besides ``None``."""
    from salesflow.stores.codec import RECORD_TYPES

    hints = typing.get_type_hints(RECORD_TYPES[kind])
    result = {}
    for name, hint in hints.items():
        parts = typing.get_args(hint) if typing.get_origin(hint) in _UNIONS else (hint,)
        result[name] = tuple(p for p in parts if p is not type(None))
    return result


@attrs.frozen
class FieldAccess:
    """How the compiled scorer reads one prefixed field.

    Attributes:
        scope: ``"lead"``, ``"contact"`` or ``"account"``.
        read: Reads the value from such a record (the values the shared predicate
            language compares: `Money` by amount, option sets as their text).
        attribute: The record attribute holding it (a `Money` field for ``amount`` /
            ``currency``); ``None`` for a custom field.
        part: ``"value"`` (the attribute itself), ``"amount"``, ``"currency"`` or
            ``"custom"``.
        key: The custom field's name (``part == "custom"``).
        value_type: The one type the field holds besides ``None`` when known
            (`StrEnum` option sets count as ``str``), else ``None``.
    """

    scope: str
    read: Callable[[Any], Any] = attrs.field(eq=False)
    attribute: str | None
    part: str
    key: str | None = None
    value_type: type | None = None


def field_access(name: str) -> FieldAccess:
    """How to read the prefixed field ``name`` (see `resolve_field`).

    Raises:
        ValidationError: the prefix or the field is unknown.
    """
    from salesflow.stores.base import columns_of

    scope, _, rest = name.partition(".") if isinstance(name, str) else ("", "", "")
    if scope not in SCOPES or not rest:
        raise ValidationError(
            f"field {name!r} does not say which record it reads; start it with 'lead.', "
            f"'contact.' or 'account.' (e.g. 'lead.city')",
            field=str(name),
            value=name,
        )
    kind = SCOPES[scope]
    if rest.startswith("custom."):
        key = rest[7:]
        if not _CUSTOM_KEY.match(key):
            raise ValidationError(
                f"field {name!r} names the custom field {key!r}, which is not a valid custom "
                f"field name; use letters, digits and underscores, starting with a letter",
                field=name,
                value=name,
            )
        return FieldAccess(scope, _custom_getter(key), None, "custom", key)
    columns = {c.name: c for c in columns_of(kind)}
    column = columns.get(rest)
    if column is None:
        raise ValidationError(
            f"field {name!r}: a {kind.value} has no field {rest!r}; use one of "
            f"{', '.join(sorted(columns))}, or '{scope}.custom.<name>' for a host field",
            field=name,
            value=name,
        )
    declared = _declared(kind)
    for money, part, value_type in ((rest, "amount", Decimal), (rest[:-9], "currency", str)):
        if declared.get(money) == (Money,) and (part == "amount" or rest.endswith("_currency")):
            return FieldAccess(scope, column.read, money, part, None, value_type)
    types_held = declared.get(rest, ())
    if len(types_held) == 1 and types_held[0] not in (Money, RecordRef):
        held = types_held[0]
        if isinstance(held, type) and issubclass(held, Enum):
            if not issubclass(held, StrEnum):
                # a non-text enum would not compare like its plain value
                return FieldAccess(scope, column.read, None, "column")
            held = str
        return FieldAccess(scope, operator.attrgetter(rest), rest, "value", None, held)
    return FieldAccess(scope, column.read, None, "column")


def resolve_field(name: str) -> tuple[str, Callable[[Any], Any]]:
    """Where the prefixed field ``name`` lives and how to read it.

    Args:
        name: ``lead.<field>``, ``contact.<field>`` or ``account.<field>``, where
            ``<field>`` is a queryable field or ``custom.<name>``.

    Returns:
        The scope (``"lead"``, ``"contact"`` or ``"account"``) and a function reading
        the field's value from such a record, with the values the shared predicate
        language compares (`Money` by amount).

    Raises:
        ValidationError: the prefix or the field is unknown (the message lists what
            is allowed).
    """
    access = field_access(name)
    return access.scope, access.read
