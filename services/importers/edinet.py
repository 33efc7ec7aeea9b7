"""Import members from the FSA's EDINET filer list (EDINETコードリスト).

The file as published: CP932, line 1 a metadata line (``ダウンロード実行日,
2025年12月24日現在,件数,11188件``), line 2 a full-width header. Columns are found by
their NFKC-normalised names, not by position.

Rules:

- Only filers whose 所在地 is in the 23 special wards are kept; the others are
  counted as skipped. Tokyo addresses in the list omit 東京都.
- ``org_id`` is the verified corporate number (法人番号), else ``edinet-<code>``.
- ``industry`` is 提出者業種, except where that column holds a filer kind
  (``内国法人・組合（有価証券報告書等の提出義務者以外）`` and the like): None.
- ``size`` (ASSUMPTION, NOT DATA; capital 資本金 is in million yen): ``large`` if
  listed (上場区分 = 上場) or capital >= 300; ``medium`` if capital >= 50, the
  lowest capital ceiling of an SME in the SME Basic Act (中小企業基本法, retail and
  services); ``small`` below that; None if the capital is not a number.
- offers and needs are assumed from the industry (``capabilities_assumed``).
- An organisation listed twice (two EDINET codes, one corporate number) is
  registered once: the listed row is preferred, then one with an industry, then the
  first; the other rows count as duplicates.
- ``occurred_at`` is the file's own date (``2025年12月24日現在`` ->
  2025-12-24T00:00+09:00); the event id is derived from the payload, so the same
  content imported again (even from a later list) gives the same id.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from schemas.capabilities import capabilities_for_industry
from schemas.envelope import content_event_id
from schemas.errors import ContractError
from schemas.fiscal import JST
from schemas.identity import normalise_corporate_number
from schemas.wards import ward_of_address
from services.importers.common import (
    Candidate,
    ImporterError,
    ImportResult,
    Progress,
    ProgressCallback,
    build,
    cell,
    csv_rows,
    find_columns,
    normalise_label,
    one_per_key,
    read_text,
)

logger = logging.getLogger(__name__)

SOURCE = "edinet-codelist"

LARGE_CAPITAL_MJPY = 300
MEDIUM_CAPITAL_MJPY = 50

_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("EDINETコード",),
    "listing": ("上場区分",),
    "capital": ("資本金",),
    "name": ("提出者名",),
    "name_en": ("提出者名(英字)",),
    "address": ("所在地",),
    "industry": ("提出者業種",),
    "corporate_number": ("提出者法人番号",),
}
_REQUIRED = ("code", "name", "address")

# Payload fields and the header names shown to a person when a row is rejected.
_FIELD_COLUMNS = {
    "org_id": "EDINETコード",
    "name": "提出者名",
    "name_en": "提出者名（英字）",
    "ward": "所在地",
    "corporate_number": "提出者法人番号",
    "industry": "提出者業種",
}

_AS_OF = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")


def import_members(
    path: Path | str,
    *,
    encoding: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Turn the EDINET filer list into ``OrganisationRegistered`` envelopes.

    Raises:
        ImporterError: if the file cannot be decoded, has no date line or lacks a
            required column.
    """
    rows = csv_rows(read_text(path, encoding), path)
    occurred_at, header = _read_preamble(rows, path)
    columns = find_columns(header, _COLUMNS, required=_REQUIRED, path=path)
    result = ImportResult()
    counter = Progress(progress)
    candidates: list[Candidate] = []
    for line, cells in rows:
        candidate = _candidate(result, line, cells, columns, occurred_at)
        if candidate is not None:
            candidates.append(candidate)
        counter.step()
    counter.flush()
    for envelope in one_per_key(result, candidates):
        result.add(envelope)
    logger.info("imported %s: %s", path, result.summary())
    return result


def _read_preamble(
    rows: Iterator[tuple[int, list[str]]], path: Path | str
) -> tuple[datetime, list[str]]:
    """Read the lines up to the header; return the file's date and the header."""
    as_of: date | None = None
    for _, cells in rows:
        labels = [normalise_label(c) for c in cells]
        if normalise_label("EDINETコード") in labels:
            if as_of is None:
                raise ImporterError(f"{path}: no '…年…月…日現在' date above the header")
            return datetime.combine(as_of, time(0), JST), cells
        as_of = as_of or _date_in(cells)
    raise ImporterError(f"{path}: no header with an EDINETコード column")


def _date_in(cells: list[str]) -> date | None:
    for text in cells:
        match = _AS_OF.search(unicodedata.normalize("NFKC", text))
        if match:
            return date(*(int(g) for g in match.groups()))
    return None


def _candidate(
    result: ImportResult,
    line: int,
    cells: list[str],
    columns: dict[str, int],
    occurred_at: datetime,
) -> Candidate | None:
    """Build a row's envelope; None if it lies outside the wards or is rejected."""
    ward = ward_of_address(cell(cells, columns["address"]))
    if ward is None:
        result.skipped += 1
        return None
    payload = _payload(result, line, cells, columns, ward)
    if payload is None:
        return None
    event_id = content_event_id(SOURCE, payload["org_id"], _canonical(payload))
    envelope = build(
        result,
        line,
        "OrganisationRegistered",
        payload,
        source=SOURCE,
        occurred_at=occurred_at,
        event_id=event_id,
        columns=_FIELD_COLUMNS,
    )
    if envelope is None:
        return None
    listed = cell(cells, columns.get("listing")) == "上場"
    rank = (int(listed), int(payload["industry"] is not None), -line)
    return Candidate(line, rank, envelope)


def _payload(
    result: ImportResult,
    line: int,
    cells: list[str],
    columns: dict[str, int],
    ward: str,
) -> dict[str, Any] | None:
    """Return the payload of a row inside the wards; None if it is rejected."""
    number_text = cell(cells, columns.get("corporate_number"))
    try:
        number = normalise_corporate_number(number_text) if number_text else None
    except ContractError as err:
        result.reject(line, "提出者法人番号", f"corporate_number: {err}")
        return None
    industry = _industry(cell(cells, columns.get("industry")))
    offers, needs = capabilities_for_industry(industry or "")
    return {
        "org_id": number or f"edinet-{cell(cells, columns['code'])}",
        "name": _clean(cell(cells, columns["name"])),
        "name_en": _clean(cell(cells, columns.get("name_en"))) or None,
        "ward": ward,
        "corporate_number": number,
        "industry": industry,
        "size": _size(
            cell(cells, columns.get("listing")), cell(cells, columns.get("capital"))
        ),
        "offers": sorted(offers),
        "needs": sorted(needs),
        "capabilities_assumed": True,
    }


def _industry(text: str) -> str | None:
    """Return the industry, or None where the column holds a filer kind instead."""
    if not text or "法人・組合" in text:
        return None
    return text


def _size(listing: str, capital_text: str) -> str | None:
    """Return the size class from the listing and the capital in million yen."""
    if listing == "上場":
        return "large"
    try:
        capital = int(unicodedata.normalize("NFKC", capital_text).replace(",", ""))
    except ValueError:
        return None
    if capital >= LARGE_CAPITAL_MJPY:
        return "large"
    return "medium" if capital >= MEDIUM_CAPITAL_MJPY else "small"


def _clean(text: str) -> str:
    """Return a name in NFKC (full-width letters and spaces made plain), one-spaced."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
