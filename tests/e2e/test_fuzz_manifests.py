"""Fuzzed manifests (issue 14, part 4): hypothesis generates QueuedJob, JobQueue and JobSchedule documents,
well-formed and broken (wrong types, huge values, unicode, deep payloads, hostile strings, missing and
extra fields), and applies each to the real apiserver with the operator running. Each is refused with a
message that names a field, or accepted and then reaches a final phase or a condition with a reason. The
operator never exits, and a canary job in another namespace keeps finishing throughout.

Accepted QueuedJobs are held (``suspend: true``, in a queue that does not exist) so that 500 documents
cost no pods: the operator still parses, validates and reconciles each one.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections import Counter
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobline.core.timefmt import parse
from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import wait_for

GROUP, VERSION = "jobline.dev", "v1alpha1"
DOCUMENTS = 500  # per run: 200 QueuedJobs, 150 JobQueues, 150 JobSchedules (PLAN)
CANARY_EVERY = 50

HOSTILE = [
    "<script>alert(1)</script>",
    "'; DROP TABLE jobs; --",
    "{{ .Values }}",
    "${jndi:ldap://x}",
    "\u202e\u0000\ufeff",
    "../../etc/passwd",
    "a" * 300,
    "\u03a9\u2248\u00e7\u221a\u222b\u02dc\u00b5\u2264\u2265\u00f7",
    "😀" * 20,
    "\n\t\r",
    "",
]
text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
payload = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=30,
)
wrong = st.one_of(
    text, st.integers(-(2**64), 2**64), st.booleans(), st.lists(st.integers(), max_size=3), st.none()
)


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value


@st.composite
def maybe_break(draw: st.DrawFn, spec: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """Leave the spec well-formed, or break it: a field of the wrong type, one missing, one unknown."""
    how = draw(st.sampled_from(["ok", "ok", "wrong-type", "missing", "extra"]))
    spec = dict(spec)
    if how == "wrong-type":
        spec[draw(st.sampled_from(fields))] = draw(wrong)
    elif how == "missing" and spec:
        spec.pop(draw(st.sampled_from(sorted(spec))))
    elif how == "extra":
        spec[draw(st.sampled_from(["tries", "Handler", "spec", "x" * 70, "😀"]))] = draw(wrong)
    return spec


@st.composite
def queued_job(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "handler": draw(st.one_of(st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"), text)),
        "payload": draw(st.one_of(payload, st.just(deep(draw(st.integers(1, 120)))))),
        "priority": draw(st.one_of(st.integers(-(10**9), 10**9), st.integers(-(2**63), 2**63))),
        "retry": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "limit": st.integers(-5, 2000),
                    "backoff": st.fixed_dictionaries(
                        {},
                        optional={
                            "initialSeconds": st.integers(-1, 10**6),
                            "jitter": st.floats(-1, 2, allow_nan=False),
                        },
                    ),
                    "rules": st.lists(
                        st.fixed_dictionaries(
                            {"action": st.sampled_from(["FailJob", "Ignore", "Count", "Retry", ""])},
                            optional={
                                "onExitCodes": st.fixed_dictionaries(
                                    {
                                        "operator": st.sampled_from(["In", "NotIn", "Is"]),
                                        "values": st.lists(st.integers(-1, 300), max_size=4),
                                    }
                                ),
                                "onPodConditions": st.lists(
                                    st.fixed_dictionaries({"type": text}), min_size=0, max_size=2
                                ),
                            },
                        ),
                        max_size=3,
                    ),
                },
            )
        ),
        "uniqueKey": draw(st.one_of(st.none(), text)),
        "concurrencyKey": draw(st.one_of(st.none(), text)),
        "dependsOn": draw(st.one_of(st.none(), st.lists(text, max_size=3))),
        "runAt": draw(
            st.one_of(
                st.none(), st.sampled_from(["2026-13-01T00:00:00Z", "tomorrow", "2030-01-01T00:00:00Z"])
            )
        ),
        "timeoutSeconds": draw(st.one_of(st.none(), st.integers(-5, 10**12))),
        "template": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "image": text,
                        "env": st.lists(st.fixed_dictionaries({"name": text, "value": text}), max_size=2),
                        "resources": st.fixed_dictionaries(
                            {}, optional={"limits": st.dictionaries(st.sampled_from(["cpu", "memory"]), text)}
                        ),
                    },
                ),
            )
        ),
    }
    spec = {k: v for k, v in spec.items() if v is not None}
    spec = draw(maybe_break(spec, ["handler", "priority", "retry", "payload", "dependsOn", "timeoutSeconds"]))
    if isinstance(spec, dict):
        spec["queue"] = "fuzz-no-such-queue"  # no pods: a held job in a queue that does not exist
        spec["suspend"] = True
    return spec


@st.composite
def job_queue(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "concurrency": st.integers(-3, 10**10),
                "paused": st.booleans(),
                "rateLimit": st.fixed_dictionaries(
                    {"starts": st.integers(-1, 10**6)},
                    optional={
                        "per": st.sampled_from(["Second", "Minute", "Hour"]),
                        "burst": st.integers(-1, 10**6),
                    },
                ),
                "concurrencyPerKey": st.integers(-1, 1000),
                "fairness": st.sampled_from(["FIFO", "RoundRobin", "Random"]),
                "debounce": st.fixed_dictionaries(
                    {"seconds": st.integers(-1, 10**6)}, optional={"maxWaitSeconds": st.integers(-1, 10**6)}
                ),
                "retention": st.fixed_dictionaries(
                    {}, optional={"succeeded": st.integers(-1, 10), "cancelled": wrong}
                ),
                "template": st.fixed_dictionaries({}, optional={"image": text, "podSpecPatch": payload}),
            },
        )
    )
    spec["paused"] = True  # no job of another test runs here
    return draw(maybe_break(spec, ["concurrency", "paused", "rateLimit", "fairness", "debounce"]))


@st.composite
def job_schedule(draw: st.DrawFn) -> dict[str, Any]:
    field = st.sampled_from(
        ["*", "*/5", "0", "59", "60", "1-5", "5-1", "L", "LW", "15W", "mon#2", "Lfri", "?", "*/0", "a"]
    )
    cron = st.builds(lambda f: " ".join(f), st.lists(field, min_size=4, max_size=6))
    spec: dict[str, Any] = {
        "schedule": draw(
            st.one_of(
                cron, st.sampled_from(["@hourly", "@every 30s", "@every 0s", "@yearly", "@never"]), text
            )
        ),
        "timeZone": draw(st.sampled_from(["UTC", "Europe/Berlin", "Mars/Olympus", "", "../../etc"])),
        "suspend": True,  # no runs: the operator still parses and judges the schedule
        "jobTemplate": {
            "spec": {"handler": draw(st.one_of(st.just("echo"), text)), "payload": draw(payload)}
        },
        "missedRunPolicy": draw(st.sampled_from(["RunOnce", "Skip", "RunAll", "Sometimes"])),
    }
    return draw(maybe_break(spec, ["schedule", "timeZone", "jobTemplate", "missedRunPolicy"]))


KINDS = {"QueuedJob": "queuedjobs", "JobQueue": "jobqueues", "JobSchedule": "jobschedules"}


FIELD_PATH = re.compile(r"\bspec(\.[A-Za-z]\w*|\[|:|\b)|\bmetadata\.")


def _names_a_field(body: str | None) -> bool:
    """The Status message names where the document is wrong: a path under spec (``spec.retry.limit``,
    ``spec: Required value``) or metadata."""
    try:
        message = json.loads(body or "{}").get("message", "")
    except ValueError:
        return False
    return bool(FIELD_PATH.search(message))


def _settled(kind: str, obj: dict[str, Any]) -> bool:
    """Accepted and judged: a final phase, or a condition with a reason."""
    status = obj.get("status") or {}
    if kind == "QueuedJob" and status.get("phase") in ("Succeeded", "Failed", "Cancelled", "Superseded"):
        return True
    return any(c.get("reason") for c in status.get("conditions") or ())


@pytest.fixture
def canary_ns(cluster: ClusterHandle) -> Any:
    name = f"fuzz-canary-{uuid.uuid4().hex[:5]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        lambda: cluster.core.read_namespaced_service_account("default", name), 30, "the canary namespace"
    )
    yield name
    cluster.core.delete_namespace(name)


PLAN = {"QueuedJob": 200, "JobQueue": 150, "JobSchedule": 150}


def fuzzed_documents(seed: int) -> list[tuple[str, dict[str, Any]]]:
    """DOCUMENTS specs drawn by hypothesis, one document per example (one generation pass, no shrinking and
    no replay: the cluster is not part of the example, so a failure is reported by the test below with the
    document that caused it), in an order shuffled by the same seed."""
    strategies = {"QueuedJob": queued_job(), "JobQueue": job_queue(), "JobSchedule": job_schedule()}
    out: list[tuple[str, dict[str, Any]]] = []
    for kind, count in PLAN.items():
        drawn: list[dict[str, Any]] = []

        @hypothesis.seed(seed)
        @settings(
            max_examples=count,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(doc=strategies[kind])
        def collect(doc: dict[str, Any]) -> None:
            drawn.append(doc)  # noqa: B023 (run at once, below)

        collect()
        assert drawn, kind
        out.extend((kind, drawn[i % len(drawn)]) for i in range(count))  # hypothesis may stop a little early
    random.Random(seed).shuffle(out)
    return out


def test_fuzzed_manifests_are_refused_with_a_field_or_settle(
    cluster: ClusterHandle, namespace: str, canary_ns: str, running_operator: OperatorProcess
) -> None:
    api = client.CustomObjectsApi(cluster.api)
    canary = Jobs(cluster, canary_ns)
    canary.queue()
    seed = random.randrange(2**32)
    print(f"\nfuzz seed {seed} (hypothesis.seed)")
    documents = fuzzed_documents(seed)
    tally: Counter[str] = Counter()
    accepted: list[tuple[str, str]] = []
    canaries: list[tuple[str, float]] = []
    for i, (kind, spec) in enumerate(documents):
        if i % CANARY_EVERY == 0:
            name = f"canary-{i}"
            canary.create(name, "echo", {"i": i})
            canaries.append((name, time.monotonic()))
        name = f"fuzz-{kind.lower()}-{i}"
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        tally["tried"] += 1
        try:
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, KINDS[kind], body)
        except ApiException as exc:
            assert exc.status is not None and exc.status < 500, (seed, kind, spec, exc.status, exc.body)
            assert _names_a_field(exc.body), (seed, kind, spec, exc.body)
            tally["refused at apply"] += 1
            continue
        tally["accepted"] += 1
        accepted.append((kind, name))
    assert running_operator.alive(), "the operator exited"

    def unsettled() -> list[tuple[str, str]]:
        return [
            (kind, name)
            for kind, name in accepted
            if not _settled(
                kind, api.get_namespaced_custom_object(GROUP, VERSION, namespace, KINDS[kind], name)
            )
        ]

    wait_for(lambda: not unsettled(), 120, "every accepted document to be judged")
    verdicts: Counter[str] = Counter()
    for kind, name in accepted:
        status = (
            api.get_namespaced_custom_object(GROUP, VERSION, namespace, KINDS[kind], name).get("status") or {}
        )
        flags = sorted(
            f"{c['type']}={c.get('reason')}"
            for c in status.get("conditions") or ()
            if c.get("status") == "False" and c.get("reason") != "Suspended"  # held on purpose
        )
        if flags:
            tally["flagged"] += 1
        verdicts[f"{kind} {status.get('phase') or '-'} {' '.join(flags) or 'ok'}"] += 1
    lateness = []
    for name, _ in canaries:
        st_ = canary.wait_phase(name, "Succeeded", timeout=120)
        assert st_["attempts"] == 1, st_
        created_at = canary.get(name)["metadata"]["creationTimestamp"]
        lateness.append((parse(st_["completedAt"]) - parse(created_at)).total_seconds())  # type: ignore[operator]
    assert running_operator.alive(), "the operator exited"
    print(f"\nfuzzed manifests: {dict(tally)}, crashes 0; accepted, as judged: {dict(verdicts)}")
    print(f"canaries: {len(canaries)} succeeded, created -> done max {max(lateness):.1f}s")
    # On time: a canary is a plain job in an idle queue; 60 s is far beyond its normal 1-3 s.
    assert max(lateness) < 60, lateness
    assert tally["tried"] == DOCUMENTS and tally["refused at apply"] > 0 and tally["accepted"] > 0
