"""CSV export: chosen fields of records as a CSV file a spreadsheet opens safely.

`export_csv` writes a header row (the field names) and one row per record (a lead,
a contact, an account, an opportunity, an activity: any stored record). A field is an
attribute of the record (``last_name``, ``budget_amount``) or ``custom.<key>`` for a
host field. Values are written plainly, in the form `salesflow.imports` reads back:
money as ``1200.00 EUR``, decimals without exponents, dates and datetimes in
ISO 8601, flags as ``yes``/``no``, option values by their value, nothing as an empty
cell.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(and a leading tab or carriage return can hide one), so a lead named
``=HYPERLINK(...)`` would run when the file is opened. Every such cell is escaped by
a leading single quote (``'=HYPERLINK(...)``), as OWASP recommends; a cell that is
only a number (``-5``, ``+1.5``) is left as it is, because a spreadsheet reads it as a
number, never as a formula.

Example:
    >>> from datetime import UTC, datetime
    >>> from salesflow.lead import Lead
    >>> at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    >>> lead = Lead(id="l1", topic="=1+1", last_name="Ng", created_at=at, modified_at=at)
    >>> export_csv([lead], ["last_name", "topic"]).splitlines()
    ['last_name,topic', "Ng,'=1+1"]
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO, overload

import attrs

from salesflow.errors import ValidationError
from salesflow.values import Money

__all__ = ["DANGEROUS", "escape_cell", "export_csv", "format_value"]

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
"""The first characters that make a spreadsheet read a cell as a formula."""

_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")


def escape_cell(text: str) -> str:
    """``text`` as a cell no spreadsheet runs as a formula.

    Returns:
        ``text`` with a single quote in front when it starts with one of `DANGEROUS`
        and is not just a number; ``text`` itself otherwise.
    """
    if text.startswith(DANGEROUS) and _NUMBER.fullmatch(text) is None:
        return "'" + text
    return text


def format_value(value: object) -> str:
    """How a field value is written to a cell (before escaping).

    Returns:
        ``""`` for none, ``yes``/``no`` for flags, ``1200.00 EUR`` for money, decimals
        without exponents, ISO 8601 for dates and datetimes, an option's value, items
        of a list joined by ``"; "``, the text of anything else.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Money):
        return f"{format_value(value.amount)} {value.currency}"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list | tuple | frozenset | set):
        return "; ".join(format_value(item) for item in value)
    return str(value)


def _check(record: object, fields: Sequence[str], checked: set[type]) -> None:
    cls = type(record)
    if cls in checked:
        return
    if not attrs.has(cls):
        raise ValidationError(
            f"export_csv exports records (leads, contacts, ...), not {cls.__name__}",
            field="records",
            value=cls.__name__,
        )
    names = attrs.fields_dict(cls)
    for name in fields:
        if name.startswith("custom."):
            if "custom" not in names or not name[7:]:
                raise ValidationError(
                    f"{name!r}: a {cls.__name__} has no custom fields to export",
                    field=name,
                    value=name,
                )
        elif name not in names:
            raise ValidationError(
                f"{name!r} is not a field of {cls.__name__}; use one of "
                f"{', '.join(names)} or 'custom.<key>'",
                field=name,
                value=name,
            )
    checked.add(cls)


def _read(record: Any, name: str) -> object:
    if name.startswith("custom."):
        custom: Mapping[str, object] = record.custom
        return custom.get(name[7:])
    return getattr(record, name)


@overload
def export_csv(records: Iterable[object], fields: Sequence[str], *, file: None = None) -> str: ...


@overload
def export_csv(records: Iterable[object], fields: Sequence[str], *, file: TextIO) -> int: ...


def export_csv(
    records: Iterable[object], fields: Sequence[str], *, file: TextIO | None = None
) -> str | int:
    """Write ``fields`` of ``records`` as CSV, every cell escaped (module docstring).

    Every field is checked against every kind of record before anything is written,
    so a refused export writes nothing.

    Args:
        records: The records, in the order of the rows.
        fields: The columns: attribute names and ``custom.<key>``; the header row
            names them as given.
        file: A text stream opened with ``newline=""`` to write to; ``None`` returns
            the text instead.

    Returns:
        The CSV text when ``file`` is ``None``, else the number of records written.

    Raises:
        ValidationError: ``fields`` is empty, repeats a name, is not a list of text, or
            names a field a record does not have.
    """
    if isinstance(fields, str) or not fields or not all(isinstance(f, str) for f in fields):
        raise ValidationError(
            f"fields={fields!r}: give a list of field names, e.g. ['last_name', 'email']",
            field="fields",
            value=fields,
        )
    if len(set(fields)) != len(fields):
        raise ValidationError(
            f"fields={list(fields)!r} names a field twice; name each once",
            field="fields",
            value=list(fields),
        )
    rows = list(records)
    checked: set[type] = set()
    for record in rows:
        _check(record, fields, checked)
    out = io.StringIO() if file is None else file
    # "\r\n" (RFC 4180) also makes the writer quote a cell holding a lone "\r"
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([escape_cell(name) for name in fields])
    for record in rows:
        writer.writerow([escape_cell(format_value(_read(record, name))) for name in fields])
    return out.getvalue() if isinstance(out, io.StringIO) and file is None else len(rows)
