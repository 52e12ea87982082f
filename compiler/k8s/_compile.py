"""Environment + options → Kubernetes objects (plain dicts), in the fixed kind order.

The workload (Pod, StatefulSet or Deployment, ``--workload``) is shaped in ``_workload``.

The objects are data; ``compiler.k8s._synth`` alone turns them into YAML.
"""

from __future__ import annotations

import re
from typing import Any

from compiler import _runtime
from compiler._names import HASH_ANNOTATION, MANAGED_BY, child_name, label_value
from compiler.k8s._options import K8sOptions
from compiler.k8s._pod import AUTHORIZED_KEYS_KEY, pod_spec
from compiler.k8s._volumes import Volume, plan_volumes
from compiler.k8s._workload import config_hash, workload
from dsl import rules
from dsl.errors import CompileError, UsageError
from dsl.ir import Environment, KubernetesService, content_hash, to_data

# Bump when the shape of the output changes, so the hash annotation changes with it
# (2: hash-named Pods, --workload, the keep-alive command).
OUTPUT_VERSION = 2
SERVICE_TYPES = rules.SERVICE_TYPES
_PUBLIC_KEY_LINE = re.compile(
    r"^(?:\S+\s+)?(ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp(?:256|384|521)"
    r"|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+[A-Za-z0-9+/]+={0,3}(?:\s.*)?$"
)


def compile_k8s(env: Environment, opts: K8sOptions, *, lock_hash: str = "") -> tuple[dict[str, Any], ...]:
    """Compile an environment to Kubernetes objects: Secret?, PVCs, Service?, workload.

    Args:
        env: the evaluated environment.
        opts: image, namespace, SSH and workload options.
        lock_hash: ``--locked``: the lock's inputs hash, part of the content-hash annotation
            (a relocked base changes the annotation even when the image reference is the same).

    Returns:
        The objects in apply order (Secret, PersistentVolumeClaims, Service, then the Pod
        ``<env>-<config hash>``, the StatefulSet or the Deployment).

    Raises:
        CompileError: the environment holds a value Kubernetes cannot express (with its span).
        UsageError: an option value is invalid, or the public key file holds a private key.
    """
    opts.check()
    base = _runtime.instance_name(env)
    ports = _runtime.ports(env)
    volumes = plan_volumes(env, base, opts)
    ssh_secret = opts.ssh_secret or child_name(base, "ssh")
    jupyter_secret = child_name(base, "jupyter")  # never emitted: a token is not for manifests
    labels = environment_labels(env)
    digest = content_hash({
        "output": OUTPUT_VERSION,
        "environment": env.content_hash(),
        "function": env.function,
        "options": _hashed_options(opts),
        **({"lock": lock_hash} if lock_hash else {}),
    })

    def meta(name: str) -> dict[str, Any]:
        m: dict[str, Any] = {"name": name, "labels": labels,
                             "annotations": {**dict(opts.annotations), HASH_ANNOTATION: digest}}
        if opts.namespace:
            m["namespace"] = opts.namespace
        return m

    objects: list[dict[str, Any]] = []
    if opts.ssh_public_key and _runtime.is_dev(env):
        objects.append(_secret(meta(ssh_secret), opts.ssh_public_key))
    objects += [_claim(meta(v.claim.name), v) for v in volumes if v.claim is not None]
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    if ports:
        objects.append(_service(meta(base), env.runtime.kubernetes.service, selector, ports))
    spec = pod_spec(env, opts, ports, volumes, ssh_secret, jupyter_secret)
    secrets = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "Secret"}
    objects.append(workload(opts.workload, base, meta, labels, selector, spec, config_hash(labels, spec, secrets)))
    return tuple(objects)


def environment_labels(env: Environment) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels of every object of ``env`` (what the runner selects by)."""
    base = _runtime.instance_name(env)
    return {
        "app.kubernetes.io/name": label_value(env.name) or base,
        "app.kubernetes.io/instance": base,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": label_value(env.name) or base,
    }


def _hashed_options(opts: K8sOptions) -> dict[str, Any]:
    """The options as the content hash sees them: without ``annotations``, which are
    bookkeeping beside the configuration (``dsl up``'s generation), not part of it."""
    data = to_data(opts)
    del data["annotations"]
    return data


def check_public_key(text: str) -> str:
    """Check that ``text`` is an ``authorized_keys`` file (public keys only).

    Args:
        text: the content of the file given with ``--ssh-public-key``.

    Returns:
        The text with surrounding whitespace removed and one final newline.

    Raises:
        UsageError: it is a private key, or a line is not a public key.
    """
    if "PRIVATE KEY" in text:
        raise UsageError(
            "--ssh-public-key was given a private key; refusing to put it in a manifest",
            hint="pass the .pub file (e.g. ~/.ssh/id_ed25519.pub)",
        )
    lines = [ln for ln in text.strip().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines or not all(_PUBLIC_KEY_LINE.match(ln.strip()) for ln in lines):
        raise UsageError(
            "--ssh-public-key is not an OpenSSH public key file",
            hint="pass a .pub file whose lines look like 'ssh-ed25519 AAAA... comment'",
        )
    return text.strip() + "\n"


def _secret(metadata: dict[str, Any], public_key: str) -> dict[str, Any]:
    # base64 `data`, not `stringData`: Argo CD and `kubectl diff` compare `data`, so
    # stringData would show a permanent difference.
    import base64  # only --ssh-public-key needs it: keep it off a plain compile's start-up

    encoded = base64.b64encode(check_public_key(public_key).encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata,
            "type": "Opaque", "data": {AUTHORIZED_KEYS_KEY: encoded}}


def _claim(metadata: dict[str, Any], volume: Volume) -> dict[str, Any]:
    claim = volume.claim
    assert claim is not None
    spec: dict[str, Any] = {
        "accessModes": [claim.access_mode],
        "resources": {"requests": {"storage": claim.size}},
    }
    if claim.storage_class:
        spec["storageClassName"] = claim.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def _service(
    metadata: dict[str, Any],
    service: KubernetesService | None,
    selector: dict[str, str],
    ports: tuple[_runtime.NamedPort, ...],
) -> dict[str, Any]:
    kind = service.type if service is not None else "ClusterIP"
    if kind not in SERVICE_TYPES:
        raise CompileError(
            f"service type {kind!r} is not supported",
            span=service.span if service else None, hint="one of " + ", ".join(SERVICE_TYPES),
        )
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": {
        "type": kind,
        "selector": selector,
        "ports": [{"name": p.name, "port": p.host_port or p.container_port,
                   "targetPort": p.name, "protocol": "TCP"} for p in ports],
    }}
