"""CSV import commands of `Salesflow`: every row goes through intake.

Rows are taken in batches of `IMPORT_BATCH` per unit of work (one commit per
batch). A row that intake refuses (no last name for a new lead, a value the field
does not take) is rejected with its reason; when that happens the batch's unit
is rolled back and its rows are taken again one unit each, so a refused row never
leaves part of itself behind and never takes other rows with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from salesflow.commands.intake import IntakeCommands
from salesflow.errors import SalesflowError, ValidationError
from salesflow.imports import ImportReport, ParsedRow, Rejection, read_rows
from salesflow.intake import Channel, IntakeOptions, RecordAction, Submission
from salesflow.values import RecordKind, to_enum

__all__ = ["IMPORT_BATCH", "ImportCommands"]

IMPORT_BATCH = 500
"""How many rows one unit of work takes."""


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
                for row in batch:
                    result = self._intake_in(work, _submission(row), options)
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
    fields = dict(row.fields)
    form_id = fields.pop("form_id", None)
    campaign_id = fields.pop("campaign_id", None)
    return Submission(
        channel=Channel.CSV,
        fields=fields,
        form_id=form_id if isinstance(form_id, str) else None,
        campaign_id=campaign_id if isinstance(campaign_id, str) else None,
    )


def _action(lead: RecordAction, contact: RecordAction) -> RecordAction:
    """What a row did: the lead's action when it concerned a lead, else the contact's."""
    return lead if lead is not RecordAction.NONE else contact
