"""What both runtime compilers derive from an Environment: ports, environ, GPU, shm, owner,
and the command a container without one of its own runs.

Kubernetes and Docker differ in how they express these, not in what they are; deriving them
once keeps the two targets in agreement (the same port names, the same GPU rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler import _checks
from compiler._names import DEFAULT_UID, DEV_HOME, dns_label, port_name
from dsl.ir import (
    DEFAULT_SHM_SIZE_MB,
    Environment,
    Span,
    builtin_ports,
)


@dataclass(frozen=True, slots=True)
class NamedPort:
    """A container port with its unique name and where (on the host) it is published."""

    name: str
    container_port: int
    host_port: int = 0
    listen_addr: str = "127.0.0.1"
    span: Span | None = None


def instance_name(env: Environment) -> str:
    """The DNS-safe name of an environment's objects and container: ``<env>[-<function>]``.

    Raises:
        CompileError: the name cannot be made DNS-safe (pointing at ``base()`` when known).
    """
    raw = env.name if env.function in ("", "build") else f"{env.name}-{env.function}"
    return dns_label(raw, span=env.build.base.span, what="environment name")


# PID 1 of a non-dev container whose build file names no entrypoint. The base image's own
# command (``bash`` in most distribution images) exits at once without a terminal, so the
# container would restart for ever and leave nothing for ``kubectl exec`` to enter.
# - Only /bin/sh and its builtins are assumed (no ``sleep``, ``tini`` or coreutils): the
#   blocking child is a shell that stops itself (SIGSTOP), which costs no CPU and never wakes.
# - PID 1 ignores signals it has no handler for, so TERM and INT are trapped and end it at
#   once (``docker stop``/Pod deletion do not wait for the kill timeout).
# - Orphans of ``exec`` sessions are re-parented to PID 1: ``wait`` reaps every child that
#   exits while it blocks (waitpid(-1)), so they do not linger as zombies. A non-interactive
#   shell's ``wait`` does not return for a stopped child, and the loop starts a new one
#   should someone end it.
KEEP_ALIVE_SCRIPT = "trap 'exit 0' TERM INT; while true; do /bin/sh -c 'kill -STOP $$' & wait $!; done"
KEEP_ALIVE_COMMAND = ("/bin/sh", "-c", KEEP_ALIVE_SCRIPT, "dsl-keep-alive")


def keep_alive_command(env: Environment) -> tuple[str, ...]:
    """The command the container runs instead of the image's own, or () to keep the image's.

    A dev image runs its entrypoint (sshd), a build file with ``config.entrypoint`` runs
    that; any other environment gets ``KEEP_ALIVE_COMMAND``.
    """
    if is_dev(env) or env.build.entrypoint:
        return ()
    return KEEP_ALIVE_COMMAND


def is_dev(env: Environment) -> bool:
    """Dev environments (``base(dev=True)``) run sshd and get the SSH key, workdir, ports."""
    return env.build.base.dev


def needs_jupyter_token(env: Environment) -> bool:
    """The dev entrypoint starts Jupyter only with ``DSL_JUPYTER_TOKEN``: the runner must pass
    it (everything but ``config.jupyter(token="")``)."""
    return is_dev(env) and env.runtime.jupyter is not None and env.runtime.jupyter.auth


def workdir(env: Environment) -> str:
    """The project directory inside a dev container: ``/home/envd/<env name>`` (as envd)."""
    return f"{DEV_HOME}/{env.name}"


def ports(env: Environment) -> tuple[NamedPort, ...]:
    """Every container port: ssh, jupyter, rstudio (dev only), then each ``runtime.expose``.

    Raises:
        CompileError: a port out of range, exposed twice, or clashing with a built-in one.
    """
    rt = env.runtime
    builtin = builtin_ports(dev=is_dev(env), jupyter=rt.jupyter is not None, rstudio=rt.rstudio)
    _checks.exposed_ports(rt.ports, builtin)
    out: list[NamedPort] = []
    for number, name in builtin.items():
        if name == "jupyter" and rt.jupyter is not None:
            out.append(NamedPort(name, number, rt.jupyter.host_port, span=rt.jupyter.span))
        else:
            out.append(NamedPort(name, number))
    taken = {p.name for p in out}
    for port in rt.ports:
        name = port_name(port.service, port.container_port, taken)
        out.append(NamedPort(name, port.container_port, port.host_port, port.listen_addr, port.span))
    return tuple(out)


def environ(env: Environment) -> tuple[tuple[str, str], ...]:
    """``runtime.environ`` pairs, checked; ``PATH`` is left to the image (as envd does).

    Raises:
        CompileError: a variable name Kubernetes or Docker would reject.
    """
    return tuple(
        (_checks.env_name(k), _checks.env_value(v)) for k, v in env.runtime.environ if k != "PATH"
    )


def gpu_count(env: Environment) -> int:
    """GPUs to attach: ``config.gpu`` if given, else 1 with ``install.cuda``, else 0."""
    if env.runtime.gpu is not None:
        return max(env.runtime.gpu, 0)
    return 1 if env.build.cuda is not None else 0


def shm_mb(env: Environment) -> int:
    """``/dev/shm`` size in MiB (``config.shm_size``, default 2048 as envd)."""
    return env.runtime.shm_size_mb or DEFAULT_SHM_SIZE_MB


def owner(env: Environment) -> tuple[int, int]:
    """UID and GID of the image's ``envd`` user (``config.owner``/``--owner``, else 1000)."""
    if env.build.owner is not None:
        return env.build.owner.uid, env.build.owner.gid
    return DEFAULT_UID, DEFAULT_UID
