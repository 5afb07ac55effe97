"""The optional webhook that hears every channel move: one JSON POST per move to
CHANNEL_WEBHOOK_URL, signed like GitHub signs its webhooks when CHANNEL_WEBHOOK_SECRET is set.
The URL is a secret (a Slack-style URL carries its token in the path): it is never shown."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from runner.errors import InputError, RunnerError
from runner.hub.redact import redact, register_secret

URL_ENV = "CHANNEL_WEBHOOK_URL"
SECRET_ENV = "CHANNEL_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Adapter-GitOps-Signature-256"
USER_AGENT = "adapter-gitops-runner"
SHOWN = f"the webhook ({URL_ENV})"  # what messages say instead of the URL
TIMEOUT_S = 10
DEADLINE_S = 60.0
BACKOFF_S = 1.0


class WebhookError(RunnerError):
    """The webhook did not take a payload; its URL never appears in it."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a hop: the signed payload goes to the URL set, only."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Webhook:
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Webhook | None:
        """The webhook the job's secrets set; None when CHANNEL_WEBHOOK_URL is unset or empty
        (a workflow passes an unset secret as an empty string)."""
        url = env.get(URL_ENV, "").strip()
        if not url:
            return None
        register_secret(url)
        secret = env.get(SECRET_ENV) or None
        register_secret(secret)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(
                f"{SHOWN} is not an http(s) URL; set that secret to the receiver's https:// address"
            )
        return cls(url, secret)

    def send(self, payload: dict[str, Any]) -> str:
        """POST `payload`; retried with backoff on connection errors, 5xx and 429 for up to
        DEADLINE_S seconds. Returns what was done."""
        body = json.dumps(payload, sort_keys=True).encode()
        deadline = time.monotonic() + DEADLINE_S
        attempt = 0
        while (problem := self._attempt(body)) is not None:
            wait = BACKOFF_S * 2**attempt
            if time.monotonic() + wait > deadline:
                raise WebhookError(
                    f"{SHOWN} {problem}, {attempt + 1} tries in {DEADLINE_S:.0f} s; check the "
                    "receiver, then run the job again (a receiver tells a repeated move by "
                    "its `id`)"
                )
            time.sleep(wait)
            attempt += 1
        return "webhook delivered"

    def _attempt(self, body: bytes) -> str | None:
        """None when the receiver took `body`; what went wrong when it is worth a retry."""
        try:
            with _OPENER.open(self._request(body), timeout=TIMEOUT_S) as response:
                response.read()
            return None
        except urllib.error.HTTPError as error:
            if error.code == 429 or error.code >= 500:
                return f"answered {error.code}"
            raise WebhookError(
                f"{SHOWN} answered {error.code}; check that secret and the receiver"
            ) from None
        except OSError as error:  # refused, reset, timed out, DNS: URLError is one too
            return redact(f"could not be reached ({getattr(error, 'reason', error)})")

    def _request(self, body: bytes) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        return urllib.request.Request(self.url, data=body, method="POST", headers=headers)
