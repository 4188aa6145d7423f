"""The public test kit: store contract, fake clock, simulation, strategies.

`StoreContract` needs pytest and hypothesis (the ``test`` extra) and is imported
from `salesflow.testing.contract`. `run_monte_carlo` plays a `ResponseModel` over
many simulated records of one sequence and returns its `Funnel`.
"""

from __future__ import annotations

from salesflow.clock import FakeClock
from salesflow.events import ListSink
from salesflow.testing.faults import FaultyStore, store_snapshot
from salesflow.testing.funnel import Funnel, OutcomeTimes, StepFunnel, WorkloadStats
from salesflow.testing.montecarlo import run_monte_carlo
from salesflow.testing.response import ResponseModel, StepResponse
from salesflow.testing.simulate import simulate

__all__ = [
    "FakeClock",
    "FaultyStore",
    "Funnel",
    "ListSink",
    "OutcomeTimes",
    "ResponseModel",
    "StepFunnel",
    "StepResponse",
    "WorkloadStats",
    "run_monte_carlo",
    "simulate",
    "store_snapshot",
]
