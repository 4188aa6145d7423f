"""Matching: does an incoming person already exist as a contact or a lead?

A `MatchingStrategy` names a target (contacts or leads) and the fields that must
be equal, each compared through a normalizer (`normalize`): emails trimmed and
lower-cased; phones as digits, in E.164 form when the country is known; names
and companies case-folded, accents and repeated spaces removed. The defaults are
the seeds': contacts match on email (`DEFAULT_CONTACT_STRATEGY`), leads on email
plus the form (landing page) id (`DEFAULT_LEAD_STRATEGY`), so one contact can
have one lead per form.

Every strategy includes at least one indexed field (`INDEXED_FIELDS`): ``email``,
``mobile_phone`` or ``business_phone`` (phones with the phone normalizer). The
stores index a lookup key of each (``email_key``; ``mobile_phone_key`` and
``business_phone_key``, the last 8 digits, `phone_key`), so a match is an indexed
lookup by the first indexed field the submission has, followed by the exact check
of every field on the few candidates, never a scan. A submission with none of the
strategy's indexed fields matches nothing.

This module is pure: the normalizers, strategies, their validation and the choice
among candidates (`pick`). The engine's intake (`salesflow.commands.intake`) does
the lookups.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

from salesflow.errors import ValidationError
from salesflow.values import RecordKind, normalize_email, to_enum

__all__ = [
    "CALLING_CODES",
    "DEFAULT_CONTACT_STRATEGY",
    "DEFAULT_LEAD_STRATEGY",
    "INDEXED_FIELD",
    "INDEXED_FIELDS",
    "LOOKUP_VALUES",
    "PHONE_KEY_DIGITS",
    "MatchField",
    "MatchingStrategy",
    "Normalizer",
    "lookup_value",
    "normalize",
    "phone_key",
    "pick",
    "strategy_from_dict",
    "strategy_to_dict",
]

INDEXED_FIELDS: Mapping[str, str] = {
    "email": "email_key",
    "mobile_phone": "mobile_phone_key",
    "business_phone": "business_phone_key",
}
"""Indexed field → the lookup key the stores index it by, in the order intake looks
candidates up by them (the first one a submission has a value for)."""

INDEXED_FIELD = "email"
"""The first of `INDEXED_FIELDS`. Kept for code written when it was the only one."""

PHONE_KEY_DIGITS = 8
"""How many trailing digits of a phone number its lookup key keeps (`phone_key`)."""

_PHONE_FIELDS = frozenset(name for name in INDEXED_FIELDS if name != "email")

CALLING_CODES: Mapping[str, str] = {
    # ISO 3166 alpha-2 codes and English names of the countries a phone's country
    # is most often given as; more can be added by hosts through `normalize`'s
    # ``calling_codes`` argument.
    **dict.fromkeys(("us", "usa", "united states", "ca", "canada"), "1"),
    **dict.fromkeys(("ru", "russia", "kz", "kazakhstan"), "7"),
    **dict.fromkeys(("gb", "uk", "united kingdom", "england", "scotland", "wales"), "44"),
    **dict.fromkeys(("lt", "lithuania"), "370"),
    **dict.fromkeys(("lv", "latvia"), "371"),
    **dict.fromkeys(("ee", "estonia"), "372"),
    **dict.fromkeys(("pl", "poland"), "48"),
    **dict.fromkeys(("cn", "china"), "86"),
    **dict.fromkeys(("de", "germany"), "49"),
    **dict.fromkeys(("fr", "france"), "33"),
    **dict.fromkeys(("es", "spain"), "34"),
    **dict.fromkeys(("it", "italy"), "39"),
    **dict.fromkeys(("ie", "ireland"), "353"),
    **dict.fromkeys(("nl", "netherlands"), "31"),
    **dict.fromkeys(("be", "belgium"), "32"),
    **dict.fromkeys(("ch", "switzerland"), "41"),
    **dict.fromkeys(("at", "austria"), "43"),
    **dict.fromkeys(("se", "sweden"), "46"),
    **dict.fromkeys(("no", "norway"), "47"),
    **dict.fromkeys(("dk", "denmark"), "45"),
    **dict.fromkeys(("fi", "finland"), "358"),
    **dict.fromkeys(("ua", "ukraine"), "380"),
    **dict.fromkeys(("by", "belarus"), "375"),
    **dict.fromkeys(("cz", "czechia", "czech republic"), "420"),
    **dict.fromkeys(("pt", "portugal"), "351"),
    **dict.fromkeys(("jp", "japan"), "81"),
    **dict.fromkeys(("in", "india"), "91"),
    **dict.fromkeys(("au", "australia"), "61"),
    **dict.fromkeys(("br", "brazil"), "55"),
    **dict.fromkeys(("mx", "mexico"), "52"),
}
"""Country (ISO code or English name, lower case) → international calling code."""


_TRUNK_PREFIXES: Mapping[str, str] = {"7": "8", "370": "8", "375": "8"}
"""National trunk prefixes other than the usual ``0``, by calling code."""


class Normalizer(StrEnum):
    """How a field's values are compared."""

    EXACT = "exact"
    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"


_SPACES = re.compile(r"\s+")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _name(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", plain).strip()


def _digits(text: str) -> str:
    return "".join(filter(str.isdigit, text))


def _phone(text: str, country: str | None, codes: Mapping[str, str]) -> str | None:
    digits = _digits(text)
    if not digits:
        return None
    if text.lstrip().startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    code = codes.get(country.strip().casefold()) if country else None
    if code is None:
        return digits  # no country: the digits are the best key there is
    if digits.startswith(code) and len(digits) > 10:
        return "+" + digits  # already international, written without the +
    trunk = _TRUNK_PREFIXES.get(code, "0")
    if digits.startswith(trunk):
        digits = digits[len(trunk) :]  # the national trunk prefix is not dialled from abroad
    return "+" + code + digits


def normalize(
    normalizer: Normalizer | str,
    value: Any,
    *,
    country: str | None = None,
    calling_codes: Mapping[str, str] = CALLING_CODES,
) -> str | None:
    """The matching key of ``value``; None when it is empty.

    Args:
        normalizer: How to compare (`Normalizer`).
        value: The value (anything; compared as text).
        country: The person's country, for phones (ISO code or English name).
        calling_codes: Country → calling code, for phones.

    Returns:
        ``EMAIL``: trimmed, lower-cased. ``PHONE``: ``+`` and digits (E.164) when the
        number is international or the country is known, else the digits.
        ``NAME``: case-folded, accents removed, inner spaces collapsed. ``EXACT``:
        trimmed text.
    """
    text = _text(value)
    if text is None:
        return None
    # strategies hold members already; only a host's plain string needs the lookup
    kind = normalizer if normalizer.__class__ is Normalizer else Normalizer(normalizer)
    if kind is Normalizer.EMAIL:
        return text.lower()
    if kind is Normalizer.PHONE:
        return _phone(text, country, calling_codes)
    if kind is Normalizer.NAME:
        return _name(text) or None
    return text


def phone_key(value: Any) -> str | None:
    """The lookup key of a phone number: its last `PHONE_KEY_DIGITS` digits (all of
    them when it has fewer); None when it has no digit.

    It does not depend on the country, which the stored record and the submission
    may not both know: ``+370 612 34567``, ``00370 612 34567`` and ``8 612 34567``
    share the key ``61234567``. It only finds candidates; the strategy's phone
    normalizer decides whether they are the same number (`MatchingStrategy.matches`).
    A national number of fewer digits than that is found only when both are written
    with the same digits.
    """
    if value is None:
        return None
    digits = _digits(str(value))
    return digits[-PHONE_KEY_DIGITS:] or None


def _email_key(value: Any) -> str | None:
    if value is None:
        return None
    return normalize_email(value if value.__class__ is str else str(value)) or None


LOOKUP_VALUES: Mapping[str, Callable[[Any], str | None]] = {
    "email": _email_key,
    "mobile_phone": phone_key,
    "business_phone": phone_key,
}
"""Indexed field → the function giving the lookup key of one of its values (see
`lookup_value`); the stores index records by what it returns."""


def lookup_value(name: str, value: Any) -> str | None:
    """The lookup key (`INDEXED_FIELDS`) of value ``value`` of indexed field ``name``:
    the email trimmed and lower-cased, a phone's `phone_key`; None when empty. The
    stores index records by it and intake looks candidates up by it.

    Raises:
        ValidationError: ``name`` is not one of `INDEXED_FIELDS`.
    """
    of = LOOKUP_VALUES.get(name)
    if of is None:
        raise ValidationError(
            f"{name!r} is not an indexed field; use one of {', '.join(map(repr, INDEXED_FIELDS))}",
            field="name",
            value=name,
        )
    return of(value)


def _field_name(_: Any, __: Any, value: Any) -> None:
    if not isinstance(value, str) or not value or len(value) > 100:
        raise ValidationError(
            f"MatchField.name={value!r} must be a field name (e.g. 'email', 'last_name', "
            f"'form_id' or 'custom.member_no')",
            field="MatchField.name",
            value=value,
        )


def _normalizer(value: object) -> Normalizer:
    result: Normalizer = to_enum(Normalizer, value, "MatchField.normalizer", optional=False)
    return result


def _default_normalizer(match_field: MatchField) -> Normalizer:
    # A phone field is indexed only through the phone normalizer, so it is the default.
    return Normalizer.PHONE if match_field.name in _PHONE_FIELDS else Normalizer.EXACT


@attrs.frozen(kw_only=True)
class MatchField:
    """One field a strategy compares, and how.

    Attributes:
        name: The field (``custom.<name>`` for a custom field).
        normalizer: How its values are compared: `Normalizer.PHONE` by default for
            ``mobile_phone`` and ``business_phone``, `Normalizer.EXACT` for the rest.
    """

    name: str = attrs.field(validator=_field_name)
    normalizer: Normalizer = attrs.field(
        default=attrs.Factory(_default_normalizer, takes_self=True), converter=_normalizer
    )


def _target(value: object) -> RecordKind:
    kind: RecordKind = to_enum(RecordKind, value, "MatchingStrategy.target", optional=False)
    if kind not in (RecordKind.CONTACT, RecordKind.LEAD):
        raise ValidationError(
            f"MatchingStrategy.target={kind.value!r}: strategies match contacts or leads",
            field="MatchingStrategy.target",
            value=value,
        )
    return kind


def _fields(value: object) -> tuple[MatchField, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ValidationError(
            f"MatchingStrategy.fields={value!r} must be a non-empty list of MatchField",
            field="MatchingStrategy.fields",
            value=value,
        )
    fields = tuple(
        f if isinstance(f, MatchField) else MatchField(name=f)  # a bare name: exact
        for f in value
    )
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ValidationError(
            f"MatchingStrategy.fields names a field twice: {names}",
            field="MatchingStrategy.fields",
            value=value,
        )
    if not _indexed(fields):
        phones = [f.name for f in fields if f.name in _PHONE_FIELDS]
        hint = (
            f" ({' and '.join(phones)} must use the 'phone' normalizer to be looked up by)"
            if phones
            else ""
        )
        raise ValidationError(
            f"MatchingStrategy.fields={names} must include 'email', 'mobile_phone' or "
            f"'business_phone'{hint}: matching looks candidates up by one of these fields, "
            f"which every store indexes, then compares the other fields",
            field="MatchingStrategy.fields",
            value=value,
        )
    return fields


def _indexed(fields: Sequence[MatchField]) -> tuple[str, ...]:
    """The names of ``fields`` candidates can be looked up by, in `INDEXED_FIELDS` order.

    A phone field counts only with the phone normalizer: compared another way (a
    strategy saved before phones were indexed may do so) it is an ordinary field.
    """
    by_name = {f.name: f for f in fields}
    return tuple(
        name
        for name in INDEXED_FIELDS
        if name in by_name
        and (name not in _PHONE_FIELDS or by_name[name].normalizer is Normalizer.PHONE)
    )


def _strategy_id(_: Any, __: Any, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValidationError(
            f"MatchingStrategy.id={value!r} must be a non-empty string",
            field="MatchingStrategy.id",
            value=value,
        )


def _forms(value: object) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Iterable) or not all(
        isinstance(f, str) and f.strip() and len(f) <= 200 for f in items
    ):
        raise ValidationError(
            f"MatchingStrategy.forms={value!r} must be a list of form ids (non-empty strings)",
            field="MatchingStrategy.forms",
            value=value,
        )
    return tuple(dict.fromkeys(items))


@attrs.frozen(kw_only=True)
class MatchingStrategy:
    """Records of ``target`` whose ``fields`` all equal the incoming values match.

    Attributes:
        id: The strategy's id (intake options name it).
        target: Contacts or leads.
        fields: The fields compared; must include an indexed one (`INDEXED_FIELDS`):
            ``email``, or ``mobile_phone`` / ``business_phone`` with the phone
            normalizer (their default).
        default: Whether it is its target's default (one per target).
        forms: The forms (``Submission.form_id``) whose submissions it matches when
            the intake options name no strategy: the per-form choice.
    """

    id: str = attrs.field(validator=_strategy_id)
    target: RecordKind = attrs.field(converter=_target)
    fields: tuple[MatchField, ...] = attrs.field(converter=_fields)
    default: bool = False
    forms: tuple[str, ...] = attrs.field(default=(), converter=_forms)
    indexed: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)
    """The fields candidates are looked up by, in `INDEXED_FIELDS` order (derived)."""

    _lookups: tuple[tuple[str, str, Callable[[Any], str | None]], ...] = attrs.field(
        init=False, eq=False, repr=False
    )

    @indexed.default
    def _indexed_fields(self) -> tuple[str, ...]:
        return _indexed(self.fields)

    @_lookups.default
    def _lookup_functions(self) -> tuple[tuple[str, str, Callable[[Any], str | None]], ...]:
        # (field, lookup key, its function) for each indexed field, resolved once
        return tuple((name, INDEXED_FIELDS[name], LOOKUP_VALUES[name]) for name in self.indexed)

    def keys(
        self,
        values: Callable[[str], Any],
        *,
        country: str | None = None,
        ignore_empty: bool = True,
    ) -> dict[str, str | None] | None:
        """The normalized key of each field, read with ``values``.

        Returns:
            Field → key; fields whose value is empty are left out when
            ``ignore_empty`` (else kept as None: only an empty value matches them).
            None when every indexed field (`indexed`) is empty: nothing can be
            looked up.
        """
        keys: dict[str, str | None] = {}
        indexed = self.indexed
        found = False
        for f in self.fields:
            key = normalize(f.normalizer, values(f.name), country=country)
            if key is not None:
                keys[f.name] = key
                found = found or f.name in indexed
            elif not ignore_empty:
                keys[f.name] = None
        return keys if found else None

    def lookup(self, keys: Mapping[str, str | None]) -> tuple[str, str] | None:
        """The lookup key name and value candidates for ``keys`` (from `keys`) are
        found by: those of the first indexed field that has a key.

        Returns:
            ``(lookup key, value)``, e.g. ``("mobile_phone_key", "61234567")``; None
            when no indexed field has a key.
        """
        for name, lookup, of in self._lookups:
            key = keys.get(name)
            if key is not None:
                value = of(key)
                if value is not None:
                    return lookup, value
        return None

    def matches(
        self, keys: Mapping[str, str | None], values: Callable[[str], Any], country: str | None
    ) -> bool:
        """Whether a candidate (read with ``values``) has every key of ``keys``."""
        by_name = {f.name: f for f in self.fields}
        return all(
            normalize(by_name[name].normalizer, values(name), country=country) == key
            for name, key in keys.items()
        )


DEFAULT_CONTACT_STRATEGY = MatchingStrategy(
    id="contact_email",
    target=RecordKind.CONTACT,
    fields=(MatchField(name="email", normalizer=Normalizer.EMAIL),),
    default=True,
)
"""Contacts match on email."""

DEFAULT_LEAD_STRATEGY = MatchingStrategy(
    id="lead_email_form",
    target=RecordKind.LEAD,
    fields=(
        MatchField(name="email", normalizer=Normalizer.EMAIL),
        MatchField(name="form_id", normalizer=Normalizer.EXACT),
    ),
    default=True,
)
"""Leads match on email plus the form (landing page) id."""


def pick(
    candidates: Iterable[Any],
    *,
    modified_at: Callable[[Any], datetime],
    preferred: Callable[[Any], bool] | None = None,
) -> Any | None:
    """The candidate a match takes: a preferred one (a child lead of the matched
    contact) first, then the most recently modified; ties by id, highest first.

    Returns:
        The chosen candidate, or None when there is none.
    """
    best = None
    best_key: tuple[bool, datetime, str] | None = None
    for candidate in candidates:
        key = (
            bool(preferred(candidate)) if preferred is not None else False,
            modified_at(candidate),
            str(candidate.id),
        )
        if best_key is None or key > best_key:
            best, best_key = candidate, key
    return best


def strategy_to_dict(strategy: MatchingStrategy) -> dict[str, Any]:
    """The strategy as JSON values."""
    return {
        "id": strategy.id,
        "target": strategy.target.value,
        "fields": [{"name": f.name, "normalizer": f.normalizer.value} for f in strategy.fields],
        "default": strategy.default,
        "forms": list(strategy.forms),
    }


def strategy_from_dict(data: Mapping[str, Any]) -> MatchingStrategy:
    """The strategy of a document written by `strategy_to_dict`.

    Raises:
        ValidationError: the document is malformed.
    """
    try:
        return MatchingStrategy(
            id=data["id"],
            target=data["target"],
            fields=tuple(
                MatchField(name=f["name"], normalizer=f["normalizer"]) for f in data["fields"]
            ),
            default=bool(data.get("default", False)),
            forms=tuple(data.get("forms", ())),
        )
    except (KeyError, TypeError) as exc:
        raise ValidationError(
            f"matching strategy document is malformed: {exc}",
            field="strategy",
            value=dict(data) if isinstance(data, Mapping) else data,
        ) from exc
