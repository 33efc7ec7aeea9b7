"""Fixtures of the importer tests: the real files, when present, and file writers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.capabilities import Capability
from services.importers import ImportResult, MemberRef, import_members, members_from

EDINET = "edinet-codelist-2025-12-24.csv"
TORONTO = "toronto-awarded-contracts-2022-2024.csv"
SBRC = "sbrc2019-session-attendance.csv"

WriteFile = Callable[..., Path]


def real_file(shared_data: Path, name: str) -> Path:
    """Return a file of ../shared/data, or skip the test when it is not there."""
    path = shared_data / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (real data is not shipped)")
    return path


# The EDINET list and the Toronto awards ship with the demo (they are licensed for
# it); the conference check-ins are only read from ../shared/data.
SHIPPED = Path(__file__).resolve().parents[3] / "services" / "demo_data"


@pytest.fixture(scope="session")
def edinet_path() -> Path:
    return SHIPPED / EDINET


@pytest.fixture(scope="session")
def toronto_path() -> Path:
    return SHIPPED / TORONTO


@pytest.fixture(scope="session")
def sbrc_path(shared_data: Path) -> Path:
    return real_file(shared_data, SBRC)


@pytest.fixture(scope="session")
def edinet_result(edinet_path: Path) -> ImportResult:
    return import_members(edinet_path)


@pytest.fixture(scope="session")
def real_members(edinet_result: ImportResult) -> list[MemberRef]:
    return members_from(edinet_result.envelopes)


@pytest.fixture
def write_file(tmp_path: Path) -> WriteFile:
    """Return a function writing text to a file in tmp_path in a given encoding."""

    def write(text: str, encoding: str = "utf-8", name: str = "in.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return write


@pytest.fixture
def small_members() -> list[MemberRef]:
    """Return five members: two large buyers-to-be, three small suppliers."""
    return [
        MemberRef("1010001000006", "大手建設株式会社", "13101", size="large"),
        MemberRef("edinet-E00002", "Big Bank", "13103", size="large"),
        MemberRef(
            "edinet-E00003", "株式会社 みどり設備", "13108", size="small",
            offers=frozenset({Capability.HVAC}),
        ),
        MemberRef(
            "edinet-E00004", "(株)あおぞら電気", "13111", size="small",
            offers=frozenset({Capability.LED_LIGHTING}),
        ),
        MemberRef("edinet-E00005", "Kiyosumi Trading", "13108", size="medium"),
    ]  # fmt: skip
