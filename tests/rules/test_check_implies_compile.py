"""What ``dsl check`` accepts compiles for every target: the language and the compilers share
each rule (``dsl.rules``), so neither can refuse what the other took.

Hypothesis writes build files from calls to the builtins with argument values drawn from
each rule's edges (valid values that look odd, near misses, characters every rule treats
specially), evaluates them as ``dsl check`` does, and compiles every accepted environment
for LLB (both graph shapes), the image config, the Docker create body, Compose and the
Kubernetes objects. A rejected file must be a ``BuildFileError`` with a build-file location.
Deterministic (``derandomize``) and quick: a few hundred files in a few seconds.

Every builtin that takes a value is generated, ``install.codex`` and
``install.vscode_extensions`` included: ids and releases without a version compile to steps
that resolve them when the image is built (and verify what they download), so they are no
exception either.
"""

from __future__ import annotations

import ast
import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler._runtime import instance_name
from compiler.docker import DockerOptions, compile_container, compose_file
from compiler.image_config import image_config
from compiler.k8s import K8sOptions, compile_k8s, dump_yaml, synth_files, synth_yaml
from compiler.llb import compile_environment
from dsl import rules
from dsl.errors import BuildFileError
from dsl.lang import evaluate_source

HEX = "0123456789abcdef" * 4


def _text(edges: list[str], alphabet: str, max_size: int = 12) -> st.SearchStrategy[str]:
    """Mostly the rule's edge cases, sometimes free text from characters that matter to it."""
    return st.one_of(st.sampled_from(edges), st.text(alphabet=alphabet, max_size=max_size))


_ODD = "\0 \t\n:;/@#$'\"`\\|&*?[]{}()<>=!~%^,+é\u2028"
IMAGES = _text(["ubuntu:22.04", "debian:bookworm", "myteam/ws:1", "localhost:5000/a/b:t", "[::1]:5000/x",
                f"x@sha256:{HEX}", f"x:t@sha256:{HEX}", "ghcr.io/o/i:v1.2_rc-3", "a__b-c---d/e", "Ubuntu",
                "x:" + "t" * 128, "index.docker.io/library/bb", "ubuntu:" + "2" * 100, "x:é", "a//b", ":t"],
               string.ascii_lowercase + "0123456789.:/@_-[]" + "A")
PATHS = _text(["/data", "~/data", "~", "/", "/a/../b", "//srv", "/a:b", "/home/envd/x/", "/_", "/日本", "rel",
               "/dev/shm", "/home/envd/proj", "/a b"], "/~.:ab_-é " + "\n", 10)
CONTEXT = _text(["src", ".", "./a/../b", "a b", "../x", "/etc/passwd", "data/*.csv", "réq.txt", "a:b"],
                "ab./_-:* é", 10)
URLS = _text(["https://example.com/f.tgz", "https://x.org", "http://h:8080/p?q=1&r=2#f", "https://u:p@h.org/a'b",
              "https://[::1]:5000/x", "https://h.org/a%20b", "https://h.org/get(1).tgz", "https://h.org/a$b",
              "ftp://x", "https://"], "abc:/.%?#&'()$@[]-", 16).map(lambda s: s if "://" in s else "https://h.org/" + s)
PIP = _text(["numpy", "numpy>=1.26,<2", 'x; python_version < "3.12"', "pandas[excel]>=2", "a[]", "x==1.*",
             "pkg @ https://example.com/p.whl", "torch --index-url https://download.pytorch.org/whl/cpu",
             "--extra-index-url https://x/y", "git+https://github.com/o/r", "numpy scipy", "x===weird-1",
             "numpy; rm -rf /", "./pkg", "x~=1.4"], "abc0123456789=<>!~;.,[]()@ '\"-_*+", 20)
APT = _text(["jq", "g++", "libc6:amd64", "curl=7.88.1-10+deb12u5", "tzdata=1:2024a-0", "j"], "ab+.-:=~0", 10)
CONDA = _text(["numpy", "numpy=1.26", "conda-forge::numpy>=1", "pytorch[build=*cuda*]", "a.b-c_d"], "ab=<>.:*[]_-", 12)
CHANNELS = _text(["conda-forge", "pytorch/label/nightly", "https://conda.example/c"], "ab/-_.:", 10)
VERSIONS = _text(["1.25.3", "25.1.0", "1.22rc1", "1.0+build", "v1.2", "stable", "nightly-2024-01-31", "1.75"],
                 "0123456789.+-abv", 8)
CODEX = _text(["", "0.155.1", "0.141.0", "0.140.9", "0.98.0", "0.156.0-alpha.2", "1.0.0-beta", "rust-v0.155.1",
               "0.150", "v1.2.3", "0.141.0+x", "99999999999999999999.0.0"], "0123456789.-abelpht", 10)
VSCODE = _text(["ms-python.python", "ms-python.python-2024.8.1", "a.b-latest", "a.b-", "x.a.b-1.0", "python",
                "a..b", "-a.b", "a.b-1.0-beta", "REditorSupport.r-lsp-0.1.0", "a.b-1", "a.b-1.0_x", "a.b-1+2",
                "ms-python.python-2024.8.1@linux-x64", "a.b-é"], "ab.-_1A@", 12)
PYTHON = _text(["", "3", "3.12", "3.11.4", "2.7"], "3.12x", 5)
QUANTITY = _text(["10Gi", "500m", "2", "1.5", "1e3", "1E", ".5", "1.", "100n", "0", "-1", "+1", "1e-3", "1E18"],
                 "0123456789.eEKMGimnu+-", 6)
ENV_NAMES = _text(["EDITOR", "_x", "A-B", "a.b", "PATH", "DSL_X"], string.ascii_letters + "_-.0=", 8)
NAMES = _text(["data", "ws", "a-1", "Data", "x" * 63], string.ascii_lowercase + "-_.0", 10)
TEXT = st.text(alphabet=string.ascii_letters + _ODD, max_size=12)
PORT = st.sampled_from([1, 22, 80, 2222, 8080, 8787, 8888, 65535])
HOST_PORT = st.sampled_from([0, 0, 8080, 65535])


def _s(value: str) -> str:
    return repr(value)  # a Python string literal is a valid Starlark one


def _kw(**args: object) -> str:
    return ", ".join(f"{k}={v}" for k, v in args.items())


def _list(strategy: st.SearchStrategy[str], max_size: int = 3) -> st.SearchStrategy[str]:
    return st.lists(strategy, min_size=1, max_size=max_size).map(lambda xs: "[" + ", ".join(map(_s, xs)) + "]")


def _call(builtin: str, /, **args: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.fixed_dictionaries(args).map(lambda a: f"{builtin}({_kw(**a)})")


S = {k: v.map(_s) for k, v in {
    "image": IMAGES, "path": PATHS, "context": CONTEXT, "url": URLS, "version": VERSIONS, "python": PYTHON,
    "quantity": QUANTITY, "name": NAMES, "text": TEXT, "env": ENV_NAMES,
}.items()}
BOOL = st.sampled_from(["True", "False"])
INT = st.integers(-1, 70000).map(str)

CALLS = st.one_of(
    _call("base", image=S["image"], dev=BOOL),
    _call("shell", name=st.sampled_from(["bash", "zsh", "fish", "sh"]).map(_s)),
    _call("run", commands=_list(TEXT), mount_host=BOOL),
    _call("git_config", name=S["text"], email=S["text"], editor=S["text"]),
    _call("install.python", version=S["python"]),
    _call("install.conda", use_mamba=BOOL),
    _call("install.uv", python_version=S["python"]),
    _call("install.pixi", use_pixi_mirror=BOOL, pypi_index=S["url"]),
    st.just("install.r_lang()"), st.just("install.julia()"),
    _call("install.rust", version=S["version"]),
    _call("install.go", version=S["version"]),
    _call("install.nodejs", version=S["version"]),
    _call("install.codex", version=CODEX.map(_s)),
    _call("install.vscode_extensions", name=_list(VSCODE)),
    _call("install.apt_packages", name=_list(APT)),
    _call("install.python_packages", name=_list(PIP), requirements=S["context"], local_wheels=_list(CONTEXT, 2)),
    _call("install.conda_packages", name=_list(CONDA), channel=_list(CHANNELS, 2)).map(lambda c: "install.conda(); " + c),
    _call("install.r_packages", name=_list(_text(["ggplot2", "data.table", "x", "a."], "ab.2_", 8))),
    _call("install.julia_packages", name=_list(_text(["Flux", "Flux.jl", "a-b"], "Ab_.j1", 8))),
    _call("install.cuda", version=S["version"], cudnn=st.sampled_from(["8", "9", "8.9", "x+1"]).map(_s)),
    _call("config.apt_source", source=S["text"]),
    _call("config.pip_index", url=S["url"], extra_url=S["url"], trust=BOOL),
    _call("config.jupyter", token=S["text"], port=HOST_PORT.map(str)),
    _call("config.gpu", count=st.integers(0, 4).map(str)),
    _call("config.shm_size", size=st.integers(1, 4096).map(str)),
    _call("config.cran_mirror", url=S["url"]),
    _call("config.julia_pkg_server", url=S["url"]),
    st.just("config.rstudio_server()"),
    _call("config.entrypoint", args=_list(TEXT)),
    _call("config.owner", uid=st.sampled_from([-1, 0, 1000, 65535, 65536]).map(str), gid=st.integers(0, 65535).map(str)),
    _call("io.copy", source=S["context"], target=S["path"]),
    _call("io.copy", source=S["path"], target=S["path"], image=S["image"]),
    _call("io.http", url=S["url"], checksum=st.sampled_from(["", f"sha256:{HEX}", "sha512:" + "a" * 128]).map(_s),
          filename=st.sampled_from(["", "f.tgz", "a b", "..", "x@1"]).map(_s)),
    st.dictionaries(S["text"], S["text"], max_size=2).map(lambda d: f"runtime.command(commands={{{', '.join(f'{k}: {v}' for k, v in d.items())}}})"),
    _call("runtime.daemon", commands=st.lists(_list(TEXT), min_size=1, max_size=2).map(lambda xs: "[" + ", ".join(xs) + "]")),
    _call("runtime.init", commands=_list(TEXT)),
    _call("runtime.expose", envd_port=PORT.map(str), host_port=HOST_PORT.map(str), service=S["text"],
          listen_addr=st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "localhost"]).map(_s)),
    st.fixed_dictionaries({"env": st.dictionaries(S["env"], S["text"], max_size=2), "extra": _list(PATHS, 2)}).map(
        lambda a: f"runtime.environ(env={{{', '.join(f'{k}: {v}' for k, v in a['env'].items())}}}, extra_path={a['extra']})"),
    _call("runtime.mount", host_path=st.sampled_from(["~/d", "/srv/x", "./rel", "data.envd('ds')", "data.envd('a_1')"]).map(
        lambda h: h if h.startswith("data.") else _s(h)), envd_path=S["path"]),
    _call("runtime.docker.mount", target=S["path"], source=st.sampled_from(["", "~/c", "/srv"]).map(_s), read_only=BOOL),
    _call("runtime.kubernetes.mount", name=S["name"], path=S["path"], size=S["quantity"],
          storage_class=st.sampled_from(["", "fast", "fast.ssd-1", "Fast_SSD"]).map(_s),
          access_mode=st.sampled_from(["ReadWriteOnce", "ReadWriteMany", "RWX"]).map(_s)),
    _call("runtime.kubernetes.resources", cpu=st.one_of(S["quantity"], INT), memory=S["quantity"],
          gpu=st.integers(0, 2).map(str)),
    _call("runtime.kubernetes.service", type=st.sampled_from(["ClusterIP", "NodePort", "Ingress"]).map(_s)),
)
BUILD_FILES = st.lists(CALLS, min_size=1, max_size=6).map(
    lambda calls: "def build():\n" + "".join(f"    {c}\n" for c in calls))


def compile_every_target(env) -> None:  # noqa: ANN001 - an Environment
    """Every artifact ``dsl compile`` and ``dsl build`` make from an environment."""
    for sequential in (True, False):
        compile_environment(env, sequential=sequential)
    image_config(env, base_config=None)
    body = compile_container(env, DockerOptions(image="proj:dev", build_dir="/project", home="/home/user"))
    dump_yaml(compose_file(instance_name(env), body))
    objects = compile_k8s(env, K8sOptions(image="myteam/ws:1"))
    synth_yaml(objects)
    synth_files(objects)


def _accepted_files_compile(files: st.SearchStrategy[str], examples: int) -> list[str]:
    """Run the property over ``examples`` generated files; the ones ``dsl check`` accepted."""
    accepted: list[str] = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(files)
    def check_then_compile(source: str) -> None:
        try:
            env = evaluate_source(source).environment
        except BuildFileError as exc:
            assert exc.span is not None, f"an evaluation error without a location: {exc}"
            return
        accepted.append(source)
        compile_every_target(env)

    check_then_compile()
    return accepted


def test_what_check_accepts_compiles_for_every_target() -> None:
    accepted = _accepted_files_compile(BUILD_FILES, 300)
    assert len(accepted) >= 60, f"only {len(accepted)} generated files passed dsl check: the property proves little"


# Files of downloads only (plus the base): the mix above accepts few of them, since any other
# call in a file may be refused; here each accepted file has several, pinned or not.
DOWNLOAD_FILES = st.lists(st.one_of(
    _call("base", image=st.sampled_from(["debian:bookworm", "ubuntu:22.04"]).map(_s), dev=BOOL),
    _call("install.codex", version=st.one_of(st.sampled_from(["", "0.155.1", "0.141.0"]), CODEX).map(_s)),
    _call("install.vscode_extensions", name=_list(st.one_of(
        st.sampled_from(["ms-python.python", "a.b-latest", "REditorSupport.r-lsp"]),
        st.sampled_from(["ms-python.python-2024.8.1", "x.a.b-1.0", "a.b-1"]), VSCODE))),
    _call("install.go", version=S["version"]),
), min_size=1, max_size=5).map(lambda calls: "def build():\n" + "".join(f"    {c}\n" for c in calls))


def test_downloads_check_accepts_compile_for_every_target_pinned_or_not() -> None:
    accepted = _accepted_files_compile(DOWNLOAD_FILES, 200)
    for call in ("install.codex(version='')", "install.codex(version='0.", "install.vscode_extensions("):
        assert sum(call in source for source in accepted) >= 5, f"too few accepted files call {call}...)"
    ids = [i for source in accepted for i in re.findall(r"install\.vscode_extensions\(name=\[([^]]*)\]", source)]
    versions = [rules.vscode_extension_parts(ast.literal_eval(x))[2] for i in ids for x in i.split(", ")]
    assert sum(not v for v in versions) >= 5 and sum(bool(v) for v in versions) >= 5, versions


def test_edge_values_the_compilers_take_are_accepted_by_check() -> None:
    """Values the old language refused although every compiler takes them (pip markers and
    options, a path relative to another image's root) now pass ``dsl check`` and compile."""
    source = ("def build():\n"
              "    install.python_packages(name=['tomli; python_version < \"3.11\"', "
              "'torch --index-url https://download.pytorch.org/whl/cpu'])\n"
              "    io.copy(source='etc/os-release', target='/opt/os-release', image='myteam/base:1')\n"
              "    runtime.kubernetes.resources(cpu='.5', memory='1E')\n")
    env = evaluate_source(source).environment
    compile_every_target(env)
