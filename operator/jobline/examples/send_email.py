"""``send-email``: send one plain-text email over SMTP.

Payload: ``{"to": "a@example.com" | [...], "subject": "...", "body": "...", "from"?: "..."}``.
Settings from the environment: ``SMTP_HOST`` (required), ``SMTP_PORT`` (587), ``SMTP_USER`` and
``SMTP_PASSWORD`` (login when the user is set), ``SMTP_STARTTLS`` (true), ``SMTP_SSL`` (false,
implicit TLS as on port 465), ``SMTP_FROM`` (sender when the payload has none), ``SMTP_TIMEOUT``
(30 seconds). Returns ``{"messageId": "<...>"}``; the Message-ID is the same for every attempt of
a job, so a receiver can drop the copy a retry sends.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from typing import Any

from jobline.worker import Context, PermanentError, handler

ADDRESS_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")
MAX_RECIPIENTS = 100


def _text(payload: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise PermanentError(f"payload.{key} must be a non-empty string")
    return value


def _address(value: str, what: str) -> tuple[str, str]:
    """(display name, address) of `value`; PermanentError when it is no valid address."""
    if "\r" in value or "\n" in value:
        raise PermanentError(f"invalid {what} address: contains a line break")
    display, address = parseaddr(value)
    if not address or not ADDRESS_RE.match(address):
        raise PermanentError(f"invalid {what} address")
    return display, address


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in ("1", "true", "yes", "on")


def _settings() -> tuple[str, int, float]:
    host = os.environ.get("SMTP_HOST", "").strip()
    if not host:
        raise PermanentError("SMTP_HOST is not set")
    try:
        port = int(os.environ.get("SMTP_PORT") or 587)
        timeout = float(os.environ.get("SMTP_TIMEOUT") or 30)
    except ValueError:
        raise PermanentError("SMTP_PORT and SMTP_TIMEOUT must be numbers") from None
    return host, port, timeout


def build_message(payload: Any, ctx: Context) -> tuple[EmailMessage, list[str]]:
    """The message and its envelope recipients; PermanentError for an invalid payload."""
    if not isinstance(payload, Mapping):
        raise PermanentError("the payload must be an object {to, subject, body, from?}")
    to = payload.get("to")
    recipients = [to] if isinstance(to, str) else to
    if not isinstance(recipients, list) or not recipients or not all(isinstance(r, str) for r in recipients):
        raise PermanentError("payload.to must be an address or a non-empty list of addresses")
    if len(recipients) > MAX_RECIPIENTS:
        raise PermanentError(f"payload.to has more than {MAX_RECIPIENTS} addresses")
    to_pairs = [_address(r, "recipient") for r in recipients]
    subject = _text(payload, "subject") or ""
    body = _text(payload, "body") or ""
    if "\r" in subject or "\n" in subject:
        raise PermanentError("payload.subject must be one line")
    sender = _text(payload, "from", required=False) or os.environ.get("SMTP_FROM", "")
    if not sender:
        raise PermanentError("no sender: set payload.from or SMTP_FROM")
    from_pair = _address(sender, "sender")

    msg = EmailMessage()
    msg["From"] = formataddr(from_pair)
    msg["To"] = ", ".join(formataddr(p) for p in to_pairs)
    msg["Subject"] = subject
    domain = from_pair[1].rpartition("@")[2]
    msg["Message-ID"] = f"<{ctx.job}.{ctx.namespace}@{domain}>"
    msg["X-Jobline-Job"] = f"{ctx.namespace}/{ctx.job}"
    msg.set_content(body)
    return msg, [address for _, address in to_pairs]


@handler("send-email")
def send_email(payload: Any, ctx: Context) -> dict[str, Any]:
    """Send the email; SMTP 5xx answers are permanent, 4xx and connection errors are retried."""
    msg, recipients = build_message(payload, ctx)
    host, port, timeout = _settings()
    user = os.environ.get("SMTP_USER", "")
    password = os.environ.get("SMTP_PASSWORD", "")
    use_ssl = _flag("SMTP_SSL", False)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP = (
        smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        if use_ssl
        else smtplib.SMTP(host, port, timeout=timeout)
    )
    try:
        with smtp:
            if not use_ssl and _flag("SMTP_STARTTLS", True):
                smtp.starttls(context=context)
            if user:
                smtp.login(user, password)
            refused = smtp.send_message(msg, to_addrs=recipients)
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentError(f"the SMTP server lacks a feature the settings need: {exc}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(500 <= code < 600 for code in codes):
            raise PermanentError(f"all {len(codes)} recipient(s) refused by the server") from None
        raise
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            raise PermanentError(f"the SMTP server refused: {exc.smtp_code}") from None
        raise
    ctx.logger.info("sent %s to %d recipient(s)", msg["Message-ID"], len(recipients) - len(refused))
    result: dict[str, Any] = {"messageId": str(msg["Message-ID"])}
    if refused:
        result["refused"] = len(refused)
    return result
