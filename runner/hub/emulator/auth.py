"""Who is calling. A token shaped as a Hub user access token (`hf_` and 8 or more letters
or digits) is the one emulated user; it may write unless it starts with `hf_readonly`, which
is a read token (whoami says role "read", writes get the Hub's 403). No token is anonymous
(reads of public repos); anything else is refused, as the Hub refuses it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from runner.hub.emulator.blobs import now_iso
from runner.hub.emulator.errors import Forbidden, Unauthorized
from runner.hub.redact import is_user_token

USER = "ainative"
ORGS = ("demo-org", "ainative-labs")
# The real Hub's messages (X-Error-Message and the JSON `error`): huggingface_hub reports the
# first as a bad token, never as a missing repo; the second is its answer to no token at all.
_INVALID = "Invalid credentials in Authorization header"
_ANONYMOUS = "Invalid username or password."
# Refused although well shaped, so that a client's handling of a bad token can be tested.
_REFUSED_PREFIX = "hf_invalid"
# A well-shaped token with this prefix is a read token of the emulated user.
READ_ONLY_PREFIX = "hf_readonly"


@dataclass(frozen=True, slots=True)
class Identity:
    name: str = USER
    role: str = "write"  # the token's: "read" or "write"


def caller(request: Request) -> Identity | None:
    """FastAPI dependency: the emulated user, None when no token was sent, or 401."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not accepted(token):
        raise Unauthorized(_INVALID)
    return Identity(role="read" if token.startswith(READ_ONLY_PREFIX) else "write")


def accepted(token: str) -> bool:
    return is_user_token(token) and not token.startswith(_REFUSED_PREFIX)


def require_user(identity: Identity | None) -> Identity:
    if identity is None:
        raise Unauthorized(_ANONYMOUS)
    return identity


def check_namespace(identity: Identity, namespace: str, what: str = "write to") -> None:
    if identity.role == "read":
        raise Forbidden(
            f"You don't have the rights to {what} {namespace!r}: this is a read token; "
            "writing needs a token with the write role"
        )
    # Namespaces are case-insensitive on the Hub, like the repo ids they begin.
    if namespace.lower() not in (n.lower() for n in (identity.name, *ORGS)):
        raise Forbidden(
            f"You don't have the rights to {what} {namespace!r}: the emulated user "
            f"{identity.name!r} can write to {identity.name!r} and the orgs {', '.join(ORGS)}"
        )


def whoami_payload(identity: Identity) -> dict[str, Any]:
    return {
        "type": "user",
        "id": "000000000000000000000001",
        "name": identity.name,
        "fullname": "AINative (Hub emulator)",
        "email": f"{identity.name}@example.invalid",
        "emailVerified": True,
        "canPay": False,
        "isPro": False,
        "periodEnd": None,
        "avatarUrl": "",
        "orgs": [
            {
                "type": "org",
                "id": f"00000000000000000000010{i}",
                "name": org,
                "fullname": org,
                "email": None,
                "canPay": False,
                "periodEnd": None,
                "avatarUrl": "",
                "roleInOrg": "admin",
                "isEnterprise": False,
            }
            for i, org in enumerate(ORGS)
        ],
        "auth": {
            "type": "access_token",
            "accessToken": {
                "displayName": "emulator",
                "role": identity.role,
                "createdAt": now_iso(),
            },
        },
    }
