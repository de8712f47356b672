"""The chart's status policy lists every QueuedJob status field but progress and report (in step with the model)."""

from __future__ import annotations

import re
from pathlib import Path

from jobline.core.models.queuedjob import QueuedJobStatus

TEMPLATE = Path(__file__).resolve().parents[2] / "charts" / "jobline" / "templates" / "status-policy.yaml"


def test_policy_guards_every_status_field_but_progress_and_report() -> None:
    match = re.search(r"\$fields := list ((?:\"\w+\" ?)+)", TEMPLATE.read_text())
    assert match, "the field list of the policy template"
    guarded = re.findall(r"\"(\w+)\"", match.group(1))
    fields = {f.alias or name for name, f in QueuedJobStatus.model_fields.items()}
    assert len(guarded) == len(set(guarded))
    assert set(guarded) == fields - {"progress", "report"}, (
        "update the list in charts/jobline/templates/status-policy.yaml"
    )
