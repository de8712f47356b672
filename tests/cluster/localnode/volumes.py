"""A pod's volumes: set up once under the pod's directory, bind-mounted into each container by podexec.

Like a kubelet's volume manager, and apart from the pod worker because it is the largest single
concern of a pod's start: configMap, secret, downwardAPI and projected volumes (with real bound
service-account tokens from the TokenRequest API), emptyDir and hostPath. What cannot be set up yet
raises :class:`VolumeError` (the container waits with ``CreateContainerConfigError`` and is retried
sooner than for other configuration errors, e.g. until ``kube-root-ca.crt`` is published).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote

from .api import ApiError, Json, Kube, TransientError
from .environment import ConfigError, expand, field_value, resource_value

log = logging.getLogger("localnode")

DEFAULT_MODE = 0o644  # files of configMap/secret/projected/downwardAPI volumes without a mode
TOKEN_SECONDS = 3600  # serviceAccountToken expirationSeconds default ...
MIN_TOKEN_SECONDS = 600  # ... and minimum
API_DATA_VOLUMES = ("configMap", "secret", "projected", "downwardAPI")  # always mounted read-only
SUPPORTED_VOLUMES = (*API_DATA_VOLUMES, "emptyDir", "hostPath")


class VolumeError(ConfigError):
    """A volume of the pod cannot be set up yet (also reported as CreateContainerConfigError)."""


def _rel_path(path: object, what: str) -> str:
    """A relative path that stays inside its volume (no absolute paths, no ``..``)."""
    text = str(path or "")
    if not text or text.startswith("/") or ".." in text.split("/"):
        raise VolumeError(f"{what}: invalid path {text!r} (must be relative and must not contain '..')")
    return text


def _mount_arg(source: str, target: str, read_only: bool) -> str:
    """podexec's ``--mount SRC:DST[:ro]`` (``:`` and ``\\`` escaped with a backslash)."""

    def esc(path: str) -> str:
        return path.replace("\\", "\\\\").replace(":", "\\:")

    return f"{esc(source)}:{esc(target)}" + (":ro" if read_only else "")


def _object_data(kind: str, obj: Json) -> dict[str, bytes]:
    """The key -> bytes content of a ConfigMap (``data`` and ``binaryData``) or Secret (``data``)."""
    if kind == "secrets":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    out = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def _write_volume(root: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
    """(Re)create directory ``root`` holding ``files`` (relative path -> (content, mode))."""
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for rel, (data, mode) in files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(path, mode & 0o7777)
    os.chmod(tmp, 0o755)
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)


class PodVolumes:
    """The volumes of one pod: each set up once (before the pod's first container starts), then mounted."""

    def __init__(self, kube: Kube, volume_dir: Path, node_name: str) -> None:
        self.kube = kube
        self.volume_dir = volume_dir  # <state-dir>/pods/<namespace>_<pod>_<uid>/volumes
        self.node_name = node_name
        self.ready: dict[str, Path] = {}  # volume name -> materialised directory (or host path)

    def mounts(self, pod: Json, spec: Json, env: Mapping[str, str]) -> list[str]:
        """podexec ``--mount`` arguments for container ``spec``'s volumeMounts (sets the pod's volumes up first)."""
        mounts = spec.get("volumeMounts") or []
        if not mounts and not (pod.get("spec") or {}).get("volumes"):
            return []
        self._setup_volumes(pod)
        kinds = {str(v.get("name")): _volume_kind(v) for v in (pod.get("spec") or {}).get("volumes") or []}
        out: list[str] = []
        for vm in mounts:
            name = str(vm.get("name") or "")
            target = str(vm.get("mountPath") or "")
            if name not in self.ready:
                raise VolumeError(
                    f"cannot find volume {name!r} to mount into container {str(spec['name'])!r}"
                )
            if not target.startswith("/"):
                raise VolumeError(f"volume {name!r}: mountPath {target!r} is not absolute")
            root = self.ready[name]
            source = root
            sub = str(vm.get("subPath") or "")
            if vm.get("subPathExpr"):
                sub = expand(str(vm["subPathExpr"]), env)
            if sub:
                source = root / _rel_path(sub, f"volume {name!r} subPath")
                real_root = os.path.realpath(root)
                if not os.path.realpath(source).startswith(real_root.rstrip("/") + "/"):
                    raise VolumeError(f"volume {name!r}: subPath {sub!r} points outside the volume")
                if not os.path.lexists(source):
                    try:  # like a kubelet: a missing subPath is created as a directory
                        os.makedirs(source, 0o755, exist_ok=True)
                    except OSError as exc:
                        raise VolumeError(f"volume {name!r}: cannot create subPath {sub!r}: {exc}") from exc
            read_only = bool(vm.get("readOnly")) or kinds.get(name) in API_DATA_VOLUMES
            out.append(_mount_arg(str(source), target, read_only))
        return out

    def _setup_volumes(self, pod: Json) -> None:
        """Materialise every volume of the pod once (before its first container starts), like a kubelet."""
        md = pod["metadata"]
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = str(volume.get("name") or "")
            if name in self.ready:
                continue
            kind = _volume_kind(volume)
            if kind not in SUPPORTED_VOLUMES:
                raise VolumeError(
                    f"volume {name!r}: {kind or 'empty'} volumes are not supported by the local node "
                    f"(supported: {', '.join(SUPPORTED_VOLUMES)})"
                )
            try:
                path = self._setup_volume(pod, name, kind, volume.get(kind) or {})
            except VolumeError as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from exc
            except OSError as exc:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from exc
            self.ready[name] = path
            log.info("pod %s/%s: volume %s (%s) ready", md["namespace"], md["name"], name, kind)

    def _setup_volume(self, pod: Json, name: str, kind: str, src: Json) -> Path:
        root = self.volume_dir / name
        if kind == "emptyDir":
            root.mkdir(parents=True, exist_ok=True)
            os.chmod(root, 0o777)
            return root
        if kind == "hostPath":
            return _host_path(src)
        ns = str(pod["metadata"]["namespace"])
        mode = int(src.get("defaultMode") if src.get("defaultMode") is not None else DEFAULT_MODE)
        files: dict[str, tuple[bytes, int]] = {}
        if kind == "configMap":
            files = self._key_files(ns, "configmaps", str(src.get("name") or ""), src, mode)
        elif kind == "secret":
            files = self._key_files(ns, "secrets", str(src.get("secretName") or ""), src, mode)
        elif kind == "downwardAPI":
            files = self._downward_files(pod, src.get("items") or [], mode)
        else:  # projected
            for source in src.get("sources") or []:
                if source.get("serviceAccountToken"):
                    token = source["serviceAccountToken"]
                    files[_rel_path(token.get("path"), "serviceAccountToken")] = (
                        self._token(pod, token),
                        mode,
                    )
                elif source.get("configMap"):
                    ref = source["configMap"]
                    files.update(self._key_files(ns, "configmaps", str(ref.get("name") or ""), ref, mode))
                elif source.get("secret"):
                    ref = source["secret"]
                    files.update(self._key_files(ns, "secrets", str(ref.get("name") or ""), ref, mode))
                elif source.get("downwardAPI"):
                    files.update(self._downward_files(pod, source["downwardAPI"].get("items") or [], mode))
                else:
                    raise VolumeError(f"projected source {sorted(source)} is not supported by the local node")
        _write_volume(root, files)
        return root

    def _key_files(self, ns: str, kind: str, name: str, src: Json, mode: int) -> dict[str, tuple[bytes, int]]:
        """The files of a configMap/secret volume (or projected source): every key, or the ``items``."""
        label = "configmap" if kind == "configmaps" else "secret"
        optional = bool(src.get("optional"))
        try:
            obj = self.kube.get_optional(f"/api/v1/namespaces/{quote(ns)}/{kind}/{quote(name)}")
        except (ApiError, TransientError) as exc:
            raise VolumeError(f"failed to get {label} {ns}/{name}: {exc}") from exc
        if obj is None:
            if optional:
                return {}
            raise VolumeError(f'{label} "{name}" not found')
        data = _object_data(kind, obj)
        items = src.get("items")
        if not items:
            return {_rel_path(k, f"{label} {name} key"): (v, mode) for k, v in data.items()}
        out: dict[str, tuple[bytes, int]] = {}
        for item in items:
            key = str(item.get("key") or "")
            if key not in data:
                if optional:
                    continue
                what = "config key" if kind == "configmaps" else "secret key"
                raise VolumeError(f"{label} {name} references non-existent {what}: {key}")
            item_mode = item.get("mode")
            out[_rel_path(item.get("path"), f"{label} {name} item {key}")] = (
                data[key],
                int(item_mode) if item_mode is not None else mode,
            )
        return out

    def _downward_files(self, pod: Json, items: list[Json], mode: int) -> dict[str, tuple[bytes, int]]:
        containers = (pod.get("spec") or {}).get("containers") or []
        first = str(containers[0]["name"]) if containers else ""  # resourceFieldRef without containerName
        out: dict[str, tuple[bytes, int]] = {}
        for item in items:
            path = _rel_path(item.get("path"), "downwardAPI item")
            try:
                if item.get("fieldRef"):
                    value = field_value(pod, str(item["fieldRef"].get("fieldPath") or ""), self.node_name)
                elif item.get("resourceFieldRef"):
                    value = resource_value(pod, first, item["resourceFieldRef"])
                else:
                    raise ConfigError(f"downwardAPI item {path!r} has neither fieldRef nor resourceFieldRef")
            except VolumeError:
                raise
            except ConfigError as exc:
                raise VolumeError(str(exc)) from exc
            item_mode = item.get("mode")
            out[path] = (value.encode(), int(item_mode) if item_mode is not None else mode)
        return out

    def _token(self, pod: Json, src: Json) -> bytes:
        """A bound service-account token for this pod (TokenRequest API), like a kubelet gets one."""
        md = pod["metadata"]
        ns = str(md["namespace"])
        sa = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        spec: Json = {
            "expirationSeconds": max(MIN_TOKEN_SECONDS, int(src.get("expirationSeconds") or TOKEN_SECONDS)),
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": str(md["name"]),
                "uid": str(md["uid"]),
            },
        }
        if src.get("audience"):
            spec["audiences"] = [str(src["audience"])]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{quote(ns)}/serviceaccounts/{quote(sa)}/token"
        try:
            resp = self.kube.request("POST", path, body=body)
        except (ApiError, TransientError) as exc:
            raise VolumeError(f'failed to fetch token for serviceaccount "{sa}": {exc}') from exc
        token = str(((resp or {}).get("status") or {}).get("token") or "")
        if not token:
            raise VolumeError(f'failed to fetch token for serviceaccount "{sa}": empty TokenRequest status')
        return token.encode()


def _volume_kind(volume: Json) -> str:
    return next((k for k in volume if k != "name"), "")


def _host_path(src: Json) -> Path:
    path = str(src.get("path") or "")
    htype = str(src.get("type") or "")
    if not path.startswith("/"):
        raise VolumeError(f"hostPath {path!r} is not absolute")
    if htype == "DirectoryOrCreate" or (not htype and not os.path.lexists(path)):
        os.makedirs(
            path, 0o755, exist_ok=True
        )  # untyped: a missing path becomes a directory, as with containerd
    elif htype == "FileOrCreate" and not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or "/", 0o755, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    checks: dict[str, tuple[Callable[[str], bool], str]] = {
        "Directory": (os.path.isdir, "a directory"),
        "DirectoryOrCreate": (os.path.isdir, "a directory"),
        "File": (os.path.isfile, "a file"),
        "FileOrCreate": (os.path.isfile, "a file"),
        "Socket": (lambda p: Path(p).is_socket(), "a socket"),
        "CharDevice": (lambda p: Path(p).is_char_device(), "a character device"),
        "BlockDevice": (lambda p: Path(p).is_block_device(), "a block device"),
    }
    if htype in checks:
        check, what = checks[htype]
        if not check(path):
            raise VolumeError(f"hostPath type check failed: {path} is not {what}")
    elif htype:
        raise VolumeError(f"hostPath type {htype!r} is not supported")
    return Path(path)
