"""The engine's cheap copies and changes of attrs instances (`shallow_copy`,
`evolve_fields`, `ref_of`, `check_fields_fast`): the same results and the same
refusals as the full attrs paths they stand in for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow.activity import Activity, ActivityKind, ActivityState
from salesflow.errors import ValidationError
from salesflow.lead import SYSTEM_FIELDS, Lead, LeadStatus
from salesflow.sequences.enrollment import Enrollment
from salesflow.values import (
    RecordKind,
    RecordRef,
    check_fields,
    check_fields_fast,
    custom_fields,
    custom_fields_fast,
    evolve_fields,
    ref_of,
    shallow_copy,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REF = RecordRef(kind=RecordKind.LEAD, id="lead-1")


def activity(**fields: Any) -> Activity:
    values: dict[str, Any] = {
        "id": "activity-1",
        "created_at": T0,
        "modified_at": T0,
        "kind": ActivityKind.PHONE_CALL,
        "subject": "Call",
        "regarding": REF,
        "owner_id": "ann",
        "due_at": T0,
        "custom": {"sequence_step": "call_first"},
    }
    values.update(fields)
    return Activity(**values)


def lead() -> Lead:
    return Lead(
        id="lead-1",
        created_at=T0,
        modified_at=T0,
        topic="10 laptops",
        last_name="Ruiz",
        custom={"tier": "gold"},
    )


def outcome(make: Any) -> Any:
    try:
        return ("ok", attrs.asdict(make(), recurse=False))
    except ValidationError as refused:
        return ("refused", str(refused))


# --- shallow_copy ----------------------------------------------------------------------


def test_shallow_copy_is_an_equal_distinct_instance() -> None:
    original = activity()
    twin = shallow_copy(original)
    assert twin == original
    assert twin is not original
    assert twin.custom is original.custom  # shallow: the stores copy containers themselves


def test_shallow_copy_runs_no_hooks() -> None:
    enrollment = Enrollment(
        id="e-1", sequence_id="s", sequence_version=1, record=REF, owner_id=None
    )
    twin = shallow_copy(enrollment)
    twin.version = 5
    assert enrollment.version == 1
    assert twin.record == enrollment.record


# --- evolve_fields -----------------------------------------------------------------------

texts = st.one_of(st.none(), st.text(max_size=120), st.integers())
instants = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))]),
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
)
changes = st.fixed_dictionaries(
    {},
    optional={
        "state": st.sampled_from([*ActivityState, "completed", "nope"]),
        "outcome": texts,
        "closed_at": instants,
        "modified_at": instants,
        "due_at": instants,
        "owner_id": st.one_of(st.none(), st.sampled_from(["bob", " bob", ""])),
        "subject": texts,
    },
)


@given(changes)
def test_evolve_fields_answers_as_attrs_evolve(change: dict[str, Any]) -> None:
    original = activity()
    assert outcome(lambda: evolve_fields(original, **change)) == outcome(
        lambda: attrs.evolve(original, **change)
    )
    assert original == activity()  # never changed in place


def test_evolve_fields_does_not_share_the_custom_dict() -> None:
    original = lead()
    changed = evolve_fields(original, status=LeadStatus.DISQUALIFIED, modified_at=T0)
    assert changed.status is LeadStatus.DISQUALIFIED
    assert changed.custom == {"tier": "gold"}
    changed.custom["tier"] = "silver"
    assert original.custom == {"tier": "gold"}


def test_evolve_fields_refuses_what_the_class_refuses() -> None:
    with pytest.raises(ValidationError, match=r"Activity\.outcome"):
        evolve_fields(activity(), outcome="x" * 101)
    with pytest.raises(ValidationError, match="naive"):
        evolve_fields(activity(), closed_at=datetime(2026, 3, 2))
    with pytest.raises(TypeError, match="no field 'nope'"):
        evolve_fields(activity(), nope=1)


def test_evolve_fields_converts_as_the_class() -> None:
    later = datetime(2026, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    changed = evolve_fields(activity(), state="completed", closed_at=later, outcome="  done ")
    assert changed.state is ActivityState.COMPLETED
    assert changed.closed_at == later
    assert changed.closed_at.tzinfo is UTC
    assert changed.outcome == "done"


def test_evolve_fields_honours_disabled_validators() -> None:
    with attrs.validators.disabled():
        changed = evolve_fields(activity(), outcome="x" * 101)
    assert changed.outcome == "x" * 101


# --- ref_of and check_fields_fast ------------------------------------------------------


def test_ref_of_is_the_records_ref() -> None:
    record = activity()
    assert ref_of(record) == record.ref
    assert hash(ref_of(record)) == hash(record.ref)
    assert ref_of(lead()) == lead().ref


@pytest.mark.parametrize(
    ("fields", "creating"),
    [
        ({"topic": "t", "last_name": "l"}, True),
        ({"topic": "t"}, True),
        ({"topic": "t", "last_name": "l", "status": "open"}, True),
        ({"nope": 1}, False),
        ({"city": "Oslo"}, False),
        ({}, False),
    ],
)
def test_check_fields_fast_agrees_with_check_fields(fields: dict[str, Any], creating: bool) -> None:
    def run(check: Any) -> str:
        try:
            check(Lead, fields, SYSTEM_FIELDS, creating=creating)
        except ValidationError as refused:
            return str(refused)
        return "ok"

    assert run(check_fields_fast) == run(check_fields)


@pytest.mark.parametrize(
    "custom",
    [
        {},
        {"sequence_id": "s", "enrollment_id": "e-1", "sequence_step": "call"},
        {"note": "x" * 4000},
        {"note": "x" * 4001},
        {"9bad": "x"},
        {"n": 1, "d": T0},
        {"when": datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=2)))},
        {"obj": object()},
    ],
)
def test_custom_fields_fast_agrees_with_custom_fields(custom: dict[str, Any]) -> None:
    def run(convert: Any) -> object:
        try:
            return convert(custom)
        except ValidationError as refused:
            return str(refused)

    assert run(custom_fields_fast) == run(custom_fields)
