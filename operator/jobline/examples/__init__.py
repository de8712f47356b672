"""Example handlers ported from the predecessor job system; ``jobline-worker --import jobline.examples``.

Importing this package registers, in the default registry:

- ``send-email``: one email over SMTP (`jobline.examples.send_email`);
- ``generate-report``: a report computed in steps, with progress (`jobline.examples.generate_report`);
- ``deliver-webhook``: a signed JSON POST (`jobline.examples.deliver_webhook`);
- ``cleanup``: deletes old files under a directory (`jobline.examples.cleanup`).
"""

from . import cleanup, deliver_webhook, generate_report, send_email

HANDLERS = ("send-email", "generate-report", "deliver-webhook", "cleanup")
"""Names of the handlers this package registers."""

__all__ = ["HANDLERS", "cleanup", "deliver_webhook", "generate_report", "send_email"]
