"""Import supply links from the City of Toronto's awarded-contracts file.

Columns (found by name): ``Document Number``, ``Successful Supplier``, ``Award
Date``, ``Division``, ``Solicitation Document Description``; amounts are ignored.
One ``SupplierLinked`` per award and buying division: the Division is the buyer,
the Successful Supplier the supplier, ``since`` the Award Date (``occurred_at`` is
that date, midnight Japan time).

Cleaning:

- Text that was UTF-8 decoded as Latin-1 and encoded again (``â€œRFQâ€``) is
  repaired; a description longer than 500 characters is cut to 500.
- A Division cell naming several divisions (``Fire Services,Fleet Services``: a
  comma with no space after it; ``Parks, Forestry & Recreation`` is one name) gives
  one link per division.
- Parties are told apart by ``party_key``: case, punctuation and spacing do not
  count, so ``AECOM Canada Ltd.`` and ``AECOM CANADA LTD`` are one supplier.
- An award repeated (same document, division, supplier and date, whatever its
  ``unique_id``, amount or wording) gives one event; the repeats are duplicates.
- A row with no Division, no supplier or no valid Award Date is rejected.

Category (ASSUMPTION, NOT DATA): the first rule of ``CATEGORY_RULES`` whose
pattern occurs in the description (case-insensitive but for ``LED``, at word
starts) gives the capability; none matching gives None. It is crude: a mention
of the Toronto Water division reads as water saving.

Re-keying (Toronto's parties are not Tokyo members), deterministic for a given
file, member list and seed, with ``MemberPicker`` (sha256 of seed, role and
``party_key``; never Python's ``hash()``):

1. Divisions, in ``party_key`` order, each get one member of size ``large`` (all
   members if none is large).
2. Each supplier's category is the most frequent category of its awards (ties go
   to the earlier rule; None if no award has one). Suppliers, in ``party_key``
   order, each get one member that offers that category; with no category or no
   member offering it, one that offers anything; with none offering anything, any
   member. A member standing for a division is never picked for a supplier, so a
   buyer is never its own supplier.
3. Members are not reused while unpicked ones remain in the pool, so distinct
   parties get distinct members as far as the pool allows.

The same Toronto party maps to the same member across all its awards. The event
id is derived from the award and the two members it was mapped to, so importing
the same file with the same members and seed again gives the same ids.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from schemas.capabilities import Capability
from schemas.envelope import content_event_id
from schemas.fiscal import JST
from services.importers.common import (
    ImportResult,
    MemberPicker,
    MemberRef,
    Progress,
    ProgressCallback,
    build,
    cell,
    csv_rows,
    find_columns,
    header_of,
    party_key,
    read_text,
    require_members,
)

logger = logging.getLogger(__name__)

SOURCE = "toronto-awarded-contracts"

DESCRIPTION_MAX = 500

C = Capability

# ASSUMPTION, NOT DATA: keywords of a solicitation's description and the capability
# they suggest; the first matching rule wins, so narrower rules come first.
CATEGORY_RULES: tuple[tuple[re.Pattern[str], Capability], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), capability)
    for pattern, capability in (
        (r"\benergy (?:audit|assessment|study|optimi[sz]ation)", C.ENERGY_AUDIT),
        (r"\bsolar\b|\bphotovoltaic", C.SOLAR),
        (r"\blighting\b|(?-i:\bLEDs?\b)|\bluminaire", C.LED_LIGHTING),
        (r"\bHVAC\b|\bheating\b|\bventilation\b|\bair[- ]condition", C.HVAC),
        (r"\broof|\binsulation\b", C.INSULATION),
        (r"\brecycl", C.RECYCLING),
        (r"\bwaste\b|\bgarbage\b|\borganics\b", C.WASTE_MANAGEMENT),
        (r"\bwater\b", C.WATER_SAVING),
        (r"\bvehicles?\b|\bfleet\b|\btrucks?\b|\bchassis\b", C.EV_AND_LOGISTICS),
        (r"\bconsult", C.EMS_CONSULTING),
    )
)

_COLUMNS: dict[str, tuple[str, ...]] = {
    "document": ("Document Number",),
    "supplier": ("Successful Supplier",),
    "date": ("Award Date",),
    "division": ("Division",),
    "description": ("Solicitation Document Description",),
}
_REQUIRED = ("supplier", "date", "division")

_FIELD_COLUMNS = {
    "buyer_id": "Division",
    "supplier_id": "Successful Supplier",
    "since": "Award Date",
    "description": "Solicitation Document Description",
}

# A comma followed by a non-space separates divisions; ", " is inside a name.
_DIVISION_SEPARATOR = re.compile(r",(?=\S)")


@dataclass(frozen=True)
class _Award:
    line: int
    document: str
    division: str
    supplier: str
    since: date
    description: str | None
    category: Capability | None


def import_supply_links(
    path: Path | str,
    members: Sequence[MemberRef],
    *,
    seed: int = 2026,
    encoding: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Turn awarded contracts into ``SupplierLinked`` envelopes between members.

    Raises:
        ImporterError: if the file cannot be decoded, lacks a required column or
            there are no members.
    """
    require_members(members, path)
    result = ImportResult()
    awards = _read_awards(path, encoding, result, progress)
    buyers, suppliers = _map_parties(awards, members, seed)
    for award in awards:
        _link(result, award, buyers, suppliers)
    logger.info("imported %s: %s", path, result.summary())
    return result


def _read_awards(
    path: Path | str,
    encoding: str | None,
    result: ImportResult,
    progress: ProgressCallback | None,
) -> list[_Award]:
    """Read every award, one per buying division; reject rows that lack a party."""
    rows = csv_rows(read_text(path, encoding), path)
    header = header_of(rows, path)
    columns = find_columns(header, _COLUMNS, required=_REQUIRED, path=path)
    counter = Progress(progress)
    awards: list[_Award] = []
    for line, cells in rows:
        awards.extend(_awards_of_row(result, line, cells, columns))
        counter.step()
    counter.flush()
    return awards


def _awards_of_row(
    result: ImportResult, line: int, cells: list[str], columns: dict[str, int]
) -> list[_Award]:
    """Return a row's awards (one per division), or none if the row is rejected."""
    text = {key: repair_mojibake(cell(cells, index)) for key, index in columns.items()}
    parts = _DIVISION_SEPARATOR.split(text["division"])
    divisions = [d.strip() for d in parts if d.strip()]
    since, problems = _award_date(text["date"])
    if not divisions:
        problems.append(("Division", "Division is empty: the buyer is unknown"))
    if not text["supplier"]:
        problems.append(("Successful Supplier", "Successful Supplier is empty"))
    if since is None or problems:  # since is None only with a problem
        column = problems[0][0]
        result.reject(line, column, "; ".join(reason for _, reason in problems))
        return []
    description = _shorten(text.get("description", ""))
    category = infer_category(description or "")
    document = text.get("document", "")
    supplier = text["supplier"]
    return [
        _Award(line, document, d, supplier, since, description, category)
        for d in divisions
    ]


def _award_date(text: str) -> tuple[date | None, list[tuple[str, str]]]:
    """Return the award date, or None and the problem with it."""
    try:
        return date.fromisoformat(text), []
    except ValueError as err:
        if not text:
            return None, [("Award Date", "Award Date is empty")]
        return None, [("Award Date", f"Award Date {text!r} is not a date ({err})")]


def _shorten(text: str) -> str | None:
    """Return the text one-spaced and at most ``DESCRIPTION_MAX`` long; '' -> None."""
    text = " ".join(text.split())
    if len(text) > DESCRIPTION_MAX:
        return text[: DESCRIPTION_MAX - 1] + "…"
    return text or None


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 read as Latin-1 (``â€™`` -> ``’``); other text is left as it is."""
    if not any("\x80" <= ch <= "\xff" for ch in text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def infer_category(description: str) -> Capability | None:
    """Return the capability the description suggests, by ``CATEGORY_RULES``."""
    for pattern, capability in CATEGORY_RULES:
        if pattern.search(description):
            return capability
    return None


def _map_parties(
    awards: Sequence[_Award], members: Sequence[MemberRef], seed: int
) -> tuple[dict[str, MemberRef], dict[str, MemberRef]]:
    """Return the members standing for each division and each supplier (by key)."""
    picker = MemberPicker(seed)
    large = [m for m in members if m.size == "large"] or list(members)
    buyers: dict[str, MemberRef] = {}
    for key in sorted({party_key(a.division) for a in awards}):
        chosen = picker.pick("buyer", key, large)
        if chosen is not None:
            buyers[key] = chosen
    forbidden = {m.org_id for m in buyers.values()}
    suppliers: dict[str, MemberRef] = {}
    for key, category in sorted(_supplier_categories(awards).items()):
        chosen = picker.pick(
            "supplier", key, _supplier_pool(members, category), forbidden=forbidden
        )
        chosen = chosen or picker.pick("supplier", key, members, forbidden=forbidden)
        if chosen is not None:
            suppliers[key] = chosen
    return buyers, suppliers


def _supplier_categories(awards: Sequence[_Award]) -> dict[str, Capability | None]:
    """Return each supplier's most frequent category (ties: the earlier rule)."""
    order = {capability: i for i, (_, capability) in enumerate(CATEGORY_RULES)}
    counts: dict[str, Counter[Capability]] = {}
    for award in awards:
        tally = counts.setdefault(party_key(award.supplier), Counter())
        if award.category is not None:
            tally[award.category] += 1
    return {
        key: min(tally, key=lambda c: (-tally[c], order[c])) if tally else None
        for key, tally in counts.items()
    }


def _supplier_pool(
    members: Sequence[MemberRef], category: Capability | None
) -> list[MemberRef]:
    """Return the members offering the category, else those offering anything."""
    offering = [m for m in members if category is not None and category in m.offers]
    return offering or [m for m in members if m.offers] or list(members)


def _link(
    result: ImportResult,
    award: _Award,
    buyers: dict[str, MemberRef],
    suppliers: dict[str, MemberRef],
) -> None:
    """Add the award's ``SupplierLinked`` envelope, or reject it."""
    buyer = buyers.get(party_key(award.division))
    supplier = suppliers.get(party_key(award.supplier))
    if buyer is None or supplier is None:
        result.reject(award.line, None, "no member is left to stand for a party")
        return
    # The id leaves out the members the parties are mapped to: the same award
    # imported again, after the member list changed, is still the same event.
    event_id = content_event_id(
        SOURCE,
        award.document,
        party_key(award.division),
        party_key(award.supplier),
        award.since.isoformat(),
    )
    envelope = build(
        result,
        award.line,
        "SupplierLinked",
        {
            "buyer_id": buyer.org_id,
            "supplier_id": supplier.org_id,
            "category": award.category,
            "description": award.description,
            "since": award.since,
        },
        source=SOURCE,
        occurred_at=datetime.combine(award.since, time(0), JST),
        event_id=event_id,
        columns=_FIELD_COLUMNS,
    )
    if envelope is not None:
        result.add(envelope)
