"""Both YAML writers give ``yaml.safe_dump``'s bytes, with the options ``_pyyaml`` documents.

``compiler.k8s._block_yaml`` writes nearly every manifest (so ``dsl compile`` need not import
PyYAML) and ``compiler.k8s._pyyaml`` writes the rest. The reference here is PyYAML's own
``safe_dump`` (its representer, serializer and emitter, pure-Python and libyaml), called with
the options the writers claim: nothing of ours builds the expected bytes. The one documented
difference, literal block style for a value containing ``\\n``, is asked of ``safe_dump``
through a ``str`` subclass with its own representer.
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
# What compiler/k8s/_pyyaml.py claims its bytes are.
SAFE_DUMP_OPTIONS = {"sort_keys": False, "allow_unicode": True, "width": 1 << 16, "default_flow_style": False}


class _Literal(str):
    """A string value safe_dump is asked to write in literal block style (if YAML allows)."""


def _literal(dumper: yaml.SafeDumper, text: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style="|")


class _SafeDumper(yaml.SafeDumper):
    pass


_SafeDumper.add_representer(_Literal, _literal)
if C_DUMPER is not None:
    class _CSafeDumper(yaml.CSafeDumper):
        pass

    _CSafeDumper.add_representer(_Literal, _literal)


def _prepared(value, *, literal: bool):
    """Fresh containers (no shared object, so no anchors), nested keys sorted, tuples as lists,
    and multi-line string values marked for literal style."""
    if isinstance(value, dict):
        return {k: _prepared(value[k], literal=literal) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_prepared(v, literal=literal) for v in value]
    if literal and isinstance(value, str) and "\n" in value:
        return _Literal(value)
    return value


def safe_dump(pairs, *, pure: bool, literal: bool = True) -> str:
    """``yaml.safe_dump`` of the top-level ``pairs`` (in their order), nested keys sorted."""
    data = {k: _prepared(v, literal=literal) for k, v in pairs}
    if not literal and pure:
        return yaml.safe_dump(data, **SAFE_DUMP_OPTIONS)
    dumper = (_SafeDumper if pure else _CSafeDumper) if literal else yaml.CSafeDumper
    return yaml.dump(data, Dumper=dumper, **SAFE_DUMP_OPTIONS)


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
MULTILINE = [
    "set -e\nexec sshd\n", "a\nb", "a\n\n", "\n", "\n\n", " lead\nspace", "trail \nspace",
    "a\n b\n", "tab\n\tin", "é\nü\n", "crlf\r\nline", "yes\nno", "- a\n- b", "k: v\nx: y",
    "'quoted'\n\"dq\"", "#!/bin/sh\necho $HOME\n", "a" * 200 + "\n" + "b c " * 60 + "d",
]
UNICODE = ["ünïcode", "日本語", "emoji 🎉", "nbsp\u00a0x", "nel\x85x", "ls\u2028x", "bom\ufeff", "zw\u200bj"]


def _corpus() -> list[str]:
    short = ["".join(t) for n in range(1, 4) for t in itertools.product(ALPHABET, repeat=n)]
    four = ["".join(t) for t in itertools.product(ALPHABET[:13], repeat=4)]
    return short + four + AMBIGUOUS + MULTILINE + UNICODE


def _assert_same(write, pairs, *, pure: bool, literal: bool = True) -> None:
    """``write(pairs)`` is safe_dump's document; on a difference, name the first pair that differs."""
    ours = write(pairs)
    if ours != safe_dump(pairs, pure=pure, literal=literal):
        for pair in pairs:
            assert write([pair]) == safe_dump([pair], pure=pure, literal=literal), repr(pair)
        assert ours == safe_dump(pairs, pure=pure, literal=literal)


@pytest.mark.parametrize("pure", EMITTERS)
def test_every_string_is_written_as_safe_dump_writes_it(pure):
    corpus = list(dict.fromkeys(_corpus()))
    # each string as a value (one document of many keys: one emitter run, same bytes per line)
    values = [(f"k{i}", text) for i, text in enumerate(corpus)]
    _assert_same(lambda p: pyyaml_document(p, pure=pure), values, pure=pure)
    if pure == (C_DUMPER is None):  # dump_yaml uses libyaml when it is there
        _assert_same(lambda p: dump_yaml(dict(p)), [(k, values[int(k[1:])][1]) for k in sorted(dict(values))],
                     pure=pure)
    # the fast writer's claim: exactly safe_dump (no literal-style exception: it declines "\n")
    claimed = [(k, text) for k, text in values if scalar(text) is not None]
    assert 5_000 < len(claimed) < len(values)  # the rules claim much, and decline some
    _assert_same(block_yaml, claimed, pure=pure, literal=False)
    assert block_yaml(claimed) == "".join(f"{k}: {scalar(text)}\n" for k, text in claimed)
    # each string as a key (keys are never multi-line in manifests); long keys are declined
    keys = [(text, 1) for text in corpus if "\n" not in text]
    _assert_same(lambda p: pyyaml_document(p, pure=pure), keys, pure=pure)
    claimed_keys = [pair for pair in keys if block_yaml([pair]) is not None]
    assert len(claimed_keys) > 5_000
    _assert_same(block_yaml, claimed_keys, pure=pure, literal=False)
    assert block_yaml([("x" * 130, 1)]) is None


@pytest.mark.parametrize("pure", EMITTERS)
def test_multiline_values_are_literal_blocks_and_read_back(pure):
    for text in MULTILINE:
        written = pyyaml_document([("k", text)], pure=pure)
        assert yaml.safe_load(written) == {"k": text}, repr(text)
        if not text.startswith(("\n", " ")) and " \n" not in text and "\t" not in text and "\r" not in text:
            assert written.startswith("k: |"), (text, written)  # what safe_dump would quote
            assert written != safe_dump([("k", text)], pure=pure, literal=False)


def test_strings_yaml_would_read_as_another_type_are_quoted_or_declined():
    assert scalar("2") == "'2'" and scalar("0") == "'0'"
    assert scalar("10Gi") == "10Gi" and scalar("a:b") == "a:b"
    for text in ("yes", "on", "null", "0777", "1.5", "1:20", "2001-12-14", "", "a: b", "-1"):
        assert scalar(text) is None
        assert yaml.safe_load(dump_yaml({"k": text})) == {"k": text}


LEAVES = [*AMBIGUOUS, *MULTILINE, *UNICODE, True, False, 0, -3, 12345, -(2 ** 63), 2 ** 70, (), {}, []]
KEYS = ["k", "a", "z", "m2", "yes", "1", "null", "a b", "é", "-x", "app.kubernetes.io/name", "1e3"]


def _tree(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(LEAVES) if rng.random() < 0.8 else "".join(rng.choices(ALPHABET + "\n\t", k=rng.randint(0, 8)))
    if roll < 0.7:
        return {rng.choice(KEYS) + str(rng.randint(0, 3)): _tree(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return [_tree(rng, depth + 1) for _ in range(rng.randint(0, 3))]


@pytest.mark.parametrize("pure", EMITTERS)
def test_generated_documents_match_safe_dump(pure):
    rng = random.Random(20240603)
    written = declined = 0
    for _ in range(3000):
        pairs = [(rng.choice(KEYS) + str(i), _tree(rng)) for i in range(rng.randint(0, 4))]
        expected = safe_dump(pairs, pure=pure)
        assert pyyaml_document(pairs, pure=pure) == expected, pairs
        fast = block_yaml(pairs)
        if fast is None:
            declined += 1
            continue
        written += 1
        assert fast == expected == safe_dump(pairs, pure=pure, literal=False), pairs
    assert written > 600 and declined > 600


def test_a_shared_container_is_written_out_twice_not_as_an_alias():
    labels = {"app": "x"}
    text = dump_yaml({"kind": "X", "a": labels, "b": labels})
    assert "&" not in text and "*" not in text
    assert text == safe_dump([("kind", "X"), ("a", labels), ("b", dict(labels))], pure=True)


@pytest.mark.parametrize("pure", EMITTERS)
@pytest.mark.parametrize("example, function", EXAMPLE_TARGETS)
def test_example_outputs_are_safe_dump_bytes_and_manifests_need_no_pyyaml(example, function, pure, tmp_path):
    env, objects = compile_example(example, function, tmp_path)
    kustomization = yaml.safe_load(synth_files(objects)["kustomization.yaml"])
    body = compile_container(env, docker_options(env, PINNED.format(name=example)))
    for obj in [*objects, kustomization]:
        pairs = top_level_pairs(obj)
        text = dump_yaml(obj)
        assert block_yaml(pairs) == text, "an example's manifest needed the PyYAML fallback"
        assert safe_dump(pairs, pure=pure) == text
    compose = compose_file("svc", body)  # "${VAR:?...}" and 127.0.0.1 go through PyYAML
    assert dump_yaml(compose) == safe_dump(top_level_pairs(compose), pure=pure)


def test_values_the_fast_writer_declines_still_come_out_as_documented():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
           "data": {"script": "set -e\nexec sshd\n", "flag": "yes", "note": "café"}}
    assert block_yaml(top_level_pairs(obj)) is None
    text = dump_yaml(obj)
    assert text == safe_dump(top_level_pairs(obj), pure=True)
    assert "  script: |\n    set -e\n    exec sshd\n" in text and "  flag: 'yes'\n" in text
    assert yaml.safe_load(text) == obj


def test_unsupported_values_are_refused():
    with pytest.raises(TypeError):
        dump_yaml({"kind": "X", "n": 1.5})
