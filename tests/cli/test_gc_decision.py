"""``dsl gc``'s decision from an activity record (dsl-activity report), as its lines say it."""

from __future__ import annotations

from dsl.cli.gc import Activity, decide, format_duration, parse_report

HOUR = 3600


def test_an_open_session_is_never_idle_however_old() -> None:
    record = Activity(now=100 * HOUR, started=0, last_login=1, last_logout=2, open_sessions=2)
    decision = decide(record, idle_seconds=60)
    assert not decision.remove and decision.reason == "2 open SSH sessions"


def test_idle_counts_from_the_last_logout_login_or_start() -> None:
    never = decide(Activity(now=3 * HOUR, started=0, last_login=0, last_logout=0, open_sessions=0), 2 * HOUR)
    assert never.remove and never.reason == "idle 3h (started 3h ago, no login since)"
    recent = decide(Activity(now=3 * HOUR, started=0, last_login=HOUR, last_logout=2 * HOUR, open_sessions=0), 2 * HOUR)
    assert not recent.remove and recent.reason == "idle 1h, less than 2h (last logout 1h ago)"
    exactly = decide(Activity(now=3 * HOUR, started=0, last_login=HOUR, last_logout=HOUR, open_sessions=0), 2 * HOUR)
    assert exactly.remove and "last logout 2h ago" in exactly.reason


def test_a_report_that_is_not_a_record_is_none() -> None:
    assert parse_report("now=10\nstarted=5\nlast_login=\nlast_logout=\nopen=0\n") == Activity(10, 5, 0, 0, 0)
    assert parse_report("") is None
    assert parse_report("now=10\nstarted=\nopen=0\n") is None  # never started: the entrypoint did not run it
    assert parse_report("OCI runtime exec failed: exec: \"/usr/local/bin/dsl-activity\": no such file") is None


def test_durations_read_as_people_write_them() -> None:
    assert [format_duration(s) for s in (0, 59, 90, 5400, 3605, 86400 + 7200 + 5)] == [
        "0s", "59s", "1m30s", "1h30m", "1h", "1d2h"]
