"""Checks every generated Kubernetes object must pass: the official OpenAPI schemas
(``kubernetes-validate --strict``) of the oldest and newest versions we support, and a
round trip through the ``kubernetes`` client's models (an object the client cannot
represent, or represents differently, fails)."""

from __future__ import annotations

from typing import Any

import pytest

K8S_VERSIONS = ("1.29.0", "1.37.0")
_MODELS = {"Secret": "V1Secret", "PersistentVolumeClaim": "V1PersistentVolumeClaim",
           "Service": "V1Service", "Pod": "V1Pod", "StatefulSet": "V1StatefulSet", "Deployment": "V1Deployment",
           "ServiceAccount": "V1ServiceAccount", "Role": "V1Role", "RoleBinding": "V1RoleBinding",
           "CronJob": "V1CronJob"}


def assert_valid_objects(objects: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> None:
    """Validate each object strictly against every supported version and round-trip it."""
    import kubernetes_validate
    from kubernetes.client import ApiClient

    api = ApiClient()
    assert objects, "no objects to validate"
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                first = str(exc).splitlines()[0]
                pytest.fail(f"{where} is invalid for Kubernetes {version}: {first}")
        model = api._ApiClient__deserialize(obj, _MODELS[obj["kind"]])  # the client's own deserializer
        assert api.sanitize_for_serialization(model) == obj, f"{where} does not round-trip"


@pytest.fixture(scope="session")
def k8s_versions_shipped() -> tuple[str, ...]:
    """The schema versions we validate against, checked to be in the installed package."""
    import os

    import kubernetes_validate

    root = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    for version in K8S_VERSIONS:
        assert os.path.isdir(os.path.join(root, f"v{version}-local-strict")), version
    return K8S_VERSIONS


@pytest.fixture
def valid_objects(k8s_versions_shipped):
    """The validator as a fixture (so tests depend on the schema check above)."""
    return assert_valid_objects
