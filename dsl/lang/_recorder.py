"""Per-evaluation state: what the builtins of one build file have declared so far.

envd mutates one process-global graph; we keep one :class:`Recorder` per evaluation
(bound through a context variable while that evaluation runs) so the evaluator can be called
repeatedly and concurrently in one process. ``finish()`` freezes it into the IR.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field, replace
from typing import Any

from dsl.errors import BuildFileError, InternalError
from dsl.ir import (
    BaseImage,
    BuildGraph,
    CondaPackages,
    DockerMount,
    DockerSpec,
    Environment,
    InitScript,
    KubernetesMount,
    KubernetesService,
    KubernetesSpec,
    Daemon,
    Mount,
    Port,
    Resources,
    RuntimeSpec,
    Span,
    Step,
)
from dsl.lang._combinations import check_combinations


@dataclass
class Recorder:
    """The mutable accumulation of one evaluation; only builtins write to it."""

    base: BaseImage = BaseImage()
    steps: list[Step] = field(default_factory=list)
    shell: str = "bash"
    shell_span: Span | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # BuildGraph single-valued fields
    entrypoint_span: Span | None = None
    ports: list[Port] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    environ: dict[str, str] = field(default_factory=dict)
    extra_path: list[str] = field(default_factory=list)
    init: list[InitScript] = field(default_factory=list)
    daemons: list[Daemon] = field(default_factory=list)
    commands: dict[str, str] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)  # jupyter, rstudio, gpu, shm_size_mb
    docker_mounts: list[DockerMount] = field(default_factory=list)
    k8s_mounts: list[KubernetesMount] = field(default_factory=list)
    k8s_resources: Resources | None = None
    k8s_service: KubernetesService | None = None
    conda_enabled: bool = False
    warnings: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # print() output
    pending: BuildFileError | InternalError | None = None  # the error a primitive raised, with its span
    sources: dict[str, list[str]] = field(default_factory=dict)  # display name -> lines
    include_errors: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # url -> (message, hint)

    # ---- recording helpers used by the family modules ------------------------------------

    def add_step(self, step: Step) -> None:
        """Append a build step in declaration order."""
        self.steps.append(step)

    def replace_step(self, kind: type, step: Step) -> None:
        """Drop earlier steps of ``kind``, then append ``step``.

        For envd's "last call wins" settings that are still ordered steps (``requirements``).
        """
        self.steps = [s for s in self.steps if not isinstance(s, kind)]
        self.steps.append(step)

    def clear_conda_env_file(self) -> None:
        """envd overwrites ``env_file`` on every ``conda_packages`` call: forget older ones."""
        kept: list[Step] = []
        for s in self.steps:
            if isinstance(s, CondaPackages) and s.env_file:
                if not (s.packages or s.channels):
                    continue
                s = replace(s, env_file="")
            kept.append(s)
        self.steps = kept

    def warn(self, span: Span | None, message: str) -> None:
        """Record a deprecation or compatibility warning (printed by the CLI on stderr)."""
        text = f"{span}: warning: {message}" if span else f"warning: {message}"
        if text not in self.warnings:
            self.warnings.append(text)

    # ---- freezing ------------------------------------------------------------------------

    def finish(self, name: str, source: str, function: str) -> Environment:
        """Freeze the recorded state into an :class:`Environment`.

        Raises:
            BuildFileError: declarations that are only wrong in combination
                (``config.entrypoint`` in a dev image, see also ``_combinations``).
        """
        if self.settings.get("entrypoint") and self.base.dev:
            raise BuildFileError(
                "config.entrypoint: is only for custom images (base(dev=False)); a dev image runs its own supervisor",
                span=self.entrypoint_span,
                hint="use runtime.init([...]) or runtime.daemon([[...]]) to start commands in a dev environment",
            )
        if self.shell != "bash" and not self.base.dev:  # envd: the shell is part of the dev layer
            self.warn(self.shell_span, f'shell("{self.shell}") has no effect without base(dev=True)')
        build = BuildGraph(base=self.base, steps=tuple(self.steps), shell=self.shell, **self.settings)
        runtime = RuntimeSpec(
            ports=tuple(self.ports),
            mounts=tuple(self.mounts),
            environ=tuple(sorted(self.environ.items())),
            extra_path=tuple(self.extra_path),
            init=tuple(self.init),
            daemons=tuple(self.daemons),
            commands=tuple(sorted(self.commands.items())),
            docker=DockerSpec(mounts=tuple(self.docker_mounts)),
            kubernetes=KubernetesSpec(
                mounts=tuple(self.k8s_mounts), resources=self.k8s_resources, service=self.k8s_service
            ),
            **self.runtime,
        )
        env = Environment(name=name, build=build, runtime=runtime, source=source, function=function)
        check_combinations(env)
        return env


_CURRENT: contextvars.ContextVar[Recorder] = contextvars.ContextVar("envdsl_recorder")


def current() -> Recorder:
    """The recorder of the evaluation running on this thread/context."""
    return _CURRENT.get()


def bind(recorder: Recorder) -> contextvars.Token[Recorder]:
    """Make ``recorder`` current; pass the token to :func:`unbind` when done."""
    return _CURRENT.set(recorder)


def unbind(token: contextvars.Token[Recorder]) -> None:
    """Restore the previous recorder."""
    _CURRENT.reset(token)
