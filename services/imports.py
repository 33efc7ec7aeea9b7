"""Send what an importer read through the API, with progress and a report."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from services.client import AllianceClient
from services.importers.common import ImportResult, MemberRef, read_text

REPORT_ROWS = 20


@dataclass
class ImportOutcome:
    """What happened to one imported file."""

    label: str
    result: ImportResult
    accepted: int = 0
    duplicates: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return len(self.result.rejected) + len(self.refused)

    def report(self) -> str:
        """Return a summary and the rejected rows, in words for the file's owner."""
        r = self.result
        lines = [
            f"{self.label}: {self.accepted} new events accepted, "
            f"{self.duplicates} already known, {r.duplicates} repeated rows counted once, "
            f"{r.skipped} rows left out, {self.rejected_total} rows rejected"
        ]
        for row in r.rejected[:REPORT_ROWS]:
            column = f" column {row.column}" if row.column else ""
            lines.append(f"  line {row.line}{column}: {row.reason}")
        if len(r.rejected) > REPORT_ROWS:
            lines.append(
                f"  ... and {len(r.rejected) - REPORT_ROWS} more rejected rows"
            )
        for answer in self.refused[:REPORT_ROWS]:
            lines.append(f"  refused by the platform: {answer}")
        return "\n".join(lines)


def send_import(
    client: AllianceClient, result: ImportResult, *, label: str
) -> ImportOutcome:
    """Send an import's events in batches, showing progress."""
    outcome = ImportOutcome(label, result)
    envelopes = result.envelopes
    with tqdm(
        total=len(envelopes), desc=f"Importing {label}", unit=" events", file=sys.stderr
    ) as bar:
        for answers in client.post_all(envelopes):
            count_answers(outcome, answers)
            bar.update(len(answers))
    return outcome


def count_answers(outcome: ImportOutcome, answers: Sequence[dict[str, Any]]) -> None:
    for answer in answers:
        status = answer.get("status")
        if status == "accepted":
            outcome.accepted += 1
        elif status == "duplicate":
            outcome.duplicates += 1
        else:
            outcome.refused.append(answer)


def read_attendance_file(
    path: Path, members: Sequence[MemberRef], *, seed: int, encoding: str | None
) -> ImportResult:
    """Read an attendance file in either format, told apart by its header."""
    from services.importers.attendance import (
        import_attendance_csv,
        import_conference_checkins,
    )

    header = read_text(path, encoding).splitlines()[0] if path.stat().st_size else ""
    if "participation" in header and "Institution" in header:
        return import_conference_checkins(path, members, seed=seed, encoding=encoding)
    return import_attendance_csv(path, members, encoding=encoding)
