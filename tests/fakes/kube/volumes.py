"""Storage for the Docker-backed kubelet: the PVC binder and each Pod's volumes.

The binder plays the persistentvolume-controller plus a dynamic provisioner: a claim of a
StorageClass that exists gets a PersistentVolume ``pvc-<claim uid>`` backed by a named Docker
volume (kept when Pods go, removed when the claim is deleted: reclaim policy Delete); a claim
naming a class that does not exist stays Pending with ``ProvisioningFailed``; a claim with no
class (``""``) waits for a matching PV that never comes (``FailedBinding``).

Pod volumes are directories on the node (the kubelet's pods directory), bind-mounted into the
containers: a PVC's Docker volume, an emptyDir (``0777``; ``medium: Memory`` is a tmpfs mount
per container), Secret/ConfigMap/projected volumes written the way the kubelet's atomic
writer does (``..data`` → a timestamped directory, one symlink per key; ``items``,
``defaultMode``, ``mode``). ``fsGroup`` is applied as the kubelet's SetVolumeOwnership does:
group ownership, ``g+rw`` (``g+r`` read-only) and setgid directories; ``OnRootMismatch`` skips
a volume whose root already matches.
"""

from __future__ import annotations

import base64
import datetime
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .events import NORMAL, WARNING, Recorder
from .resources import by_kind

if TYPE_CHECKING:
    from .kubelet import DockerKubelet

Obj = dict[str, Any]
CLAIM, VOLUME, CLASS = by_kind("PersistentVolumeClaim"), by_kind("PersistentVolume"), by_kind("StorageClass", "storage.k8s.io")
SECRET, CONFIG_MAP = by_kind("Secret"), by_kind("ConfigMap")
PROVISIONER = "fake-kube.envdsl/docker-volume"
DEFAULT_CLASS = "standard"


class MountError(Exception):
    """A volume cannot be set up yet (the kubelet's ``FailedMount``)."""


def default_storage_class() -> Obj:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": DEFAULT_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}


class Binder:
    """Binds claims as the PV controller and a provisioner would; deletes their volumes."""

    def __init__(self, kubelet: DockerKubelet) -> None:
        self.kubelet = kubelet
        self.store = kubelet.kube.store
        self.controller = Recorder(kubelet.kube.writer, "persistentvolume-controller")
        self.provisioner = Recorder(kubelet.kube.writer, PROVISIONER)
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def volume_name(self, claim_uid: str) -> str:
        return f"fake-kube-pvc-{claim_uid}"

    def claim_changed(self, claim: Obj) -> None:
        if (claim.get("status") or {}).get("phase") != "Pending" or claim["spec"].get("volumeName"):
            return
        uid = claim["metadata"]["uid"]
        class_name = claim["spec"].get("storageClassName")
        with self._lock:
            if not class_name:
                if uid not in self._reported:
                    self._reported.add(uid)
                    self.controller.event(claim, NORMAL, "FailedBinding",
                                          "no persistent volumes available for this claim and no storage class is set")
                return
            if self.store.get(CLASS, None, class_name) is None:
                if uid not in self._reported:
                    self._reported.add(uid)
                    self.controller.event(claim, WARNING, "ProvisioningFailed",
                                          f'storageclass.storage.k8s.io "{class_name}" not found')
                return
            self._provision(claim, class_name)

    def _provision(self, claim: Obj, class_name: str) -> None:
        meta = claim["metadata"]
        name = f"pvc-{meta['uid']}"
        docker_volume = self.volume_name(meta["uid"])
        self.kubelet.docker.create_volume(docker_volume, labels=self.kubelet.labels())
        mountpoint = self.kubelet.docker.inspect_volume(docker_volume)["Mountpoint"]
        size = ((claim["spec"].get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        modes = claim["spec"].get("accessModes") or ["ReadWriteOnce"]
        volume = {"apiVersion": "v1", "kind": "PersistentVolume",
                  "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
                  "spec": {"capacity": {"storage": size}, "accessModes": modes,
                           "persistentVolumeReclaimPolicy": "Delete", "storageClassName": class_name,
                           "volumeMode": claim["spec"].get("volumeMode", "Filesystem"),
                           "hostPath": {"path": mountpoint, "type": ""},
                           "claimRef": {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"],
                                        "uid": meta["uid"], "apiVersion": "v1", "resourceVersion": meta["resourceVersion"]}}}
        from .writes import WriteOptions

        if self.store.get(VOLUME, None, name) is None:
            self.kubelet.kube.writer.create(VOLUME, None, volume, WriteOptions(False, PROVISIONER, "Ignore"))
        self.provisioner.event(claim, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {name}")
        with self.store.changed:
            live = self.store.get(CLAIM, meta["namespace"], meta["name"])
            if live is None or live["metadata"]["uid"] != meta["uid"]:
                return
            annotations = live["metadata"].setdefault("annotations", {})
            annotations.update({"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                                "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER,
                                "volume.kubernetes.io/storage-provisioner": PROVISIONER})
            live["spec"]["volumeName"] = name
            live["status"] = {"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}}
            self.store.write(CLAIM, live, "MODIFIED")
        with self.store.changed:
            pv = self.store.get(VOLUME, None, name)
            if pv is not None:
                pv["status"] = {"phase": "Bound", "lastPhaseTransitionTime": _now()}
                self.store.write(VOLUME, pv, "MODIFIED")

    def claim_deleted(self, claim: Obj) -> bool:
        """Reclaim (Delete) the claim's volume; False while a container still uses it (retry)."""
        name = claim["spec"].get("volumeName") or ""
        if name and self.store.get(VOLUME, None, name) is not None:
            self.store.remove(VOLUME, None, name)
        return self.kubelet.remove_volume(self.volume_name(claim["metadata"]["uid"]))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- a Pod's volumes --------------------------------------------------------------------


def _apply_fs_group(root: Path, gid: int, read_only: bool, policy: str) -> None:
    """SetVolumeOwnership: group ``gid``, ``g+rw`` (``g+r`` read-only), setgid directories."""
    info = root.stat()
    mask = 0o440 if read_only else 0o660
    if policy == "OnRootMismatch" and info.st_gid == gid and (info.st_mode & (mask | 0o110 | stat.S_ISGID)) == (mask | 0o110 | stat.S_ISGID):
        return
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        info = path.stat()
        os.chown(path, -1, gid)
        extra = mask | (0o110 | stat.S_ISGID if path.is_dir() else 0)
        os.chmod(path, stat.S_IMODE(info.st_mode) | extra)


def _write_atomic(directory: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """The kubelet's AtomicWriter layout: ``..<time>/`` holds the files, ``..data`` points at it,
    each top-level name is a symlink through ``..data``."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = ".." + datetime.datetime.now(datetime.UTC).strftime("%Y_%m_%d_%H_%M_%S.%f")
    payload = directory / stamp
    for relative, (data, mode) in files.items():
        target = payload / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.chmod(target, mode)
    payload.mkdir(exist_ok=True)
    os.chmod(payload, 0o755)
    (directory / "..data").symlink_to(stamp)
    for top in sorted({r.split("/")[0] for r in files}):
        (directory / top).symlink_to(f"..data/{top}")


class PodVolumes:
    """The volumes of one Pod on the node, and the bind mounts of each container."""

    def __init__(self, kubelet: DockerKubelet, pod: Obj) -> None:
        self.kubelet, self.pod = kubelet, pod
        self.root = kubelet.state_dir / "pods" / pod["metadata"]["uid"] / "volumes"
        self.paths: dict[str, Path] = {}
        self.memory: dict[str, str] = {}  # emptyDir medium Memory: name → tmpfs size
        self.read_only: set[str] = set()

    def _lookup(self, kind: Any, name: str) -> Obj | None:
        return self.kubelet.kube.store.get(kind, self.pod["metadata"]["namespace"], name)

    def setup(self) -> None:
        """Set up every volume not yet set up (raises MountError for one that can't be yet)."""
        security = self.pod["spec"].get("securityContext") or {}
        fs_group, policy = security.get("fsGroup"), security.get("fsGroupChangePolicy", "Always")
        for volume in self.pod["spec"].get("volumes") or ():
            name = volume["name"]
            if name in self.paths or name in self.memory:
                continue
            path, read_only = self._one(volume)
            if path is None:
                continue
            if fs_group is not None and "hostPath" not in volume:
                _apply_fs_group(path, int(fs_group), read_only, policy)
            self.paths[name] = path
            if read_only:
                self.read_only.add(name)

    def _one(self, volume: Obj) -> tuple[Path | None, bool]:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            claim_name = volume["persistentVolumeClaim"]["claimName"]
            claim = self._lookup(CLAIM, claim_name)
            if claim is None or (claim.get("status") or {}).get("phase") != "Bound":
                raise MountError(f'persistentvolumeclaim "{claim_name}" is not bound')
            docker_volume = self.kubelet.binder.volume_name(claim["metadata"]["uid"])
            return Path(self.kubelet.docker.inspect_volume(docker_volume)["Mountpoint"]), False
        if "emptyDir" in volume:
            if (volume["emptyDir"] or {}).get("medium") == "Memory":
                self.memory[name] = str((volume["emptyDir"] or {}).get("sizeLimit") or "")
                return None, False
            path = self.root / "kubernetes.io~empty-dir" / name
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)
            return path, False
        if "hostPath" in volume:
            return Path(volume["hostPath"]["path"]), False
        kinds = {"secret": "kubernetes.io~secret", "configMap": "kubernetes.io~configmap",
                 "projected": "kubernetes.io~projected"}
        for key, plugin in kinds.items():
            if key in volume:
                files = self._files(name, key, volume[key])
                path = self.root / plugin / name
                if path.exists():
                    shutil.rmtree(path)
                _write_atomic(path, files)
                return path, True
        raise MountError(f'volume "{name}": this fake kubelet does not support {sorted(set(volume) - {"name"})}')

    def _source_files(self, volume_name: str, kind: str, source: Obj, default_mode: int) -> dict[str, tuple[bytes, int]]:
        rtype, label = (SECRET, "secret") if kind == "secret" else (CONFIG_MAP, "configmap")
        name = source.get("secretName" if kind == "secret" else "name", source.get("name", ""))
        obj = self._lookup(rtype, name)
        if obj is None:
            if source.get("optional"):
                return {}
            raise MountError(f'MountVolume.SetUp failed for volume "{volume_name}" : {label} "{name}" not found')
        if kind == "secret":
            data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        else:
            data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
            data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        items = source.get("items")
        if not items:
            return {k: (v, default_mode) for k, v in data.items()}
        files = {}
        for item in items:
            if item["key"] not in data:
                if source.get("optional"):
                    continue
                raise MountError(f'MountVolume.SetUp failed for volume "{volume_name}" : '
                                 f'configmap references non-existent config key: {item["key"]}' if kind != "secret" else
                                 f'MountVolume.SetUp failed for volume "{volume_name}" : '
                                 f'references non-existent secret key: {item["key"]}')
            files[item["path"]] = (data[item["key"]], int(item.get("mode", default_mode)))
        return files

    def _files(self, name: str, kind: str, source: Obj) -> dict[str, tuple[bytes, int]]:
        default_mode = int(source.get("defaultMode", 0o644))
        if kind != "projected":
            return self._source_files(name, kind, source, default_mode)
        files: dict[str, tuple[bytes, int]] = {}
        for part in source.get("sources") or ():
            if "secret" in part:
                files.update(self._source_files(name, "secret", part["secret"], default_mode))
            elif "configMap" in part:
                files.update(self._source_files(name, "configMap", part["configMap"], default_mode))
            elif "serviceAccountToken" in part:
                # not a real token: nothing in the fake verifies one
                files[part["serviceAccountToken"]["path"]] = (b"fake-kube-service-account-token", default_mode)
            elif "downwardAPI" in part:
                from .container_config import _field

                for item in part["downwardAPI"].get("items") or ():
                    files[item["path"]] = (_field(self.pod, item["fieldRef"]["fieldPath"]).encode(), default_mode)
        return files

    def binds(self, container: Obj) -> tuple[list[str], dict[str, str]]:
        """Docker ``Binds`` and ``Tmpfs`` for one container's volumeMounts."""
        binds, tmpfs = [], {}
        for mount in container.get("volumeMounts") or ():
            name, target = mount["name"], mount["mountPath"]
            if name in self.memory:
                size = _bytes(self.memory[name])
                tmpfs[target] = f"rw,nosuid,nodev,mode=1777{f',size={size}' if size else ''}"
                continue
            if name not in self.paths:
                raise MountError(f'volume "{name}" is not set up')
            source = self.paths[name]
            if mount.get("subPath"):
                source = source / mount["subPath"]
                source.mkdir(parents=True, exist_ok=True)
            read_only = mount.get("readOnly") or name in self.read_only
            binds.append(f"{source}:{target}:{'ro' if read_only else 'rw'}")
        return binds, tmpfs

    def teardown(self) -> None:
        """Remove what lives with the Pod (emptyDir, Secret copies); PVC volumes stay."""
        shutil.rmtree(self.root.parent, ignore_errors=True)


def _bytes(quantity: str) -> int:
    if not quantity:
        return 0
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[:-len(suffix)]) * factor)
    return int(float(quantity))
