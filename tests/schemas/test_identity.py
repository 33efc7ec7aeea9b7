"""Tests of organisation identity: corporate numbers, names and ids."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas.errors import ContractError
from schemas.identity import (
    corporate_number_check_digit,
    name_key,
    normalise_corporate_number,
    normalise_org_name,
    org_identity,
)
from schemas.wards import WARDS

# Spellings of legal forms as people write them, each put around a base name.
JAPANESE_SPELLINGS = (
    "株式会社", "(株)", "（株）", "㈱", "㍿", "有限会社", "(有)", "㈲", "合同会社",
    "(同)", "合資会社", "㈾", "合名会社", "㈴", "一般社団法人", "(一社)",
    "一般財団法人", "公益社団法人", "公益財団法人", "社会福祉法人",
    "特定非営利活動法人", "NPO法人", "ＮＰＯ法人", "医療法人", "医療法人社団",
    "学校法人",
)  # fmt: skip
ENGLISH_SPELLINGS = (
    "Co.", "co", "CO.,LTD.", "Co., Ltd.", "Co Ltd", "Ltd.", "LTD", "Inc.", "inc",
    "Inc", "Corporation", "CORPORATION", "Corp.", "corp", "K.K.", "KK", "k.k",
    "LLC", "L.L.C.", "G.K.", "gk", "Ｃｏ．，Ｌｔｄ．", "Limited", "Kabushiki Kaisha",
)  # fmt: skip

# Base names that hold no legal form: none of these letters spells an English one
# and none of these kanji or kana occurs in a Japanese one.
BASE_ALPHABET = "緑化環境エコみどりグリーン電機工業東京BEFHJQUVWXZbefhjquvwxz0123456789"
bases = st.text(alphabet=BASE_ALPHABET + " 　・", min_size=1, max_size=12).filter(
    lambda s: normalise_org_name(s) != ""
)
wards = st.sampled_from(sorted(WARDS))

FULL_WIDTH_KATAKANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノガギグゲゴパピ"
HALF_WIDTH_KATAKANA = [
    *"ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉ",
    *["ｶﾞ", "ｷﾞ", "ｸﾞ", "ｹﾞ", "ｺﾞ", "ﾊﾟ", "ﾋﾟ"],
]
TO_HALF_WIDTH = dict(zip(FULL_WIDTH_KATAKANA, HALF_WIDTH_KATAKANA, strict=True))


def to_narrow_and_wide(text: str) -> str:
    """Write ASCII in full width and katakana in half width."""
    out = []
    for ch in text:
        if ch == " ":
            out.append("\u3000")
        elif "!" <= ch <= "~":
            out.append(chr(ord(ch) + 0xFEE0))
        else:
            out.append(TO_HALF_WIDTH.get(ch, ch))
    return "".join(out)


# -- corporate numbers --------------------------------------------------------------


def test_normalise_corporate_number_accepts_a_real_number_in_full_width() -> None:
    assert normalise_corporate_number("５０７０００１０００７１５") == "5070001000715"
    assert normalise_corporate_number("5-0700-0100-0715") == "5070001000715"


def test_normalise_corporate_number_refuses_a_wrong_check_digit() -> None:
    with pytest.raises(ContractError, match="check digit"):
        normalise_corporate_number("6070001000715")


def test_normalise_corporate_number_refuses_wrong_length() -> None:
    with pytest.raises(ContractError, match="13 digits"):
        normalise_corporate_number("507000100071")


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_corporate_number_with_computed_check_digit_is_accepted(base: str) -> None:
    number = f"{corporate_number_check_digit(base)}{base}"

    assert normalise_corporate_number(number) == number


@given(st.text(alphabet="0123456789", min_size=12, max_size=12), st.integers(1, 8))
def test_corporate_number_with_other_check_digit_is_refused(
    base: str, shift: int
) -> None:
    wrong = (corporate_number_check_digit(base) + shift) % 10

    with pytest.raises(ContractError):
        normalise_corporate_number(f"{wrong}{base}")


# -- names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("株式会社 緑化", "緑化"),
        ("緑化(株)", "緑化"),
        ("㈱緑化", "緑化"),
        ("緑化　株式会社", "緑化"),
        ("一般社団法人 グリーン・ネット", "グリーンネット"),
        ("MIDORI CO., LTD.", "midori"),
        ("Midori Co.,Ltd", "midori"),
        ("Ｍｉｄｏｒｉ　Ｃｏｒｐ．", "midori"),
        ("緑化Co.,Ltd.", "緑化"),
        ("K.K. Midori", "midori"),
    ],
)
def test_normalise_org_name_leaves_out_legal_form_and_spacing(
    name: str, expected: str
) -> None:
    assert normalise_org_name(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Tesco", "tesco"), ("Incheon Green", "incheongreen"), ("株式会社", "株式会社")],
)
def test_normalise_org_name_keeps_words_that_only_look_like_legal_forms(
    name: str, expected: str
) -> None:
    assert normalise_org_name(name) == expected


@given(st.text(max_size=30))
def test_normalise_org_name_is_idempotent(name: str) -> None:
    once = normalise_org_name(name)

    assert normalise_org_name(once) == once


@given(
    bases,
    st.sampled_from(JAPANESE_SPELLINGS),
    st.sampled_from(["", " ", "　"]),
    st.booleans(),
    wards,
)
def test_name_key_ignores_japanese_legal_form_around_the_name(
    base: str, form: str, space: str, in_front: bool, ward: str
) -> None:
    variant = f"{form}{space}{base}" if in_front else f"{base}{space}{form}"

    assert name_key(variant, ward) == name_key(base, ward)


@given(
    bases,
    st.sampled_from(ENGLISH_SPELLINGS),
    st.sampled_from([" ", ", ", "　"]),
    st.booleans(),
    wards,
)
def test_name_key_ignores_english_legal_form_around_the_name(
    base: str, form: str, separator: str, in_front: bool, ward: str
) -> None:
    variant = f"{form}{separator}{base}" if in_front else f"{base}{separator}{form}"

    assert name_key(variant, ward) == name_key(base, ward)


@given(
    st.text(
        alphabet="ABCxyz019 " + FULL_WIDTH_KATAKANA + "緑化", min_size=1, max_size=15
    ),
    wards,
)
def test_name_key_ignores_full_and_half_width(base: str, ward: str) -> None:
    variant = to_narrow_and_wide(base)
    assume(variant != base and normalise_org_name(base))

    assert name_key(variant, ward) == name_key(base, ward)


def test_name_key_accepts_ward_by_name_or_code() -> None:
    assert name_key("㈱緑化", "港区") == name_key("緑化", "13103") == "13103:緑化"


@pytest.mark.parametrize("name", [" 　", "・", ", .", ""])
def test_name_key_refuses_name_with_nothing_to_compare(name: str) -> None:
    with pytest.raises(ContractError, match="empty"):
        name_key(name, "13101")


# -- organisation ids ---------------------------------------------------------------


def test_org_identity_makes_one_member_of_four_spellings_in_a_ward() -> None:
    spellings = ["株式会社 緑化", "緑化(株)", "㈱緑化", "緑化 株式会社"]

    ids = {org_identity(name, "13101", None) for name in spellings}

    [only] = ids
    assert only.startswith("n-") and len(only) == 2 + 16


def test_org_identity_prefers_verified_corporate_number() -> None:
    org_id = org_identity("株式会社 緑化", "13101", "５０７０００１０００７１５")

    assert org_id == "5070001000715"


@pytest.mark.parametrize("number", [None, "", "  "])
def test_org_identity_reads_blank_corporate_number_as_none(number) -> None:
    assert org_identity("緑化", "13101", number).startswith("n-")


def test_org_identity_refuses_wrong_check_digit() -> None:
    with pytest.raises(ContractError, match="check digit"):
        org_identity("緑化", "13101", "6070001000715")


def test_org_identity_refuses_place_outside_the_wards() -> None:
    with pytest.raises(ContractError, match="special ward"):
        org_identity("緑化", "横浜市", None)


@given(bases, st.lists(wards, min_size=2, max_size=2, unique=True))
def test_org_identity_differs_between_wards(base: str, two: list[str]) -> None:
    first, second = (org_identity(base, ward, None) for ward in two)

    assert first != second
