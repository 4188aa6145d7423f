"""The public test kit: store contract, fake clock, simulation, strategies.

`StoreContract` needs pytest and hypothesis (the ``test`` extra) and is imported
from `salesflow.testing.contract`.
"""

from __future__ import annotations

from salesflow.clock import FakeClock
from salesflow.events import ListSink
from salesflow.testing.simulate import simulate

__all__ = ["FakeClock", "ListSink", "simulate"]
