"""Deployment schedules: interval, cron and RFC 5545 recurrence rules (see flowdeck.core.schedules)."""
from flowdeck.core.schedules import (
    MAX_TIMES,
    CronSchedule,
    IntervalSchedule,
    InvalidSchedule,
    RRuleSchedule,
    Schedule,
    schedule_from_dict,
    schedule_from_proto,
)

__all__ = [
    "MAX_TIMES", "CronSchedule", "IntervalSchedule", "InvalidSchedule", "RRuleSchedule", "Schedule",
    "schedule_from_dict", "schedule_from_proto",
]
