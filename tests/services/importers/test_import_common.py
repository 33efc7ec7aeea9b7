"""Tests of what the importers share: decoding, rows, results, times, picks."""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.envelope import new_envelope
from schemas.fiscal import JST
from services.importers.common import (
    BadMoment,
    Candidate,
    ImporterError,
    ImportResult,
    MemberPicker,
    MemberRef,
    Progress,
    build,
    csv_rows,
    header_of,
    one_per_key,
    parse_moment,
    party_key,
    read_text,
)

TEXT = "組織名,日時\n株式会社みどり,２０２５年６月１日\n"


@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig", "utf-8"])
def test_read_text_detects_encoding(write_file, encoding):
    path = write_file(TEXT, encoding)

    text = read_text(path)

    assert text == TEXT


def test_read_text_uses_given_encoding(write_file):
    path = write_file("名前\n", "cp932")

    text = read_text(path, encoding="cp932")

    assert text == "名前\n"


def test_read_text_names_file_and_offset_when_undecodable(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_bytes(b"abc\n\x81\x20")

    with pytest.raises(ImporterError) as err:
        read_text(path)

    assert "broken.csv" in str(err.value)
    assert "offset 4" in str(err.value)


def test_read_text_names_offset_when_given_encoding_fails(tmp_path):
    path = tmp_path / "sjis.csv"
    path.write_bytes("ab名前".encode("cp932"))

    with pytest.raises(ImporterError) as err:
        read_text(path, encoding="utf-8")

    assert "sjis.csv" in str(err.value)
    assert "byte 2" in str(err.value)


def test_csv_rows_give_physical_start_lines():
    text = 'a,b\r\n"two\nlines",x\r\n\r\nlast,y\r\n'

    rows = list(csv_rows(text))

    assert [line for line, _ in rows] == [1, 2, 5]
    assert rows[1][1] == ["two\nlines", "x"]


@pytest.mark.parametrize(
    "bom_and_encoding",
    [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
)
def test_read_text_reads_utf16_with_byte_order_mark(tmp_path, bom_and_encoding):
    bom, encoding = bom_and_encoding
    path = tmp_path / "unicode.txt"
    path.write_bytes(bom + TEXT.encode(encoding))

    text = read_text(path)

    assert text == TEXT


def test_read_text_refuses_utf16_without_byte_order_mark(tmp_path):
    path = tmp_path / "nobom.csv"
    path.write_bytes("ab,c\n".encode("utf-16-le"))

    with pytest.raises(ImporterError) as err:
        read_text(path)

    assert "nobom.csv: holds NUL bytes (byte 1)" in str(err.value)
    assert "utf-16-le" in str(err.value)


def test_read_text_drops_byte_order_mark_of_given_encoding(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "名前\n".encode("utf-16-le"))

    text = read_text(path, encoding="utf-16-le")

    assert text == "名前\n"


def test_csv_rows_read_tab_separated_text():
    text = "会社名\t区\r\nみどり, 本店\t港区\r\n"

    rows = list(csv_rows(text))

    assert rows == [(1, ["会社名", "区"]), (2, ["みどり, 本店", "港区"])]


def test_csv_rows_keep_commas_when_first_line_has_more_of_them():
    text = "a,b,c\nx\ty,z,w\n"

    rows = list(csv_rows(text))

    assert rows[1] == (2, ["x\ty", "z", "w"])


def test_csv_rows_refuse_unclosed_quote_naming_the_line_it_opens(tmp_path):
    text = 'a,b\n1,x\n2,"y\n3,z\n'

    with pytest.raises(ImporterError) as err:
        list(csv_rows(text, tmp_path / "q.csv"))

    message = str(err.value)
    assert "q.csv: the record starting on line 3 cannot be read" in message
    assert "never closed" in message


def test_csv_rows_refuse_text_after_closing_quote():
    text = 'a,b\n1,"x"y\n'

    with pytest.raises(ImporterError, match=r"line 2 .*must be doubled"):
        list(csv_rows(text, "f.csv"))


def test_header_of_refuses_file_without_rows():
    rows = csv_rows("\n , \n")

    with pytest.raises(ImporterError, match=r"e\.csv: the file is empty"):
        header_of(rows, "e.csv")


def test_one_per_key_keeps_best_row_of_each_key_in_file_order():
    result = ImportResult()
    candidates = [
        Candidate(2, (0,), _registration("a", "first a")),
        Candidate(3, (0,), _registration("b", "only b")),
        Candidate(4, (1,), _registration("a", "better a")),
        Candidate(5, (1,), _registration("a", "tied a")),
    ]

    kept = one_per_key(result, candidates)

    assert [e.payload.name for e in kept] == ["only b", "better a"]
    assert result.duplicates == 2


def _registration(org_id: str, name: str):
    return new_envelope(
        "OrganisationRegistered",
        {"org_id": org_id, "name": name, "ward": "13101"},
        source="test",
        occurred_at=datetime(2025, 6, 1, tzinfo=JST),
    )


def test_result_add_counts_repeated_event_once():
    result = ImportResult()
    envelope = _attendance(result, "ev-1")
    assert envelope is not None

    added = [result.add(envelope), result.add(envelope)]

    assert added == [True, False]
    assert len(result.envelopes) == 1
    assert result.duplicates == 1


def test_result_summary_reports_every_count():
    result = ImportResult(skipped=3, duplicates=2)
    result.reject(4, "time", "bad")

    summary = result.summary()

    assert summary == "0 events, 1 rejected, 3 skipped, 2 duplicates"


def test_build_rejects_invalid_payload_naming_field_and_column():
    result = ImportResult()

    envelope = _attendance(result, "イベント")

    assert envelope is None
    [row] = result.rejected
    assert (row.line, row.column) == (7, "event")
    assert row.reason.startswith("event_code: must start with a letter or digit")


def _attendance(result: ImportResult, code: str):
    moment = datetime(2025, 6, 1, 10, tzinfo=JST)
    return build(
        result,
        7,
        "AttendanceLogged",
        {"event_code": code, "org_id": "m1", "attended_at": moment},
        source="test",
        occurred_at=moment,
        event_id="fixed-id",
        columns={"event_code": "event"},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-01 14:05", datetime(2025, 6, 1, 14, 5, tzinfo=JST)),
        ("2025/6/1 14:05:09", datetime(2025, 6, 1, 14, 5, 9, tzinfo=JST)),
        ("２０２５年６月１日 １４時０５分", datetime(2025, 6, 1, 14, 5, tzinfo=JST)),
        ("2025-06-01", datetime(2025, 6, 1, tzinfo=JST)),
        ("2025-06-01T05:05:00Z", datetime(2025, 6, 1, 5, 5, tzinfo=UTC)),
        (
            "2025-06-01T14:05+01:00",
            datetime(2025, 6, 1, 14, 5, tzinfo=timezone(timedelta(hours=1))),
        ),
    ],
)
def test_parse_moment_reads_common_forms(text, expected):
    moment = parse_moment(text)

    assert moment == expected
    assert moment.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("text", ["2025-02-30 10:00", "2025-06-01 25:00", "soon", ""])
def test_parse_moment_refuses_impossible_or_unreadable(text):
    with pytest.raises(BadMoment):
        parse_moment(text)


def test_party_key_ignores_case_and_punctuation():
    keys = {
        party_key(n)
        for n in ["AECOM Canada Ltd.", " AECOM CANADA LTD", "Aecom  canada, ltd"]
    }

    assert keys == {"aecom canada ltd"}


def _pool(n: int) -> list[MemberRef]:
    return [MemberRef(f"m{i:02d}", f"member {i}", "13101") for i in range(n)]


def test_member_picker_is_deterministic_for_a_seed():
    pool = _pool(30)
    parties = [f"party {i}" for i in range(10)]

    first = [MemberPicker(7).pick("r", p, pool) for p in parties]
    again = [MemberPicker(7).pick("r", p, list(reversed(pool))) for p in parties]
    picker = MemberPicker(7)
    same_picker = [picker.pick("r", p, pool) for p in parties]
    other_seed = [MemberPicker(8).pick("r", p, pool) for p in parties]

    assert first == again
    assert [m.org_id for m in same_picker] != [m.org_id for m in other_seed]


def test_member_picker_gives_distinct_members_while_pool_lasts():
    picker = MemberPicker(1)
    pool = _pool(5)

    picked = [picker.pick("r", f"p{i}", pool) for i in range(5)]
    extra = picker.pick("r", "p5", pool)

    assert len({m.org_id for m in picked}) == 5
    assert extra in pool


def test_member_picker_never_picks_forbidden():
    picker = MemberPicker(1)
    pool = _pool(3)

    picks = {
        picker.pick("r", f"p{i}", pool, forbidden={"m00", "m01"}) for i in range(9)
    }
    none_left = picker.pick("r", "x", pool, forbidden={"m00", "m01", "m02"})

    assert {m.org_id for m in picks} == {"m02"}
    assert none_left is None


def test_progress_reports_every_row_in_batches():
    calls: list[int] = []
    counter = Progress(calls.append)

    for _ in range(1201):
        counter.step()
    counter.flush()

    assert calls == [500, 500, 201]


PICK_SCRIPT = """
from services.importers.common import MemberPicker, MemberRef
pool = [MemberRef(f"m{i:02d}", "m", "13101") for i in range(50)]
picker = MemberPicker(2026)
print([picker.pick("r", f"party {i}", pool).org_id for i in range(20)])
"""


def test_member_picker_is_the_same_in_every_process():
    def run(hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", PICK_SCRIPT], env=env, capture_output=True, text=True
        )
        return done.stdout

    outputs = {run("1"), run("2")}

    assert len(outputs) == 1
    assert outputs.pop().startswith("['m")
