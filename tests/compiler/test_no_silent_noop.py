"""No silent no-op: changing any IR field changes at least one artifact a user gets.

Baseline environments come from build files that use every builtin. The test walks the IR
dataclasses generically (every field of every node reachable from a baseline, so a field
added later is covered without editing this file; a new IR class fails the coverage test
until a baseline uses it), makes one change at a time (a
valid new value; an optional node or a list item removed) and compiles every target: the LLB
ops (names and spans live in metadata and are left out), the image config, the Docker create
body, the Compose file and the Kubernetes objects. The parts that only echo the IR (the
``dev.envdsl.environment``/``.runtime``/``.content.hash`` labels and the content-hash
annotations) are left out too, or every change would "show" there.

A field passes when one of its changes, in one baseline, compiles and changes an artifact.
Exceptions are listed with their reason in ``NO_ARTIFACT`` (fields that define no output).
The IR holds no credential at all (asserted below): tokens reach containers at run time only.
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import dsl.ir as ir
from compiler.docker import DockerOptions, compile_container, compose_file
from compiler.image_config import image_config
from compiler.k8s import K8sOptions, compile_k8s
from compiler.llb import compile_environment
from compiler.llb.protos import ops_pb2 as pb
from dsl.errors import CompileError
from dsl.lang import evaluate_source

DEV_BUILD = '''
def build():
    base(image="debian:bookworm", dev=True)
    shell("zsh")
    git_config(name="Dev", email="dev@example.com", editor="vim")
    config.owner(uid=1234, gid=2345)
    config.apt_source(source="deb http://deb.debian.org/debian bookworm main\\n")
    config.pip_index(url="https://pypi.example/simple", extra_url="https://extra.example/simple")
    install.cuda(version="12.2.0", cudnn="8")
    install.apt_packages(name=["jq"])
    install.python(version="3.11")
    install.conda()
    config.conda_channel(channel="channels: [conda-forge]")
    install.conda_packages(name=["numpy"], channel=["conda-forge"])
    install.conda_packages(env_file="environment.yml")
    install.uv(python_version="3.11")
    install.pixi(pypi_index="https://pypi.example/simple")
    install.r_lang()
    config.cran_mirror(url="https://cran.example")
    install.r_packages(name=["dplyr"])
    install.julia()
    config.julia_pkg_server(url="https://julia.example")
    install.julia_packages(name=["Example"])
    install.rust(version="1.80.0")
    install.go(version="1.25.3")
    install.nodejs(version="25.1.0")
    install.codex(version="0.155.1")
    install.python_packages(name=["six"], requirements="requirements.txt", local_wheels=["dist/x-1.0-py3-none-any.whl"])
    io.copy(source="src", target="/opt/src")
    io.copy(source="/etc/os-release", target="/opt/os-release", image="alpine:3")
    io.http(url="https://example.com/data.tgz", checksum="sha256:" + "ab" * 32, filename="data.tgz")
    run(commands=["echo hi"])
    install.vscode_extensions(name=["ms-python.python-2024.0.1"])
    config.jupyter(token="tok", port=8899)
    config.rstudio_server()
    config.gpu(count=2)
    config.shm_size(size=4096)
    config.repo(url="https://github.com/example/proj", description="demo")
    runtime.command(commands={"test": "pytest"})
    runtime.daemon(commands=[["sleep", "1000"]])
    runtime.init(commands=["echo init"])
    runtime.expose(envd_port=8000, service="api")
    runtime.environ(env={"APP": "1"}, extra_path=["/opt/bin"])
    runtime.mount(host_path="~/data", envd_path="/home/envd/data")
    runtime.mount(host_path=data.envd(name="ds"), envd_path="/home/envd/ds")
    runtime.docker.mount(target="/cache", source="~/cache")
    runtime.kubernetes.mount(name="scratch", path="/scratch", size="20Gi", storage_class="standard")
    runtime.kubernetes.resources(cpu="2", memory="8Gi", gpu=1)
    runtime.kubernetes.service(type="NodePort")
'''
# What only a serving image has (config.entrypoint is an error with dev=True).
SERVING_BUILD = '''
def build():
    base(image="python:3.11-slim", dev=False)
    config.entrypoint(args=["python3", "-m", "http.server"])
    runtime.expose(envd_port=8000)
'''

# (class, field) -> why it defines no artifact. "*" = every class.
NO_ARTIFACT: dict[tuple[str, str], str] = {
    ("*", "span"): "a source location: vertex metadata and error messages only",
    ("Environment", "source"): "where the build file was read from: messages only",
}
# Credentials: a changed value must reach no artifact at all (not even the echo labels).
# Steps the image builder refuses (a compile error naming the builtin, with a hint). None
# Field paths whose generic change would be invalid: the value to use instead.
CHANGES: dict[str, Callable[[Any], Any]] = {
    "build.shell": lambda v: "fish" if v != "fish" else "zsh",
    "build.steps[PythonInstall].version": lambda v: "3.12",
    "build.steps[UvInstall].python_version": lambda v: "3.12",
    "build.steps[CodexInstall].version": lambda v: "0.156.0",
    "build.steps[HttpDownload].checksum": lambda v: "sha256:" + "cd" * 32,
    "runtime.kubernetes.resources.memory": lambda v: "9Gi",
    "runtime.kubernetes.mounts[KubernetesMount].size": lambda v: "30Gi",
    "runtime.kubernetes.mounts[KubernetesMount].access_mode": lambda v: "ReadWriteMany",
    "runtime.kubernetes.service.type": lambda v: "LoadBalancer",
}
ECHO_LABELS = ("dev.envdsl.environment", "dev.envdsl.runtime", "dev.envdsl.content.hash")
HASH_KEY = "envdsl/content-hash"
DOCKER = DockerOptions(image="registry.example/ws:1", build_dir="/srv/proj", home="/home/me")
K8S = K8sOptions(image="registry.example/ws:1")


def _evaluate(source: str) -> ir.Environment:
    result = evaluate_source(textwrap.dedent(source), context_dir="/srv/proj")
    assert result.environment is not None
    return result.environment


BASELINES = {"dev": _evaluate(DEV_BUILD), "serving": _evaluate(SERVING_BUILD)}


# ---- artifacts ---------------------------------------------------------------------------------


def artifacts(env: ir.Environment, *, echoes: bool = False) -> dict[str, bytes]:
    """Every target's output as bytes; without ``echoes``, the parts that restate the IR go.

    Raises:
        CompileError: a target refuses the environment.
    """
    llb = compile_environment(env)
    ops = list(getattr(pb.Definition.FromString(llb.definition), "def"))  # no metadata: names, spans
    config = image_config(env, base_config=None)
    body = compile_container(env, DOCKER)
    objects = [dict(o) for o in compile_k8s(env, K8S)]
    out = {
        "llb": b"".join(ops) + repr((llb.local_sources, llb.secrets)).encode(),
        "image-config": config,
        "docker": body,
        "compose": compose_file("ws", body),
        "k8s": objects,
    }
    if not echoes:
        out["image-config"] = _without(config, lambda c: [c["config"]["Labels"]], ECHO_LABELS)
        out["docker"] = _without(body, lambda b: [b["Labels"]], (HASH_KEY,))
        out["compose"] = _without(out["compose"], lambda c: [s["labels"] for s in c["services"].values()], (HASH_KEY,))
        out["k8s"] = _without(objects, lambda objs: [o["metadata"]["annotations"] for o in objs], (HASH_KEY,))
    return {k: v if isinstance(v, bytes) else ir.canonical_json(v) for k, v in out.items()}


def _without(data: Any, where: Callable[[Any], list[dict]], keys: tuple[str, ...]) -> Any:
    copy = json.loads(json.dumps(data))
    for mapping in where(copy):
        for key in keys:
            mapping.pop(key, None)
    return copy


# ---- the walk ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Variant:
    """One baseline with one change at ``path`` (list items named by class, as in
    ``build.steps[PipPackages].packages``)."""

    baseline: str
    path: str
    env: ir.Environment


def _is_node(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type) and not isinstance(value, ir.Span)


def _new_values(path: str, value: Any, kind: str) -> list[Any]:
    """Valid changed values for one field (the generic rule, or ``CHANGES``)."""
    if path in CHANGES:
        return [CHANGES[path](value)]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1]
    if isinstance(value, str):
        return [value + "1" if value else "x"]
    if _is_node(value):
        return [None] if "None" in kind else []  # an optional setting removed; fields walked below
    if value is None:
        if kind.startswith("str"):
            return ["x1"]
        if kind.startswith("int"):
            return [1]
        return []  # an unset optional node: another baseline must set it (checked below)
    if isinstance(value, tuple):
        if value and _is_node(value[0]):
            return []  # items are removed and walked one by one
        if value and isinstance(value[0], tuple):  # sorted (name, value) pairs
            (name, text), *rest = value
            return [((name, text + "1"), *rest), (*value, ("zz_added", "1"))]
        if value:
            return [(*value, value[-1] + "1")]
        if kind.startswith("tuple[str"):
            return [("x",)]
        if kind.startswith("tuple[tuple[str, str]"):
            return [(("x", "1"),)]
        return []  # no items of a node list here: another baseline must have some (see above)
    raise AssertionError(f"{path}: no rule for a {type(value).__name__}; add one to CHANGES")


def walk(node: Any, path: str, seen: set[str]) -> Iterator[tuple[str, Any]]:
    """``(field path, node with one change)`` for every field below ``node``; the classes
    met go into ``seen``."""
    seen.add(type(node).__name__)
    for f in dataclasses.fields(node):
        name, value = f.name, getattr(node, f.name)
        fpath = f"{path}.{name}" if path else name
        if ("*", name) in NO_ARTIFACT or (type(node).__name__, name) in NO_ARTIFACT:
            continue
        (UNSET if value is None or value == () else SET).add(fpath)
        for new in _new_values(fpath, value, str(f.type)):
            if new != value:
                yield fpath, dataclasses.replace(node, **{name: new})
        if _is_node(value):
            for p, child in walk(value, fpath, seen):
                yield p, dataclasses.replace(node, **{name: child})
        elif isinstance(value, tuple) and value and _is_node(value[0]):
            for i, item in enumerate(value):
                ipath = f"{fpath}[{type(item).__name__}]"
                yield f"{ipath} removed", dataclasses.replace(node, **{name: value[:i] + value[i + 1:]})
                for p, child in walk(item, ipath, seen):
                    yield p, dataclasses.replace(node, **{name: (*value[:i], child, *value[i + 1:])})


UNSET: set[str] = set()  # field paths that are None or () in a baseline
SET: set[str] = set()


def _variants() -> tuple[dict[str, list[Variant]], set[str]]:
    by_path: dict[str, list[Variant]] = {}
    seen: set[str] = set()
    for label, env in BASELINES.items():
        for path, changed in walk(env, "", seen):
            by_path.setdefault(path, []).append(Variant(label, path, changed))
    return by_path, seen


VARIANTS, SEEN_CLASSES = _variants()
_BASE_ARTIFACTS = {label: artifacts(env) for label, env in BASELINES.items()}


@pytest.mark.parametrize("path", sorted(VARIANTS))
def test_changing_the_field_changes_an_artifact(path: str) -> None:
    tried: list[str] = []
    for variant in VARIANTS[path]:
        try:
            changed = artifacts(variant.env)
        except CompileError as exc:
            tried.append(f"{variant.baseline}: not valid there ({exc})")
            continue
        base = _BASE_ARTIFACTS[variant.baseline]
        if any(changed[k] != base[k] for k in base):
            return
        tried.append(f"{variant.baseline}: every artifact is byte-identical")
    pytest.fail(f"{path}: a silent no-op ({'; '.join(tried)})", pytrace=False)


def test_the_ir_holds_no_credential() -> None:
    # A token or password in the IR would reach the echo labels and `dsl inspect`; credentials
    # reach the container at run time only (tests/test_secret_scan.py scans every output).
    suspicious = re.compile(r"token|password|passwd|secret|credential", re.I)
    found = [f"{name}.{f.name}" for name in _ir_classes() for f in dataclasses.fields(getattr(ir, name))
             if suspicious.search(f.name)]
    assert not found, f"IR fields that look like credentials: {found}"


def test_every_optional_field_is_set_in_a_baseline() -> None:
    missing = UNSET - SET
    assert not missing, f"set {sorted(missing)} in a baseline build file, so its fields are walked"


def _ir_classes() -> set[str]:
    return {name for name in ir.__all__ if isinstance(getattr(ir, name), type)
            and dataclasses.is_dataclass(getattr(ir, name)) and getattr(ir, name) is not ir.Span}


def test_every_ir_class_is_in_a_baseline() -> None:
    missing = _ir_classes() - SEEN_CLASSES
    assert not missing, f"add a use of {sorted(missing)} to a baseline build file"


def test_the_artifacts_see_a_real_change_and_ignore_only_echoes() -> None:
    """The comparison itself: a vertex rename is not a change, a pip package is."""
    env = BASELINES["dev"]
    assert artifacts(env) == artifacts(dataclasses.replace(env, source="elsewhere/build.envd"))
    steps = tuple(dataclasses.replace(s, span=ir.Span("other.envd", 99)) for s in env.build.steps)
    assert artifacts(dataclasses.replace(env, build=dataclasses.replace(env.build, steps=steps))) == artifacts(env)
    more = dataclasses.replace(env, build=dataclasses.replace(
        env.build, steps=(*env.build.steps, ir.PipPackages(("idna",)))))
    assert artifacts(more)["llb"] != artifacts(env)["llb"]
