"""Settings that must reach the image: shell(), install.conda(use_mamba=), config.conda_channel,
config.julia_pkg_server, config.repo and runtime.command (issue 8, item 3).

Each test compiles the build file a user writes and looks where the setting must act: the
dev layer's steps and passwd entry, the conda steps and .condarc, the Julia step, the image
config's Env and labels.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from compiler.image_config import image_config
from compiler.llb import compile_environment
from dsl.errors import CompileError
from dsl.ir import BaseImage, BuildGraph, Environment
from dsl.lang import evaluate_source
from tests.compiler.llb._decode import Decoded, decode
from tests.compiler.llb.test_llb_compile import PARALLEL, _exec_named, _script


def _env(body: str) -> Environment:
    source = "def build():\n" + textwrap.indent(textwrap.dedent(body).strip() + "\n", "    ")
    result = evaluate_source(source, context_dir="/proj")
    assert result.environment is not None
    return result.environment


def _llb(env: Environment, caps: frozenset[str] = frozenset()) -> Decoded:
    return decode(compile_environment(env, caps=caps).definition)


def _files(dec: Decoded) -> dict[str, tuple[bytes, int]]:
    return {a.mkfile.path: (a.mkfile.data, a.mkfile.mode)
            for d in dec.digests if dec.ops[d].WhichOneof("op") == "file"
            for a in dec.ops[d].file.actions if a.HasField("mkfile")}


def _config_env(env: Environment) -> dict[str, str]:
    items = image_config(env, base_config=None)["config"]["Env"]
    return dict(item.split("=", 1) for item in items)


def _labels(env: Environment) -> dict[str, str]:
    return image_config(env, base_config=None)["config"]["Labels"]


# ---- shell() ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "path"), [("zsh", "/usr/bin/zsh"), ("fish", "/usr/bin/fish")])
def test_shell_is_installed_and_becomes_the_login_shell(name: str, path: str) -> None:
    env = _env(f'base(image="debian:bookworm", dev=True)\nshell("{name}")')
    dec = _llb(env)
    packages = _script(_exec_named(dec, f"dev: install {name}"))
    # every package manager branch installs it (unless the image has it), and the path SHELL
    # names exists afterwards
    assert f"if [ ! -x {path} ] && ! command -v {name} >/dev/null 2>&1; then" in packages
    assert f"apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io {name}\n" in packages
    assert packages.count(f" {name}\n") == 3 and "openssh" not in packages
    assert f'[ -x {path} ] || ln -s "$(command -v {name})" {path}' in packages
    user = _script(_exec_named(dec, "dev: user envd"))
    assert f"shell={path}" in user and "/bin/bash" not in user
    assert "$7 = shell" in user  # an envd user already in the base image gets it too
    assert _config_env(env)["SHELL"] == path


def test_bash_is_the_images_own_and_no_package_is_installed_for_it() -> None:
    env = _env('base(image="debian:bookworm", dev=True)\nshell("bash")')
    dec = _llb(env)
    assert not [dec.name(d) for d, _ in dec.execs() if dec.name(d).startswith("dev: install")]
    user = _script(_exec_named(dec, "dev: user envd"))
    # bash when the image has it, else the runtime's sh (an image without bash still logs in)
    assert "shell=/bin/bash\n" in user and '[ -x "$shell" ] || shell=/opt/envdsl/runtime/bin/sh' in user
    assert _config_env(env)["SHELL"] == "/bin/bash"
    assert "/home/envd/.zshrc" not in _files(dec)


def test_zsh_gets_a_zshrc_so_its_first_start_asks_nothing() -> None:
    files = _files(_llb(_env('base(image="debian:bookworm", dev=True)\nshell("ZSH")')))
    assert files["/home/envd/.zshrc"][1] == 0o644


def test_root_dev_user_gets_the_login_shell_too() -> None:
    env = _env('base(image="debian:bookworm", dev=True)\nshell("fish")\nconfig.owner(0, 0)')
    user = _script(_exec_named(_llb(env), "dev: user root (0:0)"))
    assert "uid=0 gid=0 name=root home=/home/envd keephome=1" in user and "shell=/usr/bin/fish" in user


def test_an_unknown_shell_in_the_ir_is_a_compile_error() -> None:
    env = Environment("proj", BuildGraph(base=BaseImage("debian:bookworm", dev=True), shell="tcsh"))
    with pytest.raises(CompileError, match="shell 'tcsh' is not supported"):
        compile_environment(env)


# ---- install.conda(use_mamba=True), config.conda_channel ------------------------------------

CONDARC = "channels:\n  - defaults\nshow_channel_urls: true\n"


@pytest.mark.parametrize("caps", [frozenset(), PARALLEL])
def test_use_mamba_installs_micromamba_as_conda_instead_of_miniconda(caps) -> None:
    env = _env('''
        base(image="debian:bookworm", dev=True)
        install.conda(use_mamba=True)
        install.python(version="3.12")
        install.conda_packages(name=["numpy"])
    ''')
    dec = _llb(env, caps)
    assert not [s for s in dec.sources() if "miniconda" in s.lower()]
    assert "docker-image://ghcr.io/mamba-org/micromamba:2.3.3-debian12-slim" in dec.sources()
    assert "install -m 0755 /run/dsl/micromamba/bin/micromamba /opt/conda/bin/micromamba" in _script(
        _exec_named(dec, "install.conda (micromamba)"))
    files = _files(dec)
    assert files["/opt/conda/bin/conda"] == (b'#!/bin/sh\nexec /opt/conda/bin/micromamba "$@"\n', 0o755)
    assert files["/opt/conda/.condarc"][0] == b"channels:\n  - conda-forge\n"
    create = _script(_exec_named(dec, "install.python 3.12"))
    assert "MAMBA_ROOT_PREFIX=/opt/conda /opt/conda/bin/micromamba create -y -p /opt/conda/envs/envd python=3.12" in create
    pkgs = _script(_exec_named(dec, "install.conda_packages numpy"))
    assert "/opt/conda/bin/micromamba install -y -p /opt/conda/envs/envd numpy" in pkgs
    env_vars = _config_env(env)
    assert (env_vars["MAMBA_ROOT_PREFIX"], env_vars["MAMBA_TARGET_PREFIX"]) == ("/opt/conda", "/opt/conda/envs/envd")


def test_without_use_mamba_it_is_miniconda_and_no_mamba_variables() -> None:
    env = _env('install.conda()\ninstall.conda_packages(name=["numpy"])')
    dec = _llb(env)
    assert any("Miniconda3" in s for s in dec.sources())
    assert "/opt/conda/bin/conda install -y -p /opt/conda numpy" in _script(_exec_named(dec, "install.conda_packages"))
    assert "MAMBA_ROOT_PREFIX" not in _config_env(env)


@pytest.mark.parametrize("use_mamba", [False, True])
def test_conda_channel_text_is_the_condarc_before_python_and_packages(use_mamba: bool) -> None:
    env = _env(f'''
        install.conda(use_mamba={use_mamba})
        config.conda_channel(channel={CONDARC!r})
        install.python()
        install.conda_packages(name=["numpy"])
    ''')
    dec = _llb(env)
    rc = [d for d in dec.digests if dec.ops[d].WhichOneof("op") == "file"
          and any(a.HasField("mkfile") and a.mkfile.path == "/opt/conda/.condarc" for a in dec.ops[d].file.actions)]
    assert len(rc) == 1
    (data,) = [a.mkfile.data for a in dec.ops[rc[0]].file.actions if a.mkfile.path == "/opt/conda/.condarc"]
    assert data == CONDARC.encode()  # as given: a file op, never a shell line
    order = [dec.name(d) for d in dec.digests]
    index = order.index(dec.name(rc[0]))
    assert index < order.index("install.python 3.11") < order.index("install.conda_packages numpy")
    assert "defaults" not in " ".join(_script(op) for _, op in dec.execs())


def test_conda_channel_text_with_shell_syntax_stays_data() -> None:
    text = "channels:\n  - \"$(touch /pwned)'\"\n"
    dec = _llb(_env(f"install.conda()\nconfig.conda_channel(channel={text!r})"))
    assert _files(dec)["/opt/conda/.condarc"][0] == text.encode()
    assert "pwned" not in " ".join(_script(op) for _, op in dec.execs())


# ---- config.julia_pkg_server ---------------------------------------------------------------


def test_julia_pkg_server_reaches_the_package_step_and_the_image() -> None:
    server = "https://mirrors.tuna.tsinghua.edu.cn/julia"
    env = _env(f'install.julia()\nconfig.julia_pkg_server(url="{server}")\ninstall.julia_packages(name=["Example"])')
    step = _script(_exec_named(_llb(env), "install.julia_packages Example"))
    assert f"JULIA_PKG_SERVER={server} JULIA_DEPOT_PATH=/opt/julia/user_packages julia -e" in step
    assert _config_env(env)["JULIA_PKG_SERVER"] == server
    plain = _env('install.julia()\ninstall.julia_packages(name=["Example"])')
    assert "JULIA_PKG_SERVER" not in _script(_exec_named(_llb(plain), "install.julia_packages"))
    assert "JULIA_PKG_SERVER" not in _config_env(plain)


# ---- config.repo, runtime.command: image labels ----------------------------------------------


def test_repo_and_commands_are_image_labels() -> None:
    env = _env('''
        config.repo(url="https://github.com/tensorchord/envd", description="envd quick start")
        runtime.command(commands={"test": "pytest -q", "lint": "ruff check 'src dir'"})
    ''')
    labels = _labels(env)
    assert json.loads(labels["dev.envdsl.repo"]) == {"url": "https://github.com/tensorchord/envd",
                                                    "description": "envd quick start"}
    assert json.loads(labels["dev.envdsl.commands"]) == {"lint": "ruff check 'src dir'", "test": "pytest -q"}
    assert not {"dev.envdsl.repo", "dev.envdsl.commands"} & set(_labels(_env('base()')))
