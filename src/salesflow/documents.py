"""Reading definition documents: a table of keys with typed reads whose every error names its path.

The definition readers (`salesflow.sequences.io`, `salesflow.scoring_io`,
`salesflow.routing_io`, `salesflow.process_io`) read plain dicts parsed from JSON or
TOML. Each nested mapping is wrapped in a `Table`, which refuses unknown keys and reads
values with a type check; whatever is refused raises
`salesflow.errors.ValidationError` whose message starts with the path of the
offending key (``rules[2].target.team_id``) and whose ``field`` is that path.

Example:
    >>> table = Table({"id": "a", "days": 2}, "steps[0]", ("id", "days", "next"))
    >>> table.text("id"), table.integer("days", 0), table.optional_text("next")
    ('a', 2, None)
    >>> table.integer("id", 0)
    Traceback (most recent call last):
    ...
    salesflow.errors.ValidationError: steps[0].id: expected a whole number, got 'a'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar, overload

from salesflow.errors import ValidationError

__all__ = ["Table", "describe", "fail", "join"]

T = TypeVar("T")

_REQUIRED: Any = object()
"""The default of `Table.get` that makes the key required (``None`` is a real default)."""


def fail(path: str, message: str, value: object = None) -> NoReturn:
    """Refuse a document at ``path``.

    Args:
        path: The path of the offending key (``steps[3].span.days``); ``""`` for the
            document as a whole.
        message: What is wrong, and what would be right.
        value: The refused value, kept on the error.

    Raises:
        ValidationError: always; its message starts with ``path`` (``document`` for
            ``""``) and its ``field`` is ``path`` (``None`` for ``""``).
    """
    raise ValidationError(f"{path or 'document'}: {message}", field=path or None, value=value)


def describe(value: object) -> str:
    """The ``repr`` of a value for an error message, cut to 60 characters.

    Args:
        value: Any value read from a document.

    Returns:
        ``repr(value)``, ending in ``...`` where it was cut (a hostile document must
        not make a megabyte-long message).
    """
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def join(path: str, key: str | int) -> str:
    """The path of ``key`` inside the value at ``path``.

    Args:
        path: The path of the containing table or list (``""`` for the document).
        key: A key of a table, or an index into a list.

    Returns:
        ``path.key``, ``key`` at the top, or ``path[index]`` for an index.
    """
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Table:
    """One mapping of a document, read key by key with its path for error messages.

    Attributes:
        data: The mapping as given.
        path: Its path in the document (``""`` for the document itself).
    """

    def __init__(
        self, data: object, path: str, allowed: Iterable[str], *, required: Iterable[str] = ()
    ) -> None:
        """Check the keys of ``data``.

        Args:
            data: The value that should be a mapping.
            path: Its path in the document.
            allowed: Every key it may hold.
            required: Keys that must be present, checked now rather than when read (so a
                reader may index ``data`` for them directly).

        Raises:
            ValidationError: ``data`` is not a mapping, has a key that is not text or
                not allowed, or lacks a required key.
        """
        if not isinstance(data, Mapping):
            fail(path, f"expected a table of keys, got {describe(data)}", data)
        allowed = tuple(allowed)
        for key in data:
            if not isinstance(key, str):
                fail(path, f"keys must be text, got {describe(key)}", key)
            if key not in allowed:
                fail(
                    join(path, key),
                    f"unknown key {key!r}; expected one of {', '.join(allowed)}",
                    key,
                )
        self.data: Mapping[str, Any] = data
        self.path = path
        for key in required:
            self.raw(key)

    def where(self, key: str) -> str:
        """The path of ``key`` in this table."""
        return join(self.path, key)

    def raw(self, key: str) -> Any:
        """The value of a required key, of any type.

        Raises:
            ValidationError: the key is missing.
        """
        if key not in self.data:
            fail(self.where(key), f"the key {key!r} is missing")
        return self.data[key]

    def text(self, key: str) -> str:
        """A required text value.

        Raises:
            ValidationError: the key is missing or its value is not text.
        """
        value = self.raw(key)
        if not isinstance(value, str):
            fail(self.where(key), f"expected text, got {describe(value)}", value)
        return value

    def optional_text(self, key: str) -> str | None:
        """An optional text value (``None`` when missing or null).

        Raises:
            ValidationError: the value is neither text nor null.
        """
        return None if self.data.get(key) is None else self.text(key)

    def integer(self, key: str, default: int | None = None) -> int:
        """A whole number (not a boolean).

        Args:
            key: The key to read.
            default: The value of a missing key; ``None`` makes the key required.

        Raises:
            ValidationError: a required key is missing, or the value is not a whole
                number.
        """
        value = self.data.get(key, default) if default is not None else self.raw(key)
        # bool is an int subclass, but true is not a count.
        if isinstance(value, bool) or not isinstance(value, int):
            fail(self.where(key), f"expected a whole number, got {describe(value)}", value)
        return value

    def optional_integer(self, key: str) -> int | None:
        """An optional whole number (``None`` when missing or null).

        Raises:
            ValidationError: the value is neither a whole number nor null.
        """
        return None if self.data.get(key) is None else self.integer(key)

    def flag(self, key: str, default: bool) -> bool:
        """An optional boolean (``default`` when missing).

        Raises:
            ValidationError: the value is not true or false.
        """
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            fail(self.where(key), f"expected true or false, got {describe(value)}", value)
        return value

    def items(self, key: str, default: list[Any] | None = None) -> list[Any]:
        """A list.

        Args:
            key: The key to read.
            default: The value of a missing key; ``None`` makes the key required.

        Raises:
            ValidationError: a required key is missing, or the value is not a list.
        """
        value = self.data.get(key, default) if default is not None else self.raw(key)
        if not isinstance(value, list):
            fail(self.where(key), f"expected a list, got {describe(value)}", value)
        return value

    def get(self, key: str, kind: type[T], default: T = _REQUIRED) -> T:
        """A value of the Python type ``kind``, named by its type in errors.

        An explicit null is not a missing key: it is refused like any value of the
        wrong type (use `optional` where null means "not given").

        Args:
            key: The key to read.
            kind: The type the value must have (``int`` refuses booleans).
            default: The value of a missing key; none makes the key required.

        Raises:
            ValidationError: a required key is missing, or the value is not a ``kind``.
        """
        value = self.raw(key) if default is _REQUIRED else self.data.get(key, default)
        # bool is an int subclass, but a version of True is a mistake, not 1.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            fail(
                self.where(key),
                f"expected {kind.__name__}, got {type(value).__name__} {describe(value)}",
                value,
            )
        return value

    @overload
    def optional(self, key: str, kind: type[T]) -> T | None: ...

    @overload
    def optional(self, key: str, kind: type[T], default: T) -> T: ...

    def optional(self, key: str, kind: type[T], default: T | None = None) -> T | None:
        """A value of the Python type ``kind``, or ``default`` when missing or null.

        Raises:
            ValidationError: the value is neither null nor a ``kind``.
        """
        if self.data.get(key) is None:
            return default
        return self.get(key, kind)
