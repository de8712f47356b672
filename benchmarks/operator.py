"""``python -m benchmarks.operator ARGS``: ``jobline-operator ARGS`` with the admission webhook really off.

``jobline-operator --webhook-port 0`` is documented to disable the webhook, but the validating handler
stays registered, so kopf stops at startup ("Admission handlers exist, but no admission server/tunnel
is configured"). The benchmarks run without a webhook because the peers have none: this drops the
registered admission handlers and then runs the console script's ``main`` unchanged.
"""

from __future__ import annotations

import sys


def main() -> int:
    import kopf

    import jobline.handlers  # noqa: F401 - registers the handlers (main() imports it again: a no-op)
    from jobline import main as jobline_main

    webhooks = kopf.get_default_registry()._webhooks
    webhooks._handlers.clear()
    return jobline_main.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
