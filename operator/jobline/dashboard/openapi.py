"""The OpenAPI 3.0 document of the dashboard API, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from jobline import names
from jobline.core.models import PHASES as _PHASES
from jobline.core.readmodel import COUNT_KEYS

PHASES = list(_PHASES)
QJ, QUEUES, SCHEDULES = names.PLURAL_QUEUEDJOBS, names.PLURAL_JOBQUEUES, names.PLURAL_JOBSCHEDULES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed input (the message says what).",
        401: "No bearer token, or one the API server does not accept.",
        403: "The user lacks the Kubernetes RBAC right (verb, resource, namespace) for this.",
        404: "No such object.",
        409: "The object is in no state for this (e.g. retry of an unfinished job).",
        413: "The request body is larger than 64 KiB.",
        503: "The operator is still loading its view, or cannot review tokens right now.",
    }
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": _ref("Error")}}}
            for c in codes}


_NS_QUERY = {"name": "namespace", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "Only this namespace (default: every namespace the user may read)."}
_PATH = [
    {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
]


def _action(summary: str, right: str, result: str, *extra: int) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "description": f"Needs the RBAC right `{right}` on the object (SubjectAccessReview). Takes no "
                       "request body: none, or an empty object `{}` (anything else is a 400).",
        "parameters": _PATH,
        "responses": {"200": _ok(result, "Done."), **_errors(400, 401, 403, 404, *extra, 413)},
    }}


def document() -> dict[str, Any]:
    nullable_str = {"type": "string", "nullable": True}
    nullable_time = {"type": "string", "format": "date-time", "nullable": True}
    nullable_int = {"type": "integer", "nullable": True}
    counts = {k: {"type": "integer"} for k in (*COUNT_KEYS, "total")}
    job_summary = {
        "type": "object",
        "properties": {
            "namespace": {"type": "string"}, "name": {"type": "string"}, "queue": {"type": "string"},
            "handler": {"type": "string"}, "phase": {"type": "string", "enum": PHASES},
            "waitingReason": nullable_str, "failureReason": nullable_str, "priority": {"type": "integer"},
            "attempts": {"type": "integer"}, "progress": nullable_int,
            "position": {**nullable_int, "description": "Place in its queue while Pending (1 = next)."},
            "deadLettered": {"type": "boolean"}, "suspended": {"type": "boolean"},
            "createdAt": nullable_time, "startedAt": nullable_time, "completedAt": nullable_time,
            "nextAttemptAt": nullable_time,
            "lastError": {**nullable_str, "description": "First 300 characters (whole in the detail)."},
            "schedule": {**nullable_str, "description": "The JobSchedule that created the job."},
        },
        "required": ["namespace", "name", "queue", "handler", "phase", "attempts"],
    }
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                  "required": ["error", "status"]},
        "Config": {"type": "object", "properties": {
            "auth": {"type": "string", "enum": ["token", "none"]}, "refreshSeconds": {"type": "integer"},
            "phases": {"type": "array", "items": {"type": "string"}}}},
        "WhoAmI": {"type": "object", "properties": {
            "username": {"type": "string"}, "groups": {"type": "array", "items": {"type": "string"}},
            "auth": {"type": "string"}}},
        "Namespaces": {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "string"}}}},
        "QueueStats": {"type": "object", "properties": {
            "namespace": {"type": "string"}, "queue": {"type": "string"},
            "exists": {"type": "boolean", "description": "A JobQueue object exists (else built-in defaults)."},
            "paused": {"type": "boolean"}, "concurrency": nullable_int, **counts,
            "oldestPendingSeconds": nullable_int}},
        "Stats": {"type": "object", "properties": {
            "totals": {"type": "object", "properties": counts},
            "queues": {"type": "array", "items": _ref("QueueStats")}}},
        "JobSummary": job_summary,
        "JobPage": {"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("JobSummary")}, "total": {"type": "integer"},
            "page": {"type": "integer"}, "limit": {"type": "integer"}, "pages": {"type": "integer"}},
            "required": ["items", "total", "page", "limit", "pages"]},
        "JobDetail": {"allOf": [_ref("JobSummary"), {"type": "object", "properties": {
            "uid": {"type": "string"}, "labels": {"type": "object"}, "annotations": {"type": "object"},
            "spec": {"type": "object", "description": "The QueuedJob spec, payload included."},
            "result": {"description": "What the handler returned (any JSON)."},
            "attemptHistory": {"type": "array", "items": {"type": "object"}},
            "olderAttempts": {"type": "integer"}, "failedAttempts": {"type": "integer"},
            "podName": nullable_str, "duplicateOf": nullable_str,
            "conditions": {"type": "array", "items": {"type": "object"}}}}]},
        "Schedule": {"type": "object", "properties": {
            "namespace": {"type": "string"}, "name": {"type": "string"}, "schedule": {"type": "string"},
            "timeZone": {"type": "string"}, "enabled": {"type": "boolean"}, "handler": nullable_str,
            "queue": {"type": "string"}, "concurrencyPolicy": {"type": "string"},
            "lastScheduleTime": nullable_time, "nextScheduleTime": nullable_time,
            "lastSuccessfulTime": nullable_time, "runCount": {"type": "integer"},
            "activeCount": {"type": "integer"}, "lastJob": nullable_str,
            "consecutiveFailures": {"type": "integer"}, "missedRuns": {"type": "integer"},
            "message": nullable_str}},
        "Schedules": {"type": "object", "properties": {"items": {"type": "array", "items": _ref("Schedule")}}},
        "Ref": {"type": "object", "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}},
                "additionalProperties": True},
        "BulkResult": {"type": "object", "properties": {
            "dryRun": {"type": "boolean"}, "count": {"type": "integer"},
            "items": {"type": "array", "items": _ref("Ref")}}},
        "CleanupRequest": {"type": "object", "additionalProperties": False, "properties": {
            "namespace": {"type": "string"},
            "olderThan": {"type": "string", "default": "7d", "example": "7d",
                          "description": "Finished longer ago than this: w, d, h, m, s units (1d12h)."},
            "phases": {"type": "array", "items": {"type": "string", "enum": ["Succeeded", "Failed", "Cancelled", "Superseded"]}},
            "queue": {"type": "string"}, "dryRun": {"type": "boolean", "default": False}}},
        "RetryFailedRequest": {"type": "object", "additionalProperties": False, "properties": {
            "namespace": {"type": "string"}, "queue": {"type": "string"},
            "dryRun": {"type": "boolean", "default": False}}},
    }
    read = "Needs `list` on the resource in the namespace (or cluster-wide for every namespace)."
    paths: dict[str, Any] = {
        "/api/config": {"get": {"summary": "How the dashboard is set up (no token needed).", "security": [],
                                "responses": {"200": _ok("Config", "Settings.")}}},
        "/api/openapi.json": {"get": {"summary": "This document (no token needed).", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.0 document."}}}},
        "/api/whoami": {"get": {"summary": "The user the token belongs to.",
                                "responses": {"200": _ok("WhoAmI", "The user."), **_errors(401)}}},
        "/api/namespaces": {"get": {"summary": "Namespaces holding Jobline objects that the user may read.",
                                    "responses": {"200": _ok("Namespaces", "Names."), **_errors(401, 503)}}},
        "/api/stats": {"get": {
            "summary": "Job counts per phase, in total and per queue (counted from the jobs).",
            "description": read + f" Resource: {QJ}.", "parameters": [_NS_QUERY],
            "responses": {"200": _ok("Stats", "Counts."), **_errors(400, 401, 403, 503)}}},
        "/api/jobs": {"get": {
            "summary": "QueuedJobs, filtered, searched, sorted and paged on the server.",
            "description": read + f" Resource: {QJ}.",
            "parameters": [
                _NS_QUERY,
                {"name": "phase", "in": "query", "schema": {"type": "array", "items": {"type": "string",
                 "enum": PHASES}}, "style": "form", "explode": True, "description": "Repeatable."},
                {"name": "queue", "in": "query", "schema": {"type": "string"}},
                {"name": "handler", "in": "query", "schema": {"type": "string"}},
                {"name": "q", "in": "query", "schema": {"type": "string"},
                 "description": "Case-insensitive text in name, namespace, queue, handler, uniqueKey, "
                                "phase or lastError."},
                {"name": "sort", "in": "query", "schema": {"type": "string",
                 "enum": ["newest", "oldest", "name", "priority"], "default": "newest"}},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200,
                                                            "default": 25}},
            ],
            "responses": {"200": _ok("JobPage", "One page."), **_errors(400, 401, 403, 503)}}},
        "/api/jobs/{namespace}/{name}": {
            "get": {"summary": "One job: spec (payload), attempt history, last error, result, progress.",
                    "description": f"Needs `get` on the {names.KIND_QUEUEDJOB.lower()}.", "parameters": _PATH,
                    "responses": {"200": _ok("JobDetail", "The job."), **_errors(400, 401, 403, 404, 503)}},
            "delete": {"summary": "Delete the job (its pods go with it).",
                       "description": f"Needs `delete` on the {names.KIND_QUEUEDJOB.lower()}. Takes no request "
                                      "body: none, or an empty object `{}` (anything else is a 400).",
                       "parameters": _PATH,
                       "responses": {"200": _ok("Ref", "Deleted."), **_errors(400, 401, 403, 404, 413)}},
        },
        "/api/jobs/{namespace}/{name}/retry": _action(
            f"Requeue a finished job (sets the {names.ANNOTATION_REQUEUE} annotation).", f"patch {QJ}",
            "Ref", 409),
        "/api/jobs/{namespace}/{name}/cancel": _action(
            "Cancel an unfinished job (sets spec.cancel): a running attempt gets SIGTERM, the job ends "
            "Cancelled with its history.", f"patch {QJ}", "Ref", 409),
        "/api/retry-failed": {"post": {
            "summary": "Requeue every dead-lettered job in scope.",
            "description": f"Needs `patch` on {QJ} in every namespace concerned; otherwise 403 and "
                           "nothing changes.",
            "requestBody": {"content": {"application/json": {"schema": _ref("RetryFailedRequest")}}},
            "responses": {"200": _ok("BulkResult", "Requeued (or, with dryRun, would be)."),
                          **_errors(400, 401, 403, 413, 503)}}},
        "/api/cleanup": {"post": {
            "summary": "Delete finished jobs older than a duration.",
            "description": f"Needs `delete` on {QJ} in every namespace concerned; otherwise 403 and "
                           "nothing changes.",
            "requestBody": {"content": {"application/json": {"schema": _ref("CleanupRequest")}}},
            "responses": {"200": _ok("BulkResult", "Deleted (or, with dryRun, would be)."),
                          **_errors(400, 401, 403, 413, 503)}}},
        "/api/schedules": {"get": {
            "summary": "JobSchedules: cron, last and next run, run count, enabled.",
            "description": read + f" Resource: {SCHEDULES}.", "parameters": [_NS_QUERY],
            "responses": {"200": _ok("Schedules", "Schedules."), **_errors(400, 401, 403, 503)}}},
        "/api/schedules/{namespace}/{name}/trigger": _action(
            f"Run the schedule now (sets the {names.ANNOTATION_TRIGGER} annotation).", f"patch {SCHEDULES}", "Ref"),
        "/api/schedules/{namespace}/{name}/enable": _action(
            "Enable the schedule (spec.suspend=false).", f"patch {SCHEDULES}", "Ref"),
        "/api/schedules/{namespace}/{name}/disable": _action(
            "Disable the schedule (spec.suspend=true).", f"patch {SCHEDULES}", "Ref"),
        "/api/queues/{namespace}/{name}/pause": _action(
            "Pause the queue (spec.paused=true): nothing new starts.", f"patch {QUEUES}", "Ref"),
        "/api/queues/{namespace}/{name}/resume": _action(
            "Resume the queue (spec.paused=false).", f"patch {QUEUES}", "Ref"),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Jobline dashboard API",
            "version": names.VERSION,
            "description": (
                "JSON API of the Jobline operator's dashboard. Every call but /api/config and this "
                "document needs `Authorization: Bearer <Kubernetes token>`; the operator checks the token "
                "with a TokenReview and each read or action with a SubjectAccessReview against the "
                f"matching {names.GROUP} resource, verb and namespace. Errors are "
                '`{"error": "...", "status": N}`.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A Kubernetes token, e.g. `kubectl create token NAME`."}},
            "schemas": schemas,
        },
        "paths": paths,
    }
