"""Environments built in Python (the evaluator is not needed to test the compiler)."""

from __future__ import annotations

from dsl.ir import (
    AptPackages,
    BaseImage,
    BuildGraph,
    Copy,
    Daemon,
    Environment,
    HttpDownload,
    InitScript,
    Jupyter,
    Mount,
    Owner,
    PipPackages,
    PipRequirements,
    PipWheel,
    PythonInstall,
    GoInstall,
    Run,
    RuntimeSpec,
    Span,
)


def apt_pip() -> Environment:
    """Like examples/apt-pip: Debian packages and pip on bookworm's system python3."""
    return Environment("apt-pip", BuildGraph(
        base=BaseImage("debian:bookworm", dev=False, span=Span("build.envd", 6, 5)),
        steps=(AptPackages(("jq", "curl"), span=Span("build.envd", 7, 5)),
               PipPackages(("six", "idna"), span=Span("build.envd", 8, 5)),
               PipPackages(("requests",), span=Span("build.envd", 9, 5)))),
        RuntimeSpec(environ=(("PYTHONDONTWRITEBYTECODE", "1"),)))


def dev_workspace() -> Environment:
    """A dev image with everything the compiler handles."""
    return Environment("workspace", BuildGraph(
        base=BaseImage("debian:bookworm", dev=True, span=Span("build.envd", 2, 5)),
        owner=Owner(1234, 2345),
        steps=(AptPackages(("git", "make"), span=Span("build.envd", 3, 5)),
               PythonInstall("3.11", span=Span("build.envd", 4, 5)),
               GoInstall("1.25.3", span=Span("build.envd", 5, 5)),
               PipPackages(("numpy", "pandas>=2,<3"), span=Span("build.envd", 6, 5)),
               PipRequirements("requirements.txt", span=Span("build.envd", 7, 5)),
               PipWheel("dist/x-1.0-py3-none-any.whl", span=Span("build.envd", 8, 5)),
               HttpDownload("https://example.com/data.tgz", "sha256:" + "ab" * 32,
                            span=Span("build.envd", 9, 5)),
               Copy("src", "/opt/src", span=Span("build.envd", 10, 5)),
               Run(("echo 'it''s' > out.txt", "ls"), span=Span("build.envd", 11, 5)))),
        RuntimeSpec(init=(InitScript(("echo init",)),), daemons=(Daemon(("sleep", "1000")),),
                    jupyter=Jupyter(), mounts=(Mount("/home/envd/data"),)))
