"""CSV import: rows to `Submission` values, and the report of an import.

`read_rows` reads a CSV file (UTF-8, a header row) and turns each row into the
typed field values of a lead or contact through a column mapping: cells are
parsed by the field's type (numbers, yes/no flags, dates, money as
``"1200 EUR"``); an empty cell is no value. A row that cannot be parsed is
rejected with its row number and the reason, never silently dropped; columns the
mapping does not take are listed in the report. `Salesflow.import_csv` then takes
every parsed row through intake.
"""

from __future__ import annotations

import csv
import functools
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

import attrs

from salesflow.errors import ValidationError
from salesflow.lead import EDITABLE_FIELDS as LEAD_FIELDS
from salesflow.lead import Lead
from salesflow.party import Contact
from salesflow.values import Money, RecordKind, to_enum

__all__ = [
    "ImportReport",
    "ParsedRow",
    "Rejection",
    "column_mapping",
    "parse_cell",
    "read_rows",
]

_CONTACT_FIELDS = frozenset(a.name for a in attrs.fields(Contact)) - {
    "id",
    "version",
    "created_at",
    "modified_at",
    "custom",
}
_FIELDS: Mapping[RecordKind, frozenset[str]] = {
    RecordKind.LEAD: frozenset(LEAD_FIELDS) - {"custom"},
    RecordKind.CONTACT: _CONTACT_FIELDS,
}
_CLASSES: Mapping[RecordKind, type] = {RecordKind.LEAD: Lead, RecordKind.CONTACT: Contact}
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
_TRUE = frozenset({"true", "yes", "y", "1", "x"})
_FALSE = frozenset({"false", "no", "n", "0"})
_MONEY = re.compile(
    r"^\s*(?:([A-Za-z]{3})\s*)?([-+]?\d[\d\s,]*(?:\.\d+)?)\s*(?:([A-Za-z]{3}))?\s*$"
)


@attrs.frozen(kw_only=True)
class Rejection:
    """A row that was not imported, and why.

    Attributes:
        row: The row's number in the file (the header is row 1).
        reason: What was wrong and how to fix it.
    """

    row: int
    reason: str


@attrs.frozen(kw_only=True)
class ParsedRow:
    """One data row: its number and its typed field values (or its rejection)."""

    row: int
    fields: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    rejection: Rejection | None = None


@attrs.frozen(kw_only=True)
class ImportReport:
    """What an import did.

    Attributes:
        rows: Data rows read.
        created: Rows that created a record.
        updated: Rows that updated a matched record.
        unchanged: Rows that matched a record and changed nothing (or were told
            not to update it).
        rejected: Rows not imported, each with its row number and reason.
        ignored_columns: Columns of the file the mapping did not take.
    """

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: tuple[Rejection, ...] = ()
    ignored_columns: tuple[str, ...] = ()

    def table(self) -> str:
        """The report as text lines for a command line."""
        lines = [
            f"rows {self.rows:,}: created {self.created:,}, updated {self.updated:,}, "
            f"unchanged {self.unchanged:,}, rejected {len(self.rejected):,}"
        ]
        if self.ignored_columns:
            lines.append(f"ignored columns: {', '.join(self.ignored_columns)}")
        lines.extend(f"row {r.row}: {r.reason}" for r in self.rejected)
        return "\n".join(lines)


def _key(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().casefold())


def column_mapping(
    kind: RecordKind, headers: list[str], mapping: Mapping[str, str] | None
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Which column goes to which field.

    Args:
        kind: Leads or contacts.
        headers: The file's header row.
        mapping: Column → field name (``custom.<name>`` for custom fields); columns
            it does not name are taken when their header is a field's name (case,
            spaces and dashes ignored: ``"Last Name"`` → ``last_name``).

    Returns:
        Column → field, and the columns nothing takes.

    Raises:
        ValidationError: the mapping names a column the file lacks or a field the
            record type does not have.
    """
    fields = _FIELDS[kind]
    mapping = dict(mapping or {})
    missing = [c for c in mapping if c not in headers]
    if missing:
        raise ValidationError(
            f"the column mapping names {', '.join(map(repr, missing))}, which the file's "
            f"header does not have (it has {', '.join(map(repr, headers))})",
            field="mapping",
            value=missing,
        )
    taken: dict[str, str] = {}
    ignored: list[str] = []
    for header in headers:
        target = mapping.get(header) or _key(header)
        if (target.startswith("custom.") and target[7:].isidentifier()) or target in fields:
            taken[header] = target
        elif header in mapping:
            raise ValidationError(
                f"the column mapping sends {header!r} to {target!r}, which a {kind.value} does "
                f"not have; use a {kind.value} field or 'custom.<name>'",
                field="mapping",
                value=target,
            )
        else:
            ignored.append(header)
    return taken, tuple(ignored)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    # resolving the annotations is slow, and they never change
    return typing.get_type_hints(cls)


def _field_type(cls: type, name: str) -> Any:
    hints = _hints(cls)
    tp = hints.get(name, str)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else str
    return tp


def parse_cell(kind: RecordKind, field: str, cell: str) -> Any:
    """The typed value of one cell for ``field`` (None for an empty cell).

    Raises:
        ValidationError: the cell does not fit the field's type (the message says
            what the field takes).
    """
    return _parser(kind, field)(cell)


_TYPED = (bool, int, Decimal, date, datetime, Money)
"""Field types whose cells are parsed (other fields take the text)."""


@functools.cache
def _parser(kind: RecordKind, field: str) -> Callable[[str], Any]:
    """`parse_cell` for one field, its type looked up once (every row of a column
    parses the same way)."""
    if field.startswith("custom."):
        return _text
    tp = _field_type(_CLASSES[kind], field)
    if tp in _TYPED or (isinstance(tp, type) and issubclass(tp, Enum)):
        return functools.partial(_typed, tp, field)
    return _text


def _text(cell: str) -> str | None:
    return cell.strip() or None


def _typed(tp: Any, field: str, cell: str) -> Any:
    text = cell.strip()
    if not text:
        return None
    try:
        if tp is bool:
            folded = text.casefold()
            if folded in _TRUE | _FALSE:
                return folded in _TRUE
            raise ValueError("expected yes/no, true/false or 1/0")
        if tp is int:
            digits = text.replace(" ", "").replace(",", "")
            if not digits.lstrip("+-").isdigit():
                raise ValueError("expected a whole number")
            return int(digits)
        if tp is Decimal:
            return Decimal(text.replace(" ", "").replace(",", ""))
        if tp is date:
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise ValueError("expected a date as YYYY-MM-DD") from None
        if tp is datetime:
            value = datetime.fromisoformat(text)
            if value.utcoffset() is None:
                raise ValueError("expected an ISO date-time with a time zone")
            return value
        if tp is Money:
            return _money(text)
        if isinstance(tp, type) and issubclass(tp, Enum):
            return to_enum(tp, _key(text), field, optional=False)
    except (ValueError, InvalidOperation) as exc:
        raise ValidationError(f"{field}={text!r}: {exc}", field=field, value=text) from None
    return text


def _money(text: str) -> Money:
    found = _MONEY.match(text)
    if found is None or not (found.group(1) or found.group(3)):
        raise ValueError("expected an amount with a currency, e.g. '1200 EUR'")
    currency = (found.group(1) or found.group(3)).upper()
    amount = Decimal(found.group(2).replace(" ", "").replace(",", ""))
    return Money(amount=amount, currency=currency)


def read_rows(
    source: str | Path | TextIO,
    kind: RecordKind,
    mapping: Mapping[str, str] | None = None,
) -> tuple[Iterator[ParsedRow], tuple[str, ...]]:
    """The parsed data rows of a CSV file, and the ignored columns.

    Args:
        source: A path, or an open text stream (``io.StringIO`` for text in memory).
        kind: Leads or contacts.
        mapping: See `column_mapping`.

    Returns:
        An iterator over the rows (each parsed or rejected, numbered from 2, the
        header being row 1) and the columns nothing takes.

    Raises:
        ValidationError: the file has no header row, or the mapping does not fit it.
    """
    if isinstance(source, str | Path):
        try:
            # bytes that are not UTF-8 become lone surrogates, so the row holding them
            # can be rejected while the rest of the file is read
            stream: TextIO = open(  # noqa: SIM115 - closed by the row iterator
                source, encoding="utf-8-sig", newline="", errors="surrogateescape"
            )
        except OSError as exc:
            raise ValidationError(
                f"cannot open the CSV file {str(source)!r}: {exc.strerror or exc}",
                field="source",
                value=str(source),
            ) from None
    else:
        stream = source
    reader = csv.reader(stream)
    try:
        headers = next(reader)
    except UnicodeDecodeError:
        stream.close()
        raise ValidationError(
            "the CSV file is not UTF-8 text; save it as UTF-8 (CSV UTF-8 in spreadsheet "
            "programs) and import it again",
            field="source",
            value=None,
        ) from None
    except csv.Error as exc:
        stream.close()
        raise ValidationError(
            f"the CSV file's header row cannot be read: {exc}; check its quotes",
            field="source",
            value=None,
        ) from None
    except StopIteration:
        stream.close()
        raise ValidationError(
            "the CSV file is empty: it needs a header row naming the columns",
            field="source",
            value=None,
        ) from None
    if headers and headers[0].startswith("\ufeff"):
        # a stream opened as plain UTF-8 keeps the byte-order mark spreadsheets write
        headers[0] = headers[0][1:]
    if any(_NOT_UTF8.search(h) for h in headers):
        stream.close()
        raise ValidationError(
            "the CSV file's header is not UTF-8 text; save the file as UTF-8 (CSV UTF-8 in "
            "spreadsheet programs) and import it again",
            field="source",
            value=None,
        )
    taken, ignored = column_mapping(kind, headers, mapping)
    # Per taken column: its position, its field and the field's parser.
    plan = [
        (index, field, _parser(kind, field))
        for index, header in enumerate(headers)
        if (field := taken.get(header)) is not None
    ]

    def rejected(number: int, reason: str) -> ParsedRow:
        return ParsedRow(row=number, rejection=Rejection(row=number, reason=reason))

    def rows() -> Iterator[ParsedRow]:
        number = 1
        failed_at = -1
        try:
            while True:
                number += 1
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    if reader.line_num == failed_at:
                        return  # the reader is stuck: nothing more can be read
                    failed_at = reader.line_num
                    # the reader drops the broken record and goes on with the next one
                    yield rejected(number, f"cannot be read as CSV: {exc}")
                    continue
                except UnicodeDecodeError:
                    yield rejected(
                        number,
                        "has bytes that are not UTF-8 text, and the rows after it were not "
                        "read; save the file as UTF-8 and import it again",
                    )
                    return
                joined = "".join(cells)
                if not joined.strip():
                    continue  # a blank line is not a row (every cell is blank)
                if not joined.isascii() and _NOT_UTF8.search(joined):
                    yield rejected(
                        number, "has bytes that are not UTF-8 text; save the file as UTF-8"
                    )
                    continue
                if len(cells) != len(headers):
                    yield rejected(number, f"has {len(cells)} cells; the header has {len(headers)}")
                    continue
                try:
                    fields = {
                        field: value
                        for index, field, parse in plan
                        if (value := parse(cells[index])) is not None
                    }
                except ValidationError as exc:
                    yield rejected(number, str(exc))
                    continue
                yield ParsedRow(row=number, fields=fields)
        finally:
            if isinstance(source, str | Path):
                stream.close()

    return rows(), ignored
