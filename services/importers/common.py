"""What every importer shares: results, decoding, CSV rows, members, stable picks.

Progress: each importer takes ``progress``, a callable it calls with the number of
data rows handled since its previous call (every ``PROGRESS_EVERY`` rows and once at
the end), so ``tqdm(...).update`` can be passed as it is.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import re
import unicodedata
from collections.abc import (
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from schemas.capabilities import Capability
from schemas.envelope import Envelope, InvalidMessage, new_envelope
from schemas.events import OrganisationRegistered
from schemas.fiscal import as_japan_time
from services.errors import ServiceError

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 500

ProgressCallback = Callable[[int], None]


class ImporterError(ServiceError):
    """A whole file cannot be imported (undecodable, a required column missing)."""


@dataclass
class RejectedRow:
    """A row left out because it is wrong; ``line`` counts from 1 in the file."""

    line: int
    column: str | None
    reason: str


@dataclass
class ImportResult:
    """The envelopes built from one file, and what happened to the other rows."""

    envelopes: list[Envelope] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    skipped: int = 0
    duplicates: int = 0
    _seen: set[str] = field(default_factory=set, repr=False, compare=False)

    def add(self, envelope: Envelope) -> bool:
        """Keep an envelope unless its event id came earlier; count repeats."""
        if envelope.event_id in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(envelope.event_id)
        self.envelopes.append(envelope)
        return True

    def reject(self, line: int, column: str | None, reason: str) -> None:
        """Record a rejected row."""
        logger.debug("line %s rejected (%s): %s", line, column, reason)
        self.rejected.append(RejectedRow(line, column, reason))

    def summary(self) -> str:
        """Return one line saying what the import produced."""
        return (
            f"{len(self.envelopes)} events, {len(self.rejected)} rejected, "
            f"{self.skipped} skipped, {self.duplicates} duplicates"
        )


@dataclass(frozen=True)
class MemberRef:
    """What the importers of other files need to know about a member."""

    org_id: str
    name: str
    ward: str
    industry: str | None = None
    offers: frozenset[Capability] = frozenset()
    needs: frozenset[Capability] = frozenset()
    size: str | None = None
    corporate_number: str | None = None


def members_from(envelopes: Iterable[Envelope]) -> list[MemberRef]:
    """Return the members registered by these envelopes (the last one wins)."""
    members: dict[str, MemberRef] = {}
    for envelope in envelopes:
        payload = envelope.payload
        if isinstance(payload, OrganisationRegistered):
            members[payload.org_id] = MemberRef(
                org_id=payload.org_id,
                name=payload.name,
                ward=payload.ward,
                industry=payload.industry,
                offers=frozenset(payload.offers),
                needs=frozenset(payload.needs),
                size=payload.size,
                corporate_number=payload.corporate_number,
            )
    return list(members.values())


# -- decoding and rows ---------------------------------------------------------------


def read_text(path: Path | str, encoding: str | None = None) -> str:
    """Return a file's text: the given encoding, else the one it can be read in.

    Without an encoding: UTF-16 if it starts with a UTF-16 byte-order mark (as
    Excel's "Unicode text" does), else UTF-8 (BOM or not), else CP932.

    Raises:
        ImporterError: naming the file and the first byte that cannot be decoded,
            or saying that it looks like UTF-16 without a byte-order mark.
    """
    raw = Path(path).read_bytes()
    if encoding is not None:
        return _decode(raw, encoding, path)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(raw, "utf-16", path)
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ImporterError(
            f"{path}: holds NUL bytes (byte {nul}), as UTF-16 text "
            "without a byte-order mark does; save it as CSV (UTF-8) or give the "
            "encoding (utf-16-le or utf-16-be)"
        )
    try:
        return raw.decode("utf-8-sig")  # decodes UTF-8 with or without a BOM
    except UnicodeDecodeError as utf8_err:
        try:
            return raw.decode("cp932")
        except UnicodeDecodeError as err:
            raise ImporterError(
                f"{path}: neither UTF-8 (bad byte at offset {utf8_err.start}) "
                f"nor CP932 (bad byte at offset {err.start})"
            ) from err


def _decode(raw: bytes, encoding: str, path: Path | str) -> str:
    """Decode bytes in a named encoding, naming the file when it fails."""
    try:
        return raw.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise ImporterError(
            f"{path}: not {encoding} at byte {err.start}: {err.reason}"
        ) from err
    except LookupError as err:
        raise ImporterError(f"{path}: unknown encoding {encoding!r}") from err


def csv_rows(text: str, path: Path | str = "<text>") -> Iterator[tuple[int, list[str]]]:
    """Yield (line where each record starts, its cells); blank lines are left out.

    Cells are separated by commas, or by tabs when the first line has more tabs
    than commas (Excel's "Unicode text"). Rows whose cells are all blank are left
    out as well.

    Raises:
        ImporterError: if a quoted cell is not closed or text follows its closing
            quote; the file cannot be read reliably past that point.
    """
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True
    )
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise _quoting_error(path, start, reader.line_num, err) from err
        if any(cell.strip() for cell in cells):
            yield start, cells
        start = reader.line_num + 1


def _delimiter(text: str) -> str:
    """Return the cell separator: a tab if the first line has more tabs than commas."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return "\t" if first.count("\t") > first.count(",") else ","


def _quoting_error(
    path: Path | str, start: int, end: int, err: csv.Error
) -> ImporterError:
    """Describe a quoting mistake for the person who made the file."""
    if "unexpected end of data" in str(err):
        problem = "its quoted cell is never closed (a quote is missing)"
    else:
        problem = (
            "text follows a closing quote (a quote inside a quoted cell must be "
            "doubled)"
        )
    return ImporterError(
        f"{path}: the record starting on line {start} cannot be read: {problem} "
        f"(the CSV reader was at line {end}); fix it and import the file again"
    )


def header_of(rows: Iterator[tuple[int, list[str]]], path: Path | str) -> list[str]:
    """Return the first row of a file, its header.

    Raises:
        ImporterError: if the file has no row at all.
    """
    for _, cells in rows:
        return cells
    raise ImporterError(f"{path}: the file is empty (not even a header line)")


def normalise_label(text: str) -> str:
    """Return a header label or code as compared: NFKC, case-folded, trimmed."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def find_columns(
    header: Sequence[str],
    wanted: Mapping[str, tuple[str, ...]],
    *,
    required: Collection[str],
    path: Path | str,
    normalise: Callable[[str], str] = normalise_label,
) -> dict[str, int]:
    """Map each wanted column to its index, given the names it may go by.

    Header cells and names are compared after ``normalise``.

    Raises:
        ImporterError: if a required column is missing.
    """
    labels = [normalise(h) for h in header]
    found: dict[str, int] = {}
    for key, names in wanted.items():
        for name in names:
            if normalise(name) in labels:
                found[key] = labels.index(normalise(name))
                break
    missing = [wanted[key][0] for key in required if key not in found]
    if missing:
        raise ImporterError(
            f"{path}: no column {', '.join(missing)} in header {list(header)}"
        )
    return found


def cell(cells: Sequence[str], index: int | None) -> str:
    """Return a cell, trimmed; an absent column or a short row gives ''."""
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


class Progress:
    """Count handled rows and report them in batches to a progress callback."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._pending = 0

    def step(self) -> None:
        """Count one row."""
        self._pending += 1
        if self._pending >= PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        """Report the rows counted since the last report."""
        if self._callback is not None and self._pending:
            self._callback(self._pending)
        self._pending = 0


# -- envelopes ------------------------------------------------------------------------


def build(
    result: ImportResult,
    line: int,
    event_type: str,
    payload: dict[str, Any],
    *,
    source: str,
    occurred_at: datetime,
    event_id: str,
    columns: dict[str, str] | None = None,
) -> Envelope | None:
    """Validate one envelope; on failure record the row as rejected and return None.

    ``columns`` maps payload fields to the file's column names for the report.
    """
    try:
        return new_envelope(
            event_type,
            payload,
            source=source,
            occurred_at=occurred_at,
            event_id=event_id,
        )
    except InvalidMessage as err:
        first = err.problems[0] if err.problems else {"field": "", "problem": str(err)}
        name = first["field"].removeprefix("payload.")
        column = (columns or {}).get(name)
        reasons = "; ".join(_readable(p) for p in err.problems)
        result.reject(line, column, reasons)
        return None


def _readable(problem: dict[str, str]) -> str:
    name = problem["field"].removeprefix("payload.")
    text = problem["problem"].removeprefix("Value error, ")
    if "should match pattern" in text:
        text = (
            "must start with a letter or digit and use only letters, digits, "
            "'.', '_', ':' and '-'"
        )
    return f"{name}: {text}"


@dataclass
class Candidate:
    """A row's envelope and its rank among the rows of the same organisation."""

    line: int
    rank: tuple[int, ...]
    envelope: Envelope


def one_per_key(
    result: ImportResult, candidates: Iterable[Candidate]
) -> list[Envelope]:
    """Keep the highest-ranked row of each message key, in file order.

    The other rows of a key count as duplicates; a tie goes to the earlier row.
    """
    best: dict[str, Candidate] = {}
    for candidate in candidates:
        key = candidate.envelope.key
        if key in best:
            result.duplicates += 1
            if candidate.rank <= best[key].rank:
                continue
        best[key] = candidate
    kept = sorted(best.values(), key=lambda c: c.line)
    return [c.envelope for c in kept]


# -- dates and times ----------------------------------------------------------------

_MOMENT = re.compile(
    r"(?P<y>\d{4})[-/.年](?P<mo>\d{1,2})[-/.月](?P<d>\d{1,2})日?"
    r"(?:[ T]+(?P<h>\d{1,2})[:時](?P<mi>\d{1,2})"
    r"(?:[:分](?P<s>\d{1,2})(?:\.(?P<us>\d{1,6}))?)?[分秒]?)?"
    r" *(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)


class BadMoment(ValueError):
    """A text is not a real date and time; the message says why, in plain words."""


def parse_moment(text: str) -> datetime:
    """Return an aware datetime from a date (and time) as people write it.

    Accepts ``2025-06-01 14:00``, ``2025/6/1 14:00:30``, ``2025年6月1日 14時00分``,
    ISO 8601 with ``T`` and an offset or ``Z``, and a bare date (midnight);
    full-width digits are accepted. Without an offset it is Japan time.

    Raises:
        BadMoment: if it is not in one of those forms or not a real date and time.
    """
    norm = unicodedata.normalize("NFKC", text).strip()
    match = _MOMENT.fullmatch(norm)
    if match is None:
        raise BadMoment(f"{text!r} is not a date and time like 2025-06-01 14:00")
    parts = {k: int(v) for k, v in match.groupdict().items() if v and k != "tz"}
    if "us" in parts:
        parts["us"] = int(match["us"].ljust(6, "0"))
    try:
        moment = datetime(
            parts["y"],
            parts["mo"],
            parts["d"],
            parts.get("h", 0),
            parts.get("mi", 0),
            parts.get("s", 0),
            parts.get("us", 0),
        )
    except ValueError as err:
        raise BadMoment(f"{text!r} is not a real date and time ({err})") from err
    if match["tz"]:
        return moment.replace(tzinfo=_offset(match["tz"]))
    return as_japan_time(moment)


def _offset(text: str) -> timezone:
    if text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(-delta if text[0] == "-" else delta)


# -- stable, seeded choice of members ------------------------------------------------


def stable_hash(*parts: object) -> int:
    """Return a 64-bit hash of the parts that is the same in every process."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def party_key(name: str) -> str:
    """Return the key that identifies a party written in different ways.

    NFKC, case-folded, every run of non-alphanumeric characters made one space:
    'AECOM Canada Ltd.' and 'AECOM CANADA LTD' are the same party.
    """
    text = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


class MemberPicker:
    """Stand a member in for each party of a foreign file, deterministically.

    The rule: the pool is sorted by ``org_id``; the pick starts at index
    ``sha256(seed, role, party) mod len(pool)`` and walks forward to the first member
    not picked yet by this picker (so parties get distinct members while the pool
    lasts) and never lands on a member in ``forbidden``. Once every allowed member
    is taken, the start member is reused. Python's ``hash()`` is not used: it
    changes from process to process.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._used: set[str] = set()

    def pick(
        self,
        role: str,
        party: str,
        pool: Sequence[MemberRef],
        *,
        forbidden: Collection[str] = (),
    ) -> MemberRef | None:
        """Return the member standing for a party, or None if none is allowed."""
        allowed = sorted(
            (m for m in pool if m.org_id not in forbidden), key=lambda m: m.org_id
        )
        if not allowed:
            return None
        start = stable_hash(self.seed, role, party) % len(allowed)
        ordered = allowed[start:] + allowed[:start]
        chosen = next((m for m in ordered if m.org_id not in self._used), ordered[0])
        self._used.add(chosen.org_id)
        return chosen


def require_members(members: Sequence[MemberRef], path: Path | str) -> None:
    """Refuse to map a file's parties when there are no members to map them onto.

    Raises:
        ImporterError: if ``members`` is empty.
    """
    if not members:
        raise ImporterError(
            f"{path}: the platform has no members yet to stand in for its parties; "
            "import members first (a member list just imported may take a few "
            "seconds to be processed)"
        )
