"""Jobline benchmarks against the Kubernetes Job and CronJob controllers, side by side in one run."""
