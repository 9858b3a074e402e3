"""Tests for flowdeck.schedules: DST behaviour, validation, proto and dict forms."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from flowdeck.schedules import (
    MAX_TIMES,
    CronSchedule,
    IntervalSchedule,
    InvalidSchedule,
    RRuleSchedule,
    Schedule,
    schedule_from_dict,
    schedule_from_proto,
)
from flowdeck.v1 import common_pb2

UTC = timezone.utc
HOUR = timedelta(hours=1)

# zone, spring-forward day, autumn fall-back day, a nonexistent and an
# ambiguous local time on those days (2024).
ZONES = [
    pytest.param("Europe/Berlin", datetime(2024, 3, 31), datetime(2024, 10, 27), (2, 30), (2, 30), id="berlin"),
    pytest.param("America/New_York", datetime(2024, 3, 10), datetime(2024, 11, 3), (2, 30), (1, 30), id="new_york"),
]


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)


def around(zone: str, day: datetime, days: int = 3) -> tuple[datetime, datetime]:
    """Start and end of a window of ``days`` local days either side of ``day``."""
    tz = ZoneInfo(zone)
    return (day - timedelta(days=days)).replace(tzinfo=tz), (day + timedelta(days=days + 1)).replace(tzinfo=tz)


def utc_gaps(times: list[datetime]) -> list[timedelta]:
    return [b.astimezone(UTC) - a.astimezone(UTC) for a, b in zip(times, times[1:])]


# --- cron ------------------------------------------------------------------


@pytest.mark.parametrize("zone, spring, autumn, missing, ambiguous", ZONES)
@pytest.mark.parametrize("season", ["spring", "autumn"])
def test_cron_daily_nine_keeps_local_time_across_dst(zone, spring, autumn, missing, ambiguous, season):
    day = spring if season == "spring" else autumn
    start, end = around(zone, day)
    times = CronSchedule(cron="0 9 * * *", timezone=zone).next_times(start, until=end)
    assert len(times) == 7
    assert [t.date() for t in times] == [(day + timedelta(days=i)).date() for i in range(-3, 4)]
    for t in times:
        assert t.tzinfo == ZoneInfo(zone)
        assert (t.hour, t.minute) == (9, 0)
    gaps = utc_gaps(times)
    # the night of the change is one hour shorter (spring) or longer (autumn)
    expected = timedelta(hours=23) if season == "spring" else timedelta(hours=25)
    assert gaps[2] == expected
    assert all(g == timedelta(days=1) for i, g in enumerate(gaps) if i != 2)


@pytest.mark.parametrize("zone, spring, autumn, missing, ambiguous", ZONES)
def test_cron_nonexistent_local_time_is_skipped(zone, spring, autumn, missing, ambiguous):
    h, m = missing
    start, end = around(zone, spring)
    times = CronSchedule(cron=f"{m} {h} * * *", timezone=zone).next_times(start, until=end)
    dates = [t.date() for t in times]
    assert spring.date() not in dates
    assert len(times) == 6
    assert all((t.hour, t.minute) == (h, m) for t in times)


@pytest.mark.parametrize("zone, spring, autumn, missing, ambiguous", ZONES)
def test_cron_ambiguous_local_time_fires_once_at_first_occurrence(zone, spring, autumn, missing, ambiguous):
    h, m = ambiguous
    start, end = around(zone, autumn)
    times = CronSchedule(cron=f"{m} {h} * * *", timezone=zone).next_times(start, until=end)
    assert len(times) == 7
    assert len({t.date() for t in times}) == 7
    on_day = [t for t in times if t.date() == autumn.date()]
    assert len(on_day) == 1
    # the first occurrence still has the summer offset
    first = local(zone, autumn.year, autumn.month, autumn.day, h, m, fold=0)
    assert on_day[0].utcoffset() == first.utcoffset() == local(zone, 2024, 7, 1).utcoffset()
    assert on_day[0].astimezone(UTC) == first.astimezone(UTC)


@pytest.mark.parametrize("zone, spring, autumn, missing, ambiguous", ZONES)
def test_cron_hourly_never_repeats_or_goes_backwards(zone, spring, autumn, missing, ambiguous):
    for day in (spring, autumn):
        start, end = around(zone, day, days=1)
        times = CronSchedule(cron="0 * * * *", timezone=zone).next_times(start, until=end)
        utc = [t.astimezone(UTC) for t in times]
        assert utc == sorted(set(utc))
        walls = [t.replace(tzinfo=None) for t in times]
        assert len(walls) == len(set(walls))


def test_cron_start_is_inclusive_and_until_exclusive():
    s = CronSchedule(cron="0 9 * * *", timezone="Europe/Berlin")
    start = local("Europe/Berlin", 2024, 5, 1, 9)
    times = s.next_times(start, until=local("Europe/Berlin", 2024, 5, 3, 9))
    assert times == [start, local("Europe/Berlin", 2024, 5, 2, 9)]
    # a start one microsecond later excludes the first one
    assert s.next_times(start + timedelta(microseconds=1), count=1) == [local("Europe/Berlin", 2024, 5, 2, 9)]


def test_cron_weekdays_and_day_or():
    s = CronSchedule(cron="0 9 * * 1-5", timezone="Europe/Berlin")
    times = s.next_times(local("Europe/Berlin", 2024, 5, 4), count=5)  # a Saturday
    assert [t.weekday() for t in times] == [0, 1, 2, 3, 4]

    start = datetime(2024, 1, 1, tzinfo=UTC)
    either = CronSchedule(cron="0 0 1 * MON", day_or=True).next_times(start, until=datetime(2024, 3, 1, tzinfo=UTC))
    both = CronSchedule(cron="0 0 1 * MON", day_or=False).next_times(start, count=2)
    assert len(either) > 3  # every Monday plus every 1st
    assert all(t.day == 1 and t.weekday() == 0 for t in both)
    assert both[0] == datetime(2024, 1, 1, tzinfo=UTC)
    assert both[1] == datetime(2024, 4, 1, tzinfo=UTC)


def test_cron_without_timezone_is_utc_and_naive_start_is_utc():
    s = CronSchedule(cron="*/15 * * * *")
    times = s.next_times(datetime(2024, 1, 1, 10, 5), count=3)
    assert times == [datetime(2024, 1, 1, 10, m, tzinfo=UTC) for m in (15, 30, 45)]
    assert all(t.utcoffset() == timedelta(0) for t in times)


def test_cron_start_in_other_zone():
    s = CronSchedule(cron="0 9 * * *", timezone="America/New_York")
    # 13:30 UTC on 2024-07-01 is 09:30 in New York: today's 09:00 has passed
    times = s.next_times(datetime(2024, 7, 1, 13, 30, tzinfo=UTC), count=1)
    assert times == [local("America/New_York", 2024, 7, 2, 9)]


# --- interval --------------------------------------------------------------


@pytest.mark.parametrize("zone, spring, autumn, missing, ambiguous", ZONES)
@pytest.mark.parametrize("season", ["spring", "autumn"])
def test_one_day_interval_keeps_wall_clock_time(zone, spring, autumn, missing, ambiguous, season):
    day = spring if season == "spring" else autumn
    s = IntervalSchedule(interval=timedelta(days=1), anchor_date=local(zone, 2024, 1, 1, 9), timezone=zone)
    start, end = around(zone, day)
    times = s.next_times(start, until=end)
    assert len(times) == 7
    assert all((t.hour, t.minute) == (9, 0) for t in times)
    assert [t.date() for t in times] == [(day + timedelta(days=i)).date() for i in range(-3, 4)]
    assert sorted(set(utc_gaps(times))) == sorted(
        {timedelta(days=1), timedelta(hours=23) if season == "spring" else timedelta(hours=25)}
    )


@pytest.mark.parametrize("zone, spring, autumn, missing, ambiguous", ZONES)
def test_one_day_interval_at_nonexistent_time_shifts_forward(zone, spring, autumn, missing, ambiguous):
    h, m = missing
    s = IntervalSchedule(interval=timedelta(days=1), anchor_date=datetime(2024, 1, 1, h, m), timezone=zone)
    start, end = around(zone, spring)
    times = s.next_times(start, until=end)
    assert len(times) == 7
    for t in times:
        if t.date() == spring.date():
            assert (t.hour, t.minute) == (h + 1, m)  # moved forward by the one hour gap
        else:
            assert (t.hour, t.minute) == (h, m)
    assert times == sorted(times)


@pytest.mark.parametrize("zone, spring, autumn, missing, ambiguous", ZONES)
def test_one_day_interval_at_ambiguous_time_fires_once(zone, spring, autumn, missing, ambiguous):
    h, m = ambiguous
    s = IntervalSchedule(interval=86400, anchor_date=datetime(2024, 1, 1, h, m), timezone=zone)
    start, end = around(zone, autumn)
    times = s.next_times(start, until=end)
    assert len(times) == 7
    assert len({t.date() for t in times}) == 7
    assert all((t.hour, t.minute) == (h, m) for t in times)


@pytest.mark.parametrize("zone, spring, autumn, missing, ambiguous", ZONES)
@pytest.mark.parametrize("season", ["spring", "autumn"])
def test_one_hour_interval_is_exact_elapsed_time(zone, spring, autumn, missing, ambiguous, season):
    day = spring if season == "spring" else autumn
    s = IntervalSchedule(interval=timedelta(hours=1), timezone=zone)
    start, end = around(zone, day, days=1)
    times = s.next_times(start, until=end)
    assert times and all(g == timedelta(seconds=3600) for g in utc_gaps(times))
    # 3 local days of 24 hours, one of which is 23 or 25 hours long
    assert len(times) == (71 if season == "spring" else 73)
    on_day = [t for t in times if t.date() == day.date()]
    hours = [t.hour for t in on_day]
    if season == "spring":
        assert len(on_day) == 23 and 2 not in hours
    else:
        assert len(on_day) == 25
        repeated = ambiguous[0]
        assert hours.count(repeated) == 2
        a, b = [t for t in on_day if t.hour == repeated]
        assert (a.fold, b.fold) == (0, 1)
        assert b.astimezone(UTC) - a.astimezone(UTC) == HOUR


def test_interval_default_anchor_is_2020_in_the_zone():
    s = IntervalSchedule(interval=timedelta(days=1))
    assert s.anchor_date == datetime(2020, 1, 1, tzinfo=UTC)
    b = IntervalSchedule(interval=3600, timezone="Europe/Berlin")
    assert b.anchor_date == local("Europe/Berlin", 2020, 1, 1)
    assert b.anchor_date.tzinfo == ZoneInfo("Europe/Berlin")
    assert b.interval == timedelta(hours=1)
    assert b.whole_days is False and s.whole_days is True


def test_interval_anchor_naive_is_local_and_aware_is_converted():
    s = IntervalSchedule(interval=60, anchor_date=datetime(2024, 6, 1, 9), timezone="Europe/Berlin")
    assert s.anchor_date == datetime(2024, 6, 1, 7, tzinfo=UTC)
    a = IntervalSchedule(interval=60, anchor_date=datetime(2024, 6, 1, 7, tzinfo=UTC), timezone="Europe/Berlin")
    assert a.anchor_date.tzinfo == ZoneInfo("Europe/Berlin")
    assert a.anchor_date.hour == 9
    assert a == s


def test_interval_times_before_the_anchor_follow_the_same_grid():
    anchor = datetime(2030, 1, 1, 0, 7, tzinfo=UTC)
    s = IntervalSchedule(interval=timedelta(minutes=15), anchor_date=anchor)
    times = s.next_times(datetime(2024, 1, 1, tzinfo=UTC), count=3)
    assert [(t.hour, t.minute) for t in times] == [(0, 7), (0, 22), (0, 37)]


def test_interval_far_from_anchor_is_computed_arithmetically():
    # one second intervals eighty years after the anchor: stepping from 2020
    # would take billions of iterations
    s = IntervalSchedule(interval=1)
    start = datetime(2100, 5, 5, 5, 5, 5, 500_000, tzinfo=UTC)
    times = s.next_times(start, count=3)
    assert times == [datetime(2100, 5, 5, 5, 5, sec, tzinfo=UTC) for sec in (6, 7, 8)]
    week = IntervalSchedule(interval=timedelta(days=7), timezone="America/New_York")
    t = week.next_times(datetime(2500, 1, 1, tzinfo=UTC), count=2)
    assert [x.weekday() for x in t] == [2, 2]  # 2020-01-01 was a Wednesday
    assert (t[0].hour, t[0].minute) == (0, 0)


def test_interval_until_only_and_count_limits():
    s = IntervalSchedule(interval=600)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert len(s.next_times(start, until=start + HOUR)) == 6
    assert len(s.next_times(start, count=4)) == 4
    assert len(s.next_times(start, count=100, until=start + HOUR)) == 6
    assert len(s.next_times(start, count=2, until=start + HOUR)) == 2
    assert s.next_times(start, count=0) == []
    assert s.next_times(start, until=start) == []
    assert len(s.next_times(start, until=start + timedelta(days=365))) == MAX_TIMES
    assert len(s.next_times(start, count=MAX_TIMES + 5)) == MAX_TIMES
    with pytest.raises(ValueError):
        s.next_times(start)
    with pytest.raises(ValueError):
        s.next_times(start, count=-1)


# --- rrule -----------------------------------------------------------------


def test_rrule_weekly_with_timezone_keeps_local_time_across_dst():
    s = RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0;BYSECOND=0", timezone="America/New_York")
    times = s.next_times(local("America/New_York", 2024, 3, 1), count=6)
    assert [t.date().isoformat() for t in times] == [
        "2024-03-04", "2024-03-06", "2024-03-11", "2024-03-13", "2024-03-18", "2024-03-20",
    ]
    assert all((t.hour, t.minute, t.second) == (9, 0, 0) for t in times)
    assert all(t.tzinfo == ZoneInfo("America/New_York") for t in times)
    assert times[1].utcoffset() == timedelta(hours=-5)
    assert times[2].utcoffset() == timedelta(hours=-4)


def test_rrule_without_dtstart_starts_2020_local_and_without_timezone_is_utc():
    # no BYDAY: weekly on DTSTART's weekday; 2020-01-01 was a Wednesday
    s = RRuleSchedule(rrule="FREQ=WEEKLY")
    times = s.next_times(datetime(2024, 5, 1, tzinfo=UTC), count=2)
    assert times == [datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 8, tzinfo=UTC)]
    b = RRuleSchedule(rrule="RRULE:FREQ=DAILY", timezone="Europe/Berlin")
    t = b.next_times(datetime(2024, 7, 1, tzinfo=UTC), count=1)
    assert t == [local("Europe/Berlin", 2024, 7, 2)]


def test_rrule_dtstart_tzid_and_until():
    s = RRuleSchedule(rrule="DTSTART;TZID=America/New_York:20240101T090000\nRRULE:FREQ=DAILY;COUNT=3")
    assert s.tzinfo() == ZoneInfo("America/New_York")
    times = s.next_times(datetime(2023, 1, 1, tzinfo=UTC), count=10)
    assert times == [local("America/New_York", 2024, 1, d, 9) for d in (1, 2, 3)]
    u = RRuleSchedule(rrule="FREQ=DAILY;UNTIL=20240103T000000Z", timezone="Europe/Berlin")
    got = u.next_times(datetime(2023, 12, 30, tzinfo=UTC), count=10)
    # UNTIL 00:00Z is 01:00 in Berlin, so local midnight of Jan 3 is included
    assert got == [local("Europe/Berlin", 2023, 12, 31)] + [local("Europe/Berlin", 2024, 1, d) for d in (1, 2, 3)]


def test_rrule_nonexistent_time_is_shifted_forward_and_times_stay_sorted():
    s = RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30;BYSECOND=0", timezone="Europe/Berlin")
    times = s.next_times(local("Europe/Berlin", 2024, 3, 30), count=3)
    assert [(t.day, t.hour, t.minute) for t in times] == [(30, 2, 30), (31, 3, 30), (1, 2, 30)]
    m = RRuleSchedule(rrule="FREQ=MINUTELY;INTERVAL=20", timezone="Europe/Berlin")
    times = m.next_times(local("Europe/Berlin", 2024, 3, 31, 1, 30), count=8)
    utc = [t.astimezone(UTC) for t in times]
    assert utc == sorted(set(utc))
    assert [(t.hour, t.minute) for t in times] == [(1, 40), (3, 0), (3, 20), (3, 40), (4, 0), (4, 20), (4, 40), (5, 0)]


# --- validation ------------------------------------------------------------


@pytest.mark.parametrize(
    "make, field, value",
    [
        (lambda: IntervalSchedule(interval=0), "schedule.interval.interval", timedelta(0)),
        (lambda: IntervalSchedule(interval=-60), "schedule.interval.interval", timedelta(seconds=-60)),
        (lambda: IntervalSchedule(interval=timedelta(0)), "schedule.interval.interval", timedelta(0)),
        (lambda: IntervalSchedule(interval="soon"), "schedule.interval.interval", "soon"),
        (lambda: IntervalSchedule(interval=60, timezone="Mars/Olympus"), "schedule.interval.timezone", "Mars/Olympus"),
        (lambda: CronSchedule(cron="61 * * * *"), "schedule.cron.cron", "61 * * * *"),
        (lambda: CronSchedule(cron="not a cron"), "schedule.cron.cron", "not a cron"),
        (lambda: CronSchedule(cron=""), "schedule.cron.cron", ""),
        (lambda: CronSchedule(cron="0 9 * * *", timezone="Europe/Nowhere"), "schedule.cron.timezone", "Europe/Nowhere"),
        (lambda: RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=XX"), "schedule.rrule.rrule", "FREQ=WEEKLY;BYDAY=XX"),
        (lambda: RRuleSchedule(rrule="garbage"), "schedule.rrule.rrule", "garbage"),
        (lambda: RRuleSchedule(rrule="BYDAY=MO"), "schedule.rrule.rrule", "BYDAY=MO"),
        (lambda: RRuleSchedule(rrule=""), "schedule.rrule.rrule", ""),
        (lambda: RRuleSchedule(rrule="FREQ=DAILY", timezone="Nope/Nope"), "schedule.rrule.timezone", "Nope/Nope"),
        (lambda: CronSchedule(cron="* * * * *", every="day"), "schedule.cron.every", "day"),
        (lambda: CronSchedule(), "schedule.cron.cron", None),
    ],
)
def test_validation_raises_invalid_schedule(make, field, value):
    with pytest.raises(InvalidSchedule) as info:
        make()
    err = info.value
    assert type(err) is InvalidSchedule
    assert not isinstance(err, ValidationError)
    assert isinstance(err, ValueError)
    assert err.field == field
    assert err.value == value
    assert str(err).startswith(f"invalid {field} ")


def test_invalid_schedule_message():
    with pytest.raises(InvalidSchedule) as info:
        CronSchedule(cron="61 * * * *")
    assert str(info.value).startswith("invalid schedule.cron.cron '61 * * * *': ")
    assert info.value.reason
    with pytest.raises(InvalidSchedule, match=r"invalid schedule.interval.interval 0s: must be greater than zero"):
        IntervalSchedule(interval=0)


def test_model_validate_also_raises_invalid_schedule():
    with pytest.raises(InvalidSchedule) as info:
        IntervalSchedule.model_validate({"interval": -1})
    assert info.value.field == "schedule.interval.interval"
    with pytest.raises(InvalidSchedule):
        CronSchedule.model_validate_json('{"cron": "99 * * * *"}')
    assert CronSchedule.model_validate({"cron": "@daily"}).cron == "@daily"


def test_schedules_are_frozen_and_hashable():
    s = CronSchedule(cron="0 9 * * *", timezone="Europe/Berlin")
    with pytest.raises(ValidationError):
        s.cron = "bad"  # type: ignore[misc]
    assert len({s, CronSchedule(cron="0 9 * * *", timezone="Europe/Berlin")}) == 1
    assert CronSchedule(cron="0 9 * * *", timezone="").timezone is None


# --- proto -----------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        IntervalSchedule(interval=timedelta(hours=1, microseconds=5)),
        IntervalSchedule(interval=timedelta(days=1), anchor_date=datetime(2024, 3, 1, 9), timezone="Europe/Berlin"),
        CronSchedule(cron="0 9 * * 1-5", timezone="Europe/Berlin"),
        CronSchedule(cron="0 0 1 * MON", day_or=False),
        RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO,WE", timezone="America/New_York"),
        RRuleSchedule(rrule="FREQ=DAILY"),
    ],
    ids=lambda s: type(s).__name__,
)
def test_proto_round_trip(schedule: Schedule):
    pb = schedule.to_proto()
    assert isinstance(pb, common_pb2.Schedule)
    assert pb.WhichOneof("kind") == schedule.kind
    wire = common_pb2.Schedule.FromString(pb.SerializeToString())
    back = schedule_from_proto(wire)
    assert back == schedule
    assert type(back) is type(schedule)
    assert back.to_dict() == schedule.to_dict()
    start = datetime(2024, 3, 1, tzinfo=UTC)
    assert back.next_times(start, count=5) == schedule.next_times(start, count=5)


def test_proto_fields():
    pb = IntervalSchedule(interval=90, timezone="Europe/Berlin").to_proto()
    assert pb.interval.interval.seconds == 90
    assert pb.interval.anchor_date.ToDatetime(tzinfo=UTC) == datetime(2019, 12, 31, 23, tzinfo=UTC)
    assert pb.interval.timezone == "Europe/Berlin"
    assert IntervalSchedule(interval=90).to_proto().interval.timezone == ""
    c = CronSchedule(cron="0 9 * * *").to_proto()
    assert c.cron.HasField("day_or") and c.cron.day_or is True


def test_schedule_from_proto_defaults_and_errors():
    assert schedule_from_proto(common_pb2.Schedule()) is None
    pb = common_pb2.Schedule(cron=common_pb2.CronSchedule(cron="0 9 * * *"))
    s = schedule_from_proto(pb)
    assert s == CronSchedule(cron="0 9 * * *", timezone=None, day_or=True)
    pb = common_pb2.Schedule(interval=common_pb2.IntervalSchedule(timezone="Europe/Berlin"))
    with pytest.raises(InvalidSchedule) as info:
        schedule_from_proto(pb)
    assert info.value.field == "schedule.interval.interval"
    pb = common_pb2.Schedule(rrule=common_pb2.RRuleSchedule(rrule="FREQ=DAILY", timezone="Bad/Zone"))
    with pytest.raises(InvalidSchedule) as info:
        schedule_from_proto(pb)
    assert info.value.field == "schedule.rrule.timezone"


# --- dict / YAML forms -----------------------------------------------------


def test_schedule_from_dict_yaml_forms():
    i = schedule_from_dict({"interval": 3600})
    assert i == IntervalSchedule(interval=timedelta(hours=1))
    i2 = schedule_from_dict({"interval": 86400, "anchor_date": "2024-01-01T09:00:00", "timezone": "Europe/Berlin"})
    assert isinstance(i2, IntervalSchedule)
    assert i2.anchor_date == local("Europe/Berlin", 2024, 1, 1, 9)
    assert schedule_from_dict({"interval": "PT1H"}).interval == HOUR
    assert schedule_from_dict({"interval": "90"}).interval == timedelta(seconds=90)
    c = schedule_from_dict({"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin", "day_or": True})
    assert c == CronSchedule(cron="0 9 * * 1-5", timezone="Europe/Berlin")
    assert schedule_from_dict({"cron": "0 9 * * *", "day_or": None}).day_or is True
    assert schedule_from_dict({"cron": "0 9 * * *", "day_or": False}).day_or is False
    r = schedule_from_dict({"rrule": "FREQ=WEEKLY;BYDAY=MO"})
    assert r == RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO")
    assert schedule_from_dict({"rrule": "FREQ=DAILY", "timezone": "UTC"}).timezone == "UTC"
    assert schedule_from_dict(c) is c


@pytest.mark.parametrize(
    "d, field, value",
    [
        ({"cron": "0 9 * * *", "tz": "Europe/Berlin"}, "schedule.cron.tz", "Europe/Berlin"),
        ({"interval": 60, "every": 5}, "schedule.interval.every", 5),
        ({"rrule": "FREQ=DAILY", "day_or": True}, "schedule.rrule.day_or", True),
        ({"interval": 0}, "schedule.interval.interval", timedelta(0)),
        ({"interval": True}, "schedule.interval.interval", True),
        ({"cron": "bad"}, "schedule.cron.cron", "bad"),
        ({"cron": 5}, "schedule.cron.cron", 5),
        ({"cron": "0 9 * * *", "timezone": "Nowhere"}, "schedule.cron.timezone", "Nowhere"),
        ({"interval": 60, "anchor_date": "yesterday"}, "schedule.interval.anchor_date", "yesterday"),
        ({}, "schedule", {}),
        ({"timezone": "UTC"}, "schedule", {"timezone": "UTC"}),
        ({"cron": "0 9 * * *", "interval": 60}, "schedule", {"cron": "0 9 * * *", "interval": 60}),
        ("0 9 * * *", "schedule", "0 9 * * *"),
        ({1: 2}, "schedule.1", 2),
    ],
)
def test_schedule_from_dict_errors(d, field, value):
    with pytest.raises(InvalidSchedule) as info:
        schedule_from_dict(d)
    assert info.value.field == field
    assert info.value.value == value


def test_unknown_key_is_named_in_message():
    with pytest.raises(InvalidSchedule, match="unknown key 'tz'"):
        schedule_from_dict({"cron": "0 9 * * *", "tz": "Europe/Berlin"})


def test_to_dict_is_json_able_and_round_trips():
    i = IntervalSchedule(interval=timedelta(minutes=90), anchor_date=datetime(2024, 1, 1, 9), timezone="Europe/Berlin")
    assert i.to_dict() == {"interval": 5400.0, "anchor_date": "2024-01-01T09:00:00+01:00", "timezone": "Europe/Berlin"}
    assert IntervalSchedule(interval=60).to_dict() == {
        "interval": 60.0, "anchor_date": "2020-01-01T00:00:00+00:00", "timezone": None,
    }
    c = CronSchedule(cron="0 9 * * 1-5", timezone="Europe/Berlin", day_or=False)
    assert c.to_dict() == {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin", "day_or": False}
    r = RRuleSchedule(rrule="FREQ=DAILY")
    assert r.to_dict() == {"rrule": "FREQ=DAILY", "timezone": None}
    for s in (i, c, r):
        assert schedule_from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_import_is_cheap():
    code = (
        "import sys, flowdeck.schedules\n"
        "bad = [m for m in ('grpc', 'sqlalchemy', 'croniter', 'dateutil') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- properties ------------------------------------------------------------

PROP_ZONES = [None, "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia"]
moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.integers(min_value=1, max_value=86_399),
    micros=st.integers(min_value=0, max_value=999_999),
    anchor=moments,
    start=moments,
    zone=st.sampled_from(PROP_ZONES),
    count=st.integers(min_value=1, max_value=60),
)
def test_property_sub_day_interval(seconds, micros, anchor, start, zone, count):
    interval = timedelta(seconds=seconds, microseconds=micros)
    s = IntervalSchedule(interval=interval, anchor_date=anchor, timezone=zone)
    times = s.next_times(start, count=count)
    assert len(times) == count
    assert times[0] >= start
    assert times[0].astimezone(UTC) - interval < start  # nothing skipped before the first
    assert all(b > a for a, b in zip(times, times[1:]))
    assert all(g == interval for g in utc_gaps(times))
    assert (times[0] - anchor) % interval == timedelta(0)
    assert all(t.tzinfo == s.tzinfo() for t in times)


@settings(max_examples=150, deadline=None)
@given(
    days=st.integers(min_value=1, max_value=40),
    anchor=moments,
    start=moments,
    zone=st.sampled_from(PROP_ZONES),
    count=st.integers(min_value=1, max_value=40),
)
def test_property_whole_day_interval(days, anchor, start, zone, count):
    s = IntervalSchedule(interval=timedelta(days=days), anchor_date=anchor, timezone=zone)
    times = s.next_times(start, count=count)
    assert len(times) == count
    assert times[0] >= start
    assert all(b > a for a, b in zip(times, times[1:]))
    wall = s.anchor_date.time()
    # the local wall time is kept (unless it does not exist that day)
    kept = [t for t in times if t.time() == wall]
    assert len(kept) >= count - 2
    # local calendar days step by ``days`` unless a day was skipped entirely
    for a, b in zip(times, times[1:]):
        if a.time() == wall and b.time() == wall:
            assert (b.date() - a.date()).days == days or zone == "Pacific/Apia"


@settings(max_examples=100, deadline=None)
@given(
    start=moments,
    zone=st.sampled_from(PROP_ZONES),
    minute=st.integers(min_value=0, max_value=59),
    hour=st.integers(min_value=0, max_value=23),
)
def test_property_cron_daily_once_per_local_day(start, zone, minute, hour):
    s = CronSchedule(cron=f"{minute} {hour} * * *", timezone=zone)
    times = s.next_times(start, count=10)
    assert times[0] >= start
    assert all(b > a for a, b in zip(times, times[1:]))
    assert all((t.hour, t.minute) == (hour, minute) for t in times)
    assert len({t.date() for t in times}) == len(times)


def test_start_given_in_the_same_zone_with_fold_is_respected():
    ny = "America/New_York"
    second = local(ny, 2024, 11, 3, 1, 30, fold=1)  # 01:30 EST, after 01:30 EDT
    hourly = CronSchedule(cron="0 * * * *", timezone=ny)
    assert hourly.next_times(second, count=1) == [local(ny, 2024, 11, 3, 2)]
    at_130 = CronSchedule(cron="30 1 * * *", timezone=ny)
    # 01:30 EDT already happened before 01:30 EST: the next one is tomorrow
    assert at_130.next_times(second, count=1) == [local(ny, 2024, 11, 4, 1, 30)]
    first = local(ny, 2024, 11, 3, 1, 15)
    assert at_130.next_times(first, count=1)[0].utcoffset() == timedelta(hours=-4)
    every_20 = IntervalSchedule(interval=timedelta(minutes=20), timezone=ny)
    t = every_20.next_times(second, count=2)
    assert [x.astimezone(UTC) for x in t] == [datetime(2024, 11, 3, 6, 40, tzinfo=UTC), datetime(2024, 11, 3, 7, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=MINUTELY",
        "FREQ=MINUTELY;INTERVAL=7;BYHOUR=9,10",
        "FREQ=HOURLY;INTERVAL=5;BYDAY=MO,FR",
        "FREQ=SECONDLY;INTERVAL=97;BYMINUTE=0,30",
        "DTSTART:20200105T101112\nRRULE:FREQ=MINUTELY;INTERVAL=13",
        "FREQ=HOURLY;INTERVAL=3;COUNT=100000",
    ],
)
def test_rrule_sub_daily_far_from_dtstart_matches_dateutil(rule):
    from dateutil.rrule import rrulestr

    # far enough from 2020-01-01 for the DTSTART fast-forward to matter, near
    # enough for plain dateutil to compute the expected times quickly
    start = datetime(2020, 2, 20, 8, 9, 10)
    expected = list(rrulestr(rule, dtstart=datetime(2020, 1, 1)).xafter(start, count=20, inc=True))
    got = RRuleSchedule(rrule=rule).next_times(start, count=20)
    assert [t.replace(tzinfo=None) for t in got] == expected
