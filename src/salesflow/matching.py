"""Matching: does an incoming person already exist as a contact or a lead?

A `MatchingStrategy` names a target (contacts or leads) and the fields that must
be equal, each compared through a normalizer (`normalize`): emails trimmed and
lower-cased; phones as digits, in E.164 form when the country is known; names
and companies case-folded, accents and repeated spaces removed. The defaults are
the seeds': contacts match on email (`DEFAULT_CONTACT_STRATEGY`), leads on email
plus the form (landing page) id (`DEFAULT_LEAD_STRATEGY`), so one contact can
have one lead per form.

A strategy with a main condition (``any_of``, the product's newer rules) matches a
record when ANY of the main condition's indexed fields is equal and ALL of its
``fields``, then additional conditions, hold; an additional condition may compare
by similarity (`Similarity`, `similar`) instead of equality.

Every strategy includes at least one indexed field (`INDEXED_FIELDS`): ``email``,
``mobile_phone`` or ``business_phone`` (phones with the phone normalizer), among
its fields or as its main condition. The stores index a lookup key of each
(``email_key``; ``mobile_phone_key`` and ``business_phone_key``, the last 8 digits,
`phone_key`), so a match is an indexed lookup by the first indexed field the
submission has (by each of the main condition's it has), followed by the check of
every condition on the few candidates, never a scan. A submission with none of the
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
from salesflow.similarity import SIMILARITY_THRESHOLDS, Similarity, similar, similarity_ratio
from salesflow.values import RecordKind, normalize_email, to_enum

__all__ = [
    "CALLING_CODES",
    "DEFAULT_CONTACT_STRATEGY",
    "DEFAULT_LEAD_STRATEGY",
    "INDEXED_FIELD",
    "INDEXED_FIELDS",
    "LOOKUP_VALUES",
    "PHONE_KEY_DIGITS",
    "SIMILARITY_THRESHOLDS",
    "MatchField",
    "MatchingStrategy",
    "Normalizer",
    "Similarity",
    "lookup_value",
    "normalize",
    "phone_key",
    "pick",
    "similar",
    "similarity_ratio",
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


_EXACT = Similarity.EXACT

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


def _similarity(value: object) -> Similarity:
    result: Similarity = to_enum(Similarity, value, "MatchField.similarity", optional=False)
    return result


@attrs.frozen(kw_only=True)
class MatchField:
    """One field a strategy compares, and how.

    Attributes:
        name: The field (``custom.<name>`` for a custom field).
        normalizer: How its values are compared: `Normalizer.PHONE` by default for
            ``mobile_phone`` and ``business_phone``, `Normalizer.EXACT` for the rest.
        similarity: How alike the normalized values must be (`Similarity`): equal
            by default; a non-exact one only in an additional condition (a strategy
            with ``any_of``).
    """

    name: str = attrs.field(validator=_field_name)
    normalizer: Normalizer = attrs.field(
        default=attrs.Factory(_default_normalizer, takes_self=True), converter=_normalizer
    )
    similarity: Similarity = attrs.field(default=Similarity.EXACT, converter=_similarity)


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
    if not isinstance(value, Sequence) or isinstance(value, str):
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
    return fields


def _check_fields(strategy: MatchingStrategy, _: Any, fields: tuple[MatchField, ...]) -> None:
    """What a strategy's fields need, which depends on its main condition (attrs runs
    validators once every attribute is set, so ``any_of`` is known here)."""
    if strategy.any_of:
        twice = [f.name for f in fields if f.name in strategy.any_of]
        if twice:
            raise ValidationError(
                f"MatchingStrategy.fields names {twice}, which the main condition "
                f"any_of={list(strategy.any_of)} already compares; take it out of one of them",
                field="MatchingStrategy.fields",
                value=fields,
            )
        return
    if not fields:
        raise ValidationError(
            f"MatchingStrategy.fields={list(fields)!r} must be a non-empty list of MatchField "
            f"(or give the strategy a main condition, any_of)",
            field="MatchingStrategy.fields",
            value=fields,
        )
    alike = [f"{f.name} ({f.similarity.value})" for f in fields if f.similarity is not _EXACT]
    if alike:
        raise ValidationError(
            f"MatchingStrategy.fields: {', '.join(alike)} compare by similarity, which only "
            f"additional conditions do: a strategy without a main condition compares every "
            f"field exactly. Give it a main condition (e.g. any_of=['email']) and keep these "
            f"among its fields, or make them exact",
            field="MatchingStrategy.fields",
            value=fields,
        )
    if not _indexed(fields):
        phones = [f.name for f in fields if f.name in _PHONE_FIELDS]
        hint = (
            f" ({' and '.join(phones)} must use the 'phone' normalizer to be looked up by)"
            if phones
            else ""
        )
        names = [f.name for f in fields]
        raise ValidationError(
            f"MatchingStrategy.fields={names} must include 'email', 'mobile_phone' or "
            f"'business_phone'{hint}: matching looks candidates up by one of these fields, "
            f"which every store indexes, then compares the other fields",
            field="MatchingStrategy.fields",
            value=fields,
        )


_MAIN_NORMALIZERS: Mapping[str, Normalizer] = {
    name: Normalizer.EMAIL if name == "email" else Normalizer.PHONE for name in INDEXED_FIELDS
}
"""How a main condition compares each indexed field: through the normalizer its
lookup key is computed from, so that equal values share the key."""


def _any_of(value: object) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    allowed = ", ".join(map(repr, INDEXED_FIELDS))
    if not isinstance(items, Iterable):
        raise ValidationError(
            f"MatchingStrategy.any_of={value!r} must be a list of indexed fields: {allowed}",
            field="MatchingStrategy.any_of",
            value=value,
        )
    names = tuple(items)
    other = [name for name in names if name not in INDEXED_FIELDS]
    if other:
        raise ValidationError(
            f"MatchingStrategy.any_of={list(names)!r}: {', '.join(map(repr, other))} cannot be "
            f"in the main condition, which looks candidates up by each of its fields; use "
            f"{allowed}, and compare other fields in additional conditions (fields)",
            field="MatchingStrategy.any_of",
            value=value,
        )
    return tuple(dict.fromkeys(names))


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
    """Records of ``target`` whose ``fields`` all equal the incoming values match;
    with a main condition (``any_of``), records that have ANY of its fields equal
    and whose ``fields`` ALL hold.

    Attributes:
        id: The strategy's id (intake options name it).
        target: Contacts or leads.
        fields: Without ``any_of``, the fields compared, all exactly; they must
            include an indexed one (`INDEXED_FIELDS`): ``email``, or
            ``mobile_phone`` / ``business_phone`` with the phone normalizer (their
            default). With ``any_of``, the additional conditions, which may be
            none and may compare by similarity (`MatchField.similarity`).
        default: Whether it is its target's default (one per target).
        forms: The forms (``Submission.form_id``) whose submissions it matches when
            the intake options name no strategy: the per-form choice.
        any_of: The main condition: indexed fields (`INDEXED_FIELDS`) of which one
            being equal is enough (email lower-cased, phones in E.164 form with the
            submission's country). Candidates are looked up by every one the
            submission has. Empty (the default): the legacy rule above.
    """

    id: str = attrs.field(validator=_strategy_id)
    target: RecordKind = attrs.field(converter=_target)
    fields: tuple[MatchField, ...] = attrs.field(
        default=(), converter=_fields, validator=_check_fields
    )
    default: bool = False
    forms: tuple[str, ...] = attrs.field(default=(), converter=_forms)
    any_of: tuple[str, ...] = attrs.field(default=(), converter=_any_of)
    indexed: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)
    """The fields candidates are looked up by, in `INDEXED_FIELDS` order (derived):
    ``any_of``'s when it is set."""

    _lookups: tuple[tuple[str, str, Callable[[Any], str | None]], ...] = attrs.field(
        init=False, eq=False, repr=False
    )
    _normalizers: Mapping[str, tuple[Normalizer, Similarity]] = attrs.field(
        init=False, eq=False, repr=False
    )

    @indexed.default
    def _indexed_fields(self) -> tuple[str, ...]:
        if self.any_of:
            return tuple(name for name in INDEXED_FIELDS if name in self.any_of)
        return _indexed(self.fields)

    @_lookups.default
    def _lookup_functions(self) -> tuple[tuple[str, str, Callable[[Any], str | None]], ...]:
        # (field, lookup key, its function) for each indexed field, resolved once
        return tuple((name, INDEXED_FIELDS[name], LOOKUP_VALUES[name]) for name in self.indexed)

    @_normalizers.default
    def _field_normalizers(self) -> Mapping[str, tuple[Normalizer, Similarity]]:
        # field → how it is compared, main condition and additional ones alike
        main = {name: (_MAIN_NORMALIZERS[name], _EXACT) for name in self.any_of}
        return {**main, **{f.name: (f.normalizer, f.similarity) for f in self.fields}}

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
            ``ignore_empty`` (else kept as None: only an empty value matches them;
            an empty field of the main condition is always left out, since it
            cannot be looked up). None when every indexed field (`indexed`) is
            empty: nothing can be looked up.
        """
        keys: dict[str, str | None] = {}
        indexed = self.indexed
        found = False
        for name in self.any_of:
            key = normalize(_MAIN_NORMALIZERS[name], values(name), country=country)
            if key is not None:
                keys[name] = key
                found = True
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

    def lookups(self, keys: Mapping[str, str | None]) -> tuple[tuple[str, str], ...]:
        """Every ``(lookup key, value)`` candidates for ``keys`` are found by: one
        per indexed field that has a key with a main condition (``any_of``), which
        is met by any of them; `lookup`'s one without."""
        if not self.any_of:
            one = self.lookup(keys)
            return () if one is None else (one,)
        found: list[tuple[str, str]] = []
        for name, lookup, of in self._lookups:
            key = keys.get(name)
            value = None if key is None else of(key)
            if value is not None:
                found.append((lookup, value))
        return tuple(found)

    def matches(
        self, keys: Mapping[str, str | None], values: Callable[[str], Any], country: str | None
    ) -> bool:
        """Whether a candidate (read with ``values``) has every key of ``keys``; with
        a main condition, any of its keys and every other one (`matched_by`)."""
        if self.any_of:
            return self.matched_by(keys, values, country) is not None
        by_name = {f.name: f for f in self.fields}
        return all(
            normalize(by_name[name].normalizer, values(name), country=country) == key
            for name, key in keys.items()
        )

    def matched_by(
        self, keys: Mapping[str, str | None], values: Callable[[str], Any], country: str | None
    ) -> str | None:
        """The main condition's field (``any_of``, in its order) a candidate (read
        with ``values``) matches ``keys`` (from `keys`) by, when every additional
        condition holds as well; None when it does not match.

        A strategy without a main condition has its first indexed field with a
        key (`indexed`) returned when it `matches`.
        """
        how = self._normalizers
        if not self.any_of:
            if not self.matches(keys, values, country):
                return None
            return next((name for name in self.indexed if keys.get(name) is not None), None)
        by = None
        for name in self.any_of:
            key = keys.get(name)
            if key is not None and normalize(how[name][0], values(name), country=country) == key:
                by = name
                break
        if by is None:
            return None
        for name, key in keys.items():
            if name in self.any_of:
                continue
            normalizer, similarity = how[name]
            if not similar(similarity, key, normalize(normalizer, values(name), country=country)):
                return None
        return by


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


def _field_to_dict(match_field: MatchField) -> dict[str, Any]:
    data: dict[str, Any] = {"name": match_field.name, "normalizer": match_field.normalizer.value}
    if match_field.similarity is not _EXACT:
        data["similarity"] = match_field.similarity.value
    return data


def strategy_to_dict(strategy: MatchingStrategy) -> dict[str, Any]:
    """The strategy as JSON values.

    A strategy without a main condition or similarity is written as before they
    existed (no ``any_of`` key, no field ``similarity``), so a legacy strategy's
    document does not change.
    """
    data: dict[str, Any] = {
        "id": strategy.id,
        "target": strategy.target.value,
        "fields": [_field_to_dict(f) for f in strategy.fields],
        "default": strategy.default,
        "forms": list(strategy.forms),
    }
    if strategy.any_of:
        data["any_of"] = list(strategy.any_of)
    return data


def strategy_from_dict(data: Mapping[str, Any]) -> MatchingStrategy:
    """The strategy of a document written by `strategy_to_dict` (one written before
    main conditions and similarity existed reads as the legacy strategy it was).

    Raises:
        ValidationError: the document is malformed.
    """
    try:
        return MatchingStrategy(
            id=data["id"],
            target=data["target"],
            fields=tuple(
                MatchField(
                    name=f["name"],
                    normalizer=f["normalizer"],
                    similarity=f.get("similarity", _EXACT),
                )
                for f in data["fields"]
            ),
            default=bool(data.get("default", False)),
            forms=tuple(data.get("forms", ())),
            any_of=data.get("any_of", ()),
        )
    except (KeyError, TypeError) as exc:
        raise ValidationError(
            f"matching strategy document is malformed: {exc}",
            field="strategy",
            value=dict(data) if isinstance(data, Mapping) else data,
        ) from exc
