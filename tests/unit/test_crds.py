"""The generated CRDs: up to date with the models, structural, and carrying what kubectl shows."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from pydantic import Field

from jobline import crdgen, names
from jobline.core.models import Resource, SpecModel

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
KINDS = {config.kind: config for config in crdgen.KINDS}


@functools.cache
def load(kind: str) -> dict[str, Any]:
    """The CRD file of `kind`, parsed (cached: do not modify)."""
    text = (CRD_DIR / KINDS[kind].filename).read_text()
    crd: dict[str, Any] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return crd


def root_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = load(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (.a.b, [] for items, .* for map values)."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*")


def at(kind: str, path: str) -> dict[str, Any]:
    """The schema node at a simple JSON path such as .spec.retry.limit."""
    node = root_schema(kind)
    for name in path.strip(".").split("."):
        node = node["properties"][name]
    return node


ALL_KINDS = sorted(KINDS)


# --- up to date ------------------------------------------------------------------------------


def test_crds_are_up_to_date() -> None:
    diffs = crdgen.check(CRD_DIR)
    assert not diffs, "crds/ is stale: run `python -m jobline.crdgen`\n" + "".join(diffs)


def test_check_cli_detects_stale_and_fresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 1  # missing files
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 0
    path = tmp_path / KINDS["QueuedJob"].filename
    path.write_text(path.read_text().replace("Name of the handler", "Name of a handler"))
    capsys.readouterr()
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 1
    assert "Name of the handler" in capsys.readouterr().out
    crdgen.main(["--out", str(tmp_path)])
    (tmp_path / f"oldthings.{names.GROUP}.yaml").write_text("{}\n")
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 1


# --- CRD envelope ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_crd_envelope(kind: str) -> None:
    crd = load(kind)
    config = KINDS[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{config.plural}.{names.GROUP}"
    spec = crd["spec"]
    assert spec["group"] == names.GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["listKind"] == f"{kind}List"
    assert spec["names"]["plural"] == config.plural
    assert spec["names"]["categories"] == [names.CATEGORY]
    (version,) = spec["versions"]
    assert version["name"] == names.VERSION
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}


def test_short_name_of_queued_job() -> None:
    assert load("QueuedJob")["spec"]["names"]["shortNames"] == ["qj"]


# --- structural schema -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_schema_is_structural(kind: str) -> None:
    root = root_schema(kind)
    assert root["type"] == "object"
    assert root["properties"]["metadata"] == {"type": "object"}  # the apiserver allows nothing more
    for path, node in walk(root):
        for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "title", "uniqueItems"):
            assert banned not in node, f"{kind}{path}: {banned}"
        assert node.get("additionalProperties") is not False, f"{kind}{path}: additionalProperties: false"
        if "properties" in node:
            assert "additionalProperties" not in node, f"{kind}{path}: properties with additionalProperties"
        typed = (
            "type" in node
            or node.get("x-kubernetes-preserve-unknown-fields") is True
            or node.get("x-kubernetes-int-or-string") is True
        )
        assert typed, f"{kind}{path}: no type"
        if node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node:
            assert node.get("x-kubernetes-preserve-unknown-fields") is True or path == ".metadata", (
                f"{kind}{path}: an object with no fields drops everything"
            )
        for key in node:
            assert not key.startswith("x-") or key.startswith("x-kubernetes-"), f"{kind}{path}: {key}"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_field_has_a_description(kind: str) -> None:
    root = root_schema(kind)
    for path, node in walk(root["properties"]["spec"], ".spec"):
        if path.endswith((".*", "[]")):
            continue
        assert node.get("description"), f"{kind}{path}: no description"
    for path, node in walk(root["properties"]["status"], ".status"):
        if not path.endswith((".*", "[]")):
            assert node.get("description"), f"{kind}{path}: no description"


def test_retry_fields_are_described() -> None:
    retry = at("QueuedJob", ".spec.retry")
    assert retry["description"]
    for name in ("limit", "backoff", "nonRetryableExitCodes"):
        assert retry["properties"][name]["description"], name
    for name in ("initialSeconds", "factor", "maxSeconds", "jitter"):
        assert retry["properties"]["backoff"]["properties"][name]["description"], name


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_status_has_no_server_defaults(kind: str) -> None:
    for path, node in walk(root_schema(kind)["properties"]["status"], ".status"):
        assert "default" not in node, f"{kind}{path}"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_list_map_keys_are_required(kind: str) -> None:
    for path, node in walk(root_schema(kind)):
        if node.get("x-kubernetes-list-type") == "map":
            item = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in item.get("required", []) or "default" in item["properties"][key], (
                    f"{kind}{path}"
                )


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_conditions_are_a_map_by_type(kind: str) -> None:
    conditions = at(kind, ".status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_cel_rules_are_well_formed(kind: str) -> None:
    for path, node in walk(root_schema(kind)):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule.get("rule") and rule.get("message"), f"{kind}{path}"
            assert set(rule) <= {
                "rule",
                "message",
                "messageExpression",
                "fieldPath",
                "reason",
                "optionalOldSelf",
            }


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_strings_and_lists_in_cel_rules_are_bounded(kind: str) -> None:
    """CEL cost estimation needs bounds on the lists and strings a rule iterates over or compares."""
    for path, node in walk(root_schema(kind)):
        if node.get("type") == "array" and any(
            "x-kubernetes-validations" in sub for _, sub in walk(node["items"])
        ):
            assert "maxItems" in node, f"{kind}{path}"
    assert "maxItems" in at("QueuedJob", ".spec.dependsOn")  # used by the root rule
    assert "maxLength" in at("JobSchedule", ".spec.schedule")


# --- particular fields -----------------------------------------------------------------------


def test_queued_job_spec_schema() -> None:
    spec = at("QueuedJob", ".spec")
    assert spec["required"] == ["handler"]
    assert spec["properties"]["queue"]["default"] == "default"
    assert spec["properties"]["suspend"]["default"] is False
    payload = spec["properties"]["payload"]
    assert payload["x-kubernetes-preserve-unknown-fields"] is True and "type" not in payload
    assert at("QueuedJob", ".spec.runAt")["format"] == "date-time"
    assert "required" in root_schema("QueuedJob") and root_schema("QueuedJob")["required"] == ["spec"]
    retry = at("QueuedJob", ".spec.retry")
    jitter = retry["properties"]["backoff"]["properties"]["jitter"]
    assert (jitter["type"], jitter["minimum"], jitter["maximum"]) == ("number", 0, 1)
    assert retry["properties"]["limit"]["minimum"] == 0
    rules = retry["properties"]["backoff"]["x-kubernetes-validations"]
    assert any("self.maxSeconds >= self.initialSeconds" in r["rule"] for r in rules)


def test_worker_template_schema() -> None:
    template = at("QueuedJob", ".spec.template")
    assert at("JobQueue", ".spec.template")["properties"] == template["properties"]
    assert at("JobSchedule", ".spec.jobTemplate.spec.template")["properties"] == template["properties"]
    quantity = template["properties"]["resources"]["properties"]["requests"]["additionalProperties"]
    assert quantity["x-kubernetes-int-or-string"] is True and "pattern" in quantity
    env = template["properties"]["env"]
    assert env["x-kubernetes-list-type"] == "map" and env["x-kubernetes-list-map-keys"] == ["name"]
    assert set(env["items"]["properties"]) == {"name", "value", "valueFrom"}
    toleration = template["properties"]["tolerations"]["items"]["properties"]
    assert set(toleration) == {"key", "operator", "value", "effect", "tolerationSeconds"}
    patch = template["properties"]["podSpecPatch"]
    assert patch == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "description": patch["description"],
    }
    assert "activeDeadlineSeconds" not in template["properties"]


def test_job_schedule_defaults_in_schema() -> None:
    spec = at("JobSchedule", ".spec")
    expected = {
        "timeZone": "UTC",
        "suspend": False,
        "concurrencyPolicy": "Allow",
        "missedRunPolicy": "RunLatest",
        "maxCatchUpRuns": 10,
        "jitterSeconds": 0,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
    }
    for name, default in expected.items():
        assert spec["properties"][name]["default"] == default, name
    assert spec["properties"]["concurrencyPolicy"]["enum"] == ["Allow", "Forbid", "Replace"]
    assert spec["properties"]["missedRunPolicy"]["enum"] == ["RunLatest", "Skip", "RunAll"]
    assert (
        spec["properties"]["maxCatchUpRuns"]["minimum"],
        spec["properties"]["maxCatchUpRuns"]["maximum"],
    ) == (1, 1000)
    assert set(spec["required"]) == {"schedule", "jobTemplate"}


def test_job_queue_spec_defaults_to_empty_object() -> None:
    assert at("JobQueue", ".spec")["default"] == {}
    assert at("JobQueue", ".spec.concurrency")["minimum"] == 1


# --- printer columns and selectable fields ---------------------------------------------------

EXPECTED_COLUMNS = {
    "QueuedJob": [
        "Queue",
        "Handler",
        "Priority",
        "Phase",
        "Reason",
        "Attempts",
        "Progress",
        "Next Retry",
        "Age",
    ],
    "JobQueue": [
        "Concurrency",
        "Paused",
        "Pending",
        "Waiting",
        "Running",
        "Succeeded",
        "Failed",
        "Workers",
        "Busy",
        "Idle",
        "Age",
    ],
    "JobSchedule": ["Schedule", "Time Zone", "Suspend", "Active", "Last", "Next", "Runs", "Age"],
}
_COLUMN_TYPES = {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean"}


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_printer_columns(kind: str) -> None:
    columns = load(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
    default_columns = [c["name"] for c in columns if not c.get("priority")]
    assert default_columns == EXPECTED_COLUMNS[kind]
    for column in columns:
        path = column["jsonPath"]
        if path == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        node = at(kind, path)  # the column points at a field that exists
        if column["type"] == "date":
            assert node.get("format") == "date-time", path
        else:
            assert node["type"] == _COLUMN_TYPES[column["type"]], path


def test_selectable_fields_of_queued_job() -> None:
    fields = load("QueuedJob")["spec"]["versions"][0]["selectableFields"]
    assert fields == [
        {"jsonPath": ".spec.queue"},
        {"jsonPath": ".spec.handler"},
        {"jsonPath": ".spec.uniqueKey"},
        {"jsonPath": ".status.phase"},  # every phase on the server; the label only on finished jobs
        {"jsonPath": ".status.worker"},  # a pool worker watches the attempts assigned to its pod
    ]
    for field in fields:
        assert at("QueuedJob", field["jsonPath"])["type"] == "string"


# --- the generator refuses what it cannot express --------------------------------------------


class _UnionSpec(SpecModel):
    """A spec with a union."""

    value: int | str = Field(description="Either.")


class _UnionThing(Resource):
    KIND: ClassVar[str] = "UnionThing"
    PLURAL: ClassVar[str] = "unionthings"
    spec: _UnionSpec = Field(description="Spec.")


class _UndescribedSpec(SpecModel):
    """A spec with a field without description."""

    value: int = 0


class _UndescribedThing(Resource):
    KIND: ClassVar[str] = "UndescribedThing"
    PLURAL: ClassVar[str] = "undescribedthings"
    spec: _UndescribedSpec = Field(description="Spec.")


def test_generator_refuses_unions() -> None:
    with pytest.raises(crdgen.SchemaError, match="union"):
        crdgen.openapi_schema(_UnionThing)


def test_generator_refuses_fields_without_description() -> None:
    with pytest.raises(crdgen.SchemaError, match="description"):
        crdgen.openapi_schema(_UndescribedThing)
