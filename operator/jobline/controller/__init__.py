"""The loops that apply the core's decisions, one task each, over one watch-fed view.

- ``store``: QueuedJobs, JobQueues and attempt pods as the API returned them, indexed for dispatch
  (by queue, dependency, uniqueKey, owning schedule); both loops read it.
- ``base``: the loop skeleton (sync, wake-up, HA standby, background tasks, one failure path).
- ``loop``: :class:`Controller`, QueuedJobs: the state machine per changed job, then dispatch.
- ``schedules``: :class:`ScheduleLoop`, JobSchedules: fires the runs the cron planner asks for.
"""
