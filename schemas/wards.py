"""The 23 special wards of Tokyo: JIS codes, names and borders."""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.errors import ContractError


@dataclass(frozen=True)
class Ward:
    code: str
    name_ja: str
    name_en: str


WARDS: dict[str, Ward] = {
    w.code: w
    for w in (
        Ward("13101", "千代田区", "Chiyoda"),
        Ward("13102", "中央区", "Chuo"),
        Ward("13103", "港区", "Minato"),
        Ward("13104", "新宿区", "Shinjuku"),
        Ward("13105", "文京区", "Bunkyo"),
        Ward("13106", "台東区", "Taito"),
        Ward("13107", "墨田区", "Sumida"),
        Ward("13108", "江東区", "Koto"),
        Ward("13109", "品川区", "Shinagawa"),
        Ward("13110", "目黒区", "Meguro"),
        Ward("13111", "大田区", "Ota"),
        Ward("13112", "世田谷区", "Setagaya"),
        Ward("13113", "渋谷区", "Shibuya"),
        Ward("13114", "中野区", "Nakano"),
        Ward("13115", "杉並区", "Suginami"),
        Ward("13116", "豊島区", "Toshima"),
        Ward("13117", "北区", "Kita"),
        Ward("13118", "荒川区", "Arakawa"),
        Ward("13119", "板橋区", "Itabashi"),
        Ward("13120", "練馬区", "Nerima"),
        Ward("13121", "足立区", "Adachi"),
        Ward("13122", "葛飾区", "Katsushika"),
        Ward("13123", "江戸川区", "Edogawa"),
    )
}

# Land (and reclaimed-land) borders between wards, from the ward map; listed once
# per pair and made symmetric below. Borders with cities outside the 23 wards are
# left out because only members inside the wards are matched.
_BORDER_PAIRS = (
    ("13101", "13102"), ("13101", "13103"), ("13101", "13104"),
    ("13101", "13105"), ("13101", "13106"), ("13102", "13103"),
    ("13102", "13106"), ("13102", "13107"), ("13102", "13108"),
    ("13103", "13104"), ("13103", "13113"), ("13103", "13109"),
    ("13103", "13110"), ("13103", "13108"), ("13104", "13105"),
    ("13104", "13113"), ("13104", "13114"), ("13104", "13116"),
    ("13105", "13106"), ("13105", "13116"), ("13105", "13117"),
    ("13105", "13118"), ("13106", "13107"), ("13106", "13118"),
    ("13107", "13108"), ("13107", "13118"), ("13107", "13121"),
    ("13107", "13122"), ("13107", "13123"), ("13108", "13123"),
    ("13108", "13109"), ("13108", "13111"), ("13109", "13110"),
    ("13109", "13111"), ("13110", "13111"), ("13110", "13112"),
    ("13110", "13113"), ("13111", "13112"), ("13112", "13113"),
    ("13112", "13115"), ("13113", "13114"), ("13113", "13115"),
    ("13114", "13115"), ("13114", "13116"), ("13114", "13120"),
    ("13115", "13120"), ("13116", "13117"), ("13116", "13119"),
    ("13116", "13120"), ("13117", "13118"), ("13117", "13119"),
    ("13117", "13121"), ("13118", "13121"), ("13119", "13120"),
    ("13121", "13122"), ("13122", "13123"),
)  # fmt: skip

BORDERS: dict[str, frozenset[str]] = {
    code: frozenset(
        {b for a, b in _BORDER_PAIRS if a == code}
        | {a for a, b in _BORDER_PAIRS if b == code}
    )
    for code in WARDS
}

_BY_NAME: dict[str, str] = {}
for _w in WARDS.values():
    for _name in (_w.name_ja, _w.name_ja.removesuffix("区"), _w.name_en):
        _BY_NAME[_name.casefold()] = _w.code
    _BY_NAME[f"{_w.name_en}-ku".casefold()] = _w.code
    _BY_NAME[f"{_w.name_en} city".casefold()] = _w.code
    _BY_NAME[f"{_w.name_en} ward".casefold()] = _w.code


def ward(code: str) -> Ward:
    """Return the ward with this JIS code.

    Raises:
        ContractError: if the code is not one of the 23 special wards.
    """
    try:
        return WARDS[code]
    except KeyError:
        raise ContractError(
            f"{code!r} is not a Tokyo special ward (JIS codes 13101 to 13123)",
            field="ward",
        ) from None


def ward_code(text: str) -> str:
    """Return the JIS code for a ward written as a code or a name (ja/en)."""
    text = text.strip()
    if text in WARDS:
        return text
    code = _BY_NAME.get(text.casefold())
    if code is None:
        raise ContractError(f"{text!r} is not a Tokyo special ward", field="ward")
    return code


def ward_of_address(address: str) -> str | None:
    """Return the ward code of a Japanese address inside the 23 wards, else None.

    The address may start with 東京都 or directly with the ward's name, as the
    EDINET list writes Tokyo addresses, or be in English with the ward written
    "Shibuya-ku", "Shibuya City" or "Shibuya Ward" (one ward, else None).
    """
    rest = address.strip().removeprefix("東京都").lstrip()
    for w in WARDS.values():
        if rest.startswith(w.name_ja):
            return w.code
    # An address in English names its ward as "Shibuya-ku" or "Shibuya City".
    words = re.findall(r"[a-z]+(?:-ku)?(?: city| ward)?", address.casefold())
    suffixed = (w for w in words if w.endswith(("-ku", " city", " ward")))
    found = {_BY_NAME[w] for w in suffixed if w in _BY_NAME}
    return found.pop() if len(found) == 1 else None


def ward_distance(a: str, b: str) -> int:
    """Return 0 for the same ward, 1 for bordering wards, 2 otherwise."""
    if a == b:
        return 0
    return 1 if b in BORDERS.get(a, frozenset()) else 2
