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
    "normalize_email",
    "normalize_name",
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


def identifier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Validator: a non-empty id string without surrounding spaces."""
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > 200:
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
