"""pip inside a dev environment built by ``dsl build`` on the real dockerd, as its user uses it.

The venv is made ``--without-pip --system-site-packages`` (docs/llb.md, Python). Its pip comes
from one of two places, and both must give the user a working ``pip`` that installs into the
venv: Debian's ``python3-pip`` (when the build installs it) through the venv's launchers, or,
on the test base that has ``python3-venv`` but no pip, a pip that ensurepip put in the venv.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.engines.buildkit.test_build_e2e import _build
from tests.engines.buildkit._containers import make_wheel

pytestmark = pytest.mark.engine

BUILD_FILE = '''\
def build():
    base(image="{base}", dev=True)
    install.apt_packages(name={apt})
    install.python_packages(name=["six"])
'''
VENV = "/opt/dsl/python"
PIP_FROM = {"system-pip": "/usr/lib/python3/dist-packages/pip", "venv-pip": f"{VENV}/lib/"}


@pytest.fixture(scope="module", params=sorted(PIP_FROM))
def pip_image(request, docker_host, docker_api, base_image, ca_bundle, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(image tag, where its pip comes from): with apt's python3-pip, or without any system pip."""
    apt = ["python3-pip"] if request.param == "system-pip" else ["file"]
    root = tmp_path_factory.mktemp("pipimage")
    project = root / "pipenv"
    project.mkdir()
    (project / "build.envd").write_text(BUILD_FILE.format(base=base_image, apt=apt))
    tag = f"dsl-dev-pip:{uuid.uuid4().hex[:8]}"
    result = _build(project, docker_host, root, "-t", tag, "--progress", "plain", "--ca-bundle", ca_bundle)
    assert result.returncode == 0, result.stderr[-3000:]
    yield tag, request.param
    docker_api.remove_image(tag, force=True)


def _as_image_user(docker_api, tag: str, script: str, wheels: str) -> tuple[int, str]:
    """Run ``script`` with ``sh -c`` as the image's own user, ``wheels`` mounted at /wheels."""
    config = docker_api.create_host_config(binds={wheels: {"bind": "/wheels", "mode": "ro"}})
    container = docker_api.create_container(tag, entrypoint=["/bin/sh", "-c"], command=[script],
                                            host_config=config)
    try:
        docker_api.start(container)
        status = docker_api.wait(container, timeout=120)["StatusCode"]
        return status, docker_api.logs(container).decode()
    finally:
        docker_api.remove_container(container, force=True)


def test_the_user_pip_installs_into_the_venv(docker_api, pip_image, tmp_path):
    tag, source = pip_image
    tmp_path.chmod(0o755)  # readable for the image's unprivileged user
    wheel = make_wheel(tmp_path, f"dslpip_{uuid.uuid4().hex[:8]}")
    wheel.chmod(0o644)
    module = wheel.name.split("-")[0]
    status, out = _as_image_user(docker_api, tag, (
        "set -e; id -u; command -v pip; pip --version; python -m pip --version\n"
        f"pip install -q --no-index /wheels/{wheel.name}\n"
        f"python -c 'import {module}, six; print({module}.__file__); print(six.__file__)'\n"
        "pip list --local --format freeze\n"
    ), str(tmp_path))
    assert status == 0, out
    uid, pip, pip_version, module_pip_version, new_file, six_file, *local = out.splitlines()
    assert uid != "0" and pip == f"{VENV}/bin/pip"
    assert PIP_FROM[source] in pip_version and PIP_FROM[source] in module_pip_version
    assert new_file.startswith(f"{VENV}/lib/") and six_file.startswith(f"{VENV}/lib/")
    assert f"{module}==1.0" in local and any(x.startswith("six==") for x in local)


def test_the_user_can_replace_what_the_build_installed(docker_api, pip_image, tmp_path):
    """The venv belongs to the dev user: uninstalling a build-time package works."""
    tag, _ = pip_image
    status, out = _as_image_user(docker_api, tag, (
        "set -e; pip uninstall -y -q six\n"
        "if python -c 'import six' 2>/dev/null; then echo still-importable; fi\n"
    ), str(tmp_path))
    assert status == 0 and "still-importable" not in out, out
