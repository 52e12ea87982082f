"""What the Kubernetes compiler needs besides the Environment (mostly command-line options)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from compiler.k8s._workload import WORKLOADS
from dsl import rules
from dsl.errors import UsageError

DEFAULT_PVC_SIZE = "10Gi"
# Annotations the compiler writes itself (compiler._names.HASH_ANNOTATION, the config hash).
RESERVED_ANNOTATIONS = ("envdsl/content-hash", "envdsl/config-hash")


def _breaks(rule: Callable[[str], object], value: str) -> bool:
    """Whether ``value`` breaks ``rule`` (a ``dsl.rules`` function)."""
    try:
        rule(value)
    except rules.Invalid:
        return True
    return False


@dataclass(frozen=True, slots=True)
class K8sOptions:
    """Inputs of ``compile_k8s`` that do not come from the build file.

    Attributes:
        image: the image reference the Pod runs (already validated).
        namespace: ``metadata.namespace`` of every object; "" = none (kubectl/kustomize decide).
        ssh_secret: the Secret holding ``authorized_keys``; "" = ``<name>-ssh``.
        ssh_public_key: public key text to emit that Secret with; "" = reference it only.
        host_key_secret: a Secret with key ``ssh_host_key`` mounted read-only; "" = none.
        service_account: ``serviceAccountName``; "" = the namespace default, token not mounted.
        image_pull_secrets: ``imagePullSecrets`` names.
        ephemeral_workdir: an emptyDir instead of a PVC for the project directory.
        workload: what runs the Pod: ``pod`` (named by its config hash), ``statefulset`` or
            ``deployment`` (one replica each).
        annotations: ``(key, value)`` pairs added to every object's ``metadata.annotations``
            (``--annotation``; ``dsl up`` records identity and generation with them). Not in
            the Pod template (a changed value never replaces a Pod) nor in the content hash.
    """

    image: str
    namespace: str = ""
    ssh_secret: str = ""
    ssh_public_key: str = ""
    host_key_secret: str = ""
    service_account: str = ""
    image_pull_secrets: tuple[str, ...] = ()
    ephemeral_workdir: bool = False
    workload: str = "pod"
    annotations: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        """Reject option values Kubernetes would refuse.

        Raises:
            UsageError: naming the option and the rule it breaks.
        """
        if self.workload not in WORKLOADS:
            raise UsageError(f"--workload {self.workload!r} is not one of {', '.join(WORKLOADS)}",
                             hint="pod (the default), statefulset or deployment")
        if self.namespace and _breaks(rules.dns_label, self.namespace):
            raise UsageError(
                f"--namespace {self.namespace!r} is not a valid namespace name",
                hint="lowercase letters, digits and '-', at most 63 characters",
            )
        keys = [key for key, _ in self.annotations]
        for key in keys:
            if _breaks(rules.annotation_key, key):
                raise UsageError(f"--annotation {key!r} is not a valid annotation key",
                                 hint="[PREFIX/]NAME: PREFIX a DNS subdomain, NAME up to 63 letters, digits, "
                                      "'-', '_' or '.', alphanumeric at both ends")
            if key in RESERVED_ANNOTATIONS:
                raise UsageError(f"--annotation {key!r} is set by the compiler itself", hint="use another key")
            if keys.count(key) > 1:
                raise UsageError(f"--annotation {key!r} is given twice", hint="give each key once")
        named = [("--ssh-secret", self.ssh_secret), ("--host-key-secret", self.host_key_secret),
                 ("--service-account", self.service_account)]
        named += [("--image-pull-secret", s) for s in self.image_pull_secrets]
        for option, value in named:
            if value and _breaks(rules.dns_subdomain, value):
                raise UsageError(
                    f"{option} {value!r} is not a valid Kubernetes object name",
                    hint="lowercase letters, digits, '-' and '.', starting and ending alphanumeric",
                )
