"""``dsl prune`` and ``dsl du``: the builder's build cache."""

from __future__ import annotations

import re

import click

from dsl.cli._builder_options import builder_options, connect_from_options
from dsl.cli._options import echo_table
from dsl.errors import UsageError

_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_size(text: str) -> int:
    """``10GB``, ``512MiB``, ``1000`` → bytes.

    Raises:
        UsageError: not a size.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m[2].lower() not in _SIZE_UNITS:
        raise UsageError(f"--keep-storage: invalid size {text!r}", hint="e.g. 10GB, 512MiB or a number of bytes")
    return int(float(m[1]) * _SIZE_UNITS[m[2].lower()])


def parse_duration(text: str) -> float:
    """``24h``, ``30m``, ``7d``, ``1h30m``, ``90`` (seconds) → seconds.

    Raises:
        UsageError: not a duration.
    """
    if re.fullmatch(r"\d+(?:\.\d+)?", text.strip()):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise UsageError(f"--keep-duration: invalid duration {text!r}", hint="e.g. 24h, 30m, 7d or 1h30m")
    return sum(float(n) * _TIME_UNITS[u] for n, u in parts)


def human_size(size: int) -> str:
    """Bytes as ``12.3MB`` (decimal units, as docker prints)."""
    if size < 1000:
        return f"{size}B"
    value = size / 1000
    for unit in ("kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.1f}{unit}"
        value /= 1000
    return f"{value:.1f}TB"


@click.command("prune")
@builder_options
@click.option("--all", "-a", "all_records", is_flag=True, help="Remove all unused cache, not only dangling records.")
@click.option("--keep-duration", metavar="DURATION", help="Keep cache used within this long (e.g. 24h).")
@click.option("--keep-storage", metavar="SIZE", help="Keep this much cache (e.g. 10GB).")
def prune(builder: str | None, tls_ca: str | None, tls_cert: str | None, tls_key: str | None,
          all_records: bool, keep_duration: str | None, keep_storage: str | None) -> None:
    """Remove build cache from the builder."""
    from dsl.engines.buildkit import prune as run_prune

    seconds = parse_duration(keep_duration) if keep_duration else 0.0
    keep_bytes = parse_size(keep_storage) if keep_storage else 0
    with connect_from_options(builder, tls_ca, tls_cert, tls_key) as bk:
        removed = run_prune(bk, all_records=all_records, keep_duration=seconds, keep_bytes=keep_bytes)
    total = sum(r.size for r in removed)
    click.echo(f"removed {len(removed)} cache records, {human_size(total)} reclaimed")


@click.command("du")
@builder_options
@click.option("--verbose", "-v", is_flag=True, help="Show every record's description.")
def du(builder: str | None, tls_ca: str | None, tls_cert: str | None, tls_key: str | None, verbose: bool) -> None:
    """Show the builder's cache records and their total size."""
    from dsl.engines.buildkit import disk_usage

    with connect_from_options(builder, tls_ca, tls_cert, tls_key) as bk:
        records = disk_usage(bk)
    rows = [("ID", "RECLAIMABLE", "SIZE", "TYPE", "DESCRIPTION")]
    for r in records:
        desc = r.description if verbose else r.description[:60]
        rows.append((r.id[:25] + ("*" if r.shared else ""), "false" if r.in_use else "true",
                     human_size(r.size), r.type, desc))
    echo_table(rows)
    reclaimable = sum(r.size for r in records if not r.in_use)
    click.echo(f"Total: {human_size(sum(r.size for r in records))} ({len(records)} records, "
               f"{human_size(reclaimable)} reclaimable)")
