"""The intermediate representation: immutable dataclasses between the language and compilers.

``dsl.ir`` imports nothing else of envdsl; compilers depend on it and nothing more.
"""

from dsl.ir._build import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_PYTHON,
    AptPackages,
    BaseImage,
    BuildGraph,
    CodexInstall,
    CondaInstall,
    CondaPackages,
    Copy,
    Cuda,
    GitConfig,
    GoInstall,
    HttpDownload,
    JuliaInstall,
    JuliaPackages,
    NodejsInstall,
    Owner,
    PipIndex,
    PipPackages,
    PipRequirements,
    PipWheel,
    PixiInstall,
    PythonInstall,
    Repo,
    RLangInstall,
    RPackages,
    Run,
    RustInstall,
    Step,
    TextSetting,
    UvInstall,
    VscodeExtensions,
)
from dsl.ir._environment import Environment, canonical_json, content_hash, to_data
from dsl.ir._runtime import (
    DEFAULT_SHM_SIZE_MB,
    JUPYTER_PORT,
    JUPYTER_TOKEN_ENV,
    RSTUDIO_PORT,
    SSH_PORT,
    Daemon,
    DockerMount,
    DockerSpec,
    InitScript,
    Jupyter,
    KubernetesMount,
    KubernetesService,
    KubernetesSpec,
    Mount,
    Port,
    Resources,
    RuntimeSpec,
    builtin_ports,
)
from dsl.ir._span import Span

__all__ = [
    "DEFAULT_BASE_IMAGE", "DEFAULT_PYTHON", "DEFAULT_SHM_SIZE_MB", "JUPYTER_PORT", "JUPYTER_TOKEN_ENV",
    "RSTUDIO_PORT", "SSH_PORT", "AptPackages", "BaseImage", "BuildGraph", "CodexInstall",
    "CondaInstall", "CondaPackages", "Copy", "Cuda", "Daemon", "DockerMount", "DockerSpec",
    "Environment", "IRDataError", "GitConfig", "GoInstall", "HttpDownload", "InitScript", "JuliaInstall",
    "JuliaPackages", "Jupyter", "KubernetesMount", "KubernetesService", "KubernetesSpec",
    "Mount", "NodejsInstall", "Owner", "PipIndex", "PipPackages", "PipRequirements",
    "PipWheel", "PixiInstall", "Port", "PythonInstall", "RLangInstall", "RPackages", "Repo",
    "Resources", "Run", "RuntimeSpec", "RustInstall", "Span", "Step", "TextSetting",
    "UvInstall", "VscodeExtensions", "builtin_ports", "canonical_json", "content_hash", "environment_from_data",
    "from_data", "to_data",
]


def __getattr__(name: str):  # noqa: ANN202 - PEP 562: only `dsl up --image` needs these
    if name in ("IRDataError", "environment_from_data", "from_data"):
        from dsl.ir import _from_data

        return getattr(_from_data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
