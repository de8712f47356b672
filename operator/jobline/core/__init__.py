"""The pure core: models and decisions, importing neither kopf nor the Kubernetes client.

Everything here is a function of its arguments ("now" included), so it is unit-tested table by
table; the loops in :mod:`jobline.controller` apply what it decides. The import contracts in
pyproject.toml keep it so.

- ``models``: the pydantic models, the single source of the CRD schemas.
- ``lifecycle``: the QueuedJob state machine; ``backoff``: the delay between attempts.
- ``dispatch``: which jobs start next, duplicates, retention; ``podspec``: the worker pod.
- ``cron`` and ``schedule_state``: schedule math and the JobSchedule planner.
- ``readmodel`` and ``actions``: what the CLI, the dashboard, metrics and queue status read and write.
- ``leadership``: kopf's peering rule; ``naming``: generated names; ``timefmt``: RFC 3339.
"""
