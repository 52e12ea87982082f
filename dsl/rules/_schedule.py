"""Time values of ``dsl gc`` and its CronJob: an idle duration and a cron schedule."""

from __future__ import annotations

import re

from dsl.rules._invalid import Invalid, shown

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:\d+[smhd])+")
_PART = re.compile(r"(\d+)([smhd])")
DURATION_HINT = "a number and a unit, e.g. 30m, 2h, 1d or 1h30m (s, m, h, d)"

# Field ranges and names as Kubernetes' CronJob controller (robfig/cron's standard parser) takes them.
_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
           ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
           ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")))
_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
CRON_HINT = 'five fields "MIN HOUR DOM MON DOW" (e.g. "*/30 * * * *"), or @hourly, @daily, ...'


def duration(text: str) -> int:
    """``30m``, ``2h``, ``1d``, ``1h30m`` → seconds (more than zero)."""
    if not _DURATION.fullmatch(text):
        raise Invalid(f"expected a duration, got {shown(text)}", DURATION_HINT)
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(text))
    if seconds <= 0:
        raise Invalid(f"expected a duration longer than zero, got {shown(text)}", DURATION_HINT)
    return seconds


def cron_schedule(text: str) -> str:
    """A CronJob ``schedule``: five fields or a macro (``CRON_TZ=`` is refused: the CronJob's
    ``timeZone`` field says that)."""
    if text.strip() in _MACROS and text == text.strip():
        return text
    fields = text.split()
    if len(fields) != 5 or " ".join(fields) != text:
        raise Invalid(f"expected a cron schedule, got {shown(text)}", CRON_HINT)
    for value, (name, low, high, names) in zip(fields, _FIELDS):
        for item in value.split(","):
            if not _cron_item(item.lower(), low, high, names):
                raise Invalid(f"expected a cron schedule, got {shown(text)}: the {name} field {value!r} "
                              f"is not *, N, N-M, or one of those /STEP, with N, M in {low}..{high}", CRON_HINT)
    return text


def _cron_item(item: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    span, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) > 0):
        return False
    if span == "*":
        return True
    first, dash, last = span.partition("-")
    ends = [_cron_number(first, names)] + ([_cron_number(last, names)] if dash else [])
    if any(n is None or not low <= n <= high for n in ends):
        return False
    return not dash or ends[0] <= ends[1]  # type: ignore[operator]


def _cron_number(text: str, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    if text in names:
        return names.index(text) + (1 if names[0] == "jan" else 0)
    return None
