"""The Docker Engine connection of the runner (the ``docker`` SDK, imported here only) and the
one place its errors become ours."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dsl.errors import EngineError, EngineUnavailable, UsageError

_TIMEOUT = 60


def base_url(address: str) -> str | None:
    """The Engine API URL for a runner address (``docker`` = ``$DOCKER_HOST`` or the default)."""
    if address in ("docker", "docker://"):
        return None
    if address.startswith("docker://"):
        return address.removeprefix("docker://")
    return address


def connect(address: str, where: str) -> Any:
    """A ``docker.APIClient`` for ``address`` (``where`` names it in errors).

    Raises:
        EngineUnavailable: the engine does not answer (asked once, for its API version), or the
            address or TLS settings are unusable.
    """
    import docker
    from docker.utils import kwargs_from_env

    url = base_url(address)
    try:
        kwargs = kwargs_from_env() if url is None else {"base_url": url}
        # "auto" asks the daemon (one GET /version): a pinned version is too new for dockerd
        # 20.10 or too old for the newest daemons.
        return docker.APIClient(version="auto", timeout=_TIMEOUT, **kwargs)
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"cannot reach the Docker engine at {where}",
                                hint="is dockerd running? (DOCKER_HOST, or the context's runner address)") from exc


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__


def explain(exc: BaseException) -> str:
    """The engine's own one-line reason for a failed call."""
    return _first_line(exc)


def status(exc: BaseException) -> int:
    """The HTTP status of a failed Engine API call (0 when it never got an answer)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", 0) or 0


@contextlib.contextmanager
def engine_errors(where: str) -> Iterator[None]:
    """Translate the SDK's and the transport's errors into ``EngineError``s (raw one on __cause__).

    ``where`` names the engine in messages (``unix:///run/docker.sock``).
    """
    import docker
    import requests

    try:
        yield
    except docker.errors.NotFound as exc:
        raise UsageError(f"not found on the Docker engine: {_first_line(exc)}") from exc
    except docker.errors.APIError as exc:
        raise EngineError(f"the Docker engine at {where} refused: {_first_line(exc)}") from exc
    except (requests.exceptions.ConnectionError, FileNotFoundError, ConnectionRefusedError) as exc:
        raise EngineUnavailable(f"cannot reach the Docker engine at {where}",
                                hint="is dockerd running? (DOCKER_HOST, or the context's runner address)") from exc
    except requests.exceptions.Timeout as exc:
        raise EngineError(f"the Docker engine at {where} did not answer in time") from exc
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"cannot reach the Docker engine at {where}: {_first_line(exc)}",
                                hint="is dockerd running? (DOCKER_HOST, or the context's runner address)") from exc
