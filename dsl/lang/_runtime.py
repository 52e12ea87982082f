"""Primitives behind ``runtime.*``: commands, services, ports, environment and mounts."""

from __future__ import annotations

from typing import Any

from dsl import rules
from dsl.ir import Daemon, DockerMount, InitScript, KubernetesMount, KubernetesService, Mount, Port, Resources
from dsl.lang._data import DataSource
from dsl.lang._recorder import Recorder
from dsl.lang._registry import primitive
from dsl.lang._unpack import (
    MAX_NAME,
    MAX_PATH,
    Bool,
    Call,
    Command,
    ContainerDir,
    DnsLabel,
    DnsSubdomain,
    EnvName,
    EnvValue,
    HostPort,
    Invalid,
    IPAddress,
    MountPath,
    OptStr,
    PortNumber,
    Quantity,
    Str,
    choice,
    dict_of,
    int_range,
    list_of,
    matching,
    nonblank,
    optional,
    shown,
    type_name,
)

_CommandName = matching(r"[^\x00-\x1f]+", "a command name (non-empty, one line)")
_Command = nonblank(Command)
_QUANTITY_EXAMPLE = {"cpu": "500m", "memory": "8Gi"}


@primitive("runtime.command")
def command(rec: Recorder, call: Call, commands: Any) -> None:
    pairs = call.arg("commands", commands, dict_of(_CommandName, _Command))
    call.check()
    rec.commands.update(pairs)


@primitive("runtime.daemon")
def daemon(rec: Recorder, call: Call, commands: Any) -> None:
    argvs = call.arg("commands", commands, list_of(list_of(_Command), "argv lists (lists of strings)"))
    if argvs and any(not argv for argv in argvs):
        call.fail("argument 'commands': each daemon needs a non-empty argv list")
    call.check()
    rec.daemons.extend(Daemon(args=argv, span=call.span) for argv in argvs)


@primitive("runtime.init")
def init(rec: Recorder, call: Call, commands: Any) -> None:
    cmds = call.arg("commands", commands, list_of(_Command))
    call.check()
    if cmds:
        rec.init.append(InitScript(commands=cmds, span=call.span))


@primitive("runtime.expose")
def expose(rec: Recorder, call: Call, envd_port: Any, host_port: Any, service: Any, listen_addr: Any) -> None:
    port = call.arg("envd_port", envd_port, PortNumber)
    host = call.arg("host_port", host_port, HostPort)
    service = call.arg("service", service, OptStr)
    addr = call.arg("listen_addr", listen_addr, IPAddress)
    call.check()
    rec.ports.append(Port(container_port=port, host_port=host, service=service, listen_addr=addr, span=call.span))


@primitive("runtime.environ")
def environ(rec: Recorder, call: Call, env: Any, extra_path: Any) -> None:
    pairs = call.arg("env", env, dict_of(EnvName, EnvValue))
    paths = call.arg("extra_path", extra_path, list_of(ContainerDir, "absolute paths"))
    call.check()
    for key, value in pairs:
        if key == "PATH":  # envd computes PATH itself
            rec.warn(call.span, "runtime.environ: PATH in env is ignored; use extra_path=[...]")
            continue
        rec.environ[key] = value
    rec.extra_path.extend(p for p in paths if p not in rec.extra_path)


def _host_path(value: Any) -> str | DataSource:
    if isinstance(value, DataSource):
        return value
    text = Str(value, MAX_PATH)
    if not text:
        raise Invalid("expected a host path or data.envd(...), got an empty string")
    if not (text.startswith(("/", "~")) or text.startswith(".")):
        raise Invalid(f"expected an absolute host path, '~/...' or data.envd(...), got {shown(text)}")
    return text


@primitive("runtime.mount")
def mount(rec: Recorder, call: Call, host_path: Any, envd_path: Any) -> None:
    source = call.arg("host_path", host_path, _host_path)
    target = call.arg("envd_path", envd_path, MountPath)
    if target and any(m.target == target for m in rec.mounts):
        call.fail(f"{target} is already mounted", "mount each container path once")
    call.check()
    if isinstance(source, DataSource):
        rec.mounts.append(Mount(target=target, data_name=source.name, span=call.span))
    else:
        rec.mounts.append(Mount(target=target, host_path=source, span=call.span))


@primitive("runtime.docker.mount")
def docker_mount(rec: Recorder, call: Call, target: Any, source: Any, read_only: Any) -> None:
    target = call.arg("target", target, MountPath)
    source = call.arg("source", source, OptStr)
    read_only = call.arg("read_only", read_only, Bool)
    call.check()
    rec.docker_mounts.append(DockerMount(target=target, source=source, read_only=read_only, span=call.span))


@primitive("runtime.kubernetes.mount")
def kubernetes_mount(rec: Recorder, call: Call, name: Any, path: Any, size: Any, storage_class: Any, access_mode: Any) -> None:
    name = call.arg("name", name, DnsLabel)
    path = call.arg("path", path, MountPath)
    size = call.arg("size", size, Quantity)
    storage_class = call.arg("storage_class", storage_class, optional(DnsSubdomain))
    access_mode = call.arg("access_mode", access_mode, choice(*rules.ACCESS_MODES))
    if name and any(m.name == name for m in rec.k8s_mounts):
        call.fail(f"a volume named {name!r} is already declared", "give each runtime.kubernetes.mount a distinct name")
    if path and any(m.target == path for m in rec.k8s_mounts):
        call.fail(f"a volume is already mounted at {path}", "give each runtime.kubernetes.mount a distinct path")
    call.check()
    rec.k8s_mounts.append(
        KubernetesMount(name=name, target=path, size=size, storage_class=storage_class, access_mode=access_mode, span=call.span)
    )


def _opt_quantity(what: str) -> Any:
    example = _QUANTITY_EXAMPLE[what]

    def unpack(value: Any) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, float):
            raise Invalid(f"expected a Kubernetes quantity string, got {type_name(value)}", "write e.g. cpu=\"1.5\" or \"1500m\"")
        return rules.quantity(Str(value, MAX_NAME), example)

    return unpack


@primitive("runtime.kubernetes.resources")
def kubernetes_resources(rec: Recorder, call: Call, cpu: Any, memory: Any, gpu: Any) -> None:
    cpu = call.arg("cpu", cpu, _opt_quantity("cpu"))
    memory = call.arg("memory", memory, _opt_quantity("memory"))
    gpu = call.arg("gpu", gpu, int_range(0, 1024, "GPU count"))
    call.check()
    rec.k8s_resources = Resources(cpu=cpu, memory=memory, gpu=gpu, span=call.span)


@primitive("runtime.kubernetes.service")
def kubernetes_service(rec: Recorder, call: Call, type: Any) -> None:  # noqa: A002 - the builtin's parameter name
    kind = call.arg("type", type, choice(*rules.SERVICE_TYPES))
    call.check()
    rec.k8s_service = KubernetesService(type=kind, span=call.span)
