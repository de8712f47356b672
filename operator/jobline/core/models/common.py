"""Building blocks shared by the Jobline models: base classes, wire types, patterns, `Condition`.

The models are the single source of the CRD schemas (see `jobline.crdgen`). Two rules keep the
Python side and the apiserver in step:

* every field has a ``description`` (it becomes ``kubectl explain`` text);
* Python validation accepts what the schema accepts: constraints are declared once (``ge``,
  ``max_length``, ``pattern`` ...) and end up in both, and every CEL rule in
  ``x-kubernetes-validations`` has a mirror in a pydantic validator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from jobline import names

# --- patterns (RE2- and Rust-regex-compatible: no lookaround, no backreferences) -------------

DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A non-empty label value (handlers are also put on pods as a label value).
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
# Kubernetes resource.Quantity, as controller-gen emits it.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# RFC 3339 with a mandatory offset (pydantic's AwareDatetime and the apiserver agree on these).
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
# metav1.Condition type and reason.
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

_QUANTITY_RE = re.compile(QUANTITY_PATTERN)


# --- base classes ----------------------------------------------------------------------------


class SpecModel(BaseModel):
    """Base of everything users write: camelCase on the wire, unknown keys refused.

    Strict like the apiserver: no "5" for an integer, no 1 for a boolean.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)


class StatusModel(BaseModel):
    """Base of everything the operator writes: camelCase on the wire, unknown keys ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# --- CEL rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CelRule:
    """One `x-kubernetes-validations` entry."""

    rule: str
    message: str
    field_path: str | None = None
    reason: str | None = None

    def to_json(self) -> JsonDict:
        item: JsonDict = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            item["fieldPath"] = self.field_path
        if self.reason is not None:
            item["reason"] = self.reason
        return item


def x_validations(*rules: CelRule, **extra: JsonValue) -> JsonDict:
    """A `json_schema_extra` dict carrying CEL rules (and any other ``x-kubernetes-*`` keys)."""
    out: JsonDict = dict(extra)
    out["x-kubernetes-validations"] = [r.to_json() for r in rules]
    return out


# --- wire types ------------------------------------------------------------------------------


def _quantity(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a quantity is an integer or a string like '500m' or '1Gi'")
    if isinstance(value, str) and not _QUANTITY_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. '500m', '1Gi', '2')")
    return value


Quantity = Annotated[
    int | str,
    BeforeValidator(_quantity),
    WithJsonSchema({"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN}),
]
"""A Kubernetes resource quantity: an integer or a string such as ``500m`` or ``1Gi``."""

Timestamp = Annotated[
    AwareDatetime,
    Strict(False),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""An RFC 3339 time with an offset, e.g. ``2025-01-31T12:00:00Z``."""

AnyJson = Annotated[JsonValue, WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True})]
"""Any JSON value, kept as is by the apiserver."""

FreeObject = Annotated[
    dict[str, Any], WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
]
"""A JSON object whose inside the schema does not describe (passed through to Kubernetes)."""

StringMap = dict[str, str]

DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS1123_LABEL_PATTERN)]
DnsSubdomain = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN_PATTERN)
]
ObjectName = DnsSubdomain


# --- conditions ------------------------------------------------------------------------------

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """One aspect of the object's current state, in the shape of metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Type of the condition in CamelCase, e.g. Ready.",
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation that the condition was set based upon."
    )
    last_transition_time: Timestamp = Field(
        description="When the condition last changed from one status to another."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="Programmatic identifier (CamelCase) of the reason for the last transition.",
    )
    message: str = Field(
        max_length=32768, description="Human-readable message with details about the transition."
    )


CONDITIONS_SCHEMA_EXTRA: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
"""`json_schema_extra` of every ``conditions`` field (a list-map keyed by ``type``)."""


def conditions_field() -> Any:
    """The ``conditions`` field of a status model."""
    return Field(
        default_factory=list,
        description="Current state of the object, one entry per condition type.",
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
    )


def observed_generation_field() -> Any:
    """The ``observedGeneration`` field of a status model."""
    return Field(
        default=None, ge=0, description="The .metadata.generation of the spec the operator last acted upon."
    )


def spec_error(exc: ValidationError, limit: int = 3) -> str:
    """A spec that does not validate, in one line for a condition or an Event: the first ``limit``
    errors as ``spec.<path>: <message>``."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"spec.{loc}: {err.get('msg')}")
    return "; ".join(parts)


def plain(value: Any) -> Any:
    """`value` with every Mapping turned into a dict and every tuple into a list (as JSON would)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


# --- top-level resources ---------------------------------------------------------------------


class Resource(BaseModel):
    """Base of the top-level resources: apiVersion, kind, metadata, spec, status."""

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    api_version: str = Field(default=names.API_VERSION, description=f"Always {names.API_VERSION}.")
    kind: str = Field(description="Kind of the object.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")

    @field_validator("api_version")
    @classmethod
    def _our_api_version(cls, value: str) -> str:
        if value != names.API_VERSION:
            raise ValueError(f"apiVersion must be {names.API_VERSION}")
        return value

    def to_manifest(self) -> dict[str, Any]:
        """The object as a JSON-ready dict, camelCase keys, unset (None) fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Self:
        """Parse an object as read from the apiserver or a manifest (any Mapping, e.g. a kopf body)."""
        return cls.model_validate(plain(obj))
