"""Times leave the gateway as UTC with milliseconds and a Z, whatever offset they came with."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from normalizer.timefmt import format_instant, format_instant_us, parse_instant, to_micros

_OFFSETS = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def _reference(moment: datetime) -> str:
    """What the standard library writes for the same instant."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_OFFSETS))
def test_any_instant_is_written_as_the_standard_library_writes_it_in_utc(moment: datetime) -> None:
    assert format_instant(moment) == _reference(moment)
    assert format_instant_us(to_micros(moment)) == _reference(moment)


def test_milliseconds_are_truncated_and_years_padded() -> None:
    assert format_instant(parse_instant("2026-11-27T23:59:59.999999+00:00")) == "2026-11-27T23:59:59.999Z"
    assert format_instant(parse_instant("0900-01-01T01:00:00+02:00")) == "0899-12-31T23:00:00.000Z"
    assert format_instant_us(0) == "1970-01-01T00:00:00.000Z"
    assert format_instant_us(-1) == "1969-12-31T23:59:59.999Z"


def test_a_time_without_an_offset_is_utc() -> None:
    assert format_instant(datetime(2026, 6, 1, 12, 0, 0, 123456)) == "2026-06-01T12:00:00.123Z"
