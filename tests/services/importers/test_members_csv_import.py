"""Tests of the plain members CSV importer and of telling member files apart."""

from __future__ import annotations

import os
import shutil
from datetime import datetime

import pytest

from schemas.capabilities import Capability
from schemas.fiscal import JST
from schemas.identity import org_identity
from services.importers import (
    ImporterError,
    import_members_csv,
    is_edinet_list,
    read_members_file,
)
from services.importers.members_csv import SOURCE


def payloads(result):
    return [e.payload for e in result.envelopes]


@pytest.mark.parametrize(
    "header",
    [
        "企業名,所在地",
        "事業者名,住所",
        "Organization,Address",
        " Company , ADDRESS ",
        "ｎａｍｅ,ａｄｄｒｅｓｓ",
        "団体名,区名",
        "名称,ward",
    ],
)
def test_import_members_csv_finds_columns_by_any_synonym(write_file, header):
    text = f"{header}\n株式会社みどり,港区\n"

    result = import_members_csv(write_file(text))

    [member] = payloads(result)
    assert (member.name, member.ward) == ("株式会社みどり", "13103")


@pytest.mark.parametrize(
    "header",
    [
        "企業名,所在地,法人番号",
        "企業名,所在地,corporate number",
        "企業名,所在地,Corporate_Number",
        "企業名,所在地,Houjin Bangou",
    ],
)
def test_import_members_csv_finds_corporate_number_by_any_synonym(write_file, header):
    text = f"{header}\n株式会社みどり,港区芝1,1010001000006\n"

    [member] = payloads(import_members_csv(write_file(text)))

    assert member.org_id == member.corporate_number == "1010001000006"


def test_import_members_csv_keys_member_without_number_by_name_and_ward(
    write_file,
):
    text = "企業名,区\n株式会社 みどり,港\n"

    [member] = payloads(import_members_csv(write_file(text)))

    assert member.org_id == org_identity("みどり", "13103", None)
    assert member.corporate_number is None


@pytest.mark.parametrize(
    ("ward", "address", "code"),
    [
        ("港区", "", "13103"),
        ("Minato", "", "13103"),
        ("Minato City", "", "13103"),
        ("港　区", "", "13103"),
        ("１３１０１", "", "13101"),
        ("", "東京都 新宿区西新宿2", "13104"),
        ("", "〒160-0023 東京都新宿区西新宿2", "13104"),
        ("品川区", "東京都新宿区西新宿2", "13109"),
    ],
)
def test_import_members_csv_takes_ward_cell_before_address(
    write_file, ward, address, code
):
    text = f"企業名,区,所在地\nみどり,{ward},{address}\n"

    [member] = payloads(import_members_csv(write_file(text)))

    assert member.ward == code


def test_import_members_csv_reads_capabilities_by_code_or_label(write_file):
    text = (
        "企業名,所在地,提供できるもの,ニーズ\n"
        'みどり,港区芝1,"solar, 高効率空調、LED retrofit; hvac",EMS_consulting\n'
    )

    [member] = payloads(import_members_csv(write_file(text)))

    assert member.offers == [Capability.HVAC, Capability.LED_LIGHTING, Capability.SOLAR]
    assert member.needs == [Capability.EMS_CONSULTING]
    assert member.capabilities_assumed is False


def test_import_members_csv_assumes_capabilities_when_none_stated(write_file):
    text = "企業名,所在地,業種,offers,needs\nみどり,港区芝1,建設業,,\n"

    [member] = payloads(import_members_csv(write_file(text)))

    assert member.industry == "建設業"
    assert Capability.INSULATION in member.offers
    assert member.capabilities_assumed is True


def test_import_members_csv_reports_every_problem_of_a_row(write_file):
    text = "企業名,所在地,法人番号,needs\n,横浜市中区1,123,wind\n"

    result = import_members_csv(write_file(text))

    [bad] = result.rejected
    assert (bad.line, bad.column) == (2, "企業名")
    parts = bad.reason.split("; ")
    assert [p.split(":")[0] for p in parts[:3]] == ["企業名", "所在地", "法人番号"]
    assert "needs: unknown capability 'wind'" in bad.reason


@pytest.mark.parametrize("name", ["", "　", "・", '","'])
def test_import_members_csv_rejects_name_with_nothing_to_compare(write_file, name):
    text = f"企業名,所在地\n{name},港区芝1\nみどり,港区芝1\n"

    result = import_members_csv(write_file(text))

    [bad] = result.rejected
    assert (bad.line, bad.column, bad.reason) == (
        2,
        "企業名",
        "企業名: the name is empty",
    )
    assert len(result.envelopes) == 1


def test_import_members_csv_rejects_too_long_industry_naming_its_column(
    write_file,
):
    text = f"企業名,所在地,業種\nみどり,港区芝1,{'あ' * 101}\n"

    result = import_members_csv(write_file(text))

    [bad] = result.rejected
    assert (bad.line, bad.column) == (2, "業種")
    assert bad.reason.startswith("industry:")


def test_import_members_csv_keeps_namesakes_with_different_numbers_apart(
    write_file,
):
    text = (
        "企業名,所在地,法人番号\n"
        "みどり,港区芝1,1010001000006\n"
        "みどり,港区芝2,5070001000715\n"
        "㈱みどり,港区芝3,\n"
    )

    result = import_members_csv(write_file(text))

    assert [m.org_id for m in payloads(result)] == [
        "1010001000006",
        "5070001000715",
        org_identity("みどり", "13103", None),
    ]
    assert result.duplicates == 0


def test_import_members_csv_keeps_the_row_with_the_corporate_number(write_file):
    text = (
        "企業名,所在地,法人番号,業種\n"
        "グリーンテック,港区芝1,,建設業\n"
        "グリーンテック株式会社,港区芝1,1010001000006,\n"
    )

    result = import_members_csv(write_file(text))

    [member] = payloads(result)
    assert (member.name, member.corporate_number) == (
        "グリーンテック株式会社",
        "1010001000006",
    )
    assert result.duplicates == 1


def test_import_members_csv_refuses_file_without_name_column(write_file):
    path = write_file("所在地,業種\n港区芝1,建設業\n")

    with pytest.raises(ImporterError, match="企業名"):
        import_members_csv(path)


def test_import_members_csv_refuses_file_without_ward_or_address(write_file):
    path = write_file("企業名,業種\nみどり,建設業\n")

    with pytest.raises(ImporterError, match="ward or address"):
        import_members_csv(path)


def test_import_members_csv_dates_events_by_file_modification(write_file):
    path = write_file("企業名,所在地\nみどり,港区芝1\n")
    saved = datetime(2026, 4, 1, 9, 30, 15, tzinfo=JST)
    os.utime(path, (saved.timestamp(), saved.timestamp() + 0.5))

    [envelope] = import_members_csv(path).envelopes

    assert envelope.occurred_at == saved
    assert envelope.source == SOURCE


def test_import_members_csv_gives_same_ids_for_a_copy_saved_later(write_file, tmp_path):
    path = write_file("企業名,所在地,法人番号\nみどり,港区芝1,\nあおぞら,大田区1,\n")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    copy = shutil.copy(path, tmp_path / "copy.csv")
    os.utime(copy, (1_800_000_000, 1_800_000_000))

    first = import_members_csv(path)
    again = import_members_csv(copy)

    assert [e.event_id for e in first.envelopes] == [
        e.event_id for e in again.envelopes
    ]
    assert first.envelopes[0].occurred_at != again.envelopes[0].occurred_at


def test_import_members_csv_reports_progress_of_every_row(write_file):
    text = "企業名,所在地\n" + "".join(f"m{i},港区芝{i}\n" for i in range(4))
    calls: list[int] = []

    import_members_csv(write_file(text), progress=calls.append)

    assert sum(calls) == 4


# -- telling member files apart ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "edinet"),
    [
        (
            "ダウンロード実行日,2025年12月24日現在,件数,1件\nＥＤＩＮＥＴコード,提出者名\n",
            True,
        ),
        ("ＥＤＩＮＥＴコード,提出者名,所在地\n", True),
        ('\n\n"EDINETコード","提出者名"\n', True),
        ("企業名,所在地\nEDINETコード社,港区\n", False),
        ("企業名,所在地\n1,2\n3,4\nEDINETコード,x\n", False),
        ("", False),
    ],
)
def test_is_edinet_list_looks_at_the_first_three_lines(text, edinet):
    assert is_edinet_list(text) is edinet


def test_read_members_file_reads_plain_csv_with_plain_importer(write_file):
    path = write_file("企業名,所在地\nみどり,港区芝1\n", "cp932")

    result = read_members_file(path)

    assert [e.source for e in result.envelopes] == [SOURCE]


def test_read_members_file_reads_real_edinet_list_as_edinet(edinet_path, edinet_result):
    result = read_members_file(edinet_path)

    assert [e.event_id for e in result.envelopes] == [
        e.event_id for e in edinet_result.envelopes
    ]
