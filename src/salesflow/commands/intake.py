"""Intake commands of `Salesflow`: matching strategies, the one intake path every
channel uses, and recording interactions.

`intake` runs in one unit of work: the contact strategy first (an indexed lookup
by the first of the strategy's indexed fields the submission has, email, mobile
phone or business phone, then every field of the strategy on the candidates; a
strategy with a main condition looks up by every one of its fields the submission
has instead, then checks the main and additional conditions; several matches →
the most recently modified), then the lead strategy (a child lead of the matched
contact preferred), then update or create, then the interaction. Every decision is
written into `IntakeResult.reasons`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from salesflow import events as ev
from salesflow import lead as leads
from salesflow.commands.core import EngineCore
from salesflow.commands.records import RECORD_SYSTEM
from salesflow.commands.work import Work, fields_changed
from salesflow.errors import NotFound, ValidationError
from salesflow.intake import (
    CHANNEL_SOURCES,
    IntakeOptions,
    IntakeResult,
    RecordAction,
    Submission,
)
from salesflow.interactions import Interaction, InteractionKind
from salesflow.lead import Lead
from salesflow.matching import (
    DEFAULT_CONTACT_STRATEGY,
    DEFAULT_LEAD_STRATEGY,
    MatchingStrategy,
    Normalizer,
    Similarity,
    normalize,
    pick,
    strategy_from_dict,
    strategy_to_dict,
)
from salesflow.party import Contact
from salesflow.values import Record, RecordKind, check_fields, normalize_email

if TYPE_CHECKING:
    from salesflow.commands.imports import IntakeBatch

__all__ = ["MATCHING_STRATEGY", "IntakeCommands"]

MATCHING_STRATEGY = "matching_strategy"
"""The definition kind of matching strategies in the store."""

_BUILT_IN = {s.id: s for s in (DEFAULT_CONTACT_STRATEGY, DEFAULT_LEAD_STRATEGY)}
_CONTACT_FIELDS = frozenset(a.name for a in attrs.fields(Contact)) - RECORD_SYSTEM - {"custom"}
_LEAD_FIELDS = frozenset(leads.EDITABLE_FIELDS) - {"custom"}


R = TypeVar("R", bound=Record)


def _reader(record: Record) -> Callable[[str], Any]:
    def read(name: str) -> Any:
        if name.startswith("custom."):
            return record.custom.get(name[7:])
        return getattr(record, name, None)

    return read


def _split(
    values: Mapping[str, Any], allowed: frozenset[str], ignore_empty: bool
) -> dict[str, Any]:
    """The submitted values a record of ``allowed`` fields takes (custom ones under
    ``custom``), without empty ones when ``ignore_empty``."""
    taken: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for name, value in values.items():
        if ignore_empty and (value is None or (isinstance(value, str) and not value.strip())):
            continue
        if name.startswith("custom."):
            custom[name[7:]] = value
        elif name in allowed:
            taken[name] = value
    if custom:
        taken["custom"] = custom
    return taken


def _changes(record: Record, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that differ from ``record``'s once converted as the record converts
    them (an email differing only in case is the same email, and a phone written
    another way, with the record's country, the same phone: matching by it found the
    record); custom values are merged into the record's own."""
    fields = attrs.fields_dict(type(record))
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name == "custom":
            continue
        converter = fields[name].converter
        converted = converter(value) if callable(converter) else value
        current = getattr(record, name)
        if isinstance(converted, str) and isinstance(current, str) and converted != current:
            if name == "email" and normalize_email(converted) == normalize_email(current):
                continue
            if name in _PHONES and _same_phone(converted, current, record):
                continue
        if converted != current:
            changes[name] = value
    custom = values.get("custom")
    if custom and any(record.custom.get(k) != v for k, v in custom.items()):
        changes["custom"] = {**record.custom, **custom}
    return changes


_PHONES = frozenset(("mobile_phone", "business_phone"))


def _same_phone(submitted: str, current: str, record: Record) -> bool:
    country = getattr(record, "country", None)
    country = country if isinstance(country, str) else None
    return normalize(Normalizer.PHONE, submitted, country=country) == normalize(
        Normalizer.PHONE, current, country=country
    )


class IntakeCommands(EngineCore):
    """Matching strategies, intake, interactions."""

    # --- strategies -----------------------------------------------------------------

    def save_matching_strategy(self, strategy: MatchingStrategy) -> MatchingStrategy:
        """Store a matching strategy (a new version when its id exists).

        A strategy saved with ``default=True`` becomes its target's default: the
        latest saved default wins (the built-in `DEFAULT_CONTACT_STRATEGY` and
        `DEFAULT_LEAD_STRATEGY` are used until one is saved).

        Raises:
            ValidationError: ``strategy`` is not a `MatchingStrategy`.
        """
        if not isinstance(strategy, MatchingStrategy):
            raise ValidationError(
                f"save_matching_strategy() takes a MatchingStrategy, not {type(strategy).__name__}",
                field="strategy",
                value=strategy,
            )
        with self._command() as work:
            latest = work.uow.find_definition(MATCHING_STRATEGY, strategy.id)
            version = 1 if latest is None else latest.version + 1
            work.publish(MATCHING_STRATEGY, strategy.id, version, strategy_to_dict(strategy))
        return strategy

    def matching_strategies(self) -> list[MatchingStrategy]:
        """The saved strategies (latest version of each), by id."""
        with self._read() as uow:
            return [strategy_from_dict(d.document) for d in uow.definitions(MATCHING_STRATEGY)]

    def _strategy(
        self, work: Work, strategy_id: str | None, target: RecordKind, form_id: str | None = None
    ) -> MatchingStrategy:
        """The strategy named ``strategy_id``; else the one saved for form ``form_id``
        (the latest published if several name it); else ``target``'s default."""
        if strategy_id is not None:
            stored = work.uow.find_definition(MATCHING_STRATEGY, strategy_id)
            strategy = (
                strategy_from_dict(stored.document)
                if stored is not None
                else _BUILT_IN.get(strategy_id)
            )
            if strategy is None:
                raise NotFound("MatchingStrategy", strategy_id)
            if strategy.target is not target:
                raise ValidationError(
                    f"matching strategy {strategy_id!r} matches {strategy.target.value}s; "
                    f"name a {target.value} strategy here",
                    field="strategy",
                    value=strategy_id,
                )
            return strategy
        saved = [
            (d.published_at, s)
            for d in work.uow.definitions(MATCHING_STRATEGY)
            if (s := strategy_from_dict(d.document)).target is target
        ]
        for_form = [(at, s) for at, s in saved if form_id is not None and form_id in s.forms]
        defaults = for_form or [(at, s) for at, s in saved if s.default]
        if defaults:
            return max(defaults, key=lambda pair: pair[0])[1]
        return DEFAULT_CONTACT_STRATEGY if target is RecordKind.CONTACT else DEFAULT_LEAD_STRATEGY

    # --- intake ---------------------------------------------------------------------

    def intake(self, submission: Submission, options: IntakeOptions | None = None) -> IntakeResult:
        """Take a person in: match, update or create, record the interaction.

        Args:
            submission: Who came in, how, with which values.
            options: Strategies and switches; `IntakeOptions()` by default.

        Returns:
            What was matched, created or updated, and why.

        Raises:
            ValidationError: a value is malformed, or a lead must be created without
                a ``last_name``; nothing is written.
            NotFound: an option names an unknown strategy.
        """
        options = options if options is not None else IntakeOptions()
        if not isinstance(submission, Submission) or not isinstance(options, IntakeOptions):
            raise ValidationError(
                "intake() takes a Submission and IntakeOptions",
                field="submission",
                value=submission,
            )
        with self._command() as work:
            result = self._intake_in(work, submission, options)
        # The unit's last work (scoring, routing, a process start) may have changed the
        # lead or contact after intake made them: return them as they were committed.
        return attrs.evolve(
            result,
            lead=_as_committed(work, result.lead),
            contact=_as_committed(work, result.contact),
        )

    def _intake_in(
        self,
        work: Work,
        submission: Submission,
        options: IntakeOptions,
        batch: IntakeBatch | None = None,
    ) -> IntakeResult:
        values = _submitted(submission) if batch is None else batch.values(submission)
        country = _country(values)
        # A batch (a CSV import) keeps only what each row did, so its rows' reasons
        # are not written out at all.
        reasons: list[str] | None = [] if batch is None or batch.explain else None
        strategy = self._strategy if batch is None else batch.strategy

        form = submission.form_id
        contact_strategy = strategy(work, options.contact_strategy, RecordKind.CONTACT, form)
        contact = self._match(
            work,
            Contact,
            contact_strategy,
            values,
            country,
            options,
            reasons,
            preferred=None,
            batch=batch,
        )
        lead_strategy = strategy(work, options.lead_strategy, RecordKind.LEAD, form)

        def child(candidate: Any) -> bool:
            return contact is not None and candidate.parent_contact_id == contact.id

        lead = (
            self._match(
                work,
                Lead,
                lead_strategy,
                values,
                country,
                options,
                reasons,
                preferred=child,
                batch=batch,
            )
            if options.leads
            else None
        )

        contact, contact_action = self._take_contact(work, contact, values, options, reasons)
        if batch is not None and contact_action in _WRITES:
            assert contact is not None
            batch.wrote(contact)
        lead_action = RecordAction.NONE
        if options.leads:
            lead, lead_action = self._take_lead(
                work, submission, lead, contact, values, options, reasons
            )
            if batch is not None and lead_action in _WRITES:
                assert lead is not None
                batch.wrote(lead)
        interaction = self._record_submission(work, submission, contact, lead, reasons)
        return IntakeResult(
            lead=lead,
            contact=contact,
            lead_action=lead_action,
            contact_action=contact_action,
            interaction=interaction,
            reasons=() if reasons is None else tuple(reasons),
        )

    def _contact_like(self, work: Work, lead: Lead) -> Contact | None:
        """The contact the default contact matching strategy finds for ``lead``'s
        values (qualifying links it instead of creating a second one)."""
        strategy = self._strategy(work, None, RecordKind.CONTACT)
        names = (*strategy.any_of, *(f.name for f in strategy.fields))
        values = {name: getattr(lead, name, None) for name in names}
        found: Contact | None = self._match(
            work, Contact, strategy, values, lead.country, IntakeOptions(), None, preferred=None
        )
        return found

    def _match(
        self,
        work: Work,
        cls: type[Any],
        strategy: MatchingStrategy,
        values: Mapping[str, Any],
        country: str | None,
        options: IntakeOptions,
        reasons: list[str] | None,
        *,
        preferred: Callable[[Any], bool] | None,
        batch: IntakeBatch | None = None,
    ) -> Any:
        if batch is None:
            keys = strategy.keys(values.get, country=country, ignore_empty=options.ignore_empty)
            lookups = () if keys is None else strategy.lookups(keys)
        else:
            keys, lookups = batch.lookups(strategy, values, country, options)
        if keys is None or not lookups:
            if reasons is not None:
                reasons.append(
                    f"no {cls.__name__.lower()} matched: the submission has no "
                    f"{' or '.join(strategy.any_of or strategy.indexed)}"
                )
            return None
        if strategy.any_of:
            return self._match_any(
                work, cls, strategy, keys, lookups, country, options, reasons, preferred, batch
            )
        name, key = lookups[0]
        candidates = (
            []
            if batch is not None and batch.absent(cls, key, name)
            else work.uow.find_by(cls, name, key)
        )
        found = [
            r
            for r in candidates
            if strategy.matches(keys, _reader(r), country)
            and (options.match_inactive or _is_active(r))
        ]
        chosen = (
            pick(found, modified_at=lambda r: r.modified_at, preferred=preferred) if found else None
        )
        if reasons is None:
            return chosen
        what = cls.__name__.lower()
        shown = ", ".join(f"{k}={v!r}" for k, v in keys.items())
        if chosen is None:
            reasons.append(f"no {what} matched strategy {strategy.id!r} ({shown})")
        else:
            extra = f" (the most recently modified of {len(found)})" if len(found) > 1 else ""
            reasons.append(
                f"{what} {chosen.id!r} matched strategy {strategy.id!r} ({shown}){extra}"
            )
        return chosen

    def _match_any(
        self,
        work: Work,
        cls: type[Any],
        strategy: MatchingStrategy,
        keys: Mapping[str, str | None],
        lookups: Sequence[tuple[str, str]],
        country: str | None,
        options: IntakeOptions,
        reasons: list[str] | None,
        preferred: Callable[[Any], bool] | None,
        batch: IntakeBatch | None,
    ) -> Any:
        """`_match` for a strategy with a main condition: candidates looked up by each
        of its fields the submission has (``lookups``, united by id), kept when one of
        those is equal and every additional condition holds."""
        what = cls.__name__.lower()
        candidates: dict[str, Any] = {}
        for name, key in lookups:
            if batch is None or not batch.absent(cls, key, name):
                for record in work.uow.find_by(cls, name, key):
                    candidates.setdefault(record.id, record)
        found: list[Any] = []
        matched_by: dict[str, str] = {}
        for record in candidates.values():
            if not (options.match_inactive or _is_active(record)):
                continue
            by = strategy.matched_by(keys, _reader(record), country)
            if by is not None:
                found.append(record)
                matched_by[record.id] = by
        chosen = (
            pick(found, modified_at=lambda r: r.modified_at, preferred=preferred) if found else None
        )
        if reasons is None:
            return chosen
        main = " or ".join(f"{n}={keys[n]!r}" for n in strategy.any_of if n in keys)
        more = _conditions(strategy, keys)
        if chosen is None:
            reasons.append(f"no {what} matched strategy {strategy.id!r} ({main}{more})")
        else:
            by = matched_by[chosen.id]
            extra = f" (the most recently modified of {len(found)})" if len(found) > 1 else ""
            reasons.append(
                f"{what} {chosen.id!r} matched strategy {strategy.id!r} by {by}="
                f"{keys[by]!r} (main condition: {main}{more}){extra}"
            )
        return chosen

    def _take_contact(
        self,
        work: Work,
        contact: Contact | None,
        values: Mapping[str, Any],
        options: IntakeOptions,
        reasons: list[str] | None,
    ) -> tuple[Contact | None, RecordAction]:
        if contact is None and not options.create_contact:
            return None, RecordAction.NONE
        taken = _split(values, _CONTACT_FIELDS, options.ignore_empty)
        if contact is not None:
            changes = _changes(contact, taken) if options.update_matched else {}
            if not changes:
                return contact, RecordAction.UNCHANGED
            check_fields(Contact, changes, RECORD_SYSTEM, creating=False)
            updated = attrs.evolve(contact, modified_at=work.now, **changes)
            saved = work.update(updated)
            assert isinstance(saved, Contact)
            work.events.append(
                ev.ContactUpdated(
                    occurred_at=work.now,
                    contact_id=contact.id,
                    fields=fields_changed(contact, updated, list(changes)),
                )
            )
            if reasons is not None:
                reasons.append(f"contact {contact.id!r} updated: {', '.join(sorted(changes))}")
            return saved, RecordAction.UPDATED
        check_fields(Contact, taken, RECORD_SYSTEM, creating=True)
        created = Contact(
            id=self._ids(RecordKind.CONTACT), created_at=work.now, modified_at=work.now, **taken
        )
        work.add(created)
        work.events.append(ev.ContactCreated(occurred_at=work.now, contact_id=created.id))
        if reasons is not None:
            reasons.append(f"contact {created.id!r} created")
        return created, RecordAction.CREATED

    def _take_lead(
        self,
        work: Work,
        submission: Submission,
        lead: Lead | None,
        contact: Contact | None,
        values: Mapping[str, Any],
        options: IntakeOptions,
        reasons: list[str] | None,
    ) -> tuple[Lead | None, RecordAction]:
        taken = _split(values, _LEAD_FIELDS, options.ignore_empty)
        if lead is not None:
            changes = _changes(lead, taken) if options.update_matched else {}
            if not changes or not lead.is_open:
                return lead, RecordAction.UNCHANGED
            updated, happened = leads.edit(lead, changes, now=work.now)
            saved = work.update(updated)
            assert isinstance(saved, Lead)
            work.events.append(happened)
            if reasons is not None:
                reasons.append(f"lead {lead.id!r} updated: {', '.join(sorted(changes))}")
            return saved, RecordAction.UPDATED
        if not options.create_when_no_match:
            return None, RecordAction.NONE
        if contact is not None:
            taken.setdefault("parent_contact_id", contact.id)
            if contact.account_id is not None:
                taken.setdefault("parent_account_id", contact.account_id)
        if "topic" not in taken:
            taken["topic"] = _default_topic(submission)
        if "source" not in taken and CHANNEL_SOURCES[submission.channel] is not None:
            taken["source"] = CHANNEL_SOURCES[submission.channel]
        if "last_name" not in taken:
            raise ValidationError(
                "a new lead needs last_name; the submission has none (map a column or form "
                "field to last_name)",
                field="last_name",
                value=None,
            )
        created, happened = leads.new_lead(
            lead_id=self._ids(RecordKind.LEAD), fields=taken, now=work.now
        )
        work.check_references(created)
        work.add(created)
        work.events.append(happened)
        self._lead_created_by_intake(work, created, route=options.route)
        if reasons is not None:
            linked = f", linked to contact {contact.id!r}" if contact is not None else ""
            reasons.append(f"lead {created.id!r} created{linked}")
        return created, RecordAction.CREATED

    def _record_submission(
        self,
        work: Work,
        submission: Submission,
        contact: Contact | None,
        lead: Lead | None,
        reasons: list[str] | None,
    ) -> Interaction | None:
        kind = submission.interaction_kind
        if kind is None or (contact is None and lead is None):
            return None
        interaction_id = (
            f"int-{submission.id}" if submission.id is not None else _content_id(submission)
        )
        if work.uow.find_interaction(interaction_id) is not None:
            if reasons is not None:
                reasons.append(f"interaction {interaction_id!r} was recorded before; not again")
            return None
        interaction = Interaction(
            id=interaction_id,
            kind=kind,
            occurred_at=submission.occurred_at or work.now,
            contact_id=None if contact is None else contact.id,
            lead_id=None if lead is None else lead.id,
            account_id=None if contact is None else contact.account_id,
            source_id=submission.form_id,
        )
        self._add_interaction(work, interaction)
        if reasons is not None:
            reasons.append(f"interaction {interaction.id!r} ({kind.value}) recorded")
        return interaction

    # --- interactions ---------------------------------------------------------------

    def record_interaction(
        self,
        kind: InteractionKind | str,
        *,
        contact_id: str | None = None,
        lead_id: str | None = None,
        source_id: str | None = None,
        occurred_at: Any = None,
        metadata: Mapping[str, Any] | None = None,
        interaction_id: str | None = None,
    ) -> Interaction:
        """Record what a contact and/or lead did (an email opened, a page visited …).

        Args:
            kind: What they did.
            contact_id: The contact (its account is recorded with it).
            lead_id: The lead.
            source_id: Which email, page, event or form.
            occurred_at: When (aware); the command's time by default.
            metadata: Anything else the channel reports.
            interaction_id: An id of the host's (the same id is recorded once).

        Raises:
            NotFound: the contact or lead does not exist.
            AlreadyExists: ``interaction_id`` was recorded before.
            ValidationError: malformed values, or neither contact nor lead.
        """
        with self._command() as work:
            contact = work.get(Contact, contact_id) if contact_id is not None else None
            if lead_id is not None:
                work.get(Lead, lead_id)
            interaction = Interaction(
                id=interaction_id or f"int-{uuid.uuid4().hex}",
                kind=kind,
                occurred_at=occurred_at if occurred_at is not None else work.now,
                contact_id=contact_id,
                lead_id=lead_id,
                account_id=None if contact is None else contact.account_id,
                source_id=source_id,
                metadata=metadata,
            )
            self._add_interaction(work, interaction)
        return interaction

    def interactions(
        self,
        *,
        contact_id: str | None = None,
        lead_id: str | None = None,
        account_id: str | None = None,
    ) -> list[Interaction]:
        """The interactions of a contact, a lead or an account, oldest first."""
        with self._read() as uow:
            return uow.interactions(
                contact_ids=() if contact_id is None else (contact_id,),
                lead_id=lead_id,
                account_id=account_id,
            )

    def _add_interaction(self, work: Work, interaction: Interaction) -> None:
        work.uow.add_interaction(interaction)
        work.recorded.append(interaction)
        work.events.append(
            ev.InteractionRecorded(
                occurred_at=work.now,
                interaction_id=interaction.id,
                kind=interaction.kind.value,
                contact_id=interaction.contact_id,
                lead_id=interaction.lead_id,
            )
        )


_TOPICS = {
    "typed": "New lead",
    "csv": "Imported lead",
    "landing_page": "Landing page",
    "event": "Event registration",
    "linkedin_form": "LinkedIn lead form",
}


def _as_committed(work: Work, record: R | None) -> R | None:
    """``record`` as ``work`` last wrote it (itself when the unit did not write it)."""
    if record is None:
        return None
    written = work.written.get(record.ref)
    if written is None:
        return record
    latest = written[1]
    assert isinstance(latest, type(record))
    return latest


def _default_topic(submission: Submission) -> str:
    """The topic of a new lead whose submission gives none: where it came from."""
    topic = _TOPICS[submission.channel.value]
    return f"{topic}: {submission.form_id}" if submission.form_id else topic


def _is_active(record: Any) -> bool:
    if isinstance(record, Lead):
        return record.is_open
    return bool(getattr(record, "active", True))


def _content_id(submission: Submission) -> str:
    """A stable id for a submission without one: the same content is the same
    submission (so a form posted twice is recorded once)."""
    parts = [
        submission.channel.value,
        submission.form_id or "",
        submission.occurred_at.isoformat() if submission.occurred_at else "",
        *(f"{k}={submission.fields[k]!r}" for k in sorted(submission.fields)),
    ]
    return "int-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


_WRITES = (RecordAction.CREATED, RecordAction.UPDATED)
_Keys = dict[str, str | None]


def _submitted(submission: Submission) -> Mapping[str, Any]:
    """The values a submission brings, its form and campaign ids included."""
    values = submission.fields
    if submission.form_id is not None:
        values = {**values, "form_id": submission.form_id}
    if submission.campaign_id is not None:
        values = {**values, "campaign_id": submission.campaign_id}
    return values


def _conditions(strategy: MatchingStrategy, keys: Mapping[str, str | None]) -> str:
    """The additional conditions ``keys`` hold, in words for the reasons: ``; and
    last_name='ruiz' (high similarity)``; nothing when there is none."""
    shown = [
        f"{f.name}={keys[f.name]!r}"
        + ("" if f.similarity is Similarity.EXACT else f" ({f.similarity.value} similarity)")
        for f in strategy.fields
        if f.name in keys
    ]
    return f"; and {', '.join(shown)}" if shown else ""


def _country(values: Mapping[str, Any]) -> str | None:
    country = values.get("country")
    return country if isinstance(country, str) else None
