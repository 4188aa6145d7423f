"""Due items: work the engine must do at a later time.

Everything that happens later (a sequence step that becomes due, a condition's time
limit, a delayed automation rule, a score decay point) is a `DueItem` in the store
with a ``due_at``. `Salesflow.run_due` claims the items due at ``clock.now()`` and
hands each to the handler registered for its ``kind``, in ``(due_at, id)`` order.

This module is pure: the item, its payload rules, the retry policy and the event of
an item that failed for good. Storing and claiming items is the store's job
(`salesflow.stores.base.UnitOfWork`), performing them the engine's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from salesflow.clock import require_aware
from salesflow.errors import ValidationError
from salesflow.events import Event
from salesflow.values import RecordRef

__all__ = [
    "LAST_ERROR",
    "MAX_PAYLOAD_DEPTH",
    "DueItem",
    "DueItemFailed",
    "JsonValue",
    "RetryPolicy",
    "check_payload",
    "copy_checked",
]

JsonValue = str | int | float | bool | None | list[Any] | dict[str, Any]
"""A value a due item's payload may hold: JSON's values, lists and string-keyed dicts."""

MAX_PAYLOAD_DEPTH = 32
"""How deeply lists and dicts may nest in a payload."""

LAST_ERROR = "last_error"
"""The payload entry where a failed attempt's error message is kept (reserved)."""


def _json_copy(value: Any, where: str, depth: int, field: str = "DueItem.payload") -> Any:
    if depth > MAX_PAYLOAD_DEPTH:
        raise ValidationError(
            f"{where} nests deeper than {MAX_PAYLOAD_DEPTH} levels",
            field=field,
            value=None,
        )
    if type(value) is dict and depth < MAX_PAYLOAD_DEPTH:
        # the common case, a flat dict of texts and numbers: checked here without a
        # call per entry (the keys' and texts' checks are the same as below)
        flat: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                break
            kind = type(item)
            if kind is not str and item is not None and kind is not int and kind is not bool:
                break
            # plain ASCII without NUL passes `_check_text`: only the rest goes there
            if "\x00" in key or not key.isascii():
                _check_text(key, f"{where} key", field)
            if kind is str and ("\x00" in item or not item.isascii()):
                _check_text(item, f"{where}[{key!r}]", field)
            flat[key] = item
        else:
            return flat
    if isinstance(value, str):
        _check_text(value, where, field)
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(
                f"{where}={value!r} is not a finite number; JSON cannot carry it",
                field=field,
                value=value,
            )
        return value
    if isinstance(value, list | tuple):
        return [_json_copy(v, f"{where}[{i}]", depth + 1, field) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    f"{where} has the key {key!r} ({type(key).__name__}); payload keys must "
                    f"be strings",
                    field=field,
                    value=key,
                )
            _check_text(key, f"{where} key", field)
            copied[key] = _json_copy(item, f"{where}[{key!r}]", depth + 1, field)
        return copied
    raise ValidationError(
        f"{where}={value!r} is a {type(value).__name__}; a payload holds only str, int, "
        f"float, bool, None, lists and dicts with string keys (store ids and ISO texts, "
        f"not objects)",
        field=field,
        value=value,
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(text: str, where: str, field: str) -> None:
    # PostgreSQL cannot store NUL in JSON text, and no store can encode a lone
    # surrogate: refused here, every store agrees (ASCII text, most ids and keys,
    # cannot hold a surrogate, so only other text is searched for one)
    if "\x00" in text or (not text.isascii() and _SURROGATE.search(text) is not None):
        raise ValidationError(
            f"{where}={text!r} holds a NUL character or a lone surrogate, which stores "
            f"cannot keep; remove it",
            field=field,
            value=text,
        )


def copy_checked(value: Any) -> Any:
    """A deep copy of JSON data that was already checked (`check_payload`): dicts
    and lists are copied, everything else is immutable and shared. For stores
    handing out a stored item's payload without checking it again."""
    if isinstance(value, dict):
        return {k: copy_checked(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [copy_checked(v) if isinstance(v, dict | list) else v for v in value]
    return value


def check_payload(payload: Any, *, field: str = "DueItem.payload") -> dict[str, Any]:
    """A deep copy of ``payload`` as plain dicts and lists, checked to be JSON-able.

    Tuples become lists. The copy keeps the item's payload from changing when the
    caller later changes the mapping it passed.

    Args:
        payload: The mapping to check and copy.
        field: How errors name what was checked (a due item's payload, a state
            document …).

    Raises:
        ValidationError: ``payload`` is not a mapping with string keys, or holds a
            value JSON cannot carry (an object, NaN, infinity), or a text no store
            can keep (a NUL character, a lone surrogate), or nests too deeply.
    """
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise ValidationError(
            f"{field}={payload!r} must be a mapping (a dict with string keys), "
            f"not {type(payload).__name__}",
            field=field,
            value=payload,
        )
    copied: dict[str, Any] = _json_copy(payload, field, 0, field)
    return copied


def _utc(value: Any) -> datetime:
    return require_aware(value, "DueItem.due_at").astimezone(UTC)


def _text(name: str) -> Any:
    def check(_: Any, __: Any, value: Any) -> None:
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f"DueItem.{name}={value!r} must be a non-empty string",
                field=f"DueItem.{name}",
                value=value,
            )

    return check


def _subject(_: Any, __: Any, value: Any) -> None:
    if value is not None and not isinstance(value, RecordRef):
        raise ValidationError(
            f"DueItem.subject={value!r} must be a RecordRef (e.g. lead.ref) or None",
            field="DueItem.subject",
            value=value,
        )


def _key(_: Any, __: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValidationError(
            f"DueItem.key={value!r} must be a non-empty string or None",
            field="DueItem.key",
            value=value,
        )


def _attempts(_: Any, __: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(
            f"DueItem.attempts={value!r} must be a whole number >= 0",
            field="DueItem.attempts",
            value=value,
        )


@attrs.frozen(kw_only=True)
class DueItem:
    """One piece of work to do at ``due_at``.

    Attributes:
        id: Unique among items; also the item's idempotency key (see
            `idempotency_key`), so it stays the same on every retry.
        kind: Which handler performs it, e.g. ``"sequence.step"``.
        due_at: When it becomes due; timezone-aware, kept in UTC.
        subject: The record it is about, if any (`UnitOfWork.due_items` lists
            a record's items).
        payload: What the handler needs: JSON values only (str, int, float, bool,
            None, lists, dicts with string keys), copied on creation. The entry
            ``"last_error"`` is written by the engine when an attempt fails.
        key: An optional uniqueness key for the logical item (e.g.
            ``f"enrollment:{eid}:step:{n}"``): while an item with this key is
            stored, scheduling another with the same key does nothing and returns
            the stored one, so scheduling is idempotent.
        attempts: How many attempts have failed so far.
    """

    id: str = attrs.field(validator=_text("id"))
    kind: str = attrs.field(validator=_text("kind"))
    due_at: datetime = attrs.field(converter=_utc)
    subject: RecordRef | None = attrs.field(default=None, validator=_subject)
    payload: dict[str, Any] = attrs.field(factory=dict, converter=check_payload, hash=False)
    key: str | None = attrs.field(default=None, validator=_key)
    attempts: int = attrs.field(default=0, validator=_attempts)

    @property
    def idempotency_key(self) -> str:
        """The key a host uses to deduplicate what this item makes it do (send an
        email, call an API): the item's id, the same on every retry."""
        return self.id

    @property
    def order_key(self) -> tuple[datetime, str]:
        """``(due_at, id)``: the order in which items are claimed and performed."""
        return (self.due_at, self.id)

    def retried(self, now: datetime, error: str, policy: RetryPolicy) -> DueItem:
        """This item after a failed attempt at ``now``: one more attempt counted, due
        again after the policy's backoff, with ``error`` in ``payload["last_error"]``."""
        return attrs.evolve(
            self,
            attempts=self.attempts + 1,
            due_at=now + policy.delay(self.attempts),
            payload={**self.payload, LAST_ERROR: error},
        )


def _positive_delta(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValidationError(
            f"RetryPolicy.{attribute.name}={value!r} must be a positive timedelta",
            field=f"RetryPolicy.{attribute.name}",
            value=value,
        )


def _max_attempts(_: Any, __: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"RetryPolicy.max_attempts={value!r} must be a whole number >= 1",
            field="RetryPolicy.max_attempts",
            value=value,
        )


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How `Salesflow.run_due` retries an item whose handler failed.

    After the failed attempt number ``n`` (counting from 0) the item is due again
    ``min(base * 2**n, cap)`` later: 1, 2, 4, 8 … minutes by default, at most a day.
    When ``max_attempts`` attempts have failed, the item is deleted and a
    `DueItemFailed` event says so.
    """

    base: timedelta = attrs.field(default=timedelta(minutes=1), validator=_positive_delta)
    cap: timedelta = attrs.field(default=timedelta(days=1), validator=_positive_delta)
    max_attempts: int = attrs.field(default=5, validator=_max_attempts)

    def delay(self, failed_before: int) -> timedelta:
        """The wait after a failure when ``failed_before`` attempts had failed before it."""
        if failed_before >= 40:  # 2**40 minutes is far beyond any cap; avoid huge numbers
            return self.cap
        delay: timedelta = min(self.base * (2**failed_before), self.cap)
        return delay


@attrs.frozen(kw_only=True)
class DueItemFailed(Event):
    """A due item failed ``attempts`` times and was deleted; ``error`` is the last
    failure's message. Hosts that must not lose work keep these (a dead letter)."""

    item_id: str
    kind: str
    subject: str | None
    attempts: int
    error: str
    payload: dict[str, Any] = attrs.field(hash=False)
