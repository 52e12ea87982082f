"""The runtime spec: how the environment runs (ports, mounts, env, daemons, resources).

Generic settings (``runtime.*``, ``config.*``) apply to every target; ``docker`` and
``kubernetes`` hold target-specific settings that override or extend them.
"""

from __future__ import annotations

from dataclasses import field

from dsl.ir._node import Node, node
from dsl.ir._span import Span

SSH_PORT = 2222
JUPYTER_PORT = 8888
# The variable the dev entrypoint reads the notebook token from (set by whoever runs it).
JUPYTER_TOKEN_ENV = "DSL_JUPYTER_TOKEN"
RSTUDIO_PORT = 8787
DEFAULT_SHM_SIZE_MB = 2048


def builtin_ports(*, dev: bool, jupyter: bool, rstudio: bool) -> dict[int, str]:
    """The container ports an environment uses itself (dev environments only): port → name.

    The language refuses a ``runtime.expose`` of one of these and the runtime compilers emit
    them, both from this one definition.
    """
    if not dev:
        return {}
    used = {SSH_PORT: "ssh"}
    if jupyter:
        used[JUPYTER_PORT] = "jupyter"
    if rstudio:
        used[RSTUDIO_PORT] = "rstudio"
    return used


@node
class Port(Node):
    """``runtime.expose``: a port inside the container, optionally published on the host."""

    container_port: int
    host_port: int = 0  # 0 = any free port (docker) / same as container port (k8s Service)
    service: str = ""
    listen_addr: str = "127.0.0.1"
    span: Span | None = field(default=None, compare=False)


@node
class Mount(Node):
    """``runtime.mount``: a persistent directory at ``target``.

    ``host_path`` is a host directory (docker binds it; ``~`` is the user's home),
    ``data_name`` a ``data.envd(name)`` data set; neither = a named volume / PVC.
    """

    target: str
    host_path: str | None = None
    data_name: str | None = None
    span: Span | None = field(default=None, compare=False)


@node
class Jupyter(Node):
    """``config.jupyter(token, port)``: a notebook server on :data:`JUPYTER_PORT`.

    The token itself is never recorded: it is a credential and reaches the container only
    at run time, as ``DSL_JUPYTER_TOKEN``. ``auth`` says whether one is required: False only
    for an explicit ``token=""`` (envd's notebook without authentication).
    """

    auth: bool = True
    host_port: int = 0
    span: Span | None = field(default=None, compare=False)


@node
class InitScript(Node):
    """One ``runtime.init`` call: commands run in one shell at container start."""

    commands: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@node
class Daemon(Node):
    """One entry of ``runtime.daemon``: a supervised long-running process."""

    args: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@node
class Resources(Node):
    """CPU (Kubernetes quantity, e.g. ``"2"``/``"500m"``), memory (``"8Gi"``) and GPU count."""

    cpu: str = ""
    memory: str = ""
    gpu: int = 0
    span: Span | None = field(default=None, compare=False)


@node
class DockerMount(Node):
    """``runtime.docker.mount``: a bind mount (``source`` is a host path) or named volume."""

    target: str
    source: str = ""
    read_only: bool = False
    span: Span | None = field(default=None, compare=False)


@node
class KubernetesMount(Node):
    """``runtime.kubernetes.mount``: a PersistentVolumeClaim mounted at ``target``."""

    name: str
    target: str
    size: str = "10Gi"
    storage_class: str = ""
    access_mode: str = "ReadWriteOnce"
    span: Span | None = field(default=None, compare=False)


@node
class KubernetesService(Node):
    """``runtime.kubernetes.service(type)``: the Service in front of the pod."""

    type: str = "ClusterIP"
    span: Span | None = field(default=None, compare=False)


@node
class DockerSpec(Node):
    """Docker-only runtime settings (``runtime.docker.*``)."""

    mounts: tuple[DockerMount, ...] = ()


@node
class KubernetesSpec(Node):
    """Kubernetes-only runtime settings (``runtime.kubernetes.*``)."""

    mounts: tuple[KubernetesMount, ...] = ()
    resources: Resources | None = None
    service: KubernetesService | None = None


@node
class RuntimeSpec(Node):
    """Everything that defines how the environment runs."""

    ports: tuple[Port, ...] = ()
    mounts: tuple[Mount, ...] = ()
    environ: tuple[tuple[str, str], ...] = ()  # sorted by name
    extra_path: tuple[str, ...] = ()
    init: tuple[InitScript, ...] = ()
    daemons: tuple[Daemon, ...] = ()
    commands: tuple[tuple[str, str], ...] = ()  # sorted by name
    jupyter: Jupyter | None = None
    rstudio: bool = False
    gpu: int | None = None
    shm_size_mb: int | None = None
    docker: DockerSpec = DockerSpec()
    kubernetes: KubernetesSpec = KubernetesSpec()
