"""The build graph: what goes into the image.

Steps are recorded in declaration order, one node per builtin call; the LLB compiler
imposes envd's stage order where it matters. Single-valued settings (last call wins, as in
envd) live on ``BuildGraph`` itself.
"""

from __future__ import annotations

from dataclasses import field

from dsl.ir._node import Node, node
from dsl.ir._span import Span

DEFAULT_BASE_IMAGE = "ubuntu:22.04"
DEFAULT_PYTHON = "3.11"


@node
class BaseImage(Node):
    """``base(image, dev)``: the image to start from and whether to add the dev layer."""

    image: str = DEFAULT_BASE_IMAGE
    dev: bool = False
    span: Span | None = field(default=None, compare=False)


# ---- toolchains (install.python, install.conda, ...) -------------------------------------


@node
class PythonInstall(Node):
    """``install.python(version)``: a Python interpreter."""

    version: str = DEFAULT_PYTHON
    span: Span | None = field(default=None, compare=False)


@node
class CondaInstall(Node):
    """``install.conda(use_mamba)``: a conda (or micromamba) toolchain."""

    use_mamba: bool = False
    span: Span | None = field(default=None, compare=False)


@node
class UvInstall(Node):
    """``install.uv(python_version)``: uv and the Python it manages."""

    python_version: str = DEFAULT_PYTHON
    span: Span | None = field(default=None, compare=False)


@node
class PixiInstall(Node):
    """``install.pixi(use_pixi_mirror, pypi_index)``: the pixi package manager."""

    use_pixi_mirror: bool = False
    pypi_index: str = ""
    span: Span | None = field(default=None, compare=False)


@node
class RLangInstall(Node):
    """``install.r_lang()``: the R toolchain."""

    span: Span | None = field(default=None, compare=False)


@node
class JuliaInstall(Node):
    """``install.julia()``: the Julia toolchain."""

    span: Span | None = field(default=None, compare=False)


@node
class RustInstall(Node):
    """``install.rust(version)``: the Rust toolchain."""

    version: str = ""  # "" = latest stable
    span: Span | None = field(default=None, compare=False)


@node
class GoInstall(Node):
    """``install.go(version)``: the Go toolchain."""

    version: str = "1.25.3"
    span: Span | None = field(default=None, compare=False)


@node
class NodejsInstall(Node):
    """``install.nodejs(version)``: the Node.js toolchain."""

    version: str = "25.1.0"
    span: Span | None = field(default=None, compare=False)


@node
class CodexInstall(Node):
    """``install.codex(version)``: the OpenAI Codex CLI."""

    version: str = ""  # "" = a pinned default chosen by the compiler
    span: Span | None = field(default=None, compare=False)


# ---- packages ----------------------------------------------------------------------------


@node
class AptPackages(Node):
    """``install.apt_packages(name)``: one apt-get install step."""

    packages: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@node
class PipPackages(Node):
    """One ``install.python_packages(name=[...])`` call: one separately cached pip step."""

    packages: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@node
class PipRequirements(Node):
    """A requirements file, relative to the build context."""

    path: str
    span: Span | None = field(default=None, compare=False)


@node
class PipWheel(Node):
    """A local wheel file, relative to the build context."""

    path: str
    span: Span | None = field(default=None, compare=False)


@node
class CondaPackages(Node):
    """``install.conda_packages(name, channel, env_file)``: one conda install step."""

    packages: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    env_file: str = ""
    span: Span | None = field(default=None, compare=False)


@node
class RPackages(Node):
    """``install.r_packages(name)``: one R package step."""

    packages: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@node
class JuliaPackages(Node):
    """``install.julia_packages(name)``: one Julia package step."""

    packages: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


@node
class VscodeExtensions(Node):
    """``install.vscode_extensions(name)``: VS Code extensions for the dev environment."""

    extensions: tuple[str, ...]
    span: Span | None = field(default=None, compare=False)


# ---- files and commands --------------------------------------------------------------------


@node
class Run(Node):
    """``run(commands)``: one build step running the commands in one ``bash`` script."""

    commands: tuple[str, ...]
    mount_host: bool = False
    span: Span | None = field(default=None, compare=False)


@node
class Copy(Node):
    """``io.copy``: from the build context, or from ``image`` when given."""

    source: str
    target: str
    image: str = ""
    span: Span | None = field(default=None, compare=False)


@node
class HttpDownload(Node):
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


@node
class Owner(Node):
    """UID/GID of the ``envd`` user in dev images."""

    uid: int
    gid: int
    span: Span | None = field(default=None, compare=False)


@node
class Cuda(Node):
    """``install.cuda``: swaps the base image for NVIDIA's CUDA image and enables GPUs."""

    version: str
    cudnn: str = "8"
    span: Span | None = field(default=None, compare=False)


@node
class PipIndex(Node):
    """``config.pip_index(url, extra_url, trust)``: pip's index settings."""

    url: str
    extra_url: str = ""
    trust: bool = False
    span: Span | None = field(default=None, compare=False)


@node
class GitConfig(Node):
    """``git_config(name, email, editor)``: the development user's ~/.gitconfig."""

    name: str = ""
    email: str = ""
    editor: str = ""
    span: Span | None = field(default=None, compare=False)


@node
class Repo(Node):
    """``config.repo(url, description)``: the project's source repository."""

    url: str
    description: str = ""
    span: Span | None = field(default=None, compare=False)


@node
class TextSetting(Node):
    """A verbatim text setting (apt sources, .condarc, a mirror URL) and where it was set."""

    value: str
    span: Span | None = field(default=None, compare=False)


@node
class BuildGraph(Node):
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
