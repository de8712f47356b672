from tests.e2e.operator_fixtures import crds, operator, running_operator

__all__ = ["crds", "operator", "running_operator"]
