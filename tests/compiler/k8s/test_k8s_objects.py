"""compiler.k8s on IR built in Python: what lands in the manifests, and bad input."""

from __future__ import annotations

import base64

import pytest
import yaml

from compiler.k8s import K8sOptions, compile_k8s, synth_files, synth_json, synth_yaml
from dsl.errors import CompileError, UsageError
from dsl.ir import (
    BaseImage,
    BuildGraph,
    Cuda,
    Environment,
    Jupyter,
    KubernetesMount,
    KubernetesService,
    KubernetesSpec,
    Mount,
    Owner,
    Port,
    Resources,
    RuntimeSpec,
    Span,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1c2luZXNzIGNhc2UgZm9yIHRlc3RpbmcgcHVycG9zZXM user@laptop\n"
AT = Span("build.envd", 7, 5)


def dev_env(**runtime) -> Environment:
    return Environment(
        name="proj",
        build=BuildGraph(base=BaseImage(image="debian:bookworm", dev=True, span=Span("build.envd", 2, 5)),
                         owner=Owner(1001, 1002)),
        runtime=RuntimeSpec(**runtime),
        source="proj/build.envd",
    )


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def pod_of(objects):
    (pod,) = by_kind(objects, "Pod")
    return pod


def test_dev_env_has_ssh_secret_ref_workdir_pvc_and_service(valid_objects):
    objects = compile_k8s(dev_env(), K8sOptions(image="proj:dev"))
    valid_objects(objects)
    assert [o["kind"] for o in objects] == ["PersistentVolumeClaim", "Service", "Pod"]
    pod = pod_of(objects)
    (c,) = pod["spec"]["containers"]
    assert "command" not in c and "args" not in c  # the image's own entrypoint runs
    keys = {e["name"]: e for e in c["env"]}
    assert keys["DSL_AUTHORIZED_KEYS"]["valueFrom"]["secretKeyRef"] == {"name": "proj-ssh", "key": "authorized_keys"}
    assert c["readinessProbe"]["tcpSocket"] == {"port": "ssh"}
    assert {"name": "ssh", "containerPort": 2222, "protocol": "TCP"} in c["ports"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols[mounts["/home/envd/proj"]]["persistentVolumeClaim"]["claimName"] == "proj-workdir"
    assert vols[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "2048Mi"}
    (svc,) = by_kind(objects, "Service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0] == {"name": "ssh", "port": 2222, "targetPort": "ssh", "protocol": "TCP"}


def test_security_context_is_strict_and_uses_the_owner(valid_objects):
    pod = pod_of(compile_k8s(dev_env(), K8sOptions(image="proj:dev")))
    psc = pod["spec"]["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 1001 and psc["runAsGroup"] == 1002
    assert psc["fsGroup"] == 1002 and psc["seccompProfile"] == {"type": "RuntimeDefault"}
    csc = pod["spec"]["containers"][0]["securityContext"]
    assert csc == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_no_key_material_inline_and_public_key_secret_is_emitted(valid_objects):
    opts = K8sOptions(image="proj:dev", ssh_public_key=KEY, host_key_secret="proj-hostkey")
    objects = compile_k8s(dev_env(), opts)
    valid_objects(objects)
    (secret,) = by_kind(objects, "Secret")
    assert base64.b64decode(secret["data"]["authorized_keys"]).decode() == KEY
    pod_text = yaml.safe_dump(pod_of(objects))
    assert "AAAAC3Nza" not in pod_text and secret["data"]["authorized_keys"] not in pod_text
    c = pod_of(objects)["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["DSL_HOST_KEY_PATH"]["value"] == "/etc/dsl/host-key/ssh_host_key"
    hk = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/dsl/host-key")
    assert hk["readOnly"] is True


@pytest.mark.parametrize("text", [
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n",
    "hello world\n",
    "  \n",
])
def test_private_or_garbage_public_key_is_refused(text):
    with pytest.raises(UsageError) as err:
        compile_k8s(dev_env(), K8sOptions(image="proj:dev", ssh_public_key=text))
    assert "b3BlbnNzaC1rZXk" not in err.value.format()


@pytest.mark.parametrize(("jupyter", "ref"), [
    (Jupyter(), {"name": "proj-jupyter", "key": "token"}),
    (Jupyter(auth=False), None),  # config.jupyter(token=""): no token to pass
])
def test_the_jupyter_token_comes_from_a_secret_never_emitted(valid_objects, jupyter, ref):
    pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b\n"
    objects = compile_k8s(dev_env(jupyter=jupyter), K8sOptions(image="proj:dev", ssh_public_key=pub))
    valid_objects(objects)
    env = {e["name"]: e for e in pod_of(objects)["spec"]["containers"][0]["env"]}
    got = env.get("DSL_JUPYTER_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef")
    assert got == ref and "optional" not in (got or {})  # a missing Secret stops the Pod
    (secret,) = by_kind(objects, "Secret")  # only the SSH one
    assert set(secret["data"]) == {"authorized_keys"}


def test_ports_env_resources_gpu_and_service_type(valid_objects):
    env = dev_env(
        ports=(Port(8000, service="web", span=AT), Port(9000, host_port=19000)),
        environ=(("A", "1"), ("PATH", "/x"), ("Z", "two words")),
        jupyter=Jupyter(),
        rstudio=True,
        shm_size_mb=4096,
        kubernetes=KubernetesSpec(resources=Resources(cpu="500m", memory="8Gi", gpu=2),
                                  service=KubernetesService(type="NodePort")),
    )
    objects = compile_k8s(env, K8sOptions(image="proj:dev", namespace="team-a",
                                          service_account="dev-sa", image_pull_secrets=("regcred",)))
    valid_objects(objects)
    assert all(o["metadata"]["namespace"] == "team-a" for o in objects)
    pod = pod_of(objects)
    c = pod["spec"]["containers"][0]
    assert [(p["name"], p["containerPort"]) for p in c["ports"]] == [
        ("ssh", 2222), ("jupyter", 8888), ("rstudio", 8787), ("web", 8000), ("port-9000", 9000)]
    assert [e["name"] for e in c["env"] if "value" in e] == ["A", "Z"]  # PATH stays the image's
    assert c["resources"]["limits"] == {"cpu": "500m", "memory": "8Gi", "nvidia.com/gpu": "2"}
    assert c["resources"]["requests"] == c["resources"]["limits"]
    assert pod["spec"]["serviceAccountName"] == "dev-sa"
    assert "automountServiceAccountToken" not in pod["spec"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    (svc,) = by_kind(objects, "Service")
    assert svc["spec"]["type"] == "NodePort"
    assert {"name": "port-9000", "port": 19000, "targetPort": "port-9000", "protocol": "TCP"} in svc["spec"]["ports"]
    shm = next(v for v in pod["spec"]["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["sizeLimit"] == "4096Mi"


def test_cuda_without_config_gpu_gets_one_gpu():
    env = Environment(name="g", build=BuildGraph(base=BaseImage(dev=True), cuda=Cuda("12.2.2")))
    c = pod_of(compile_k8s(env, K8sOptions(image="g:dev")))["spec"]["containers"][0]
    assert c["resources"]["limits"] == {"nvidia.com/gpu": "1"}


def test_mounts_become_pvcs_with_kubernetes_settings(valid_objects):
    env = dev_env(
        mounts=(Mount("/home/envd/.cache"), Mount("/data", data_name="imagenet"),
                Mount("/src", host_path="~/src"), Mount("/ckpt")),
        kubernetes=KubernetesSpec(mounts=(
            KubernetesMount("checkpoints", "/ckpt", size="200Gi", storage_class="fast.ssd",
                            access_mode="ReadWriteMany"),)),
    )
    objects = compile_k8s(env, K8sOptions(image="proj:dev", ephemeral_workdir=True))
    valid_objects(objects)
    claims = {o["metadata"]["name"]: o["spec"] for o in by_kind(objects, "PersistentVolumeClaim")}
    assert set(claims) == {"proj-home-envd-cache", "proj-data-imagenet", "proj-checkpoints"}
    assert claims["proj-checkpoints"] == {"accessModes": ["ReadWriteMany"],
                                          "resources": {"requests": {"storage": "200Gi"}},
                                          "storageClassName": "fast.ssd"}
    pod = pod_of(objects)
    mounts = {m["mountPath"]: m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols[mounts["/home/envd/proj"]] == {"name": mounts["/home/envd/proj"], "emptyDir": {}}
    assert vols[mounts["/src"]]["emptyDir"] == {}  # a host path has no meaning in a cluster
    assert vols[mounts["/ckpt"]]["persistentVolumeClaim"]["claimName"] == "proj-checkpoints"
    assert len(set(mounts.values())) == len(mounts)


def test_non_dev_env_has_no_ssh_bits(valid_objects):
    env = Environment(name="svc", build=BuildGraph(base=BaseImage(dev=False)),
                      runtime=RuntimeSpec(ports=(Port(8080, service="http"),)))
    objects = compile_k8s(env, K8sOptions(image="svc:1", ssh_public_key=KEY))
    valid_objects(objects)
    assert [o["kind"] for o in objects] == ["Service", "Pod"]
    text = synth_yaml(objects)
    assert "2222" not in text and "DSL_AUTHORIZED_KEYS" not in text and "readinessProbe" not in text
    psc = pod_of(objects)["spec"]["securityContext"]
    assert "runAsNonRoot" not in psc  # the image's own user; it may be root


def test_non_dev_env_without_ports_has_no_service():
    env = Environment(name="job", build=BuildGraph(base=BaseImage(dev=False)))
    assert [o["kind"] for o in compile_k8s(env, K8sOptions(image="job:1"))] == ["Pod"]


def test_labels_and_content_hash_follow_inputs():
    a = compile_k8s(dev_env(), K8sOptions(image="proj:dev"))
    labels = pod_of(a)["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/name": "proj", "app.kubernetes.io/instance": "proj",
                      "app.kubernetes.io/managed-by": "envdsl", "app.kubernetes.io/part-of": "proj"}
    h = {o["metadata"]["annotations"]["envdsl/content-hash"] for o in a}
    assert len(h) == 1 and h.pop().startswith("sha256:")

    def digest(objs):
        return pod_of(objs)["metadata"]["annotations"]["envdsl/content-hash"]

    assert digest(compile_k8s(dev_env(), K8sOptions(image="proj:dev"))) == digest(a)
    assert digest(compile_k8s(dev_env(), K8sOptions(image="proj:v2"))) != digest(a)
    assert digest(compile_k8s(dev_env(environ=(("X", "1"),)), K8sOptions(image="proj:dev"))) != digest(a)


def test_function_name_goes_into_object_names():
    env = Environment(name="proj", function="gpu", build=BuildGraph(base=BaseImage(dev=True)))
    objects = compile_k8s(env, K8sOptions(image="p:1"))
    assert [o["metadata"]["name"] for o in objects[:2]] == ["proj-gpu-workdir", "proj-gpu"]
    assert pod_of(objects)["metadata"]["name"].startswith("proj-gpu-")  # + the config hash


def test_synth_is_ordered_and_stable():
    env = dev_env(ports=(Port(8000, service="web"),), environ=(("B", "2"), ("A", "1")))
    objects = compile_k8s(env, K8sOptions(image="proj:dev", ssh_public_key=KEY))
    text = synth_yaml(tuple(reversed(objects)))
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == ["Secret", "PersistentVolumeClaim", "Service", "Pod"]
    for chunk in text.split("---\n")[1:]:
        assert chunk.splitlines()[:2] == ["apiVersion: v1", f"kind: {yaml.safe_load(chunk)['kind']}"]
    assert synth_yaml(objects) == text
    files = synth_files(objects)
    assert list(files)[-1] == "kustomization.yaml"
    assert yaml.safe_load(files["kustomization.yaml"])["resources"] == list(files)[:-1]
    assert '"kind": "List"' in synth_json(objects)


@pytest.mark.parametrize("runtime, message", [
    ({"ports": (Port(70000, span=AT),)}, "container port 70000 is out of range"),
    ({"ports": (Port(2222, span=AT),)}, "port 2222 is already used by ssh"),
    ({"ports": (Port(80, span=AT), Port(80, span=AT))}, "exposed twice"),
    ({"mounts": (Mount("data", span=AT),)}, "invalid mount path: expected an absolute path, got 'data'"),
    ({"kubernetes": KubernetesSpec(mounts=(KubernetesMount("m", "/m", size="ten gigs", span=AT),))},
     "invalid PVC size: expected a positive Kubernetes quantity like '10Gi', got 'ten gigs'"),
    ({"kubernetes": KubernetesSpec(mounts=(KubernetesMount("m", "/m", size="0.0Gi", span=AT),))},
     "invalid PVC size: expected a positive Kubernetes quantity like '10Gi', got '0.0Gi'"),
    ({"kubernetes": KubernetesSpec(mounts=(KubernetesMount("m", "/m", access_mode="RWX", span=AT),))},
     "access mode 'RWX'"),
    ({"kubernetes": KubernetesSpec(resources=Resources(memory="lots", span=AT))}, "invalid memory: expected a positive Kubernetes quantity like '8Gi', got 'lots'"),
    ({"kubernetes": KubernetesSpec(service=KubernetesService("ExternalName", span=AT))}, "service type"),
    ({"environ": (("BAD=NAME", "x"),)}, "environment variable name"),
])
def test_bad_runtime_values_point_at_the_build_file(runtime, message):
    with pytest.raises(CompileError) as err:
        compile_k8s(dev_env(**runtime), K8sOptions(image="proj:dev"))
    assert message in err.value.message
    if "environ" not in runtime:
        assert err.value.headline().startswith("build.envd:7:5: ")
    assert err.value.hint


def test_undnsable_name_points_at_base():
    env = Environment(name="日本語", build=BuildGraph(base=BaseImage(dev=True, span=Span("build.envd", 2, 5))))
    with pytest.raises(CompileError) as err:
        compile_k8s(env, K8sOptions(image="x:1"))
    assert err.value.headline().startswith("build.envd:2:5: cannot make a DNS-1123 name")


@pytest.mark.parametrize("opts", [
    {"namespace": "Team_A"}, {"ssh_secret": "-bad"}, {"image_pull_secrets": ("UPPER",)},
])
def test_bad_options_are_usage_errors(opts):
    with pytest.raises(UsageError):
        compile_k8s(dev_env(), K8sOptions(image="proj:dev", **opts))


def test_yaml_quoting_matches_pyyaml_for_ambiguous_strings():
    from compiler.k8s import dump_yaml

    tricky = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {
        "a": "yes", "b": "0777", "c": "2", "d": "1e3", "e": "null", "f": "~", "g": "two\nlines\n",
        "h": "ünïcode", "i": ": colon", "j": "- dash", "k": "#hash", "l": "", "m": "on"}}
    text = dump_yaml(tricky)
    assert yaml.safe_load(text) == tricky
    assert "  g: |\n    two\n    lines\n" in text  # multi-line strings as literal blocks
    plain = {k: v for k, v in tricky["data"].items() if k != "g"}
    ours = dump_yaml({**tricky, "data": plain}).split("\ndata:\n", 1)[1]
    assert ours == yaml.safe_dump({"data": plain}, allow_unicode=True).split("data:\n", 1)[1]


def test_a_mount_path_without_ascii_letters_still_names_its_claim():
    """'/_' or '/日本' is a valid mount path; its PVC is named by a hash, not refused."""
    objects = compile_k8s(dev_env(mounts=(Mount("/日本", span=AT), Mount("/_", span=AT))), K8sOptions(image="proj:dev"))
    claims = [o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert len([c for c in claims if "-path-" in c]) == 2 and len(set(claims)) == len(claims)
