"""Import attendance: conference check-ins, and a plain CSV from a sheet or a site.

Conference check-ins (the SBRC 2019 file: ``Name``, ``Institution``, ``session``,
``participation``, ``updated_at``; names and institutions hashed by the publisher):

- Each session becomes one ``EventScheduled``: ``event_code`` is
  ``<prefix>-<session in lower case>``, ``starts_at`` the session's earliest row
  (check-in or question); all of them come before any attendance.
- Kind (ASSUMPTION, NOT DATA), from the session's code: ``ST-<n>`` (paper
  sessions) -> ``study``; a workshop code (``W...``, or a roman numeral then
  ``W`` as in ``IIWTG``) -> ``exchange``; any other code (``Courb``, ``ST00``)
  -> ``matching``.
- Each institution stands for one member, picked by ``MemberPicker`` (sha256 of
  the seed, ``"institution"`` and the institution's hash) from all members sorted
  by ``org_id``; institutions are taken in sorted order and get distinct members
  while members last.
- Each ``Join`` row gives one ``AttendanceLogged`` with the person's hash as
  ``person_ref``; a person joining the same session twice gives one event (the
  first row). ``Question`` rows (a person asking a question) count as skipped.
- Times have no zone in the file; as everywhere, they are read as Japan time.

Plain CSV: header ``organisation,event,time`` or a synonym of each (see
``ORGANISATION_NAMES``, ``EVENT_NAMES``, ``TIME_NAMES``). The organisation may be an
``org_id``, a corporate number or a member's name (compared by
``normalise_org_name``: legal forms such as 株式会社 or (株), spaces and case do not
count). One organisation at one event is one attendance: a later row for the same
pair is a duplicate.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from schemas.envelope import content_event_id
from schemas.errors import ContractError
from schemas.events import EventKind
from schemas.identity import normalise_corporate_number, normalise_org_name
from services.importers.common import (
    BadMoment,
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
    parse_moment,
    read_text,
    require_members,
)

logger = logging.getLogger(__name__)

CHECKINS_SOURCE = "conference-checkins"
CSV_SOURCE = "attendance-csv"

ORGANISATION_NAMES = (
    "organisation", "organization", "org_id", "企業名", "会社名", "事業者名",
    "組織名",
)  # fmt: skip
EVENT_NAMES = ("event", "event_code", "イベント", "イベントコード")
TIME_NAMES = ("time", "attended_at", "日時", "参加日時")

_CHECKIN_COLUMNS = {
    "person": "Name",
    "institution": "Institution",
    "session": "session",
    "participation": "participation",
    "at": "updated_at",
}

_WORKSHOP = re.compile(r"(?:[IVX]+)?W", re.IGNORECASE)


# -- conference check-ins ----------------------------------------------------------


@dataclass(frozen=True)
class _Checkin:
    line: int
    person: str
    institution: str
    session: str
    joined: bool
    at: datetime


def import_conference_checkins(
    path: Path | str,
    members: Sequence[MemberRef],
    *,
    seed: int = 2026,
    year_events_prefix: str = "sbrc2019",
    encoding: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Turn conference check-ins into ``EventScheduled`` and ``AttendanceLogged``.

    Raises:
        ImporterError: if the file cannot be decoded, lacks a required column or
            there are no members.
    """
    require_members(members, path)
    result = ImportResult()
    checkins = _read_checkins(path, encoding, result, progress)
    _schedule_sessions(result, checkins, year_events_prefix)
    picker = MemberPicker(seed)
    stand_ins = {
        name: picker.pick("institution", name, members)
        for name in sorted({c.institution for c in checkins})
    }
    for checkin in checkins:
        if not checkin.joined:
            result.skipped += 1
            continue
        member = stand_ins[checkin.institution]
        if member is None:
            result.reject(checkin.line, "Institution", "no member to stand for it")
            continue
        _log_checkin(result, checkin, member, year_events_prefix)
    logger.info("imported %s: %s", path, result.summary())
    return result


def _read_checkins(
    path: Path | str,
    encoding: str | None,
    result: ImportResult,
    progress: ProgressCallback | None,
) -> list[_Checkin]:
    """Read every check-in; reject rows that lack a value or have a bad time."""
    rows = csv_rows(read_text(path, encoding), path)
    header = header_of(rows, path)
    wanted = {key: (name,) for key, name in _CHECKIN_COLUMNS.items()}
    columns = find_columns(header, wanted, required=wanted, path=path)
    counter = Progress(progress)
    checkins = []
    for line, cells in rows:
        checkin = _checkin(
            result, line, {k: cell(cells, i) for k, i in columns.items()}
        )
        if checkin is not None:
            checkins.append(checkin)
        counter.step()
    counter.flush()
    return checkins


def _checkin(result: ImportResult, line: int, text: dict[str, str]) -> _Checkin | None:
    """Return one row's check-in, or None if the row is rejected."""
    empty = [_CHECKIN_COLUMNS[key] for key in _CHECKIN_COLUMNS if not text[key]]
    if empty:
        result.reject(line, empty[0], f"empty: {', '.join(empty)}")
        return None
    participation = text["participation"].casefold()
    if participation not in ("join", "question"):
        reason = f"participation {text['participation']!r} is neither Join nor Question"
        result.reject(line, "participation", reason)
        return None
    try:
        at = parse_moment(text["at"])
    except BadMoment as err:
        result.reject(line, "updated_at", f"updated_at: {err}")
        return None
    return _Checkin(
        line,
        text["person"],
        text["institution"],
        text["session"],
        participation == "join",
        at,
    )


def session_kind(session: str) -> EventKind:
    """Return the kind of event a conference session stands for."""
    if re.fullmatch(r"ST-\d+", session, re.IGNORECASE):
        return EventKind.STUDY
    if _WORKSHOP.match(session):
        return EventKind.EXCHANGE
    return EventKind.MATCHING


def _title(prefix: str) -> str:
    """Return a prefix as a title: 'sbrc2019' -> 'SBRC 2019'."""
    return re.sub(r"(?<=[A-Za-z])(?=\d)", " ", prefix).upper()


def _event_code(prefix: str, session: str) -> str:
    return f"{prefix}-{session.lower()}"


def _schedule_sessions(
    result: ImportResult, checkins: Sequence[_Checkin], prefix: str
) -> None:
    """Add one ``EventScheduled`` per session, starting at its earliest row."""
    starts: dict[str, _Checkin] = {}
    for checkin in checkins:
        first = starts.get(checkin.session)
        if first is None or checkin.at < first.at:
            starts[checkin.session] = checkin
    for session, first in sorted(starts.items(), key=lambda kv: kv[1].at):
        code = _event_code(prefix, session)
        envelope = build(
            result,
            first.line,
            "EventScheduled",
            {
                "event_code": code,
                "title": f"{_title(prefix)} session {session}",
                "kind": session_kind(session),
                "starts_at": first.at,
            },
            source=CHECKINS_SOURCE,
            occurred_at=first.at,
            event_id=content_event_id(CHECKINS_SOURCE, code),
            columns={"event_code": "session", "starts_at": "updated_at"},
        )
        if envelope is not None:
            result.add(envelope)


def _log_checkin(
    result: ImportResult, checkin: _Checkin, member: MemberRef, prefix: str
) -> None:
    """Add the ``AttendanceLogged`` of one Join row."""
    code = _event_code(prefix, checkin.session)
    # The id leaves out the member the institution is mapped to: the same row
    # imported again, after the member list changed, is still the same event.
    event_id = content_event_id(
        CHECKINS_SOURCE, code, checkin.institution, checkin.person
    )
    envelope = build(
        result,
        checkin.line,
        "AttendanceLogged",
        {
            "event_code": code,
            "org_id": member.org_id,
            "attended_at": checkin.at,
            "person_ref": checkin.person,
        },
        source=CHECKINS_SOURCE,
        occurred_at=checkin.at,
        event_id=event_id,
        columns={"event_code": "session", "person_ref": "Name"},
    )
    if envelope is not None:
        result.add(envelope)


# -- plain attendance CSV ----------------------------------------------------------


def import_attendance_csv(
    path: Path | str,
    members: Sequence[MemberRef],
    *,
    encoding: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Turn an ``organisation,event,time`` CSV into ``AttendanceLogged`` envelopes.

    Raises:
        ImporterError: if the file cannot be decoded or lacks a required column.
    """
    rows = csv_rows(read_text(path, encoding), path)
    header = header_of(rows, path)
    wanted = {"org": ORGANISATION_NAMES, "event": EVENT_NAMES, "time": TIME_NAMES}
    columns = find_columns(header, wanted, required=wanted, path=path)
    names = {key: header[index].strip() for key, index in columns.items()}
    directory = MemberDirectory(members)
    result = ImportResult()
    counter = Progress(progress)
    for line, cells in rows:
        text = {key: cell(cells, index) for key, index in columns.items()}
        _attendance_row(result, line, text, names, directory)
        counter.step()
    counter.flush()
    logger.info("imported %s: %s", path, result.summary())
    return result


def _attendance_row(
    result: ImportResult,
    line: int,
    text: dict[str, str],
    names: dict[str, str],
    directory: MemberDirectory,
) -> None:
    """Add one row's ``AttendanceLogged``, or reject the row."""
    try:
        org_id = directory.resolve(text["org"])
    except LookupError as err:
        result.reject(line, names["org"], f"{names['org']}: {err}")
        return
    try:
        at = parse_moment(text["time"])
    except BadMoment as err:
        result.reject(line, names["time"], f"{names['time']}: {err}")
        return
    code = unicodedata.normalize("NFKC", text["event"]).strip()
    envelope = build(
        result,
        line,
        "AttendanceLogged",
        {"event_code": code, "org_id": org_id, "attended_at": at},
        source=CSV_SOURCE,
        occurred_at=at,
        event_id=content_event_id(CSV_SOURCE, code, org_id),
        columns={"event_code": names["event"], "org_id": names["org"]},
    )
    if envelope is not None:
        result.add(envelope)


class MemberDirectory:
    """Find a member by org id, corporate number or name."""

    def __init__(self, members: Sequence[MemberRef]) -> None:
        self._ids = {m.org_id for m in members}
        self._numbers = {
            m.corporate_number: m.org_id for m in members if m.corporate_number
        }
        self._names: dict[str, set[str]] = {}
        for member in members:
            self._names.setdefault(normalise_org_name(member.name), set()).add(
                member.org_id
            )

    def resolve(self, text: str) -> str:
        """Return the org id the text names.

        Raises:
            LookupError: if no member, or more than one, has that name.
        """
        if not text:
            raise LookupError("empty")
        if text in self._ids:
            return text
        number = _corporate_number(text)
        if number is not None and number in self._numbers:
            return self._numbers[number]
        found = self._names.get(normalise_org_name(text), set())
        if len(found) > 1:
            ids = ", ".join(sorted(found))
            raise LookupError(f"{text!r} names several members ({ids}); use an org id")
        if not found:
            raise LookupError(
                f"{text!r} is not a member "
                "(no org id, corporate number or name matches)"
            )
        return next(iter(found))


def _corporate_number(text: str) -> str | None:
    try:
        return normalise_corporate_number(text)
    except ContractError:
        return None
