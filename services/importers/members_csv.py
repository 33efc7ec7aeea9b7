"""Import members from a plain CSV that people made (a sheet saved as CSV).

Columns are found by name, compared after NFKC with case, spaces and underscores
left out (``NAME_NAMES`` and the other ``*_NAMES``): a name column, and a ward or an
address column, are required; corporate number, industry, offers and needs are
optional. Comma- or tab-separated; UTF-8 (with or without BOM), CP932 or UTF-16
with a byte-order mark (see ``read_text``).

Rules, per row:

- The ward is the ward cell (a JIS code, or a name such as 港区, 港, Minato) when it
  is filled; otherwise the ward of the address (東京都 and a postal code in front
  are allowed). A row outside the 23 wards is rejected, naming the address.
- A corporate number may have full-width digits, spaces and hyphens; one that is not
  13 digits or has a wrong check digit rejects the row (it is not re-keyed by name).
- ``org_id`` is ``org_identity``: the corporate number, else ``n-`` and a hash of the
  normalised name and the ward. A row without a number takes the number of a row of
  the same name and ward in the same file, when exactly one number is given for it.
- offers and needs are capability codes, or their Japanese or English labels
  (``CAPABILITY_LABELS``), separated by ``;``, ``,``, ``、`` or a line break. An
  unknown value rejects the row, naming the value. A row stating neither gets the
  ones assumed from its industry (``capabilities_assumed``).
- One registration per organisation: the row with a corporate number is preferred,
  then the first; the other rows of the organisation (a repeated row, the same name
  written another way) count as duplicates and their content is not used.
- A row whose cells are all empty is left out silently: not rejected, not counted.
- Every problem of a rejected row is reported; the column named is the first's.

``occurred_at`` is the file's modification time (Japan time, to the second) unless
given; the event id is derived from the payload, so the same content imported again
gives the same id.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.capabilities import (
    CAPABILITY_LABELS,
    Capability,
    capabilities_for_industry,
)
from schemas.envelope import content_event_id
from schemas.errors import ContractError
from schemas.fiscal import JST
from schemas.identity import (
    name_key,
    normalise_corporate_number,
    normalise_org_name,
    org_identity,
)
from schemas.wards import ward_code, ward_of_address
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
    header_of,
    one_per_key,
    read_text,
)

logger = logging.getLogger(__name__)

SOURCE = "members-csv"

NAME_NAMES = (
    "企業名", "会社名", "事業者名", "組織名", "団体名", "名称", "name",
    "organisation", "organization", "company",
)  # fmt: skip
ADDRESS_NAMES = ("所在地", "住所", "address")
WARD_NAMES = ("区", "区名", "ward")
CORPORATE_NUMBER_NAMES = (
    "法人番号", "corporate number", "corporate_number", "houjin bangou",
)  # fmt: skip
INDUSTRY_NAMES = ("業種", "industry")
OFFERS_NAMES = ("提供", "提供できるもの", "offers")
NEEDS_NAMES = ("必要", "ニーズ", "needs")

_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": NAME_NAMES,
    "address": ADDRESS_NAMES,
    "ward": WARD_NAMES,
    "corporate_number": CORPORATE_NUMBER_NAMES,
    "industry": INDUSTRY_NAMES,
    "offers": OFFERS_NAMES,
    "needs": NEEDS_NAMES,
}

_CAPABILITY_SEPARATOR = re.compile(r"[;,、，；\n]")
_POSTAL_CODE = re.compile(r"^〒?\s*\d{3}-?\d{4}\s*")
# What a spreadsheet makes of a 13-digit number in a cell formatted as a number.
_SHORTENED_NUMBER = re.compile(r"\d(?:\.\d+)?e\+?\d+", re.IGNORECASE)

Problem = tuple[str, str]  # (column as the file names it, reason)


def header_label(text: str) -> str:
    """Return a header cell as compared: NFKC, case-folded, no spaces or '_'."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("_", "")
    return "".join(folded.split())


def _capability_label(text: str) -> str:
    return header_label(text).replace("-", "")


CAPABILITY_NAMES: dict[str, Capability] = {
    _capability_label(name): capability
    for capability, labels in CAPABILITY_LABELS.items()
    for name in (capability.value, *labels)
}


@dataclass(frozen=True)
class _Columns:
    """Where each wanted column is, and its name as written in the file."""

    index: dict[str, int]
    name: dict[str, str]

    def label(self, key: str) -> str:
        return self.name.get(key, _COLUMNS[key][0])


@dataclass(frozen=True)
class _Row:
    """A row that passed every check, before its organisation's id is known."""

    line: int
    name: str
    ward: str
    key: str
    number: str | None
    industry: str | None
    offers: list[Capability] | None
    needs: list[Capability] | None


def import_members_csv(
    path: Path | str,
    *,
    encoding: str | None = None,
    progress: ProgressCallback | None = None,
    occurred_at: datetime | None = None,
) -> ImportResult:
    """Turn a members CSV made by people into ``OrganisationRegistered`` envelopes.

    Raises:
        ImporterError: if the file cannot be decoded or read as CSV, is empty, or
            has no name column or neither a ward nor an address column.
    """
    rows = csv_rows(read_text(path, encoding), path)
    columns = _find_columns(header_of(rows, path), path)
    result = ImportResult()
    counter = Progress(progress)
    parsed: list[_Row] = []
    for line, cells in rows:
        row = _parse_row(result, line, cells, columns)
        if row is not None:
            parsed.append(row)
        counter.step()
    counter.flush()

    when = occurred_at or _modified_at(path)
    candidates = _candidates(result, parsed, columns, when)
    for envelope in one_per_key(result, candidates):
        result.add(envelope)
    logger.info("imported %s: %s", path, result.summary())
    return result


def _find_columns(header: list[str], path: Path | str) -> _Columns:
    """Find the columns; a ward or an address column must be among them."""
    index = find_columns(
        header, _COLUMNS, required=("name",), path=path, normalise=header_label
    )
    if "ward" not in index and "address" not in index:
        raise ImporterError(
            f"{path}: no column {WARD_NAMES[0]} or {ADDRESS_NAMES[0]} "
            f"(ward or address) in header {header}"
        )
    names = {key: header[i].strip() for key, i in index.items()}
    return _Columns(index, names)


def _modified_at(path: Path | str) -> datetime:
    """Return when the file was last saved, in Japan time, to the second."""
    moment = datetime.fromtimestamp(Path(path).stat().st_mtime, JST)
    return moment.replace(microsecond=0)


# -- one row -------------------------------------------------------------------------


def _parse_row(
    result: ImportResult, line: int, cells: list[str], columns: _Columns
) -> _Row | None:
    """Check one row; reject it with every problem found, or return it."""
    text = {key: cell(cells, i) for key, i in columns.index.items()}
    problems: list[Problem] = []
    name = _clean(text["name"])
    if not normalise_org_name(name):
        column = columns.label("name")
        problems.append((column, f"{column}: the name is empty"))
    ward = _ward(text, columns, problems)
    number = _corporate_number(
        text.get("corporate_number", ""), columns.label("corporate_number"), problems
    )
    offers = _capabilities(text.get("offers", ""), columns.label("offers"), problems)
    needs = _capabilities(text.get("needs", ""), columns.label("needs"), problems)
    if problems or ward is None:  # no ward only with a problem
        first = problems[0][0] if problems else None
        result.reject(line, first, "; ".join(reason for _, reason in problems))
        return None
    industry = _clean(text.get("industry", "")) or None
    key = name_key(name, ward)
    return _Row(line, name, ward, key, number, industry, offers, needs)


def _clean(text: str) -> str:
    """Return text in NFKC (full-width letters and spaces made plain), one-spaced."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _ward(
    text: dict[str, str], columns: _Columns, problems: list[Problem]
) -> str | None:
    """Return the row's ward: its ward cell, else the ward of its address."""
    ward_text = _clean(text.get("ward", ""))
    address = _clean(text.get("address", ""))
    if ward_text:
        code = _ward_code(ward_text)
        if code is None:
            column = columns.label("ward")
            problems.append(
                (column, f"{column}: {ward_text!r} is not one of the 23 special wards")
            )
        return code
    if address:
        code = ward_of_address(_POSTAL_CODE.sub("", address))
        if code is None:
            column = columns.label("address")
            problems.append(
                (column, f"{column}: {address!r} is outside the 23 special wards")
            )
        return code
    column = columns.label("ward" if "ward" in columns.index else "address")
    problems.append((column, f"{column}: no ward and no address to tell it from"))
    return None


def _ward_code(text: str) -> str | None:
    """Return the code of a ward cell as written, or with its spaces left out."""
    for candidate in (text, text.replace(" ", "")):
        try:
            return ward_code(candidate)
        except ContractError:
            continue
    return None


def _corporate_number(text: str, column: str, problems: list[Problem]) -> str | None:
    """Return the verified corporate number, None if blank; note what is wrong."""
    if not text:
        return None
    if _SHORTENED_NUMBER.fullmatch(unicodedata.normalize("NFKC", text)):
        problems.append(
            (
                column,
                f"{column}: {text!r} is a 13-digit number a spreadsheet has rounded; "
                "format the column as text and type the digits again",
            )
        )
        return None
    try:
        return normalise_corporate_number(text)
    except ContractError as err:
        problems.append((column, f"{column}: {err}"))
        return None


def _capabilities(
    text: str, column: str, problems: list[Problem]
) -> list[Capability] | None:
    """Return the capabilities a cell lists (sorted, once each); None if blank."""
    values = [v.strip() for v in _CAPABILITY_SEPARATOR.split(text) if v.strip()]
    if not values:
        return None
    unknown = [v for v in values if _capability_label(v) not in CAPABILITY_NAMES]
    if unknown:
        listed = ", ".join(repr(v) for v in unknown)
        problems.append(
            (
                column,
                f"{column}: unknown capability {listed}; use a code such as "
                "'energy_audit' or a label such as '省エネ診断' or 'energy audit'",
            )
        )
        return None
    return sorted({CAPABILITY_NAMES[_capability_label(v)] for v in values})


# -- organisations -------------------------------------------------------------------


def _org_ids(rows: Sequence[_Row]) -> list[str]:
    """Return each row's org id, lending a name the one number given for it."""
    numbers: dict[str, set[str]] = {}
    for row in rows:
        if row.number is not None:
            numbers.setdefault(row.key, set()).add(row.number)
    ids = []
    for row in rows:
        known = numbers.get(row.key, set())
        lent = next(iter(known)) if len(known) == 1 else None
        ids.append(row.number or lent or org_identity(row.name, row.ward, None))
    return ids


def _candidates(
    result: ImportResult, rows: Sequence[_Row], columns: _Columns, when: datetime
) -> list[Candidate]:
    """Build each row's envelope, ranked so that a row with a number is kept."""
    field_columns = {
        "org_id": columns.label("name"),
        "name": columns.label("name"),
        "ward": columns.label("ward" if "ward" in columns.index else "address"),
        "corporate_number": columns.label("corporate_number"),
        "industry": columns.label("industry"),
    }
    candidates = []
    for row, org_id in zip(rows, _org_ids(rows), strict=True):
        payload = _payload(row, org_id)
        envelope = build(
            result,
            row.line,
            "OrganisationRegistered",
            payload,
            source=SOURCE,
            occurred_at=when,
            event_id=content_event_id(SOURCE, org_id, _canonical(payload)),
            columns=field_columns,
        )
        if envelope is not None:
            rank = (int(row.number is not None), -row.line)
            candidates.append(Candidate(row.line, rank, envelope))
    return candidates


def _payload(row: _Row, org_id: str) -> dict[str, Any]:
    """Return a row's ``OrganisationRegistered`` payload."""
    assumed = row.offers is None and row.needs is None
    if assumed:
        offers, needs = (
            sorted(c) for c in capabilities_for_industry(row.industry or "")
        )
    else:
        offers, needs = row.offers or [], row.needs or []
    return {
        "org_id": org_id,
        "name": row.name,
        "ward": row.ward,
        "corporate_number": row.number,
        "industry": row.industry,
        "offers": offers,
        "needs": needs,
        "capabilities_assumed": assumed,
    }


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
