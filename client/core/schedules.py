"""Deployment schedules: interval, cron and RFC 5545 recurrence rules.

Pure Python (no grpc, no sqlalchemy); croniter, dateutil and the generated
protobuf code are imported only where they are needed.

Construction validates everything and raises :class:`InvalidSchedule` (a
``ValueError``) naming the offending field the way the proto names it, e.g.
``schedule.cron.cron``. Pydantic wraps a ``ValueError`` raised inside
validation into a ``ValidationError``; the constructor (and
``model_validate``/``model_validate_json``) unwraps it again, and turns plain
pydantic type errors into ``InvalidSchedule`` as well, so callers only ever
need ``except InvalidSchedule``.

Time zones and DST
------------------
Every schedule works in its ``timezone`` (an IANA name; ``None`` means UTC)
and :meth:`next_times` returns aware datetimes in that zone.

* ``CronSchedule`` matches local wall-clock times. A local time that does not
  exist (spring forward) is skipped; a local time that happens twice (fall
  back) fires once, at its first occurrence.
* ``IntervalSchedule`` with a whole number of days keeps the anchor's local
  wall-clock time; a wall time that does not exist on some day is shifted
  forward by the gap (02:30 -> 03:30). Any other interval is exact elapsed
  time: consecutive times are exactly ``interval`` apart in UTC. Times are
  ``anchor + n * interval`` for every integer ``n`` (also before the anchor).
* ``RRuleSchedule`` follows RFC 5545: a local time that does not exist is
  shifted forward by the gap, an ambiguous one means its first occurrence.
  Without a DTSTART the rule starts at 2020-01-01T00:00 local time. A
  ``DTSTART;TZID=...`` zone is used when ``timezone`` is not set.
"""

from __future__ import annotations

import heapq
import re
from datetime import datetime, timedelta, timezone as _dt_timezone
from datetime import tzinfo as _tzinfo
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Union

from flowdeck.core.errors import InvalidArgumentError
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

if TYPE_CHECKING:  # pragma: no cover
    from flowdeck.v1 import common_pb2

__all__ = [
    "MAX_TIMES",
    "CronSchedule",
    "IntervalSchedule",
    "InvalidSchedule",
    "RRuleSchedule",
    "Schedule",
    "schedule_from_dict",
    "schedule_from_proto",
]

#: Upper bound on how many times one ``next_times`` call returns.
MAX_TIMES = 10_000

_UTC = _dt_timezone.utc
_DAY = timedelta(days=1)
_DEFAULT_ANCHOR = datetime(2020, 1, 1)  # naive: local wall time in the schedule's zone
# Larger than any difference between two UTC offsets of one zone (Samoa skipped
# a whole day in 2011); used to bound how far local wall time and UTC diverge.
_OFFSET_SLACK = timedelta(hours=26)
_TZID_RE = re.compile(r"DTSTART;(?:[^:\n]*;)?TZID=([^:;\s]+)", re.IGNORECASE)


class InvalidSchedule(InvalidArgumentError):
    """A schedule field is invalid.

    ``field`` is the proto path of the field (``schedule.cron.timezone``),
    ``value`` the offending value and ``problem`` a human readable reason.
    """

    reason = "INVALID_SCHEDULE"

    def __init__(self, field: str, value: Any, problem: str) -> None:
        super().__init__(f"invalid {field} {_fmt_value(value)}: {problem}", field=field)
        self.value = value
        self.problem = problem

    def __reduce__(self):  # keep picklable despite the custom __init__
        return (type(self), (self.field, self.value, self.problem))


def _fmt_value(value: Any) -> str:
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def _zone(name: str | None) -> _tzinfo:
    if not name:
        return _UTC
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _check_zone(field: str, name: str | None) -> None:
    if name is None:
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        reason = "unknown time zone (expected an IANA name like 'Europe/Berlin')"
        if not isinstance(exc, ZoneInfoNotFoundError):
            reason = f"{reason}: {exc}"
        raise InvalidSchedule(field, name, reason) from None


def _as_aware(dt: datetime, what: str) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(dt).__name__}")
    return dt.replace(tzinfo=_UTC) if dt.tzinfo is None else dt


def _limit(count: int | None, until: datetime | None) -> int:
    if count is None and until is None:
        raise ValueError("next_times() needs count or until (or both)")
    if count is None:
        return MAX_TIMES
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError("count must be an int")
    if count < 0:
        raise ValueError("count must be >= 0")
    return min(count, MAX_TIMES)


def _exists(aware: datetime, tz: _tzinfo) -> bool:
    """Whether the wall time of ``aware`` (in ``tz``) really occurs in ``tz``."""
    back = aware.astimezone(_UTC).astimezone(tz)
    return back.replace(tzinfo=None) == aware.replace(tzinfo=None)


def _localize_skip(wall: datetime, tz: _tzinfo) -> datetime | None:
    """Wall time -> aware; None if it does not exist; first one if ambiguous."""
    aware = wall.replace(tzinfo=tz, fold=0)
    return aware if _exists(aware, tz) else None


def _localize_shift(wall: datetime, tz: _tzinfo, fold: int = 0) -> datetime:
    """Wall time -> aware; shifted forward by the gap if it does not exist.

    ``fold`` picks the occurrence of an ambiguous wall time.
    """
    aware = wall.replace(tzinfo=tz, fold=fold)
    if _exists(aware, tz):
        return aware
    # zoneinfo reads a nonexistent time with fold=0 using the offset from
    # before the gap; converting back normalizes it to the real wall time
    # (02:30 -> 03:30 for a one hour gap).
    return aware.replace(fold=0).astimezone(_UTC).astimezone(tz)


class _BaseSchedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str] = ""

    if not TYPE_CHECKING:

        def __init__(self, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as exc:
                raise _invalid_from(type(self).kind, exc) from None

        @classmethod
        def model_validate(cls, obj: Any, *args: Any, **kwargs: Any):
            try:
                return super().model_validate(obj, *args, **kwargs)
            except ValidationError as exc:
                raise _invalid_from(cls.kind, exc) from None

        @classmethod
        def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any):
            try:
                return super().model_validate_json(json_data, *args, **kwargs)
            except ValidationError as exc:
                raise _invalid_from(cls.kind, exc) from None

    @field_validator("timezone", mode="before", check_fields=False)
    @classmethod
    def _empty_zone_is_utc(cls, v: Any) -> Any:
        return None if v == "" else v

    def tzinfo(self) -> _tzinfo:
        """The zone the schedule works in (``datetime.timezone.utc`` if none)."""
        return _zone(getattr(self, "timezone", None))

    def next_times(
        self,
        start: datetime,
        count: int | None = None,
        until: datetime | None = None,
    ) -> list[datetime]:
        """Times ``t`` with ``start <= t`` (and ``t < until``), sorted, at most
        ``count`` (and at most :data:`MAX_TIMES`), aware, in the schedule's
        zone. Naive ``start``/``until`` are read as UTC."""
        limit = _limit(count, until)
        # Compare in UTC: aware datetimes sharing a tzinfo compare by wall
        # time, ignoring fold.
        start = _as_aware(start, "start").astimezone(_UTC)
        until = None if until is None else _as_aware(until, "until").astimezone(_UTC)
        out: list[datetime] = []
        if limit == 0 or (until is not None and until <= start):
            return out
        last = None
        for t in self._iter_from(start):
            u = t.astimezone(_UTC)
            if u < start or u == last:
                continue
            if until is not None and u >= until:
                break
            out.append(t)
            last = u
            if len(out) >= limit:
                break
        return out

    def _iter_from(self, start: datetime) -> Iterator[datetime]:  # pragma: no cover
        """Times in the zone, increasing, from at or a little before ``start``
        (aware, UTC) on."""
        raise NotImplementedError

    def to_proto(self) -> "common_pb2.Schedule":  # pragma: no cover
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError


def _invalid_from(kind: str, exc: ValidationError) -> InvalidSchedule:
    errors = exc.errors()
    for err in errors:  # an InvalidSchedule raised during validation
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, InvalidSchedule):
            return inner
    err = errors[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    field = f"schedule.{kind}.{loc}" if loc else f"schedule.{kind}"
    reason = err.get("msg", "invalid")
    value = err.get("input")
    if err.get("type") == "extra_forbidden":
        reason = f"unknown key {loc!r}"
    elif err.get("type") == "missing":
        reason, value = "required", None
    return InvalidSchedule(field, value, reason)


class IntervalSchedule(_BaseSchedule):
    """Fires every ``interval`` from ``anchor_date``.

    ``interval`` is a ``timedelta`` or a number of seconds, > 0. A naive
    ``anchor_date`` is read in ``timezone``; after construction
    ``anchor_date`` is always aware, in the schedule's zone (default
    2020-01-01T00:00 local time).
    """

    kind: ClassVar[str] = "interval"

    interval: timedelta
    anchor_date: datetime | None = None
    timezone: str | None = None

    @field_validator("interval", mode="before")
    @classmethod
    def _interval_input(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise InvalidSchedule("schedule.interval.interval", v, "expected seconds or a duration")
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                return v  # ISO 8601 durations like "PT1H" are left to pydantic
        return v

    def model_post_init(self, __context: Any) -> None:
        if self.interval <= timedelta(0):
            raise InvalidSchedule(
                "schedule.interval.interval", self.interval, "must be greater than zero"
            )
        _check_zone("schedule.interval.timezone", self.timezone)
        tz = self.tzinfo()
        anchor = self.anchor_date
        if anchor is None:
            anchor = _DEFAULT_ANCHOR.replace(tzinfo=tz)
        elif anchor.tzinfo is None:
            anchor = _localize_shift(anchor, tz)
        else:
            try:
                anchor = anchor.astimezone(tz)
            except (OverflowError, ValueError) as exc:
                raise InvalidSchedule("schedule.interval.anchor_date", anchor, str(exc)) from None
        self.__dict__["anchor_date"] = anchor  # frozen model: set once, here

    @property
    def whole_days(self) -> bool:
        """True when the interval is a whole number of days (wall-clock mode)."""
        return self.interval % _DAY == timedelta(0)

    def _iter_from(self, start: datetime) -> Iterator[datetime]:
        tz = self.tzinfo()
        anchor: datetime = self.anchor_date  # type: ignore[assignment]
        if self.whole_days:
            yield from self._iter_days(start, tz, anchor)
            return
        step = self.interval
        anchor = anchor.astimezone(_UTC)  # exact elapsed time: work in UTC
        k = -((anchor - start) // step)  # ceil((start - anchor) / step)
        while True:
            try:
                t = anchor + step * k
                yield t.astimezone(tz)
            except OverflowError:
                return
            k += 1

    def _iter_days(self, start: datetime, tz: _tzinfo, anchor: datetime) -> Iterator[datetime]:
        days = self.interval // _DAY
        wall = anchor.replace(tzinfo=None)
        fold = anchor.fold

        def at(k: int) -> datetime | None:
            try:
                return _localize_shift(wall + timedelta(days=days * k), tz, fold)
            except OverflowError:
                return None

        try:
            start_day = start.astimezone(tz).date()
        except OverflowError:
            start_day = start.astimezone(_UTC).date()
        k = (start_day - wall.date()).days // days - 1
        # t(k) is in the day before start's local day (or earlier), so at most
        # a few steps lead to the first time >= start.
        for _ in range(8):
            t = at(k)
            if t is not None and t.astimezone(_UTC) >= start:
                break
            if t is None and k > 0:
                return  # beyond year 9999
            k += 1
        while True:
            t = at(k)
            if t is None:
                return
            yield t
            k += 1

    def to_proto(self) -> "common_pb2.Schedule":
        from flowdeck.v1 import common_pb2

        pb = common_pb2.Schedule()
        pb.interval.interval.FromTimedelta(self.interval)
        pb.interval.anchor_date.FromDatetime(self.anchor_date.astimezone(_UTC))  # type: ignore[union-attr]
        pb.interval.timezone = self.timezone or ""
        return pb

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval": self.interval.total_seconds(),
            "anchor_date": self.anchor_date.isoformat(),  # type: ignore[union-attr]
            "timezone": self.timezone,
        }


class CronSchedule(_BaseSchedule):
    """Fires at the local times matching a cron expression (croniter syntax).

    ``day_or``: when both day-of-month and day-of-week are restricted, fire
    when either matches (True, the default) or only when both do (False).
    """

    kind: ClassVar[str] = "cron"

    cron: str
    timezone: str | None = None
    day_or: bool = True

    @field_validator("day_or", mode="before")
    @classmethod
    def _day_or_default(cls, v: Any) -> Any:
        return True if v is None else v

    def model_post_init(self, __context: Any) -> None:
        from croniter import croniter

        try:
            ok = bool(self.cron.strip()) and croniter.is_valid(self.cron)
        except Exception:  # noqa: BLE001 - any parser failure means invalid
            ok = False
        if ok:
            try:
                croniter(self.cron, datetime(2020, 1, 1), day_or=self.day_or)
            except Exception as exc:  # noqa: BLE001
                raise InvalidSchedule("schedule.cron.cron", self.cron, str(exc)) from None
        else:
            raise InvalidSchedule(
                "schedule.cron.cron", self.cron, "not a valid cron expression"
            )
        _check_zone("schedule.cron.timezone", self.timezone)

    def _iter_from(self, start: datetime) -> Iterator[datetime]:
        from croniter import CroniterError, croniter

        tz = self.tzinfo()
        try:
            wall = start.astimezone(tz).replace(tzinfo=None)
        except OverflowError:
            return
        # Iterate on naive wall-clock times (croniter's own DST handling is
        # unreliable) and localize each: skip nonexistent ones, take the first
        # occurrence of ambiguous ones. This keeps the times increasing.
        try:
            it = croniter(self.cron, wall - timedelta(seconds=1), day_or=self.day_or)
        except (CroniterError, OverflowError, ValueError):
            return
        while True:
            try:
                w = it.get_next(datetime)
            except (CroniterError, OverflowError, ValueError):
                return
            t = _localize_skip(w, tz)
            if t is not None:
                yield t

    def to_proto(self) -> "common_pb2.Schedule":
        from flowdeck.v1 import common_pb2

        pb = common_pb2.Schedule()
        pb.cron.cron = self.cron
        pb.cron.timezone = self.timezone or ""
        pb.cron.day_or = self.day_or
        return pb

    def to_dict(self) -> dict[str, Any]:
        return {"cron": self.cron, "timezone": self.timezone, "day_or": self.day_or}


_RULE_EXAMPLE = "a rule reads like FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9"


def _rule_syntax_problem(text: str) -> str | None:
    """What is wrong with the shape of the RRULE/EXRULE lines, in words dateutil
    does not find ("not enough values to unpack"); None when they are well formed."""
    for line in text.strip().splitlines():
        line = line.strip()
        name, colon, value = line.partition(":")
        if colon and name.upper() not in ("RRULE", "EXRULE"):
            continue  # DTSTART, RDATE, EXDATE: dateutil's own messages name them
        parts = (value if colon else line).split(";")
        for part in parts:
            if not part.strip():
                return f"an empty part between ';' separators ({_RULE_EXAMPLE})"
            if "=" not in part:
                return f"{part.strip()!r} is not NAME=VALUE ({_RULE_EXAMPLE})"
        if not any(p.split("=", 1)[0].strip().upper() == "FREQ" for p in parts):
            return f"FREQ is required ({_RULE_EXAMPLE})"
    return None


class RRuleSchedule(_BaseSchedule):
    """Fires at the times of an RFC 5545 recurrence rule (dateutil ``rrulestr``).

    ``rrule`` is e.g. ``"FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9"`` or a multi-line
    ``"DTSTART:...\\nRRULE:...\\nEXDATE:..."``. Without DTSTART the rule
    starts at 2020-01-01T00:00 local time.
    """

    kind: ClassVar[str] = "rrule"

    rrule: str
    timezone: str | None = None

    def model_post_init(self, __context: Any) -> None:
        _check_zone("schedule.rrule.timezone", self.timezone)
        tzid = self._dtstart_tzid()
        if tzid is not None and self.timezone is None:
            _check_zone("schedule.rrule.rrule", tzid)
        problem = _rule_syntax_problem(self.rrule)
        if problem:
            raise InvalidSchedule("schedule.rrule.rrule", self.rrule, problem)
        try:
            self._ruleset()
        except InvalidSchedule:
            raise
        except Exception as exc:  # noqa: BLE001 - dateutil raises many kinds
            raise InvalidSchedule("schedule.rrule.rrule", self.rrule, str(exc) or type(exc).__name__) from None

    def _dtstart_tzid(self) -> str | None:
        m = _TZID_RE.search(self.rrule)
        return m.group(1) if m else None

    def tzinfo(self) -> _tzinfo:
        """``timezone``, else the DTSTART's TZID, else UTC."""
        return _zone(self.timezone or self._dtstart_tzid())

    def _ruleset(self, not_before: datetime | None = None):
        """The rule as a dateutil rruleset in naive local wall-clock time.

        With ``not_before`` (a naive wall time) sub-daily rules without COUNT
        get a DTSTART moved forward by whole periods to just before it: the
        same occurrences from there on, without iterating from 2020.
        """
        from dateutil.rrule import HOURLY, MINUTELY, SECONDLY, rruleset, rrulestr

        unit = {HOURLY: 3600, MINUTELY: 60, SECONDLY: 1}

        if not self.rrule.strip():
            raise ValueError("empty rule")
        tz = self.tzinfo()
        try:
            parsed = rrulestr(self.rrule, dtstart=_DEFAULT_ANCHOR, forceset=True, cache=False)
        except ValueError as exc:
            if "UNTIL" not in str(exc):
                raise
            # no DTSTART and a UTC UNTIL: dateutil wants an aware default start
            parsed = rrulestr(
                self.rrule, dtstart=_DEFAULT_ANCHOR.replace(tzinfo=tz), forceset=True, cache=False
            )

        def wall(dt: datetime) -> datetime:
            return dt if dt.tzinfo is None else dt.astimezone(tz).replace(tzinfo=None)

        def naive_rule(r):
            until = r._until
            dtstart = wall(r._dtstart)
            if not_before is not None and r._count is None and r._freq in unit:
                period = timedelta(seconds=unit[r._freq] * r._interval)
                if not_before > dtstart:
                    dtstart += period * ((not_before - dtstart) // period)
            return r.replace(dtstart=dtstart, until=None if until is None else wall(until))

        out = rruleset()
        for r in parsed._rrule:
            out.rrule(naive_rule(r))
        for r in parsed._exrule:
            out.exrule(naive_rule(r))
        for d in parsed._rdate:
            out.rdate(wall(d))
        for d in parsed._exdate:
            out.exdate(wall(d))
        return out

    def _iter_from(self, start: datetime) -> Iterator[datetime]:
        tz = self.tzinfo()
        try:
            wall = start.astimezone(tz).replace(tzinfo=None) - _OFFSET_SLACK
        except OverflowError:
            wall = datetime.min
        # Shifting nonexistent wall times forward can reorder them with the
        # following ones; a heap holds times until no later wall time can
        # produce an earlier instant.
        heap: list[datetime] = []
        try:
            for w in self._ruleset(not_before=wall).xafter(wall, inc=True):
                try:
                    heapq.heappush(heap, _localize_shift(w, tz).astimezone(_UTC))
                    floor = w.replace(tzinfo=_UTC) - _OFFSET_SLACK
                except OverflowError:
                    continue
                while heap and heap[0] < floor:
                    yield heapq.heappop(heap).astimezone(tz)
        except (OverflowError, ValueError):
            pass
        while heap:
            yield heapq.heappop(heap).astimezone(tz)

    def to_proto(self) -> "common_pb2.Schedule":
        from flowdeck.v1 import common_pb2

        pb = common_pb2.Schedule()
        pb.rrule.rrule = self.rrule
        pb.rrule.timezone = self.timezone or ""
        return pb

    def to_dict(self) -> dict[str, Any]:
        return {"rrule": self.rrule, "timezone": self.timezone}


Schedule = Union[IntervalSchedule, CronSchedule, RRuleSchedule]

_KINDS: dict[str, type[_BaseSchedule]] = {
    "interval": IntervalSchedule,
    "cron": CronSchedule,
    "rrule": RRuleSchedule,
}


def schedule_from_proto(pb: "common_pb2.Schedule") -> Schedule | None:
    """The schedule in ``pb``, or None when no kind is set.

    Raises InvalidSchedule like the constructors (a missing interval is 0).
    """
    which = pb.WhichOneof("kind")
    if which == "interval":
        m = pb.interval
        # Timestamp/Duration outside their valid ranges raise ValueError here.
        try:
            anchor = m.anchor_date.ToDatetime(tzinfo=_UTC) if m.HasField("anchor_date") else None
        except ValueError as e:
            raise InvalidSchedule("schedule.interval.anchor_date",
                                  f"{m.anchor_date.seconds}s{m.anchor_date.nanos}ns", str(e)) from None
        try:
            interval = m.interval.ToTimedelta()
        except (ValueError, OverflowError) as e:
            raise InvalidSchedule("schedule.interval.interval",
                                  f"{m.interval.seconds}s{m.interval.nanos}ns", str(e)) from None
        return IntervalSchedule(interval=interval, anchor_date=anchor, timezone=m.timezone or None)
    if which == "cron":
        m = pb.cron
        return CronSchedule(
            cron=m.cron,
            timezone=m.timezone or None,
            day_or=m.day_or if m.HasField("day_or") else True,
        )
    if which == "rrule":
        return RRuleSchedule(rrule=pb.rrule.rrule, timezone=pb.rrule.timezone or None)
    return None


def schedule_from_dict(d: Mapping[str, Any] | Schedule) -> Schedule:
    """A schedule from its YAML/JSON form (what ``to_dict`` returns, too).

    ``{"interval": 3600, "anchor_date": "2024-01-01T09:00:00", "timezone": ...}``
    (seconds, or a timedelta/ISO 8601 duration), ``{"cron": "0 9 * * 1-5",
    "timezone": "Europe/Berlin", "day_or": True}`` or ``{"rrule": "...",
    "timezone": ...}``. Unknown keys raise InvalidSchedule naming the key.
    A schedule object is returned as is.
    """
    if isinstance(d, _BaseSchedule):
        return d  # type: ignore[return-value]
    if not isinstance(d, Mapping):
        raise InvalidSchedule("schedule", d, "expected a mapping with one of interval, cron, rrule")
    bad = [k for k in d if not isinstance(k, str)]
    if bad:
        raise InvalidSchedule(f"schedule.{bad[0]}", d[bad[0]], f"unknown key {bad[0]!r}")
    kinds = [k for k in _KINDS if k in d]
    if len(kinds) != 1:
        reason = (
            "expected one of interval, cron, rrule"
            if not kinds
            else f"expected only one of interval, cron, rrule, got {', '.join(kinds)}"
        )
        raise InvalidSchedule("schedule", dict(d), reason)
    return _KINDS[kinds[0]](**d)  # type: ignore[return-value]
