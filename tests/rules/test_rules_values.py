"""The scalar and path rules: each accepts what every target takes and refuses the rest."""

from __future__ import annotations

import pytest

from dsl import rules
from dsl.rules import Invalid

HEX = "ab" * 32


def _refused(rule, value: str) -> str:
    with pytest.raises(Invalid) as err:
        rule(value)
    return err.value.message


@pytest.mark.parametrize("good", [f"sha256:{HEX}"])
def test_checksum_is_sha256_only(good: str) -> None:
    assert rules.checksum(good) == good
    # BuildKit's http source computes sha256: a sha512 checksum could never match
    assert "sha512 is not checked, only sha256" in _refused(rules.checksum, "sha512:" + "a" * 128)
    for bad in ("md5:0123", f"sha256:{HEX[:-1]}", f"sha256:{HEX.upper()}", HEX, f"sha256:{HEX} "):
        _refused(rules.checksum, bad)


@pytest.mark.parametrize(("text", "ok"), [
    ("10Gi", True), ("500Mi", True), ("2", True), ("1.5", True), ("500m", True), ("1e3", True), ("1E3", True),
    ("1E", True), ("1e-3", True), (".5", True), ("1.", True), ("100n", True), ("3u", True), ("1k", True),
    ("0", False), ("0.0Gi", False), ("-1", False), ("+1", False), ("ten gigs", False), ("10 Gi", False),
    (" 10Gi", False), ("10GB", False), ("1e", False), ("1e100", False), ("", False), ("Gi", False),
    ("1" * 65, False),
])
def test_quantity_is_kubernetes_grammar_positive(text: str, ok: bool) -> None:
    if ok:
        assert rules.quantity(text) == text
    else:
        assert "expected a positive Kubernetes quantity" in _refused(rules.quantity, text)


@pytest.mark.parametrize(("text", "ok"), [
    ("EDITOR", True), ("_x1", True), ("a" * 256, True),
    # Kubernetes would take these; bash (the entrypoint, runtime.init) cannot set or read them
    ("A-B", False), ("a.b", False), ("1BAD", False), ("", False), ("A=B", False), ("Ä", False),
])
def test_env_name_is_the_shells_rule(text: str, ok: bool) -> None:
    if ok:
        assert rules.env_name(text) == text
    else:
        _refused(rules.env_name, text)


@pytest.mark.parametrize(("text", "ok"), [
    ("https://example.com", True), ("http://h:8080/p?q=1&r=2#f", True), ("https://u:p@h.org/x", True),
    ("https://[::1]:5000/x", True), ("https://h.org/a%20b", True), ("https://h.org/a'b", True),
    ("ftp://h.org", False), ("https://", False), ("https:///path", False), ("https://h.org/a b", False),
    ("https://h.org/\"", False), ("https://h.org/é", False), ("https://h.org:99999/", False),
    ("https://-h.org/", False), ("https://h.org/\\", False), ("https://h.org/{x}", False),
])
def test_http_url(text: str, ok: bool) -> None:
    if ok:
        assert rules.http_url(text) == text
    else:
        _refused(rules.http_url, text)


@pytest.mark.parametrize(("rule", "good", "bad"), [
    (rules.version, ["1.25.3", "25.1.0", "1.22rc1", "1.0+build"], ["v1.2", "latest", "", "1 2", "1;x"]),
    (rules.rust_toolchain, ["", "stable", "nightly", "nightly-2024-01-31", "1.75", "1.75.0"], ["latest", "1", "v1.75"]),
    (rules.cuda_version, ["12.2.2", "8", "9.1_x"], ["12+1", "", "-1", "a b"]),
    (rules.apt_package, ["jq", "g++", "libc6:amd64", "curl=7.88.1-10+deb12u5", "tzdata=1:2024a-0"],
     ["j", "Bad", "curl; reboot", "a_b", "x=1_2"]),
    (rules.conda_package, ["numpy", "numpy=1.26", "conda-forge::numpy>=1", "pytorch[build=*cuda*]",
                           "pytorch/label/nightly::torch"], ["numpy 1.26", "numpy=", "a;b", "[x]"]),
    (rules.conda_channel, ["conda-forge", "pytorch/label/nightly", "https://conda.example/c"], ["a b", "a//b", "ftp://x"]),
    (rules.r_package, ["ggplot2", "data.table", "mlr3"], ["x", "2a", "a.", "a/b", "a_b"]),
    (rules.julia_package, ["Flux", "Flux.jl", "_x"], ["1x", "a-b", "a.b"]),
    (rules.dns_label, ["data", "a-1"], ["Data", "-a", "a" * 64, "a.b"]),
    (rules.dns_subdomain, ["fast", "fast.ssd-1"], ["Fast", "a_b", "a" * 254]),
    (rules.file_name, ["f.tgz", "a+b@1~%", "..x"], [".", "..", "a/b", "a b", ""]),
    (rules.command_text, ["echo hi", " ", "a\nb"], ["a\0b"]),
    (rules.env_value, ["", "x y", "$HOME"], ["a\0b"]),
])
def test_scalar_rules(rule, good: list[str], bad: list[str]) -> None:
    for text in good:
        rule(text)
    for text in bad:
        _refused(rule, text)


def test_python_version_is_envds_rule() -> None:
    assert [rules.python_version(v) for v in ("", "3", "3.12", "3.11.4")] == ["", "", "3.12", "3.11.4"]
    for bad in ("2.7", "3.x", "4.0", "3.11 "):
        assert "envd doesn't support this Python version" in _refused(rules.python_version, bad)


@pytest.mark.parametrize(("rule", "text", "want"), [
    (rules.image_path, "~", "/home/envd"),
    (rules.image_path, "~/a/../b//c/", "/home/envd/b/c"),
    (rules.image_path, "//srv", "/srv"),
    (rules.image_path, "/a:b", "/a:b"),
    (rules.path_in_image, "etc/os-release", "/etc/os-release"),  # relative to the image's root, as LLB
    (rules.container_dir, "/opt/bin/", "/opt/bin"),
    (rules.mount_path, "~/data", "/home/envd/data"),
    (rules.context_path, "./a/../b", "b"),
    (rules.context_path, ".", "."),
])
def test_paths_are_normalised(rule, text: str, want: str) -> None:
    assert rule(text) == want


@pytest.mark.parametrize(("rule", "text", "reason"), [
    (rules.image_path, "relative", "expected an absolute path"),
    (rules.image_path, "/a\nb", "NUL or line break"),
    (rules.image_path, "~user/x", "expected an absolute path"),
    (rules.container_dir, "/a:b", "without ':'"),  # PATH's separator
    (rules.mount_path, "/", "got '/'"),
    (rules.mount_path, "/a:b", "without ':'"),
    (rules.context_path, "", "empty string"),
    (rules.context_path, "/etc/passwd", "inside the build context"),
    (rules.context_path, "../x", "inside the build context"),
    (rules.context_path, "a/../../x", "inside the build context"),
    (rules.path_in_image, " ", "empty"),
])
def test_paths_refused(rule, text: str, reason: str) -> None:
    assert reason in _refused(rule, text)


def test_download_name_comes_from_filename_or_the_url() -> None:
    assert rules.download_name("https://x.org/d/f.tgz?sig=1#frag", "") == "f.tgz"
    assert rules.download_name("https://x.org", "") == "download"
    assert rules.download_name("https://x.org/dir/", "") == "download"
    assert rules.download_name("https://x.org/a b", "given.bin") == "given.bin"
    with pytest.raises(Invalid) as err:
        rules.download_name("https://x.org/a$b", "")  # a URL may hold '$', a file name not
    assert "pass filename=" in err.value.hint


def test_exposed_ports() -> None:
    assert rules.exposed_port(8080, 0, earlier=[], reserved={}) == 8080
    assert "out of range" in _refused(lambda p: rules.exposed_port(int(p), 0, earlier=[], reserved={}), "0")
    assert "host port 70000" in _refused(lambda p: rules.exposed_port(80, int(p), earlier=[], reserved={}), "70000")
    assert "exposed twice" in _refused(lambda p: rules.exposed_port(int(p), 0, earlier=[80], reserved={}), "80")
    assert "already used by ssh" in _refused(lambda p: rules.exposed_port(int(p), 0, earlier=[], reserved={2222: "ssh"}), "2222")


def test_owner_id_is_one_range_for_config_owner_and_the_option() -> None:
    from dsl.cli._load import parse_owner
    from dsl.errors import UsageError

    assert rules.owner_id(0) == 0 and rules.owner_id(65535) == 65535
    for bad in (-1, 65536):
        _refused(lambda n: rules.owner_id(int(n)), str(bad))
    with pytest.raises(UsageError, match="expected a uid/gid in 0..65535, got 70000"):
        parse_owner("1000:70000")
