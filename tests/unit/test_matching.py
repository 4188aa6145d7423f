"""Matching: normalizers, strategies, the choice among candidates."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from salesflow.errors import ValidationError
from salesflow.matching import (
    DEFAULT_CONTACT_STRATEGY,
    DEFAULT_LEAD_STRATEGY,
    MatchField,
    MatchingStrategy,
    Normalizer,
    normalize,
    pick,
    strategy_from_dict,
    strategy_to_dict,
)
from salesflow.values import RecordKind


@pytest.mark.parametrize(
    ("normalizer", "value", "country", "key"),
    [
        (Normalizer.EMAIL, "  Ana.Ruiz@Contoso.EXAMPLE ", None, "ana.ruiz@contoso.example"),
        (Normalizer.EMAIL, "   ", None, None),
        (Normalizer.EMAIL, None, None, None),
        (Normalizer.PHONE, "+370 612 34567", None, "+37061234567"),
        (Normalizer.PHONE, "00370 (612) 34-567", None, "+37061234567"),
        (Normalizer.PHONE, "8 612 34567", "Lithuania", "+37061234567"),
        (Normalizer.PHONE, "8 612 34567", "LT", "+37061234567"),
        (Normalizer.PHONE, "020 7946 0018", "United Kingdom", "+442079460018"),
        (Normalizer.PHONE, "(555) 123-4567", "US", "+15551234567"),
        (Normalizer.PHONE, "1-555-123-4567", "us", "+15551234567"),
        (Normalizer.PHONE, "612 34567", None, "61234567"),
        (Normalizer.PHONE, "ext.", None, None),
        (Normalizer.NAME, "  Žygimantas   ŁUKASZ-Müller ", None, "zygimantas łukasz-muller"),
        (Normalizer.NAME, "Contoso\tLtd", None, "contoso ltd"),
        (Normalizer.EXACT, " Form-7 ", None, "Form-7"),
        (Normalizer.EXACT, 42, None, "42"),
    ],
)
def test_normalizers(normalizer: Normalizer, value: object, country: str | None, key: str) -> None:
    assert normalize(normalizer, value, country=country) == key


def test_the_defaults_are_the_seeds() -> None:
    assert DEFAULT_CONTACT_STRATEGY.target is RecordKind.CONTACT
    assert [f.name for f in DEFAULT_CONTACT_STRATEGY.fields] == ["email"]
    assert DEFAULT_LEAD_STRATEGY.target is RecordKind.LEAD
    assert [f.name for f in DEFAULT_LEAD_STRATEGY.fields] == ["email", "form_id"]


def test_a_strategy_must_include_an_indexed_field() -> None:
    with pytest.raises(ValidationError, match="must include 'email', 'mobile_phone' or 'busi"):
        MatchingStrategy(id="by_name", target="contact", fields=[MatchField(name="last_name")])
    with pytest.raises(ValidationError, match="mobile_phone must use the 'phone' normalizer"):
        MatchingStrategy(
            id="by_phone_text",
            target="contact",
            fields=[MatchField(name="mobile_phone", normalizer="exact")],
        )
    with pytest.raises(ValidationError, match="contacts or leads"):
        MatchingStrategy(id="x", target="account", fields=["email"])
    with pytest.raises(ValidationError, match="twice"):
        MatchingStrategy(id="x", target="lead", fields=["email", "email"])
    with pytest.raises(ValidationError, match="non-empty list"):
        MatchingStrategy(id="x", target="lead", fields=[])


def test_keys_and_matches_compare_normalized_values() -> None:
    strategy = MatchingStrategy(
        id="email_name",
        target="contact",
        fields=[
            MatchField(name="email", normalizer="email"),
            MatchField(name="last_name", normalizer="name"),
            MatchField(name="mobile_phone", normalizer="phone"),
        ],
    )
    incoming = {"email": "ANA@x.example", "last_name": "Rúiz ", "mobile_phone": ""}
    keys = strategy.keys(incoming.get, country="es")
    assert keys == {"email": "ana@x.example", "last_name": "ruiz"}  # empty phone ignored
    stored = {"email": "ana@x.example", "last_name": "RUIZ", "mobile_phone": "+34 600 000 000"}
    assert strategy.matches(keys, stored.get, "es")
    assert not strategy.matches(keys, {**stored, "last_name": "Ruis"}.get, "es")
    strict = strategy.keys(incoming.get, country="es", ignore_empty=False)
    assert strict == {"email": "ana@x.example", "last_name": "ruiz", "mobile_phone": None}
    assert not strategy.matches(strict, stored.get, "es")  # only an empty phone matches
    assert strategy.keys({"last_name": "Ruiz"}.get) is None  # no email: no lookup


@attrs.frozen
class Candidate:
    id: str
    modified_at: datetime
    parent: str | None = None


def test_pick_prefers_the_child_lead_then_the_most_recent() -> None:
    older = Candidate("a", datetime(2026, 1, 1, tzinfo=UTC), parent="c-1")
    newer = Candidate("b", datetime(2026, 2, 1, tzinfo=UTC))
    newest = Candidate("c", datetime(2026, 3, 1, tzinfo=UTC))
    assert pick([older, newer, newest], modified_at=lambda c: c.modified_at) is newest
    chosen = pick(
        [older, newer, newest],
        modified_at=lambda c: c.modified_at,
        preferred=lambda c: c.parent == "c-1",
    )
    assert chosen is older
    assert pick([], modified_at=lambda c: c.modified_at) is None


def test_strategies_round_trip_as_documents() -> None:
    for strategy in (DEFAULT_CONTACT_STRATEGY, DEFAULT_LEAD_STRATEGY):
        assert strategy_from_dict(strategy_to_dict(strategy)) == strategy
    with pytest.raises(ValidationError, match="malformed"):
        strategy_from_dict({"id": "x"})
