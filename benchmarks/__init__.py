"""Jobline benchmarks against the Kubernetes Job and CronJob controllers (issue 7)."""
