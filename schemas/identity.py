"""Organisation identity: corporate numbers (法人番号)."""

from __future__ import annotations

import unicodedata

from schemas.errors import ContractError


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
