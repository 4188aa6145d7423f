"""What the import tests compare: a CSV taken row by row through `intake` (one unit
each), the same file through `import_csv`, and the leads and contacts either way
leaves behind."""

from __future__ import annotations

import io
from typing import Any

import attrs

from salesflow.commands import imports as import_commands
from salesflow.engine import Salesflow
from salesflow.errors import SalesflowError
from salesflow.imports import read_rows
from salesflow.intake import IntakeOptions, RecordAction
from salesflow.lead import Lead
from salesflow.party import Contact
from salesflow.stores.base import Query
from salesflow.values import RecordKind

__all__ = ["imported", "one_by_one", "snapshot"]


def one_by_one(engine: Salesflow, csv: str, kind: RecordKind, options: IntakeOptions) -> Any:
    """The report of taking each row through `intake` in a unit of its own."""
    rows, _ = read_rows(io.StringIO(csv), kind)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    rejected = []
    total = 0
    for row in rows:
        total += 1
        if row.rejection is not None:
            rejected.append((row.rejection.row, row.rejection.reason))
            continue
        try:
            result = engine.intake(import_commands._submission(row), options)
        except SalesflowError as exc:
            rejected.append((row.row, str(exc)))
            continue
        action = import_commands._action(result.lead_action, result.contact_action)
        key = "unchanged" if action in (RecordAction.UNCHANGED, RecordAction.NONE) else action
        counts[str(key)] += 1
    return total, counts["created"], counts["updated"], counts["unchanged"], tuple(rejected)


def imported(engine: Salesflow, csv: str, kind: RecordKind, options: IntakeOptions) -> Any:
    report = engine.import_csv(io.StringIO(csv), kind=kind, options=options)
    return (
        report.rows,
        report.created,
        report.updated,
        report.unchanged,
        tuple((r.row, r.reason) for r in report.rejected),
    )


def snapshot(engine: Salesflow) -> list[tuple[Any, ...]]:
    """Every lead and contact, ids replaced by who they are (ids taken by a batch
    that was rolled back differ between the two ways)."""
    contacts = engine.query(Contact, Query(limit=1000)).items
    leads = engine.query(Lead, Query(limit=1000)).items
    who = {c.id: ("contact", c.email, c.last_name) for c in contacts}
    who.update({x.id: ("lead", x.email, x.form_id, x.topic) for x in leads})

    def plain(record: Any) -> tuple[Any, ...]:
        values = attrs.asdict(record, recurse=False)
        values.pop("id")
        for name in ("parent_contact_id", "parent_account_id", "account_id"):
            if values.get(name) is not None:
                values[name] = who.get(values[name], "account")
        return (type(record).__name__, *sorted(values.items(), key=lambda kv: kv[0]))

    return sorted((plain(r) for r in [*contacts, *leads]), key=repr)
