"""The planned row and document writers (`salesflow.stores.sql_rows`) give exactly
what the generic path gives: each column read through `Column.read` and converted by
`Dialect.store_value`, the document by `Codec.encode` (lean: optional fields without
a value left out)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from salesflow.activity import Activity, ActivityKind
from salesflow.errors import StoreError
from salesflow.lead import Competitor, Lead, Rating, Stakeholder
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.stores.base import ColumnType
from salesflow.stores.codec import Codec
from salesflow.stores.postgres import PostgresDialect
from salesflow.stores.sql import Table
from salesflow.stores.sql_dialect import Dialect, dump_json
from salesflow.stores.sqlite import SQLiteDialect
from salesflow.testing.contract import upgraded_codec
from salesflow.testing.strategies import leads
from salesflow.values import Money, Record

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DIALECTS = [SQLiteDialect(), PostgresDialect("public")]


def generic_row(table: Table, record: Record) -> list[Any]:
    """A record's row the slow, obvious way."""
    values: list[Any] = []
    folded: dict[str, str] = {}
    for column in table.columns:
        value = column.read(record)
        if value is None:
            values.append(None)
            continue
        if column.type is ColumnType.TEXT and not value.isascii():
            folded[column.name] = value.casefold()
        values.append(table.dialect.store_value(column.type, value))
    values.extend(key.read(record) for key in table.keys)
    for name, item in record.custom.items():
        if isinstance(item, str) and not item.isascii():
            folded[f"custom.{name}"] = item.casefold()
    values.append(dump_json(folded, "x") if folded else None)
    values.append(dump_json(generic_document(table.codec, record), "x"))
    return values


def generic_document(codec: Codec, record: Record) -> dict[str, Any]:
    """The document the SQL stores write: lean, unless the codec encodes its own way."""
    if type(codec).encode is Codec.encode:
        return codec.encode(record, lean=True)
    return codec.encode(record)


def every_kind() -> list[Record]:
    lead = Lead(
        id="lead-1",
        created_at=T0,
        modified_at=T0 + timedelta(seconds=1),
        topic="Müller GmbH expansion",
        last_name="Straße",
        first_name="Ana",
        email="Ana@Example.com",
        company_name="İstanbul Ltd",
        rating=Rating.HOT,
        estimated_value=Money(amount=Decimal("99.90"), currency="USD"),
        estimated_close_date=date(2026, 6, 30),
        do_not_email=True,
        employees=12,
        stakeholders=(Stakeholder(contact_id="con-1", role="Decision maker"),),
        competitors=(Competitor(name="Fabrikam", website="fabrikam.example"),),
        custom={"region": "Ñorth", "seats": 3, "when": T0, "ratio": 0.5, "d": Decimal("1.10")},
    )
    return [
        lead,
        Account(
            id="acc-1",
            created_at=T0,
            modified_at=T0,
            name="Contoso Ltd",
            annual_revenue=Money(amount=Decimal("1250000.50"), currency="EUR"),
            employees=120,
        ),
        Contact(
            id="con-1",
            created_at=T0,
            modified_at=T0,
            first_name="Ána",
            last_name="Ruiz",
            email="Ana.Ruiz@Contoso.com",
            account_id="acc-1",
        ),
        Opportunity(
            id="opp-1",
            created_at=T0,
            modified_at=T0,
            name="Topic 1",
            account_id="acc-1",
            originating_lead_id="lead-1",
            probability=40,
        ),
        Activity(
            id="act-1",
            created_at=T0,
            modified_at=T0,
            kind=ActivityKind.PHONE_CALL,
            subject="Call Ána",
            regarding=lead.ref,
            due_at=T0 + timedelta(days=1),
        ),
    ]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("codec", [Codec(), upgraded_codec()], ids=["codec", "upgraded"])
def test_every_kind_is_written_as_the_generic_path_writes_it(
    dialect: Dialect, codec: Codec
) -> None:
    for record in every_kind():
        table = Table(record.KIND, dialect, codec)
        assert table.encode(record) == codec.encode(record, lean=True)
        assert table.row(record) == generic_row(table, record)


def test_a_lean_document_leaves_out_only_optional_fields_without_a_value() -> None:
    codec = Codec()
    for record in every_kind():
        full = codec.encode(record)
        lean = codec.encode(record, lean=True)
        left_out = set(full) - set(lean)
        assert left_out  # every kind has an optional field without a value here
        defaults = {a.name: a.default for a in attrs.fields(type(record))}
        for name in left_out:
            assert full[name] is None
            assert defaults[name] is None
        assert {k: v for k, v in full.items() if k not in left_out} == lean
        assert "custom" in lean  # SQL queries on custom fields read it from the document
        assert codec.decode(record.KIND, lean) == codec.decode(record.KIND, full) == record


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(leads())
def test_any_lead_reads_back_the_same_from_a_lean_or_a_full_document(lead: Lead) -> None:
    codec = Codec()
    table = Table(lead.KIND, SQLiteDialect(), codec)
    full = codec.encode(lead)
    lean = table.encode(lead)
    assert all(full[name] is None for name in set(full) - set(lean))
    assert table.decode(dump_json(lean, "x")) == table.decode(dump_json(full, "x")) == lead


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(leads())
def test_any_lead_is_written_as_the_generic_path_writes_it(lead: Lead) -> None:
    for dialect in DIALECTS:
        table = Table(lead.KIND, dialect, Codec())
        assert table.row(lead) == generic_row(table, lead)


class _OwnCodec(Codec):
    def encode(self, record: Record) -> dict[str, Any]:
        doc = super().encode(record)
        doc["mark"] = "own"
        return doc


def test_a_codec_that_encodes_its_own_way_is_used() -> None:
    table = Table(Lead.KIND, SQLiteDialect(), _OwnCodec())
    record = every_kind()[0]
    assert table.encode(record)["mark"] == "own"
    assert table.row(record) == generic_row(table, record)


@pytest.mark.parametrize("codec", [Codec(), upgraded_codec()], ids=["codec", "upgraded"])
def test_every_kind_is_read_back_as_the_codec_reads_it(codec: Codec) -> None:
    for record in every_kind():
        table = Table(record.KIND, SQLiteDialect(), codec)
        doc = codec.encode(record)
        assert table.decode(dump_json(doc, "x")) == codec.decode(record.KIND, doc) == record


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(leads())
def test_any_lead_is_read_back_as_the_codec_reads_it(lead: Lead) -> None:
    table = Table(lead.KIND, SQLiteDialect(), Codec())
    assert table.decode(table.row(lead)[-1]) == lead


def test_a_document_the_fast_path_cannot_read_gets_the_codecs_error() -> None:
    codec = Codec()
    table = Table(Lead.KIND, SQLiteDialect(), codec)
    doc = codec.encode(every_kind()[0])
    del doc["topic"]  # required
    with pytest.raises(StoreError, match="stored lead 'lead-1' cannot be read"):
        table.decode(dump_json(doc, "x"))
    doc = codec.encode(every_kind()[0])
    doc["schema"] = 0
    with pytest.raises(StoreError, match="no migration for lead documents from schema 0"):
        table.decode(dump_json(doc, "x"))
