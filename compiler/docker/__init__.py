"""Runtime spec + image reference → a Docker container-create body or Compose service.

Pure: the caller passes the build directory and home directory that host paths resolve
against; nothing here reads the machine or talks to a daemon.
"""

from compiler.docker._compose import compose_file
from compiler.docker._create import (
    AUTHORIZED_KEYS_PLACEHOLDER,
    DATA_VOLUME_PREFIX,
    HOST_KEY_FILE_ENV,
    HOST_KEY_FILE_PLACEHOLDER,
    HOST_KEY_MOUNT_PATH,
    JUPYTER_TOKEN_PLACEHOLDER,
    NAME_LABEL,
    DockerOptions,
    PlannedMount,
    compile_container,
    host_path,
    labels,
    plan_mounts,
    runtime_digest,
)

__all__ = [
    "AUTHORIZED_KEYS_PLACEHOLDER", "DATA_VOLUME_PREFIX", "HOST_KEY_FILE_ENV", "HOST_KEY_FILE_PLACEHOLDER",
    "HOST_KEY_MOUNT_PATH", "JUPYTER_TOKEN_PLACEHOLDER", "NAME_LABEL", "DockerOptions",
    "PlannedMount", "compile_container", "compose_file", "host_path", "labels", "plan_mounts",
    "runtime_digest",
]
