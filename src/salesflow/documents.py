"""Reading definition documents: a table of keys with typed reads whose every error names its path.

The definition readers (`salesflow.sequences.io`, `salesflow.scoring_io`,
`salesflow.routing_io`, `salesflow.process_io`) read plain dicts parsed from JSON or
TOML. Each nested mapping is wrapped in a `Table`, which refuses unknown keys and reads
values with a type check; whatever is refused raises
`salesflow.errors.ValidationError` whose message starts with the path of the
offending key (``rules[2].target.team_id``) and whose ``field`` is that path.

Every reader also bounds what it is given, because definitions are imported from
users: `read_text` refuses a JSON or TOML text over `MAX_DOCUMENT_BYTES` before it is
parsed, `parse_json` and `parse_toml` turn every parser failure (including a document
nested too deeply for the parser) into `ValidationError`, and `check_document` walks a
parsed document without recursion and refuses one nested deeper than `MAX_NESTING` or
holding more than about `MAX_DOCUMENT_BYTES` of data, so no reader ever meets a value
deep enough to exhaust the stack or large enough to exhaust memory.

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

import json
import reprlib
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar, overload

from salesflow.errors import ValidationError

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_NESTING",
    "Table",
    "check_document",
    "describe",
    "fail",
    "join",
    "parse_json",
    "parse_toml",
    "read_text",
]

MAX_DOCUMENT_BYTES = 1_000_000
"""The largest definition document read: UTF-8 bytes of JSON or TOML text, or about as
much data in a parsed document."""

MAX_NESTING = 100
"""The deepest nesting of tables and lists in a definition document (the deepest real
one, a condition nested 20 deep inside a step, is under 50)."""

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


class _Short(reprlib.Repr):
    """``repr`` that stops early: a few levels, a few items, never a huge number."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = self.maxlong = 60

    def repr_int(self, x: int, level: int) -> str:
        # repr() of an int over 4300 digits raises ValueError
        if x.bit_length() > 1000:
            return f"<a whole number of about {int(x.bit_length() * 0.30103)} digits>"
        return super().repr_int(x, level)


_SHORT = _Short()


def describe(value: object) -> str:
    """The ``repr`` of a value for an error message, cut to 60 characters.

    Args:
        value: Any value read from a document.

    Returns:
        ``repr(value)``, ending in ``...`` where it was cut (a hostile document must
        not make a megabyte-long message, nor a deeply nested or huge value a crash).
    """
    text = _SHORT.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_text(text: object, what: str, limit: int = MAX_DOCUMENT_BYTES) -> str:
    """The text of a JSON or TOML document, checked for size before it is parsed.

    Args:
        text: The document as text or UTF-8 bytes.
        what: Its format, for messages (``"JSON"``).
        limit: The most UTF-8 bytes it may hold.

    Returns:
        The text.

    Raises:
        ValidationError: ``text`` is neither text nor bytes, is over ``limit`` bytes, or
            its bytes are not UTF-8.
    """
    if isinstance(text, bytes | bytearray):
        if len(text) > limit:
            fail("", f"the {what} document is {len(text)} bytes; the limit is {limit}")
        try:
            return bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            fail("", f"the {what} document is not UTF-8 text: {exc}")
    if not isinstance(text, str):
        fail("", f"expected {what} text, got {type(text).__name__}")
    # a character is at most 4 bytes: skip encoding a text that is surely too long
    size = len(text) if len(text) > limit else len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        fail("", f"the {what} document is {size} bytes or more; the limit is {limit}")
    return text


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(f"the key {describe(key)} appears twice in one object")
        doc[key] = value
    return doc


def parse_json(text: object, what: str = "JSON") -> Any:
    """The value of a JSON document, size-checked by `read_text` first.

    A key that appears twice in one object is refused (JSON leaves it undefined).

    Raises:
        ValidationError: the text is too long, not UTF-8, not JSON, or nested too deeply
            for the parser.
    """
    source = read_text(text, what)
    try:
        return json.loads(source, object_pairs_hook=_unique_keys)
    except RecursionError:
        fail("", f"the {what} document is nested too deeply (at most {MAX_NESTING} levels)")
    except ValueError as exc:
        fail(
            "", f"not valid JSON: {exc} (this text is not JSON: check its quotes, commas, brackets)"
        )


def parse_toml(text: object, what: str = "TOML") -> Any:
    """The value of a TOML document, size-checked by `read_text` first.

    Raises:
        ValidationError: the text is too long, not UTF-8, not TOML, or nested too deeply
            for the parser.
    """
    source = read_text(text, what)
    try:
        return tomllib.loads(source)
    except RecursionError:
        fail("", f"the {what} document is nested too deeply (at most {MAX_NESTING} levels)")
    except ValueError as exc:
        fail("", f"not valid TOML: {exc} (check the quotes, brackets and keys there)")


def check_document(data: object, *, limit: int = MAX_DOCUMENT_BYTES) -> None:
    """Refuse a parsed document that is nested too deeply or holds too much.

    The walk keeps its own stack (no recursion), counts roughly the bytes the document
    would take as JSON and stops as soon as a limit is passed, so a hostile document
    (a list nested 100,000 deep, a table that holds itself, a million keys) costs
    little and never exhausts the stack.

    Args:
        data: A document as plain dicts, lists and scalars.
        limit: About how many bytes of data it may hold.

    Raises:
        ValidationError: a table or list nested deeper than `MAX_NESTING` (naming the
            path that goes too deep), or more than about ``limit`` bytes of data.
    """
    stack: list[tuple[object, str, int]] = [(data, "", 0)]
    size = 0
    while stack:
        value, path, depth = stack.pop()
        size += 1
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, int):
            size += value.bit_length() // 3
        elif isinstance(value, Mapping | list | tuple):
            if depth >= MAX_NESTING:
                fail(path, f"tables and lists are nested more than {MAX_NESTING} deep")
            if size + len(stack) + len(value) > limit:
                break
            if isinstance(value, Mapping):
                for key, item in value.items():
                    size += len(key) if isinstance(key, str) else 1
                    stack.append((item, _short_join(path, key), depth + 1))
            else:
                stack.extend(
                    (item, _short_join(path, i), depth + 1) for i, item in enumerate(value)
                )
        if size + len(stack) > limit:
            break
    else:
        return
    fail("", f"the document holds more than about {limit} bytes of data, the limit")


def _short_join(path: str, key: object) -> str:
    # a path through a hostile document could be as long as the document
    if len(path) > 200:
        return path if path.endswith("...") else path + "..."
    if isinstance(key, int) or (isinstance(key, str) and len(key) <= 60):
        return join(path, key)
    return join(path, describe(key))


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
