"""Safe text templates: ``"Renewal for {account.name}"`` filled from a record's fields.

Automation rules name new leads, copied deals, activities and notifications from a
template. A template can only read fields: a placeholder is ``{field}`` (a field of
the item the rule runs on), ``{contact.field}`` or ``{account.field}`` (the item's
contact or account), or ``{custom.key}`` (a host field). There is no attribute
access, no indexing, no formatting language and no code: anything else between
braces is refused when the template is built. ``{{`` and ``}}`` stand for literal
braces.

Fields are checked against the record kinds when a rule is defined
(`Template.check`), so a template naming a missing field fails at definition time,
never at run time. A field without a value renders as an empty string.

Example:
    >>> from salesflow.values import RecordKind
    >>> t = Template("Service renewal: {name} ({account.name})")
    >>> t.placeholders
    ('name', 'account.name')
    >>> t.check(RecordKind.OPPORTUNITY)
    >>> t.render({"name": "10 laptops", "account.name": "Contoso"})
    'Service renewal: 10 laptops (Contoso)'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs

from salesflow.errors import ValidationError
from salesflow.stores.base import check_fields
from salesflow.values import Money, RecordKind

__all__ = ["MAX_TEMPLATE", "Template", "render_value"]

MAX_TEMPLATE = 2000
"""The longest template text, in characters."""

_NAME = r"[A-Za-z][A-Za-z0-9_]{0,63}"
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER = re.compile(rf"(?:(contact|account|custom)\.)?({_NAME})")
_PARTS = {"contact": RecordKind.CONTACT, "account": RecordKind.ACCOUNT}

Piece = str | tuple[str]
"""A literal piece of text, or a one-tuple holding a placeholder."""


def _parse(text: str) -> tuple[Piece, ...]:
    pieces: list[Piece] = []
    literal: list[str] = []
    at = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[at : match.start()])
        at = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
            continue
        inner = match.group(1)
        if inner is None:
            raise ValidationError(
                f"template {text!r}: a single {token!r} at position {match.start()}; "
                f"write {token * 2!r} for a literal brace",
                field="template",
                value=text,
            )
        name = inner.strip()
        if _PLACEHOLDER.fullmatch(name) is None:
            raise ValidationError(
                f"template {text!r}: {{{inner}}} is not a field placeholder; use "
                "{field}, {contact.field}, {account.field} or {custom.key} (templates "
                "can only read fields)",
                field="template",
                value=text,
            )
        if literal:
            pieces.append("".join(literal))
            literal = []
        pieces.append((name,))
    literal.append(text[at:])
    if "".join(literal):
        pieces.append("".join(literal))
    return tuple(pieces)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(
            f"a template is text, not {type(value).__name__}: {value!r}",
            field="template",
            value=value,
        )
    if len(value) > MAX_TEMPLATE:
        raise ValidationError(
            f"a template holds at most {MAX_TEMPLATE} characters (this one {len(value)})",
            field="template",
            value=value[:60],
        )
    if "\x00" in value:
        raise ValidationError(
            "a template must not contain NUL characters", field="template", value=value[:60]
        )
    return value


@attrs.frozen
class Template:
    """A text with ``{field}`` placeholders (see the module docstring).

    Attributes:
        text: The template as written.

    Raises:
        ValidationError: the text is not a string, is too long, or holds anything
            between braces other than a field placeholder.
    """

    text: str = attrs.field(converter=_text)
    _pieces: tuple[Piece, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_pieces", _parse(self.text))

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The placeholders in order of appearance, as written (``account.name``)."""
        return tuple(p[0] for p in self._pieces if isinstance(p, tuple))

    def check(self, kind: RecordKind) -> None:
        """Refuse a placeholder that names no field of ``kind`` (or of a contact or
        account for ``contact.`` / ``account.`` placeholders).

        Raises:
            ValidationError: the first unknown field, naming the template.
        """
        for name in self.placeholders:
            head, _, rest = name.partition(".")
            target, field_name = (_PARTS[head], rest) if head in _PARTS else (kind, name)
            try:
                check_fields(target, [field_name])
            except ValidationError as error:
                raise ValidationError(
                    f"template {self.text!r}: {{{name}}}: {error}", field="template", value=name
                ) from None

    def render(self, values: Mapping[str, Any] | Callable[[str], Any]) -> str:
        """The text with every placeholder replaced by `render_value` of its value.

        Args:
            values: The value of each placeholder, as a mapping or a function of the
                placeholder's name; a missing value renders as ``""``.
        """
        read = values if callable(values) else values.get
        return "".join(
            piece if isinstance(piece, str) else render_value(read(piece[0]))
            for piece in self._pieces
        )


def render_value(value: object) -> str:
    """How a field value reads in a template: ``""`` for none, ``1250.00 EUR`` for
    money, ISO 8601 for dates, the plain value otherwise."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return f"{value.amount} {value.currency}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal | int | float | str):
        return str(value)
    return str(getattr(value, "value", value))
