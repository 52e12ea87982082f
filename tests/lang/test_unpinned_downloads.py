"""install.vscode_extensions and install.codex without a version: accepted (envd fetches the
latest too) with a warning that the build resolves it; a codex release that publishes no
checksums is refused at evaluation, where dsl check sees it, not only by the image build."""

from __future__ import annotations

from dsl import ir


def test_an_extension_without_a_version_warns_that_the_build_resolves_it(result) -> None:
    r = result('install.vscode_extensions(["ms-python.python", "ms-toolsai.jupyter-2024.1.0", "a.b-latest"])')
    assert r.environment.build.steps == (
        ir.VscodeExtensions(("ms-python.python", "ms-toolsai.jupyter-2024.1.0", "a.b-latest")),)
    assert r.warnings == tuple(
        f"build.envd:2:5: warning: install.vscode_extensions: '{i}' has no version: the latest one on "
        f"Open VSX is looked up when the image is built, so two builds can differ; pin it as '{i}-<version>' "
        "for reproducible builds" for i in ("ms-python.python", "a.b-latest"))


def test_pinned_extensions_and_codex_release_do_not_warn(result) -> None:
    r = result('install.vscode_extensions(["ms-python.python-2024.8.1"])\ninstall.codex(version="0.155.1")')
    assert r.warnings == ()
    assert r.environment.build.steps[-1] == ir.CodexInstall("0.155.1")


def test_codex_without_a_version_warns_that_the_latest_release_is_fetched(result) -> None:
    for call in ("install.codex()", 'install.codex(version="")', "install.codex(None)"):
        r = result(call)
        assert r.environment.build.steps == (ir.CodexInstall(""),)
        assert len(r.warnings) == 1 and r.warnings[0].startswith(
            "build.envd:2:5: warning: install.codex: no version: the latest openai/codex release is fetched "
            "when the image is built"), r.warnings


def test_a_codex_release_without_checksums_or_in_the_wrong_form_is_an_evaluation_error(error) -> None:
    old = error('install.codex(version="0.98.0")')
    assert str(old).startswith("build.envd:2:5: install.codex: argument 'version': openai/codex 0.98.0 is "
                               "older than 0.141.0"), str(old)
    assert "0.141.0 or later" in old.hint
    tag = error('install.codex("rust-v0.155.1")')
    assert "expected an openai/codex release like '0.155.1'" in str(tag) and "rust-v" in tag.hint
