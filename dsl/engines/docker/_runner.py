"""The Docker runner: environments as containers, identity and ownership on their labels."""

from __future__ import annotations

import io
import os
import socket
import sys
import tarfile
import time
from collections.abc import Iterator
from typing import Any

from dsl.engines.docker import _apply
from dsl.engines.docker._attach import on_resize, pump, raw_socket, raw_terminal
from dsl.engines.docker._client import base_url, connect, engine_errors, explain, status
from dsl.engines.docker._state import LIST_FILTERS, env_id, from_inspect, from_list_entry
from dsl.engines.runner import (
    DownResult,
    EnvState,
    ImageInfo,
    UpRequest,
    UpResult,
    follow_daemon_logs_script,
    interleave_logs,
)
from dsl.errors import EngineError, UsageError
from dsl.identity import INSTANCE_LABEL, PROJECT_LABEL, Claim

DATA_VOLUME_PREFIX = "envdsl-data-"  # data.envd(name) volumes: shared data sets, never purged
_STOP_TIMEOUT = 10
# Where the entrypoint writes daemon logs: /var/log/dsl, or its state dir when that is not writable.
_LOG_DIRS = ("/var/log/dsl", "{home}/.dsl/logs")


class DockerRunner:
    """:class:`dsl.engines.runner.Runner` on a Docker engine (``docker``, ``unix://``, ``tcp://``)."""

    target = "docker"
    ready_on_up = False  # ready means logged in: the CLI waits for SSH itself

    def __init__(self, address: str = "docker") -> None:
        self.address = address
        self.where = base_url(address) or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.api = connect(address, self.where)

    def close(self) -> None:
        self.api.close()

    # ---- reading ------------------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo:
        with engine_errors(self.where):
            try:
                info = self.api.inspect_image(ref)
            except Exception as exc:  # noqa: BLE001
                if status(exc) == 404:
                    raise UsageError(f"image {ref} is not in the Docker engine at {self.where}",
                                     hint="build it with `dsl build` (or `dsl up` without --image), or pull it") from exc
                raise
        config = info.get("Config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        return ImageInfo(ref=ref, id=info["Id"], user=_numeric_user(config.get("User") or ""),
                         labels=dict(config.get("Labels") or {}), env=env)

    def get(self, env_id_: str) -> EnvState | None:
        with engine_errors(self.where):
            try:
                info = self.api.inspect_container(env_id_)
            except Exception as exc:  # noqa: BLE001
                if status(exc) == 404:
                    return None
                raise
        state = from_inspect(info)
        return state if state.id == env_id(state.labels) else None  # a claim, or not ours

    def generation(self, env_id_: str) -> int:
        seen = self.get(env_id_)
        return seen.claim.generation if seen is not None else 0

    def proxy_args(self) -> tuple[str, ...]:
        return ()  # the context's runner: the block stays valid when DOCKER_HOST is the same

    def forward_ports(self, state: EnvState) -> None:
        return None  # published on the host already

    def list(self, all_namespaces: bool = False) -> list[EnvState]:
        with engine_errors(self.where):
            entries = self.api.containers(all=True, filters=LIST_FILTERS)
        states = [from_list_entry(e) for e in entries]
        return sorted((s for s in states if s.id == env_id(s.labels)), key=lambda s: s.id)

    def _require(self, env_id_: str, *, running: bool = False) -> EnvState:
        state = self.get(env_id_)
        if state is None:
            raise UsageError(f"no environment {env_id_}", hint="see `dsl ls`")
        if running and not state.running:
            raise UsageError(f"environment {env_id_} is {state.status}",
                             hint=f"start it with `dsl up` in {state.project_dir or 'its project directory'}")
        return state

    # ---- changing -----------------------------------------------------------------------

    def up(self, request: UpRequest) -> UpResult:
        with engine_errors(self.where):
            return _apply.apply(self.api, request)

    def wait_stopped_reason(self, env_id_: str, container: str) -> str | None:
        with engine_errors(self.where):
            try:
                info = self.api.inspect_container(container)
            except Exception as exc:  # noqa: BLE001
                if status(exc) != 404:
                    raise
                info = None
            if info is not None and info["Name"].lstrip("/") == env_id_:
                state = info["State"]
                if state.get("Running") and not state.get("Restarting"):
                    return None
            now = self.get(env_id_)
            if now is not None and now.object_id != container:
                return f"{env_id_} was replaced by a newer configuration ({now.claim.describe()})"
            newer = self._newest_other(env_id_, container)
            if newer is not None:  # its claim exists: it removed ours and is about to take the name
                return f"{env_id_} was replaced by a newer configuration ({newer.describe()})"
            if info is None or info["State"].get("Status") in ("removing", "dead"):
                return f"{env_id_} was removed while it was starting"
            try:
                tail = self.api.logs(container, tail=20).decode(errors="replace").rstrip()
            except Exception:  # noqa: BLE001 - removed meanwhile: no logs to show
                tail = ""
            sys.stderr.write("".join(f"  | {line}\n" for line in tail.splitlines()))
            return (f"{env_id_} stopped while starting (exit status {info['State'].get('ExitCode')})"
                    + ("; its last log lines are above" if tail else ""))

    def _related(self, env_id_: str) -> list[dict[str, Any]]:
        """Every container of the environment: the one named ``env_id_`` and any claims."""
        instance, _, project = env_id_.rpartition(".")
        return self.api.containers(all=True, filters={"label": [f"{INSTANCE_LABEL}={instance}",
                                                                f"{PROJECT_LABEL}={project}"]})

    def _newest_other(self, env_id_: str, container: str) -> Claim | None:
        claims = [Claim.from_labels(c.get("Labels") or {}) for c in self._related(env_id_) if c["Id"] != container]
        return max(claims, key=lambda c: c.generation, default=None)

    def down(self, env_id_: str, *, purge: bool) -> DownResult:
        with engine_errors(self.where):
            main = self.get(env_id_)
            related = self._related(env_id_)
            if main is None and not related:
                raise UsageError(f"no environment {env_id_}", hint="see `dsl ls`")
            volumes: list[str] = []
            image = ""
            if main is not None:
                info = self.api.inspect_container(env_id_)
                volumes = [m["Name"] for m in info.get("Mounts") or [] if m.get("Type") == "volume"]
                image = info["Config"].get("Image", "")
                try:
                    self.api.stop(env_id_, timeout=_STOP_TIMEOUT)
                except Exception as exc:  # noqa: BLE001
                    if status(exc) not in (304, 404):
                        raise
            for entry in related:
                try:
                    self.api.remove_container(entry["Id"], force=True)
                except Exception as exc:  # noqa: BLE001
                    if status(exc) not in (404, 409):
                        raise
            if not purge:
                return DownResult(env_id_, main is not None, kept_volumes=tuple(volumes))
            removed, kept = [], []
            for volume in volumes:
                if volume.startswith(DATA_VOLUME_PREFIX):
                    kept.append(volume)
                    continue
                try:
                    self.api.remove_volume(volume)
                    removed.append(volume)
                except Exception as exc:  # noqa: BLE001 - in use by another container: keep it
                    if status(exc) not in (404, 409):
                        raise
                    kept.append(volume)
            removed_image = ""
            if image:
                try:
                    self.api.remove_image(image)
                    removed_image = image
                except Exception as exc:  # noqa: BLE001 - used by another container, or gone
                    if status(exc) not in (404, 409):
                        raise
            return DownResult(env_id_, main is not None, tuple(removed), tuple(kept), removed_image)

    # ---- talking to it ------------------------------------------------------------------

    def exec(self, env_id_: str, argv: list[str], *, tty: bool, stdin: bool = True) -> int:
        self._require(env_id_, running=True)
        with engine_errors(self.where):
            exec_id = self.api.exec_create(env_id_, argv, stdin=stdin or tty, tty=tty)["Id"]
            handle = self.api.exec_start(exec_id, socket=True, tty=tty)
            sock = raw_socket(handle)
            try:
                stdin_fd = sys.stdin.fileno() if (stdin or tty) and sys.stdin is not None else None
                if tty:
                    with raw_terminal(stdin_fd), on_resize(lambda h, w: self.api.exec_resize(exec_id, h, w)):
                        pump(sock, tty=True, stdin_fd=stdin_fd)
                else:
                    pump(sock, tty=False, stdin_fd=stdin_fd)
            finally:
                sock.close()
            for _ in range(100):
                result = self.api.exec_inspect(exec_id)
                if not result.get("Running") and result.get("ExitCode") is not None:
                    return int(result["ExitCode"])
                time.sleep(0.02)
        raise EngineError(f"the command in {env_id_} did not report an exit status")

    def capture(self, env_id_: str, argv: list[str]) -> tuple[int, bytes]:
        self._require(env_id_, running=True)
        with engine_errors(self.where):
            exec_id = self.api.exec_create(env_id_, argv, stdin=False, tty=False, stderr=False)["Id"]
            out = self.api.exec_start(exec_id)
            for _ in range(100):  # the stream ends a moment before the engine records the status
                result = self.api.exec_inspect(exec_id)
                if not result.get("Running") and result.get("ExitCode") is not None:
                    return int(result["ExitCode"]), out
                time.sleep(0.02)
        raise EngineError(f"the command in {env_id_} did not report an exit status")

    def logs(self, env_id_: str, *, follow: bool, tail: int) -> Iterator[tuple[str, bytes]]:
        state = self._require(env_id_)
        if not follow:
            with engine_errors(self.where):
                yield "entrypoint", self.api.logs(env_id_, tail=tail or "all")
                yield from self._daemon_logs(env_id_, state, tail)
            return
        yield from self._follow(env_id_, state, tail)

    def _daemon_logs(self, env_id_: str, state: EnvState, tail: int) -> Iterator[tuple[str, bytes]]:
        """Each daemon's log file, read from the container's filesystem (stopped ones too)."""
        home = _container_home(self.api, env_id_)
        for directory in (d.format(home=home) for d in _LOG_DIRS):
            try:
                stream, _ = self.api.get_archive(env_id_, directory)
            except Exception as exc:  # noqa: BLE001
                if status(exc) == 404:
                    continue
                raise
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                for member in sorted(tar.getmembers(), key=lambda m: m.name):
                    if not member.isfile() or not member.name.endswith(".log"):
                        continue
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    lines = data.splitlines(keepends=True)
                    name = os.path.basename(member.name)[: -len(".log")]
                    yield name, b"".join(lines[-tail:] if tail else lines)
            return

    def _follow(self, env_id_: str, state: EnvState, tail: int) -> Iterator[tuple[str, bytes]]:
        """The container's log and every daemon log, interleaved as they grow (until Ctrl-C)."""

        def entrypoint() -> Iterator[bytes]:
            return self.api.logs(env_id_, stream=True, follow=True, tail=tail or "all")

        def daemons() -> Iterator[bytes]:
            home = _container_home(self.api, env_id_)
            script = follow_daemon_logs_script(" ".join(d.format(home=home) for d in _LOG_DIRS), tail)
            exec_id = self.api.exec_create(env_id_, ["sh", "-c", script])["Id"]
            return self.api.exec_start(exec_id, stream=True)

        import docker.errors
        import requests.exceptions

        return interleave_logs(entrypoint, daemons if state.running else None, describe=explain,
                               errors=(docker.errors.DockerException, requests.exceptions.RequestException, OSError))

    def ssh_address(self, state: EnvState) -> tuple[str, int] | None:
        ssh = state.endpoint("ssh")
        if ssh is None or not ssh.host_port:
            return None
        return ssh.host, ssh.host_port

    def open_stream(self, env_id_: str) -> socket.socket:
        state = self._require(env_id_, running=True)
        address = self.ssh_address(state)
        if address is None:
            raise UsageError(f"environment {env_id_} publishes no SSH port", hint="is it a dev environment?")
        try:
            return socket.create_connection(address, timeout=10)
        except OSError as exc:
            raise EngineError(f"cannot connect to {env_id_}'s sshd at {address[0]}:{address[1]}: "
                              f"{exc.strerror or exc}") from exc


def _numeric_user(user: str) -> tuple[int, int] | None:
    uid, _, gid = user.partition(":")
    if uid.isdigit() and (gid.isdigit() or not gid):
        return int(uid), int(gid or uid)
    return None


def _container_home(api: Any, env_id_: str) -> str:
    env = api.inspect_container(env_id_)["Config"].get("Env") or []
    return next((e.split("=", 1)[1] for e in env if e.startswith("HOME=")), "/home/envd")


