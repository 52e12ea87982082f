"""Primitives behind ``install.*``: toolchains and packages."""

from __future__ import annotations

from typing import Any

from dsl import rules
from dsl.ir import (
    AptPackages,
    CodexInstall,
    CondaInstall,
    CondaPackages,
    Cuda,
    GoInstall,
    JuliaInstall,
    JuliaPackages,
    NodejsInstall,
    PipPackages,
    PipRequirements,
    PipWheel,
    PixiInstall,
    PythonInstall,
    RLangInstall,
    RPackages,
    RustInstall,
    UvInstall,
    VscodeExtensions,
)
from dsl.lang._recorder import Recorder
from dsl.lang._registry import primitive
from dsl.lang._unpack import (
    AptPackage,
    Bool,
    Call,
    CodexVersion,
    CondaChannel,
    CondaPackage,
    ContextPath,
    CudaVersion,
    HttpUrl,
    Invalid,
    JuliaPackage,
    PythonVersion,
    Requirement,
    RPackage,
    RustToolchain,
    Version,
    VscodeExtension,
    list_of,
    optional,
)


def _non_empty(unpack: Any) -> Any:
    def check(value: Any) -> Any:
        items = unpack(value)
        if not items:
            raise Invalid("expected at least one package")
        return items

    return check


@primitive("install.python")
def python(rec: Recorder, call: Call, version: Any) -> None:
    version = call.arg("version", version, PythonVersion)
    call.check()
    rec.add_step(PythonInstall(version=version, span=call.span))


@primitive("install.conda")
def conda(rec: Recorder, call: Call, use_mamba: Any) -> None:
    use_mamba = call.arg("use_mamba", use_mamba, Bool)
    call.check()
    rec.conda_enabled = True
    rec.add_step(CondaInstall(use_mamba=use_mamba, span=call.span))


@primitive("install.uv")
def uv(rec: Recorder, call: Call, python_version: Any) -> None:
    version = call.arg("python_version", python_version, PythonVersion)
    call.check()
    rec.add_step(UvInstall(python_version=version, span=call.span))


@primitive("install.pixi")
def pixi(rec: Recorder, call: Call, use_pixi_mirror: Any, pypi_index: Any) -> None:
    mirror = call.arg("use_pixi_mirror", use_pixi_mirror, Bool)
    index = call.arg("pypi_index", pypi_index, optional(HttpUrl))
    call.check()
    rec.add_step(PixiInstall(use_pixi_mirror=mirror, pypi_index=index, span=call.span))


@primitive("install.r_lang")
def r_lang(rec: Recorder, call: Call) -> None:
    rec.add_step(RLangInstall(span=call.span))


@primitive("install.julia")
def julia(rec: Recorder, call: Call) -> None:
    rec.add_step(JuliaInstall(span=call.span))


def _versioned(kind: type, default: str, unpack: Any = Version) -> Any:
    def handler(rec: Recorder, call: Call, version: Any) -> None:
        version = call.arg("version", version, optional(unpack))
        call.check()
        rec.add_step(kind(version=version or default, span=call.span))

    return handler


primitive("install.rust")(_versioned(RustInstall, "", RustToolchain))
primitive("install.go")(_versioned(GoInstall, "1.25.3"))
primitive("install.nodejs")(_versioned(NodejsInstall, "25.1.0"))


@primitive("install.codex")
def codex(rec: Recorder, call: Call, version: Any) -> None:
    version = call.arg("version", version, optional(CodexVersion))
    call.check()
    if not version:
        rec.warn(call.span, "install.codex: no version: the latest openai/codex release is fetched when "
                            "the image is built, so two builds can differ; pin one for reproducible builds, "
                            "e.g. install.codex(version='0.155.1')")
    rec.add_step(CodexInstall(version=version, span=call.span))


@primitive("install.apt_packages")
def apt_packages(rec: Recorder, call: Call, name: Any) -> None:
    packages = call.arg("name", name, list_of(AptPackage, "Debian package names"))
    call.check()
    if packages:
        rec.add_step(AptPackages(packages=packages, span=call.span))


@primitive("install.system_packages")
def system_packages(rec: Recorder, call: Call, name: Any) -> None:
    rec.warn(call.span, "install.system_packages is deprecated; use install.apt_packages")
    call.builtin = "install.system_packages"
    apt_packages(rec, call, name)


@primitive("install.python_packages")
def python_packages(rec: Recorder, call: Call, name: Any, requirements: Any, local_wheels: Any) -> None:
    packages = call.arg("name", name, list_of(Requirement, "strings"))
    req = call.arg("requirements", requirements, optional(ContextPath))
    wheels = call.arg("local_wheels", local_wheels, list_of(ContextPath, "paths inside the build context"))
    call.check()
    if packages:
        rec.add_step(PipPackages(packages=packages, span=call.span))
    if req:  # envd: the last requirements file wins
        rec.replace_step(PipRequirements, PipRequirements(path=req, span=call.span))
    for wheel in wheels or ():
        rec.add_step(PipWheel(path=wheel, span=call.span))


@primitive("install.conda_packages")
def conda_packages(rec: Recorder, call: Call, name: Any, channel: Any, env_file: Any) -> None:
    packages = call.arg("name", name, list_of(CondaPackage, "conda package specs"))
    channels = call.arg("channel", channel, list_of(CondaChannel, "channel names"))
    env_file = call.arg("env_file", env_file, optional(ContextPath))
    if env_file and (packages or channels):
        call.fail("env_file cannot be combined with name or channel", "use either an environment file or package names")
    if not rec.conda_enabled:
        call.fail("cannot install conda packages when conda is not installed", "call install.conda() before install.conda_packages()")
    call.check()
    rec.clear_conda_env_file()
    if packages or channels or env_file:
        rec.add_step(CondaPackages(packages=packages, channels=channels, env_file=env_file, span=call.span))


def _packages(kind: type, unpack: Any, what: str) -> Any:
    def handler(rec: Recorder, call: Call, name: Any) -> None:
        packages = call.arg("name", name, _non_empty(list_of(unpack, what)))
        call.check()
        rec.add_step(kind(packages=packages, span=call.span))

    return handler


primitive("install.r_packages")(_packages(RPackages, RPackage, "R package names"))
primitive("install.julia_packages")(_packages(JuliaPackages, JuliaPackage, "Julia package names"))


@primitive("install.vscode_extensions")
def vscode_extensions(rec: Recorder, call: Call, name: Any) -> None:
    extensions = call.arg("name", name, list_of(VscodeExtension, "extension ids"))
    call.check()
    for ext_id in extensions:
        if not rules.vscode_extension_parts(ext_id)[2]:
            rec.warn(call.span, f"install.vscode_extensions: {ext_id!r} has no version: the latest one on "
                                "Open VSX is looked up when the image is built, so two builds can differ; "
                                f"pin it as '{ext_id}-<version>' for reproducible builds")
    if extensions:
        rec.add_step(VscodeExtensions(extensions=extensions, span=call.span))


@primitive("install.cuda")
def cuda(rec: Recorder, call: Call, version: Any, cudnn: Any) -> None:
    version = call.arg("version", version, CudaVersion)
    cudnn = call.arg("cudnn", cudnn, lambda v: CudaVersion(str(v)) if isinstance(v, int) and not isinstance(v, bool) else CudaVersion(v))
    call.check()
    rec.settings["cuda"] = Cuda(version=version, cudnn=cudnn, span=call.span)

