"""``deliver-webhook``: POST a signed JSON event to a URL.

Payload: ``{"url": "https://...", "event": "user.created", "data": <any JSON>}``. The body is the
compact JSON ``{"event": ..., "data": ...}`` (the same bytes on every attempt), sent with

- ``X-Jobline-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with $WEBHOOK_SECRET>``,
- ``X-Jobline-Event: <event>`` and ``X-Jobline-Delivery: <job>/<attempt>``.

A 2xx answer succeeds with ``{"status": code}``; other 4xx (except 408 and 429) and redirects are
permanent failures; 408, 429, 5xx, timeouts and connection errors are retried.
``WEBHOOK_TIMEOUT_SECONDS`` (10) bounds each attempt's request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from jobline.worker import Context, PermanentError, handler

SIGNATURE_HEADER = "X-Jobline-Signature"
EVENT_HEADER = "X-Jobline-Event"
DELIVERY_HEADER = "X-Jobline-Delivery"
RETRYABLE_4XX = frozenset({408, 429})
USER_AGENT = "jobline-webhook/1"


class WebhookError(Exception):
    """A retryable delivery failure (5xx, 408, 429, timeout, connection error)."""


def sign(secret: str, body: bytes) -> str:
    """The ``X-Jobline-Signature`` value of `body`: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is the right ``X-Jobline-Signature`` of `body` (constant-time; for receivers)."""
    return hmac.compare_digest(sign(secret, body), signature)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect surfaces as an HTTPError with its 3xx code


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def _host(url: str) -> str:
    """Scheme and host of `url`, for logs (path and query may carry tokens)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}"


@handler("deliver-webhook")
def deliver_webhook(payload: Any, ctx: Context) -> dict[str, Any]:
    """Deliver the event once; raise PermanentError or WebhookError on failure."""
    if not isinstance(payload, Mapping):
        raise PermanentError("the payload must be an object {url, event, data}")
    url, event = payload.get("url"), payload.get("event")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise PermanentError("payload.url must be an http:// or https:// URL")
    if not urllib.parse.urlsplit(url).hostname:
        raise PermanentError("payload.url has no host")
    if not isinstance(event, str) or not event or len(event) > 200 or not event.isprintable():
        raise PermanentError("payload.event must be a printable string of 1-200 characters")
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret:
        raise PermanentError("WEBHOOK_SECRET is not set")
    try:
        timeout = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS") or 10)
    except ValueError:
        raise PermanentError("WEBHOOK_TIMEOUT_SECONDS must be a number") from None

    body = json.dumps(
        {"event": event, "data": payload.get("data")}, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(secret, body),
            EVENT_HEADER: event,
            DELIVERY_HEADER: f"{ctx.job}/{ctx.attempt}",
        },
    )
    where = _host(url)
    try:
        with _opener().open(request, timeout=timeout) as response:
            status = int(response.status)
            response.read(65536)
    except urllib.error.HTTPError as exc:
        code = exc.code
        exc.close()
        if 400 <= code < 500 and code not in RETRYABLE_4XX:
            raise PermanentError(f"{where} answered {code} {exc.reason}") from None
        if 300 <= code < 400:
            raise PermanentError(f"{where} answered with a redirect ({code}); use the final URL") from None
        raise WebhookError(f"{where} answered {code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise WebhookError(f"cannot reach {where}: {exc.reason}") from None
    except TimeoutError:
        raise WebhookError(f"{where} did not answer within {timeout:g}s") from None
    except ValueError as exc:  # http.client.InvalidURL and the like
        raise PermanentError(f"payload.url is not a valid URL: {type(exc).__name__}") from None
    ctx.logger.info("delivered to %s: %d", where, status)
    return {"status": status}
