"""What evaluation accepts and refuses for shell(), config.repo and config.conda_channel."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("call", "shell"), [('shell("ZSH")', "zsh"), ('shell("fish")', "fish"),
                                             ("shell()", "bash"), ("shell(None)", "bash")])
def test_supported_shells(env, call: str, shell: str) -> None:
    assert env(f"base(dev=True)\n{call}").build.shell == shell


@pytest.mark.parametrize("name", ["tcsh", "sh", "nu", "/bin/zsh"])
def test_other_shells_are_refused_with_the_supported_list(error, name: str) -> None:
    err = error(f'base(dev=True)\nshell("{name}")')
    assert f"shell: argument 'name': shell {name!r} is not supported; use \"bash\", \"zsh\" or \"fish\"" in str(err)
    assert "install.apt_packages" in err.hint
    assert str(err.span) == "build.envd:3:5"


def test_a_shell_without_the_dev_layer_warns(result) -> None:
    res = result('shell("zsh")\nbase(image="debian:bookworm")')
    assert res.warnings == ('build.envd:2:5: warning: shell("zsh") has no effect without base(dev=True)',)
    assert result('base(dev=True)\nshell("zsh")').warnings == ()
    assert result('shell("bash")').warnings == ()


@pytest.mark.parametrize("url", ["https://github.com/tensorchord/envd",
                                 "git@github.com:tensorchord/envd.git", "ssh://git@git.example:2222/team/ws",
                                 "git://git.example/ws"])
def test_repo_urls_git_understands(env, url: str) -> None:
    assert env(f'config.repo(url="{url}")').build.repo.url == url


# One rule for every URL argument (dsl/lang/_credentials.py): on https a bare user slot is the
# usual place for a token (https://<token>@github.com), so it is refused too.
@pytest.mark.parametrize("url", ["https://alice:s3cr3t-t0ken@github.com/a/b", "ssh://git:s3cr3t-t0ken@host/a",
                                 "https://s3cr3t-t0ken@github.com/a/b"])
def test_repo_url_with_a_password_is_refused_without_echoing_it(error, url: str) -> None:
    err = error(f'config.repo(url="{url}")')
    assert "has credentials in it" in str(err) and "***@" in str(err)
    assert "s3cr3t" not in str(err) + (err.hint or "")


@pytest.mark.parametrize("url", ["", "ftp://x/y", "https://github.com/a b", "--upload-pack=touch /x", "github.com/a/b"])
def test_repo_url_that_is_not_a_git_url(error, url: str) -> None:
    assert "expected a git repository URL" in str(error(f"config.repo(url={url!r})"))


def test_conda_channel_takes_a_condarc(env) -> None:
    text = "channels:\n  - defaults\n  - dglteam # a comment\n    "  # as in envd's own e2e test
    assert env(f"install.conda()\nconfig.conda_channel(channel={text!r})").build.conda_channel.value == text


@pytest.mark.parametrize(("text", "message"), [
    ("conda-forge", "expected the text of a .condarc (a YAML mapping), got 'conda-forge'"),
    ("- defaults", "expected the text of a .condarc (a YAML mapping)"),
    ("channels: [defaults", "the .condarc text is not valid YAML (line 1 of the text)"),
    ("a: !!python/object:os.system x", "the .condarc text is not valid YAML"),
    pytest.param("[" * 5000, "the .condarc text is not valid YAML", id="deep-nesting"),
])
def test_conda_channel_that_is_not_a_condarc(error, text: str, message: str) -> None:
    err = error(f"install.conda()\nconfig.conda_channel(channel={text!r})")
    assert message in str(err) and "channels: [conda-forge]" in err.hint
