"""The one rule for each kind of value a build file gives: what an IR field may hold.

The language calls these at evaluation, so ``dsl check`` reports a bad value at its
build-file line; the compilers call the same functions as guards for IRs built in Python.
Neither layer has a rule of its own, so a file ``dsl check`` accepts compiles for every
target (tests/lang/test_check_implies_compile.py proves it over generated files). Each rule
takes a ``str`` (the language checks types and sizes first) and returns the value — normalised
where it says so — or raises :class:`Invalid`. docs/values.md lists the rules and why each is
the one it is.

The package imports nothing but the standard library, so both layers may use it (the
compilers import ``dsl.ir``, ``dsl.errors`` and this) and a command that only checks an option
(``dsl build -t``, on the path that skips an unchanged build) does not pay for the IR.
"""

from dsl.rules._invalid import Invalid, shown
from dsl.rules._packages import (
    PIP_OPTIONS,
    PIP_OPTIONS_WITH_VALUE,
    apt_package,
    conda_channel,
    conda_package,
    julia_package,
    pip_item,
    r_package,
    vscode_extension,
    vscode_extension_parts,
)
from dsl.rules._paths import (
    DEV_HOME,
    container_dir,
    context_path,
    download_name,
    file_name,
    image_path,
    mount_path,
    path_in_image,
)
from dsl.rules._reference import ImageRef, cuda_image, parse_image_ref, tag_reference
from dsl.rules._schedule import CRON_HINT, DURATION_HINT, cron_schedule, duration
from dsl.rules._values import (
    ACCESS_MODES,
    CODEX_OLDEST,
    SERVICE_TYPES,
    annotation_key,
    checksum,
    codex_version,
    command_text,
    cuda_version,
    dns_label,
    dns_subdomain,
    env_name,
    env_value,
    exposed_port,
    http_url,
    owner_id,
    python_version,
    quantity,
    rust_toolchain,
    version,
)

__all__ = [
    "ACCESS_MODES", "CODEX_OLDEST", "DEV_HOME", "PIP_OPTIONS", "PIP_OPTIONS_WITH_VALUE", "SERVICE_TYPES",
    "CRON_HINT", "DURATION_HINT", "ImageRef", "Invalid", "annotation_key", "apt_package", "checksum", "codex_version", "command_text", "conda_channel",
    "conda_package", "container_dir", "cron_schedule", "context_path", "cuda_image", "cuda_version",
    "dns_label", "dns_subdomain", "download_name", "duration", "env_name", "env_value", "exposed_port",
    "file_name", "http_url", "owner_id", "image_path", "julia_package", "mount_path", "parse_image_ref",
    "path_in_image", "pip_item", "python_version", "quantity", "r_package", "rust_toolchain",
    "shown", "tag_reference", "version", "vscode_extension", "vscode_extension_parts",
]
