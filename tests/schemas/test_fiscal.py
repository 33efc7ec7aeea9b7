from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schemas.fiscal import JST, fiscal_year, fiscal_year_bounds, fiscal_year_label


def test_fiscal_year_of_31_march_is_previous_year() -> None:
    moment = datetime(2027, 3, 31, 23, 59, tzinfo=JST)

    assert fiscal_year(moment) == 2026


def test_fiscal_year_of_1_april_midnight_japan_time_is_new_year() -> None:
    moment = datetime(2027, 4, 1, 0, 0, tzinfo=JST)

    assert fiscal_year(moment) == 2027


def test_fiscal_year_judges_boundary_in_japan_time_whatever_the_offset() -> None:
    # 15:30Z on 31 March is 00:30 on 1 April in Tokyo; 14:59Z is 23:59 on 31 March.
    after = datetime(2027, 3, 31, 15, 30, tzinfo=UTC)
    before = datetime(2027, 3, 31, 14, 59, tzinfo=UTC)
    new_york = datetime(2027, 3, 31, 10, 59, tzinfo=timezone(timedelta(hours=-5)))

    assert fiscal_year(after) == 2027
    assert fiscal_year(before) == 2026
    assert fiscal_year(new_york) == 2027


def test_fiscal_year_reads_naive_time_as_japan_time() -> None:
    assert fiscal_year(datetime(2027, 4, 1, 0, 0)) == 2027
    assert fiscal_year(date(2027, 1, 15)) == 2026


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1)))
def test_fiscal_year_moment_lies_within_its_bounds(naive: datetime) -> None:
    moment = naive.replace(tzinfo=UTC)

    start, end = fiscal_year_bounds(fiscal_year(moment))

    assert start <= moment < end


def test_fiscal_year_label_names_the_reiwa_year() -> None:
    assert fiscal_year_label(2026) == "FY2026 (令和8年度)"
    assert fiscal_year_label(2019) == "FY2019 (令和元年度)"
