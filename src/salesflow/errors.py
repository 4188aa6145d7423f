"""The error tree: every failure salesflow reports is a `SalesflowError`.

Each message names the record or field, the offending value and what to do
instead, so a host can show it to a user as it is.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "InvalidDefinition",
    "InvalidTransition",
    "NotFound",
    "PermissionDenied",
    "SalesflowError",
    "StoreError",
    "ValidationError",
    "VersionConflict",
]


class SalesflowError(Exception):
    """Base class of every error salesflow raises on purpose."""


class ValidationError(SalesflowError, ValueError):
    """A value given to salesflow is malformed, missing or out of range.

    Attributes:
        field: The dotted name of the offending field (``"Lead.email"``), or
            ``None`` when the problem is not about one field.
        value: The value that was refused.
    """

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class NotFound(SalesflowError, LookupError):
    """No record with the given id exists in the store."""

    def __init__(self, kind: str, record_id: str, *, field: str | None = None) -> None:
        where = (
            f"{field}={record_id!r} points at a {kind} that" if field else f"{kind} {record_id!r}"
        )
        super().__init__(
            f"{where} does not exist; check the id (ids are returned by the create_* commands)"
        )
        self.kind = kind
        self.record_id = record_id
        self.field = field


class AlreadyExists(SalesflowError):
    """A record with the same id (or the same unique key) is already stored."""

    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"{kind} {record_id!r} already exists; use an update command to change it")
        self.kind = kind
        self.record_id = record_id


class VersionConflict(SalesflowError):
    """The record changed since it was read (optimistic concurrency).

    Reload the record and apply the change again.
    """

    def __init__(self, kind: str, record_id: str, *, expected: int, actual: int) -> None:
        super().__init__(
            f"{kind} {record_id!r} is at version {actual}, not {expected}: someone "
            f"else changed it since you read it; reload it and try again"
        )
        self.kind = kind
        self.record_id = record_id
        self.expected = expected
        self.actual = actual


class InvalidTransition(SalesflowError):
    """A lifecycle move that the record's current state does not allow."""

    def __init__(self, message: str, *, state: str | None = None, event: str | None = None):
        super().__init__(message)
        self.state = state
        self.event = event


class InvalidDefinition(SalesflowError):
    """A definition (view, sequence, model, …) is inconsistent.

    Attributes:
        problems: Every problem found, each a complete sentence.
    """

    def __init__(self, problems: list[str] | tuple[str, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class PermissionDenied(SalesflowError, PermissionError):
    """The actor a command runs for lacks the privilege it needs, on the record it
    names or at all (see `salesflow.access`). Nothing was changed.

    Attributes:
        privilege: The privilege that was missing (a `salesflow.access.Privilege` value).
        actor: The actor's user id.
        record: The record it was missing on (``"lead 'L1'"``), or None when the
            privilege is not about one record.
    """

    def __init__(
        self, message: str, *, privilege: str, actor: str, record: str | None = None
    ) -> None:
        super().__init__(message)
        self.privilege = privilege
        self.actor = actor
        self.record = record


class StoreError(SalesflowError):
    """The store could not be opened, or holds data this version cannot read."""
