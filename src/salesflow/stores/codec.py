"""The one serialization of salesflow: records to JSON-able dicts and back.

Every document carries ``"schema": N``. Decoding an older document runs the
registered migrations step by step (N → N+1 → …) before building the record; a
document from a newer salesflow is refused with `StoreError`. Encoding is
type-directed from the attrs field types, so a new field needs no codec code.

Formats: datetimes are ISO 8601 in UTC with microseconds
(``2026-01-05T09:00:00.000000+00:00``, which sorts as text), dates ISO,
``Decimal`` as a string, enums by value, `Money` as ``{"amount", "currency"}``.
Custom values that JSON cannot tell apart are tagged: ``{"$decimal": "1.50"}``,
``{"$date": "2026-01-05"}``, ``{"$datetime": "…"}``. Lean documents (what the SQL
stores write) leave out a record's optional fields without a value (None, whose
default is None): decoding gives them their default back.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, TypeVar

import attrs

from salesflow.activity import Activity
from salesflow.definitions import StoredDefinition
from salesflow.due import DueItem
from salesflow.errors import StoreError, ValidationError
from salesflow.events import Event
from salesflow.interactions import Interaction
from salesflow.lead import Lead
from salesflow.opportunity import Opportunity
from salesflow.orders import Invoice, Order
from salesflow.party import Account, Contact
from salesflow.pricing import PriceList, Product
from salesflow.quotes import Quote
from salesflow.scoring_compile import RuleHit, ScoreResult
from salesflow.sequences.definition import EmailEvent, StepKind
from salesflow.sequences.enrollment import (
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    HistoryEntry,
)
from salesflow.values import CustomValue, Record, RecordKind, RecordRef

__all__ = [
    "CURRENT_SCHEMA",
    "DUE_ITEM_SCHEMA",
    "RECORD_TYPES",
    "SALES_SCHEMA",
    "SALES_TYPES",
    "Codec",
    "Migration",
    "decode_custom_value",
    "decode_definition",
    "decode_due_item",
    "decode_enrollment",
    "decode_event",
    "decode_interaction",
    "decode_sales",
    "decode_sales_as",
    "decode_score",
    "encode_custom_value",
    "encode_definition",
    "encode_due_item",
    "encode_enrollment",
    "encode_event",
    "encode_interaction",
    "encode_sales",
    "encode_score",
    "format_datetime",
    "omitted_when_none",
]

R = TypeVar("R", bound=Record)
Migration = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns a document of schema N into one of schema N+1."""

RECORD_TYPES: dict[RecordKind, type[Record]] = {
    RecordKind.LEAD: Lead,
    RecordKind.CONTACT: Contact,
    RecordKind.ACCOUNT: Account,
    RecordKind.OPPORTUNITY: Opportunity,
    RecordKind.ACTIVITY: Activity,
}
"""The stored record classes by kind."""

CURRENT_SCHEMA: dict[RecordKind, int] = {kind: 1 for kind in RECORD_TYPES}
"""The schema number this version writes for each kind."""


def format_datetime(value: datetime) -> str:
    """A datetime as fixed-width ISO 8601 in UTC (text order = time order)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def encode_custom_value(value: CustomValue) -> Any:
    """Encode one custom value, tagging the types JSON cannot carry."""
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": format_datetime(value)}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def decode_custom_value(value: Any) -> CustomValue:
    """Decode one custom value written by `encode_custom_value`."""
    if isinstance(value, dict):
        if "$decimal" in value:
            return Decimal(value["$decimal"])
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if "$date" in value:
            return date.fromisoformat(value["$date"])
        raise ValueError(f"unknown tagged custom value {value!r}")
    return typing.cast(CustomValue, value)


Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


@cache
def _codec_for(tp: Any) -> tuple[Encoder, Decoder]:
    inner, optional = _strip_optional(tp)
    enc, dec = _codec_for_required(inner)
    if not optional:
        return enc, dec
    return (
        lambda v: None if v is None else enc(v),
        lambda v: None if v is None else dec(v),
    )


def _identity(value: Any) -> Any:
    return value


def _codec_for_required(tp: Any) -> tuple[Encoder, Decoder]:
    origin = typing.get_origin(tp)
    if tp in (str, int, bool, float):
        return _identity, _identity
    if tp is Decimal:
        return str, Decimal
    if tp is datetime:
        return format_datetime, datetime.fromisoformat
    if tp is date:
        return date.isoformat, date.fromisoformat
    if isinstance(tp, type) and issubclass(tp, Enum):
        return (lambda v: v.value), tp
    if isinstance(tp, type) and attrs.has(tp):
        return _attrs_codec(tp)
    if origin is tuple:
        item_enc, item_dec = _codec_for(typing.get_args(tp)[0])
        return (lambda v: [item_enc(i) for i in v]), (lambda v: tuple(item_dec(i) for i in v))
    if origin is dict:
        return (
            lambda v: {k: encode_custom_value(i) for k, i in v.items()},
            lambda v: {k: decode_custom_value(i) for k, i in v.items()},
        )
    raise TypeError(f"the codec cannot encode fields of type {tp!r}")


@cache
def _field_types(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((a.name, hints[a.name]) for a in attrs.fields(cls))


def _attrs_codec(cls: type) -> tuple[Encoder, Decoder]:
    def encode(value: Any) -> dict[str, Any]:
        return {name: _codec_for(tp)[0](getattr(value, name)) for name, tp in _field_types(cls)}

    def decode(doc: Mapping[str, Any]) -> Any:
        kwargs = {
            name: _codec_for(tp)[1](doc[name]) for name, tp in _field_types(cls) if name in doc
        }
        return cls(**kwargs)

    return encode, decode


_OMITTED: dict[type, frozenset[str]] = {}


def omitted_when_none(cls: type[Any]) -> frozenset[str]:
    """The fields of record class ``cls`` a lean document leaves out when they are
    None: those whose default is None, so decoding the document gives them back."""
    found = _OMITTED.get(cls)
    if found is None:
        found = frozenset(a.name for a in attrs.fields(cls) if a.default is None)
        _OMITTED[cls] = found
    return found


class Codec:
    """Encodes records to schema-stamped dicts and decodes them, migrating old ones.

    Args:
        migrations: ``{(kind, from_schema): step}``; each step turns a document of
            ``from_schema`` into one of ``from_schema + 1``. The default has none
            (every kind is at schema 1).
        current: The schema number written for each kind.
    """

    def __init__(
        self,
        migrations: Mapping[tuple[RecordKind, int], Migration] | None = None,
        current: Mapping[RecordKind, int] | None = None,
    ) -> None:
        self._migrations = dict(migrations or {})
        self._current = {**CURRENT_SCHEMA, **(current or {})}

    def current_schema(self, kind: RecordKind) -> int:
        """The schema number this codec writes for ``kind`` (older ones are migrated)."""
        return self._current[kind]

    def encode(self, record: Record, *, lean: bool = False) -> dict[str, Any]:
        """Return the JSON-able document of ``record``, stamped with its schema.

        Args:
            record: The record.
            lean: Leave out the optional fields without a value (`omitted_when_none`),
                as the SQL stores write them; decoding gives them back either way.
        """
        kind = record.KIND
        cls = type(record)
        doc: dict[str, Any] = {"schema": self._current[kind]}
        encoded = _attrs_codec(cls)[0](record)
        if not lean:
            doc.update(encoded)
            return doc
        omit = omitted_when_none(cls)
        for name, value in encoded.items():
            if value is not None or name not in omit:
                doc[name] = value
        return doc

    def decode(self, kind: RecordKind, document: Mapping[str, Any]) -> Record:
        """Build the record of ``kind`` from ``document``, migrating it first.

        Raises:
            StoreError: the document is from a newer schema, lacks a migration, or
                does not describe a valid record.
        """
        doc = dict(document)
        schema = doc.get("schema")
        current = self._current[kind]
        if not isinstance(schema, int):
            raise StoreError(f"stored {kind.value} document has no schema number: {doc!r:.200}")
        if schema > current:
            raise StoreError(
                f"stored {kind.value} {doc.get('id')!r} has schema {schema}, newer than this "
                f"salesflow understands ({current}); upgrade salesflow"
            )
        if schema < current:
            # migrations were written against full documents: give them every field
            for name in omitted_when_none(RECORD_TYPES[kind]):
                doc.setdefault(name, None)
        while schema < current:
            step = self._migrations.get((kind, schema))
            if step is None:
                raise StoreError(
                    f"no migration for {kind.value} documents from schema {schema} to "
                    f"{schema + 1}; register one in Codec(migrations=...)"
                )
            doc = step(doc)
            schema += 1
            doc["schema"] = schema
        del doc["schema"]
        try:
            record = _attrs_codec(RECORD_TYPES[kind])[1](doc)
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            raise StoreError(
                f"stored {kind.value} {doc.get('id')!r} cannot be read: {exc}"
            ) from exc
        assert isinstance(record, Record)
        return record

    def decode_as(self, cls: type[R], document: Mapping[str, Any]) -> R:
        """`decode` for a known record class, typed."""
        record = self.decode(cls.KIND, document)
        assert isinstance(record, cls)
        return record


DUE_ITEM_SCHEMA = 1
"""The schema number of due item documents."""


def encode_due_item(item: DueItem) -> dict[str, Any]:
    """The JSON-able document of a due item (``due_at`` as `format_datetime` text)."""
    return {
        "schema": DUE_ITEM_SCHEMA,
        "id": item.id,
        "kind": item.kind,
        "due_at": format_datetime(item.due_at),
        "subject": None
        if item.subject is None
        else {"kind": item.subject.kind.value, "id": item.subject.id},
        "payload": item.payload,
        "key": item.key,
        "attempts": item.attempts,
    }


def decode_due_item(document: Mapping[str, Any]) -> DueItem:
    """The due item of a document written by `encode_due_item`.

    Raises:
        StoreError: the document is from a newer schema or is not a valid item.
    """
    schema = document.get("schema")
    if schema != DUE_ITEM_SCHEMA:
        raise StoreError(
            f"stored due item {document.get('id')!r} has schema {schema!r}; this salesflow "
            f"reads schema {DUE_ITEM_SCHEMA} (upgrade salesflow)"
        )
    try:
        subject = document["subject"]
        return DueItem(
            id=document["id"],
            kind=document["kind"],
            due_at=datetime.fromisoformat(document["due_at"]),
            subject=None if subject is None else RecordRef(kind=subject["kind"], id=subject["id"]),
            payload=document["payload"],
            key=document["key"],
            attempts=document["attempts"],
        )
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"stored due item {document.get('id')!r} cannot be read: {exc}") from exc


ENROLLMENT_SCHEMA = 1
"""The schema number of enrollment documents."""


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _read_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def encode_enrollment(enrollment: Enrollment) -> dict[str, Any]:
    """The JSON-able document of an enrollment.

    Instants are `format_datetime` texts, the paused remainder whole microseconds,
    email events sorted lists per step (so equal states give equal documents).
    """
    e = enrollment
    remaining = e.paused_remaining
    return {
        "schema": ENROLLMENT_SCHEMA,
        "id": e.id,
        "sequence_id": e.sequence_id,
        "sequence_version": e.sequence_version,
        "record": {"kind": e.record.kind.value, "id": e.record.id},
        "owner_id": e.owner_id,
        "status": e.status.value,
        "current_step": e.current_step,
        "step_owner_id": e.step_owner_id,
        "due_at": _optional_time(e.due_at),
        "step_started_at": _optional_time(e.step_started_at),
        "paused_remaining_us": None
        if remaining is None
        else remaining // timedelta(microseconds=1),
        "activity_id": e.activity_id,
        "email_events": {
            step: sorted(event.value for event in events)
            for step, events in sorted(e.email_events.items())
        },
        "call_outcomes": dict(sorted(e.call_outcomes.items())),
        "variants": dict(sorted(e.variants.items())),
        "history": [
            {
                "step_id": h.step_id,
                "kind": h.kind.value,
                "outcome": h.outcome,
                "at": format_datetime(h.at),
                "owner_id": h.owner_id,
            }
            for h in e.history
        ],
        "outcome": e.outcome,
        "exit_reason": None if e.exit_reason is None else e.exit_reason.value,
        "connected_at": _optional_time(e.connected_at),
        "version": e.version,
    }


def decode_enrollment(document: Mapping[str, Any]) -> Enrollment:
    """The enrollment of a document written by `encode_enrollment`.

    Raises:
        StoreError: the document is from a newer schema or is not a valid enrollment.
    """
    schema = document.get("schema")
    if schema != ENROLLMENT_SCHEMA:
        raise StoreError(
            f"stored enrollment {document.get('id')!r} has schema {schema!r}; this salesflow "
            f"reads schema {ENROLLMENT_SCHEMA} (upgrade salesflow)"
        )
    try:
        remaining = document["paused_remaining_us"]
        exit_reason = document["exit_reason"]
        return Enrollment(
            id=document["id"],
            sequence_id=document["sequence_id"],
            sequence_version=document["sequence_version"],
            record=RecordRef(kind=document["record"]["kind"], id=document["record"]["id"]),
            owner_id=document["owner_id"],
            status=EnrollmentStatus(document["status"]),
            current_step=document["current_step"],
            step_owner_id=document["step_owner_id"],
            due_at=_read_time(document["due_at"]),
            step_started_at=_read_time(document["step_started_at"]),
            paused_remaining=None if remaining is None else timedelta(microseconds=remaining),
            activity_id=document["activity_id"],
            email_events={
                step: frozenset(EmailEvent(v) for v in values)
                for step, values in document["email_events"].items()
            },
            call_outcomes=dict(document["call_outcomes"]),
            variants=dict(document.get("variants", {})),
            history=tuple(
                HistoryEntry(
                    step_id=h["step_id"],
                    kind=StepKind(h["kind"]),
                    outcome=h["outcome"],
                    at=datetime.fromisoformat(h["at"]),
                    owner_id=h["owner_id"],
                )
                for h in document["history"]
            ),
            outcome=document["outcome"],
            exit_reason=None if exit_reason is None else ExitReason(exit_reason),
            # documents stored before connected_at existed leave it out
            connected_at=_read_time(document.get("connected_at")),
            version=document["version"],
        )
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"stored enrollment {document.get('id')!r} cannot be read: {exc}") from exc


DEFINITION_SCHEMA = 1
"""The schema number of stored definition documents (the envelope, not the
definition's own format, which each kind versions itself)."""


def encode_definition(definition: StoredDefinition) -> dict[str, Any]:
    """The JSON-able document of a stored definition version."""
    return {
        "schema": DEFINITION_SCHEMA,
        "kind": definition.kind,
        "id": definition.id,
        "version": definition.version,
        "state": definition.state,
        "document": definition.document,
        "published_at": format_datetime(definition.published_at),
    }


def decode_definition(document: Mapping[str, Any]) -> StoredDefinition:
    """The stored definition of a document written by `encode_definition`.

    Raises:
        StoreError: the document is from a newer schema or is not valid.
    """
    schema = document.get("schema")
    if schema != DEFINITION_SCHEMA:
        raise StoreError(
            f"stored definition {document.get('id')!r} has schema {schema!r}; this salesflow "
            f"reads schema {DEFINITION_SCHEMA} (upgrade salesflow)"
        )
    try:
        return StoredDefinition(
            kind=document["kind"],
            id=document["id"],
            version=document["version"],
            state=document["state"],
            document=dict(document["document"]),
            published_at=datetime.fromisoformat(document["published_at"]),
        )
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"stored definition {document.get('id')!r} cannot be read: {exc}") from exc


INTERACTION_SCHEMA = 1
"""The schema number of interaction documents."""


def encode_interaction(interaction: Interaction) -> dict[str, Any]:
    """The JSON-able document of an interaction (metadata as custom values)."""
    i = interaction
    return {
        "schema": INTERACTION_SCHEMA,
        "id": i.id,
        "kind": i.kind.value,
        "occurred_at": format_datetime(i.occurred_at),
        "contact_id": i.contact_id,
        "lead_id": i.lead_id,
        "account_id": i.account_id,
        "source_id": i.source_id,
        "metadata": {k: encode_custom_value(v) for k, v in sorted(i.metadata.items())},
    }


def decode_interaction(document: Mapping[str, Any]) -> Interaction:
    """The interaction of a document written by `encode_interaction`.

    Raises:
        StoreError: the document is from a newer schema or is not valid.
    """
    schema = document.get("schema")
    if schema != INTERACTION_SCHEMA:
        raise StoreError(
            f"stored interaction {document.get('id')!r} has schema {schema!r}; this salesflow "
            f"reads schema {INTERACTION_SCHEMA} (upgrade salesflow)"
        )
    try:
        return Interaction(
            id=document["id"],
            kind=document["kind"],
            occurred_at=datetime.fromisoformat(document["occurred_at"]),
            contact_id=document["contact_id"],
            lead_id=document["lead_id"],
            account_id=document["account_id"],
            source_id=document["source_id"],
            metadata={k: decode_custom_value(v) for k, v in document["metadata"].items()},
        )
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"stored interaction {document.get('id')!r} cannot be read: {exc}"
        ) from exc


SCORE_SCHEMA = 1
"""The schema number of lead score documents."""


def encode_score(score: ScoreResult) -> dict[str, Any]:
    """The JSON-able document of a lead's score under one model, with its explanation."""
    return {
        "schema": SCORE_SCHEMA,
        "model_id": score.model_id,
        "model_version": score.model_version,
        "lead_id": score.lead_id,
        "points": score.points,
        "grade": score.grade,
        "sales_ready": score.sales_ready,
        "explanation": [
            {
                "rule_id": hit.rule_id,
                "rule_name": hit.rule_name,
                "points": hit.points,
                "interactions": list(hit.interactions),
                "occurrences": hit.occurrences,
            }
            for hit in score.explanation
        ],
        "next_change_at": _optional_time(score.next_change_at),
        "scored_at": format_datetime(score.scored_at),
    }


def decode_score(document: Mapping[str, Any]) -> ScoreResult:
    """The score of a document written by `encode_score`.

    Raises:
        StoreError: the document is from a newer schema or is not valid.
    """
    schema = document.get("schema")
    if schema != SCORE_SCHEMA:
        raise StoreError(
            f"stored score of lead {document.get('lead_id')!r} has schema {schema!r}; this "
            f"salesflow reads schema {SCORE_SCHEMA} (upgrade salesflow)"
        )
    try:
        return ScoreResult(
            model_id=document["model_id"],
            model_version=document["model_version"],
            lead_id=document["lead_id"],
            points=document["points"],
            grade=document["grade"],
            sales_ready=document["sales_ready"],
            explanation=tuple(
                RuleHit(
                    rule_id=hit["rule_id"],
                    rule_name=hit["rule_name"],
                    points=hit["points"],
                    interactions=tuple(hit["interactions"]),
                    occurrences=hit["occurrences"],
                )
                for hit in document["explanation"]
            ),
            next_change_at=_read_time(document["next_change_at"]),
            scored_at=datetime.fromisoformat(document["scored_at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"stored score of lead {document.get('lead_id')!r} cannot be read: {exc}"
        ) from exc


# --- opportunity to cash: catalogue and sales documents --------------------------------

SalesValue = Product | PriceList | Quote | Order | Invoice
"""What `encode_sales` writes: a catalogue entry or a sales document."""

S = TypeVar("S", Product, PriceList, Quote, Order, Invoice)

SALES_TYPES: dict[str, type[SalesValue]] = {
    "product": Product,
    "price_list": PriceList,
    "quote": Quote,
    "order": Order,
    "invoice": Invoice,
}
"""The catalogue and sales document classes by the ``"type"`` their documents carry."""

SALES_SCHEMA = 1
"""The schema number of product, price list, quote, order and invoice documents."""

_SALES_TYPE_NAMES = {cls: name for name, cls in SALES_TYPES.items()}


def encode_sales(value: SalesValue) -> dict[str, Any]:
    """The JSON-able document of a product, price list, quote, order or invoice.

    The fields are encoded like a record's (type-directed from the attrs fields,
    `Money` as ``{"amount", "currency"}``, ``Decimal`` as text); the document adds
    ``"schema"`` and ``"type"`` (a key of `SALES_TYPES`). Computed totals are not
    stored: they are the sums of the lines.
    """
    doc: dict[str, Any] = {"schema": SALES_SCHEMA, "type": _SALES_TYPE_NAMES[type(value)]}
    doc.update(_attrs_codec(type(value))[0](value))
    return doc


def decode_sales(document: Mapping[str, Any]) -> SalesValue:
    """The value of a document written by `encode_sales`.

    Raises:
        StoreError: the document is from a newer schema, of an unknown type, or not valid.
    """
    doc = dict(document)
    schema = doc.pop("schema", None)
    kind = doc.pop("type", None)
    if schema != SALES_SCHEMA:
        raise StoreError(
            f"stored {kind or 'sales document'} {doc.get('id')!r} has schema {schema!r}; this "
            f"salesflow reads schema {SALES_SCHEMA} (upgrade salesflow)"
        )
    cls = SALES_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise StoreError(
            f"stored sales document {doc.get('id')!r} has type {kind!r}; known types are "
            f"{', '.join(sorted(SALES_TYPES))}"
        )
    try:
        value = _attrs_codec(cls)[1](doc)
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"stored {kind} {doc.get('id')!r} cannot be read: {exc}") from exc
    assert isinstance(value, cls)
    return value


def decode_sales_as(cls: type[S], document: Mapping[str, Any]) -> S:
    """`decode_sales` for a known class, typed.

    Raises:
        StoreError: as `decode_sales`, or the document is of another type.
    """
    value = decode_sales(document)
    if not isinstance(value, cls):
        raise StoreError(
            f"stored document {document.get('id')!r} has type {document.get('type')!r}, not "
            f"{_SALES_TYPE_NAMES[cls]!r}"
        )
    return value


# --- events (the outbox, see salesflow.outbox) ----------------------------------------

_EVENT_MODULES = (
    "salesflow.events",
    "salesflow.due",
    "salesflow.orders",
    "salesflow.quotes",
    "salesflow.pipeline_events",
    "salesflow.process_state",
    "salesflow.process_standard",
    "salesflow.sequences.enrollment",
    "salesflow.commands.ab_tests",
)
"""Every module that defines events; imported when the first event is decoded (the
commands import the stores, so this module cannot import them up front)."""


@cache
def event_types() -> Mapping[str, type[Event]]:
    """Every event class the engine publishes, by class name (the ``type`` of an
    event document)."""
    import importlib

    for name in _EVENT_MODULES:
        importlib.import_module(name)
    found: dict[str, type[Event]] = {}
    pending: list[type[Event]] = [Event]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            # attrs replaces each class with a slotted copy; the original may linger
            # among the subclasses until collected, so keep the one its module holds.
            module = sys.modules.get(sub.__module__)
            if (
                sub.__module__.startswith("salesflow.")
                and getattr(module, sub.__name__, None) is sub
            ):
                known = found.setdefault(sub.__name__, sub)
                if known is not sub:
                    raise TypeError(f"two event classes are named {sub.__name__!r}")
    return found


_EVENT_FIELDS: dict[type, tuple[tuple[str, Encoder, Decoder], ...]] = {}


def _event_fields(cls: type) -> tuple[tuple[str, Encoder, Decoder], ...]:
    """Each field of event class ``cls`` with its encoder and decoder. A mapping field
    of an event (a due item's payload) holds plain JSON values, kept as they are."""
    known = _EVENT_FIELDS.get(cls)
    if known is not None:
        return known
    found: list[tuple[str, Encoder, Decoder]] = []
    for name, tp in _field_types(cls):
        if typing.get_origin(_strip_optional(tp)[0]) is dict:
            found.append((name, _identity, _identity))
        else:
            encode, decode = _codec_for(tp)
            found.append((name, encode, decode))
    _EVENT_FIELDS[cls] = tuple(found)
    return _EVENT_FIELDS[cls]


def encode_event(event: Event) -> dict[str, Any]:
    """The JSON document of ``event``: its class name as ``type`` and its fields.

    Raises:
        ValidationError: ``event`` is not one of the engine's events.
    """
    cls = type(event)
    if event_types().get(cls.__name__) is not cls:
        raise ValidationError(
            f"{cls.__name__} is not one of salesflow's events; only they can be kept in the outbox",
            field="event",
            value=event,
        )
    doc: dict[str, Any] = {"type": cls.__name__}
    for name, encode, _ in _event_fields(cls):
        doc[name] = encode(getattr(event, name))
    return doc


def decode_event(document: Mapping[str, Any]) -> Event:
    """The event an `encode_event` document holds.

    Raises:
        StoreError: the document names no known event or does not describe a valid one.
    """
    name = document.get("type") if isinstance(document, Mapping) else None
    cls = event_types().get(name) if isinstance(name, str) else None
    if cls is None:
        raise StoreError(
            f"the stored event document {document!r} names no event this salesflow "
            f"knows (type {name!r})"
        )
    try:
        event = cls(
            **{
                field_name: decode(document[field_name])
                for field_name, _, decode in _event_fields(cls)
                if field_name in document
            }
        )
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise StoreError(f"the stored {name} event is not valid: {exc}") from exc
    assert isinstance(event, cls)
    return event
