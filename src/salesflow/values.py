"""Value types shared by every record: money, record references, custom fields,
and the attrs validators and converters that guard record fields.

Validators raise `ValidationError` with the class, the field, the value and the
fix, so a host can show the message as it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from types import MemberDescriptorType
from typing import Any, ClassVar, TypeAlias, TypeVar

import attrs

from salesflow.errors import ValidationError

__all__ = [
    "CustomValue",
    "Money",
    "OwnerType",
    "RecordKind",
    "RecordRef",
    "check_fields",
    "check_fields_fast",
    "custom_fields_fast",
    "evolve_fields",
    "normalize_email",
    "normalize_name",
    "ref_of",
    "shallow_copy",
]

CustomValue: TypeAlias = str | int | float | bool | Decimal | date | datetime | None
"""What a host may keep in a record's ``custom`` mapping."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CUSTOM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

E = TypeVar("E", bound=Enum)


class RecordKind(StrEnum):
    """The kinds of record salesflow stores and links together."""

    LEAD = "lead"
    CONTACT = "contact"
    ACCOUNT = "account"
    OPPORTUNITY = "opportunity"
    ACTIVITY = "activity"


class OwnerType(StrEnum):
    """Whether a record is owned by one user or by a team."""

    USER = "user"
    TEAM = "team"


def _where(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _fail(where: str, value: object, fix: str) -> ValidationError:
    return ValidationError(f"{where}={value!r} is not valid: {fix}", field=where, value=value)


def _record_kind(value: object) -> RecordKind:
    result: RecordKind = to_enum(RecordKind, value, "RecordRef.kind", optional=False)
    return result


@attrs.frozen(kw_only=True)
class RecordRef:
    """A typed pointer to one record: its kind and its id."""

    kind: RecordKind = attrs.field(converter=_record_kind)
    id: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"


def _to_decimal(value: Decimal | int | str) -> Decimal:
    if isinstance(value, float | bool):
        raise ValidationError(
            f"Money.amount={value!r} is a {type(value).__name__}; money is exact: pass a "
            f"Decimal, an int or a string such as '1250.00'",
            field="Money.amount",
            value=value,
        )
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError(
            f"Money.amount={value!r} is not a number; pass a Decimal, an int or a "
            f"string such as '1250.00'",
            field="Money.amount",
            value=value,
        ) from None
    if not amount.is_finite():
        raise ValidationError(
            f"Money.amount={value!r} must be a finite number",
            field="Money.amount",
            value=value,
        )
    return amount


def _check_currency(_: object, __: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise ValidationError(
            f"Money.currency={value!r} is not an ISO 4217 code; use three capital "
            f"letters such as 'EUR' or 'USD'",
            field="Money.currency",
            value=value,
        )


@attrs.frozen(kw_only=True)
class Money:
    """An exact amount in one currency. Floats are refused."""

    amount: Decimal = attrs.field(converter=_to_decimal)
    currency: str = attrs.field(validator=_check_currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def normalize_email(value: str) -> str:
    """The matching key of an email address: trimmed and lower-cased."""
    return value.strip().lower()


def normalize_name(value: str) -> str:
    """The matching key of a name: case-folded, inner whitespace collapsed."""
    return " ".join(value.casefold().split())


# --- converters and validators used by the record classes -------------------------


def text(value: object) -> str | None:
    """Converter: strip strings; an empty string becomes ``None``."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return value  # type: ignore[return-value]  # the validator reports the wrong type


def optional_text(max_len: int) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """Validator: ``None`` or a string of at most ``max_len`` characters."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        where = _where(instance, attribute)
        if not isinstance(value, str):
            raise _fail(where, value, f"it must be text, not {type(value).__name__}")
        if len(value) > max_len:
            raise _fail(
                where,
                value[:40] + "…",
                f"it has {len(value)} characters; the limit is {max_len}",
            )

    return check


def required_text(max_len: int) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """Validator: a non-empty string of at most ``max_len`` characters."""
    optional = optional_text(max_len)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            where = _where(instance, attribute)
            raise ValidationError(
                f"{where} is required; give a non-empty value of at most {max_len} characters",
                field=where,
                value=value,
            )
        optional(instance, attribute, value)

    return check


def email(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: ``None`` or something shaped like ``name@example.com``."""
    if value is None:
        return
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.match(value):
        raise _fail(_where(instance, attribute), value, "give an address like 'name@example.com'")


def aware(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: a timezone-aware datetime."""
    where = _where(instance, attribute)
    if not isinstance(value, datetime):
        raise _fail(where, value, "it must be a timezone-aware datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _fail(
            where,
            value,
            "it is a naive datetime; attach a time zone (tzinfo=datetime.UTC or a ZoneInfo)",
        )


def utc(value: object) -> Any:
    """Converter: an aware datetime becomes the same instant in UTC (stores keep UTC)."""
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(UTC)
    return value


def optional_aware(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: ``None`` or a timezone-aware datetime."""
    if value is not None:
        aware(instance, attribute, value)


def optional_date(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: ``None`` or a calendar date (not a datetime)."""
    if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
        raise _fail(_where(instance, attribute), value, "it must be a datetime.date")


def optional_money(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: ``None`` or a `Money` value."""
    if value is not None and not isinstance(value, Money):
        raise _fail(
            _where(instance, attribute),
            value,
            "wrap amounts in Money(amount=Decimal('…'), currency='EUR')",
        )


def count(max_value: int) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """Validator: ``None`` or an int between 0 and ``max_value``."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= max_value:
            raise _fail(
                _where(instance, attribute),
                value,
                f"give a whole number between 0 and {max_value}",
            )

    return check


def flag(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: a real ``bool`` (``1`` or ``'yes'`` are refused)."""
    if not isinstance(value, bool):
        raise _fail(_where(instance, attribute), value, "give True or False")


def to_enum(enum_cls: type[E], value: object, where: str, *, optional: bool = True) -> Any:
    """Converter body: a member of ``enum_cls`` from itself or its value.

    Raises:
        ValidationError: the value is not one of the enum's values (the message
            lists them).
    """
    if value is None and optional:
        return None
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_cls)
        raise _fail(where, value, f"choose one of {allowed}") from None


def custom_fields(value: object) -> dict[str, CustomValue]:
    """Converter: copy a host's custom mapping, checking keys and value types."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"custom={value!r} must be a mapping of field name to value",
            field="custom",
            value=value,
        )
    result: dict[str, CustomValue] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _CUSTOM_KEY.match(key):
            raise ValidationError(
                f"custom field name {key!r} is not valid; use letters, digits and "
                f"underscores, starting with a letter (at most 64 characters)",
                field=f"custom.{key}",
                value=key,
            )
        if item is not None and not isinstance(
            item, str | int | float | bool | Decimal | date | datetime
        ):
            raise ValidationError(
                f"custom.{key}={item!r} has type {type(item).__name__}; custom values are "
                f"str, int, float, bool, Decimal, date, datetime or None",
                field=f"custom.{key}",
                value=item,
            )
        if isinstance(item, float | Decimal) and not math.isfinite(item):
            raise ValidationError(
                f"custom.{key}={item!r} is not a finite number; stores cannot keep NaN or infinity",
                field=f"custom.{key}",
                value=item,
            )
        if isinstance(item, datetime) and (item.tzinfo is None or item.utcoffset() is None):
            raise ValidationError(
                f"custom.{key}={item!r} is a naive datetime; attach a time zone",
                field=f"custom.{key}",
                value=item,
            )
        if isinstance(item, datetime):
            item = item.astimezone(UTC)
        if isinstance(item, str) and len(item) > 4000:
            raise ValidationError(
                f"custom.{key} has {len(item)} characters; the limit is 4000",
                field=f"custom.{key}",
                value=item[:40],
            )
        result[key] = item
    return result


def is_identifier(value: object) -> bool:
    """Whether ``value`` is an id: a non-empty string of at most 200 characters without
    surrounding spaces."""
    return isinstance(value, str) and bool(value) and value == value.strip() and len(value) <= 200


def identifier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: a non-empty id string without surrounding spaces."""
    if not is_identifier(value):
        raise _fail(
            _where(instance, attribute),
            value,
            "ids are non-empty strings of at most 200 characters without surrounding spaces",
        )


def optional_identifier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: ``None`` or an id string."""
    if value is not None:
        identifier(instance, attribute, value)


def check_fields(
    cls: type, fields: Mapping[str, Any], system: frozenset[str], *, creating: bool
) -> None:
    """Refuse field names ``cls`` does not let a host set, and (when ``creating``)
    required fields that are missing.

    Raises:
        ValidationError: naming the field and listing what is allowed.
    """
    kind = cls.__name__
    editable = frozenset(a.name for a in attrs.fields(cls) if a.name not in system)
    unknown = sorted(set(fields) - editable)
    if unknown:
        raise ValidationError(
            f"{kind} has no editable field {', '.join(repr(u) for u in unknown)}; editable "
            f"fields are {', '.join(sorted(editable))} (host fields go in custom={{...}})",
            field=f"{kind}.{unknown[0]}",
            value=unknown[0],
        )
    if creating:
        required = [
            a.name
            for a in attrs.fields(cls)
            if a.name in editable and a.default is attrs.NOTHING and a.name not in fields
        ]
        if required:
            raise ValidationError(
                f"{kind}.{required[0]} is required; pass {', '.join(required)}=... to create "
                f"a {kind}",
                field=f"{kind}.{required[0]}",
                value=None,
            )


@attrs.define(kw_only=True)
class Record:
    """Fields every stored record has: identity, version, timestamps, custom fields.

    ``version`` is the optimistic-concurrency counter: it is 1 when the record is
    created and grows by one with every stored change. ``custom`` holds the host's
    own fields (``str``, ``int``, ``float``, ``bool``, ``Decimal``, ``date``,
    aware ``datetime`` or ``None``) without subclassing.
    """

    KIND: ClassVar[RecordKind]

    id: str = attrs.field(validator=identifier)
    version: int = attrs.field(default=1, validator=count(2**62))
    created_at: datetime = attrs.field(converter=utc, validator=aware)
    modified_at: datetime = attrs.field(converter=utc, validator=aware)
    custom: dict[str, CustomValue] = attrs.field(factory=dict, converter=custom_fields)

    @property
    def ref(self) -> RecordRef:
        """A `RecordRef` that points at this record."""
        return RecordRef(kind=self.KIND, id=self.id)


# --- copies and trusted changes of attrs instances --------------------------------

_T = TypeVar("_T")

_COPIERS: dict[type, Callable[[Any], Any]] = {}


def _setters(cls: type, namespace: dict[str, Any]) -> dict[str, str]:
    """For each field, the name under which ``namespace`` gets a function that sets
    it on an instance without running the class's ``__setattr__`` hooks: the slot's
    own descriptor (``object.__setattr__`` looks the descriptor up on every call,
    which makes it several times slower), or ``object.__setattr__`` for a field
    without a slot."""
    names: dict[str, str] = {}
    namespace["_set"] = object.__setattr__
    for i, a in enumerate(attrs.fields(cls)):
        slot = next((k.__dict__[a.name] for k in cls.__mro__ if a.name in k.__dict__), None)
        if isinstance(slot, MemberDescriptorType):
            namespace[f"_slot_{i}"] = slot.__set__
            names[a.name] = f"_slot_{i}(twin, "
        else:
            names[a.name] = f"_set(twin, {a.name!r}, "
    return names


def _copier(cls: type) -> Callable[[Any], Any]:
    # One straight-line function per class: no loop over the fields, no getattr and
    # no descriptor look-up per field, about three times faster than a loop.
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    setattr_hook: object = cls.__setattr__
    if setattr_hook is object.__setattr__:
        # no hooks to step around (no validator, converter or frozen field, as on an
        # enrollment): a plain assignment is the quickest way into a slot
        body = "".join(f"    twin.{a.name} = value.{a.name}\n" for a in attrs.fields(cls))
    else:
        setters = _setters(cls, namespace)
        body = "".join(f"    {setter}value.{name})\n" for name, setter in setters.items())
    source = f"def copy(value):\n    twin = _new(_cls)\n{body}    return twin\n"
    exec(source, namespace)  # the source is built from the class's own field names
    copy: Callable[[Any], Any] = namespace["copy"]
    return copy


def shallow_copy(value: _T) -> _T:
    """A shallow copy of an attrs instance that runs none of its converters or
    validators: its values were checked when it was built.

    For copies of records that stay as they are (stores copying in and out); the
    copy shares mutable field values (``custom`` dicts, mappings) with ``value``, so
    copy those too when a holder could change them in place.
    """
    cls = type(value)
    copier = _COPIERS.get(cls)
    if copier is None:
        copier = _COPIERS[cls] = _copier(cls)
    twin: _T = copier(value)
    return twin


_EVOLVERS: dict[tuple[type, tuple[str, ...]], Callable[..., Any]] = {}


def _evolver(cls: type, names: tuple[str, ...]) -> Callable[..., Any]:
    """A function ``(value, *new_values)`` that copies ``value`` with the fields
    ``names`` set to the new values, converted and validated as the class does it
    (converters first, then validators, as attrs' own ``__init__``); straight-line
    code generated once per class and set of changed fields."""
    fields = {a.name: a for a in attrs.fields(cls)}
    unknown = [name for name in names if name not in fields or not fields[name].init]
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {unknown[0]!r} to change")
    if hasattr(cls, "__attrs_post_init__") or hasattr(cls, "__attrs_pre_init__"):
        # checks across fields run only when the whole instance is built
        return lambda value, *new: attrs.evolve(value, **dict(zip(names, new, strict=True)))
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_cls": cls,
        "_disabled": attrs.validators.get_disabled,
    }
    setters = _setters(cls, namespace)
    lines = ["def evolve(value, " + ", ".join(f"new_{i}" for i in range(len(names))) + "):"]
    lines.append("    twin = _new(_cls)")
    for name, a in fields.items():
        if name in names:
            continue
        if a.converter is not None and any(w in str(a.type) for w in ("dict", "list", "set")):
            # attrs.evolve hands the old value to the converter, which makes a new
            # container (a record's custom dict): the copy must not share it either
            lines.append(f"    held = value.{name}")
            lines.append("    if type(held) in (dict, list, set):")
            lines.append("        held = type(held)(held)")
            lines.append(f"    {setters[name]}held)")
        else:
            lines.append(f"    {setters[name]}value.{name})")
    checks = []
    # in the class's field order, as attrs converts and validates: with several bad
    # values, the same one is reported
    order = list(fields)
    for i, name in sorted(enumerate(names), key=lambda pair: order.index(pair[1])):
        a = fields[name]
        converter = a.converter
        if converter is not None and (
            isinstance(converter, attrs.Converter) or not callable(converter)
        ):
            return lambda value, *new: attrs.evolve(value, **dict(zip(names, new, strict=True)))
        if converter is not None:
            namespace[f"_conv_{i}"] = converter
            lines.append(f"    {setters[name]}_conv_{i}(new_{i}))")
        else:
            lines.append(f"    {setters[name]}new_{i})")
        if a.validator is not None:
            namespace[f"_val_{i}"] = a.validator
            namespace[f"_attr_{i}"] = a
            checks.append(f"        _val_{i}(twin, _attr_{i}, twin.{name})")
    if checks:
        lines.append("    if not _disabled():")
        lines.extend(checks)
    lines.append("    return twin")
    exec("\n".join(lines) + "\n", namespace)  # built from the class's own field names
    evolve: Callable[..., Any] = namespace["evolve"]
    return evolve


def evolve_fields(value: _T, **changes: Any) -> _T:
    """`attrs.evolve` for changes the engine makes to an already valid instance: a
    copy with ``changes`` applied, running the converters and validators of the
    changed fields only.

    `attrs.evolve` builds a new instance from scratch, so every field of a record is
    converted and validated again on every change; the unchanged fields were checked
    when ``value`` was built (and, on the mutable entities, on every assignment), so
    checking them again finds nothing. The changed fields are checked exactly as the
    class checks them, so a bad value is refused with the same error.

    Raises:
        TypeError: ``changes`` names a field ``value`` does not have.
        ValidationError: a changed value is refused by its field's validator or
            converter.
    """
    key = (type(value), tuple(changes))
    evolve = _EVOLVERS.get(key)
    if evolve is None:
        evolve = _EVOLVERS[key] = _evolver(*key)
    twin: _T = evolve(value, *changes.values())
    return twin


def ref_of(record: Record) -> RecordRef:
    """``record.ref`` without running `RecordRef`'s converter: the kind is the
    record class's own `RecordKind` member, so there is nothing to convert. For
    the engine's bookkeeping, which takes a record's reference on every write."""
    ref = object.__new__(RecordRef)
    object.__setattr__(ref, "kind", record.KIND)
    object.__setattr__(ref, "id", record.id)
    return ref


_FIELD_SETS: dict[tuple[type, frozenset[str]], tuple[frozenset[str], frozenset[str]]] = {}


def check_fields_fast(
    cls: type, fields: Mapping[str, Any], system: frozenset[str], *, creating: bool
) -> None:
    """`check_fields` with the class's editable and required field names worked out
    once per class: fields that pass cost two set comparisons; anything else goes to
    `check_fields`, which raises its error.

    Raises:
        ValidationError: as `check_fields`.
    """
    key = (cls, system)
    sets = _FIELD_SETS.get(key)
    if sets is None:
        editable = frozenset(a.name for a in attrs.fields(cls) if a.name not in system)
        required = frozenset(
            a.name for a in attrs.fields(cls) if a.name in editable and a.default is attrs.NOTHING
        )
        sets = _FIELD_SETS[key] = (editable, required)
    names = fields.keys()
    if names <= sets[0] and (not creating or sets[1] <= names):
        return
    check_fields(cls, fields, system, creating=creating)


_GOOD_KEYS: set[str] = set()


def custom_fields_fast(value: Mapping[str, Any]) -> dict[str, CustomValue]:
    """`custom_fields` for the engine's own tags (text values under fixed names): the
    same result, checked without the general converter's type tests. Keys seen valid
    before skip the name check; anything but short texts under valid names goes to
    `custom_fields`, which converts it or raises its error.

    Raises:
        ValidationError: as `custom_fields`.
    """
    result: dict[str, CustomValue] = {}
    for key, item in value.items():
        if (
            type(item) is not str
            or len(item) > 4000
            or (key not in _GOOD_KEYS and (type(key) is not str or not _CUSTOM_KEY.match(key)))
        ):
            return custom_fields(value)
        if len(_GOOD_KEYS) < 1024:
            _GOOD_KEYS.add(key)
        result[key] = item
    return result
