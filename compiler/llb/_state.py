"""The immutable LLB ``State``: each step returns a new state linked to its parent.

Modelled on the shape of BuildKit's Go ``client/llb``: a state is a value holding the
filesystem it stands for (an op output, or scratch) and the process defaults later exec steps
inherit (env, working directory, user, platform). Nothing fails here; ``marshal`` validates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from compiler.llb._ops import (
    Describe,
    DiffOp,
    ExecOp,
    FileAction,
    FileOp,
    MergeOp,
    MountSpec,
    Output,
    Platform,
    SourceOp,
)
from compiler.llb._refs import normalize_image_ref
from dsl.ir import Span

DEFAULT_PLATFORM = Platform()


@dataclass(frozen=True, slots=True)
class State:
    """A filesystem plus the defaults for processes run on it.

    ``output`` is ``None`` for scratch (the empty filesystem).
    """

    output: Output | None = None
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = "/"
    user: str = ""
    platform: Platform = DEFAULT_PLATFORM

    # ---- process defaults ------------------------------------------------------------------

    def with_env(self, key: str, value: str) -> State:
        """Set one environment variable for later exec steps (replacing an earlier value)."""
        kept = tuple((k, v) for k, v in self.env if k != key)
        return replace(self, env=kept + ((key, value),))

    def with_cwd(self, path: str) -> State:
        """Set the working directory of later exec steps."""
        return replace(self, cwd=path)

    def with_user(self, user: str) -> State:
        """Set the user (name or ``uid[:gid]``) of later exec steps."""
        return replace(self, user=user)

    def env_list(self) -> tuple[str, ...]:
        """The environment as ``K=V`` strings, in the order the variables were set."""
        return tuple(f"{k}={v}" for k, v in self.env)

    def with_output(self, output: Output | None) -> State:
        """This state's defaults on another filesystem."""
        return replace(self, output=output)

    # ---- steps ---------------------------------------------------------------------------

    def run(
        self,
        args: Sequence[str],
        *,
        mounts: Iterable[MountSpec] = (),
        name: str = "",
        span: Span | None = None,
    ) -> State:
        """Run ``args`` (argv, no shell added) on this state; the new root is the result.

        Args:
            args: the argv of the process.
            mounts: extra mounts (bind, cache, secret, tmpfs).
            name: the vertex name shown in progress output.
            span: the build-file call that asked for this step.

        Returns:
            The state whose filesystem is the root after the process exits.
        """
        problem = "" if args else "exec step with no command"
        op = ExecOp(
            self.platform, Describe(name or " ".join(args)[:200], span),
            root=self.output, args=tuple(args), env=self.env_list(), cwd=self.cwd,
            user=self.user, mounts=tuple(mounts), problem=problem,
        )
        return self.with_output(Output(op))

    def file(self, *actions: FileAction, name: str = "", span: Span | None = None) -> State:
        """Apply file actions (mkdir, mkfile, rm, copy) in order; returns the changed state."""
        problem = "" if actions else "file step with no actions"
        op = FileOp(self.platform, Describe(name or _describe_actions(actions), span),
                    base=self.output, actions=tuple(actions), problem=problem)
        return self.with_output(Output(op))


def _describe_actions(actions: Sequence[FileAction]) -> str:
    return "; ".join(f"{type(a).__name__.lower()} {getattr(a, 'path', getattr(a, 'dest', ''))}"
                     for a in actions)


def scratch(platform: Platform = DEFAULT_PLATFORM) -> State:
    """The empty filesystem."""
    return State(platform=platform)


def image(
    ref: str,
    *,
    platform: Platform = DEFAULT_PLATFORM,
    name: str = "",
    span: Span | None = None,
) -> State:
    """A container image as a state (``docker-image://`` with the docker-normalised ref).

    An invalid reference is reported by ``marshal`` with ``span``.
    """
    try:
        normal, problem = normalize_image_ref(ref), ""
    except ValueError as exc:
        normal, problem = ref, str(exc)
    op = SourceOp(platform, Describe(name or f"docker-image://{normal}", span),
                  identifier=f"docker-image://{normal}", problem=problem)
    return State(output=Output(op), platform=platform)


def local(
    name: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    shared_key_hint: str = "",
    platform: Platform = DEFAULT_PLATFORM,
    vertex_name: str = "",
    span: Span | None = None,
) -> State:
    """A directory the client session serves (``local://NAME``).

    No session id goes into the attrs, so the digest does not change from build to build;
    the engine names the session on the solve request instead.
    """
    attrs: dict[str, str] = {}
    if include:
        attrs["local.includepattern"] = json.dumps(sorted(set(include)))
    if exclude:
        attrs["local.excludepatterns"] = json.dumps(sorted(set(exclude)))
    if shared_key_hint:
        attrs["local.sharedkeyhint"] = shared_key_hint
    op = SourceOp(platform, Describe(vertex_name or f"local://{name}", span),
                  identifier=f"local://{name}", attrs=tuple(sorted(attrs.items())),
                  problem="" if name else "local source with no name")
    return State(output=Output(op), platform=platform)


def http(
    url: str,
    *,
    checksum: str = "",
    filename: str = "",
    perm: int = 0,
    platform: Platform = DEFAULT_PLATFORM,
    name: str = "",
    span: Span | None = None,
) -> State:
    """A file downloaded by the builder; with ``checksum`` (``sha256:...``) it is verified."""
    attrs: dict[str, str] = {}
    if checksum:
        attrs["http.checksum"] = checksum
    if filename:
        attrs["http.filename"] = filename
    if perm:
        attrs["http.perm"] = format(perm, "o")
    problem = "" if url.startswith(("https://", "http://")) else f"not an http(s) URL: {url!r}"
    op = SourceOp(platform, Describe(name or url, span), identifier=url,
                  attrs=tuple(sorted(attrs.items())), problem=problem)
    return State(output=Output(op), platform=platform)


def merge(states: Sequence[State], *, name: str = "", span: Span | None = None) -> State:
    """Overlay ``states`` in order (later wins); needs the builder's ``mergeop`` cap.

    The result keeps the first state's process defaults.
    """
    first = states[0] if states else State()
    op = MergeOp(first.platform, Describe(name or "merge", span),
                 inputs=tuple(s.output for s in states),
                 problem="" if len(states) >= 2 else "merge needs at least two states")
    return first.with_output(Output(op))


def diff(lower: State, upper: State, *, name: str = "", span: Span | None = None) -> State:
    """The changes that turn ``lower`` into ``upper``; needs the ``diffop`` cap."""
    op = DiffOp(upper.platform, Describe(name or "diff", span),
                lower=lower.output, upper=upper.output)
    return upper.with_output(Output(op))
