"""CSV export: chosen fields, plain values, formula cells escaped, and a round trip
through the CSV import."""

from __future__ import annotations

import csv
import io
import re
import string
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow.engine import Salesflow
from salesflow.errors import ValidationError
from salesflow.exports import DANGEROUS, escape_cell, export_csv, format_value
from salesflow.lead import Lead
from salesflow.stores.base import Query
from salesflow.values import Money

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _lead(**fields: object) -> Lead:
    values: dict[str, object] = {"id": "lead-1", "topic": "Laptops", "last_name": "Ng"}
    values.update(fields)
    return Lead(created_at=AT, modified_at=AT, **values)  # type: ignore[arg-type]


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_starting_like_a_formula_is_escaped(first: str) -> None:
    payload = first + 'HYPERLINK("http://evil.example","x")'
    rows = _cells(export_csv([_lead(custom={"note": payload})], ["custom.note"]))
    assert rows == [["custom.note"], ["'" + payload]]


def test_plain_cells_and_numbers_are_left_as_they_are() -> None:
    assert escape_cell("Laptops") == "Laptops"
    assert escape_cell("-5") == "-5"
    assert escape_cell("+1.25") == "+1.25"
    assert escape_cell("-5+cmd") == "'-5+cmd"
    assert escape_cell("") == ""


def test_values_are_written_plainly() -> None:
    lead = _lead(
        budget_amount=Money(amount=Decimal("1200.50"), currency="EUR"),
        estimated_close_date=date(2026, 4, 30),
        employees=40,
        do_not_email=True,
        source="web",
        custom={"segment": "smb", "score": Decimal("1E+3"), "seen": AT},
    )
    fields = [
        "last_name",
        "budget_amount",
        "estimated_close_date",
        "employees",
        "do_not_email",
        "source",
        "first_name",
        "custom.segment",
        "custom.score",
        "custom.seen",
        "custom.missing",
        "created_at",
    ]
    header, row = _cells(export_csv([lead], fields))
    assert header == fields
    assert dict(zip(header, row, strict=True)) == {
        "last_name": "Ng",
        "budget_amount": "1200.50 EUR",
        "estimated_close_date": "2026-04-30",
        "employees": "40",
        "do_not_email": "yes",
        "source": "web",
        "first_name": "",
        "custom.segment": "smb",
        "custom.score": "1000",
        "custom.seen": "2026-03-02T09:30:00+00:00",
        "custom.missing": "",
        "created_at": "2026-03-02T09:30:00+00:00",
    }


def test_negative_money_is_escaped_but_a_negative_number_is_not() -> None:
    assert format_value(Money(amount=Decimal("-3"), currency="USD")) == "-3 USD"
    assert escape_cell(format_value(Money(amount=Decimal("-3"), currency="USD"))) == "'-3 USD"
    assert escape_cell(format_value(-3)) == "-3"


def test_quotes_commas_and_newlines_survive() -> None:
    topic = 'Say "hi",\nthen call'
    rows = _cells(export_csv([_lead(topic=topic)], ["topic"]))
    assert rows[1] == [topic]


def test_export_to_a_file_returns_the_row_count() -> None:
    out = io.StringIO()
    written = export_csv([_lead(), _lead(id="lead-2", last_name="Li")], ["last_name"], file=out)
    assert written == 2
    assert _cells(out.getvalue()) == [["last_name"], ["Ng"], ["Li"]]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([], "list of field names"),
        ("last_name", "list of field names"),
        (["last_name", "last_name"], "twice"),
        (["nickname"], "not a field of Lead"),
        (["custom."], "custom"),
    ],
)
def test_bad_fields_are_refused_and_nothing_is_written(fields: object, message: str) -> None:
    out = io.StringIO()
    with pytest.raises(ValidationError, match=message):
        export_csv([_lead()], fields, file=out)  # type: ignore[call-overload]
    assert out.getvalue() == ""


def test_something_that_is_not_a_record_is_refused() -> None:
    with pytest.raises(ValidationError, match="not dict"):
        export_csv([{"last_name": "Ng"}], ["last_name"])


def test_an_export_reads_back_through_the_csv_import(engine: Salesflow) -> None:
    leads = [
        _lead(
            id="lead-1",
            topic="Laptops",
            last_name="Ng",
            email="ng@example.com",
            employees=40,
            budget_amount=Money(amount=Decimal("5000.00"), currency="EUR"),
            custom={"segment": "smb"},
        ),
        _lead(id="lead-2", topic="=cmd|' /C calc'!A0", last_name="@Li", email="li@example.com"),
    ]
    fields = ["topic", "last_name", "email", "employees", "budget_amount", "custom.segment"]
    report = engine.import_csv(io.StringIO(export_csv(leads, fields)), kind="lead")
    assert (report.rows, report.created, report.rejected) == (2, 2, ())
    by_email = {lead.email: lead for lead in engine.query(Lead, Query(limit=10)).items}
    first = by_email["ng@example.com"]
    assert (first.topic, first.employees, first.custom) == ("Laptops", 40, {"segment": "smb"})
    assert first.budget_amount == Money(amount=Decimal("5000.00"), currency="EUR")
    # the escaped cells come back with their quote: the import takes text as written
    assert by_email["li@example.com"].last_name == "'@Li"


_plain = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
).filter(lambda s: not s.startswith((*DANGEROUS, "'")))


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.text(max_size=30), min_size=1, max_size=5),
    plain=st.lists(_plain, min_size=1, max_size=5),
)
def test_no_cell_starts_like_a_formula_and_plain_text_round_trips(
    values: list[str], plain: list[str]
) -> None:
    leads = [_lead(id=f"lead-{i}", custom={"v": v}) for i, v in enumerate(values + plain)]
    text = export_csv(leads, ["custom.v"])
    cells = [row[0] for row in _cells(text)[1:]]
    assert len(cells) == len(values) + len(plain)
    for original, cell in zip(values + plain, cells, strict=True):
        # only a plain number may start like a formula
        assert not cell.startswith(DANGEROUS) or re.fullmatch(r"[-+][0-9]+(\.[0-9]+)?", cell)
        if cell.startswith("'") and not original.startswith("'"):
            assert cell[1:] == original
            assert original.startswith(DANGEROUS)
        else:
            assert cell == original
    assert cells[len(values) :] == plain


def test_every_printable_first_character() -> None:
    for first in string.printable:
        cell = escape_cell(first + "x")
        assert (cell == "'" + first + "x") == (first in DANGEROUS)
