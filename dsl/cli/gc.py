"""``dsl gc``: remove environments nobody has used over SSH for a while.

Each dev container keeps a record of its SSH sessions (``dsl-activity``, written by dsl-login
for every session and swept by dsl-entrypoint; see compiler/llb/templates/activity.sh.j2).
``gc`` reads it through the runner (docker exec / pod exec) and removes an environment the way
``dsl down`` does without ``--purge``: containers or workloads go, volumes, PVCs and Secrets stay.
An environment whose record cannot be read is kept, and the line says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from dsl.cli._runner import open_runner, runner_options
from dsl.errors import EngineError, UsageError

if TYPE_CHECKING:
    from dsl.engines.runner import EnvState, Runner

ACTIVITY_COMMAND = ["/usr/local/bin/dsl-activity", "report"]  # compiler.llb._layout.ACTIVITY


@dataclass(frozen=True, slots=True)
class Activity:
    """What an environment's record says, in the container's own clock (epoch seconds; 0: never)."""

    now: int
    started: int
    last_login: int
    last_logout: int
    open_sessions: int

    @property
    def last_active(self) -> int:
        """The last logout, login or container start, whichever is latest."""
        return max(self.started, self.last_login, self.last_logout)


@dataclass(frozen=True, slots=True)
class Decision:
    remove: bool
    reason: str


def parse_report(text: str) -> Activity | None:
    """``dsl-activity report``'s ``key=value`` lines; None when they are not a record."""
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def number(key: str) -> int | None:
        value = values.get(key, "").strip()
        return int(value) if value.isdigit() else None

    now, started, open_ = number("now"), number("started"), number("open")
    if now is None or started is None or open_ is None:
        return None
    return Activity(now, started, number("last_login") or 0, number("last_logout") or 0, open_)


def decide(activity: Activity, idle_seconds: int) -> Decision:
    """Remove when no session is open and the last activity is at least ``idle_seconds`` old."""
    if activity.open_sessions:
        n = activity.open_sessions
        return Decision(False, f"{n} open SSH session{'s' if n > 1 else ''}")
    last = activity.last_active
    idle = max(activity.now - last, 0)
    ago = format_duration(idle)
    if activity.last_logout and activity.last_logout == last:
        since = f"last logout {ago} ago"
    elif activity.last_login and activity.last_login == last:
        since = f"last login {ago} ago"
    else:
        since = f"started {ago} ago, no login since"
    if idle >= idle_seconds:
        return Decision(True, f"idle {ago} ({since})")
    return Decision(False, f"idle {ago}, less than {format_duration(idle_seconds)} ({since})")


_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: int) -> str:
    """``5400`` → ``1h30m``: the largest unit and, when not zero, the next one."""
    for i, (unit, size) in enumerate(_UNITS):
        if seconds >= size or unit == "s":
            text = f"{seconds // size}{unit}"
            if i + 1 < len(_UNITS):
                next_unit, next_size = _UNITS[i + 1]
                rest = seconds % size // next_size
                text += f"{rest}{next_unit}" if rest else ""
            return text
    raise AssertionError("unreachable")


def read_decision(runner: Runner, state: EnvState, idle_seconds: int) -> Decision:
    """The decision for one environment, or why it is kept without one."""
    if not state.ssh_user:
        return Decision(False, "no SSH server, so no activity record (not a dev environment)")
    if not state.running:
        return Decision(False, f"{state.status}: no activity to read (`dsl down` removes it)")
    try:
        code, out = runner.capture(state.id, ACTIVITY_COMMAND)
    except (EngineError, UsageError) as exc:
        return Decision(False, f"cannot read the activity record: {exc.message}")
    activity = parse_report(out.decode(errors="replace")) if code == 0 else None
    if activity is None:
        return Decision(False, "no activity record (an image built before `dsl gc`, or started with a command)")
    return decide(activity, idle_seconds)


def idle_option(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    """``--idle``: a duration in seconds, or a usage error with the accepted forms."""
    from dsl import rules

    try:
        return rules.duration(value)
    except rules.Invalid as exc:
        raise UsageError(f"--idle: {exc.message}", hint=exc.hint) from exc


@click.command("gc")
@click.option("--idle", required=True, metavar="DURATION", callback=idle_option,
              help="Remove environments with no SSH session for this long: 30m, 2h, 1d, 1h30m.")
@click.option("--dry-run", is_flag=True, help="Only print what would be removed, and why.")
@click.option("--mine", is_flag=True, help="Only environments you (user@host) started, as `dsl down --all`.")
@runner_options
def gc(idle: int, dry_run: bool, mine: bool, where: dict) -> None:
    """Remove idle environments (no open SSH session for --idle); volumes, PVCs and Secrets stay."""
    from dsl.identity import owner
    from dsl.ssh import remove_host

    runner = open_runner(where)
    try:
        me = owner() if mine else None
        states = [s for s in runner.list() if me is None or s.claim.owner == me]
        if not states:
            click.echo("no environments", err=True)
        for state in states:
            decision = read_decision(runner, state, idle)
            if not decision.remove:
                click.echo(f"{state.id}: kept: {decision.reason}")
                continue
            if dry_run:
                click.echo(f"{state.id}: would remove: {decision.reason}")
                continue
            result = runner.down(state.id, purge=False)
            remove_host(state.id)
            kept = f"; kept volumes {', '.join(result.kept_volumes)}" if result.kept_volumes else ""
            click.echo(f"{state.id}: removed: {decision.reason}{kept}")
    finally:
        runner.close()
