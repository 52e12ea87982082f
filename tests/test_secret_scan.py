"""No credential from a build file reaches any byte envdsl produces.

Every credential-bearing option that is accepted (the Jupyter token, also under its historical
name ``password``) is set to a run-unique marker; the file is compiled for every target through
the CLI as a user runs it (stdout, ``-o`` trees, warnings on stderr), inspected and checked, and
the marker must not occur anywhere. Every option that would carry a credential inside a URL
(``https://user:password@host``) is refused at evaluation, and the error must not repeat it.

The image built from the same file (tarball and build logs) is scanned by
tests/engines/buildkit/test_secret_scan_build.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = f"MARKER-{uuid.uuid4().hex}"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDsecretscantestkeysecretscantestkeysecretsc test\n"

BUILD_FILE = '''\
def build():
    base(image="debian:bookworm", dev=True)
    config.jupyter(token="{marker}", port=8899)

def legacy():
    base(image="debian:bookworm", dev=True)
    config.jupyter(password="{marker}")
'''

# Each refused option, with the marker as the password, as the user, or as both.
REFUSED = {
    "pip_index url": 'config.pip_index(url="https://user:{m}@pypi.example.com/simple")',
    "pip_index extra_url": 'config.pip_index(url="https://pypi.org/simple", extra_url="https://{m}@x.example.com/simple")',
    "pixi pypi_index": 'install.pixi(pypi_index="https://{m}:{m}@pypi.example.com/simple")',
    "io.http": 'io.http(url="https://user:{m}@files.example.com/a.tar.gz")',
    "cran_mirror": 'config.cran_mirror(url="https://user:{m}@cran.example.com/")',
    "julia_pkg_server": 'config.julia_pkg_server(url="https://user:{m}@pkg.example.com")',
    "apt_source": 'config.apt_source(source="deb https://user:{m}@apt.example.com/debian bookworm main\\n")',
    "conda_channel": 'install.conda()\n    config.conda_channel(channel="channels:\\n  - https://user:{m}@conda.example.com/c\\n")',
    "conda channel list": 'install.conda()\n    install.conda_packages(name=["numpy"], channel=["https://user:{m}@conda.example.com/c"])',
    "pip --index-url": 'install.python_packages(name=["torch --index-url https://user:{m}@pypi.example.com/simple"])',
    "pip direct URL": 'install.python_packages(name=["pkg @ https://user:{m}@files.example.com/pkg-1.0.tar.gz"])',
    # 127.0.0.1:9 (discard) so that old code, which tried to clone, failed at once
    "include": 'lib = include("https://user:{m}@127.0.0.1:9/team/envdlib")',
}


def dsl(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO), GIT_TERMINAL_PROMPT="0",
               XDG_CACHE_HOME=str(cwd / ".cache"), XDG_CONFIG_HOME=str(cwd / ".config"))
    return subprocess.run([sys.executable, "-m", "dsl", *args], cwd=cwd, env=env, capture_output=True, timeout=120)


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _commands(function: str, tmp: Path) -> list[tuple[str, ...]]:
    f = ("-f", f":{function}")
    out = tmp / function
    out.mkdir(exist_ok=True)
    return [
        ("check", *f),
        ("inspect", *f),
        ("compile", "--target", "llb", *f),
        ("compile", "--target", "llb", "--format", "json", *f),
        ("compile", "--target", "llb", *f, "-o", str(out / "llb.bin")),
        ("compile", "--target", "image-config", *f),
        ("compile", "--target", "image-config", *f, "-o", str(out / "image-config.json")),
        ("compile", "--target", "k8s", *f, "--image", "registry.example/ws:1"),
        ("compile", "--target", "k8s", *f, "--format", "json", "--ssh-public-key", "key.pub"),
        ("compile", "--target", "k8s", *f, "--ssh-public-key", "key.pub", "-o", str(out / "k8s")),
        ("compile", "--target", "docker", *f),
        ("compile", "--target", "docker", *f, "--format", "compose"),
        ("compile", "--target", "docker", *f, "-o", str(out / "docker")),
    ]


@pytest.mark.parametrize("function", ["build", "legacy"])
def test_an_accepted_token_reaches_no_output(tmp_path: Path, function: str) -> None:
    project = tmp_path / "ws"
    project.mkdir()
    (project / "build.envd").write_text(BUILD_FILE.format(marker=MARKER))
    (project / "key.pub").write_text(PUBLIC_KEY)
    assert MARKER.encode() in (project / "build.envd").read_bytes()  # the scan can see it
    produced: dict[str, bytes] = {}
    for args in _commands(function, tmp_path):
        proc = dsl(*args, cwd=project)
        assert proc.returncode == 0, (args, proc.stderr.decode())
        assert proc.stdout or "-o" in args, args
        produced[" ".join(args) + " (stdout)"] = proc.stdout
        produced[" ".join(args) + " (stderr)"] = proc.stderr
    produced.update({f"file {name}": data for name, data in files_under(tmp_path / function).items()})
    assert len(produced) > 2 * len(_commands(function, tmp_path))  # the -o trees were written
    leaks = [name for name, data in produced.items() if MARKER.encode() in data]
    assert leaks == [], f"the token appears in: {leaks}"
    # the user is told where the token comes from instead
    check = produced[f"check -f :{function} (stderr)"].decode()
    assert "DSL_JUPYTER_TOKEN" in check, check


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_credential_in_a_url_is_refused_without_echoing_it(tmp_path: Path, case: str) -> None:
    snippet = REFUSED[case].format(m=MARKER)
    (tmp_path / "build.envd").write_text(f'def build():\n    base(image="debian:bookworm", dev=True)\n    {snippet}\n')
    for args in (("check",), ("compile", "--target", "llb", "--format", "json")):
        proc = dsl(*args, cwd=tmp_path)
        err = proc.stderr.decode()
        assert proc.returncode == 2, (case, args, err, proc.stdout.decode()[:300])
        assert MARKER.encode() not in proc.stdout + proc.stderr, err
        assert re.search("credential|password|token", err) and "Traceback" not in err, err
        first = err.splitlines()[0]
        assert first.startswith("build.envd:3:") or first.startswith("build.envd:4:"), err
