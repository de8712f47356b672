"""The worker template: a flat description of the worker pod, shared by jobs and queues."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from .common import CelRule, DnsSubdomain, FreeObject, Quantity, SpecModel, StringMap, x_validations

# Kubernetes (>= 1.34) accepts any printable ASCII except '=' in an env var name.
ENV_VAR_NAME_PATTERN = r"^[ -<>-~]+$"

_ENV_SOURCE_ONE_OF = (
    "[has(self.secretKeyRef), has(self.configMapKeyRef), has(self.fieldRef), "
    "has(self.resourceFieldRef)].filter(x, x).size() == 1"
)


class KeySelector(SpecModel):
    """Selects a key of a Secret or ConfigMap in the job's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret or ConfigMap.")
    key: str = Field(min_length=1, max_length=253, description="The key to select.")
    optional: bool | None = Field(
        default=None, description="Whether a missing Secret/ConfigMap or key is tolerated."
    )


class ObjectFieldSelector(SpecModel):
    """Selects a field of the worker pod (the downward API)."""

    field_path: str = Field(
        min_length=1, max_length=256, description="Path of the field, e.g. metadata.name or status.podIP."
    )
    api_version: str | None = Field(
        default=None, max_length=64, description="Version of the schema the path is written in (v1)."
    )


class ResourceFieldSelector(SpecModel):
    """Selects a resource request or limit of the worker container."""

    resource: str = Field(
        min_length=1, max_length=253, description="The resource, e.g. limits.cpu or requests.memory."
    )
    container_name: str | None = Field(
        default=None, max_length=63, description="Container name; defaults to the worker container."
    )
    divisor: Quantity | None = Field(default=None, description="Output format of the value, e.g. 1Mi.")


class EnvVarSource(SpecModel):
    """Where an environment variable's value comes from: exactly one of the fields."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                _ENV_SOURCE_ONE_OF,
                "exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef must be set",
            )
        )
    )

    secret_key_ref: KeySelector | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: KeySelector | None = Field(default=None, description="A key of a ConfigMap.")
    field_ref: ObjectFieldSelector | None = Field(default=None, description="A field of the pod.")
    resource_field_ref: ResourceFieldSelector | None = Field(
        default=None, description="A resource request or limit of the worker container."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvVarSource:
        chosen = [self.secret_key_ref, self.config_map_key_ref, self.field_ref, self.resource_field_ref]
        if sum(x is not None for x in chosen) != 1:
            raise ValueError(
                "exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef must be set"
            )
        return self


class EnvVar(SpecModel):
    """An environment variable of the worker container: a literal value or a reference."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule("!(has(self.value) && has(self.valueFrom))", "value and valueFrom are mutually exclusive")
        )
    )

    name: str = Field(
        min_length=1, max_length=256, pattern=ENV_VAR_NAME_PATTERN, description="Name of the variable."
    )
    value: str | None = Field(default=None, description="Literal value; $(VAR) references are expanded.")
    value_from: EnvVarSource | None = Field(
        default=None, description="Takes the value from a Secret, a ConfigMap, the pod or a resource."
    )

    @model_validator(mode="after")
    def _value_xor_value_from(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("value and valueFrom are mutually exclusive")
        return self


class NameReference(SpecModel):
    """Refers to an object by name, optionally tolerating its absence."""

    name: DnsSubdomain = Field(description="Name of the object in the job's namespace.")
    optional: bool | None = Field(default=None, description="Whether a missing object is tolerated.")


class EnvFromSource(SpecModel):
    """Imports all keys of a ConfigMap or a Secret as environment variables."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                "has(self.configMapRef) != has(self.secretRef)",
                "exactly one of configMapRef or secretRef must be set",
            )
        )
    )

    prefix: str | None = Field(default=None, max_length=256, description="Prefix added to every key.")
    config_map_ref: NameReference | None = Field(default=None, description="The ConfigMap to import.")
    secret_ref: NameReference | None = Field(default=None, description="The Secret to import.")

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvFromSource:
        if (self.config_map_ref is None) == (self.secret_ref is None):
            raise ValueError("exactly one of configMapRef or secretRef must be set")
        return self


class ResourceRequirements(SpecModel):
    """Compute resources of the worker container."""

    requests: dict[str, Quantity] | None = Field(
        default=None, description="Minimum resources, e.g. {cpu: 100m, memory: 128Mi}."
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, description="Maximum resources, e.g. {cpu: '1', memory: 1Gi}."
    )


class Toleration(SpecModel):
    """Lets the worker pod run on nodes with a matching taint."""

    model_config = ConfigDict(
        json_schema_extra=x_validations(
            CelRule(
                "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
                "operator must be Exists when key is empty",
            ),
            CelRule(
                "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
                "value must be empty when operator is Exists",
                field_path=".value",
            ),
            CelRule(
                "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                "tolerationSeconds requires effect NoExecute",
                field_path=".tolerationSeconds",
            ),
        )
    )

    key: str | None = Field(
        default=None, max_length=316, description="Taint key; empty with operator Exists matches all taints."
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (the default)."
    )
    value: str | None = Field(default=None, max_length=63, description="Taint value, for operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; unset matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None,
        description="With effect NoExecute: how long the pod stays bound after the taint appears.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if not self.key and self.operator != "Exists":
            raise ValueError("operator must be Exists when key is empty")
        if self.operator == "Exists" and self.value:
            raise ValueError("value must be empty when operator is Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds requires effect NoExecute")
        return self


class Volume(SpecModel):
    """A pod volume: `name` plus one volume source, exactly as in a Pod (e.g. configMap, secret, emptyDir)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=63, description="Name of the volume, used by volumeMounts.")


class VolumeMount(SpecModel):
    """Mounts a volume into the worker container."""

    name: str = Field(min_length=1, max_length=63, description="Name of the volume.")
    mount_path: str = Field(min_length=1, max_length=4096, description="Path in the container.")
    sub_path: str | None = Field(
        default=None, max_length=4096, description="Sub-path of the volume to mount."
    )
    read_only: bool | None = Field(default=None, description="Mount read-only.")


class WorkerTemplate(SpecModel):
    """The worker pod, as a flat spec.

    A job's template is merged field by field over its queue's template: a field set on the job
    wins; maps (labels, annotations, nodeSelector, resources.requests/limits) and env (by name)
    are merged key by key; lists otherwise replace. podSpecPatch is merged last over the
    generated PodSpec.
    """

    image: str | None = Field(
        default=None, min_length=1, max_length=1024, description="Container image of the worker."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="When to pull the image: Always, IfNotPresent or Never."
    )
    image_pull_secrets: list[NameReference] | None = Field(
        default=None,
        max_length=16,
        description="Secrets used to pull the image.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    command: list[str] | None = Field(
        default=None, max_length=256, description="Entrypoint; replaces the image's ENTRYPOINT."
    )
    args: list[str] | None = Field(
        default=None, max_length=1024, description="Arguments; replace the image's CMD."
    )
    working_dir: str | None = Field(default=None, max_length=4096, description="Working directory.")
    env: list[EnvVar] | None = Field(
        default=None,
        max_length=256,
        description="Environment variables, merged by name over the queue's.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    env_from: list[EnvFromSource] | None = Field(
        default=None, max_length=32, description="ConfigMaps and Secrets imported as environment variables."
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Compute resources (requests and limits) of the worker container."
    )
    volume_mounts: list[VolumeMount] | None = Field(
        default=None,
        max_length=64,
        description="Volumes mounted into the worker container.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["mountPath"]},
    )
    volumes: list[Volume] | None = Field(
        default=None,
        max_length=64,
        description="Pod volumes, each a name plus a volume source as in a Pod.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    security_context: FreeObject | None = Field(
        default=None, description="SecurityContext of the worker container, as in a Pod."
    )
    service_account_name: DnsSubdomain | None = Field(
        default=None, description="ServiceAccount the worker pod runs as."
    )
    node_selector: StringMap | None = Field(
        default=None, description="Node labels the worker pod must be scheduled on."
    )
    tolerations: list[Toleration] | None = Field(
        default=None, max_length=64, description="Taints the worker pod tolerates."
    )
    affinity: FreeObject | None = Field(
        default=None, description="Scheduling constraints (nodeAffinity, podAffinity ...), as in a Pod."
    )
    priority_class_name: DnsSubdomain | None = Field(
        default=None, description="PriorityClass of the worker pod."
    )
    labels: StringMap | None = Field(default=None, description="Extra labels of the worker pod.")
    annotations: StringMap | None = Field(default=None, description="Extra annotations of the worker pod.")
    pod_spec_patch: FreeObject | None = Field(
        default=None,
        description=(
            "Escape hatch: an object merged over the generated PodSpec, "
            "for PodSpec fields the template does not have."
        ),
    )

    def manifest(self) -> dict[str, Any]:
        """The template as JSON-ready dict (camelCase keys, unset fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
