"""The emulated Hub's users, organisations and tokens.

Out of the box there is one user, `ainative`, admin of two orgs, and any well-shaped token is
theirs (write; read when it starts with `hf_readonly`), so that a test or the demo needs no
set-up. More users and tokens (read, write, or fine-grained with scopes per user or org, as
the Hub's token settings page makes them) are registered through `/_emulator/accounts` or an
`accounts.json` in the data directory; a registered token is checked exactly, never by shape.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

DEFAULT_USER = "ainative"
DEFAULT_ORGS = ("demo-org", "ainative-labs")
# A well-shaped but unregistered token with this prefix is a read token of the default user.
READ_ONLY_PREFIX = "hf_readonly"

TokenRole = Literal["read", "write", "fineGrained"]
OrgRole = Literal["read", "contributor", "write", "admin"]
# The org roles that may push to an org's repos (the Hub's "contributor" may create repos and
# push to those; the emulator does not track who made a repo, so it counts as writing).
WRITING_ORG_ROLES = frozenset({"contributor", "write", "admin"})
# Fine-grained permission names, as the Hub's whoami lists them.
WRITE_PERMISSION = "repo.write"
READ_PERMISSIONS = frozenset({"repo.content.read", WRITE_PERMISSION})
_FILE = "accounts.json"


class ScopeSpec(BaseModel):
    entity: str  # a user or org name
    permissions: list[str]


class TokenSpec(BaseModel):
    token: str = Field(min_length=8)
    user: str
    role: TokenRole = "write"
    scopes: list[ScopeSpec] = []
    # fine-grained tokens only: the "read gated repos you were granted" box of the Hub's form
    can_read_gated_repos: bool = False


class UserSpec(BaseModel):
    name: str = Field(min_length=1)
    fullname: str | None = None
    orgs: dict[str, OrgRole] = {}


class OrgSpec(BaseModel):
    name: str = Field(min_length=1)
    fullname: str | None = None
    # An Enterprise org's setting: a repo created without a visibility is private.
    private_by_default: bool = False


class AccountsSpec(BaseModel):
    """The body of `POST /_emulator/accounts` and the shape of `accounts.json`."""

    users: list[UserSpec] = []
    tokens: list[TokenSpec] = []
    orgs: list[OrgSpec] = []


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from: the token's user and what the token may do."""

    name: str = DEFAULT_USER
    role: TokenRole = "write"
    fullname: str = "AINative (Hub emulator)"
    orgs: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(DEFAULT_ORGS, "admin"))
    # fine-grained tokens only: entity (a user or org name) -> permissions
    scopes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Classic tokens read every gated repo their user was granted; fine-grained ones only
    # when they were made with that permission.
    can_read_gated_repos: bool = True

    def may_read(self, namespace: str) -> bool:
        """Private repos of `namespace`: its user and its orgs' members (any role)."""
        key = namespace.lower()
        if self.role == "fineGrained":
            return bool(self.permissions(namespace) & READ_PERMISSIONS)
        return key == self.name.lower() or key in _lowered(self.orgs)

    def permissions(self, namespace: str) -> frozenset[str]:
        """A fine-grained token's permissions on a namespace (names are case-insensitive)."""
        key = namespace.lower()
        return next((p for name, p in self.scopes.items() if name.lower() == key), frozenset())

    def write_refusal(self, namespace: str) -> str | None:
        """Why this token may not write to `namespace`, or None when it may."""
        key = namespace.lower()
        if self.role == "read":
            return "this is a read token; writing needs a token with the write role"
        if self.role == "fineGrained":
            if WRITE_PERMISSION in self.permissions(namespace):
                return None
            return f"this fine-grained token may not {WRITE_PERMISSION!r} on {namespace!r}"
        if key == self.name.lower() or _lowered(self.orgs).get(key) in WRITING_ORG_ROLES:
            return None
        writable = [self.name, *(o for o, r in self.orgs.items() if r in WRITING_ORG_ROLES)]
        return f"the user {self.name!r} can write to {', '.join(map(repr, writable))}"


def _lowered(orgs: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): role for name, role in orgs.items()}


class Accounts:
    """The registry: thread-safe, persisted next to the emulator's repos."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / _FILE
        self._lock = threading.Lock()
        self._users: dict[str, UserSpec] = {}
        self._tokens: dict[str, TokenSpec] = {}
        self._orgs: dict[str, OrgSpec] = {}
        if self._path.is_file():
            self._merge(AccountsSpec.model_validate_json(self._path.read_bytes()))

    def add(self, spec: AccountsSpec) -> None:
        """Register users and tokens; a token naming an unknown user is refused."""
        with self._lock:
            known = {*self._users, *(u.name for u in spec.users), DEFAULT_USER}
            unknown = sorted({t.user for t in spec.tokens} - known)
            if unknown:
                raise ValueError(f"tokens name unknown users: {', '.join(unknown)}")
            self._merge(spec)
            self._save()

    def identity(self, token: str) -> Identity | None:
        """The registered token's identity, or None when the token is not registered."""
        with self._lock:
            spec = self._tokens.get(token)
            if spec is None:
                return None
            user = self._users.get(spec.user)
        gated = spec.role != "fineGrained" or spec.can_read_gated_repos
        if user is None:  # a token of the default user
            return Identity(role=spec.role, scopes=_scopes(spec), can_read_gated_repos=gated)
        return Identity(
            name=user.name,
            role=spec.role,
            fullname=user.fullname or user.name,
            orgs=dict(user.orgs),
            scopes=_scopes(spec),
            can_read_gated_repos=gated,
        )

    def fullname(self, name: str) -> str | None:
        """A known user's full name (their name when they have none), None for a stranger."""
        if name == DEFAULT_USER:
            return Identity().fullname
        with self._lock:
            user = self._users.get(name)
        return None if user is None else user.fullname or user.name

    def org(self, name: str) -> OrgSpec:
        """An org's settings (names are case-insensitive); the defaults for an unregistered one."""
        with self._lock:
            found = next((o for o in self._orgs.values() if o.name.lower() == name.lower()), None)
        return found or OrgSpec(name=name)

    def _merge(self, spec: AccountsSpec) -> None:
        self._users.update((u.name, u) for u in spec.users)
        self._tokens.update((t.token, t) for t in spec.tokens)
        self._orgs.update((o.name, o) for o in spec.orgs)

    def _save(self) -> None:
        spec = AccountsSpec(
            users=list(self._users.values()),
            tokens=list(self._tokens.values()),
            orgs=list(self._orgs.values()),
        )
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._path.write_text(json.dumps(spec.model_dump(), indent=2) + "\n")


def _scopes(spec: TokenSpec) -> dict[str, frozenset[str]]:
    return {s.entity: frozenset(s.permissions) for s in spec.scopes}


def default_identity(token: str) -> Identity:
    """An unregistered well-shaped token: the default user's (read with the read prefix)."""
    return Identity(role="read" if token.startswith(READ_ONLY_PREFIX) else "write")
