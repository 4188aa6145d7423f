"""The check a guarded command leaves for its first unit of work.

A command called on an actor-bound engine (`Salesflow.as_actor`) must be refused
before it changes anything, and its check must read the records it names in the same
transaction that then changes them (so an owner change in between cannot slip
through). The guard (`salesflow.commands.guards`) therefore does not read the records
itself: it leaves a `PendingCheck` here, and `EngineCore._command` and
`EngineCore._read` run it first thing inside the unit they open.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

from salesflow.stores.base import UnitOfWork

__all__ = ["PENDING", "PendingCheck", "authorize_pending"]


class PendingCheck(Protocol):
    """A guard's record check, waiting for a unit of work to read the records in."""

    done: bool

    def run(self, uow: UnitOfWork) -> None:
        """Read the records the command names and refuse (`PermissionDenied`) any the
        actor may not reach; marks the check done."""
        ...


PENDING: ContextVar[PendingCheck | None] = ContextVar("salesflow_pending_check", default=None)
"""The check of the guarded command running in this context (thread, task), if any."""


def authorize_pending(uow: UnitOfWork) -> None:
    """Run the pending check, if one is waiting, in ``uow``."""
    check = PENDING.get()
    if check is not None and not check.done:
        check.run(uow)
