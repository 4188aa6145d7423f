"""The host the exactly-once test's worker processes run (``--engine worker_host:engine``).

Each process builds its engine on the store ``salesflow worker`` opened, with:

* `FileClock`: "now" is the instant written in the file ``$SALESFLOW_TEST_CLOCK``,
  so the test moves time for every worker at once, step by step, instead of waiting
  for hours-long waits to pass;
* `RecordingSink`: every event the engine hands the host is appended, one JSON line
  each, to ``$SALESFLOW_TEST_RECORD/<pid>.jsonl`` (a file per process, so processes
  never interleave their writes), so the test can count what was delivered.

The module is importable as ``worker_host`` with ``tests/scenarios`` on the path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path

import attrs

from salesflow.clock import require_aware
from salesflow.engine import Salesflow
from salesflow.events import Event
from salesflow.stores.base import Store

CLOCK_ENV = "SALESFLOW_TEST_CLOCK"
RECORD_ENV = "SALESFLOW_TEST_RECORD"


class FileClock:
    """A clock whose instant is the ISO datetime stored in ``path``.

    The writer replaces the file atomically (`set_file_clock`), so a reader sees
    either the old instant or the new one, never a torn write.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        """The instant in the file."""
        return require_aware(
            datetime.fromisoformat(self.path.read_text(encoding="utf-8")), "FileClock"
        )


def set_file_clock(path: Path, instant: datetime) -> None:
    """Make every `FileClock` on ``path`` say ``instant`` (an atomic replace)."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(require_aware(instant, "instant").isoformat(), encoding="utf-8")
    os.replace(temporary, path)


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class RecordingSink:
    """Appends each published event to ``path`` as a JSON line and flushes it, so
    what was handed over before a SIGKILL is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def publish(self, events: Sequence[Event]) -> None:
        """Append ``events``: ``{"type": ..., <field>: ...}`` per line."""
        lines = []
        for event in events:
            fields = {k: _plain(v) for k, v in attrs.asdict(event, recurse=False).items()}
            lines.append(json.dumps({"type": type(event).__name__, **fields}) + "\n")
        # one write per unit of work: O_APPEND keeps it whole and in order (a short
        # write goes on where it stopped)
        data = "".join(lines).encode()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while data:
                data = data[os.write(descriptor, data) :]
        finally:
            os.close(descriptor)


def read_records(directory: Path, types: Collection[str] | None = None) -> list[dict[str, object]]:
    """Every event recorded under ``directory``, from all processes; only those of
    the event ``types`` (class names) when given, which skips parsing the others
    (each line starts with its ``"type"``).

    A line without its newline is the one a process was writing when it was killed:
    that delivery did not finish (its outbox entry stays and another worker publishes
    it), so it is not counted."""
    prefixes = None if types is None else tuple(f'{{"type": "{t}"' for t in types)
    records: list[dict[str, object]] = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            records.extend(
                json.loads(line)
                for line in lines
                if line.endswith("\n")
                and line.strip()
                and (prefixes is None or line.startswith(prefixes))
            )
    return records


def engine(store: Store) -> Salesflow:
    """The worker's engine: the file clock, a recording sink of this process, and the
    outbox."""
    record = Path(os.environ[RECORD_ENV])
    return Salesflow(
        store,
        clock=FileClock(Path(os.environ[CLOCK_ENV])),
        sink=RecordingSink(record / f"{os.getpid()}.jsonl"),
        outbox=True,  # what a killed worker committed but did not hand over, others do
    )
