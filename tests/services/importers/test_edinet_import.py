"""Tests of the EDINET filer-list importer."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from schemas.events import OrganisationRegistered
from schemas.fiscal import JST
from schemas.identity import normalise_corporate_number
from schemas.wards import WARDS
from services.importers import ImporterError, import_members
from services.importers.edinet import SOURCE

META = "ダウンロード実行日,2025年12月24日現在,件数,4件"
HEADER = (
    "ＥＤＩＮＥＴコード,提出者種別,上場区分,連結の有無,資本金,決算日,提出者名,"
    "提出者名（英字）,提出者名（ヨミ）,所在地,提出者業種,証券コード,提出者法人番号"
)
OTHER = "内国法人・組合（有価証券報告書等の提出義務者以外）"


def row(
    code: str,
    name: str,
    address: str,
    *,
    listing: str = "上場",
    capital: str = "1000",
    industry: str = "建設業",
    number: str = "",
) -> str:
    cells = [
        code, "内国法人・組合", listing, "有", capital, "3月31日", name, "",
        "", address, industry, "", number,
    ]  # fmt: skip
    return ",".join(f'"{c}"' for c in cells)


def edinet_text(*rows: str) -> str:
    return "\r\n".join([META, HEADER, *rows]) + "\r\n"


def payloads(result) -> list[OrganisationRegistered]:
    return [e.payload for e in result.envelopes]


def test_import_members_keeps_real_filers_in_the_wards(edinet_result):
    members = payloads(edinet_result)

    assert len(members) == 3868
    assert edinet_result.duplicates == 9
    assert edinet_result.skipped == 11188 - 3868 - 9
    assert edinet_result.rejected == []
    assert {m.ward for m in members} <= set(WARDS)
    assert len({m.org_id for m in members}) == len(members)


def test_import_members_uses_verified_corporate_numbers_as_ids(edinet_result):
    members = payloads(edinet_result)

    by_number = [m for m in members if m.corporate_number is not None]
    by_code = [m for m in members if m.corporate_number is None]

    assert all(normalise_corporate_number(m.org_id) == m.org_id for m in by_number)
    assert all(m.org_id.startswith("edinet-E") for m in by_code)
    assert len(by_code) == 11


def test_import_members_dates_real_file_by_its_metadata_line(edinet_result):
    times = {e.occurred_at for e in edinet_result.envelopes}

    assert times == {datetime(2025, 12, 24, tzinfo=JST)}
    assert {e.source for e in edinet_result.envelopes} == {SOURCE}


def test_import_members_reads_filer_kind_as_no_industry(edinet_result):
    industries = Counter(m.industry for m in payloads(edinet_result))

    assert not any(i and "法人・組合" in i for i in industries)
    assert industries[None] > 1000
    assert all(m.capabilities_assumed for m in payloads(edinet_result))


def test_import_members_gives_same_ids_when_imported_twice(edinet_path):
    first = import_members(edinet_path)
    again = import_members(edinet_path)

    assert [e.event_id for e in first.envelopes] == [
        e.event_id for e in again.envelopes
    ]


@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig", "utf-8"])
def test_import_members_reads_any_supported_encoding(write_file, encoding):
    text = edinet_text(row("E00001", "株式会社　みどり", "千代田区丸の内一丁目１番"))

    result = import_members(write_file(text, encoding))

    [member] = payloads(result)
    assert (member.org_id, member.name, member.ward) == (
        "edinet-E00001",
        "株式会社 みどり",
        "13101",
    )


def test_import_members_skips_rows_outside_the_wards(write_file):
    text = edinet_text(
        row("E00001", "A社", "横浜市中区本町１"),
        row("E00002", "B社", "東京都港区芝公園１"),
        row("E00003", "C社", "武蔵野市中町１"),
    )

    result = import_members(write_file(text))

    assert [m.name for m in payloads(result)] == ["B社"]
    assert result.skipped == 2
    assert result.rejected == []


@pytest.mark.parametrize(
    ("listing", "capital", "size"),
    [
        ("上場", "10", "large"),
        ("非上場", "300", "large"),
        ("非上場", "299", "medium"),
        ("", "50", "medium"),
        ("", "49", "small"),
        ("", "", None),
    ],
)
def test_import_members_classes_size_by_listing_and_capital(
    write_file, listing, capital, size
):
    text = edinet_text(
        row("E00001", "A社", "港区芝１", listing=listing, capital=capital)
    )

    result = import_members(write_file(text))

    assert payloads(result)[0].size == size


def test_import_members_assumes_capabilities_from_industry(write_file):
    text = edinet_text(
        row("E00001", "A社", "港区芝１", industry="建設業"),
        row("E00002", "B社", "港区芝２", industry=OTHER),
    )

    builder, other = payloads(import_members(write_file(text)))

    assert (builder.industry, other.industry) == ("建設業", None)
    assert "insulation" in builder.offers
    assert other.offers == [] and "energy_audit" in other.needs


def test_import_members_rejects_bad_corporate_number_with_line(write_file):
    text = edinet_text(
        row("E00001", "A社", "港区芝１", number="1234567890123"),
        row("E00002", "B社", "港区芝２", number="1010001000006"),
    )

    result = import_members(write_file(text))

    assert [m.org_id for m in payloads(result)] == ["1010001000006"]
    [bad] = result.rejected
    assert (bad.line, bad.column) == (3, "提出者法人番号")
    assert "check digit" in bad.reason


def test_import_members_counts_organisation_listed_twice_once(write_file):
    text = edinet_text(
        row(
            "E00001",
            "A社",
            "港区芝１",
            listing="",
            industry=OTHER,
            number="1010001000006",
        ),
        row("E00002", "A社", "港区芝１", listing="上場", number="1010001000006"),
        row("E00003", "A社", "港区芝１", listing="上場", number="1010001000006"),
    )

    result = import_members(write_file(text))

    [member] = payloads(result)
    assert member.industry == "建設業"
    assert member.size == "large"
    assert result.duplicates == 2


def test_import_members_refuses_file_without_date_line(write_file):
    text = "\r\n".join([HEADER, row("E00001", "A社", "港区芝１")])

    with pytest.raises(ImporterError, match="現在"):
        import_members(write_file(text))


def test_import_members_refuses_file_without_address_column(write_file):
    text = "\r\n".join([META, HEADER.replace("所在地", "住所"), row("E1", "A", "港区")])

    with pytest.raises(ImporterError, match="所在地"):
        import_members(write_file(text))


def test_import_members_reports_progress_of_every_row(write_file):
    text = edinet_text(*(row(f"E{i:05d}", "A社", "港区芝１") for i in range(3)))
    calls: list[int] = []

    import_members(write_file(text), progress=calls.append)

    assert sum(calls) == 3
