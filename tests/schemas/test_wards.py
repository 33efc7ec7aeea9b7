import pytest

from schemas.errors import ContractError
from schemas.wards import BORDERS, WARDS, ward_code, ward_distance, ward_of_address


def test_wards_are_the_23_jis_codes() -> None:
    assert sorted(WARDS) == [str(code) for code in range(13101, 13124)]


def test_borders_are_symmetric_and_every_ward_has_one() -> None:
    for code, neighbours in BORDERS.items():
        assert neighbours, code
        for other in neighbours:
            assert code in BORDERS[other]


def test_ward_code_accepts_japanese_english_and_code() -> None:
    assert ward_code("千代田区") == "13101"
    assert ward_code("Edogawa") == "13123"
    assert ward_code(" minato-ku ") == "13103"
    assert ward_code("13110") == "13110"


def test_ward_code_refuses_a_place_outside_the_wards_naming_the_field() -> None:
    with pytest.raises(ContractError) as caught:
        ward_code("武蔵野市")

    assert caught.value.field == "ward"


def test_ward_of_address_reads_edinet_addresses() -> None:
    assert ward_of_address("千代田区丸の内三丁目２番３号") == "13101"
    assert ward_of_address("東京都港区虎ノ門") == "13103"
    assert ward_of_address("大阪市中央区本町") is None
    assert ward_of_address("横浜市港北区新横浜") is None


def test_ward_distance_same_bordering_and_far() -> None:
    assert ward_distance("13101", "13101") == 0
    assert ward_distance("13101", "13102") == 1
    assert ward_distance("13101", "13123") == 2


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("東京都渋谷区神宮前1-2-3", "13113"),
        ("1-2-3 Jingumae, Shibuya-ku, Tokyo", "13113"),
        ("Minato City, Tokyo", "13103"),
        ("Setagaya Ward", "13112"),
        ("Tokyo", None),
        ("Shibuya-ku and Minato-ku", None),
    ],
)
def test_ward_of_address_reads_japanese_and_english_addresses(
    address: str, code: str | None
) -> None:
    assert ward_of_address(address) == code
