"""Who is calling. Any bearer token is the one emulated user; no token is anonymous."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from runner.hub.emulator.blobs import now_iso
from runner.hub.emulator.errors import Forbidden, Unauthorized

USER = "ainative"
ORGS = ("demo-org", "ainative-labs")
_INVALID = "Invalid credentials in Authorization header"


@dataclass(frozen=True, slots=True)
class Identity:
    name: str = USER


def caller(request: Request) -> Identity | None:
    """FastAPI dependency. Tokens named `invalid` or starting with `hf_invalid` are rejected,
    so a client's handling of a bad token can be tested too."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or token == "invalid":
        raise Unauthorized(_INVALID)
    if token.startswith("hf_invalid"):
        raise Unauthorized(_INVALID)
    return Identity()


def require_user(identity: Identity | None) -> Identity:
    if identity is None:
        raise Unauthorized(
            "You must be authenticated to do this: send `Authorization: Bearer <token>`"
        )
    return identity


def check_namespace(identity: Identity, namespace: str, what: str = "write to") -> None:
    if namespace not in (identity.name, *ORGS):
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
            "accessToken": {"displayName": "emulator", "role": "write", "createdAt": now_iso()},
        },
    }
