"""Japanese fiscal years (年度): April to March, judged in Japan time."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TypeVar
from zoneinfo import ZoneInfo

from schemas.errors import ContractError

JST = ZoneInfo("Asia/Tokyo")
T = TypeVar("T")


# Dates outside these are refused: a far-off "never" (9999-12-31) or a typo would
# otherwise reach fiscal-year arithmetic that cannot represent it.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)


def plausible_date(value: T) -> T:
    """Return a date or datetime unchanged if it lies in EARLIEST_DATE..
    LATEST_DATE; anything else that is not a date passes through.

    Raises:
        ValueError: naming the bounds (an open end is left out, not far-dated).
    """
    if isinstance(value, date):
        day = value.date() if isinstance(value, datetime) else value
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise ValueError(
                f"must be between {EARLIEST_DATE} and {LATEST_DATE} "
                "(leave an open end out rather than giving a far-off date)"
            )
    return value


def as_japan_time(moment: datetime) -> datetime:
    """Return the moment in Japan time; a naive moment is read as Japan time."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=JST)
    return moment.astimezone(JST)


def fiscal_year(moment: datetime | date) -> int:
    """Return the fiscal year of a moment: 2027-03-31 (JST) is FY2026.

    A ``datetime`` is converted to Japan time first (a naive one is read as Japan
    time); a ``date`` is taken as a date in Japan.
    """
    day = as_japan_time(moment).date() if isinstance(moment, datetime) else moment
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_bounds(year: int) -> tuple[datetime, datetime]:
    """Return [start, end) of a fiscal year as aware Japan-time datetimes."""
    if not 1900 <= year <= 9998:
        raise ContractError(
            f"{year} is not a plausible fiscal year", field="fiscal_year"
        )
    start = datetime.combine(date(year, 4, 1), time(0), JST)
    end = datetime.combine(date(year + 1, 4, 1), time(0), JST)
    return start, end


def fiscal_year_label(year: int) -> str:
    """Return a label readable in both languages, e.g. 'FY2026 (令和8年度)'."""
    if year >= 2019:
        era = f"令和{year - 2018}年度" if year > 2019 else "令和元年度"
    else:
        era = f"平成{year - 1988}年度"
    return f"FY{year} ({era})"
