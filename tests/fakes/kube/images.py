"""Image pulls for the Docker-backed kubelet, with the kubelet's events and back-off.

``imagePullPolicy`` as the kubelet reads it: ``IfNotPresent`` uses an image the engine has,
``Always`` pulls, ``Never`` never pulls. A failed pull is ``ErrImagePull``; tries within the
back-off window after it are ``ImagePullBackOff`` (``Back-off pulling image``), the window
doubling from 10 s up to 5 minutes (per Pod and image, as the kubelet keys it).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from .events import NORMAL, WARNING, Recorder

Obj = dict[str, Any]


class PullError(Exception):
    """The image is not there and can't be had now; ``reason`` is the waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclasses.dataclass
class _BackOff:
    until: float = 0.0
    period: float = 0.0
    error: str = ""


class ImagePuller:
    def __init__(self, docker: Any, recorder: Recorder, initial: float = 10.0, cap: float = 300.0) -> None:
        self.docker, self.recorder = docker, recorder
        self.initial, self.cap = initial, cap
        self._backoff: dict[str, _BackOff] = {}

    def _present(self, image: str) -> Obj | None:
        import docker

        try:
            return self.docker.inspect_image(image)
        except docker.errors.ImageNotFound:
            return None

    def ensure(self, pod: Obj, container: Obj, field_path: str) -> Obj:
        """The image's inspect data, pulling as the policy says (raises PullError)."""
        image, policy = container["image"], container.get("imagePullPolicy", "IfNotPresent")
        present = self._present(image)
        if present is not None and policy != "Always":
            self.recorder.event(pod, NORMAL, "Pulled", f'Container image "{image}" already present on machine', field_path)
            return present
        if policy == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            self.recorder.event(pod, WARNING, "ErrImageNeverPull", message, field_path)
            raise PullError("ErrImageNeverPull", message)
        key = f"{pod['metadata']['uid']}_{image}"
        backoff = self._backoff.get(key)
        if backoff is not None and time.monotonic() < backoff.until:
            message = f'Back-off pulling image "{image}"'
            self.recorder.event(pod, NORMAL, "BackOff", message, field_path)
            self.recorder.event(pod, WARNING, "Failed", "Error: ImagePullBackOff", field_path)
            raise PullError("ImagePullBackOff", f"{message}: ErrImagePull: {backoff.error}")
        self.recorder.event(pod, NORMAL, "Pulling", f'Pulling image "{image}"', field_path)
        started = time.monotonic()
        try:
            self._pull(image)
            pulled = self.docker.inspect_image(image)
        except Exception as exc:
            detail = str(getattr(exc, "explanation", None) or exc)
            entry = self._backoff.setdefault(key, _BackOff())
            entry.period = min(self.cap, entry.period * 2 if entry.period else self.initial)
            entry.until, entry.error = time.monotonic() + entry.period, detail
            message = f'Failed to pull image "{image}": {detail}'
            self.recorder.event(pod, WARNING, "Failed", message, field_path)
            self.recorder.event(pod, WARNING, "Failed", "Error: ErrImagePull", field_path)
            raise PullError("ErrImagePull", message) from exc
        self._backoff.pop(key, None)
        took = time.monotonic() - started
        self.recorder.event(pod, NORMAL, "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s '
                            f'({took:.3f}s including waiting). Image size: {pulled.get("Size", 0)} bytes.', field_path)
        return pulled

    def _pull(self, image: str) -> None:
        """``docker pull``; an error reported in the progress stream is raised."""
        import json

        for line in self.docker.pull(image, stream=True):  # a digest or a tag (latest if none)
            for part in line.decode(errors="replace").splitlines():
                if not part.strip():
                    continue
                message = json.loads(part)
                if "error" in message:
                    raise RuntimeError(message["error"])


def image_id(inspect: Obj, image: str) -> str:
    """``status.containerStatuses[].imageID``: the digest of the repository the Pod names (an
    image can be in several), else any repository digest, else the local image ID."""
    digests = inspect.get("RepoDigests") or []
    repository = image.split("@")[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    mine = [d for d in digests if d.split("@")[0] == repository]
    return (mine or digests or [inspect.get("Id", "")])[0]
