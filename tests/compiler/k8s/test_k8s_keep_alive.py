"""A non-dev environment without ``config.entrypoint`` runs the keep-alive PID 1 on
Kubernetes too (the same command as the Docker create body; tests/compiler/docker runs it)."""

from __future__ import annotations

from compiler._runtime import KEEP_ALIVE_COMMAND
from compiler.docker import DockerOptions, compile_container
from compiler.k8s import K8sOptions, compile_k8s
from dsl.ir import BaseImage, BuildGraph, Environment, Port, RuntimeSpec


def container(dev: bool = False, entrypoint: tuple[str, ...] = ()) -> dict:
    env = Environment(name="svc", build=BuildGraph(base=BaseImage(dev=dev), entrypoint=entrypoint),
                      runtime=RuntimeSpec(ports=(Port(8080, service="http"),)))
    (pod,) = [o for o in compile_k8s(env, K8sOptions(image="svc:1")) if o["kind"] == "Pod"]
    return pod["spec"]["containers"][0]


def test_a_non_dev_pod_without_an_entrypoint_runs_the_keep_alive(valid_objects):
    c = container()
    # `command` without `args`: neither the image's ENTRYPOINT nor its CMD runs.
    assert c["command"] == list(KEEP_ALIVE_COMMAND) and "args" not in c
    body = compile_container(Environment(name="svc", build=BuildGraph(base=BaseImage(dev=False))),
                             DockerOptions(image="svc:1", build_dir="/src", home="/home/a"))
    assert body["Entrypoint"] == c["command"]  # one definition for both targets


def test_an_entrypoint_of_the_build_file_or_the_dev_image_is_kept():
    assert "command" not in container(entrypoint=("python3", "-m", "http.server"))
    assert "command" not in container(dev=True)
