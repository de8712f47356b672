"""A container's environment: ``env``/``envFrom`` (ConfigMaps, Secrets), downward-API fields and resources.

Functions of the pod object, not methods of the pod worker, because downwardAPI volumes
(:mod:`.volumes`) resolve the same ``fieldRef``/``resourceFieldRef`` values and ``$(VAR)`` expansion
serves the command line and ``subPathExpr`` too. Anything that cannot be resolved yet raises
:class:`ConfigError` (the container waits with ``CreateContainerConfigError``).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from urllib.parse import quote

from .api import ApiError, Json, Kube, TransientError
from .identity import CAPACITY, LOCAL_IP


class ConfigError(Exception):
    """The container's configuration cannot be resolved yet (CreateContainerConfigError)."""


def expand(text: str, mapping: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` like Kubernetes: unknown references stay as they are, ``$$`` is ``$``."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            advance = 1
            if nxt == "$":
                out.append("$")
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                else:
                    name = text[cursor + 2 : close]
                    out.append(mapping.get(name, f"$({name})"))
                    advance = close - cursor
            else:
                out.append("$" + nxt)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?")
_SUFFIX: dict[str, Decimal] = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes resource quantity ("500m", "1.5Gi", "2e3") as a number."""
    text = str(value).strip()
    m = _QUANTITY.fullmatch(text)
    if not m:
        raise ValueError(f"invalid quantity {text!r}")
    try:
        number = Decimal(m[1])
    except InvalidOperation as exc:
        raise ValueError(f"invalid quantity {text!r}") from exc
    if m[2]:
        return number * (Decimal(10) ** int(m[2][1:]))
    return number * _SUFFIX.get(m[3] or "", Decimal(1))


def build_env(
    kube: Kube, pod: Json, spec: Json, node_name: str, service: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(process environment, variables the container defines) of container ``spec``, or ConfigError.

    ``service``: the ``kubernetes`` service's variables (:meth:`LocalNode.service_env`)."""
    md = pod["metadata"]
    ns, pod_name = str(md["namespace"]), str(md["name"])
    cache: dict[tuple[str, str], Json | None] = {}

    def source(kind: str, name: str) -> Json | None:
        key = (kind, name)
        if key not in cache:
            try:
                cache[key] = kube.get_optional(f"/api/v1/namespaces/{quote(ns)}/{kind}/{quote(name)}")
            except (ApiError, TransientError) as exc:
                raise ConfigError(f"failed to get {kind[:-1]} {ns}/{name}: {exc}") from exc
        return cache[key]

    def data(kind: str, obj: Json) -> dict[str, str]:
        if kind == "secrets":
            return {
                k: base64.b64decode(v).decode("utf-8", errors="replace")
                for k, v in (obj.get("data") or {}).items()
            }
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}

    defined: dict[str, str] = {}
    for ef in spec.get("envFrom") or []:
        prefix = str(ef.get("prefix") or "")
        for key, kind, label in (
            ("configMapRef", "configmaps", "configmap"),
            ("secretRef", "secrets", "secret"),
        ):
            ref = ef.get(key)
            if not ref:
                continue
            name = str(ref.get("name") or "")
            obj = source(kind, name)
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{label} "{name}" not found')
            for k, v in data(kind, obj).items():
                if "=" not in k:
                    defined[prefix + k] = v

    for item in spec.get("env") or []:
        name = str(item["name"])
        vf = item.get("valueFrom")
        if not vf:
            defined[name] = expand(str(item.get("value") or ""), {**service, **defined})
            continue
        if vf.get("fieldRef"):
            defined[name] = field_value(pod, str(vf["fieldRef"].get("fieldPath") or ""), node_name)
        elif vf.get("resourceFieldRef"):
            defined[name] = resource_value(pod, str(spec["name"]), vf["resourceFieldRef"])
        else:
            for key, kind, label, title in (
                ("configMapKeyRef", "configmaps", "configmap", "ConfigMap"),
                ("secretKeyRef", "secrets", "secret", "Secret"),
            ):
                ref = vf.get(key)
                if not ref:
                    continue
                ref_name, ref_key = str(ref.get("name") or ""), str(ref.get("key") or "")
                obj = source(kind, ref_name)
                if obj is None:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f'{label} "{ref_name}" not found')
                values = data(kind, obj)
                if ref_key not in values:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f"couldn't find key {ref_key} in {title} {ns}/{ref_name}")
                defined[name] = values[ref_key]
                break
            else:
                raise ConfigError(f"env {name}: unsupported valueFrom {sorted(vf)}")

    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME") or "/root",
        "HOSTNAME": str((pod.get("spec") or {}).get("hostname") or pod_name),
    }
    if os.environ.get("LANG"):
        env["LANG"] = os.environ["LANG"]
    env.update(service)
    env.update(defined)  # the container's own variables win
    return env, {**service, **defined}


def field_value(pod: Json, path: str, node_name: str) -> str:
    """A downward-API ``fieldRef`` of ``pod`` on node ``node_name``."""
    md = pod.get("metadata") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\[['\"](.*)['\"]\]", path)
    if m:
        return str((md.get(m[1]) or {}).get(m[2], ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = (md.get(path.split(".")[1]) or {}).items()
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items))
    values = {
        "metadata.name": str(md["name"]),
        "metadata.namespace": str(md["namespace"]),
        "metadata.uid": str(md["uid"]),
        "spec.nodeName": node_name,
        "spec.serviceAccountName": str((pod.get("spec") or {}).get("serviceAccountName") or ""),
        "status.podIP": LOCAL_IP,
        "status.podIPs": LOCAL_IP,
        "status.hostIP": LOCAL_IP,
        "status.hostIPs": LOCAL_IP,
    }
    if path not in values:
        raise ConfigError(f"unsupported fieldRef {path!r}")
    return values[path]


def resource_value(pod: Json, container: str, ref: Json) -> str:
    """A downward-API ``resourceFieldRef``; ``container``: the one meant when the ref names none."""
    target = str(ref.get("containerName") or container)
    specs = list((pod.get("spec") or {}).get("containers") or []) + list(
        (pod.get("spec") or {}).get("initContainers") or []
    )
    cspec = next((s for s in specs if s.get("name") == target), None)
    if cspec is None:
        raise ConfigError(f"resourceFieldRef: container {target!r} not found")
    resource = str(ref.get("resource") or "")
    kind, _, res = resource.partition(".")
    if kind not in ("limits", "requests") or not res:
        raise ConfigError(f"unsupported resourceFieldRef {resource!r}")
    value = ((cspec.get("resources") or {}).get(kind) or {}).get(res)
    if value is None and kind == "requests":
        value = ((cspec.get("resources") or {}).get("limits") or {}).get(res)
    if value is None:
        value = CAPACITY.get(res, "0") if kind == "limits" else "0"
    try:
        divisor = parse_quantity(ref.get("divisor") or "1") or Decimal(1)
        number = parse_quantity(value) / divisor
    except ValueError as exc:
        raise ConfigError(f"resourceFieldRef {resource}: {exc}") from exc
    return str(int(number.to_integral_value(rounding=ROUND_CEILING)))
