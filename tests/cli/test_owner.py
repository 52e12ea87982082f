"""The dev user's uid:gid: --owner > config.owner > the invoking user (dsl build) > 1000:1000."""

from __future__ import annotations

import os

import pytest

from dsl.cli._load import invoking_owner, load_evaluation

BUILD = 'def build():\n    base(image="debian:bookworm", dev=True)\n'


@pytest.fixture
def project(tmp_path):
    (tmp_path / "build.envd").write_text(BUILD)
    return tmp_path


def _owner(project, **kwargs):
    env, _ = load_evaluation(str(project), None, **kwargs)
    return None if env.build.owner is None else (env.build.owner.uid, env.build.owner.gid)


def test_build_takes_the_invoking_users_ids(project, monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: 1234)
    monkeypatch.setattr(os, "getgid", lambda: 2345)
    assert _owner(project, default_owner=invoking_owner()) == (1234, 2345)


def test_root_keeps_the_non_root_default(project, monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: 0)
    monkeypatch.setattr(os, "getgid", lambda: 0)
    assert invoking_owner() is None
    assert _owner(project, default_owner=invoking_owner()) is None  # the compilers' 1000:1000


def test_config_owner_and_the_flag_win_over_the_invoking_user(project, monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: 1234)
    monkeypatch.setattr(os, "getgid", lambda: 1234)
    (project / "build.envd").write_text(BUILD + "    config.owner(uid=4000, gid=4001)\n")
    assert _owner(project, default_owner=invoking_owner()) == (4000, 4001)
    assert _owner(project, owner="5000:5001", default_owner=invoking_owner()) == (5000, 5001)


def test_the_build_commands_llb_creates_the_invoking_user(project, monkeypatch):
    from compiler.llb import compile_environment

    monkeypatch.setattr(os, "getuid", lambda: 1234)
    monkeypatch.setattr(os, "getgid", lambda: 2345)
    env, _ = load_evaluation(str(project), None, default_owner=invoking_owner())
    assert b"uid=1234 gid=2345 name=envd" in compile_environment(env).definition
