"""Golden digests: the same environment gives the same bytes in any process, hash seed and zone.

Every comparison is between this process and fresh interpreters started with other
``PYTHONHASHSEED`` and ``TZ`` values (``tests/_elsewhere.py``): two calls in one process
would share the seed and could not catch set-order or clock dependence.
"""

from __future__ import annotations

import hashlib
import json

from compiler.image_config import image_config
from compiler.llb import compile_environment
from tests._elsewhere import outputs_elsewhere
from tests.compiler.llb._envs import apt_pip, dev_workspace

_SHAPES = (frozenset(), frozenset({"mergeop", "diffop"}))


def definition_digests() -> bytes:
    """sha256 of each definition: both test environments in both graph shapes."""
    return " ".join(hashlib.sha256(compile_environment(f(), caps=c).definition).hexdigest()
                    for f in (apt_pip, dev_workspace) for c in _SHAPES).encode()


def image_configs() -> bytes:
    """The image configs of the test environments and every example, as ``dsl compile
    --target image-config`` writes them (no key sorting: the order is part of the bytes)."""
    from dsl.cli._load import load_environment
    from tests.compiler.llb.test_llb_examples import EXAMPLES

    envs = [apt_pip(), dev_workspace(), *(load_environment(str(p), None) for p in EXAMPLES)]
    return "\n".join(json.dumps(image_config(e, base_config=None), indent=2) for e in envs).encode()


def test_definitions_are_identical_across_processes_and_hash_seeds() -> None:
    want = definition_digests()
    probe = ("from tests.compiler.llb.test_llb_golden import definition_digests;"
             "sys.stdout.buffer.write(definition_digests())")
    for got in outputs_elsewhere(probe):
        assert got == want, "another hash seed or timezone changed a definition"


def test_image_config_bytes_are_identical_across_processes_and_hash_seeds() -> None:
    want = image_configs()
    assert want.count(b'"Labels"') >= 11  # two built environments and nine examples
    probe = ("from tests.compiler.llb.test_llb_golden import image_configs;"
             "sys.stdout.buffer.write(image_configs())")
    for got in outputs_elsewhere(probe):
        assert got == want, "another hash seed or timezone changed an image config"
