"""The catalogue of queryable fields: the columns of each record kind and how to read them.

`columns_of` derives the queryable fields (`Column`) of a record kind from its
class; `lookup_keys` and `search_keys` are the derived keys a store indexes for
exact lookups and quick search, `derived_columns` the extra stored columns only
stores use. `record_value` and `field_reader` read a field the way every store
does, `check_fields` and `check_comparison` refuse what a query cannot ask, and
`sort_order` is how every store orders a field's values. `iter_kinds` lists every
stored kind with its class. Re-exported by `salesflow.stores.base`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from functools import cache
from typing import Any

import attrs

from salesflow.activity import Activity
from salesflow.conditions import Compare, Op
from salesflow.errors import ValidationError
from salesflow.lead import Lead
from salesflow.matching import INDEXED_FIELDS, LOOKUP_VALUES
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.values import Money, Record, RecordKind, RecordRef, normalize_name

__all__ = [
    "Column",
    "ColumnType",
    "LookupKey",
    "check_comparison",
    "check_fields",
    "column_type",
    "columns_of",
    "derived_columns",
    "field_reader",
    "iter_kinds",
    "lookup_keys",
    "record_value",
    "search_keys",
    "sort_order",
    "unknown_field",
]


class ColumnType(StrEnum):
    """How a queryable field is typed in SQL."""

    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    DECIMAL = "decimal"
    DATETIME = "datetime"
    DATE = "date"


@attrs.frozen
class Column:
    """A queryable field: its name, SQL type and how to read it from a record.

    ``options`` is set for a field whose values come from an option set (an enum):
    the enum's values in declaration order, which is the order the field sorts in
    (see `sort_order`). It is ``None`` for every other field.
    """

    name: str
    type: ColumnType
    read: Callable[[Any], Any] = attrs.field(eq=False, repr=False)
    options: tuple[str, ...] | None = attrs.field(default=None, kw_only=True)


def _column_type(tp: Any) -> ColumnType | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else None
    if tp is bool:
        return ColumnType.BOOL
    if tp is int:
        return ColumnType.INT
    if tp is Decimal:
        return ColumnType.DECIMAL
    if tp is datetime:
        return ColumnType.DATETIME
    if tp is date:
        return ColumnType.DATE
    if tp is str or (isinstance(tp, type) and issubclass(tp, Enum)):
        return ColumnType.TEXT
    return None


def _options(tp: Any) -> tuple[str, ...] | None:
    """The values of ``tp`` in declaration order when it is an enum, else ``None``."""
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tuple(str(member.value) for member in tp)
    return None


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _reader(name: str) -> Callable[[Any], Any]:
    return lambda record: _plain(getattr(record, name))


def _money_reader(name: str, part: str) -> Callable[[Any], Any]:
    def read(record: Any) -> Any:
        money = getattr(record, name)
        return None if money is None else getattr(money, part)

    return read


def _ref_reader(name: str, part: str) -> Callable[[Any], Any]:
    def read(record: Any) -> Any:
        ref = getattr(record, name)
        return ref.kind.value if part == "kind" else ref.id

    return read


@cache
def columns_of(kind: RecordKind) -> tuple[Column, ...]:
    """The queryable fields of ``kind``, derived from the record class.

    Scalar fields are columns under their own name; a `Money` field ``x`` is the
    amount ``x`` plus the text column ``x_currency``; a `RecordRef` field ``x``
    is ``x_kind`` and ``x_id``. Lists (stakeholders, competitors) and ``custom``
    are not columns (custom fields are filtered as ``custom.<name>``). An enum
    field (an option set) is a text column whose `Column.options` list the enum's
    values in declaration order.
    """
    from salesflow.stores.codec import RECORD_TYPES

    cls = RECORD_TYPES[kind]
    hints = typing.get_type_hints(cls)
    result: list[Column] = []
    for a in attrs.fields(cls):
        tp = hints[a.name]
        name = a.name
        inner = tp
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [x for x in typing.get_args(tp) if x is not type(None)]
            inner = args[0] if len(args) == 1 else tp
        if inner is Money:
            result.append(Column(name, ColumnType.DECIMAL, _money_reader(name, "amount")))
            result.append(
                Column(f"{name}_currency", ColumnType.TEXT, _money_reader(name, "currency"))
            )
            continue
        if inner is RecordRef:
            result.append(Column(f"{name}_kind", ColumnType.TEXT, _ref_reader(name, "kind")))
            result.append(Column(f"{name}_id", ColumnType.TEXT, _ref_reader(name, "id")))
            continue
        ctype = _column_type(tp)
        if ctype is not None:
            result.append(Column(name, ctype, _reader(name), options=_options(inner)))
    return tuple(result)


@cache
def _columns_by_name(kind: RecordKind) -> dict[str, Column]:
    return {c.name: c for c in columns_of(kind)}


@attrs.frozen
class LookupKey:
    """A derived, indexed key used for exact lookups (matching, qualify).

    Attributes:
        name: The key's name (the SQL stores' column).
        read: The key of a record; None when it has none.
        field: The one field the key is computed from, when there is one (with
            ``of``, the key of a value of that field): the SQL stores compute the
            keys of the rows they held before the key existed from that field's
            column.
        of: The key of a value of ``field``.
        sparse: Whether most records may leave it empty: the SQL stores then index
            only the rows that have it, so the others' writes cost that index
            nothing.
    """

    name: str
    read: Callable[[Any], str | None] = attrs.field(eq=False, repr=False)
    field: str | None = attrs.field(default=None, kw_only=True)
    of: Callable[[Any], str | None] | None = attrs.field(
        default=None, kw_only=True, eq=False, repr=False
    )
    sparse: bool = attrs.field(default=False, kw_only=True)


def _field_key(
    name: str, field: str, of: Callable[[Any], str | None], *, sparse: bool = False
) -> LookupKey:
    """The lookup key ``name`` computed by ``of`` from field ``field`` alone."""

    def read(record: Any) -> str | None:
        value = getattr(record, field)
        # most records lack most keys' fields (a phone): no call for them
        return None if value is None else of(value)

    return LookupKey(name, read, field=field, of=of, sparse=sparse)


def _name(value: str | None) -> str | None:
    return normalize_name(value) if value else None


def _person_keys() -> tuple[LookupKey, ...]:
    """The matching keys of leads and contacts: one per indexed field of a matching
    strategy, computed as intake computes the value it looks up (`lookup_value`).
    Phones are sparse: many people come in with an email and no phone."""
    return tuple(
        _field_key(key, name, LOOKUP_VALUES[name], sparse=name != "email")
        for name, key in INDEXED_FIELDS.items()
    )


_LOOKUPS: dict[RecordKind, tuple[LookupKey, ...]] = {
    RecordKind.LEAD: _person_keys(),
    RecordKind.CONTACT: _person_keys(),
    RecordKind.ACCOUNT: (_field_key("name_key", "name", _name),),
    RecordKind.OPPORTUNITY: (),
    RecordKind.ACTIVITY: (),
}


def lookup_keys(kind: RecordKind) -> tuple[LookupKey, ...]:
    """The exact-lookup keys a store must index for ``kind``."""
    return _LOOKUPS[kind]


def _fold(value: str | None) -> str | None:
    return value.casefold() if value else None


_DERIVED: dict[RecordKind, tuple[Column, ...]] = {
    RecordKind.ACTIVITY: (Column("timeline_at", ColumnType.DATETIME, lambda r: r.timeline_at),),
}


def derived_columns(kind: RecordKind) -> tuple[Column, ...]:
    """Extra stored columns that only stores use (not queryable by name):
    the activity's ``timeline_at`` that orders a timeline."""
    return _DERIVED.get(kind, ())


_SEARCH: dict[RecordKind, tuple[LookupKey, ...]] = {
    RecordKind.LEAD: (
        LookupKey("search_name", lambda r: _fold(r.full_name)),
        LookupKey("search_last_name", lambda r: _fold(r.last_name)),
        LookupKey("search_company", lambda r: _fold(r.company_name)),
        LookupKey("search_email", lambda r: _fold(r.email)),
        LookupKey("search_topic", lambda r: _fold(r.topic)),
    ),
    RecordKind.CONTACT: (
        LookupKey("search_name", lambda r: _fold(r.full_name)),
        LookupKey("search_last_name", lambda r: _fold(r.last_name)),
        LookupKey("search_email", lambda r: _fold(r.email)),
    ),
    RecordKind.ACCOUNT: (LookupKey("search_name", lambda r: _fold(r.name)),),
    RecordKind.OPPORTUNITY: (LookupKey("search_name", lambda r: _fold(r.name)),),
    RecordKind.ACTIVITY: (LookupKey("search_subject", lambda r: _fold(r.subject)),),
}


def search_keys(kind: RecordKind) -> tuple[LookupKey, ...]:
    """The case-folded keys quick search looks in for ``kind``."""
    return _SEARCH[kind]


def record_value(record: Record, name: str) -> Any:
    """The value of queryable field ``name`` (or ``custom.<name>``) on ``record``.

    Raises:
        ValidationError: ``name`` is not a queryable field of the record's kind.
    """
    if name.startswith("custom."):
        return _plain(record.custom.get(name[7:]))
    column = _columns_by_name(record.KIND).get(name)
    if column is None:
        raise unknown_field(record.KIND, name)
    return column.read(record)


def field_reader(kind: RecordKind, name: str) -> Callable[[Record], Any]:
    """A function reading queryable field ``name`` from records of ``kind``, resolved
    once, for loops over many records (same values as `record_value`).

    Raises:
        ValidationError: ``name`` is not a queryable field of ``kind``.
    """
    if name.startswith("custom."):
        key = name[7:]
        return lambda record: _plain(record.custom.get(key))
    column = _columns_by_name(kind).get(name)
    if column is None:
        raise unknown_field(kind, name)
    return column.read


def unknown_field(kind: RecordKind, name: str) -> ValidationError:
    """The error for a query on a field ``kind`` does not have."""
    known = ", ".join(sorted(_columns_by_name(kind)))
    return ValidationError(
        f"{kind.value} has no queryable field {name!r}; use one of {known}, or "
        f"'custom.<name>' for a host field",
        field=name,
        value=name,
    )


def check_fields(kind: RecordKind, names: Sequence[str]) -> None:
    """Raise `ValidationError` for the first name that ``kind`` cannot be queried on."""
    columns = _columns_by_name(kind)
    for name in names:
        if not name.startswith("custom.") and name not in columns:
            raise unknown_field(kind, name)
        if name.startswith("custom.") and not name[7:].isidentifier():
            raise ValidationError(
                f"custom field name {name[7:]!r} is not valid in a query",
                field=name,
                value=name,
            )


_ACCEPTS: dict[ColumnType, tuple[tuple[type, ...], str]] = {
    ColumnType.TEXT: ((str,), "text"),
    ColumnType.INT: ((int, Decimal, float), "a number"),
    ColumnType.DECIMAL: ((int, Decimal, float), "a number (Decimal for money amounts)"),
    ColumnType.BOOL: ((bool,), "True or False"),
    ColumnType.DATETIME: ((datetime,), "a timezone-aware datetime"),
    ColumnType.DATE: ((date,), "a datetime.date"),
}


def check_comparison(kind: RecordKind, compare: Compare) -> None:
    """Refuse a comparison whose value cannot be compared with the field.

    Raises:
        ValidationError: naming the field, the value and what it needs.
    """
    ctype = column_type(kind, compare.field)
    if compare.op in (Op.STARTS_WITH, Op.CONTAINS) and ctype not in (None, ColumnType.TEXT):
        raise ValidationError(
            f"{compare.op.value} needs a text field, and {kind.value}.{compare.field} is "
            f"{ctype.value if ctype else 'custom'}",
            field=compare.field,
            value=compare.value,
        )
    values = compare.value if isinstance(compare.value, tuple) else (compare.value,)
    for value in values:
        if value is None:
            continue
        if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
            raise ValidationError(
                f"{kind.value}.{compare.field} is compared with a naive datetime "
                f"({value.isoformat()}); attach a time zone",
                field=compare.field,
                value=value,
            )
        if ctype is None:
            continue
        accepted, label = _ACCEPTS[ctype]
        wrong = not isinstance(value, accepted)
        wrong = wrong or (ctype is not ColumnType.BOOL and isinstance(value, bool))
        wrong = wrong or (ctype is ColumnType.DATE and isinstance(value, datetime))
        if wrong:
            raise ValidationError(
                f"{kind.value}.{compare.field} holds {label}; it cannot be compared with "
                f"{value!r} ({type(value).__name__})",
                field=compare.field,
                value=value,
            )


def column_type(kind: RecordKind, name: str) -> ColumnType | None:
    """The SQL type of column ``name`` of ``kind`` (``None`` for custom fields)."""
    column = _columns_by_name(kind).get(name)
    return column.type if column else None


def _by_value(value: Any) -> tuple[Any, ...]:
    return (False,) if value is None else (True, value)


def sort_order(kind: RecordKind, name: str) -> Callable[[Any], tuple[Any, ...]]:
    """The function that turns a value of field ``name`` of ``kind`` into its key
    for ascending order: how every store sorts by the field (`SortKey`) and orders
    its `GroupCount` values. Descending is the reverse.

    Empty (``None``) comes first. An option-set field (see `Column.options`) sorts
    by the position of its value in the option set (``hot`` < ``warm`` < ``cold``),
    and a value that is not one of the options after all of them, by its text.
    Every other field sorts by its value (text by code point). Only ordering is
    affected: filters compare option-set values as text, like any text field.
    """
    column = _columns_by_name(kind).get(name)
    if column is None or column.options is None:
        return _by_value
    ranks = {value: i for i, value in enumerate(column.options)}
    unknown = len(column.options)

    def key(value: Any) -> tuple[Any, ...]:
        if value is None:
            return (False,)
        return (True, ranks.get(value, unknown), value)

    return key


def iter_kinds() -> Iterator[tuple[RecordKind, type[Record]]]:
    """Every stored kind with its class."""
    yield RecordKind.LEAD, Lead
    yield RecordKind.CONTACT, Contact
    yield RecordKind.ACCOUNT, Account
    yield RecordKind.OPPORTUNITY, Opportunity
    yield RecordKind.ACTIVITY, Activity
