"""`flowdeck schedule preview`: when would a schedule fire? (stdlib only at import.)"""
from __future__ import annotations

import sys


def register(top) -> None:
    sched = top.add_parser("schedule", help="preview schedules")
    sub = sched.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "preview",
        help="print the next times a schedule fires, in its timezone with offset",
        description="Print the next times a schedule fires, in the schedule's timezone with "
        "the UTC offset (so daylight saving changes are visible). The server validates the schedule.",
    )
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--cron", metavar="EXPR", help='a cron expression, e.g. "0 9 * * 1-5"')
    kind.add_argument("--interval", metavar="SECONDS", type=float, help="fire every SECONDS")
    kind.add_argument("--rrule", metavar="RULE", help='an RFC 5545 rule, e.g. "FREQ=WEEKLY;BYDAY=MO,WE"')
    p.add_argument("--timezone", "--tz", default="", metavar="TZ", help="an IANA name such as Europe/Berlin (default UTC)")
    p.add_argument("--anchor", default=None, metavar="ISO", help="--interval only: the time the interval counts from")
    p.add_argument("--start", default=None, metavar="ISO",
                   help="first possible time (default now); without an offset it is read in the schedule's timezone")
    p.add_argument("-n", "--count", type=int, default=5, help="how many times (default 5, at most 1000)")
    p.add_argument("--json", action="store_true", help="print plain JSON for scripts")
    p.set_defaults(func="flowdeck.cli.schedule_cmd:preview")


def _parse_time(value: str, flag: str, zone: str):
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise SystemExit(_fail(f"invalid {flag} {value!r}: expected an ISO 8601 time such as 2024-03-30T09:00")) from None
    if t.tzinfo is None:
        tz = dt.timezone.utc
        if zone:
            try:
                from zoneinfo import ZoneInfo

                tz = ZoneInfo(zone)
            except Exception:  # noqa: BLE001 - the server names the bad timezone
                pass
        t = t.replace(tzinfo=tz)
    return t


def _fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


def _describe(args) -> str:
    if args.cron is not None:
        what = f"cron {args.cron!r}"
    elif args.rrule is not None:
        what = f"rrule {args.rrule!r}"
    else:
        what = f"every {args.interval:g}s"
    return f"{what} in {args.timezone or 'UTC'}"


def preview(args) -> int:
    import json

    from flowdeck.v1 import common_pb2 as c

    if not 1 <= args.count <= 1000:
        return _fail(f"invalid -n {args.count}: must be between 1 and 1000")
    if args.anchor and args.interval is None:
        return _fail("--anchor only applies to --interval")
    pb = c.Schedule()
    described: dict = {}
    if args.cron is not None:
        pb.cron.cron = args.cron
        pb.cron.timezone = args.timezone
        described = {"cron": args.cron}
    elif args.rrule is not None:
        pb.rrule.rrule = args.rrule
        pb.rrule.timezone = args.timezone
        described = {"rrule": args.rrule}
    else:
        import datetime as dt

        seconds = args.interval
        pb.interval.interval.FromTimedelta(dt.timedelta(seconds=seconds))
        pb.interval.timezone = args.timezone
        if args.anchor:
            pb.interval.anchor_date.FromDatetime(_parse_time(args.anchor, "--anchor", args.timezone).astimezone(dt.timezone.utc))
        described = {"interval": seconds}
    described["timezone"] = args.timezone or None
    start = _parse_time(args.start, "--start", args.timezone) if args.start else None

    from flowdeck.client import get_client

    times = get_client().preview_schedule(pb, start=start, count=args.count)
    if args.json:
        import datetime as dt

        doc = {
            "schedule": described,
            "times": [
                {"local": t.isoformat(), "utc": t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")}
                for t in times
            ],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    print(f"Next {len(times)} times of {_describe(args)}:")
    for t in times:
        name = t.tzname() or ""
        print(f"  {t.strftime('%a')} {t.isoformat(sep=' ')}  {name}".rstrip())
    return 0
