"""What sellers and customers do in a simulated run: `ResponseModel` and its parts.

`ResponseModel` (with per-step `StepResponse` overrides and an optional
`FactsSampler`) is the input of both `salesflow.testing.montecarlo.run_monte_carlo`
and `salesflow.testing.engine_run.run_on_engine`; the montecarlo module docstring
says how each figure is played. The values are checked when built, so a run never
starts with a probability out of range or call outcomes that do not add up to 1.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeAlias, cast

import attrs

from salesflow.errors import ValidationError
from salesflow.sequences.enrollment import RecordFacts, StaticFacts

__all__ = ["FactsSampler", "ResponseModel", "StepResponse"]

FactsSampler: TypeAlias = Callable[[int, random.Random], RecordFacts]
"""Draws one record's facts: called with the record's index and the run's generator."""


def _probability(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.default is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        name = f"{type(instance).__name__}.{attribute.name}"
        raise ValidationError(
            f"{name}={value!r} must be a probability from 0 to 1 (0.3 for 30 %)",
            field=name,
            value=value,
        )


def _delay(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.default is None:
        return
    if not isinstance(value, timedelta) or value < timedelta(0):
        name = f"{type(instance).__name__}.{attribute.name}"
        raise ValidationError(
            f"{name}={value!r} must be a timedelta >= 0 (e.g. timedelta(hours=2))",
            field=name,
            value=value,
        )


def _outcomes(value: object) -> tuple[tuple[str, float], ...] | None:
    if value is None:
        return None
    items: Any = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = tuple((str(k), v) for k, v in items)
    except (TypeError, ValueError):
        pairs = ()
    problem = not pairs or any(
        not k or isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1
        for k, p in pairs
    )
    if problem or abs(sum(p for _, p in pairs) - 1) > 1e-9:
        raise ValidationError(
            f"call_outcomes={value!r} must map call outcomes to probabilities that add up "
            f"to 1, e.g. {{'answered': 0.3, 'no_answer': 0.7}}",
            field="call_outcomes",
            value=value,
        )
    return tuple((k, float(p)) for k, p in pairs)


def _opened_bounds(values: Mapping[str, Any], where: str) -> None:
    opened = values["opened"]
    for name in ("replied", "link_clicked", "attachment_downloaded"):
        p = values[name]
        if p > opened:
            raise ValidationError(
                f"{where}.{name}={p!r} exceeds opened={opened!r}: every reply, click or "
                f"download implies an open, so raise opened to at least {p!r}",
                field=f"{where}.{name}",
                value=p,
            )


@attrs.frozen(kw_only=True)
class StepResponse:
    """Overrides of a `ResponseModel` for one step; ``None`` keeps the model's value.

    Attributes:
        opened: See `ResponseModel.opened`.
        replied: See `ResponseModel.replied`.
        link_clicked: See `ResponseModel.link_clicked`.
        attachment_downloaded: See `ResponseModel.attachment_downloaded`.
        event_delay: See `ResponseModel.event_delay`.
        call_outcomes: See `ResponseModel.call_outcomes`.
        skip: See `ResponseModel.skip`.
        seller_delay: See `ResponseModel.seller_delay`.
    """

    opened: float | None = attrs.field(default=None, validator=_probability)
    replied: float | None = attrs.field(default=None, validator=_probability)
    link_clicked: float | None = attrs.field(default=None, validator=_probability)
    attachment_downloaded: float | None = attrs.field(default=None, validator=_probability)
    event_delay: timedelta | None = attrs.field(default=None, validator=_delay)
    call_outcomes: tuple[tuple[str, float], ...] | None = attrs.field(
        default=None, converter=_outcomes
    )
    skip: float | None = attrs.field(default=None, validator=_probability)
    seller_delay: timedelta | None = attrs.field(default=None, validator=_delay)


def _steps(value: object) -> Mapping[str, StepResponse]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, StepResponse) for k, v in value.items()
    ):
        raise ValidationError(
            f"ResponseModel.steps={value!r} must map step ids (or 'step_id:a' / 'step_id:b' "
            f"for an A/B test's variants) to StepResponse values",
            field="ResponseModel.steps",
            value=value,
        )
    return dict(value)


def _facts(value: object) -> RecordFacts | FactsSampler | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return StaticFacts(fields=value)
    if hasattr(value, "field_value") and hasattr(value, "stage"):
        return cast(RecordFacts, value)
    if callable(value):
        return cast(FactsSampler, value)
    raise ValidationError(
        f"ResponseModel.facts={value!r} must be RecordFacts (e.g. StaticFacts), a mapping of "
        f"field values, or a sampler (record index, random.Random) -> RecordFacts",
        field="ResponseModel.facts",
        value=value,
    )


@attrs.frozen(kw_only=True)
class ResponseModel:
    """What sellers and customers do in a simulated run (the docstring of
    `salesflow.testing.montecarlo` says how each figure is played).

    Attributes:
        opened: Probability that a sent email is opened.
        replied: Probability that a sent email is replied to (implies opened).
        link_clicked: Probability of a click in a sent email (implies opened).
        attachment_downloaded: Probability of a download (implies opened).
        event_delay: How long after the email the customer's events arrive.
        call_outcomes: Call outcome → probability, adding up to 1; which outcomes
            count as answered is `RuntimeConfig.answered`.
        skip: Probability that the seller skips a manual step.
        seller_delay: How long after a manual step becomes due the seller acts.
        facts: The records' fields and stage for field and stage conditions: one
            `RecordFacts`, a mapping of field values, or a `FactsSampler`.
        steps: Per-step overrides by step id; ``"ab:a"`` and ``"ab:b"`` override
            the variants of the A/B test step ``ab``.

    Raises:
        ValidationError: A probability outside [0, 1], a reply, click or download
            rate above ``opened``, call outcomes not adding up to 1, a negative delay.
    """

    opened: float = attrs.field(default=0.0, validator=_probability)
    replied: float = attrs.field(default=0.0, validator=_probability)
    link_clicked: float = attrs.field(default=0.0, validator=_probability)
    attachment_downloaded: float = attrs.field(default=0.0, validator=_probability)
    event_delay: timedelta = attrs.field(default=timedelta(hours=1), validator=_delay)
    call_outcomes: tuple[tuple[str, float], ...] = attrs.field(
        default=(("no_answer", 1.0),), converter=_outcomes
    )
    skip: float = attrs.field(default=0.0, validator=_probability)
    seller_delay: timedelta = attrs.field(default=timedelta(0), validator=_delay)
    facts: RecordFacts | FactsSampler | None = attrs.field(default=None, converter=_facts, eq=False)
    steps: Mapping[str, StepResponse] = attrs.field(factory=dict, converter=_steps, hash=False)

    def __attrs_post_init__(self) -> None:
        _opened_bounds(self._merged(()), "ResponseModel")
        for key in self.steps:
            keys = (key.partition(":")[0], key)
            _opened_bounds(self._merged(keys), f"ResponseModel.steps[{key!r}]")

    def _merged(self, keys: tuple[str, ...]) -> dict[str, Any]:
        values = {a.name: getattr(self, a.name) for a in attrs.fields(StepResponse)}
        for key in keys:
            override = self.steps.get(key)
            if override is not None:
                values.update(
                    (a.name, getattr(override, a.name))
                    for a in attrs.fields(StepResponse)
                    if getattr(override, a.name) is not None
                )
        return values

    def for_step(self, *keys: str) -> ResponseModel:
        """This model with the overrides of ``keys`` applied in order (a step id, then
        ``"ab:a"`` for a variant); the result has no overrides of its own.

        Args:
            keys: Keys of `steps`; keys without an override change nothing.

        Returns:
            The model a step (or variant) is played with.
        """
        return attrs.evolve(self, steps={}, **self._merged(keys))
