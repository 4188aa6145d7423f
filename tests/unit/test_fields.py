"""The TypedDicts of `salesflow.fields` list exactly the fields a host may set on each
record class, with types that accept every value the record accepts."""

from __future__ import annotations

import types
import typing
from typing import Any

import attrs
import pytest

from salesflow import lead as leads
from salesflow.activity import Activity
from salesflow.fields import (
    AccountFields,
    ActivityFields,
    ContactFields,
    LeadFields,
    OpportunityFields,
)
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.party import Account, Contact
from salesflow.values import Record

RECORD_SYSTEM = {"id", "version", "created_at", "modified_at"}
"""Set by the engine on every record, never by a host."""

SYSTEM: dict[type[Record], set[str]] = {
    Lead: RECORD_SYSTEM
    | {
        "status",
        "status_reason",
        "qualifying_opportunity_id",
        "qualified_account_id",
        "qualified_contact_id",
        "closed_at",
    },
    Contact: RECORD_SYSTEM,
    Account: RECORD_SYSTEM,
    # lines and their price list change only through set_opportunity_lines & co.
    Opportunity: RECORD_SYSTEM
    | {"status", "close_reason", "actual_close_date", "price_list_id", "lines"},
    # an activity's kind, subject and regarding record are the command's own arguments
    Activity: RECORD_SYSTEM | {"state", "closed_at", "regarding", "kind", "subject"},
}

PAIRS: list[tuple[type[Any], type[Record]]] = [
    (LeadFields, Lead),
    (ContactFields, Contact),
    (AccountFields, Account),
    (OpportunityFields, Opportunity),
    (ActivityFields, Activity),
]


def _ids(value: Any) -> str:
    return str(getattr(value, "__name__", value))


@pytest.mark.parametrize(("fields", "cls"), PAIRS, ids=_ids)
def test_typed_dict_lists_exactly_the_editable_fields(fields: type[Any], cls: type[Record]) -> None:
    editable = {a.name for a in attrs.fields(cls)} - SYSTEM[cls]
    assert set(fields.__annotations__) == editable


def test_lead_fields_are_the_lead_modules_editable_fields() -> None:
    assert set(LeadFields.__annotations__) == leads.EDITABLE_FIELDS


@pytest.mark.parametrize(("fields", "cls"), PAIRS, ids=_ids)
def test_every_field_is_optional_in_the_typed_dict(fields: type[Any], cls: type[Record]) -> None:
    # create and update share the TypedDict, so nothing is required at the type level
    assert fields.__total__ is False
    assert fields.__required_keys__ == frozenset()


def _members(tp: Any) -> set[Any]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return set(typing.get_args(tp))
    return {tp}


@pytest.mark.parametrize(("fields", "cls"), PAIRS, ids=_ids)
def test_typed_dict_types_accept_what_the_record_stores(
    fields: type[Any], cls: type[Record]
) -> None:
    record_types = typing.get_type_hints(cls)
    dict_types = typing.get_type_hints(fields)
    for name, tp in dict_types.items():
        missing = _members(record_types[name]) - _members(tp)
        assert not missing, f"{fields.__name__}.{name} does not accept {missing}"


@pytest.mark.parametrize(("fields", "cls"), PAIRS, ids=_ids)
def test_typed_dict_allows_none_only_where_the_record_does(
    fields: type[Any], cls: type[Record]
) -> None:
    record_types = typing.get_type_hints(cls)
    dict_types = typing.get_type_hints(fields)
    for name, tp in dict_types.items():
        if type(None) in _members(tp):
            assert type(None) in _members(record_types[name]), (
                f"{fields.__name__}.{name} allows None but {cls.__name__}.{name} does not"
            )
