"""Run the importers on the files of ``bad_files/`` and check their reports.

Each file breaks one way; ``<name>.expected.json`` beside it gives the report it
must produce (see ``make_bad_files.py``, which writes both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.identity import org_identity
from services.importers import (
    ImporterError,
    ImportResult,
    MemberRef,
    import_attendance_csv,
    read_members_file,
)
from tests.services.importers.make_bad_files import BAD_FILES, BAD_FILES_DIR

EXPECTED_SUFFIX = ".expected.json"

# The members the attendance files name, one by corporate number, one by name only.
MEMBERS = [
    MemberRef("1010001000006", "株式会社みどり設備", "13108"),
    MemberRef(org_identity("あおぞら電気株式会社", "13111", None), "あおぞら電気株式会社", "13111"),
    MemberRef("5070001000715", "GREEN TECH CO., LTD.", "13103"),
]  # fmt: skip


def expected_files() -> list[Path]:
    return sorted(BAD_FILES_DIR.glob(f"*{EXPECTED_SUFFIX}"))


def load(expected_path: Path) -> tuple[Path, dict[str, Any]]:
    """Return the bad file an expected report belongs to, and the report."""
    path = expected_path.with_name(expected_path.name.removesuffix(EXPECTED_SUFFIX))
    return path, json.loads(expected_path.read_text(encoding="utf-8"))


def run(importer: str, path: Path) -> ImportResult:
    if importer == "members":
        return read_members_file(path)
    if importer == "attendance":
        return import_attendance_csv(path, MEMBERS)
    raise AssertionError(f"unknown importer {importer!r} in the expected report")


def summary(result: ImportResult) -> dict[str, Any]:
    return {
        "accepted": len(result.envelopes),
        "duplicates": result.duplicates,
        "skipped": result.skipped,
        "rejected": [(r.line, r.column) for r in result.rejected],
    }


def expected_summary(expected: dict[str, Any]) -> dict[str, Any]:
    return {
        "accepted": expected["accepted"],
        "duplicates": expected["duplicates"],
        "skipped": expected["skipped"],
        "rejected": [(r["line"], r["column"]) for r in expected["rejected"]],
    }


def readable_files() -> list[Path]:
    return [p for p in expected_files() if "error" not in load(p)[1]]


def refused_files() -> list[Path]:
    return [p for p in expected_files() if "error" in load(p)[1]]


@pytest.mark.parametrize("expected_path", readable_files(), ids=lambda p: p.name)
def test_bad_file_gives_its_expected_report(expected_path: Path) -> None:
    path, expected = load(expected_path)

    result = run(expected["importer"], path)

    assert summary(result) == expected_summary(expected)
    for row, wanted in zip(result.rejected, expected["rejected"], strict=True):
        assert wanted["reason"] in row.reason
    if "org_ids" in expected:
        org_ids = [e.payload.org_id for e in result.envelopes]  # type: ignore[attr-defined]
        assert org_ids == expected["org_ids"]
    if "occurred_at" in expected:
        moments = [e.occurred_at.isoformat() for e in result.envelopes]
        assert moments == expected["occurred_at"]


@pytest.mark.parametrize("expected_path", refused_files(), ids=lambda p: p.name)
def test_bad_file_is_refused_naming_the_file(expected_path: Path) -> None:
    path, expected = load(expected_path)

    with pytest.raises(ImporterError) as err:
        run(expected["importer"], path)

    assert expected["error"] in str(err.value)
    assert path.name in str(err.value)


@pytest.mark.parametrize("expected_path", readable_files(), ids=lambda p: p.name)
def test_bad_file_imported_twice_gives_same_event_ids(expected_path: Path) -> None:
    path, expected = load(expected_path)

    first = run(expected["importer"], path)
    again = run(expected["importer"], path)

    assert [e.event_id for e in first.envelopes] == [
        e.event_id for e in again.envelopes
    ]


def test_bad_files_cover_every_generated_file() -> None:
    names = {p.name for p in BAD_FILES_DIR.iterdir()}

    wanted = {b.name for b in BAD_FILES} | {
        f"{b.name}{EXPECTED_SUFFIX}" for b in BAD_FILES
    }

    assert names == wanted
    assert len(expected_files()) == len(BAD_FILES) >= 12


@pytest.mark.parametrize("bad", BAD_FILES, ids=lambda b: b.name)
def test_bad_file_matches_its_generator(bad) -> None:
    path = BAD_FILES_DIR / bad.name

    content = path.read_bytes()
    expected = (BAD_FILES_DIR / f"{bad.name}{EXPECTED_SUFFIX}").read_text("utf-8")

    assert content == bad.content()
    assert expected == bad.expected_json()
