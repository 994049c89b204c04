"""The longest gap between two runs of a cron schedule: how late a job may be before it is overdue."""

from __future__ import annotations

import datetime as dt

_BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]  # minute hour day-of-month month day-of-week


def _field(text: str, lo: int, hi: int) -> tuple[set[int], bool]:
    """The values a cron field matches, and whether it is restricted (not ``*``)."""
    values: set[int] = set()
    for part in text.split(","):
        rng, _, step = part.partition("/")
        if rng == "*":
            start, end = lo, hi
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(rng)
            if step:
                end = hi
        values.update(range(start, end + 1, int(step) if step else 1))
    return values, not text.startswith("*")


def run_times(schedule: str, weekday: int | None, start: dt.datetime, days: int) -> list[dt.datetime]:
    """Every run in ``days`` days from ``start``, as Vixie cron fires it (day-of-month OR day-of-week when
    both are restricted); ``weekday`` is the ISO weekday guard of ``MaintenanceJob`` (7 = Sunday)."""
    fields = schedule.split()
    (minutes, _), (hours, _), (doms, dom_r), (months, _), (dows, dow_r) = (
        _field(f, lo, hi) for f, (lo, hi) in zip(fields, _BOUNDS, strict=True)
    )
    dows = {d % 7 for d in dows}  # 7 and 0 are both Sunday
    runs = []
    for n in range(days):
        day = start.date() + dt.timedelta(days=n)
        dow = day.isoweekday() % 7
        if day.month not in months:
            continue
        on_dom, on_dow = day.day in doms, dow in dows
        if not (on_dom or on_dow if dom_r and dow_r else on_dom and on_dow):
            continue
        if weekday is not None and day.isoweekday() != weekday:
            continue
        runs += [dt.datetime.combine(day, dt.time(h, m)) for h in sorted(hours) for m in sorted(minutes)]
    return runs


def longest_gap(schedule: str, weekday: int | None = None) -> float:
    """Seconds of the longest gap between consecutive runs over four years (leap years and weekdays included)."""
    runs = run_times(schedule, weekday, dt.datetime(2024, 1, 1), 4 * 366)
    if len(runs) < 2:
        raise ValueError(f"cron schedule {schedule!r} runs less than twice in four years")
    return max((b - a).total_seconds() for a, b in zip(runs, runs[1:], strict=False))
