"""The build graph: what goes into the image.

Steps are recorded in declaration order, one node per builtin call; the LLB compiler
imposes envd's stage order where it matters. Single-valued settings (last call wins, as in
envd) live on ``BuildGraph`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsl.ir._span import Span

DEFAULT_BASE_IMAGE = "ubuntu:22.04"
DEFAULT_PYTHON = "3.11"


@dataclass(frozen=True, slots=True)
class BaseImage:
    """``base(image, dev)``: the image to start from and whether to add the dev layer."""

    image: str = DEFAULT_BASE_IMAGE
    dev: bool = False
    span: Span | None = field(default=None, compare=False)


# ---- toolchains (install.python, install.conda, ...) -------------------------------------


@dataclass(frozen=True, slots=True)
class PythonInstall:
    """``install.python(version)``: a Python interpreter."""

    version: str = DEFAULT_PYTHON
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CondaInstall:
    """``install.conda(use_mamba)``: a conda (or micromamba) toolchain."""

    use_mamba: bool = False
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class UvInstall:
    """``install.uv(python_version)``: uv and the Python it manages."""

    python_version: str = DEFAULT_PYTHON
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PixiInstall:
    """``install.pixi(use_pixi_mirror, pypi_index)``: the pixi package manager."""

    use_pixi_mirror: bool = False
    pypi_index: str = ""
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RLangInstall:
    """``install.r_lang()``: the R toolchain."""

    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class JuliaInstall:
    """``install.julia()``: the Julia toolchain."""

    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RustInstall:
    """``install.rust(version)``: the Rust toolchain."""

    version: str = ""  # "" = latest stable
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class GoInstall:
    """``install.go(version)``: the Go toolchain."""

    version: str = "1.25.3"
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class NodejsInstall:
    """``install.nodejs(version)``: the Node.js toolchain."""

    version: str = "25.1.0"
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CodexInstall:
    """``install.codex(version)``: the OpenAI Codex CLI."""

    version: str = ""  # "" = a pinned default chosen by the compiler
    span: Span | None = field(default=None, compare=False)


# ---- packages ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AptPackages:
    """``install.apt_packages(name)``: one apt-get install step."""

    packages: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PipPackages:
    """One ``install.python_packages(name=[...])`` call: one separately cached pip step."""

    packages: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PipRequirements:
    """A requirements file, relative to the build context."""

    path: str
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PipWheel:
    """A local wheel file, relative to the build context."""

    path: str
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CondaPackages:
    """``install.conda_packages(name, channel, env_file)``: one conda install step."""

    packages: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    env_file: str = ""
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RPackages:
    """``install.r_packages(name)``: one R package step."""

    packages: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class JuliaPackages:
    """``install.julia_packages(name)``: one Julia package step."""

    packages: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class VscodeExtensions:
    """``install.vscode_extensions(name)``: VS Code extensions for the dev environment."""

    extensions: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


# ---- files and commands --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """``run(commands)``: one build step running the commands in one ``bash`` script."""

    commands: tuple[str, ...]
    mount_host: bool = False
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Copy:
    """``io.copy``: from the build context, or from ``image`` when given."""

    source: str
    target: str
    image: str = ""
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class HttpDownload:
    """``io.http``: a download checked against ``checksum`` (``sha256:...``) when given."""

    url: str
    checksum: str = ""
    filename: str = ""
    span: Span | None = field(default=None, compare=False)


Step = (
    PythonInstall
    | CondaInstall
    | UvInstall
    | PixiInstall
    | RLangInstall
    | JuliaInstall
    | RustInstall
    | GoInstall
    | NodejsInstall
    | CodexInstall
    | AptPackages
    | PipPackages
    | PipRequirements
    | PipWheel
    | CondaPackages
    | RPackages
    | JuliaPackages
    | VscodeExtensions
    | Run
    | Copy
    | HttpDownload
)


# ---- single-valued settings (last call wins) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Owner:
    """UID/GID of the ``envd`` user in dev images."""

    uid: int
    gid: int
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Cuda:
    """``install.cuda``: swaps the base image for NVIDIA's CUDA image and enables GPUs."""

    version: str
    cudnn: str = "8"
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PipIndex:
    """``config.pip_index(url, extra_url, trust)``: pip's index settings."""

    url: str
    extra_url: str = ""
    trust: bool = False
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class GitConfig:
    """``git_config(name, email, editor)``: the development user's ~/.gitconfig."""

    name: str = ""
    email: str = ""
    editor: str = ""
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Repo:
    """``config.repo(url, description)``: the project's source repository."""

    url: str
    description: str = ""
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class TextSetting:
    """A verbatim text setting (apt sources, .condarc, a mirror URL) and where it was set."""

    value: str
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class BuildGraph:
    """Everything that defines the image."""

    base: BaseImage = BaseImage()
    steps: tuple[Step, ...] = ()
    shell: str = "bash"
    owner: Owner | None = None
    cuda: Cuda | None = None
    apt_source: TextSetting | None = None
    pip_index: PipIndex | None = None
    conda_channel: TextSetting | None = None
    cran_mirror: TextSetting | None = None
    julia_pkg_server: TextSetting | None = None
    git_config: GitConfig | None = None
    entrypoint: tuple[str, ...] = ()
    repo: Repo | None = None

    def steps_of(self, kind: type) -> tuple:
        """The steps of one kind, in declaration order."""
        return tuple(s for s in self.steps if isinstance(s, kind))
