"""``build.envd.lock``: pins for base images, Python distributions and toolchain downloads.

Pure (no engine): the file format (``_format``), what a build file asks the lock for and its
inputs hash (``_inputs``), staleness and the pins of a locked build (``_check``), pip reports
(``_pip``) and checksum files (``_sums``). ``dsl lock`` (``dsl.cli.lock``) resolves on a builder
through ``dsl.engines.buildkit``. See docs/lock.md.
"""

from dsl.lock._check import Staleness, pins_of, staleness
from dsl.lock._format import (
    LOCK_NAME,
    LOCK_VERSION,
    dumps,
    lock_path,
    read_lock,
    write_lock,
)
from dsl.lock._inputs import Wanted, context_files, inputs_of, wanted
from dsl.lock._pip import (
    canonical_name,
    constraints_text,
    packages_of_report,
    requirements_text,
)
from dsl.lock._sums import sha256_from_sums

__all__ = [
    "LOCK_NAME", "LOCK_VERSION", "Staleness", "Wanted", "canonical_name", "constraints_text",
    "context_files", "dumps", "inputs_of", "lock_path", "packages_of_report", "pins_of", "read_lock",
    "requirements_text", "sha256_from_sums", "staleness", "wanted", "write_lock",
]
