"""The six standard sequence templates, shipped as TOML data files, and their loader.

Each template encodes its narrative from the product documentation (seed 000)
branch by branch; `load_template` reads one with `salesflow.sequences.io`. The
record type, step count and duration of each are in SPEC R5.3; a template whose
faithful encoding counts differently says so in its ``description``.

Example:
    >>> from salesflow.sequences.templates import TEMPLATES, load_template
    >>> TEMPLATES[0]
    'no_show_follow_up'
    >>> load_template("no_show_follow_up").record_type.value
    'contact'
"""

from __future__ import annotations

from importlib import resources

from salesflow.errors import ValidationError
from salesflow.sequences.definition import SequenceDefinition
from salesflow.sequences.io import loads_toml

__all__ = ["TEMPLATES", "load_template", "template_text"]

TEMPLATES: tuple[str, ...] = (
    "no_show_follow_up",
    "high_volume_outbound_prospecting",
    "invite_to_upcoming_event",
    "meeting_for_product_demo_requests",
    "upcoming_account_renewal",
    "webinar_follow_up",
)
"""The template names, in the order the product documentation lists them."""


def template_text(name: str) -> str:
    """The TOML source of the template ``name``.

    Args:
        name: One of `TEMPLATES`.

    Returns:
        The template's TOML document.

    Raises:
        ValidationError: ``name`` is not a template (the message lists the names).
    """
    if name not in TEMPLATES:
        raise ValidationError(
            f"there is no sequence template {name!r}; choose one of {', '.join(TEMPLATES)}",
            field="template",
            value=name,
        )
    return resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")


def load_template(name: str) -> SequenceDefinition:
    """The sequence definition of the template ``name``.

    Args:
        name: One of `TEMPLATES`.

    Returns:
        A fresh definition (version 1); copy it under a new id to customize it.

    Raises:
        ValidationError: ``name`` is not a template (the message lists the names).
    """
    return loads_toml(template_text(name))
