"""Record → row for the SQL record tables, compiled once per table.

Writing a record stores every queryable column, the lookup and search keys, the
case folds of non-ASCII text and the codec document (see `salesflow.stores.sql`).
Done naively that reads each field through a generic reader, converts it through
a dialect method, and walks the record class's type hints again for the document:
most of the cost of storing a record. `row_writer` plans the work once per table
(which columns are plain fields, which need a conversion for the engine) and
`document_encoder` the codec document (lean: which fields are stored as they are,
which are left out when None); both turn the plan into straight-line Python, one
statement per column or field, generated from the class's own field names (a
CSV import writes 100,000 leads, and a loop over 60 columns was a fifth of it).
`document_decoder` plans reading a document back. All give exactly what the
generic path gives; `tests/stores/test_sql_rows.py` compares them.
"""

from __future__ import annotations

import functools
import operator
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import attrs

from salesflow.stores.base import Column, ColumnType, LookupKey
from salesflow.stores.codec import RECORD_TYPES, Codec, _codec_for, omitted_when_none
from salesflow.stores.sql_dialect import Dialect, dump_json
from salesflow.values import Money, Record, RecordKind, RecordRef

__all__ = ["document_decoder", "document_encoder", "row_writer"]

_AS_IS = (str, int, bool, float)
"""Field types the codec stores as they are."""

_PLAIN_TYPES: dict[ColumnType, type] = {
    ColumnType.TEXT: str,
    ColumnType.INT: int,
    ColumnType.BOOL: bool,
    ColumnType.DECIMAL: Decimal,
    ColumnType.DATETIME: datetime,
    ColumnType.DATE: date,
}
"""The plain Python type of each column type's values (none of them an enum)."""


def _inner(tp: Any) -> Any:
    """``tp`` without ``| None``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _remember_last(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert``, skipped when called again with the very same (immutable) value:
    the records a unit writes share its ``now`` as their created and modified times."""
    last: list[tuple[Any, Any]] = [(object(), None)]

    def run(value: Any) -> Any:
        seen, out = last[0]  # one tuple, so threads never see half an update
        if value is not seen:
            out = convert(value)
            last[0] = (value, out)
        return out

    return run


def document_encoder(codec: Codec, kind: RecordKind) -> Callable[[Record], dict[str, Any]]:
    """`Codec.encode` with ``lean=True`` for records of ``kind``, planned once: straight-
    line code generated from the class's fields (one statement per field, no loop).

    A codec class that encodes its own way (overrides `Codec.encode`) is called
    as it is.
    """
    if type(codec).encode is not Codec.encode:
        return codec.encode
    cls = RECORD_TYPES[kind]
    hints = typing.get_type_hints(cls)
    lean = omitted_when_none(cls)
    namespace: dict[str, Any] = {
        "_cls": cls,
        "_generic": functools.partial(codec.encode, lean=True),
        "_schema": codec.current_schema(kind),
    }
    lines = [
        "def encode(record):",
        "    if type(record) is not _cls:",
        "        return _generic(record)",
        "    doc = {'schema': _schema}",
    ]
    for i, a in enumerate(attrs.fields(cls)):
        name = a.name
        inner = _inner(hints[name])
        if inner in _AS_IS:
            value = "value"
        elif (
            isinstance(inner, type)
            and issubclass(inner, Enum)
            and (name in lean or inner is hints[name])
        ):
            # the codec's ``value.value``, without the enum property's Python-level
            # descriptor; None never gets here (left out, or not allowed)
            value = "value._value_"
        else:
            encoder = _codec_for(hints[name])[0]
            namespace[f"_enc_{i}"] = (
                _remember_last(encoder) if _inner(hints[name]) is datetime else encoder
            )
            value = f"_enc_{i}(value)"
        lines.append(f"    value = record.{name}")
        if name in lean:
            # left out when None; otherwise encoded, and None is encoded as None is
            lines.append("    if value is not None:")
            lines.append(f"        doc[{name!r}] = {value}")
        else:
            lines.append(f"    doc[{name!r}] = {value}")
    lines.append("    return doc")
    encode: Callable[[Record], dict[str, Any]] = _compiled(
        "\n".join(lines), namespace, "encode", f"lean {kind.value} document"
    )
    return encode


def _compiled(source: str, namespace: dict[str, Any], name: str, what: str) -> Any:
    """The function ``name`` that ``source`` defines (built from a record class's own
    field names and the table's column names), run in ``namespace``."""
    code = compile(source + "\n", f"<salesflow.stores.sql_rows: {what}>", "exec")
    exec(code, namespace)
    return namespace[name]


def document_decoder(codec: Codec, kind: RecordKind) -> Callable[[Mapping[str, Any]], Record]:
    """`Codec.decode` for documents of ``kind``, planned once.

    A document at the current schema is decoded field by field with decoders looked
    up once; anything else (an older schema to migrate, a malformed document, a codec
    class that decodes its own way) goes through `Codec.decode`, which migrates it or
    raises its own error.
    """
    if type(codec).decode is not Codec.decode:
        return lambda doc: codec.decode(kind, doc)
    cls = RECORD_TYPES[kind]
    hints = typing.get_type_hints(cls)
    plan = tuple(
        (a.name, None if _inner(hints[a.name]) in _AS_IS else _codec_for(hints[a.name])[1])
        for a in attrs.fields(cls)
    )
    current = codec.current_schema(kind)
    generic = codec.decode

    def decode(doc: Mapping[str, Any]) -> Record:
        schema = doc.get("schema")
        if schema == current and isinstance(schema, int):
            try:
                kwargs = {
                    name: doc[name] if decoder is None else decoder(doc[name])
                    for name, decoder in plan
                    if name in doc
                }
                record: Record = cls(**kwargs)
            except Exception:  # the codec raises its own error for it (or migrates)
                return generic(kind, doc)
            return record
        return generic(kind, doc)

    return decode


def _plain_fields(kind: RecordKind) -> frozenset[str]:
    """The fields `columns_of` stores under their own name through a plain reader
    (every scalar field; `Money` and `RecordRef` fields become two columns each)."""
    cls = RECORD_TYPES[kind]
    hints = typing.get_type_hints(cls)
    return frozenset(
        a.name for a in attrs.fields(cls) if _inner(hints[a.name]) not in (Money, RecordRef)
    )


def row_writer(
    kind: RecordKind,
    dialect: Dialect,
    columns: Sequence[Column],
    keys: Sequence[LookupKey],
    encode: Callable[[Record], dict[str, Any]],
) -> Callable[[Record], list[Any]]:
    """The function that gives the values of every column of a record of ``kind``:
    ``columns``, then ``keys``, then ``folded`` and ``doc`` (as `Table.row`).

    Straight-line code generated once per table: per column, read the value (a
    plain field by attribute, anything else through `Column.read`); a raw option
    set value becomes its ``.value``; non-ASCII text gets its case fold; the
    dialect's conversion runs on values that are not None.
    """
    plain = _plain_fields(kind)
    namespace: dict[str, Any] = {
        "_Enum": Enum,
        "_dump": dump_json,
        "_encode": encode,
    }
    lines = ["def row(record):", "    folded = {}"]
    out: list[str] = []
    for i, column in enumerate(columns):
        value = f"c_{i}"
        out.append(value)
        raw = column.name in plain
        if raw and column.name.isidentifier():
            lines.append(f"    {value} = record.{column.name}")
        else:
            namespace[f"_read_{i}"] = operator.attrgetter(column.name) if raw else column.read
            lines.append(f"    {value} = _read_{i}(record)")
        body: list[str] = []
        if raw:
            # a value of the column's own plain type is no option set: no isinstance
            namespace[f"_plain_{i}"] = _PLAIN_TYPES.get(column.type, str)
            body.append(f"if {value}.__class__ is not _plain_{i} and isinstance({value}, _Enum):")
            body.append(f"    {value} = {value}._value_")  # ``.value``, minus the descriptor
        if column.type is ColumnType.TEXT:
            body.append(f"if not {value}.isascii():")
            body.append(f"    folded[{column.name!r}] = {value}.casefold()")
        convert = dialect.store_converter(column.type)
        if convert is not None:
            if column.type is ColumnType.DATETIME:
                convert = _remember_last(convert)
            namespace[f"_convert_{i}"] = convert
            body.append(f"{value} = _convert_{i}({value})")
        if body:
            lines.append(f"    if {value} is not None:")
            lines.extend(f"        {line}" for line in body)
    for j, key in enumerate(keys):
        namespace[f"_key_{j}"] = key.read
        lines.append(f"    k_{j} = _key_{j}(record)")
        out.append(f"k_{j}")
    lines += [
        "    for name, item in record.custom.items():",
        "        if isinstance(item, str) and not item.isascii():",
        "            folded[f'custom.{name}'] = item.casefold()",
        "    what = f'{type(record).__name__} {record.id!r}'",
        "    return [",
        *(f"        {name}," for name in out),
        "        _dump(folded, what) if folded else None,",
        "        _dump(_encode(record), what),",
        "    ]",
    ]
    row: Callable[[Record], list[Any]] = _compiled(
        "\n".join(lines), namespace, "row", f"{kind.value} row"
    )
    return row
