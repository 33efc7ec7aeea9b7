"""Reading dated snapshots of a supply network: one CSV of links per date.

A snapshot is a file ``A_YYYY_MM_DD.csv`` with the header ``supplier,customer``
and one link a line, as the supply-network data used by `matching.evaluation`
comes.
"""

from __future__ import annotations

import csv
import logging
import re
from datetime import date
from pathlib import Path

from matching.evaluation import EvaluationError

__all__ = ["SNAPSHOT_HEADER", "read_snapshots", "snapshot_date"]

logger = logging.getLogger(__name__)

SNAPSHOT_NAME = re.compile(r"^A_(\d{4})_(\d{2})_(\d{2})\.csv$")
SNAPSHOT_HEADER = ["supplier", "customer"]


def read_snapshots(
    directory: Path, *, until: date | None = None
) -> dict[date, list[tuple[str, str]]]:
    """Read the snapshots of a folder, those dated up to `until` if given.

    Raises:
        EvaluationError: if a snapshot's header is not ``supplier,customer``.
    """
    snapshots = {}
    for path in sorted(directory.iterdir()):
        day = snapshot_date(path.name)
        if day is None or (until is not None and day > until):
            continue
        snapshots[day] = _read_snapshot(path)
        logger.info("read %s: %d links", path.name, len(snapshots[day]))
    return snapshots


def snapshot_date(name: str) -> date | None:
    """Return the date of a snapshot file name ``A_YYYY_MM_DD.csv``, else None."""
    found = SNAPSHOT_NAME.match(name)
    return date(*map(int, found.groups())) if found else None


def _read_snapshot(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        header = [cell.strip() for cell in next(rows, [])]
        if header != SNAPSHOT_HEADER:
            raise EvaluationError(f"{path.name}: header must be supplier,customer")
        return [(row[0].strip(), row[1].strip()) for row in rows if len(row) >= 2]
