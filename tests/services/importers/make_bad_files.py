"""Write the files of ``bad_files/``, each broken one way, and their expected reports.

Run ``python -m tests.services.importers.make_bad_files`` from the repository root
after changing a file here; the files it writes are committed, and a test checks
that they still match this script.

Each ``<name>.expected.json`` says which importer reads the file (``members``:
``read_members_file``; ``attendance``: ``import_attendance_csv`` with the members of
``test_bad_files.py``) and either the report (events accepted, duplicates, skipped,
and each rejected row's line, column and a part of its reason) or ``error``, a part
of the message of the ``ImporterError`` that refuses the whole file. ``org_ids`` and
``occurred_at``, when given, list those of the accepted events in order.

The expected reports are written by hand from the rules in the importers'
docstrings; they are not produced by running the importers.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BAD_FILES_DIR = Path(__file__).parent / "bad_files"

UTF16_LE_WITH_BOM = "utf-16-le+bom"


@dataclass(frozen=True)
class BadFile:
    name: str
    encoding: str
    text: str
    expected: dict[str, Any]

    def content(self) -> bytes:
        """Return the file's bytes in its encoding."""
        if self.encoding == UTF16_LE_WITH_BOM:
            return codecs.BOM_UTF16_LE + self.text.encode("utf-16-le")
        return self.text.encode(self.encoding)

    def expected_json(self) -> str:
        """Return the expected report as the committed JSON text."""
        return json.dumps(self.expected, ensure_ascii=False, indent=2) + "\n"


def report(
    importer: str,
    breaks: str,
    accepted: int,
    *,
    duplicates: int = 0,
    skipped: int = 0,
    rejected: tuple[tuple[int, str | None, str], ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Return an expected report of a file that is read."""
    return {
        "importer": importer,
        "breaks": breaks,
        "accepted": accepted,
        "duplicates": duplicates,
        "skipped": skipped,
        "rejected": [
            {"line": line, "column": column, "reason": reason}
            for line, column, reason in rejected
        ],
        **extra,
    }


def refusal(importer: str, breaks: str, error: str) -> dict[str, Any]:
    """Return the expected report of a file refused as a whole."""
    return {"importer": importer, "breaks": breaks, "error": error}


def crlf(*lines: str) -> str:
    return "".join(f"{line}\r\n" for line in lines)


EDINET_HEADER = (
    "ＥＤＩＮＥＴコード,提出者種別,上場区分,連結の有無,資本金,決算日,提出者名,"
    "提出者名（英字）,提出者名（ヨミ）,所在地,提出者業種,証券コード,提出者法人番号"
)


def edinet_row(code: str, name: str, address: str, number: str = "") -> str:
    cells = [
        code, "内国法人・組合", "非上場", "無", "10", "3月31日", name, "", "",
        address, "建設業", "", number,
    ]  # fmt: skip
    return ",".join(f'"{c}"' for c in cells)


BAD_FILES: tuple[BadFile, ...] = (
    BadFile(
        "members-cp932-japanese-header.csv",
        "cp932",
        crlf(
            "企業名,住所,法人番号,業種,提供,必要",
            "株式会社みどり設備,東京都江東区清澄１－２,,建設業,高効率空調,EMS導入支援",
            "有限会社あおぞら電気,東京都大田区蒲田５,,,LED照明への更新,",
            "ＮＰＯ法人エコ千代田,千代田区丸の内１,,,,省エネ診断",
        ),
        report("members", "CP932 (Shift_JIS) with a header in Japanese", 3),
    ),
    BadFile(
        "members-utf8-bom.csv",
        "utf-8-sig",
        crlf(
            "Name,Ward,Corporate Number,Offers,Needs",
            "Green Tech Co.,Minato,1010001000006,solar,",
            "Blue Sky Inc.,13101,,,energy audit",
        ),
        report(
            "members",
            "UTF-8 with a byte-order mark before the first header cell",
            2,
        ),
    ),
    BadFile(
        "members-utf16-excel-unicode-text.txt",
        UTF16_LE_WITH_BOM,
        crlf(
            "会社名\t区\t提供",
            "株式会社みどり設備\t江東区\t高効率空調、断熱改修",
            "あおぞら電気(株)\t大田\tLED照明への更新",
        ),
        report(
            "members",
            "UTF-16 with a byte-order mark, tab-separated (Excel's 'Unicode text'): "
            "read",
            2,
        ),
    ),
    BadFile(
        "members-utf16-without-bom.csv",
        "utf-16-le",
        crlf("企業名,所在地", "株式会社みどり,港区芝１"),
        refusal(
            "members",
            "UTF-16 without a byte-order mark: refused, saying how to read it",
            "holds NUL bytes (byte 7), as UTF-16 text without a byte-order mark",
        ),
    ),
    BadFile(
        "members-unclosed-quote.csv",
        "utf-8",
        crlf(
            "企業名,所在地",
            "株式会社みどり,港区芝１",
            '"あおぞら電気,大田区蒲田５',
            "エコ千代田,千代田区丸の内１",
        ),
        refusal(
            "members",
            "a quote opened on line 3 and never closed",
            "the record starting on line 3 cannot be read: its quoted cell is never "
            "closed",
        ),
    ),
    BadFile(
        "members-empty.csv",
        "utf-8",
        "",
        refusal("members", "an empty file", "the file is empty"),
    ),
    BadFile(
        "members-header-only.csv",
        "utf-8",
        crlf("企業名,所在地,法人番号"),
        report("members", "a header and no rows", 0),
    ),
    BadFile(
        "members-repeated-rows.csv",
        "utf-8",
        crlf(
            "企業名,所在地",
            "株式会社みどり,港区芝１",
            "株式会社みどり,港区芝１",
            "あおぞら電気,大田区蒲田５",
            "株式会社みどり,港区芝１",
        ),
        report("members", "one row three times", 2, duplicates=2),
    ),
    BadFile(
        "members-empty-rows.csv",
        "utf-8",
        crlf(
            "企業名,所在地",
            "",
            "株式会社みどり,港区芝１",
            ",",
            " , ",
            "あおぞら電気,大田区蒲田５",
            "",
            "よこはま商店,神奈川県横浜市中区本町１",
            ",",
        ),
        report(
            "members",
            "empty lines and rows of empty cells between rows (left out silently; "
            "line numbers still count them)",
            2,
            rejected=((8, "所在地", "'神奈川県横浜市中区本町1' is outside"),),
        ),
    ),
    BadFile(
        "members-full-width.csv",
        "utf-8",
        crlf(
            "ｎａｍｅ,ａｄｄｒｅｓｓ,ｃｏｒｐｏｒａｔｅ　ｎｕｍｂｅｒ,ｏｆｆｅｒｓ",
            "株式会社　グリーン　テック,東京都　新宿区西新宿２－８－１,"
            "１０１０００１０００００６,ｓｏｌａｒ；ｈｖａｃ",
            "ＥＣＯ　ＬＡＢ　Ｃｏ．，Ｌｔｄ．,〒１０５－００１１　東京都港区芝公園１,"
            "５－０７００－０１００－０７１５,",
        ),
        report(
            "members",
            "full-width letters, digits, spaces and separators in header and cells",
            2,
            org_ids=["1010001000006", "5070001000715"],
        ),
    ),
    BadFile(
        "members-three-spellings.csv",
        "utf-8",
        crlf(
            "企業名,所在地",
            "株式会社みどり,港区芝１",
            "みどり(株),港区芝公園２",
            "㈱みどり,東京都港区芝３",
            "みどり株式会社,品川区大井１",
        ),
        report(
            "members",
            "one firm written three ways in one ward (one member) and once in "
            "another ward (another member)",
            2,
            duplicates=2,
        ),
    ),
    BadFile(
        "members-name-then-number.csv",
        "utf-8",
        crlf(
            "企業名,所在地,法人番号",
            "グリーンテック,港区芝１,",
            "グリーンテック株式会社,港区芝１,1010001000006",
        ),
        report(
            "members",
            "a firm first without, then with its corporate number: one member, "
            "known by the number",
            1,
            duplicates=1,
            org_ids=["1010001000006"],
        ),
    ),
    BadFile(
        "members-wrong-check-digit.csv",
        "utf-8",
        crlf(
            "企業名,所在地,法人番号",
            "株式会社みどり,港区芝１,6070001000715",
            "あおぞら電気,大田区蒲田５,5070001000715",
        ),
        report(
            "members",
            "a corporate number with a wrong check digit (the row is rejected, not "
            "re-keyed by name)",
            1,
            rejected=(
                (
                    2,
                    "法人番号",
                    "corporate number '6070001000715' has a wrong check digit",
                ),
            ),
        ),
    ),
    BadFile(
        "members-number-rounded-by-spreadsheet.csv",
        "utf-8",
        crlf("企業名,所在地,法人番号", "株式会社みどり,港区芝１,1.01E+12"),
        report(
            "members",
            "a corporate number a spreadsheet turned into 1.01E+12",
            0,
            rejected=((2, "法人番号", "'1.01E+12' is a 13-digit number"),),
        ),
    ),
    BadFile(
        "members-outside-wards.csv",
        "utf-8",
        crlf(
            "企業名,区,所在地",
            "よこはま商店,,神奈川県横浜市中区本町１",
            "むさしの工業,武蔵野市,",
            "横浜本社の支店,港区,神奈川県横浜市中区本町２",
            "どこか商事,,",
        ),
        report(
            "members",
            "rows outside the 23 wards, or with no ward at all; a ward cell wins "
            "over the address",
            1,
            rejected=(
                (2, "所在地", "'神奈川県横浜市中区本町1' is outside the 23 special"),
                (3, "区", "'武蔵野市' is not one of the 23 special wards"),
                (5, "区", "no ward and no address"),
            ),
        ),
    ),
    BadFile(
        "members-unknown-capability.csv",
        "utf-8",
        crlf(
            "企業名,所在地,提供,必要",
            "株式会社みどり,港区芝１,太陽光発電、風力発電,",
            "あおぞら電気,大田区蒲田５,LED retrofit,magic",
            "エコ千代田,千代田区丸の内１,led_lighting; 節水,EMS consulting",
        ),
        report(
            "members",
            "offers and needs naming capabilities that do not exist",
            1,
            rejected=(
                (2, "提供", "unknown capability '風力発電'"),
                (3, "必要", "unknown capability 'magic'"),
            ),
        ),
    ),
    BadFile(
        "edinet-cp932.csv",
        "cp932",
        crlf(
            "ダウンロード実行日,2025年12月24日現在,件数,3件",
            EDINET_HEADER,
            edinet_row("E00001", "株式会社みどり建設", "東京都港区芝公園１"),
            edinet_row("E00002", "よこはま商店株式会社", "横浜市中区本町１"),
            edinet_row(
                "E00003", "あおぞら電気株式会社", "大田区蒲田５", "1010001000006"
            ),
        ),
        report(
            "members",
            "the EDINET filer list in CP932, told apart from a plain members CSV",
            2,
            skipped=1,
            org_ids=["edinet-E00001", "1010001000006"],
        ),
    ),
    BadFile(
        "attendance-impossible-date.csv",
        "utf-8",
        crlf(
            "organisation,event,time",
            "1010001000006,eco-2026-02,2026-02-27 10:00",
            "1010001000006,eco-2026-03,2026-02-30 10:00",
        ),
        report(
            "attendance",
            "an impossible date, 2026-02-30",
            1,
            rejected=((3, "time", "'2026-02-30 10:00' is not a real date and time"),),
        ),
    ),
    BadFile(
        "attendance-time-without-offset.csv",
        "utf-8",
        crlf(
            "organisation,event,time",
            "1010001000006,eco-2026-02,2026-02-03 10:00",
            "あおぞら電気,eco-2026-02,2026-02-03T10:05:00",
            "Green Tech Co.,eco-2026-02,2026-02-03T01:10:00Z",
        ),
        report(
            "attendance",
            "times without an offset (read as Japan time) beside one in UTC",
            3,
            occurred_at=[
                "2026-02-03T10:00:00+09:00",
                "2026-02-03T10:05:00+09:00",
                "2026-02-03T01:10:00+00:00",
            ],
        ),
    ),
    BadFile(
        "attendance-three-spellings.csv",
        "utf-8",
        crlf(
            "会社名,イベントコード,参加日時",
            "株式会社みどり設備,eco-2026-02,2026-02-03 10:00",
            "みどり設備(株),eco-2026-02,2026-02-03 10:01",
            "㈱みどり設備,eco-2026-02,2026-02-03 10:02",
        ),
        report(
            "attendance",
            "one member written three ways at one event",
            1,
            duplicates=2,
            org_ids=["1010001000006"],
        ),
    ),
)


def write_bad_files(directory: Path = BAD_FILES_DIR) -> None:
    """Write every bad file and its expected report into the directory."""
    directory.mkdir(exist_ok=True)
    for bad in BAD_FILES:
        (directory / bad.name).write_bytes(bad.content())
        (directory / f"{bad.name}.expected.json").write_text(
            bad.expected_json(), encoding="utf-8"
        )


if __name__ == "__main__":
    write_bad_files()
