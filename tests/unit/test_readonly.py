"""`salesflow.stores.readonly`: every unit method is a read or a write, and a
read-only unit refuses the writes before the store sees them."""

from __future__ import annotations

import pytest

from salesflow.errors import StoreError
from salesflow.stores.base import UnitOfWork
from salesflow.stores.memory import MemoryStore
from salesflow.stores.readonly import READ_METHODS, WRITE_METHODS, ReadOnlyUnit


def _protocol_methods() -> set[str]:
    return {name for name in vars(UnitOfWork) if not name.startswith("_")}


def test_every_unit_method_is_either_a_read_or_a_write() -> None:
    # A method added to the protocol must be sorted here, or read-only units would
    # pass a new write straight through.
    assert not READ_METHODS & WRITE_METHODS
    assert _protocol_methods() == READ_METHODS | WRITE_METHODS


def test_a_refused_write_never_reaches_the_unit() -> None:
    class Recording:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def __getattr__(self, name: str) -> object:
            return lambda *args, **kwargs: self.calls.append(name)

    inner = Recording()
    unit = ReadOnlyUnit(inner, "MemoryStore")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match=r"^add\(\) writes, and this unit of work on the "):
        unit.add(object())
    unit.find(object, "x")
    assert inner.calls == ["find"]


def test_the_message_says_how_to_write() -> None:
    store = MemoryStore()
    with store.unit_of_work(read_only=True) as uow, pytest.raises(StoreError) as caught:
        uow.put_state("kind", "key", {}, expected_version=None, now=None)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "put_state() writes, and this unit of work on the MemoryStore is read-only; open "
        "the unit with unit_of_work() (without read_only=True) to change what is stored"
    )
    assert "ReadOnlyUnit(" in repr(uow)
