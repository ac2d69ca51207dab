"""Business hours per skill: when a skill's desk is open, and when it next opens or closes.

Pure: no I/O, no clock, no randomness; `now` is always passed in. The only outside data it reads
is the tz database, through `zoneinfo`. It owns the model (`BusinessHours`), its JSON shape (the
one stored in the database and sent by the admin API: `parse_hours()` and `hours_to_json()`),
and the three questions routing asks of it (`is_open()`, `next_opening()`, `closes_at()`). It
must not decide what happens to a chat that arrives out of hours: that is the routing service's
call. Rules: docs/routing.md#business-hours.

Hours are local wall-clock intervals in an IANA time zone, so "09:00-17:30" means half past five
in Paris all year round, whatever the UTC offset that day. Where the clock jumps:

- Spring forward (a local time that does not exist): a desk whose opening time falls in the gap
  opens at the first instant after it (02:30 on the day Paris skips 02:00-03:00 opens at 03:00).
- Fall back (a local time that happens twice): the desk opens at the first occurrence. Because
  openness is a function of the wall clock, a desk open 02:00-02:30 on that day is open during
  both occurrences, and `next_opening()` after the first one returns the second.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from typing_extensions import override

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = `date.weekday()`
# Limits on what an admin may store, so one schedule cannot make every routing pass slow. Ten
# intervals a day covers split shifts with breaks; 366 dates is a year of holidays.
MAX_INTERVALS_PER_DAY = 10
MAX_HOLIDAYS = 366
# How far `next_opening()` and `closes_at()` look: a year and a few days, so a desk that opens
# once a year (or closes only on a yearly holiday) is still found.
SEARCH_DAYS = 370

MIDNIGHT = time(0, 0)  # as `closes`: 24:00, the end of the day
_MINUTES_PER_DAY = 24 * 60
_SECOND = timedelta(seconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Keys the tz database resolves to the machine's own zone: a schedule must not change meaning
# with the server it runs on.
_MACHINE_ZONES = frozenset({"localtime", "posixrules"})
_FIELDS = ("timezone", "weekly", "holidays")

Interval = tuple[time, time]


class HoursError(ValueError):
    """Business hours that cannot be stored; the message names the field, for the admin."""


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """When a desk is open, in local wall-clock time of `timezone`.

    `weekly` maps a weekday (0 = Monday to 6 = Sunday) to its intervals `(opens, closes)`, open
    from `opens` inclusive to `closes` exclusive; `closes == time(0, 0)` means 24:00. The
    intervals are sorted and do not overlap (they may touch: 09:00-12:00 and 12:00-17:00 is one
    stretch). A day that is absent has no intervals. `holidays` are local dates closed all day.

    Construction validates and normalises: `weekly` becomes a read-only mapping with all seven
    days, each day's intervals sorted, so equal schedules compare equal however they were built.

    Raises:
        HoursError: an unknown time zone, an interval that is empty, reversed or overlaps another,
            a time with seconds or a `tzinfo`, a weekday outside 0..6, a `datetime` among the
            holidays, or more than the limits allow.
    """

    timezone: str
    weekly: Mapping[int, tuple[Interval, ...]]
    holidays: frozenset[date] = frozenset()
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", _zone(self.timezone))
        for day in self.weekly:
            if day not in range(7):
                raise HoursError(f"weekly: unknown weekday {day!r}; expected 0 (Monday) to 6")
        weekly = {
            day: _check_day(day, list(enumerate(self.weekly.get(day, ())))) for day in range(7)
        }
        object.__setattr__(self, "weekly", MappingProxyType(weekly))
        if len(self.holidays) > MAX_HOLIDAYS:
            raise HoursError(f"holidays: more than {MAX_HOLIDAYS} dates ({len(self.holidays)})")
        for holiday in self.holidays:
            if isinstance(holiday, datetime):
                raise HoursError(f"holidays: {holiday.isoformat()} is a datetime, not a date")

    @override
    def __hash__(self) -> int:
        # The generated hash would fail on the mapping proxy; equal hours hash alike.
        return hash((self.timezone, tuple(self.weekly.items()), self.holidays))


def parse_hours(data: Mapping[str, object]) -> BusinessHours:
    """Read business hours from their JSON shape.

    The shape, as stored and as the admin API takes it::

        {"timezone": "Europe/Paris",
         "weekly": {"mon": [["09:00", "17:30"]], "tue": [], ..., "sun": []},
         "holidays": ["2026-12-25"]}

    `timezone` and `weekly` are required; a missing day is closed, missing `holidays` is none.
    Times are "HH:MM" from 00:00 to 23:59, and `closes` may also be "24:00" (the end of the day;
    "00:00" is refused as a closing time because it reads as either end). A day's intervals may
    come in any order; they are stored sorted.

    Args:
        data: The decoded JSON object.

    Returns:
        The validated hours; `hours_to_json()` gives the shape back.

    Raises:
        HoursError: the data breaks one of those rules or `BusinessHours`'s, with a message
            that names the field, such as `weekly.mon[0]: opens 18:00 is not before closes
            09:00`.
    """
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise HoursError(f"unknown field {unknown[0]!r}; expected {', '.join(_FIELDS)}")
    for name in ("timezone", "weekly"):
        if name not in data:
            raise HoursError(f"{name}: required")
    timezone = data["timezone"]
    if not isinstance(timezone, str):
        raise HoursError("timezone: expected a time zone name such as 'Europe/Paris'")
    _zone(timezone)  # before the days, so a bad zone is reported first
    weekly = data["weekly"]
    if not isinstance(weekly, Mapping):
        raise HoursError("weekly: expected an object with the keys mon to sun")
    days: dict[int, tuple[Interval, ...]] = {}
    for key, value in weekly.items():
        if key not in DAY_NAMES:
            raise HoursError(f"weekly: unknown day {key!r}; expected {', '.join(DAY_NAMES)}")
        day = DAY_NAMES.index(key)
        days[day] = _check_day(day, _parse_intervals(f"weekly.{key}", value))
    return BusinessHours(timezone, days, _parse_holidays(data.get("holidays", [])))


def hours_to_json(hours: BusinessHours) -> dict[str, object]:
    """The JSON shape of `hours`, as `parse_hours()` reads it: every day present (closed days
    with `[]`), intervals sorted, a closing midnight written "24:00", holidays sorted."""
    return {
        "timezone": hours.timezone,
        "weekly": {
            name: [
                [_clock(_minutes(opens)), _clock(_closing_minutes(closes))]
                for opens, closes in hours.weekly[day]
            ]
            for day, name in enumerate(DAY_NAMES)
        },
        "holidays": [holiday.isoformat() for holiday in sorted(hours.holidays)],
    }


def is_open(hours: BusinessHours | None, now: datetime) -> bool:
    """Whether the desk is open at `now`.

    Args:
        hours: The desk's hours; None means always open.
        now: Any timezone-aware instant.

    Returns:
        True when, in the desk's time zone, `now` falls on a day that is not a holiday and within
        one of that weekday's intervals (opening time included, closing time excluded).

    Raises:
        ValueError: `now` is naive.
    """
    _check_aware(now)
    return hours is None or _open_at(hours, now)


def next_opening(hours: BusinessHours | None, now: datetime) -> datetime | None:
    """The first instant at or after `now` at which the desk is open.

    Looks `SEARCH_DAYS` days ahead, skipping holidays. A local opening time the clock skips
    (spring forward) opens at the first instant after the gap; an opening time the clock passes
    twice (fall back) opens at the first occurrence.

    Args:
        hours: The desk's hours; None means always open.
        now: Any timezone-aware instant.

    Returns:
        `now` (in UTC) when open now; otherwise the UTC instant it opens; None when it does not
        open within the search (no intervals at all, or every open day a holiday).

    Raises:
        ValueError: `now` is naive.
    """
    _check_aware(now)
    if hours is None or _open_at(hours, now):
        return now.astimezone(UTC)
    if not any(hours.weekly.values()):
        return None  # saves a year of searching for a desk that never opens
    return _next_change(hours, now, to_open=True)


def closes_at(hours: BusinessHours | None, now: datetime) -> datetime | None:
    """When the desk, open at `now`, next closes.

    That is the end of the whole open stretch: an interval ending 24:00 followed by one opening
    at 00:00 the next day (not a holiday), or two intervals that touch, are one stretch.

    Args:
        hours: The desk's hours; None means always open.
        now: Any timezone-aware instant.

    Returns:
        The first UTC instant after `now` at which the desk is closed; None when it is closed
        now, always open (`hours` is None), or stays open throughout the `SEARCH_DAYS` ahead.

    Raises:
        ValueError: `now` is naive.
    """
    _check_aware(now)
    if hours is None or not _open_at(hours, now):
        return None
    return _next_change(hours, now, to_open=False)


# --- validation ---------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        if name in _MACHINE_ZONES:
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: not a normalised relative key ("", "/etc/x", "a/../b") or not a tz file.
        raise HoursError(f"timezone: unknown time zone {name!r}") from None


def _check_day(day: int, intervals: Sequence[tuple[int, Interval]]) -> tuple[Interval, ...]:
    """One day's intervals, sorted, after checking each and that none overlap.

    `intervals` pairs each interval with its index as given, so messages point at the entry the
    admin wrote, not at its place once sorted.
    """
    where = f"weekly.{DAY_NAMES[day]}"
    if len(intervals) > MAX_INTERVALS_PER_DAY:
        raise HoursError(f"{where}: more than {MAX_INTERVALS_PER_DAY} intervals ({len(intervals)})")
    for index, (opens, closes) in intervals:
        at = f"{where}[{index}]"
        if any(t.tzinfo is not None for t in (opens, closes)):
            raise HoursError(f"{at}: times are local wall-clock times, without a tzinfo")
        if any(t.second or t.microsecond for t in (opens, closes)):
            raise HoursError(f"{at}: times are whole minutes")
        if _minutes(opens) >= _closing_minutes(closes):
            raise HoursError(
                f"{at}: opens {_clock(_minutes(opens))}"
                f" is not before closes {_clock(_closing_minutes(closes))}"
            )
    ordered = sorted(intervals, key=lambda item: _minutes(item[1][0]))
    for (first, (opens, closes)), (second, (later_opens, later_closes)) in itertools.pairwise(
        ordered
    ):
        if _minutes(later_opens) < _closing_minutes(closes):
            raise HoursError(
                f"{where}[{second}]: {_span(later_opens, later_closes)} overlaps"
                f" {where}[{first}] {_span(opens, closes)}"
            )
    return tuple(interval for _, interval in ordered)


def _parse_intervals(where: str, value: object) -> list[tuple[int, Interval]]:
    if not isinstance(value, list | tuple):
        raise HoursError(f"{where}: expected a list of [opens, closes] pairs")
    if len(value) > MAX_INTERVALS_PER_DAY:
        raise HoursError(f"{where}: more than {MAX_INTERVALS_PER_DAY} intervals ({len(value)})")
    intervals = []
    for index, pair in enumerate(value):
        at = f"{where}[{index}]"
        match pair:
            case [opens_text, closes_text]:  # a list or tuple of two, never a string
                pass
            case _:
                raise HoursError(f"{at}: expected [opens, closes], such as ['09:00', '17:30']")
        opens = _parse_time(f"{at}: opens", opens_text, allow_end_of_day=False)
        closes = _parse_time(f"{at}: closes", closes_text, allow_end_of_day=True)
        if closes_text == "00:00":
            # As a closing time it reads as either end of the day; 24:00 says which.
            raise HoursError(f"{at}: closes 00:00 is ambiguous; write 24:00 for the end of the day")
        intervals.append((index, (opens, closes)))
    return intervals


def _parse_time(what: str, value: object, *, allow_end_of_day: bool) -> time:
    if allow_end_of_day and value == "24:00":
        return MIDNIGHT
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        latest = "24:00" if allow_end_of_day else "23:59"
        raise HoursError(f"{what} {value!r} is not a time HH:MM from 00:00 to {latest}")
    return time(int(match[1]), int(match[2]))


def _parse_holidays(value: object) -> frozenset[date]:
    if not isinstance(value, list | tuple):
        raise HoursError("holidays: expected a list of dates YYYY-MM-DD")
    if len(value) > MAX_HOLIDAYS:
        raise HoursError(f"holidays: more than {MAX_HOLIDAYS} dates ({len(value)})")
    holidays = set()
    for index, text in enumerate(value):
        holiday = _parse_date(text)
        if holiday is None:
            raise HoursError(f"holidays[{index}]: {text!r} is not a date YYYY-MM-DD")
        holidays.add(holiday)
    return frozenset(holidays)


def _parse_date(text: object) -> date | None:
    # The pattern first: `fromisoformat` also takes "20261225" and "2026-W52-5".
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2026-02-30
        return None


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _closing_minutes(t: time) -> int:
    return _MINUTES_PER_DAY if t == MIDNIGHT else _minutes(t)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _span(opens: time, closes: time) -> str:
    return f"{_clock(_minutes(opens))}-{_clock(_closing_minutes(closes))}"


def _check_aware(now: datetime) -> None:
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now.isoformat()}")


# --- time ----------------------------------------------------------------------------------


def _open_at(hours: BusinessHours, instant: datetime) -> bool:
    local = instant.astimezone(hours.zone)
    if local.date() in hours.holidays:
        return False
    wall = local.time()
    return any(
        opens <= wall and (closes == MIDNIGHT or wall < closes)
        for opens, closes in hours.weekly[local.weekday()]
    )


def _next_change(hours: BusinessHours, now: datetime, *, to_open: bool) -> datetime | None:
    """The first UTC instant after `now` at which `_open_at` is `to_open`, within the search.

    Openness follows the wall clock and each interval includes its start, so from any instant
    it stays the same for a while, and it can change only where the wall clock reaches an
    interval's bound or midnight, or jumps (a change of UTC offset). `_changes()` lists those
    instants for one local date, and some extra ones; the answer is the earliest listed instant
    with the wanted openness, which extra instants cannot undercut (they are checked like the
    others). Dates are visited in order, and every instant listed for a date precedes every one
    listed two dates later (clocks jump by less than a day), so once a date yields a match the
    next date is the last that can hold an earlier one.
    """
    today = now.astimezone(hours.zone).date()
    found: datetime | None = None
    # From the day before: a fall-back across midnight (St. John's until 2010: Sunday 00:01 back
    # to Saturday 23:01) shows the previous date again after `now`.
    for day in (today + timedelta(days=n) for n in range(-1, SEARCH_DAYS + 1)):
        match = next(
            (
                instant
                for instant in sorted(_changes(hours, day))
                if instant > now and _open_at(hours, instant) is to_open
            ),
            None,
        )
        if found is not None:
            return found if match is None else min(found, match)
        found = match
    return found


def _changes(hours: BusinessHours, day: date) -> set[datetime]:
    """The instants at which openness may change on local date `day`, in UTC.

    These are the instants the wall clock reaches midnight (where the weekday and any holiday
    begin) and each bound of the day's intervals, plus any change of UTC offset between this
    midnight and the next (a fall-back can land the clock inside an interval).
    """
    zone = hours.zone
    changes = _reaches(zone, day, MIDNIGHT)
    for opens, closes in hours.weekly[day.weekday()]:
        changes |= _reaches(zone, day, opens)
        if closes != MIDNIGHT:  # 24:00 is the next day's midnight, listed with that day
            changes |= _reaches(zone, day, closes)
    start = datetime.combine(day, MIDNIGHT, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), MIDNIGHT, tzinfo=zone).astimezone(UTC)
    if start.astimezone(zone).utcoffset() != end.astimezone(zone).utcoffset():
        changes.add(_offset_change(zone, start, end))
    return changes


def _reaches(zone: ZoneInfo, day: date, wall: time) -> set[datetime]:
    """The UTC instants at which the wall clock in `zone` shows `wall` on `day`: one as a rule,
    two when the clock shows it twice (fall back). When the clock skips `wall` (spring forward),
    PEP 495 maps it to an instant on either side of the gap instead; those are harmless extra
    candidates, and the jump itself is listed by `_changes()` as a change of offset."""
    return {
        datetime.combine(day, wall.replace(fold=fold), tzinfo=zone).astimezone(UTC)
        for fold in (0, 1)
    }


def _offset_change(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The instant in (before, after] at which `zone` takes the UTC offset it has at `after`.

    A binary search over whole seconds, which is where the tz database puts every change; it
    assumes one change in the range (the ranges here are a day at most, and no zone changes
    offset twice in a day).
    """
    target = after.astimezone(zone).utcoffset()
    low, high = (before - _EPOCH) // _SECOND, (after - _EPOCH) // _SECOND
    while high - low > 1:
        middle = (low + high) // 2
        if (_EPOCH + middle * _SECOND).astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return _EPOCH + high * _SECOND
