"""The business-time calendar against a brute-force oracle (tests/calendar_oracle.py),
plus named examples a reader can check by hand."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from plugin.calendar import BusinessCalendar
from plugin.model import Window
from calendar_oracle import MINUTE, Oracle, from_us, to_us

ZURICH = ZoneInfo("Europe/Zurich")
ZONES = ["Europe/Zurich", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
WEEKDAYS = range(5)
ALL_DAYS = range(7)


def at(text: str, tz: ZoneInfo = ZURICH) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def hm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def every(days: range, *windows: str) -> dict[int, list[Window]]:
    """{day: [Window]} from "06:00-19:00"-style strings."""
    pairs = [w.split("-") for w in windows]
    return {d: [Window(hm(o), hm(c)) for o, c in pairs] for d in days}


EMAIL = every(ALL_DAYS, "06:00-23:00")
PHONE = every(WEEKDAYS, "06:00-19:00")
ALWAYS = every(ALL_DAYS, "00:00-24:00")


def transitions(zone: str) -> list[int]:
    """UTC minutes (since the epoch) at which the zone's offset changes, 2025-2027."""
    tz = ZoneInfo(zone)
    start = to_us(dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)) // MINUTE
    end = to_us(dt.datetime(2028, 1, 1, tzinfo=dt.timezone.utc)) // MINUTE

    def offset(minute: int) -> dt.timedelta | None:
        return from_us(minute * MINUTE, tz).utcoffset()

    found = []
    for hour in range(start, end, 60):
        if offset(hour) != offset(hour + 60):
            found.append(next(m for m in range(hour + 1, hour + 61) if offset(m) != offset(hour)))
    return found


TRANSITIONS = {zone: transitions(zone) for zone in ZONES}
assert len(TRANSITIONS["Europe/Zurich"]) == 6 and len(TRANSITIONS["Australia/Lord_Howe"]) == 6
assert TRANSITIONS["UTC"] == [] and TRANSITIONS["Asia/Kolkata"] == []
UNIFORM = (to_us(dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)) // MINUTE,
           to_us(dt.datetime(2027, 12, 31, tzinfo=dt.timezone.utc)) // MINUTE)


# --------------------------------------------------------------------------- strategies


@st.composite
def day_windows(draw: st.DrawFn, dense: bool = False) -> list[Window]:
    """0-3 windows for one day: closed, 24 h, on a coarse or fine grid, maybe overlapping."""
    kind = draw(st.sampled_from(["full", "long", "long"] if dense else ["closed", "full", "some", "some", "some"]))
    if kind == "closed":
        return []
    if kind == "full":
        return [Window(0, 1440)]
    grid = draw(st.sampled_from([60, 30, 15, 1]))
    slots = 1440 // grid
    if kind == "long":  # at least 8 hours, plus maybe a touching or separate second window
        o = draw(st.integers(0, slots - 480 // grid))
        c = draw(st.integers(o + 480 // grid, slots))
        extra = draw(st.lists(st.tuples(st.integers(0, slots - 1), st.integers(1, slots)), max_size=1))
        pairs = [(o, c)] + [(a, b) for a, b in extra if a < b]
    elif draw(st.booleans()):  # disjoint, sorted (0-based "24:00" end is likely with coarse grids)
        n = draw(st.integers(1, 3))
        points = sorted(draw(st.lists(st.integers(0, slots), min_size=2 * n, max_size=2 * n, unique=True)))
        pairs = list(zip(points[::2], points[1::2]))
    else:  # independent windows: may overlap or touch
        raw = draw(st.lists(st.tuples(st.integers(0, slots - 1), st.integers(1, slots)), min_size=1, max_size=3))
        pairs = [(a, b) for a, b in raw if a < b] or [(0, slots)]
    return [Window(a * grid, b * grid) for a, b in pairs]


@st.composite
def cases(draw: st.DrawFn, dense: bool = False):
    """(calendar, oracle, start microseconds): a random calendar and a start near a DST
    transition of its zone or uniformly in 2025-2027; closed and special days near the start."""
    zone = draw(st.sampled_from(ZONES))
    tz = ZoneInfo(zone)
    if TRANSITIONS[zone] and draw(st.booleans()):
        minute = draw(st.sampled_from(TRANSITIONS[zone])) + draw(st.integers(-2 * 1440, 2 * 1440))
    else:
        minute = draw(st.integers(*UNIFORM))
    start = minute * MINUTE
    if draw(st.integers(0, 3)) == 0:  # off the minute grid
        start += draw(st.integers(1, MINUTE - 1))
    if dense:
        weekly = {d: draw(day_windows(dense=True)) for d in ALL_DAYS}
        for d in draw(st.lists(st.sampled_from(list(ALL_DAYS)), max_size=2)):
            weekly[d] = []
    else:
        weekly = {d: w for d in ALL_DAYS if (w := draw(day_windows()))}
    local_day = from_us(start, tz).date()
    near = st.integers(-3, 20).map(lambda k: local_day + dt.timedelta(days=k))
    closed = set(draw(st.lists(near, max_size=4 if dense else 6)))
    special = draw(st.dictionaries(near, day_windows(dense=dense) if dense else day_windows(), max_size=3))
    if draw(st.booleans()):  # the callable form of `closed`
        cal = BusinessCalendar(zone, weekly, closed=lambda d: d in closed, special_days=special, name="random")
    else:
        cal = BusinessCalendar(zone, weekly, closed=closed, special_days=special, name="random")
    return cal, Oracle(zone, weekly, closed, special), start


SHORT = st.one_of(st.integers(0, 240), st.integers(0, 3000))
LIMIT = 90 * 1440  # oracle steps: 90 days of minutes


def in_zone(result: dt.datetime, cal: BusinessCalendar) -> None:
    assert result.tzinfo is cal.timezone
    assert result.utcoffset() == result.astimezone(dt.timezone.utc).astimezone(cal.timezone).utcoffset()


def check_add(cal: BusinessCalendar, oracle: Oracle, start_us: int, minutes: int | float | dt.timedelta) -> None:
    start = from_us(start_us, dt.timezone.utc)  # the implementation must not care about the input's zone
    need = minutes // dt.timedelta(microseconds=1) if isinstance(minutes, dt.timedelta) else round(minutes * MINUTE)
    expected = oracle.add(start_us, need, LIMIT)
    try:
        got = cal.add(start, minutes)
    except ValueError:
        assert expected is None, "add raised, but the oracle found a due instant"
        return
    in_zone(got, cal)
    if expected is None:  # beyond the oracle's reach: the result is at least that far
        assert to_us(got) > start_us + (LIMIT - 1) * MINUTE
    else:
        assert to_us(got) == expected, (from_us(expected, cal.timezone), got)
    if need:
        assert cal.open_minutes_between(start, got) * MINUTE == pytest.approx(need, abs=1)
        assert round(cal.open_minutes_between(start, got) * MINUTE) == need


# --------------------------------------------------------------------------- properties

def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@examples(250)
@given(cases(), SHORT)
def test_add_matches_oracle(case, minutes):
    cal, oracle, start = case
    check_add(cal, oracle, start, minutes)


@examples(60)
@given(cases(), st.one_of(st.floats(0, 3000, allow_nan=False), st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=50))))
def test_add_with_fractional_targets_matches_oracle(case, minutes):
    cal, oracle, start = case
    check_add(cal, oracle, start, minutes)


@examples(15)
@given(cases(dense=True), st.one_of(st.sampled_from([3 * 1440, 7 * 1440, 30 * 1440]), st.integers(3000, 30 * 1440)))
def test_add_long_targets_match_oracle(case, minutes):
    cal, oracle, start = case
    check_add(cal, oracle, start, minutes)


@examples(150)
@given(cases(), st.lists(st.integers(0, 4 * 1440 * MINUTE), min_size=1, max_size=5))
def test_is_open_and_next_open_match_oracle(case, offsets):
    cal, oracle, start = case
    for off in offsets:
        x = start + off
        t = from_us(x, cal.timezone)
        assert cal.is_open(t) == oracle.is_open(x), t
        expected = oracle.next_open(x, 40 * 1440)
        try:
            got = cal.next_open(t)
        except ValueError:
            assert expected is None
            continue
        in_zone(got, cal)
        if expected is None:
            assert to_us(got) > x + 40 * 1440 * MINUTE
        else:
            assert to_us(got) == expected, (from_us(expected, cal.timezone), got)


@examples(100)
@given(cases(), st.integers(-MINUTE, 5 * 1440 * MINUTE))
def test_open_minutes_between_and_intervals_match_oracle(case, length):
    cal, oracle, start = case
    a, b = from_us(start, cal.timezone), from_us(start + length, dt.timezone.utc)
    assert round(cal.open_minutes_between(a, b) * MINUTE) == oracle.open_between(start, start + length)
    intervals = cal.open_intervals(a, b)
    assert [(to_us(s), to_us(e)) for s, e in intervals] == oracle.open_intervals(start, start + length)
    for s, e in intervals:
        in_zone(s, cal)
        in_zone(e, cal)


@examples(100)
@given(cases())
def test_a_target_ending_at_closing_is_due_at_closing(case):
    cal, oracle, start = case
    opening = oracle.next_open(start, 30 * 1440)
    assume(opening is not None)
    closing = oracle.next_closing(opening, 30 * 1440)
    assume(closing is not None)
    need = oracle.open_between(start, closing)
    assert to_us(cal.add(from_us(start, cal.timezone), dt.timedelta(microseconds=need))) == closing
    if need % MINUTE == 0:
        assert to_us(cal.add(from_us(start, cal.timezone), need // MINUTE)) == closing


# --------------------------------------------------------------------------- examples


def test_email_calendar_four_hours_from_friday_evening():
    email = BusinessCalendar("Europe/Zurich", EMAIL, name="email")
    # 21:00-23:00 Friday counts 2 h; the other 2 h run from Saturday 06:00.
    assert email.add(at("2026-11-27 21:00"), 240) == at("2026-11-28 08:00")
    assert email.add(at("2026-11-27 21:00"), 240).isoformat() == "2026-11-28T08:00:00+01:00"


def test_phone_calendar_two_hours_from_friday_1830():
    phone = BusinessCalendar("Europe/Zurich", PHONE, name="phone")
    # 30 min Friday, the weekend is closed, 90 min from Monday 06:00.
    assert phone.add(at("2026-11-27 18:30"), 120).isoformat() == "2026-11-30T07:30:00+01:00"


def test_target_reached_at_closing_is_due_at_closing():
    phone = BusinessCalendar("Europe/Zurich", PHONE)
    assert phone.add(at("2026-11-27 18:30"), 30).isoformat() == "2026-11-27T19:00:00+01:00"
    assert phone.add(at("2026-11-27 18:30"), 31).isoformat() == "2026-11-30T06:01:00+01:00"


def test_closed_start_counts_from_next_opening_and_zero_is_next_open():
    phone = BusinessCalendar("Europe/Zurich", PHONE)
    assert phone.add(at("2026-11-28 12:00"), 60).isoformat() == "2026-11-30T07:00:00+01:00"
    assert phone.add(at("2026-11-28 12:00"), 0).isoformat() == "2026-11-30T06:00:00+01:00"
    assert phone.add(at("2026-11-27 12:00:30"), 0) == at("2026-11-27 12:00:30")
    assert phone.next_open(at("2026-11-27 19:00")) == at("2026-11-30 06:00")
    assert phone.is_open(at("2026-11-27 18:59:59")) and not phone.is_open(at("2026-11-27 19:00"))


def test_always_open_across_zurich_spring_forward_counts_real_hours():
    always = BusinessCalendar("Europe/Zurich", ALWAYS)
    # 02:00-03:00 does not exist on 2026-03-29: one real hour after 01:30 CET is 03:30 CEST.
    assert always.add(at("2026-03-29 01:30"), 60).isoformat() == "2026-03-29T03:30:00+02:00"
    assert always.open_minutes_between(at("2026-03-29 00:00"), at("2026-03-30 00:00")) == 23 * 60
    assert always.open_minutes_between(at("2026-10-25 00:00"), at("2026-10-26 00:00")) == 25 * 60


def test_window_in_a_dst_gap_opens_when_the_wall_clock_reaches_it():
    night = BusinessCalendar("Europe/Zurich", every(ALL_DAYS, "02:30-04:00"))
    assert night.next_open(at("2026-03-29 00:00")).isoformat() == "2026-03-29T03:00:00+02:00"
    assert night.open_minutes_between(at("2026-03-29 00:00"), at("2026-03-30 00:00")) == 60


def test_window_in_a_fold_is_open_both_times():
    night = BusinessCalendar("Europe/Zurich", every(ALL_DAYS, "02:00-03:00"))
    # 2026-10-25: the wall clock shows 02:00-03:00 twice (CEST, then CET).
    day = night.open_intervals(at("2026-10-25 00:00"), at("2026-10-26 00:00"))
    assert [(s.isoformat(), e.isoformat()) for s, e in day] == [
        ("2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00")]
    assert night.open_minutes_between(at("2026-10-25 00:00"), at("2026-10-26 00:00")) == 120


def test_lord_howe_half_hour_dst():
    howe = ZoneInfo("Australia/Lord_Howe")
    always = BusinessCalendar(howe, ALWAYS)
    # 2026-10-04 02:00 +10:30 -> 02:30 +11:00: that day has 23.5 hours.
    assert always.open_minutes_between(at("2026-10-04 00:00", howe), at("2026-10-05 00:00", howe)) == 23.5 * 60
    assert always.add(at("2026-10-04 01:45", howe), 30).isoformat() == "2026-10-04T02:45:00+11:00"


def test_windows_across_midnight_merge_into_one_interval():
    night = BusinessCalendar("Europe/Zurich", every(ALL_DAYS, "22:00-24:00", "00:00-06:00"))
    got = night.open_intervals(at("2026-06-01 12:00"), at("2026-06-03 12:00"))
    assert [(s.isoformat(), e.isoformat()) for s, e in got] == [
        ("2026-06-01T22:00:00+02:00", "2026-06-02T06:00:00+02:00"),
        ("2026-06-02T22:00:00+02:00", "2026-06-03T06:00:00+02:00"),
    ]
    assert night.is_open(at("2026-06-02 00:00")) and night.next_open(at("2026-06-02 00:00")) == at("2026-06-02 00:00")
    # New Year's night crosses the index's yearly chunks.
    assert night.add(at("2026-12-31 23:00"), 120).isoformat() == "2027-01-01T01:00:00+01:00"
    assert night.open_intervals(at("2026-12-31 12:00"), at("2027-01-01 12:00"))[0][1] == at("2027-01-01 06:00")


def test_holidays_close_christmas():
    zh = holidays.country_holidays("CH", subdiv="ZH")
    for closed in (zh, lambda d: d in zh):
        phone = BusinessCalendar("Europe/Zurich", PHONE, closed=closed)
        # Thu 24 Dec 18:30: 30 min; Fri 25 (Christmas) and the weekend closed; Mon 28 06:00 + 90 min.
        assert phone.add(at("2026-12-24 18:30"), 120).isoformat() == "2026-12-28T07:30:00+01:00"
        assert not phone.is_open(at("2026-12-25 10:00"))
        assert phone.is_open(at("2026-12-24 10:00"))
    # A year whose holidays were never asked for before (lazy expansion).
    phone = BusinessCalendar("Europe/Zurich", PHONE, closed=holidays.country_holidays("CH", subdiv="ZH"))
    assert phone.next_open(at("2031-12-24 20:00")) == at("2031-12-29 06:00")  # 25, 26 Dec are Thu, Fri


def test_special_days_override_weekly_and_closed():
    christmas = dt.date(2026, 12, 25)
    phone = BusinessCalendar("Europe/Zurich", PHONE, closed={christmas, dt.date(2026, 12, 24)},
                             special_days={christmas: [Window(hm("09:00"), hm("12:00"))],
                                           dt.date(2026, 12, 23): []})
    assert phone.add(at("2026-12-22 18:00"), 120).isoformat() == "2026-12-25T10:00:00+01:00"
    assert phone.open_minutes_between(at("2026-12-21 00:00"), at("2026-12-28 00:00")) == 13 * 60 * 2 + 180


def test_bad_input_raises_value_error():
    phone = BusinessCalendar("Europe/Zurich", PHONE)
    with pytest.raises(ValueError):
        phone.add(dt.datetime(2026, 11, 27, 18, 30), 60)  # naive
    with pytest.raises(ValueError):
        phone.is_open(dt.datetime(2026, 11, 27, 18, 30))
    with pytest.raises(ValueError):
        phone.add(at("2026-11-27 18:30"), -1)
    with pytest.raises(ValueError):
        phone.add(at("2026-11-27 18:30"), float("nan"))
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", {0: [Window(600, 600)]})
    with pytest.raises(ValueError):
        BusinessCalendar("UTC", {7: [Window(0, 60)]})
    never = BusinessCalendar("UTC", {})
    with pytest.raises(ValueError):
        never.next_open(at("2026-01-01 00:00"))
    with pytest.raises(ValueError):
        never.add(at("2026-01-01 00:00"), 1)
    assert never.open_minutes_between(at("2026-01-01 00:00"), at("2027-01-01 00:00")) == 0
    assert never.open_intervals(at("2026-01-01 00:00"), at("2027-01-01 00:00")) == []


def test_sparse_calendar_reaches_targets_years_away():
    once_a_year = BusinessCalendar("UTC", {}, special_days={dt.date(y, 6, 1): [Window(0, 60)] for y in range(2026, 2040)})
    assert once_a_year.add(at("2026-01-01 00:00", ZoneInfo("UTC")), 5 * 60) == at("2030-06-01 01:00", ZoneInfo("UTC"))


def test_cost_does_not_grow_with_the_target():
    phone = BusinessCalendar("Europe/Zurich", PHONE, closed=holidays.country_holidays("CH", subdiv="ZH"))
    start = at("2026-11-27 18:30")
    phone.add(start, 30 * 1440)  # warm the index

    def cost(minutes: int) -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(2000):
                phone.add(start, minutes)
            best = min(best, time.perf_counter() - t0)
        return best

    assert cost(30 * 1440) < 3 * cost(60)
