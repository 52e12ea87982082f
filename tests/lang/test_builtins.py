"""Every builtin: accepted forms (positional and keyword), recorded defaults, validation errors."""

from __future__ import annotations

import pytest

from dsl import ir
from dsl.docs import parse_docstring
from dsl.lang import builtins


def test_base_defaults_and_reset(env) -> None:
    assert env("base()").build.base == ir.BaseImage("ubuntu:22.04", False)
    e = env('base("python:3.11", True)')
    assert (e.build.base.image, e.build.base.dev) == ("python:3.11", True)
    # envd: every call resets dev; an empty image keeps the previous one
    e = env('base(image="debian:12", dev=True)\nbase(image="")')
    assert (e.build.base.image, e.build.base.dev) == ("debian:12", False)
    e = env('base(image="debian:12", dev=True)\nbase()')
    assert (e.build.base.image, e.build.base.dev) == ("ubuntu:22.04", False)
    assert str(e.build.base.span) == "build.envd:3:5"


def test_shell_run_git_config(env) -> None:
    e = env('shell("ZSH")\nrun(["cd /x", "ls"])\nrun(commands=["make"], mount_host=True)\ngit_config(name="a", email="b@c", editor="vim")')
    assert e.build.shell == "zsh"
    assert e.build.steps == (ir.Run(("cd /x", "ls")), ir.Run(("make",), mount_host=True))
    assert e.build.git_config == ir.GitConfig("a", "b@c", "vim")
    assert env("shell()").build.shell == "bash"


def test_install_toolchains_defaults(env) -> None:
    e = env("install.python()\ninstall.conda()\ninstall.uv()\ninstall.pixi()\ninstall.r_lang()\ninstall.julia()\n"
            "install.rust()\ninstall.go()\ninstall.nodejs()\ninstall.codex()")
    assert e.build.steps == (
        ir.PythonInstall("3.11"), ir.CondaInstall(False), ir.UvInstall("3.11"), ir.PixiInstall(False, ""),
        ir.RLangInstall(), ir.JuliaInstall(), ir.RustInstall(""), ir.GoInstall("1.25.3"),
        ir.NodejsInstall("25.1.0"), ir.CodexInstall(""),
    )


def test_install_toolchains_positional_and_keyword(env) -> None:
    e = env('install.python("3.9")\ninstall.python(version="3")\ninstall.conda(True)\ninstall.uv(python_version="3.12")\n'
            'install.pixi(True, "https://pypi.org/simple")\ninstall.rust("1.80.0")\ninstall.go(version="1.22.1")\ninstall.nodejs("20.1.0")')
    assert e.build.steps == (
        ir.PythonInstall("3.9"), ir.PythonInstall("3.11"), ir.CondaInstall(True), ir.UvInstall("3.12"),
        ir.PixiInstall(True, "https://pypi.org/simple"), ir.RustInstall("1.80.0"), ir.GoInstall("1.22.1"),
        ir.NodejsInstall("20.1.0"),
    )


def test_python_packages_steps_requirements_wheels(env) -> None:
    e = env('install.python_packages(["numpy", "torch --index-url https://download.pytorch.org/whl/cpu"])\n'
            'install.python_packages(name=["pandas[excel]>=2,<3"], requirements="a.txt")\n'
            'install.python_packages(requirements="req/b.txt", local_wheels=["dist/x-1.0-py3-none-any.whl"])')
    steps = e.build.steps
    assert steps[0] == ir.PipPackages(("numpy", "torch --index-url https://download.pytorch.org/whl/cpu"))
    assert steps[1] == ir.PipPackages(("pandas[excel]>=2,<3",))
    # the last requirements file wins
    assert e.build.steps_of(ir.PipRequirements) == (ir.PipRequirements("req/b.txt"),)
    assert e.build.steps_of(ir.PipWheel) == (ir.PipWheel("dist/x-1.0-py3-none-any.whl"),)
    assert [str(s.span) for s in steps[:2]] == ["build.envd:2:5", "build.envd:3:5"]


def test_apt_and_deprecated_system_packages(result) -> None:
    r = result('install.apt_packages(["git", "libgl1-mesa-glx", "curl=7.88.1-10"])\ninstall.system_packages(name=["htop"])')
    assert r.environment.build.steps == (ir.AptPackages(("git", "libgl1-mesa-glx", "curl=7.88.1-10")), ir.AptPackages(("htop",)))
    assert r.warnings == ("build.envd:3:5: warning: install.system_packages is deprecated; use install.apt_packages",)


def test_conda_packages_rules(env, error) -> None:
    e = env('install.conda()\ninstall.conda_packages(name=["numpy=1.26"], channel=["conda-forge"])\n'
            'install.conda_packages(env_file="environment.yml")\ninstall.conda_packages(name=["scipy"])')
    # env_file is overwritten on every call (envd), so the later call without it clears it
    assert e.build.steps_of(ir.CondaPackages) == (
        ir.CondaPackages(("numpy=1.26",), ("conda-forge",)), ir.CondaPackages(("scipy",)))
    err = error('install.conda_packages(name=["numpy"])')
    assert str(err) == "build.envd:2:5: install.conda_packages: cannot install conda packages when conda is not installed"
    err = error('install.conda()\ninstall.conda_packages(name=["a"], env_file="e.yml")')
    assert "env_file cannot be combined with name or channel" in str(err) and err.span.line == 3


def test_r_julia_vscode_cuda(env, error) -> None:
    e = env('install.r_packages(["ggplot2"])\ninstall.julia_packages(name=["Flux"])\n'
            'install.vscode_extensions(["ms-python.python"])\ninstall.cuda("12.2.2")\ninstall.cuda(version="11.8.0", cudnn="9")')
    assert e.build.steps == (ir.RPackages(("ggplot2",)), ir.JuliaPackages(("Flux",)), ir.VscodeExtensions(("ms-python.python",)))
    assert e.build.cuda == ir.Cuda("11.8.0", "9")
    assert str(error("install.r_packages([])")) == "build.envd:2:5: install.r_packages: argument 'name': expected at least one package"
    assert "expected a VS Code extension id" in str(error('install.vscode_extensions(["python"])'))
    assert str(error("install.cuda()")) == "build.envd:2:5: Missing parameter `version` for call to `install.cuda`"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("install.python_packages(name=3)", "install.python_packages: argument 'name': expected a list of strings, got int"),
        ('install.python_packages(name=["numpy; rm -rf /"])', "'rm' is not a marker variable"),
        ('install.python_packages(name=["$(id)"])', "expected a pip requirement, got '$(id)'"),
        ('install.python_packages(name=["./pkg"])', "is a local path"),
        ('install.python_packages(name=["torch --target /usr"])', "pip option '--target'"),
        ('install.python_packages(requirements="/etc/passwd")', "expected a path inside the build context"),
        ('install.python(version="2.7")', "envd doesn't support this Python version: '2.7'"),
        ('install.apt_packages(["Bad Name"])', "expected a Debian package name, got 'Bad Name'"),
        ('install.apt_packages(["curl; reboot"])', "expected a Debian package name"),
        ("install.conda(use_mamba=1)", "argument 'use_mamba': expected a bool (True or False), got int"),
        ('install.pixi(pypi_index="ftp://x")', "argument 'pypi_index': expected an http(s) URL"),
    ],
)
def test_install_validation(error, call: str, message: str) -> None:
    err = error(call)
    assert message in str(err)
    assert (err.span.file, err.span.line, err.span.col) == ("build.envd", 2, 5)


def test_config_settings(env, result) -> None:
    e = env('config.apt_source("deb http://mirror/ubuntu jammy main")\n'
            'config.pip_index("https://mirror/simple", extra_url="https://extra/simple", trust=True)\n'
            'install.conda()\nconfig.conda_channel(channel="channels: [defaults]")\n'
            'config.gpu(2)\nconfig.shm_size(4096)\nconfig.cran_mirror("https://cran.r-project.org")\n'
            'config.julia_pkg_server(url="https://pkg.julialang.org")\nconfig.rstudio_server()\n'
            'config.repo("https://github.com/a/b", description="d")\nconfig.owner(1000, gid=1001)')
    b, r = e.build, e.runtime
    assert b.apt_source.value.startswith("deb http://mirror")
    assert b.pip_index == ir.PipIndex("https://mirror/simple", "https://extra/simple", True)
    assert b.conda_channel.value == "channels: [defaults]"
    assert (r.gpu, r.shm_size_mb, r.rstudio) == (2, 4096, True)
    assert b.cran_mirror.value == "https://cran.r-project.org" and b.julia_pkg_server.value == "https://pkg.julialang.org"
    assert b.repo == ir.Repo("https://github.com/a/b", "d") and b.owner == ir.Owner(1000, 1001)
    # jupyter: defaults, a single extra pip group, historical password= with a warning
    res = result('config.jupyter()\nconfig.jupyter(password="s3cret", port=8899)')
    assert res.environment.runtime.jupyter == ir.Jupyter(auth=True, host_port=8899)
    assert res.environment.build.steps == (ir.PipPackages(("jupyter",)),)
    assert res.warnings == (
        "build.envd:3:5: warning: config.jupyter(password=...) is deprecated; use token=...",
        "build.envd:3:5: warning: config.jupyter: the token given here is not stored in the image; "
        "give it at run time as DSL_JUPYTER_TOKEN (see docs/llb.md)",
    )


@pytest.mark.parametrize(("call", "auth", "warned"), [
    ("config.jupyter()", True, False),  # no token given: one is required at run time
    ("config.jupyter(token=None)", True, False),  # envd files pass None for "unset"
    ('config.jupyter(token="s3cret")', True, True),  # accepted, never stored, still required
    ('config.jupyter(token="")', False, False),  # envd's explicit "no authentication"
])
def test_jupyter_token_is_never_recorded(result, call: str, auth: bool, warned: bool) -> None:
    res = result(call)
    assert res.environment.runtime.jupyter == ir.Jupyter(auth=auth)
    assert "s3cret" not in repr(res.environment) and "s3cret" not in " ".join(res.warnings)
    assert bool(res.warnings) == warned and all("DSL_JUPYTER_TOKEN" in w for w in res.warnings)


def test_entrypoint_custom_image_only(env, error) -> None:
    assert env('base(image="python:3.11", dev=False)\nconfig.entrypoint(["date", "-u"])').build.entrypoint == ("date", "-u")
    err = error('base(dev=True)\nconfig.entrypoint(["date"])')
    assert err.span.line == 3 and "config.entrypoint: is only for custom images" in str(err)
    assert "runtime.init" in err.hint


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("config.pip_index()", "config.pip_index: argument 'url': expected an http(s) URL, got ''"),
        ("config.apt_source()", "config.apt_source: argument 'source': must not be empty"),
        ('config.conda_channel("channels: [x]")', "config.conda_channel: requires install.conda() earlier"),
        ("config.owner(70000, 0)", "argument 'uid': expected a uid/gid in 0..65535, got 70000"),
        ("config.owner(-1, -1)", "argument 'gid': expected a uid/gid in 0..65535, got -1"),
        ('config.jupyter(port="8888")', "argument 'port': expected an int, got string"),
        ("config.shm_size(0)", "argument 'size': expected a size in MB in 1..1048576, got 0"),
        ("config.entrypoint([])", "argument 'args': expected at least one item"),
    ],
)
def test_config_validation(error, call: str, message: str) -> None:
    err = error(call)
    assert message in str(err) and str(err.span) == "build.envd:2:5"


def test_io_copy_http(env, error, result) -> None:
    digest = "sha256:" + "a" * 64
    e = env(f'io.copy("src", "/home/envd/src")\nio.copy(source="a", target="~/a", image="alpine:3")\n'
            f'io.http("https://x.org/f.tgz", checksum="{digest}", filename="f.tgz")')
    assert e.build.steps == (ir.Copy("src", "/home/envd/src"), ir.Copy("a", "~/a", "alpine:3"),
                             ir.HttpDownload("https://x.org/f.tgz", digest, "f.tgz"))
    assert "expected a digest 'sha256:<64 hex digits>'" in str(error('io.http("https://x/y", checksum="md5:1")'))
    r = result('io.copy(host_path="a", envd_path="/b")')
    assert r.environment.build.steps == (ir.Copy("a", "/b"),) and "v0 syntax" in r.warnings[0]


def test_runtime_generic(env) -> None:
    e = env('runtime.command(commands={"go version": "go version", "b": "x"})\nruntime.daemon([["python3", "-m", "http.server"]])\n'
            'runtime.init(["echo hi"])\nruntime.expose(8888)\nruntime.expose(envd_port=6006, host_port=6006, service="tb", listen_addr="0.0.0.0")\n'
            'runtime.environ(env={"B": "2", "A": "1"}, extra_path=["/opt/bin"])\nruntime.environ({"C": "3"})\n'
            'runtime.mount(host_path="~/data", envd_path="~/data")\nruntime.mount(data.envd("mnist"), data.path.huggingface)')
    r = e.runtime
    assert r.commands == (("b", "x"), ("go version", "go version"))
    assert r.daemons == (ir.Daemon(("python3", "-m", "http.server")),) and r.init == (ir.InitScript(("echo hi",)),)
    assert r.ports == (ir.Port(8888), ir.Port(6006, 6006, "tb", "0.0.0.0"))
    assert r.environ == (("A", "1"), ("B", "2"), ("C", "3")) and r.extra_path == ("/opt/bin",)
    assert r.mounts == (ir.Mount("/home/envd/data", host_path="~/data"),
                        ir.Mount("/home/envd/.cache/huggingface", data_name="mnist"))


def test_runtime_target_specific(env) -> None:
    e = env('runtime.docker.mount("/data", source="/srv/data", read_only=True)\nruntime.docker.mount(target="/cache")\n'
            'runtime.kubernetes.mount("data", "/data")\nruntime.kubernetes.mount(name="ds", path="/ds", size="1Ti", storage_class="fast", access_mode="ReadWriteMany")\n'
            'runtime.kubernetes.resources(cpu="500m", memory="8Gi", gpu=1)\nruntime.kubernetes.service(type="NodePort")')
    assert e.runtime.docker.mounts == (ir.DockerMount("/data", "/srv/data", True), ir.DockerMount("/cache"))
    k = e.runtime.kubernetes
    assert k.mounts == (ir.KubernetesMount("data", "/data"), ir.KubernetesMount("ds", "/ds", "1Ti", "fast", "ReadWriteMany"))
    assert k.resources == ir.Resources("500m", "8Gi", 1) and k.service == ir.KubernetesService("NodePort")
    assert env("runtime.kubernetes.service()").runtime.kubernetes.service == ir.KubernetesService("ClusterIP")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("runtime.expose(envd_port=0)", "argument 'envd_port': expected a port number in 1..65535, got 0"),
        ("runtime.expose(80, host_port=70000)", "argument 'host_port': expected a host port (0 = any free port) in 0..65535, got 70000"),
        ('runtime.expose(80, listen_addr="localhost")', "argument 'listen_addr': expected an IP address, got 'localhost'"),
        ('runtime.mount(host_path="/a", envd_path="relative")', "argument 'envd_path': expected an absolute path, got 'relative'"),
        ('runtime.environ(env={"1BAD": "x"})', "key '1BAD': expected an environment variable name"),
        ('runtime.kubernetes.mount("data", "/d", size="ten gigs")', "expected a positive Kubernetes quantity like '10Gi', got 'ten gigs'"),
        ('runtime.kubernetes.mount("data", "/d", size="0Gi")', "expected a positive Kubernetes quantity"),
        ("runtime.kubernetes.resources(cpu=-1)", "argument 'cpu': expected a positive Kubernetes quantity like '500m', got '-1'"),
        ('runtime.kubernetes.mount("data", "/d", access_mode="RW")', "expected one of ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod, got 'RW'"),
        ('runtime.kubernetes.mount("Data_1", "/d")', "argument 'name': expected a DNS label"),
        ('runtime.kubernetes.service("Ingress")', "expected one of ClusterIP, NodePort, LoadBalancer, got 'Ingress'"),
        ('runtime.kubernetes.resources(memory="lots")', "argument 'memory': expected a positive Kubernetes quantity"),
        ('runtime.docker.mount("data")', "argument 'target': expected an absolute path"),
        ('runtime.daemon([["a"], []])', "each daemon needs a non-empty argv list"),
        ('data.envd("../etc")', "expected a data set name"),
    ],
)
def test_runtime_validation(error, call: str, message: str) -> None:
    err = error(call)
    assert message in str(err) and str(err.span) == "build.envd:2:5"


def test_whole_call_is_validated_at_once(error) -> None:
    err = error('runtime.expose(envd_port=0, host_port=70000, listen_addr="nope")')
    assert str(err).count("argument '") == 3


def test_every_builtin_is_documented_and_registered() -> None:
    from dsl.lang._registry import REGISTRY

    names = {b.name for b in builtins()}
    assert names == set(REGISTRY)
    for b in builtins():
        summary = b.doc.splitlines()[0] if b.doc else ""
        assert summary.endswith("."), f"{b.name}: docstring needs a one-line summary"
        assert "Args:" in b.doc, f"{b.name}: docstring needs an Args: section"
        documented = {a.name.lstrip("*") for a in parse_docstring(b.doc).args}
        assert {p.name for p in b.public_params} <= documented, f"{b.name}: undocumented arguments"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('base(image="Ubuntu:22.04")', "base: argument 'image': expected an image reference"),
        ('base(image="ubuntu:22.04; rm -rf /")', "expected an image reference"),
        ('io.copy("../../etc/passwd", "/x")', "io.copy: argument 'source': expected a path inside the build context"),
        ('io.copy("a", "/x", image="BAD IMAGE")', "argument 'image': expected an image reference"),
    ],
)
def test_image_references_and_context_escape(error, call: str, message: str) -> None:
    assert message in str(error(call))


def test_image_references_accepted(env) -> None:
    digest = "a" * 64
    for ref in ("ubuntu:22.04", "python:3.11-slim", "localhost:5000/team/img:v1", f"ghcr.io/a/b@sha256:{digest}", "nvidia/cuda:12.2.2-cudnn8-devel-ubuntu22.04"):
        assert env(f'base(image="{ref}")').build.base.image == ref


def test_prelude_names_are_the_catalogs() -> None:
    """The evaluator's cheap name scan of the stdlib finds exactly the catalog's global builtins."""
    from dsl.lang._catalog import FAMILIES, prelude_names

    names = prelude_names()
    for file, export in FAMILIES:
        expected = (export,) if export else tuple(b.name for b in builtins() if b.file == file)
        assert names[file] == expected
