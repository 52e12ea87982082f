"""What the environment commands (up, ls, ssh, exec, logs, ports, down) share: the runner,
finding an environment by the name people type, and how to reach it over SSH."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from dsl.errors import UsageError

if TYPE_CHECKING:
    from dsl.engines.runner import EnvState, Runner
    from dsl.ssh import SshTarget

ssh_key_option = click.option(
    "--ssh-key", metavar="FILE", envvar="DSL_SSH_KEY",
    help="Your own private key (FILE.pub beside it); default: envdsl's key in its config directory "
         "($DSL_SSH_KEY, else the context's ssh_key).")


def runner_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--target docker|k8s``, ``--kube-context`` and ``-n/--namespace``, handed to the command
    as one ``where`` argument for :func:`open_runner` (the context's runner when not given)."""

    @functools.wraps(command)
    def wrapper(*args: Any, target: str | None, kube_context: str | None, namespace: str | None,
                **kwargs: Any) -> Any:
        where = {"target": target, "kube_context": kube_context, "namespace": namespace}
        return command(*args, where=where, **kwargs)

    options = [
        click.option("--target", type=click.Choice(("docker", "k8s")), default=None,
                     help="Where environments run (default: the context's runner, else docker)."),
        click.option("--kube-context", metavar="NAME", default=None,
                     help="k8s: the kubeconfig context (default: the context's, else the kubeconfig's current)."),
        click.option("--namespace", "-n", metavar="NS", default=None,
                     help="k8s: the namespace (default: the context's, else the kube context's)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def open_runner(where: dict[str, str | None] | None = None) -> Runner:
    """The runner ``where`` (from :func:`runner_options`) names, else the current context's."""
    from dsl.engines.runner import open_runner as make

    return make(**(where or {}))


def resolve(runner: Runner, ref: str) -> EnvState:
    """The environment ``ref`` names: its id (``ws.1a2b3c4d``), its SSH alias, or its name.

    A name two projects use means the one whose project is the current directory, else it is
    ambiguous and the error lists the ids.

    Raises:
        UsageError: no such environment, or an ambiguous name.
    """
    from dsl.identity import SSH_SUFFIX, project_hash

    ref = ref.removesuffix(SSH_SUFFIX)
    if "." in ref:
        exact = runner.get(ref)
        if exact is not None:
            return exact
    matches = [s for s in runner.list() if ref in (s.id, s.instance, s.name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"no environment {ref!r} on {runner.address}", hint="see `dsl ls`")
    here = [s for s in matches if s.project == project_hash(os.getcwd())]
    if len(here) == 1:
        return here[0]
    raise UsageError(f"{ref!r} names {len(matches)} environments: {', '.join(s.id for s in matches)}",
                     hint="use the full name")


def user_key_path(explicit: str | None) -> str | None:
    """``--ssh-key``/``$DSL_SSH_KEY``, else the current context's ``ssh_key``, else None (ours)."""
    if explicit:
        return explicit
    from dsl.contexts import current_context

    context = current_context()
    return (context.ssh_key or None) if context is not None else None


def ssh_target(runner: Runner, state: EnvState, key_file: str | None) -> SshTarget:
    """How ``ssh`` reaches ``state``: its published address, or the runner's byte stream.

    Raises:
        UsageError: the environment is not running, or has no SSH.
    """
    from dsl.identity import SSH_SUFFIX
    from dsl.ssh import SshTarget, dsl_command, known_hosts_file, user_key

    if not state.ssh_user:
        raise UsageError(f"environment {state.id} has no SSH server", hint="only base(dev=True) environments do")
    if not state.running:
        raise UsageError(f"environment {state.id} is {state.status}; envdsl does not start it behind your back",
                         hint=f"start it with `dsl up` in {state.project_dir or 'its project directory'}")
    key = user_key(key_file)
    address = runner.ssh_address(state)
    common = {"user": state.ssh_user, "host_key_alias": state.id + SSH_SUFFIX, "identity_file": key.private,
              "known_hosts": known_hosts_file()}
    if address is not None:
        return SshTarget(host=address[0], port=address[1], **common)
    return SshTarget(proxy_command=(*dsl_command(), "ssh", "--stdio", *runner.proxy_args(), state.id), **common)


def endpoint_lines(state: EnvState, *, alias: str | None) -> list[str]:
    """What ``dsl up``/``dsl ports`` print: how to reach each port."""
    rows = []
    for e in state.endpoints:
        where = f"{e.host}:{e.host_port}" if e.host_port else ("port-forward" if state.kind else "not published")
        if e.name == "ssh":
            how = f"ssh {alias}" if alias else f"dsl ssh {state.id}"
            rows.append((e.name, how, f"({where})"))
        elif e.name in ("jupyter", "rstudio") and e.host_port:
            rows.append((e.name, f"http://{e.host}:{e.host_port}/", ""))
        else:
            rows.append((e.name, where, f"-> {e.container_port}"))
    width = max((len(r[0]) for r in rows), default=0)
    width2 = max((len(r[1]) for r in rows), default=0)
    return [f"  {a.ljust(width)}  {b.ljust(width2)}  {c}".rstrip() for a, b, c in rows]
