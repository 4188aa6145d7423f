"""The engine both sequence test modules run on: a MemoryStore with readable,
sequential ids (``lead-1``, ``due-1``, ``enr-1``) and an optional runtime config."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from salesflow import events as ev
from salesflow.clock import FakeClock
from salesflow.engine import Salesflow
from salesflow.sequences.enrollment import RuntimeConfig
from salesflow.stores.memory import MemoryStore

__all__ = ["counter", "make_engine"]


def counter(prefix: str) -> Callable[[], str]:
    """Sequential ids ``prefix-1``, ``prefix-2``, …"""
    numbers = itertools.count(1)
    return lambda: f"{prefix}-{next(numbers)}"


def make_engine(
    clock: FakeClock, sink: ev.EventSink, config: RuntimeConfig | None = None
) -> Salesflow:
    """An engine on a new MemoryStore with sequential ids."""
    numbers = itertools.count(1)
    return Salesflow(
        MemoryStore(),
        clock=clock,
        sink=sink,
        ids=lambda kind: f"{kind.value}-{next(numbers)}",
        due_ids=counter("due"),
        enrollment_ids=counter("enr"),
        sequences=config,
    )
