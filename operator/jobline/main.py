"""``jobline-operator``: run the Jobline operator (kopf) against the current cluster."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, cast

from jobline import settings as settings_module
from jobline.runtime import Runtime


def main(argv: list[str] | None = None) -> int:
    own = settings_module.from_args(argv)
    import kopf

    kopf.configure(
        verbose=own.log_level == "debug",
        debug=False,
        quiet=own.log_level in ("warning", "error"),
        log_format=kopf.LogFormat.JSON if own.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger().setLevel(own.log_level.upper())
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per admission review is noise
    if own.log_level != "debug":
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # one line per watch event is noise

    import jobline.handlers  # registers the kopf handlers

    if own.webhook_port:
        jobline.handlers.admission.register()

    try:
        asyncio.run(
            kopf.operator(
                clusterwide=not own.namespaces,
                namespaces=own.namespaces,
                standalone=own.peering is None,
                peering_name=own.peering,
                priority=own.priority,
                identity=cast(Any, own.identity),  # kopf.Identity is a NewType of str, not exported
                memo=Runtime(own),
            )
        )
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
