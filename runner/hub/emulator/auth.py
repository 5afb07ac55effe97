"""Who is calling, and may they. Tokens and users live in `accounts.py`: a registered token is
its user's; any other token shaped as a Hub user access token (`hf_` and 8 or more letters or
digits) is the default user's. No token is anonymous (reads of public repos); anything else is
refused, as the Hub refuses it."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request

from runner.hub.emulator.accounts import Accounts, Identity, default_identity
from runner.hub.emulator.blobs import now_iso
from runner.hub.emulator.errors import Forbidden, Unauthorized
from runner.hub.redact import is_user_token

__all__ = ["Identity", "caller", "check_namespace", "object_id", "require_user", "whoami_payload"]

# The real Hub's messages (X-Error-Message and the JSON `error`): huggingface_hub reports the
# first as a bad token, never as a missing repo; the second is its answer to no token at all.
_INVALID = "Invalid credentials in Authorization header"
_ANONYMOUS = "Invalid username or password."
# Refused although well shaped, so that a client's handling of a bad token can be tested.
_REFUSED_PREFIX = "hf_invalid"


def caller(request: Request) -> Identity | None:
    """FastAPI dependency: the token's identity, None when no token was sent, or 401."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise Unauthorized(_INVALID)
    registered = request.app.state.ctx.accounts.identity(token)
    if registered is not None:
        return registered
    if not accepted(token):
        raise Unauthorized(_INVALID)
    return default_identity(token)


def accepted(token: str) -> bool:
    return is_user_token(token) and not token.startswith(_REFUSED_PREFIX)


def require_user(identity: Identity | None) -> Identity:
    if identity is None:
        raise Unauthorized(_ANONYMOUS)
    return identity


def check_namespace(identity: Identity, namespace: str, what: str = "write to") -> None:
    refusal = identity.write_refusal(namespace)
    if refusal is not None:
        raise Forbidden(f"You don't have the rights to {what} {namespace!r}: {refusal}")


def whoami_payload(identity: Identity, accounts: Accounts) -> dict[str, Any]:
    access_token: dict[str, Any] = {
        "displayName": "emulator",
        "role": identity.role,
        "createdAt": now_iso(),
    }
    if identity.role == "fineGrained":
        access_token["fineGrained"] = {
            "canReadGatedRepos": identity.can_read_gated_repos,
            "global": [],
            "scoped": [
                {"entity": _entity(identity, name), "permissions": sorted(perms)}
                for name, perms in identity.scopes.items()
            ],
        }
    return {
        "type": "user",
        "id": object_id(identity.name),
        "name": identity.name,
        "fullname": identity.fullname,
        "email": f"{identity.name}@example.invalid",
        "emailVerified": True,
        "canPay": False,
        "isPro": False,
        "periodEnd": None,
        "avatarUrl": "",
        "orgs": [
            {
                "type": "org",
                "id": object_id(org),
                "name": org,
                "fullname": accounts.org(org).fullname or org,
                "email": None,
                "canPay": False,
                "periodEnd": None,
                "avatarUrl": "",
                "roleInOrg": role,
                "isEnterprise": False,
            }
            for org, role in identity.orgs.items()
        ],
        "auth": {"type": "access_token", "accessToken": access_token},
    }


def _entity(identity: Identity, name: str) -> dict[str, str]:
    kind = "user" if name.lower() == identity.name.lower() else "org"
    return {"_id": object_id(name), "type": kind, "name": name}


def object_id(name: str) -> str:
    """A stable 24-hex id per name, shaped like the Hub's object ids."""
    return hashlib.sha1(name.encode()).hexdigest()[:24]
