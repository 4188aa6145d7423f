"""Record → row for the SQL record tables, compiled once per table.

Writing a record stores every queryable column, the lookup and search keys, the
case folds of non-ASCII text and the codec document (see `salesflow.stores.sql`).
Done naively that reads each field through a generic reader, converts it through
a dialect method, and walks the record class's type hints again for the document:
most of the cost of storing a record. `row_writer` plans the work once per table
(which columns are plain fields, which need a conversion for the engine) and
`document_encoder` the codec document (lean: which fields are stored as they are,
which are left out when None), so
a write only does what the record's values need; `document_decoder` does the same
for reading a document back. All give exactly what the generic path gives;
`tests/stores/test_sql_rows.py` compares them.
"""

from __future__ import annotations

import functools
import operator
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
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
    """`Codec.encode` with ``lean=True`` for records of ``kind``, planned once.

    A codec class that encodes its own way (overrides `Codec.encode`) is called
    as it is.
    """
    if type(codec).encode is not Codec.encode:
        return codec.encode
    generic = functools.partial(codec.encode, lean=True)
    cls = RECORD_TYPES[kind]
    hints = typing.get_type_hints(cls)
    names = tuple(a.name for a in attrs.fields(cls))
    encoders = tuple(
        None
        if _inner(hints[name]) in _AS_IS
        else _remember_last(_codec_for(hints[name])[0])
        if _inner(hints[name]) is datetime
        else _codec_for(hints[name])[0]
        for name in names
    )
    lean = omitted_when_none(cls)
    plan = tuple(zip(names, encoders, (name in lean for name in names), strict=True))
    read = operator.attrgetter(*names)
    schema = codec.current_schema(kind)

    def encode(record: Record) -> dict[str, Any]:
        if type(record) is not cls:
            return generic(record)
        doc: dict[str, Any] = {"schema": schema}
        for (name, encoder, omit), value in zip(plan, read(record), strict=True):
            if value is None:
                if not omit:
                    doc[name] = None if encoder is None else encoder(None)
            else:
                doc[name] = value if encoder is None else encoder(value)
        return doc

    return encode


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


_Step = tuple[str, Callable[[Any], Any], bool, bool, Callable[[Any], Any] | None]
"""How one column is written: name, reader, whether the reader gives the raw field
(so an option-set value becomes its ``.value``), whether it is text (folded when not
ASCII), and the engine's conversion (None: as it is)."""


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
    ``columns``, then ``keys``, then ``folded`` and ``doc`` (as `Table.row`)."""
    plain = _plain_fields(kind)
    steps: list[_Step] = []
    for column in columns:
        raw = column.name in plain
        reader = operator.attrgetter(column.name) if raw else column.read
        text = column.type is ColumnType.TEXT
        convert = dialect.store_converter(column.type)
        if convert is not None and column.type is ColumnType.DATETIME:
            convert = _remember_last(convert)
        steps.append((column.name, reader, raw, text, convert))
    plan = tuple(steps)
    key_readers = tuple(key.read for key in keys)

    def row(record: Record) -> list[Any]:
        values: list[Any] = []
        append = values.append
        folded: dict[str, str] = {}
        for name, reader, raw, text, convert in plan:
            value = reader(record)
            if value is None:
                append(None)
                continue
            if raw and value.__class__ is not str and isinstance(value, Enum):
                value = value.value
            if text and not value.isascii():
                folded[name] = value.casefold()
            append(value if convert is None else convert(value))
        for read in key_readers:
            append(read(record))
        for name, item in record.custom.items():
            if isinstance(item, str) and not item.isascii():
                folded[f"custom.{name}"] = item.casefold()
        what = f"{type(record).__name__} {record.id!r}"
        append(dump_json(folded, what) if folded else None)
        append(dump_json(encode(record), what))
        return values

    return row
