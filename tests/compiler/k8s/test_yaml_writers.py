"""The fast block-YAML writer gives exactly PyYAML's bytes, or declines and PyYAML writes.

``compiler.k8s._block_yaml`` writes nearly every manifest (so ``dsl compile`` need not import
PyYAML); PyYAML remains the reference. Each test compares the writers byte for byte: our
writer, PyYAML with libyaml's C emitter, PyYAML's pure-Python emitter.
"""

from __future__ import annotations

import itertools
import random

import pytest
import yaml

from compiler.docker import compile_container, compose_file
from compiler.k8s import dump_yaml, synth_files
from compiler.k8s._block_yaml import block_yaml, scalar
from compiler.k8s._pyyaml import C_DUMPER, pyyaml_document
from compiler.k8s._synth import top_level_pairs
from dsl.cli._emit_runtime import docker_options
from tests.compiler.k8s.test_k8s_examples import EXAMPLE_TARGETS, PINNED, compile_example

EMITTERS = [pytest.param(True, id="pure")] + (
    [pytest.param(False, id="libyaml")] if C_DUMPER is not None else []
)
# Characters that matter to YAML's plain-scalar and implicit-type rules, plus ordinary ones.
ALPHABET = "aYe0179.-: _/#'@=+x~\"é&!$;"
AMBIGUOUS = [
    "yes", "Yes", "YES", "yEs", "no", "NO", "true", "True", "false", "on", "On", "OFF", "null",
    "Null", "NULL", "y", "N", "~", "", " ", "1e3", "1E3", "1Gi", "100m", "0x1F", "0b1", "0o7",
    "0777", "09", "1_000", "1:20", "1.5", "2001-12-14", ".inf", ".nan", "-1", "+1", "=", "<<",
    "a: b", "a #b", "a#b", "a  b", " a", "a ", "-a", "? a", ":a", "a:", "a::b", "---", "...",
    "two\nlines\n", "no newline\nat end", "\nlead", "x" * 130, "ünïcode", "tab\there", "it's",
    "sha256:" + "ab" * 32, "registry.example/envs/x@sha256:" + "0" * 64,
    "trap 'exit 0' TERM; wait $!", "&a", "!a", "'a", "$a", ";a", "a &b", "a !b", "a 'b'", "a $$;",
]


def _corpus() -> list[str]:
    short = ["".join(t) for n in range(1, 4) for t in itertools.product(ALPHABET, repeat=n)]
    four = ["".join(t) for t in itertools.product(ALPHABET[:13], repeat=4)]
    return short + four + AMBIGUOUS


@pytest.mark.parametrize("pure", EMITTERS)
def test_every_string_we_claim_is_written_as_pyyaml_writes_it(pure):
    corpus = _corpus()
    claimed = [s for s in corpus if scalar(s) is not None]
    assert 5_000 < len(claimed) < len(corpus)  # the rules claim much, and decline some
    for text in claimed:
        assert pyyaml_document([("k", text)], pure=pure) == f"k: {scalar(text)}\n", repr(text)
        as_key = block_yaml([(text, 1)])  # long keys are declined: PyYAML writes "? key"
        assert as_key is None or as_key == pyyaml_document([(text, 1)], pure=pure), repr(text)
    assert block_yaml([("x" * 130, 1)]) is None


def test_strings_yaml_would_read_as_another_type_are_quoted_or_declined():
    assert scalar("2") == "'2'" and scalar("0") == "'0'"
    assert scalar("10Gi") == "10Gi" and scalar("a:b") == "a:b"
    for text in ("yes", "on", "null", "0777", "1.5", "1:20", "2001-12-14", "", "a: b", "-1"):
        assert scalar(text) is None
        assert yaml.safe_load(dump_yaml({"k": text})) == {"k": text}


def _tree(rng: random.Random, depth: int = 0):
    leaves = ["a", "b c", "1", "0", "10Gi", "yes", "x:y", "", "two\nlines\n", True, False, 0, -3,
              12345, "/p/q", "é", (), {}]
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(leaves)
    if roll < 0.7:
        return {rng.choice(["k", "a", "z", "m2", "yes", "1"]) + str(rng.randint(0, 3)): _tree(rng, depth + 1)
                for _ in range(rng.randint(0, 3))}
    return [_tree(rng, depth + 1) for _ in range(rng.randint(0, 3))]


@pytest.mark.parametrize("pure", EMITTERS)
def test_nested_documents_match_pyyaml(pure):
    rng = random.Random(20240603)
    written = declined = 0
    for _ in range(3000):
        pairs = [(f"k{i}", _tree(rng)) for i in range(rng.randint(0, 3))]
        ours = block_yaml(pairs)
        if ours is None:
            declined += 1
            continue
        written += 1
        assert ours == pyyaml_document(pairs, pure=pure), pairs
    assert written > 1000 and declined > 100


@pytest.mark.parametrize("pure", EMITTERS)
@pytest.mark.parametrize("example, function", EXAMPLE_TARGETS)
def test_example_outputs_have_pyyaml_bytes_and_manifests_need_no_pyyaml(example, function, pure, tmp_path):
    env, objects = compile_example(example, function, tmp_path)
    kustomization = yaml.safe_load(synth_files(objects)["kustomization.yaml"])
    body = compile_container(env, docker_options(env, PINNED.format(name=example)))
    for obj in [*objects, kustomization]:
        pairs = top_level_pairs(obj)
        text = dump_yaml(obj)
        assert block_yaml(pairs) == text, "an example's manifest needed the PyYAML fallback"
        assert pyyaml_document(pairs, pure=pure) == text
    compose = compose_file("svc", body)  # "${VAR:?...}" and 127.0.0.1 go through PyYAML
    assert dump_yaml(compose) == pyyaml_document(top_level_pairs(compose), pure=pure)


def test_values_the_fast_writer_declines_still_come_out_as_pyyaml_writes_them():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
           "data": {"script": "set -e\nexec sshd\n", "flag": "yes", "note": "café"}}
    assert block_yaml(top_level_pairs(obj)) is None
    text = dump_yaml(obj)
    assert text == pyyaml_document(top_level_pairs(obj), pure=True)
    assert "  script: |\n    set -e\n    exec sshd\n" in text and "  flag: 'yes'\n" in text
    assert yaml.safe_load(text) == obj


def test_unsupported_values_are_refused():
    with pytest.raises(TypeError):
        dump_yaml({"kind": "X", "n": 1.5})
