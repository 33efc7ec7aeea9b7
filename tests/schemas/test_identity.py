import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import ContractError
from schemas.identity import corporate_number_check_digit, normalise_corporate_number


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

    if wrong == corporate_number_check_digit(base):
        return
    with pytest.raises(ContractError):
        normalise_corporate_number(f"{wrong}{base}")
