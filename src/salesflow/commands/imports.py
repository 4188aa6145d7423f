"""CSV import commands of `Salesflow`: every row goes through intake.

Rows are taken in batches of `IMPORT_BATCH` per unit of work (one commit per
batch). A row that intake refuses (no last name for a new lead, a value the field
does not take) is rejected with its reason; when that happens the batch's unit
is rolled back and its rows are taken again one unit each, so a refused row never
leaves part of itself behind and never takes other rows with it. A batch looks its
rows' lookup keys (email, or a phone for a strategy that matches by phone) up
together first (`IntakeBatch`), so rows that match nobody cost no lookup of their
own (a strategy with a main condition looks up by each of its fields: a row costs
no lookup when none of its keys is known).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from salesflow.commands.intake import IntakeCommands, _country, _Keys, _submitted
from salesflow.commands.work import Work
from salesflow.errors import SalesflowError, ValidationError
from salesflow.imports import ImportReport, ParsedRow, Rejection, read_rows
from salesflow.intake import Channel, IntakeOptions, RecordAction, Submission
from salesflow.lead import Lead
from salesflow.matching import INDEXED_FIELDS, LOOKUP_VALUES, MatchingStrategy
from salesflow.party import Contact
from salesflow.values import RecordKind, to_enum

__all__ = ["IMPORT_BATCH", "ImportCommands", "IntakeBatch"]

IMPORT_BATCH = 1000
"""How many rows one unit of work takes. Each commit writes every page the unit
dirtied (a large table's indexes take new rows all over), so larger units write
each page fewer times; a unit with a refused row is taken again row by row, which
caps how large is worth it."""


class _Tally:
    def __init__(self) -> None:
        self.counts = {"created": 0, "updated": 0, "unchanged": 0}
        self.rejected: list[Rejection] = []

    def count(self, action: RecordAction) -> None:
        key = "unchanged" if action in (RecordAction.UNCHANGED, RecordAction.NONE) else action
        self.counts[str(key)] += 1


class ImportCommands(IntakeCommands):
    """CSV import of leads and contacts."""

    def import_csv(
        self,
        source: str | Path | TextIO,
        *,
        kind: RecordKind | str = RecordKind.LEAD,
        mapping: Mapping[str, str] | None = None,
        options: IntakeOptions | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Import the rows of a CSV file as leads or contacts, through intake.

        Each row is a `Submission` of channel ``csv``: matched records are updated,
        new ones created (see `intake`). Leads are matched on their email and form
        id by default; contacts on their email.

        Args:
            source: A path or an open text stream with a header row.
            kind: ``lead`` or ``contact``.
            mapping: Column → field (``custom.<name>`` for custom fields); columns
                named like a field are taken without one.
            options: Intake options; for contacts the default creates contacts
                and leaves leads alone.
            progress: Called with the number of rows done after every batch.

        Returns:
            The report: created, updated, unchanged, and every rejected row with
            its number and reason.

        Raises:
            ValidationError: the file has no header, or the mapping does not fit it.
        """
        target: RecordKind = to_enum(RecordKind, kind, "kind", optional=False)
        if target not in (RecordKind.LEAD, RecordKind.CONTACT):
            raise ValidationError(
                f"kind={kind!r}: import_csv imports leads or contacts",
                field="kind",
                value=kind,
            )
        if options is None:
            options = (
                IntakeOptions()
                if target is RecordKind.LEAD
                else IntakeOptions(create_contact=True, leads=False)
            )
        rows, ignored = read_rows(source, target, mapping)
        tally = _Tally()
        batch: list[ParsedRow] = []
        total = 0
        for row in rows:
            total += 1
            if row.rejection is not None:
                tally.rejected.append(row.rejection)
                continue
            batch.append(row)
            if len(batch) >= IMPORT_BATCH:
                self._import_batch(batch, options, tally)
                batch = []
                if progress is not None:
                    progress(total)
        if batch:
            self._import_batch(batch, options, tally)
        if progress is not None:
            progress(total)
        tally.rejected.sort(key=lambda r: r.row)
        return ImportReport(
            rows=total,
            created=tally.counts["created"],
            updated=tally.counts["updated"],
            unchanged=tally.counts["unchanged"],
            rejected=tuple(tally.rejected),
            ignored_columns=ignored,
        )

    def _import_batch(self, batch: list[ParsedRow], options: IntakeOptions, tally: _Tally) -> None:
        try:
            actions = []
            with self._command() as work:
                submissions = [_submission(row) for row in batch]
                taken = IntakeBatch(work, self._strategy)
                taken.prefetch(submissions, options)
                for submission in submissions:
                    result = self._intake_in(work, submission, options, taken)
                    actions.append(_action(result.lead_action, result.contact_action))
        except SalesflowError:
            # one row was refused: the batch rolled back; take the rows one by one
            for row in batch:
                try:
                    with self._command() as work:
                        result = self._intake_in(work, _submission(row), options)
                except SalesflowError as exc:
                    tally.rejected.append(Rejection(row=row.row, reason=str(exc)))
                    continue
                tally.count(_action(result.lead_action, result.contact_action))
            return
        for action in actions:
            tally.count(action)


def _submission(row: ParsedRow) -> Submission:
    fields = row.fields
    form_id = campaign_id = None
    if "form_id" in fields or "campaign_id" in fields:
        fields = dict(fields)
        form_id = fields.pop("form_id", None)
        campaign_id = fields.pop("campaign_id", None)
    # Submission copies ``fields``: the row's own mapping is never changed
    return Submission(
        channel=Channel.CSV,
        fields=fields,
        form_id=form_id if isinstance(form_id, str) else None,
        campaign_id=campaign_id if isinstance(campaign_id, str) else None,
    )


def _action(lead: RecordAction, contact: RecordAction) -> RecordAction:
    """What a row did: the lead's action when it concerned a lead, else the contact's."""
    return lead if lead is not RecordAction.NONE else contact


_FIELD_OF = {key: name for name, key in INDEXED_FIELDS.items()}
"""Lookup key → the indexed field it is computed from."""

_Lookups = tuple[tuple[str, str], ...]


class IntakeBatch:
    """What intake reuses across many submissions taken in one unit of work (a CSV
    import batch): the strategies, resolved once, and which lookup keys (email or
    phone keys, `INDEXED_FIELDS`) no contact or lead has, found with one
    `find_ids_by` per kind and lookup key the batch uses (`prefetch`) so that a new
    person costs no lookup.

    A key stays known to be absent only while nothing in the unit could have given
    it a record: intake's own writes (`wrote`) drop their keys, and a write by
    anything else (the unit's ``written`` holds a record intake did not write)
    drops everything it knew.

    Args:
        work: The unit of work the submissions are taken in.
        resolve: Finds a strategy in the unit (`IntakeCommands._strategy`).
        explain: Whether intake writes each submission's `IntakeResult.reasons`
            (an import reports only what each row did, so it does not).
    """

    def __init__(
        self,
        work: Work,
        resolve: Callable[[Work, str | None, RecordKind, str | None], MatchingStrategy],
        *,
        explain: bool = False,
    ) -> None:
        self.explain = explain
        self._work = work
        self._resolve = resolve
        self._strategies: dict[tuple[str | None, RecordKind, str | None], MatchingStrategy] = {}
        # kind → lookup key (``email_key``, ``mobile_phone_key`` …) → values no record has
        self._absent: dict[type[Any], dict[str, set[str]]] = {Contact: {}, Lead: {}}
        self._mine: set[tuple[RecordKind, str]] = set()
        # By id(): each entry holds its object, so the id is not reused meanwhile.
        self._values: dict[int, tuple[Submission, Mapping[str, Any]]] = {}
        self._keys: dict[
            tuple[int, int, int],
            tuple[Mapping[str, Any], MatchingStrategy, IntakeOptions, _Keys | None, _Lookups],
        ] = {}

    def values(self, submission: Submission) -> Mapping[str, Any]:
        """The values ``submission`` brings (`_submitted`), worked out once."""
        entry = self._values.get(id(submission))
        if entry is None or entry[0] is not submission:
            entry = (submission, _submitted(submission))
            self._values[id(submission)] = entry
        return entry[1]

    def lookups(
        self,
        strategy: MatchingStrategy,
        values: Mapping[str, Any],
        country: str | None,
        options: IntakeOptions,
    ) -> tuple[_Keys | None, _Lookups]:
        """`MatchingStrategy.keys` of ``values`` and the `MatchingStrategy.lookups`
        of those keys (one for a strategy without a main condition), worked out once
        per strategy (`prefetch` and intake both ask)."""
        slot = (id(values), id(strategy), id(options))
        entry = self._keys.get(slot)
        if entry is None or entry[0] is not values:
            found = strategy.keys(values.get, country=country, ignore_empty=options.ignore_empty)
            by = () if found is None else strategy.lookups(found)
            entry = (values, strategy, options, found, by)
            self._keys[slot] = entry
        return entry[3], entry[4]

    def strategy(
        self,
        work: Work,
        strategy_id: str | None,
        target: RecordKind,
        form_id: str | None = None,
    ) -> MatchingStrategy:
        """`IntakeCommands._strategy`, resolved once per batch and form (intake
        publishes none)."""
        key = (strategy_id, target, form_id)
        found = self._strategies.get(key)
        if found is None:
            found = self._resolve(work, strategy_id, target, form_id)
            self._strategies[key] = found
        return found

    def prefetch(self, submissions: Iterable[Submission], options: IntakeOptions) -> None:
        """Find which of the submissions' lookup keys no contact (and, when intake
        takes leads, no lead) has: one `find_ids_by` per kind and lookup key (each
        submission's key is the one intake looks it up by, `MatchingStrategy.lookup`,
        or, for a strategy with a main condition, each of them,
        `MatchingStrategy.lookups`; an email strategy's batch makes one per kind).

        Raises:
            NotFound, ValidationError: as `IntakeCommands._strategy` (an option
                names an unknown strategy, or one of the other target).
        """
        work = self._work
        targets: list[tuple[type[Any], MatchingStrategy]] = [
            (Contact, self.strategy(work, options.contact_strategy, RecordKind.CONTACT))
        ]
        lead_strategy = self.strategy(work, options.lead_strategy, RecordKind.LEAD)
        if options.leads:
            targets.append((Lead, lead_strategy))
        wanted: dict[tuple[type[Any], str], list[str]] = {}
        for submission in submissions:
            values = self.values(submission)
            country = _country(values)
            for cls, strategy in targets:
                for name, key in self.lookups(strategy, values, country, options)[1]:
                    wanted.setdefault((cls, name), []).append(key)
        for (cls, name), values_wanted in wanted.items():
            found = work.uow.find_ids_by(cls, name, values_wanted)
            self._absent[cls][name] = {key for key, ids in found.items() if not ids}

    def absent(self, cls: type[Any], key: str, lookup: str = "email_key") -> bool:
        """Whether no record of ``cls`` has ``key`` as its lookup key ``lookup``
        (False: look it up)."""
        if len(self._work.written) != len(self._mine):
            # something other than intake wrote records in this unit: know nothing
            self._absent = {Contact: {}, Lead: {}}
            self._mine = {(ref.kind, ref.id) for ref in self._work.written}
        known = self._absent[cls].get(lookup)
        return known is not None and key in known

    def wrote(self, record: Contact | Lead) -> None:
        """Intake stored ``record`` in the unit: its lookup keys may now find it."""
        self._mine.add((record.KIND, record.id))
        for name, known in self._absent[type(record)].items():
            if known:
                field = _FIELD_OF[name]
                key = LOOKUP_VALUES[field](getattr(record, field))
                if key is not None:
                    known.discard(key)
