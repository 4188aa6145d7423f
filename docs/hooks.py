"""mkdocs hook: put diagrams and field tables generated from the code into the pages.

A page asks for them with HTML comments, which render as nothing without the hook:

- ``<!-- lifecycle: salesflow.lead.LeadLifecycle -->`` becomes a ``mermaid`` fenced
  block drawn by `salesflow.lifecycle.mermaid` from the state machine class;
- ``<!-- fields: salesflow.Lead -->`` becomes a table of the record's attrs fields
  (name, type, default, and whether a host sets it through the commands);
- ``<!-- sequence-template: NAME -->`` becomes a ``mermaid`` flowchart of the shipped
  sequence template ``NAME``, drawn by `salesflow.sequences.render.mermaid`;
- ``<!-- process-flow: NAME -->`` becomes a ``mermaid`` flowchart of the standard
  process flow ``NAME`` (a module-level `ProcessFlow` constant of
  `salesflow.process_standard`, e.g. ``MARKETING_LEAD_PROCESS``), drawn by
  `salesflow.process_render.mermaid`.

So a lifecycle or a record cannot change without its page changing too. An unknown
name fails the build. ``tests/test_docs.py`` calls `on_page_markdown` directly.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import types
import typing
from typing import Any

import attrs

MARKER = re.compile(
    r"<!--\s*(?P<what>lifecycle|fields|sequence-template|process-flow):"
    r"\s*(?P<target>[\w.-]+)\s*-->"
)
"""A request for generated content: ``<!-- lifecycle: dotted.Name -->``."""


def resolve(dotted: str) -> Any:
    """Import ``package.module.Name`` and return ``Name``.

    Raises:
        ValueError: nothing importable has that name.
    """
    module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"docs marker names {dotted!r}, which cannot be imported: {exc}") from exc


def lifecycle_block(dotted: str) -> str:
    """The Mermaid fenced block of the lifecycle class ``dotted``."""
    from salesflow.lifecycle import mermaid

    return f"```mermaid\n{mermaid(resolve(dotted))}```"


def sequence_template_block(name: str) -> str:
    """The Mermaid fenced block of the shipped sequence template ``name``.

    Raises:
        ValueError: the templates cannot be imported, or no template has that name.
    """
    from salesflow.sequences.render import mermaid

    try:
        templates = importlib.import_module("salesflow.sequences.templates")
    except ImportError as exc:
        raise ValueError(
            f"docs marker names sequence template {name!r}, but the templates cannot be "
            f"imported: {exc}"
        ) from exc
    known = sorted(templates.TEMPLATES)
    if name not in known:
        raise ValueError(
            f"docs marker names sequence template {name!r}, which does not exist; "
            f"known: {', '.join(known)}"
        )
    return f"```mermaid\n{mermaid(templates.load_template(name))}```"


def process_flow_block(name: str) -> str:
    """The Mermaid fenced block of the standard process flow ``name``.

    Raises:
        ValueError: the standard flows cannot be imported, or ``name`` is not a
            `ProcessFlow` constant of `salesflow.process_standard`.
    """
    try:
        from salesflow.process import ProcessFlow
        from salesflow.process_render import mermaid

        standard = importlib.import_module("salesflow.process_standard")
    except ImportError as exc:
        raise ValueError(
            f"docs marker names process flow {name!r}, but the standard flows cannot be "
            f"imported: {exc}"
        ) from exc
    known = sorted(attr for attr, value in vars(standard).items() if isinstance(value, ProcessFlow))
    if name not in known:
        raise ValueError(
            f"docs marker names process flow {name!r}, which is not a process flow of "
            f"salesflow.process_standard; known: {', '.join(known)}"
        )
    return f"```mermaid\n{mermaid(getattr(standard, name))}```"


def type_name(tp: Any) -> str:
    """A short readable name of a type hint: ``Money | None``, ``tuple[Stakeholder, ...]``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if tp is type(None):
        return "None"
    return str(getattr(tp, "__name__", tp))


def _default(attribute: attrs.Attribute[Any]) -> str:
    default = attribute.default
    if default is attrs.NOTHING:
        return "required"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()  # type: ignore[union-attr]
    if isinstance(default, enum.Enum):
        return f"`{default.value!r}`"
    return f"`{default!r}`"


def _command_arguments(class_name: str) -> set[str]:
    """Named parameters of the engine command that creates a ``class_name`` record
    (``add_activity(regarding, kind, subject, **fields)`` names three)."""
    from salesflow import Salesflow

    verb = "add_activity" if class_name == "Activity" else f"create_{class_name.lower()}"
    command = getattr(Salesflow, verb, None)
    if command is None:
        return set()
    parameters = inspect.signature(command).parameters.values()
    return {p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD}


def fields_table(dotted: str) -> str:
    """A Markdown table of the attrs fields of the record class ``dotted``.

    The last column says who sets the field: the host (a keyword of the create and
    update commands, listed in ``salesflow.fields.<Name>Fields``), or salesflow.
    """
    cls = resolve(dotted)
    if not attrs.has(cls):
        raise ValueError(f"docs marker names {dotted!r}, which is not an attrs class")
    from salesflow import fields as typed_fields

    keywords = getattr(typed_fields, f"{cls.__name__}Fields", None)
    settable = set(getattr(keywords, "__annotations__", {}))
    settable |= _command_arguments(cls.__name__)
    hints = typing.get_type_hints(cls)
    rows = ["| Field | Type | Default | Set by |", "| --- | --- | --- | --- |"]
    for attribute in attrs.fields(cls):
        name = attribute.name
        shown = "dict[str, CustomValue]" if name == "custom" else type_name(hints[name])
        who = "host" if name in settable or keywords is None else "salesflow"
        rows.append(f"| `{name}` | `{shown}` | {_default(attribute)} | {who} |")
    return "\n".join(rows)


def render(markdown: str) -> str:
    """Replace every marker in ``markdown`` with the content it asks for."""

    def replace(match: re.Match[str]) -> str:
        if match["what"] == "lifecycle":
            return lifecycle_block(match["target"])
        if match["what"] == "sequence-template":
            return sequence_template_block(match["target"])
        if match["what"] == "process-flow":
            return process_flow_block(match["target"])
        return fields_table(match["target"])

    return MARKER.sub(replace, markdown)


def on_page_markdown(
    markdown: str, *, page: Any = None, config: Any = None, files: Any = None
) -> str:
    """mkdocs event: expand the markers of one page before it is rendered."""
    return render(markdown)
