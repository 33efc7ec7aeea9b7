"""Organisation identity: corporate numbers (法人番号) and names.

An organisation is known by its corporate number when one is given and verified.
Otherwise it is known by its name and ward: ``name_key`` compares names after
``normalise_org_name`` (NFKC, legal forms such as 株式会社, (株), ㈱ or "Co., Ltd."
left out, spaces and middle dots removed, case-folded), and ``org_identity`` turns
that key into a stable id, ``n-`` and the first 16 hex digits of its sha256. So
"株式会社 緑化", "緑化(株)", "㈱緑化" and "緑化 株式会社" in one ward are one member.

Merging a member known by name with its corporate number: a registration that
carries a verified corporate number always has that number as ``org_id``, even if
the same organisation was registered earlier by name only (as ``n-...``). The two
registrations share a ``name_key``; whoever keeps the graph folds the ``n-...``
member into the numbered one when it sees a registration with a number whose
``name_key`` matches a member without one (and only when exactly one numbered
member has that key: two firms of the same name in one ward stay apart). The id
of a member known by name changes when its name or ward does; the number never does.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from schemas.errors import ContractError
from schemas.wards import ward_code

NAME_ID_PREFIX = "n-"
NAME_ID_HEX_DIGITS = 16

# Legal forms as they read after NFKC and casefold (㈱ and （株） become "(株)", ㍿
# becomes 株式会社). Japanese forms are left out wherever they touch the name;
# English ones only as whole words, so "Tesco" keeps its "co".
JAPANESE_LEGAL_FORMS = (
    "株式会社", "有限会社", "合同会社", "合資会社", "合名会社",
    "一般社団法人", "一般財団法人", "公益社団法人", "公益財団法人", "社団法人",
    "財団法人", "社会福祉法人", "特定非営利活動法人", "npo法人", "医療法人社団",
    "医療法人財団", "医療法人", "学校法人",
)  # fmt: skip
JAPANESE_ABBREVIATIONS = (
    "株", "有", "同", "資", "名", "社", "財", "一社", "一財", "公社", "公財",
    "福", "医", "学", "特非", "npo",
)  # fmt: skip
ENGLISH_LEGAL_FORMS = (
    r"co", r"ltd", r"inc", r"corp", r"corporation", r"limited", r"incorporated",
    r"company", r"l\.?\s*l\.?\s*c", r"k\.?\s*k", r"g\.?\s*k",
    r"kabushiki\s*kaisha", r"godo\s*kaisha",
)  # fmt: skip

_MIDDLE_DOTS = str.maketrans(dict.fromkeys("・·‧∙⋅•", " "))
_JAPANESE = "|".join(
    [re.escape(f) for f in JAPANESE_LEGAL_FORMS]
    + [rf"\(\s*{re.escape(a)}\s*\)" for a in JAPANESE_ABBREVIATIONS]
)
_ENGLISH = "|".join(sorted(ENGLISH_LEGAL_FORMS, key=len, reverse=True))
_LATIN = r"[0-9a-z\u00c0-\u024f]"
_SEPARATORS = r"[\s,.]*"
_PREFIX = re.compile(
    rf"^{_SEPARATORS}(?:{_JAPANESE}|(?:{_ENGLISH})\.?(?!{_LATIN})){_SEPARATORS}"
)
_SUFFIX = re.compile(
    rf"{_SEPARATORS}(?:{_JAPANESE}|(?<!{_LATIN})(?:{_ENGLISH})\.?){_SEPARATORS}$"
)
_EDGE_SEPARATORS = re.compile(rf"^{_SEPARATORS}|{_SEPARATORS}$")

# Each pass only removes characters, so a handful reach the fixed point; the bound
# only guards against a loop.
_MAX_PASSES = 16


def normalise_org_name(name: str) -> str:
    """Return an organisation's name as compared, without legal form or spacing.

    NFKC, case-folded, middle dots and every space removed, and legal-form markers
    (Japanese and English, in front or behind, repeatedly) left out. A name that is
    nothing but a legal form keeps it. Applying it twice changes nothing.
    """
    text = name
    for _ in range(_MAX_PASSES):
        step = _normalise_once(text)
        if step == text:
            break
        text = step
    return text


def _normalise_once(text: str) -> str:
    """Run one pass: fold the text, strip legal forms, then drop spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = unicodedata.normalize("NFKC", text.casefold()).translate(_MIDDLE_DOTS)
    text = _strip_legal_forms(text)
    return "".join(text.split())


def _strip_legal_forms(text: str) -> str:
    """Remove legal forms at either end while something of the name remains."""
    text = _EDGE_SEPARATORS.sub("", text)
    while True:
        shorter = _PREFIX.sub("", text, count=1)
        if shorter == text or not shorter:
            shorter = _SUFFIX.sub("", text, count=1)
        if shorter == text or not shorter:
            return text
        text = shorter


def name_key(name: str, ward: str) -> str:
    """Return the key that tells members known by name apart: ward and name.

    Raises:
        ContractError: if the ward is not a special ward or the name is blank.
    """
    normalised = normalise_org_name(name)
    if not normalised:
        raise ContractError("the organisation's name is empty", field="name")
    return f"{ward_code(ward)}:{normalised}"


def org_identity(name: str, ward: str, corporate_number: str | None) -> str:
    """Return an organisation's id: its corporate number, else one from name and ward.

    Raises:
        ContractError: if the corporate number is not valid, the ward is not a
            special ward or the name is blank.
    """
    if corporate_number is not None and corporate_number.strip():
        return normalise_corporate_number(corporate_number)
    digest = hashlib.sha256(name_key(name, ward).encode()).hexdigest()
    return NAME_ID_PREFIX + digest[:NAME_ID_HEX_DIGITS]


def corporate_number_check_digit(base12: str) -> int:
    """Return the check digit of a corporate number's last 12 digits.

    The National Tax Agency's rule: with P_n the n-th digit counted from the right
    and Q_n = 1 for odd n, 2 for even n, the check digit is
    9 - (sum(P_n * Q_n) mod 9).
    """
    total = sum(
        int(digit) * (1 if n % 2 else 2)
        for n, digit in enumerate(reversed(base12), start=1)
    )
    return 9 - total % 9


def normalise_corporate_number(text: str) -> str:
    """Return a verified 13-digit corporate number from user text.

    Full-width digits, spaces and hyphens are accepted.

    Raises:
        ContractError: if it is not 13 digits or its check digit is wrong.
    """
    digits = unicodedata.normalize("NFKC", text).replace("-", "").replace(" ", "")
    if len(digits) != 13 or not digits.isascii() or not digits.isdigit():
        raise ContractError(
            f"corporate number {text!r} must have 13 digits",
            field="corporate_number",
        )
    if int(digits[0]) != corporate_number_check_digit(digits[1:]):
        raise ContractError(
            f"corporate number {text!r} has a wrong check digit (first digit)",
            field="corporate_number",
        )
    return digits


def name_alias(name: str, ward: str, corporate_number: str | None) -> str | None:
    """Return the name-based id an organisation had before its corporate number
    was known, which a registration with the number merges into it; else None."""
    if corporate_number is None or not normalise_org_name(name):
        return None
    return org_identity(name, ward, None)
