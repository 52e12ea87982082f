"""Credentials in URLs are refused at evaluation, and the error never repeats them.

The whole-CLI view (every target's output scanned for a marker) is tests/test_secret_scan.py.
"""

from __future__ import annotations

import pytest

from dsl.lang import builtins
from dsl.lang._credentials import URL_ARGUMENTS, redacted_credential
from dsl.lang._registry import REGISTRY


@pytest.mark.parametrize(("text", "shown"), [
    ("https://user:pw@host/simple", "https://***@host/..."),
    ("https://ghp_token@github.com/org/repo", "https://***@github.com/..."),  # a token as the user
    ("http://u:p@s@host:8080", "http://***@host:8080"),  # a raw '@' in the password: the last one ends it
    ("deb https://u:p@apt.example.com/debian bookworm main", "https://***@apt.example.com/..."),
    ("torch --index-url https://u:p@h/simple", "https://***@h/..."),
    ("git+https://u:p@git.example.com/x.git", "git+https://***@git.example.com/..."),
    ("ssh://git:pw@host/repo", "ssh://***@host/..."),  # a password is a secret over SSH too
    ("https://host/simple", None),
    ("https://host/path/@user", None),  # '@' in the path, not in the authority
    ("ssh://git@github.com/org/repo", None),  # an SSH user name is not a secret
    ("git+ssh://git@github.com/org/repo", None),
    ("git@github.com:org/repo", None),
    ("user@example.com", None),
])
def test_urls_with_userinfo_are_found_and_shown_without_it(text: str, shown: str | None) -> None:
    assert redacted_credential(text) == shown


def test_every_checked_builtin_and_argument_exists() -> None:
    """A renamed builtin or argument would silently stop being checked."""
    params = {b.name: {p.name for p in b.params} for b in builtins()}
    assert set(URL_ARGUMENTS) <= set(REGISTRY) & set(params)
    for builtin, names in URL_ARGUMENTS.items():
        assert set(names) <= params[builtin], builtin


@pytest.mark.parametrize(("call", "where"), [
    ('config.pip_index(url="https://pypi.org/simple", extra_url="https://u:SECRET@x/simple")', "argument 'extra_url'"),
    ('install.python_packages(name=["six", "pkg @ https://u:SECRET@files/pkg.tar.gz"])', "argument 'name': item 1"),
    ('install.conda()\ninstall.conda_packages(name=["numpy"], channel=["https://SECRET@conda/c"])', "argument 'channel': item 0"),
    ('lib = include("https://u:SECRET@127.0.0.1:9/lib")', "argument 'git'"),
])
def test_the_error_names_the_argument_and_hides_the_secret(error, call: str, where: str) -> None:
    err = error(call)
    text = f"{err}\n{err.hint}"
    assert where in text and "credentials" in text and "***@" in text
    assert "SECRET" not in text and err.hint


def test_urls_elsewhere_are_left_alone(env) -> None:
    """A user's own commands and variables are not URLs envdsl fetches from (e.g. a local
    database URL in runtime.environ); they are not checked."""
    e = env('runtime.environ(env={"DATABASE_URL": "postgresql://dev:dev@localhost/app"})\n'
            'install.python_packages(name=["pkg @ git+ssh://git@github.com/org/pkg"])')
    assert e.runtime.environ == (("DATABASE_URL", "postgresql://dev:dev@localhost/app"),)
