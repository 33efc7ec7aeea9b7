"""Tests of the attendance importers: conference check-ins and a plain CSV."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import EventKind
from schemas.fiscal import JST
from services.importers import (
    ImporterError,
    import_attendance_csv,
    import_conference_checkins,
)
from services.importers.attendance import session_kind

CHECKIN_HEADER = ",Name,Institution,session,participation,updated_at"


def checkin(
    n: int, person: str, institution: str, session: str, kind: str, at: str
) -> str:
    return f"{n},{person},{institution},{session},{kind},{at}"


def types(result) -> list[str]:
    return [e.type for e in result.envelopes]


# -- conference check-ins ----------------------------------------------------------


def test_import_conference_checkins_schedules_every_real_session(
    sbrc_path, real_members
):
    result = import_conference_checkins(sbrc_path, real_members)

    counts = Counter(types(result))
    assert counts == {"EventScheduled": 34, "AttendanceLogged": 1303}
    assert (result.skipped, result.duplicates, result.rejected) == (162, 8, [])
    assert types(result)[:34] == ["EventScheduled"] * 34


def test_import_conference_checkins_maps_real_institutions_to_distinct_members(
    sbrc_path, real_members
):
    result = import_conference_checkins(sbrc_path, real_members)
    again = import_conference_checkins(sbrc_path, real_members)

    orgs = {e.payload.org_id for e in result.envelopes if e.type == "AttendanceLogged"}
    assert len(orgs) == 102
    assert orgs <= {m.org_id for m in real_members}
    assert [e.to_dict() for e in result.envelopes] == [
        e.to_dict() for e in again.envelopes
    ]


def test_import_conference_checkins_starts_session_at_earliest_row(
    write_file, small_members
):
    text = "\n".join(
        [
            CHECKIN_HEADER,
            checkin(0, "p1", "i1", "ST-1", "Join", "2019-05-07 08:20:00"),
            checkin(1, "p2", "i2", "ST-1", "Question", "2019-05-07 08:10:00"),
            checkin(2, "p3", "i1", "WTF", "Join", "2019-05-06 09:00:00"),
        ]
    )

    result = import_conference_checkins(write_file(text), small_members)

    wtf, st1 = (e.payload for e in result.envelopes[:2])
    assert (wtf.event_code, wtf.kind) == ("sbrc2019-wtf", EventKind.EXCHANGE)
    assert (st1.event_code, st1.title) == ("sbrc2019-st-1", "SBRC 2019 session ST-1")
    assert st1.starts_at == datetime(2019, 5, 7, 8, 10, tzinfo=JST)
    assert types(result) == ["EventScheduled"] * 2 + ["AttendanceLogged"] * 2


def test_import_conference_checkins_counts_person_once_per_session(
    write_file, small_members
):
    text = "\n".join(
        [
            CHECKIN_HEADER,
            checkin(0, "p1", "i1", "ST-1", "Join", "2019-05-07 08:20:00"),
            checkin(1, "p1", "i1", "ST-1", "Join", "2019-05-07 08:25:00"),
            checkin(2, "p1", "i1", "ST-1", "Question", "2019-05-07 08:30:00"),
            checkin(3, "p1", "i1", "ST-2", "Join", "2019-05-07 10:00:00"),
        ]
    )

    result = import_conference_checkins(write_file(text), small_members)

    logged = [e.payload for e in result.envelopes if e.type == "AttendanceLogged"]
    assert [(p.event_code, p.attended_at.minute) for p in logged] == [
        ("sbrc2019-st-1", 20),
        ("sbrc2019-st-2", 0),
    ]
    assert (result.duplicates, result.skipped) == (1, 1)


def test_import_conference_checkins_rejects_bad_time_with_line(
    write_file, small_members
):
    text = "\n".join(
        [
            CHECKIN_HEADER,
            checkin(0, "p1", "i1", "ST-1", "Join", "2019-05-32 08:20:00"),
            checkin(1, "p2", "i1", "ST-1", "Join", "2019-05-07 08:20:00"),
            checkin(2, "p3", "i1", "ST-1", "Cheer", "2019-05-07 08:20:00"),
        ]
    )

    result = import_conference_checkins(write_file(text), small_members)

    assert Counter(types(result)) == {"EventScheduled": 1, "AttendanceLogged": 1}
    assert [(r.line, r.column) for r in result.rejected] == [
        (2, "updated_at"),
        (4, "participation"),
    ]


@pytest.mark.parametrize(
    ("session", "kind"),
    [
        ("ST-13", EventKind.STUDY),
        ("WBlockchain", EventKind.EXCHANGE),
        ("IIWTG", EventKind.EXCHANGE),
        ("Courb", EventKind.MATCHING),
        ("ST00", EventKind.MATCHING),
    ],
)
def test_session_kind_follows_session_code(session, kind):
    assert session_kind(session) == kind


# -- plain attendance CSV ----------------------------------------------------------


def test_import_attendance_csv_finds_members_by_id_number_or_name(
    write_file, small_members
):
    text = (
        "organisation,event,time\n"
        "edinet-E00002,eco-2025-06,2025-06-01 10:00\n"
        "1010001000006,eco-2025-06,2025-06-01 10:05\n"
        "みどり設備,eco-2025-06,2025-06-01 10:10\n"
        "㈱ あおぞら電気,eco-2025-06,2025-06-01 10:15\n"
        "ＫＩＹＯＳＵＭＩ　ｔｒａｄｉｎｇ,eco-2025-06,2025-06-01 10:20\n"
    )

    result = import_attendance_csv(write_file(text), small_members)

    assert [e.payload.org_id for e in result.envelopes] == [
        "edinet-E00002",
        "1010001000006",
        "edinet-E00003",
        "edinet-E00004",
        "edinet-E00005",
    ]
    assert result.rejected == []


@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig", "utf-8"])
def test_import_attendance_csv_reads_japanese_headers_in_any_encoding(
    write_file, small_members, encoding
):
    text = "企業名,イベントコード,参加日時\r\n大手建設,eco-1,２０２５/６/１ ９:３０\r\n"

    result = import_attendance_csv(write_file(text, encoding), small_members)

    [logged] = [e.payload for e in result.envelopes]
    assert logged.org_id == "1010001000006"
    assert logged.attended_at == datetime(2025, 6, 1, 9, 30, tzinfo=JST)


def test_import_attendance_csv_rejects_impossible_date_and_keeps_good_rows(
    write_file, small_members
):
    text = (
        "organisation,event,time\n"
        "Big Bank,eco-1,2025-06-01 10:00\n"
        "Big Bank,eco-2,2025-02-29 10:00\n"
        "Kiyosumi Trading,eco-1,2025-06-01T10:00:00+01:00\n"
    )

    result = import_attendance_csv(write_file(text), small_members)

    assert len(result.envelopes) == 2
    assert result.envelopes[1].payload.attended_at.utcoffset() == timedelta(hours=1)
    [bad] = result.rejected
    assert (bad.line, bad.column) == (3, "time")
    assert "2025-02-29" in bad.reason


def test_import_attendance_csv_rejects_unknown_organisation_by_name(
    write_file, small_members
):
    text = "会社名,event,time\n株式会社ふしぎ商店,eco-1,2025-06-01 10:00\n"

    result = import_attendance_csv(write_file(text), small_members)

    assert result.envelopes == []
    [bad] = result.rejected
    assert (bad.line, bad.column) == (2, "会社名")
    assert "株式会社ふしぎ商店" in bad.reason


def test_import_attendance_csv_counts_repeated_row_once(write_file, small_members):
    text = "organisation,event,time\n" + "Big Bank,eco-1,2025-06-01 10:00\n" * 3

    result = import_attendance_csv(write_file(text), small_members)

    assert len(result.envelopes) == 1
    assert result.duplicates == 2


def test_import_attendance_csv_rejects_unusable_event_code(write_file, small_members):
    text = "organisation,event,time\nBig Bank,交流会,2025-06-01 10:00\n"

    result = import_attendance_csv(write_file(text), small_members)

    [bad] = result.rejected
    assert (bad.line, bad.column) == (2, "event")
    assert bad.reason.startswith("event_code:")


def test_import_attendance_csv_refuses_file_without_time_column(
    write_file, small_members
):
    path = write_file("organisation,event\nBig Bank,eco-1\n")

    with pytest.raises(ImporterError, match="time"):
        import_attendance_csv(path, small_members)


def test_import_attendance_csv_reads_utc_marker(write_file, small_members):
    text = "organisation,event,attended_at\nBig Bank,eco-1,2025-06-01T01:00:00Z\n"

    [envelope] = import_attendance_csv(write_file(text), small_members).envelopes

    assert envelope.payload.attended_at == datetime(2025, 6, 1, 1, tzinfo=UTC)
