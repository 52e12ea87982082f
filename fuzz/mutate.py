"""Mutations that keep a build file mostly Starlark, so inputs reach the builtins.

Byte-level mutation (libFuzzer's) turns nearly every build file into a syntax error, which
only exercises the parser. Most mutations here work on tokens instead: a string, number or
name is replaced by a value from a pool of edge cases (empty, huge, negative, path escapes,
shell metacharacters, YAML 1.1 words, image references, odd types), a call to a random
builtin with random arguments is inserted into ``build()``, or lines are duplicated, dropped
or swapped. The rest go to libFuzzer's own mutator (``byte_mutate``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_TOKEN = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_.]*""")

STRINGS = [
    "", " ", "a", "x" * 300, "é", "日本", "a\nb", "a\tb", "\\", "'", '"', "$(id)", "`id`", "a;b",
    "a && b", "${HOME}", "~", "~/x", ".", "..", "../x", "/", "/etc/passwd", "/home/envd/x", "./x",
    "a/../../b", "*", "**/*.py", "0", "-1", "1e3", "0777", "yes", "no", "null", "true", "~",
    "1Gi", "100m", "0.5", "-1Gi", "3.11", "2", "1.25.3", "25.1.0", "11.8.0", "8",
    "ubuntu:22.04", "debian:bookworm", "python:3.11-slim", "docker.io/library/x:1", "UPPER:tag",
    "localhost:5000/x", "x@sha256:" + "a" * 64, "x:1@sha256:" + "0" * 64, "x@sha256:abc", "x:",
    "numpy", "numpy==1.*", "pandas>=2,<3", "pkg[extra]==1.0", "torch --index-url https://x/y",
    "https://example.com/a.tgz", "http://[::1]:8080/x", "file:///etc/passwd", "git@github.com:a/b",
    "sha256:" + "ab" * 32, "sha512:" + "ab" * 64, "md5:0", "conda-forge", "ReadWriteOnce",
    "ClusterIP", "LoadBalancer", "127.0.0.1", "0.0.0.0", "::1", "zsh", "fish", "bash",
    "KEY", "PATH", "1KEY", "a=b", "%s", "{}", "\x7f", "\u2028", "x" * 5000,
]
NUMBERS = ["0", "1", "-1", "2", "22", "80", "2222", "8888", "65535", "65536", "-65536", "1000",
           "2147483647", "2147483648", "4294967296", "9223372036854775808", "10000000000000000000000",
           "0x7fffffff", "07", "1.5", "-0.0"]
VALUES = ["True", "False", "None", "[]", "{}", "()", '[""]', '["a", "b"]', "[1, 2]", '{"a": "b"}',
          '{"": ""}', '{"a": 1}', "[[]]", "[None]", "lambda: 1", "print", "range(3)",
          '"a" * 100000', "[1] * 10000", "struct", "1 // 0", "base"]


def _string_literal(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + out + '"'


def _any_value(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return _string_literal(rng.choice(STRINGS))
    if roll < 0.65:
        return rng.choice(NUMBERS)
    if roll < 0.8:
        items = ", ".join(_string_literal(rng.choice(STRINGS)) for _ in range(rng.randint(0, 3)))
        return f"[{items}]"
    if roll < 0.9:
        pairs = ", ".join(f"{_string_literal(rng.choice(STRINGS))}: {_string_literal(rng.choice(STRINGS))}"
                          for _ in range(rng.randint(0, 2)))
        return "{" + pairs + "}"
    return rng.choice(VALUES)


# Required parameters (no default to read the type from), by name.
_REQUIRED_KINDS = {"commands": "list", "name": "list", "args": "list", "envd_port": "int", "uid": "int",
                   "gid": "int", "size": "str", "version": "str", "url": "str", "target": "str", "path": "str"}


def _kind(default: str | None, param: str) -> str:
    """The type a parameter takes, from its default's source text."""
    if default is None:
        return _REQUIRED_KINDS.get(param, "str")
    if default in ("True", "False"):
        return "bool"
    return {"[": "list", "{": "dict", '"': "str"}.get(default[:1], "int" if default.lstrip("-").isdigit() else "str")


def _typed_value(kind: str, rng: random.Random) -> str:
    """A value of the right type (most of the time) with edge-case content."""
    if rng.random() < 0.1:
        return _any_value(rng)
    if kind == "bool":
        return rng.choice(["True", "False"])
    if kind == "int":
        return rng.choice(NUMBERS[:17])
    if kind == "list":
        return "[" + ", ".join(_string_literal(rng.choice(STRINGS)) for _ in range(rng.randint(0, 3))) + "]"
    if kind == "dict":
        return "{" + ", ".join(f"{_string_literal(rng.choice(STRINGS))}: {_string_literal(rng.choice(STRINGS))}"
                               for _ in range(rng.randint(0, 2))) + "}"
    return _string_literal(rng.choice(STRINGS))


class Mutator:
    """Token-level mutations over the catalog of builtins (name → {parameter: default source})."""

    def __init__(self, builtins: dict[str, dict[str, str | None]], byte_mutate: Callable[[bytes, int], bytes]) -> None:
        self.builtins = {name: list(params) for name, params in builtins.items()}
        self.kinds = {name: {p: _kind(d, p) for p, d in params.items()} for name, params in builtins.items()}
        self.names = sorted(builtins)
        self.params = sorted({p for ps in self.builtins.values() for p in ps}) or ["name"]
        self.byte_mutate = byte_mutate

    def typed_call(self, rng: random.Random) -> str:
        """A call to a random builtin with arguments of the right types and odd content."""
        name = rng.choice(self.names)
        args = [f"{p}={_typed_value(kind, rng)}" for p, kind in self.kinds[name].items()
                if not p.startswith("_") and rng.random() < 0.7]
        return f"{name}({', '.join(args)})"

    def program(self, rng: random.Random) -> str:
        """A whole build file of typed calls (the image first, as real files do)."""
        image = _string_literal(rng.choice(["ubuntu:22.04", "debian:bookworm", "python:3.11-slim"])
                                if rng.random() < 0.8 else rng.choice(STRINGS))
        lines = ["# syntax=v1", "def build():", f"    base(image={image}, dev={rng.choice(['True', 'False'])})"]
        lines += ["    " + self.typed_call(rng) for _ in range(rng.randint(1, 8))]
        return "\n".join(lines) + "\n"

    def call(self, rng: random.Random) -> str:
        """A call to a random builtin with random (possibly wrong) arguments."""
        name = rng.choice(self.names)
        params = self.builtins[name]
        chosen = rng.sample(params, k=rng.randint(0, len(params))) if params else []
        positional = [_any_value(rng) for _ in range(rng.randint(0, 1))] if rng.random() < 0.2 else []
        named = [f"{param}={_any_value(rng)}" for param in chosen]
        if rng.random() < 0.05:
            named.append(f"{rng.choice(['nme', 'x', 'name', 'image'])}={_any_value(rng)}")
        return f"{name}({', '.join(positional + named)})"

    def __call__(self, data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        roll = rng.random()
        if roll < 0.15:
            return self.byte_mutate(data, max_size)
        if roll < 0.25:
            return self.program(rng).encode()[:max_size]
        text = data.decode("utf-8", "replace")
        for _ in range(rng.choice((1, 1, 2, 3))):
            text = self._once(text, rng)
        out = text.encode("utf-8", "surrogatepass")
        return out[:max_size]

    def _once(self, text: str, rng: random.Random) -> str:
        roll = rng.random()
        tokens = list(_TOKEN.finditer(text))
        if roll < 0.45 and tokens:
            tok = rng.choice(tokens)
            word = tok.group()
            if word[0] in "'\"":
                new = _string_literal(rng.choice(STRINGS)) if rng.random() < 0.8 else _any_value(rng)
            elif word[0].isdigit():
                new = rng.choice(NUMBERS) if rng.random() < 0.8 else _any_value(rng)
            elif text[tok.end():].lstrip(" ").startswith("=") and not text[tok.end():].lstrip(" ").startswith("=="):
                new = rng.choice(self.params)  # a keyword argument's name
            elif word in self.builtins or rng.random() < 0.3:
                new = rng.choice(self.names)
            else:
                new = _any_value(rng)
            return text[:tok.start()] + new + text[tok.end():]
        if roll < 0.8:
            return self._insert_call(text, rng)
        lines = text.split("\n")
        if len(lines) < 2:
            return self._insert_call(text, rng)
        body = [k for k, line in enumerate(lines) if line.startswith("    ") and line.strip()]
        pool = body if len(body) >= 2 and rng.random() < 0.8 else range(len(lines))  # mostly keep to bodies
        i, j = rng.choice(pool), rng.choice(pool)
        if roll < 0.88:
            lines.insert(j, lines[i])
        elif roll < 0.95:
            del lines[i]
        else:
            lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)

    def _insert_call(self, text: str, rng: random.Random) -> str:
        call = self.typed_call(rng) if rng.random() < 0.6 else self.call(rng)
        lines = text.split("\n")
        # before a statement of a function body: indented, and the line above ends a statement
        starts = [i for i, line in enumerate(lines) if line.startswith(("    ", "\t")) and line.strip()
                  and i > 0 and not lines[i - 1].rstrip().endswith(("(", "[", "{", ",", "\\"))]
        if not starts:
            return text.rstrip("\n") + f"\n\ndef build():\n    {call}\n"
        at = rng.choice(starts)
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        lines.insert(at, indent + call)
        return "\n".join(lines)
