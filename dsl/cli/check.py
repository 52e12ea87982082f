"""``dsl check`` (a one-screen summary) and ``dsl inspect`` (the IR as stable JSON).

Both only evaluate the build file, so they import nothing heavy: no docker, kubernetes,
grpc, jinja2 or rich (kept honest by tests/cli/test_check.py).
"""

from __future__ import annotations

import json

import click

from dsl.cli._options import from_option, path_argument
from dsl.ir import JUPYTER_PORT, JUPYTER_TOKEN_ENV, Environment


def _step_line(step: object) -> str:
    data = {k: v for k, v in _fields(step).items() if v not in ("", (), None, False)}
    kind = type(step).__name__
    detail = ", ".join(f"{k}={_short(v)}" for k, v in data.items())
    return f"{kind}({detail})"


def _fields(node: object) -> dict[str, object]:
    return {name: getattr(node, name) for name in getattr(node, "__slots__", ()) if name != "span"}


def _short(value: object, limit: int = 60) -> str:
    text = " ".join(value) if isinstance(value, tuple) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _at(node: object) -> str:
    span = getattr(node, "span", None)
    return f"  [{span.file}:{span.line}]" if span else ""


def summary(env: Environment) -> str:
    """The human summary ``dsl check`` prints: name, base, steps, runtime, hash."""
    b, r = env.build, env.runtime
    lines = [f"environment {env.name}  ({env.source}:{env.function})"]
    lines.append(f"  base      {b.base.image}{' (dev)' if b.base.dev else ''}{_at(b.base)}")
    if b.cuda:
        lines.append(f"  cuda      {b.cuda.version} cudnn {b.cuda.cudnn}{_at(b.cuda)}")
    if b.shell != "bash":
        lines.append(f"  shell     {b.shell}")
    if b.owner:
        lines.append(f"  owner     {b.owner.uid}:{b.owner.gid}{_at(b.owner)}")
    if b.git_config:
        g = b.git_config
        who = " ".join(x for x in (g.name, f"<{g.email}>" if g.email else "", f"editor={g.editor}" if g.editor else "") if x)
        lines.append(f"  git       {who}{_at(g)}")
    if b.repo:
        lines.append(f"  repo      {b.repo.url}{_at(b.repo)}")
    if b.entrypoint:
        lines.append(f"  entry     {_short(b.entrypoint)}")
    if b.steps:
        lines.append(f"  steps     {len(b.steps)}")
        lines += [f"    {i:>2}. {_step_line(s)}{_at(s)}" for i, s in enumerate(b.steps, 1)]
    for p in r.ports:
        lines.append(f"  port      {p.container_port} -> {p.listen_addr}:{p.host_port or 'any'} {p.service}{_at(p)}".rstrip())
    for m in r.mounts:
        source = m.host_path or (f"data:{m.data_name}" if m.data_name else "volume")
        lines.append(f"  mount     {source} -> {m.target}{_at(m)}")
    for m in r.docker.mounts:
        lines.append(f"  docker    {m.source or 'volume'} -> {m.target}{' (ro)' if m.read_only else ''}{_at(m)}")
    for m in r.kubernetes.mounts:
        lines.append(f"  pvc       {m.name} {m.size} {m.access_mode} -> {m.target}{_at(m)}")
    if r.environ:
        lines.append("  env       " + " ".join(f"{k}={_short(v, 24)}" for k, v in r.environ))
    if r.extra_path:
        lines.append(f"  path      {':'.join(r.extra_path)}")
    for init in r.init:
        lines.append(f"  init      {_short('; '.join(init.commands))}{_at(init)}")
    for daemon in r.daemons:
        lines.append(f"  daemon    {_short(daemon.args)}{_at(daemon)}")
    for name, command in r.commands:
        lines.append(f"  command   {name}: {_short(command, 50)}")
    if r.jupyter:
        auth = f"token from {JUPYTER_TOKEN_ENV} at run time" if r.jupyter.auth else "no authentication"
        lines.append(f"  jupyter   port {JUPYTER_PORT} -> {r.jupyter.host_port or 'any'}, {auth}{_at(r.jupyter)}")
    if r.rstudio:
        lines.append("  rstudio   yes")
    if r.gpu:
        lines.append(f"  gpu       {r.gpu}")
    if r.shm_size_mb:
        lines.append(f"  shm       {r.shm_size_mb} MB")
    res = r.kubernetes.resources
    if res and (res.cpu or res.memory or res.gpu):
        parts = [f"cpu={res.cpu}" if res.cpu else "", f"memory={res.memory}" if res.memory else "",
                 f"gpu={res.gpu}" if res.gpu else ""]
        lines.append(f"  resources {' '.join(x for x in parts if x)}{_at(res)}")
    if r.kubernetes.service:
        lines.append(f"  service   {r.kubernetes.service.type}{_at(r.kubernetes.service)}")
    lines.append(f"  hash      {env.content_hash()}")
    return "\n".join(lines)


@click.command("check")
@path_argument
@from_option
def check(path: str, from_: str | None) -> None:
    """Evaluate PATH's build file and print a one-screen summary."""
    from dsl.cli._load import load_environment

    click.echo(summary(load_environment(path, from_)))


@click.command("inspect")
@path_argument
@from_option
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True, help="Output format.")
def inspect_(path: str, from_: str | None, fmt: str) -> None:
    """Print the environment's IR as stable JSON (sorted keys) with its content hash."""
    from dsl.cli._load import load_environment

    env = load_environment(path, from_)
    data = {"environment": env.to_data(), "hash": env.content_hash()}
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
