"""Named builder/runner pairs ("contexts"), stored in the user's config directory.

``$XDG_CONFIG_HOME/envdsl/contexts.json`` (default ``~/.config/envdsl``) holds::

    {"current": "gpu-box",
     "contexts": {"gpu-box": {"builder": "tcp://gpu:1234", "runner": "docker", "description": "",
                              "ca_bundle": "/etc/ssl/corp-proxy.pem", "ssh_key": ""},
                  "team": {"builder": "tcp://bk:1234", "runner": "k8s", "registry": "registry.example.com/team",
                           "kube_context": "prod", "namespace": "dev-alice", ...}}}

A builder is a BuildKit address (``docker``, ``docker://``, ``unix://…``, ``tcp://…``,
``docker-container://NAME``, ``kube-pod://NAME?namespace=NS&context=C``); a runner says where
environments run (``docker`` or a Docker host address, or ``k8s`` / ``kubernetes`` / ``kubernetes://KUBECONTEXT``). A Kubernetes context also
names the registry ``dsl up`` pushes to, and the kube context and namespace (empty: the
kubeconfig's). Files written before a field existed still load (the field is empty).
``DSL_CONTEXT`` overrides the current context for one command. Writes are atomic (temp file +
rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from dsl.errors import UsageError

BUILDER_SCHEMES = ("docker", "unix", "tcp", "docker-container", "kube-pod")
RUNNER_SCHEMES = ("docker", "unix", "tcp", "k8s", "kubernetes")
_FIELDS = ("builder", "runner", "description", "ca_bundle", "ssh_key", "registry", "kube_context", "namespace")
DEFAULT_NAME = "default"


@dataclass(frozen=True, slots=True)
class Context:
    """One named pair: where images are built and where environments run."""

    name: str
    builder: str = "docker"
    runner: str = "docker"
    description: str = ""
    ca_bundle: str = ""  # extra CA bundle for build steps (absolute path); "" = none
    ssh_key: str = ""  # the user's own SSH private key for `dsl up`/`ssh` (absolute path); "" = envdsl's
    registry: str = ""  # where `dsl up --target k8s` pushes what it builds (``host[:port]/path``)
    kube_context: str = ""  # the kubeconfig context; "" = its current one
    namespace: str = ""  # "" = the kube context's namespace, else default


def config_dir() -> Path:
    """envdsl's directory under ``$XDG_CONFIG_HOME`` (default ``~/.config``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "envdsl"


def contexts_file() -> Path:
    """The JSON file that stores every context."""
    return config_dir() / "contexts.json"


def _scheme(address: str) -> str:
    return address.split("://", 1)[0] if "://" in address else address


def validate_address(address: str, *, kind: str) -> str:
    """Check a builder or runner address; return it unchanged.

    Raises:
        UsageError: the scheme is not one envdsl can use.
    """
    schemes = BUILDER_SCHEMES if kind == "builder" else RUNNER_SCHEMES
    if _scheme(address) not in schemes:
        raise UsageError(
            f"unsupported {kind} address {address!r}",
            hint="use one of " + ", ".join(s if s in ("docker", "k8s", "kubernetes") else f"{s}://…" for s in schemes),
        )
    return address


def _read() -> dict:
    path = contexts_file()
    try:
        if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO: reading it would wait forever
            raise UsageError(f"{path}: cannot read it (not a regular file)", hint="remove it; it only stores contexts")
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"current": None, "contexts": {}}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror or exc})",
                         hint="check the file's permissions") from exc
    except ValueError as exc:
        raise UsageError(
            f"{path}: not valid JSON ({exc})", hint="fix or remove the file; it only stores contexts"
        ) from exc
    # A hand-edited file can hold any JSON; anything but this shape would fail later in a
    # dict lookup, as a traceback.
    if (
        not isinstance(data, dict)
        or not isinstance(data.setdefault("contexts", {}), dict)
        or not all(isinstance(v, dict) for v in data["contexts"].values())
        or not isinstance(data.setdefault("current", None), str | None)
    ):
        raise UsageError(f"{path}: expected an object with a 'contexts' object of objects and a 'current' name",
                         hint="fix or remove the file; it only stores contexts")
    return data


def _write(data: dict) -> None:
    path = contexts_file()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".contexts-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise UsageError(f"{path}: cannot write it ({exc.strerror or exc})",
                         hint="check that the config directory is writable (or set XDG_CONFIG_HOME)") from exc


def list_contexts() -> tuple[list[Context], str | None]:
    """Every stored context (sorted by name) and the name of the current one."""
    data = _read()
    items = [Context(name=n, **_fields(v)) for n, v in sorted(data["contexts"].items())]
    return items, current_name(data)


def _fields(value: dict) -> dict:
    return {k: str(value[k]) for k in _FIELDS if k in value}


def current_name(data: dict | None = None) -> str | None:
    """The active context's name: ``$DSL_CONTEXT``, else the stored choice, else None."""
    return os.environ.get("DSL_CONTEXT") or (data if data is not None else _read())["current"]


def current_context() -> Context | None:
    """The active context, or None when the built-in default (``docker``/``docker``) applies.

    Raises:
        UsageError: ``DSL_CONTEXT`` or the stored choice names a context that does not exist.
    """
    data = _read()
    name = current_name(data)
    if not name or (name == DEFAULT_NAME and name not in data["contexts"]):
        return None
    if name not in data["contexts"]:
        raise UsageError(f"context {name!r} does not exist", hint="see `dsl context ls`")
    return Context(name=name, **_fields(data["contexts"][name]))


def create_context(context: Context, *, overwrite: bool = False) -> None:
    """Store a new context.

    Raises:
        UsageError: bad name or addresses, or the name exists and ``overwrite`` is False.
    """
    if not context.name or not all(c.isalnum() or c in "-_." for c in context.name):
        raise UsageError(f"invalid context name {context.name!r}", hint="use letters, digits, '-', '_', '.'")
    if context.name == DEFAULT_NAME:
        raise UsageError("'default' is the built-in context (docker builder, docker runner)")
    validate_address(context.builder, kind="builder")
    validate_address(context.runner, kind="runner")
    if context.ca_bundle and not os.path.isabs(context.ca_bundle):
        raise UsageError(f"the CA bundle path {context.ca_bundle!r} is not absolute",
                         hint="a context is used from any directory: give the full path")
    if context.ssh_key and not os.path.isabs(context.ssh_key):
        raise UsageError(f"the SSH key path {context.ssh_key!r} is not absolute",
                         hint="a context is used from any directory: give the full path")
    if context.registry:
        validate_registry(context.registry)
    if context.namespace:
        from dsl import rules

        try:
            rules.dns_label(context.namespace)
        except rules.Invalid as exc:
            raise UsageError(f"--namespace {context.namespace!r} is not a valid namespace name",
                             hint="lowercase letters, digits and '-', at most 63 characters") from exc
    data = _read()
    if context.name in data["contexts"] and not overwrite:
        raise UsageError(f"context {context.name!r} already exists", hint="pass --overwrite to replace it")
    fields = asdict(context)
    del fields["name"]
    data["contexts"][context.name] = fields
    _write(data)


def validate_registry(registry: str) -> str:
    """Check a registry repository prefix (``host[:port][/path]``, no tag or digest).

    Raises:
        UsageError: it is not one (the image-reference parser says why).
    """
    from dsl import rules

    try:
        ref = rules.parse_image_ref(registry + "/x" if "/" not in registry.rstrip("/") else registry.rstrip("/"))
    except rules.Invalid as exc:
        raise UsageError(f"--registry {registry!r}: {exc.message}", hint="e.g. registry.example.com/team or "
                         "localhost:5000") from exc
    if ref.tag or ref.digest:
        raise UsageError(f"--registry {registry!r} has a tag or digest",
                         hint="give the repository prefix only: `dsl up` names the image <registry>/<env>")
    return registry.rstrip("/")


def use_context(name: str) -> None:
    """Make ``name`` the current context (``default`` = the built-in docker/docker pair)."""
    data = _read()
    if name != DEFAULT_NAME and name not in data["contexts"]:
        raise UsageError(f"context {name!r} does not exist", hint="see `dsl context ls`")
    data["current"] = None if name == DEFAULT_NAME else name
    _write(data)


def remove_context(name: str) -> None:
    """Delete a stored context; if it was current, the built-in default becomes current."""
    data = _read()
    if name not in data["contexts"]:
        raise UsageError(f"context {name!r} does not exist", hint="see `dsl context ls`")
    del data["contexts"][name]
    if data["current"] == name:
        data["current"] = None
    _write(data)
