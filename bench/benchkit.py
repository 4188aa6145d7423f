"""What every benchmark script prints about the machine it ran on, shared by the
scripts in `bench/` (run as ``python bench/<name>.py``, so this folder is on the
path)."""

from __future__ import annotations

import math
import os
import platform
import shutil
import sqlite3
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import salesflow


def cpu_name() -> str:
    """The processor's name as ``/proc/cpuinfo`` gives it (else what platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews timings."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "?"
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min)"


def machine() -> list[tuple[str, str]]:
    """The facts a benchmark table is read with: Python, CPU, cores, OS, SQLite,
    salesflow, load average."""
    return [
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("cpu", f"{cpu_name()} ({len(os.sched_getaffinity(0))} cores)"),
        ("os", platform.platform()),
        ("sqlite", sqlite3.sqlite_version),
        ("salesflow", salesflow.__version__),
        ("load avg", load_average()),
    ]


def safe_dsn(dsn: str) -> str:
    """Where a PostgreSQL DSN points, without its password."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    host, port = info.get("host", "localhost"), info.get("port", 5432)
    return f"{info.get('user', '')}@{host}:{port}/{info.get('dbname', '')}"


def median_ms(samples: list[float]) -> float:
    """The median of timings in seconds, in milliseconds."""
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    """The 95th percentile (nearest rank) of timings in seconds, in milliseconds."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] * 1000


class Samples:
    """A timing made of ``samples`` (seconds), read as a median and a 95th percentile
    in milliseconds; mixed into the benchmarks' result dataclasses."""

    samples: list[float]

    @property
    def median_ms(self) -> float:
        """The median sample, in milliseconds."""
        return median_ms(self.samples)

    @property
    def p95_ms(self) -> float:
        """The 95th percentile sample, in milliseconds."""
        return p95_ms(self.samples)


def sqlite_file(prefix: str, name: str) -> tuple[Path, Callable[[], None], Callable[[], str]]:
    """A SQLite file in a new temporary folder: its path, a cleanup that removes the
    folder, and the size of every file there (the database and its log)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))

    def size() -> str:
        files = sorted(folder.iterdir())
        return ", ".join(f"{p.name} {p.stat().st_size / 1e6:.0f} MB" for p in files)

    return folder / name, lambda: shutil.rmtree(folder, ignore_errors=True), size
