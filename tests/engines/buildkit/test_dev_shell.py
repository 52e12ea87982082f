"""``shell("zsh")`` / ``shell("fish")`` on the real dockerd: the shell comes from the image's
package manager, is the dev user's login shell and SHELL, and SSH sessions run in it."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.engines.buildkit._containers import run_in
from tests.engines.buildkit.test_build_e2e import _build
from tests.engines.buildkit.test_dev_image import DevImage, _container, _ssh, _wait_for_sshd, keys  # noqa: F401

pytestmark = pytest.mark.engine

# What each shell says about itself when it runs a command (fish has no $0 for -c).
SELF_REPORT = {"zsh": 'echo "zsh=$ZSH_VERSION"', "fish": 'echo "fish=$FISH_VERSION"'}


@pytest.fixture(scope="module", params=["zsh", "fish"])
def shell_image(request, docker_host, docker_api, base_image, ca_bundle, tmp_path_factory):
    """A dev image with ``shell(<param>)``; yields (shell name, image)."""
    name = request.param
    root = tmp_path_factory.mktemp(f"shell-{name}")
    project = root / "shellenv"
    project.mkdir()
    (project / "build.envd").write_text(f'def build():\n    base(image="{base_image}", dev=True)\n'
                                        f'    shell("{name}")\n')
    tag = f"dsl-dev-shell-{name}:{uuid.uuid4().hex[:8]}"
    result = _build(project, docker_host, root, "-t", tag, "--progress", "plain", "--ca-bundle", ca_bundle)
    assert result.returncode == 0, result.stderr[-3000:]
    yield name, DevImage(tag, project)
    docker_api.remove_image(tag, force=True)


def test_the_shell_is_the_login_shell_and_shell_variable(docker_api, shell_image):
    name, image = shell_image
    path = f"/usr/bin/{name}"
    out = run_in(docker_api, image.tag, f'getent passwd envd | cut -d: -f7; echo "$SHELL"; {path} -c \'{SELF_REPORT[name]}\'')
    login, variable, report = out.splitlines()
    assert (login, variable) == (path, path)
    assert report.startswith(f"{name}=") and report != f"{name}="
    assert path in run_in(docker_api, image.tag, "cat /etc/shells").split()


def test_ssh_sessions_run_in_the_shell(docker_api, shell_image, keys):  # noqa: F811
    name, image = shell_image
    pub = keys["good"].with_suffix(".pub").read_text()
    with _container(docker_api, image, env={"DSL_AUTHORIZED_KEYS": pub}) as (cid, port):
        _wait_for_sshd(docker_api, cid, port)
        result = _ssh(keys["good"], port, SELF_REPORT[name] + "; pwd")
        assert result.returncode == 0, result.stderr
        report, cwd = result.stdout.splitlines()
        assert report.startswith(f"{name}=") and report != f"{name}="
        assert cwd == "/home/envd/shellenv"


def test_an_interactive_login_asks_nothing(docker_api, shell_image):
    """On a terminal, zsh without a ~/.zshrc starts its new-user wizard instead of a prompt."""
    name, image = shell_image
    out = run_in(docker_api, image.tag,
                 f"cd && printf 'echo ready\\nexit\\n' | timeout 20 script -qc '{name} -l -i' /dev/null")
    # the command's output line: after the echoed input line (zsh) or fish's end of editing
    assert re.search(r"(\n|\x1b\[\?2004l)ready\r\n", out) and "zsh-newuser-install" not in out, out
