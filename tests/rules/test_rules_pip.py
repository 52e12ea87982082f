"""``rules.pip_item``: PEP 508 requirements and envd's "requirement plus pip options" items.

What the rule accepts pip must accept too: every accepted requirement is checked against
``packaging`` (pip's own parser; installed with pytest), and a Hypothesis property does the
same for generated requirement-shaped strings.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

from dsl.rules import Invalid, pip_item
from dsl.rules._pep508 import requirement_problem

REQUIREMENTS = [
    "numpy", "numpy==1.26.4", "numpy>=1.26,<2", "numpy >= 1.26 , < 2", "pandas[excel]>=2,<3",
    "pandas[excel, performance]", "a[]", "requests (>=2.31)", "torch==2.3.0+cpu", "x==1.*", "x!=1.2.*",
    "x~=1.4", "x~=1.4.2", "x===weird-1", "x>=1.0a1", "x>=1.0.post2", "x>=1.0.dev3", "x==1!2.0", "x>=v1.0",
    'x; python_version < "3.12"', "x ; sys_platform == 'linux' and platform_machine != 'aarch64'",
    'x; (os_name == "nt" or sys_platform == "darwin") and python_full_version >= "3.11.2"',
    "x; 'linux' in sys_platform", "x; platform_release not in '5.4'", 'x[e]>=1; extra == "e"',
    "pkg @ https://example.com/pkg-1.0-py3-none-any.whl", "pkg@git+https://github.com/o/r@v1",
    "pkg @ https://example.com/p.tar.gz#sha256=abc ; python_version >= '3'",
]


@pytest.mark.parametrize("text", REQUIREMENTS)
def test_pep508_requirements_are_one_argv_word_and_pip_reads_them(text: str) -> None:
    assert pip_item(text) == (text,)
    Requirement(text)  # packaging (pip's parser) agrees


@pytest.mark.parametrize(("text", "words"), [
    ("torch --index-url https://download.pytorch.org/whl/cpu", ("torch", "--index-url", "https://download.pytorch.org/whl/cpu")),
    ("--extra-index-url https://download.pytorch.org/whl/cu116", ("--extra-index-url", "https://download.pytorch.org/whl/cu116")),
    ("dgl-cu113 -f https://data.dgl.ai/wheels/repo.html", ("dgl-cu113", "-f", "https://data.dgl.ai/wheels/repo.html")),
    ("torch --index-url=https://x.org/simple --pre", ("torch", "--index-url=https://x.org/simple", "--pre")),
    ("numpy scipy>=1", ("numpy", "scipy>=1")),  # envd joins items with spaces: two requirements
    ("git+https://github.com/o/r", ("git+https://github.com/o/r",)),  # pip takes a bare VCS URL
    ("  numpy  ", ("numpy",)),
])
def test_envd_items_with_pip_options(text: str, words: tuple[str, ...]) -> None:
    assert pip_item(text) == words


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty string"),
    ("   ", "empty string"),
    ("numpy\nscipy", "one line"),
    ("numpy; rm -rf /", "'rm' is not a marker variable"),
    ("numpy ; python_version < '3' ; x", "unexpected ';'"),
    ("$(reboot)", "not a PEP 508 requirement"),
    ("numpy`id`", "not a PEP 508 requirement"),
    ("x; python_version < '$(id)'", "holds characters markers never need"),
    ("x; python_version <", "a marker variable"),
    ("x; (python_version < '3'", "is not closed"),
    ("x; os_name", "comparison operator"),
    ("numpy>=abc", "not a PEP 508 requirement"),  # not a PEP 440 version: pip refuses it too
    ("x~=1", "not a PEP 508 requirement"),  # ~= needs two release components
    ("x>=1.*", "not a PEP 508 requirement"),  # .* only with == and !=
    ("-numpy", "is not one envdsl passes on"),
    ("torch --target /usr", "pip option '--target'"),
    ("torch -r /etc/passwd", "pip option '-r'"),
    ("torch --index-url", "needs a value"),
    ("torch --index-url 'https://x'", "needs a value"),
    ("./pkg", "is a local path"),
    ("dist/a.whl", "is a local path"),
    ("pkg @ file:///etc/passwd x", "is not a requirement"),
    ("pkg @ https://x.org/a.whl;python_version>'3'", "needs a space before ';'"),
])
def test_rejected_items_say_why(text: str, reason: str) -> None:
    with pytest.raises(Invalid) as err:
        pip_item(text)
    assert reason in err.value.message
    assert err.value.hint and "--index-url" in err.value.hint


def _pip_accepts(text: str) -> bool:
    try:
        Requirement(text)
    except ValueError:  # InvalidRequirement, and InvalidSpecifier for some inputs
        return False
    return True


_pieces = st.sampled_from([
    "a", "numpy", "x-y.z_1", "[", "]", ",", "extra", "==", ">=", "<", "~=", "!=", "===", "1", "1.0", ".*", "rc1",
    "+local", "!", "(", ")", ";", " ", "python_version", "os_name", "and", "or", "not", "in", "'3.1'", '"linux"',
    "@", "https://h.org/p", "v", ".post1", ".dev0", "-", "_", "a1",
])


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(_pieces, min_size=1, max_size=9).map("".join))
def test_what_the_rule_accepts_pip_accepts(text: str) -> None:
    if requirement_problem(text.strip()) is None:
        assert _pip_accepts(text.strip()), text
