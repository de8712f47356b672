"""The pure core of Jobline: models and logic that import neither kopf nor the Kubernetes client."""
