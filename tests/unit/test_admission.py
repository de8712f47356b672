"""The admission checks as pure functions: a started job's payload is frozen, schedules are checked."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from jobline.handlers.admission import validate_jobschedule, validate_queuedjob
from jobline.runtime import Runtime


def _update(old_spec: dict[str, Any], attempts: int, new_spec: dict[str, Any]) -> None:
    old = kopf.Body({"spec": old_spec, "status": {"attempts": attempts}})
    validate_queuedjob(
        kopf.Body({"spec": new_spec}).spec, "ns", "job", Runtime(), operation="UPDATE", old=old
    )


@pytest.mark.parametrize(
    ("old", "attempts", "new", "refused"),
    [
        pytest.param({"payload": {"n": 1}}, 1, {"payload": {"n": 2}}, True, id="started-payload-changed"),
        pytest.param({"payload": {"n": 1}}, 1, {}, True, id="started-payload-removed"),
        pytest.param({}, 2, {"payload": 1}, True, id="started-payload-added"),
        pytest.param(
            {"payload": {"n": 1}}, 1, {"payload": {"n": 1}, "priority": 5}, False, id="started-other-field"
        ),
        pytest.param({"payload": {"n": 1}}, 0, {"payload": {"n": 2}}, False, id="not-started"),
    ],
)
def test_a_started_jobs_payload_is_frozen(
    old: dict[str, Any], attempts: int, new: dict[str, Any], refused: bool
) -> None:
    if refused:
        with pytest.raises(
            kopf.AdmissionError, match=r"spec\.payload cannot change once the job's first attempt"
        ):
            _update(old, attempts, new)
    else:
        _update(old, attempts, new)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"schedule": "5-1 * * * *"}, "spec.schedule: minute field '5-1': range 5-1 is reversed"),
        ({"schedule": "0 0 30 2 *"}, "spec.schedule: schedule '0 0 30 2 *' never fires"),
        ({"schedule": "0 3 * * *", "timeZone": "Mars/Olympus_Mons"}, "spec.timeZone: unknown time zone"),
    ],
)
def test_schedules_the_pattern_cannot_judge_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(kopf.AdmissionError, match=message.replace("*", r"\*")):
        validate_jobschedule(kopf.Body({"spec": spec}).spec)


def test_a_valid_schedule_is_admitted() -> None:
    validate_jobschedule(kopf.Body({"spec": {"schedule": "0 0 13 * L5", "timeZone": "Europe/Berlin"}}).spec)
