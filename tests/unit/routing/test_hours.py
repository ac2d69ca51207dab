"""Unit tests for `app.routing.hours`: per-skill business hours, their JSON shape, and when a
desk is open, next opens and next closes. Pure inputs, no loop, no database.

Examples pin the parser's messages, the bounds of an interval, holidays in local dates, zones
far from UTC and the days their clocks jump (all in 2026: Paris 29 March and 25 October, Los
Angeles 8 March and 1 November, Auckland 5 April and 27 September, Beirut and Santiago at
midnight). Hypothesis then checks, on random schedules in zones with odd offsets, that
`next_opening()` and `closes_at()` agree with `is_open()` and with a quarter-hour scan.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.routing.hours import (
    MAX_HOLIDAYS,
    MIDNIGHT,
    BusinessHours,
    HoursError,
    Interval,
    closes_at,
    hours_to_json,
    is_open,
    next_opening,
    parse_hours,
)

PARIS = "Europe/Paris"
TICK = timedelta(microseconds=1)
QUARTER = timedelta(minutes=15)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
ALL_DAYS = (*WEEKDAYS, "sat", "sun")
PROPERTY = settings(max_examples=150, deadline=None)


def hours(
    weekly: dict[str, list[list[str]]] | None = None,
    /,
    *,
    timezone: str = PARIS,
    holidays: Sequence[str] = (),
    **days: list[list[str]],
) -> BusinessHours:
    """Hours as the admin API would send them: `hours(mon=[["09:00", "17:00"]])`, or
    `hours(every(WEEKDAYS, ("09:00", "17:00")))`."""
    data = {"timezone": timezone, "weekly": (weekly or {}) | days, "holidays": list(holidays)}
    return parse_hours(data)


def every(days: Sequence[str], *intervals: tuple[str, str]) -> dict[str, list[list[str]]]:
    """The same intervals on each of `days`."""
    return {day: [list(interval) for interval in intervals] for day in days}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def paris(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(PARIS), fold=fold)


NINE_TO_FIVE = hours(every(WEEKDAYS, ("09:00", "17:00")))
ROUND_THE_CLOCK = hours(every(ALL_DAYS, ("00:00", "24:00")), holidays=["2026-12-25"])


class TestParseHours:
    def test_reads_the_stored_shape(self) -> None:
        """The documented JSON becomes weekday-indexed local intervals and a set of dates."""
        parsed = parse_hours(
            {
                "timezone": PARIS,
                "weekly": {
                    "mon": [["09:00", "12:00"], ["13:30", "17:30"]],
                    "sat": [["10:00", "24:00"]],
                    "sun": [],
                },
                "holidays": ["2026-12-25", "2027-01-01"],
            }
        )
        assert parsed.timezone == PARIS
        assert parsed.weekly[0] == ((time(9), time(12)), (time(13, 30), time(17, 30)))
        assert parsed.weekly[5] == ((time(10), MIDNIGHT),)
        assert parsed.holidays == {date(2026, 12, 25), date(2027, 1, 1)}

    def test_missing_days_are_closed_and_holidays_optional(self) -> None:
        """Days left out have no intervals; a schedule without `holidays` has none."""
        parsed = parse_hours({"timezone": "UTC", "weekly": {"wed": [["08:00", "09:00"]]}})
        assert dict(parsed.weekly) == dict.fromkeys((0, 1, 3, 4, 5, 6), ()) | {
            2: ((time(8), time(9)),)
        }
        assert parsed.holidays == frozenset()

    def test_intervals_are_stored_sorted(self) -> None:
        """A day's intervals may come in any order; they are kept sorted by opening time."""
        parsed = hours(fri=[["14:00", "18:00"], ["08:00", "12:00"]])
        assert parsed.weekly[4] == ((time(8), time(12)), (time(14), time(18)))

    def test_touching_intervals_and_the_whole_day_are_allowed(self) -> None:
        """Intervals may touch (closes of one is opens of the next); 00:00-24:00 is a day."""
        parsed = hours(mon=[["09:00", "12:00"], ["12:00", "17:00"]], tue=[["00:00", "24:00"]])
        assert parsed.weekly[0] == ((time(9), time(12)), (time(12), time(17)))
        assert parsed.weekly[1] == ((MIDNIGHT, MIDNIGHT),)

    def test_duplicate_holidays_count_once(self) -> None:
        """Holidays are a set of dates."""
        assert hours(holidays=["2026-05-01", "2026-05-01"]).holidays == {date(2026, 5, 1)}

    def test_errors_are_value_errors(self) -> None:
        """`HoursError` is a `ValueError`, so generic validation code catches it."""
        assert issubclass(HoursError, ValueError)

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": [["18:00", "09:00"]]}},
                "weekly.mon[0]: opens 18:00 is not before closes 09:00",
                id="reversed",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"tue": [["08:00", "09:00"], ["12:00", "12:00"]]}},
                "weekly.tue[1]: opens 12:00 is not before closes 12:00",
                id="empty",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": [["09:00", "13:00"], ["12:00", "14:00"]]}},
                "weekly.mon[1]: 12:00-14:00 overlaps weekly.mon[0] 09:00-13:00",
                id="overlap",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"sun": [["12:00", "24:00"], ["09:00", "13:00"]]}},
                "weekly.sun[0]: 12:00-24:00 overlaps weekly.sun[1] 09:00-13:00",
                id="overlap-as-given",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"wed": [["09:00", "17:00"], ["09:00", "10:00"]]}},
                "weekly.wed[1]: 09:00-10:00 overlaps weekly.wed[0] 09:00-17:00",
                id="same-opening",
            ),
            pytest.param(
                {"timezone": "Mars/Olympus_Mons", "weekly": {}},
                "timezone: unknown time zone 'Mars/Olympus_Mons'",
                id="unknown-zone",
            ),
            pytest.param(
                {"timezone": "localtime", "weekly": {}},
                "timezone: unknown time zone 'localtime'",
                id="machine-zone",
            ),
            pytest.param(
                {"timezone": "../zoneinfo/UTC", "weekly": {}},
                "timezone: unknown time zone '../zoneinfo/UTC'",
                id="path-zone",
            ),
            pytest.param(
                {"timezone": "", "weekly": {}},
                "timezone: unknown time zone ''",
                id="empty-zone",
            ),
            pytest.param(
                {"timezone": 1, "weekly": {}},
                "timezone: expected a time zone name such as 'Europe/Paris'",
                id="zone-not-string",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"monday": []}},
                "weekly: unknown day 'monday'; expected mon, tue, wed, thu, fri, sat, sun",
                id="unknown-day",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": [["09:00", "17:00"]]},
                "weekly: expected an object with the keys mon to sun",
                id="weekly-not-object",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": "09:00-17:00"}},
                "weekly.mon: expected a list of [opens, closes] pairs",
                id="day-not-list",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": [["09:00"]]}},
                "weekly.mon[0]: expected [opens, closes], such as ['09:00', '17:30']",
                id="not-a-pair",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": ["09:00-17:00"]}},
                "weekly.mon[0]: expected [opens, closes], such as ['09:00', '17:30']",
                id="string-not-pair",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": [["9:00", "17:00"]]}},
                "weekly.mon[0]: opens '9:00' is not a time HH:MM from 00:00 to 23:59",
                id="short-hour",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": [["24:00", "24:00"]]}},
                "weekly.mon[0]: opens '24:00' is not a time HH:MM from 00:00 to 23:59",
                id="opens-24",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": [["09:00", "24:30"]]}},
                "weekly.mon[0]: closes '24:30' is not a time HH:MM from 00:00 to 24:00",
                id="closes-past-24",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": [["09:00", 1700]]}},
                "weekly.mon[0]: closes 1700 is not a time HH:MM from 00:00 to 24:00",
                id="closes-not-string",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"mon": [["\u0660\u0669:00", "17:00"]]}},
                "weekly.mon[0]: opens '\u0660\u0669:00' is not a time HH:MM from 00:00 to 23:59",
                id="non-ascii-digits",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"thu": [["22:00", "00:00"]]}},
                "weekly.thu[0]: closes 00:00 is ambiguous; write 24:00 for the end of the day",
                id="closes-at-00",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {"fri": [["00:00", "00:01"]] * 11}},
                "weekly.fri: more than 10 intervals (11)",
                id="too-many-intervals",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {}, "holidays": ["2026-12-25", "2026-02-30"]},
                "holidays[1]: '2026-02-30' is not a date YYYY-MM-DD",
                id="no-such-date",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {}, "holidays": ["20261225"]},
                "holidays[0]: '20261225' is not a date YYYY-MM-DD",
                id="basic-iso-date",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {}, "holidays": [20261225]},
                "holidays[0]: 20261225 is not a date YYYY-MM-DD",
                id="date-not-string",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {}, "holidays": "2026-12-25"},
                "holidays: expected a list of dates YYYY-MM-DD",
                id="holidays-not-list",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {}, "holidays": ["2026-01-01"] * 367},
                "holidays: more than 366 dates (367)",
                id="too-many-holidays",
            ),
            pytest.param(
                {"timezone": PARIS, "weekly": {}, "hours": {}},
                "unknown field 'hours'; expected timezone, weekly, holidays",
                id="unknown-field",
            ),
            pytest.param({"weekly": {}}, "timezone: required", id="no-zone"),
            pytest.param({"timezone": PARIS}, "weekly: required", id="no-weekly"),
        ],
    )
    def test_rejects_with_a_message_naming_the_field(
        self, data: dict[str, object], message: str
    ) -> None:
        """Each mistake an admin can make is refused with a message that points at it."""
        with pytest.raises(HoursError) as caught:
            parse_hours(data)
        assert str(caught.value) == message


class TestBusinessHours:
    def test_normalises_what_it_is_given(self) -> None:
        """Built directly, hours get all seven days and sorted intervals, so they equal the
        same schedule parsed from JSON."""
        built = BusinessHours(PARIS, {0: ((time(13), time(17)), (time(9), time(12)))})
        assert built == hours(mon=[["09:00", "12:00"], ["13:00", "17:00"]])
        assert sorted(built.weekly) == list(range(7))
        assert built.weekly[6] == ()

    def test_equal_hours_hash_alike(self) -> None:
        """Frozen hours can be set members and cache keys."""
        built = BusinessHours(PARIS, {4: ((time(9), time(17)),)}, frozenset({date(2026, 5, 1)}))
        parsed = hours(fri=[["09:00", "17:00"]], holidays=["2026-05-01"])
        assert hash(built) == hash(parsed)
        assert len({built, parsed, NINE_TO_FIVE}) == 2

    def test_weekly_is_read_only(self) -> None:
        """The stored mapping cannot be changed behind the validation's back."""
        built = BusinessHours(PARIS, {})
        with pytest.raises(TypeError):
            built.weekly[0] = ((time(9), time(17)),)  # type: ignore[index]  # the point: it fails

    @pytest.mark.parametrize(
        ("weekly", "holidays", "message"),
        [
            pytest.param(
                {7: ()}, (), "weekly: unknown weekday 7; expected 0 (Monday) to 6", id="weekday"
            ),
            pytest.param(
                {0: ((time(9, 0, 30), time(17)),)},
                (),
                "weekly.mon[0]: times are whole minutes",
                id="seconds",
            ),
            pytest.param(
                {6: ((time(9, tzinfo=UTC), time(17)),)},
                (),
                "weekly.sun[0]: times are local wall-clock times, without a tzinfo",
                id="tzinfo",
            ),
            pytest.param(
                {2: ((time(10), time(9)),)},
                (),
                "weekly.wed[0]: opens 10:00 is not before closes 09:00",
                id="reversed",
            ),
            pytest.param(
                {0: ((time(9), time(10)),) * 11},
                (),
                "weekly.mon: more than 10 intervals (11)",
                id="too-many-intervals",
            ),
            pytest.param(
                {},
                (datetime(2026, 12, 25, tzinfo=UTC),),
                "holidays: 2026-12-25T00:00:00+00:00 is a datetime, not a date",
                id="datetime-holiday",
            ),
            pytest.param(
                {},
                tuple(date(2026, 1, 1) + timedelta(days=n) for n in range(MAX_HOLIDAYS + 1)),
                "holidays: more than 366 dates (367)",
                id="too-many-holidays",
            ),
        ],
    )
    def test_rejects_what_parse_hours_would(
        self,
        weekly: dict[int, tuple[Interval, ...]],
        holidays: tuple[date, ...],
        message: str,
    ) -> None:
        """Hours built in code are held to the same rules, with the same messages."""
        with pytest.raises(HoursError) as caught:
            BusinessHours(PARIS, weekly, frozenset(holidays))
        assert str(caught.value) == message


class TestHoursToJson:
    def test_gives_every_day_sorted_with_24_00(self) -> None:
        """The output has all seven days, a closing midnight as "24:00" and sorted holidays."""
        parsed = hours(
            sat=[["18:00", "24:00"], ["08:00", "12:30"]], holidays=["2027-01-01", "2026-12-25"]
        )
        assert hours_to_json(parsed) == {
            "timezone": PARIS,
            "weekly": {
                "mon": [],
                "tue": [],
                "wed": [],
                "thu": [],
                "fri": [],
                "sat": [["08:00", "12:30"], ["18:00", "24:00"]],
                "sun": [],
            },
            "holidays": ["2026-12-25", "2027-01-01"],
        }


class TestIsOpen:
    def test_opening_time_is_included_and_closing_time_excluded(self) -> None:
        """Open from 09:00 sharp until just before 17:00, local time."""
        monday = paris(2026, 1, 5, 9)
        assert not is_open(NINE_TO_FIVE, monday - TICK)
        assert is_open(NINE_TO_FIVE, monday)
        assert is_open(NINE_TO_FIVE, monday.replace(hour=17) - TICK)
        assert not is_open(NINE_TO_FIVE, monday.replace(hour=17))

    def test_24_00_is_the_end_of_the_day(self) -> None:
        """An interval closing "24:00" is open until the last instant of the day."""
        late = hours(mon=[["22:00", "24:00"]])
        assert is_open(late, paris(2026, 1, 6) - TICK)
        assert not is_open(late, paris(2026, 1, 6))

    def test_no_hours_means_always_open(self) -> None:
        """A skill without business hours is always open."""
        assert is_open(None, utc(2026, 12, 25, 3))

    def test_closed_days(self) -> None:
        """Weekend days without intervals are closed all day."""
        assert not is_open(NINE_TO_FIVE, paris(2026, 1, 10, 12))

    def test_holiday_is_a_local_date(self) -> None:
        """23:30 UTC on 24 December is already the 25th in Paris, so a holiday there; an hour
        earlier it is still the 24th."""
        assert not is_open(ROUND_THE_CLOCK, utc(2026, 12, 24, 23, 30))
        assert is_open(ROUND_THE_CLOCK, utc(2026, 12, 24, 22, 30))
        assert is_open(ROUND_THE_CLOCK, utc(2026, 12, 25, 23))

    def test_holiday_west_of_utc(self) -> None:
        """In Los Angeles, 05:00 UTC on the 25th is still the evening of the 24th."""
        la = hours(
            every(ALL_DAYS, ("00:00", "24:00")),
            timezone="America/Los_Angeles",
            holidays=["2026-12-25"],
        )
        assert is_open(la, utc(2026, 12, 25, 5))
        assert not is_open(la, utc(2026, 12, 25, 9))

    def test_auckland_monday_starts_on_sunday_in_utc(self) -> None:
        """09:00 on a Monday in Auckland (UTC+13 in January) is 20:00 UTC on the Sunday."""
        auckland = hours(timezone="Pacific/Auckland", mon=[["09:00", "17:00"]])
        assert is_open(auckland, utc(2026, 1, 4, 20))
        assert not is_open(auckland, utc(2026, 1, 4, 20) - TICK)
        assert not is_open(auckland, utc(2026, 1, 5, 4))

    def test_any_offset_of_now_gives_the_same_answer(self) -> None:
        """`now` may carry any time zone; only the instant matters."""
        instant = utc(2026, 1, 5, 8, 30)  # 09:30 in Paris
        assert is_open(NINE_TO_FIVE, instant)
        assert is_open(NINE_TO_FIVE, instant.astimezone(ZoneInfo("Asia/Tokyo")))

    def test_spring_forward_skips_the_missing_hour(self) -> None:
        """On 29 March 2026 Paris goes from 02:00 to 03:00: a 02:00-02:30 desk never opens,
        and one open 02:30-04:00 is open from 03:00 local (01:00 UTC)."""
        lost = hours(sun=[["02:00", "02:30"]])
        partly = hours(sun=[["02:30", "04:00"]])
        day = [utc(2026, 3, 28, 23) + n * QUARTER for n in range(12)]
        assert not any(is_open(lost, t) for t in day)
        assert [t for t in day if is_open(partly, t)] == day[8:]  # 01:00 UTC onwards

    def test_fall_back_is_open_during_both_occurrences(self) -> None:
        """On 25 October 2026 Paris passes 02:00-03:00 twice; a desk open 02:00-02:30 is open
        both times, since openness follows the wall clock."""
        twice = hours(sun=[["02:00", "02:30"]])
        assert is_open(twice, paris(2026, 10, 25, 2, 10))
        assert is_open(twice, paris(2026, 10, 25, 2, 10, fold=1))
        assert not is_open(twice, utc(2026, 10, 25, 0, 45))

    @pytest.mark.parametrize("ask", [is_open, next_opening, closes_at])
    def test_naive_now_is_refused(
        self, ask: Callable[[BusinessHours | None, datetime], object]
    ) -> None:
        """A naive `now` is a caller bug: which instant it means depends on the machine."""
        with pytest.raises(ValueError, match="now must be timezone-aware"):
            ask(None, datetime(2026, 1, 1, 12))  # noqa: DTZ001 (the naive datetime under test)


class TestNextOpening:
    def test_open_now_gives_now_in_utc(self) -> None:
        """When open, the answer is `now` itself, as a UTC datetime."""
        now = paris(2026, 1, 5, 10)
        opening = next_opening(NINE_TO_FIVE, now)
        assert opening == now
        assert opening is not None
        assert opening.tzinfo is UTC

    def test_no_hours_is_open_now(self) -> None:
        """Always open: the answer is `now`."""
        assert next_opening(None, utc(2026, 1, 1)) == utc(2026, 1, 1)

    def test_later_the_same_day(self) -> None:
        """Before opening time, the desk opens at 09:00 local that day."""
        assert next_opening(NINE_TO_FIVE, paris(2026, 1, 5, 7)) == utc(2026, 1, 5, 8)

    def test_after_closing_it_is_the_next_working_day(self) -> None:
        """Friday evening's next opening is Monday 09:00 (UTC+2 in summer)."""
        friday = paris(2026, 6, 5, 17)
        assert next_opening(NINE_TO_FIVE, friday) == utc(2026, 6, 8, 7)

    def test_holidays_are_skipped(self) -> None:
        """A holiday Monday sends the next opening to Tuesday."""
        easter = hours(every(WEEKDAYS, ("09:00", "17:00")), holidays=["2026-04-06"])
        assert next_opening(easter, paris(2026, 4, 3, 18)) == utc(2026, 4, 7, 7)

    def test_never_open(self) -> None:
        """A schedule without intervals never opens."""
        assert next_opening(hours(), utc(2026, 1, 1)) is None

    def test_searches_a_year_ahead(self) -> None:
        """A desk whose open days are holidays for 51 weeks opens 52 weeks later; one more
        holiday puts the opening past the search, and there is no answer."""
        mondays = [date(2026, 1, 12) + timedelta(weeks=n) for n in range(51)]
        yearly = hours(mon=[["09:00", "10:00"]], holidays=[d.isoformat() for d in mondays])
        now = paris(2026, 1, 5, 12)
        assert next_opening(yearly, now) == utc(2027, 1, 4, 8)
        later = [*mondays, date(2027, 1, 4)]
        never = hours(mon=[["09:00", "10:00"]], holidays=[d.isoformat() for d in later])
        assert next_opening(never, now) is None

    def test_spring_forward_opens_after_the_gap(self) -> None:
        """02:30 does not exist in Paris on 29 March 2026; the desk opens at 03:00 local."""
        partly = hours(sun=[["02:30", "04:00"]])
        assert next_opening(partly, utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)

    def test_spring_forward_in_los_angeles(self) -> None:
        """Los Angeles skips 02:00-03:00 on 8 March 2026: 02:00 opens at 03:00 PDT."""
        la = hours(timezone="America/Los_Angeles", sun=[["02:00", "06:00"]])
        assert next_opening(la, utc(2026, 3, 7, 12)) == utc(2026, 3, 8, 10)

    def test_spring_forward_at_midnight(self) -> None:
        """Beirut goes from 00:00 to 01:00 on 29 March 2026: Sunday opens at 01:00 local."""
        beirut = hours(timezone="Asia/Beirut", sun=[["00:00", "04:00"]])
        assert next_opening(beirut, utc(2026, 3, 28, 12)) == utc(2026, 3, 28, 22)

    def test_spring_forward_in_auckland(self) -> None:
        """Auckland skips 02:00-03:00 on 27 September 2026 (at 14:00 UTC the day before)."""
        auckland = hours(timezone="Pacific/Auckland", sun=[["02:15", "05:00"]])
        assert next_opening(auckland, utc(2026, 9, 26)) == utc(2026, 9, 26, 14)

    def test_fall_back_opens_at_the_first_occurrence(self) -> None:
        """02:30 happens twice in Paris on 25 October 2026; the desk opens at the first."""
        twice = hours(sun=[["02:30", "04:00"]])
        assert next_opening(twice, utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30)

    def test_fall_back_in_auckland(self) -> None:
        """Auckland passes 02:00-03:00 twice on 5 April 2026: 02:30 first comes at 13:30 UTC."""
        auckland = hours(timezone="Pacific/Auckland", sun=[["02:30", "03:30"]])
        assert next_opening(auckland, utc(2026, 4, 4)) == utc(2026, 4, 4, 13, 30)

    def test_fall_back_reopens_for_the_second_occurrence(self) -> None:
        """After the first 02:00-02:30, the wall clock comes back to 02:00 an hour later, and
        the desk opens again."""
        twice = hours(sun=[["02:00", "02:30"]])
        assert next_opening(twice, utc(2026, 10, 25, 0, 45)) == utc(2026, 10, 25, 1)

    def test_fall_back_can_land_inside_an_interval(self) -> None:
        """Los Angeles goes back from 02:00 to 01:00 on 1 November 2026: a desk open
        00:30-01:15 reopens when the clock jumps back, not at an opening time."""
        la = hours(timezone="America/Los_Angeles", sun=[["00:30", "01:15"]])
        assert next_opening(la, utc(2026, 11, 1, 8, 30)) == utc(2026, 11, 1, 9)

    def test_fall_back_across_midnight(self) -> None:
        """St. John's went back from Sunday 00:01 to Saturday 23:01 on 7 November 2010 (02:31
        UTC). Sunday opens at the first 00:00 even though Saturday's 23:30 comes round again
        after it; and from just after that first midnight, Saturday's 23:30 is still ahead."""
        st_johns = hours(
            timezone="America/St_Johns", sat=[["23:30", "23:40"]], sun=[["00:00", "01:00"]]
        )
        assert next_opening(st_johns, utc(2010, 11, 7, 2, 15)) == utc(2010, 11, 7, 2, 30)
        saturday_only = hours(timezone="America/St_Johns", sat=[["23:30", "23:40"]])
        assert next_opening(saturday_only, utc(2010, 11, 7, 2, 30)) == utc(2010, 11, 7, 3)


class TestClosesAt:
    def test_end_of_the_interval(self) -> None:
        """Open at 10:00, the desk closes at 17:00 local."""
        assert closes_at(NINE_TO_FIVE, paris(2026, 1, 5, 10)) == utc(2026, 1, 5, 16)

    def test_closed_or_always_open_gives_none(self) -> None:
        """There is no closing time for a closed desk, nor for one without hours."""
        assert closes_at(NINE_TO_FIVE, paris(2026, 1, 5, 18)) is None
        assert closes_at(None, utc(2026, 1, 5)) is None

    def test_24_00_closes_at_midnight(self) -> None:
        """An interval ending 24:00 closes at the next local midnight."""
        late = hours(mon=[["22:00", "24:00"]])
        assert closes_at(late, paris(2026, 1, 5, 23)) == utc(2026, 1, 5, 23)

    def test_24_00_then_00_00_is_one_stretch(self) -> None:
        """Open until 24:00 and again from 00:00 the next day, the desk closes the next day."""
        overnight = hours(mon=[["22:00", "24:00"]], tue=[["00:00", "02:00"]])
        assert closes_at(overnight, paris(2026, 1, 5, 23)) == utc(2026, 1, 6, 1)

    def test_a_holiday_ends_the_stretch(self) -> None:
        """...unless the next day is a holiday."""
        overnight = hours(
            mon=[["22:00", "24:00"]], tue=[["00:00", "02:00"]], holidays=["2026-01-06"]
        )
        assert closes_at(overnight, paris(2026, 1, 5, 23)) == utc(2026, 1, 5, 23)

    def test_touching_intervals_are_one_stretch(self) -> None:
        """09:00-12:00 and 12:00-17:00 close at 17:00."""
        split = hours(wed=[["09:00", "12:00"], ["12:00", "17:00"]])
        assert closes_at(split, paris(2026, 1, 7, 10)) == utc(2026, 1, 7, 16)

    def test_round_the_clock_closes_on_the_holiday(self) -> None:
        """Open every day all day, the desk closes when the holiday starts in Paris."""
        assert closes_at(ROUND_THE_CLOCK, utc(2026, 6, 1)) == utc(2026, 12, 24, 23)

    def test_never_closing_gives_none(self) -> None:
        """Open every day all day with no holiday, it does not close within the search."""
        always = hours(every(ALL_DAYS, ("00:00", "24:00")))
        assert closes_at(always, utc(2026, 6, 1)) is None

    def test_closing_time_in_a_spring_forward_gap(self) -> None:
        """Closing at 02:30 on the day Paris skips 02:00-03:00, the desk closes at the jump."""
        early = hours(sun=[["01:00", "02:30"]])
        assert closes_at(early, paris(2026, 3, 29, 1, 30)) == utc(2026, 3, 29, 1)

    def test_closing_at_midnight_that_does_not_exist(self) -> None:
        """In Beirut Saturday 24:00 is skipped on 28 March 2026 (the clock goes to 01:00
        Sunday): Saturday's evening and Sunday's morning are one stretch."""
        beirut = hours(timezone="Asia/Beirut", sat=[["20:00", "24:00"]], sun=[["00:00", "04:00"]])
        assert closes_at(beirut, utc(2026, 3, 28, 19)) == utc(2026, 3, 29, 1)

    def test_fall_back_can_close_the_desk(self) -> None:
        """Paris goes back from 03:00 to 02:00 on 25 October 2026: a desk open 02:15-04:00
        closes at the jump (02:00 is before 02:15) and reopens at the second 02:15."""
        twice = hours(sun=[["02:15", "04:00"]])
        first = utc(2026, 10, 25, 0, 15)
        assert closes_at(twice, first) == utc(2026, 10, 25, 1)
        assert next_opening(twice, utc(2026, 10, 25, 1)) == utc(2026, 10, 25, 1, 15)
        assert closes_at(twice, utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 25, 3)

    def test_fall_back_at_midnight(self) -> None:
        """Santiago goes back from Sunday 00:00 to Saturday 23:00 on 5 April 2026: the wall
        clock never reaches Saturday 24:00 until it has shown 23:00-24:00 twice, so a desk open
        22:00-24:00 that Saturday stays open three hours."""
        santiago = hours(timezone="America/Santiago", sat=[["22:00", "24:00"]])
        assert next_opening(santiago, utc(2026, 4, 4, 12)) == utc(2026, 4, 5, 1)
        assert closes_at(santiago, utc(2026, 4, 5, 1)) == utc(2026, 4, 5, 4)

    def test_fall_back_across_midnight_closes_on_the_jump(self) -> None:
        """In St. John's on 7 November 2010, Sunday 00:00 lasted one minute before the clock
        went back to Saturday 23:01, closing a Sunday-only desk until Sunday 00:00 came again."""
        st_johns = hours(timezone="America/St_Johns", sun=[["00:00", "01:00"]])
        assert closes_at(st_johns, utc(2010, 11, 7, 2, 30)) == utc(2010, 11, 7, 2, 31)
        assert next_opening(st_johns, utc(2010, 11, 7, 2, 31)) == utc(2010, 11, 7, 3, 30)


# --- properties --------------------------------------------------------------------------

# Zones with DST on both hemispheres, half-hour and 45-minute offsets, a 30-minute DST shift
# (Lord Howe) and clocks that jump at midnight (Beirut, Santiago).
ZONES = (
    "UTC",
    "Europe/Paris",
    "America/Los_Angeles",
    "Pacific/Auckland",
    "Australia/Lord_Howe",
    "Asia/Beirut",
    "America/Santiago",
    "Pacific/Chatham",
    "Asia/Kolkata",
)
# The 2026 days on which those zones change offset (UTC dates).
TRANSITION_DAYS = tuple(
    date.fromisoformat(f"2026-{day}")
    for day in (
        *("03-08", "03-28", "03-29", "04-04", "04-05", "09-06"),
        *("09-26", "10-03", "10-24", "10-25", "11-01"),
    )
)


def _wall(mark: int) -> time:
    """Quarter-hours since midnight as a time; 96 is 24:00."""
    return MIDNIGHT if mark == 96 else time(mark // 4, mark % 4 * 15)


@st.composite
def day_intervals(draw: st.DrawFn) -> tuple[Interval, ...]:
    """Sorted, non-overlapping quarter-hour intervals, some touching, some ending 24:00."""
    marks = sorted(draw(st.lists(st.integers(0, 96), max_size=8)))
    pairs = zip(marks[::2], marks[1::2], strict=False)
    return tuple((_wall(opens), _wall(closes)) for opens, closes in pairs if opens < closes)


@st.composite
def scenarios(draw: st.DrawFn, *, on_quarter_hour: bool = False) -> tuple[BusinessHours, datetime]:
    """Hours in one of `ZONES` and a `now` in 2026-2027, often within two days of a clock
    change, with holidays around it. `on_quarter_hour` puts `now` on a UTC quarter-hour."""
    if draw(st.booleans()):
        start = datetime.combine(draw(st.sampled_from(TRANSITION_DAYS)), MIDNIGHT, tzinfo=UTC)
        start -= timedelta(days=2)
    else:
        start = utc(2026, 1, 1) + timedelta(days=draw(st.integers(0, 729)))
    if on_quarter_hour:
        now = start + QUARTER * draw(st.integers(0, 4 * 24 * 4))
    else:
        now = start + TICK * draw(st.integers(0, 4 * 86_400 * 10**6))
    weekly = {day: draw(day_intervals()) for day in range(7)}
    near = draw(st.sets(st.integers(-1, 10), max_size=4))
    holidays = frozenset(now.date() + timedelta(days=n) for n in near)
    now = now.astimezone(ZoneInfo(draw(st.sampled_from(["UTC", "Asia/Tokyo", "America/Denver"]))))
    return BusinessHours(draw(st.sampled_from(ZONES)), weekly, holidays), now


def first_quarter_hour(
    schedule: BusinessHours, start: datetime, *, is_open_then: bool, days: int = 8
) -> datetime | None:
    """A naive restatement: the first UTC quarter-hour from `start` (on one) at which
    `is_open()` is `is_open_then`, within `days`."""
    instant = start.astimezone(UTC)
    for _ in range(days * 24 * 4):
        if is_open(schedule, instant) is is_open_then:
            return instant
        instant += QUARTER
    return None


class TestProperties:
    @PROPERTY
    @given(schedule=scenarios().map(lambda s: s[0]))
    def test_json_round_trip(self, schedule: BusinessHours) -> None:
        """Hours survive `hours_to_json()`, JSON text, and `parse_hours()` unchanged."""
        data = hours_to_json(schedule)
        assert parse_hours(json.loads(json.dumps(data))) == schedule
        assert hours_to_json(parse_hours(data)) == data

    @PROPERTY
    @given(scenario=scenarios(), data=st.data())
    def test_next_opening_is_the_first_open_instant(
        self, scenario: tuple[BusinessHours, datetime], data: st.DataObject
    ) -> None:
        """`next_opening()` is at or after `now`, open, in UTC, and no instant between `now`
        and it is open (sampled, plus the instant just before it); with no answer, no instant
        of the search is open (sampled)."""
        schedule, now = scenario
        opening = next_opening(schedule, now)
        if opening is None:
            span = timedelta(days=365)
        else:
            assert opening >= now
            assert opening.tzinfo is UTC
            assert is_open(schedule, opening)
            span = opening - now
            if span:
                assert not is_open(schedule, opening - TICK)
        if span:
            steps = st.integers(0, span // TICK - 1)
            for step in data.draw(st.lists(steps, max_size=30)):
                assert not is_open(schedule, now + step * TICK)

    @PROPERTY
    @given(scenario=scenarios(), data=st.data())
    def test_closes_at_ends_the_open_stretch(
        self, scenario: tuple[BusinessHours, datetime], data: st.DataObject
    ) -> None:
        """When open, `closes_at()` is after `now`, closed, and every instant before it (sampled)
        is open; when closed there is no closing time."""
        schedule, now = scenario
        closing = closes_at(schedule, now)
        if not is_open(schedule, now):
            assert closing is None
            return
        end = now + timedelta(days=365) if closing is None else closing
        if closing is not None:
            assert closing > now
            assert closing.tzinfo is UTC
            assert not is_open(schedule, closing)
            assert is_open(schedule, closing - TICK)
        steps = st.integers(0, (end - now) // TICK - 1)
        for step in data.draw(st.lists(steps, max_size=30)):
            assert is_open(schedule, now + step * TICK)

    @PROPERTY
    @given(scenario=scenarios(on_quarter_hour=True))
    def test_agrees_with_a_quarter_hour_scan(
        self, scenario: tuple[BusinessHours, datetime]
    ) -> None:
        """In these zones every bound and every clock change falls on a UTC quarter-hour, so
        from a quarter-hour the first open (and, when open, the first closed) quarter-hour of a
        plain scan is the answer, whenever the scan finds one."""
        schedule, now = scenario
        opening = first_quarter_hour(schedule, now, is_open_then=True)
        if opening is not None:
            assert next_opening(schedule, now) == opening
        if is_open(schedule, now):
            closing = first_quarter_hour(schedule, now + QUARTER, is_open_then=False)
            if closing is not None:
                assert closes_at(schedule, now) == closing
