"""Runtime spec + image reference → Kubernetes objects (Secret, PVCs, Service, and a Pod,
StatefulSet or Deployment).

``compile_k8s`` builds the objects as plain data; ``synth_yaml``/``synth_json``/``synth_files``
serialise them deterministically. Pure: no I/O, no clock, no Kubernetes client.
"""

from compiler._runtime import instance_name
from compiler.k8s._compile import OUTPUT_VERSION, check_public_key, compile_k8s, environment_labels
from compiler.k8s._gc import GC_RULES, GcOptions, gc_objects
from compiler.k8s._options import K8sOptions
from compiler.k8s._pod import AUTHORIZED_KEYS_KEY, CONTAINER_NAME, JUPYTER_TOKEN_KEY
from compiler.k8s._synth import (
    KIND_ORDER,
    KUSTOMIZATION,
    dump_yaml,
    file_name,
    synth_files,
    synth_json,
    synth_yaml,
)
from compiler.k8s._volumes import HOST_KEY_DIR, HOST_KEY_FILE
from compiler.k8s._workload import CONFIG_HASH_ANNOTATION, WORKLOADS, config_hash

__all__ = [
    "AUTHORIZED_KEYS_KEY", "CONFIG_HASH_ANNOTATION", "WORKLOADS", "config_hash", "CONTAINER_NAME", "HOST_KEY_DIR", "HOST_KEY_FILE", "JUPYTER_TOKEN_KEY",
    "GC_RULES", "GcOptions", "KIND_ORDER", "KUSTOMIZATION", "OUTPUT_VERSION", "K8sOptions", "check_public_key", "compile_k8s",
    "dump_yaml", "environment_labels", "gc_objects", "file_name", "instance_name", "synth_files", "synth_json", "synth_yaml",
]
