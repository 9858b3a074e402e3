"""API keys: creation, listing, revocation and verification.

A key reads `fdk_<id>_<secret>`. The id is public (it is how a key is found);
the secret is 32 random bytes, kept only as a salted scrypt hash and compared
in constant time. Nothing here knows about gRPC.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowdeck.server import pagination
from flowdeck.core.errors import (AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError,
                                  invalid_field)
from flowdeck.server.models import ApiKeyRow, utcnow

# What each scope allows, smallest first. "agent" is read plus the agent's
# own calls; "admin" is write plus key management.
SCOPES = ("read", "write", "agent", "admin")
PREFIX = "fdk_"
KEY_RE = re.compile(r"^fdk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
MAX_NAME = 200
# scrypt cost: about 16 MiB and tens of milliseconds per verification; the auth
# layer remembers successful verifications so a key pays it once per process.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
CREATED_BY_SERVER = "server create-admin-key"


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """What the server knows about a key, without the secret."""

    id: str
    name: str
    scope: str
    secret_hash: str
    revoked: bool


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time comparison of `secret` against a stored hash."""
    try:
        algo, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if algo != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        got = hashlib.scrypt(secret.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def parse(key: str) -> tuple[str, str] | None:
    """(id, whole key) of a well-formed key, else None."""
    m = KEY_RE.match(key or "")
    return (m.group(1), key) if m else None


def check_scope(scope: str, path: str = "scope") -> str:
    value = (scope or "").strip().lower()
    if value not in SCOPES:
        raise invalid_field(path, scope, f"must be one of {', '.join(SCOPES)}")
    return value


def check_name(name: str, path: str = "name") -> str:
    if not name or not name.strip():
        raise invalid_field(path, name, "is required")
    if len(name) > MAX_NAME:
        raise invalid_field(path, name, f"must be at most {MAX_NAME} characters")
    if any(ord(ch) < 32 for ch in name):
        raise invalid_field(path, name, "must not contain control characters")
    if KEY_RE.match(name) or name.startswith(PREFIX):
        raise invalid_field(path, name[:8] + "...", f"must not start with {PREFIX!r} (a name is not a key)")
    return name


def new_key() -> tuple[str, str]:
    """A fresh (id, key). The key is the only place the secret ever appears."""
    key_id = secrets.token_hex(8)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def create(s: Session, name: str, scope: str, created_by: str = "") -> tuple[ApiKeyRow, str]:
    """A new key; returns (row, key). The caller shows the key once."""
    name = check_name(name)
    scope = check_scope(scope)
    if s.scalar(select(ApiKeyRow.id).where(ApiKeyRow.name == name, ApiKeyRow.revoked.is_(None))):
        raise AlreadyExistsError(f"an API key named {name!r} already exists (revoke it first)",
                            reason="API_KEY_EXISTS", name=name)
    key_id, key = new_key()
    row = ApiKeyRow(id=key_id, name=name, scope=scope, secret_hash=hash_secret(key),
                    created_by=created_by[:200], created=utcnow(), revoked=None)
    s.add(row)
    try:
        s.flush()
    except IntegrityError:
        raise AlreadyExistsError(f"an API key named {name!r} already exists (revoke it first)",
                            reason="API_KEY_EXISTS", name=name) from None
    return row, key


_NEWEST_FIRST = pagination.Order(pagination.Key(ApiKeyRow.created, "created", descending=True),
                                 pagination.Key(ApiKeyRow.id, "id"))


def list_(s: Session, page_size: int, page_token: str, show_revoked: bool = False) -> tuple[list[ApiKeyRow], str]:
    stmt = select(ApiKeyRow)
    if not show_revoked:
        stmt = stmt.where(ApiKeyRow.revoked.is_(None))
    return pagination.paginate(s, stmt, _NEWEST_FIRST, page_size, page_token, listing="api_keys",
                               filter_=show_revoked, scalars=True)


def revoke(s: Session, name_or_id: str, *, force: bool = False) -> ApiKeyRow:
    """Revoke the active key with this name (or id). Revoking twice is NOT_FOUND;
    revoking the last active admin key needs `force`."""
    if not name_or_id:
        raise invalid_field("name", name_or_id, "is required")
    if len(name_or_id) > MAX_NAME:
        raise invalid_field("name", name_or_id, f"must be at most {MAX_NAME} characters")
    row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name_or_id, ApiKeyRow.revoked.is_(None)))
    if row is None:
        row = s.get(ApiKeyRow, name_or_id)
        if row is not None and row.revoked is not None:
            raise NotFoundError(f"API key {name_or_id!r} is already revoked", reason="API_KEY_ALREADY_REVOKED",
                                name=name_or_id)
    if row is None:
        raise NotFoundError(f"no API key named {name_or_id!r}", reason="API_KEY_NOT_FOUND", name=name_or_id)
    if row.scope == "admin" and not force and not _other_admins(s, row.id):
        raise FailedPreconditionError(
            f"API key {row.name!r} is the last active admin key: without one nobody can create or revoke keys "
            "through the API (only `flowdeck server create-admin-key` on the server's database); "
            "revoke it anyway with --force", reason="LAST_ADMIN_KEY", name=row.name)
    row.revoked = utcnow()
    s.flush()
    return row


def _other_admins(s: Session, key_id: str) -> int:
    """Active admin keys besides `key_id`. On Postgres their rows are locked, so
    two revokes at once cannot both take one of the last two."""
    stmt = select(ApiKeyRow.id).where(ApiKeyRow.scope == "admin", ApiKeyRow.revoked.is_(None),
                                      ApiKeyRow.id != key_id)
    if s.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return len(s.scalars(stmt).all())


def get(s: Session, key_id: str) -> ApiKeyRow:
    row = s.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFoundError(f"no API key with id {key_id!r}", reason="API_KEY_NOT_FOUND", name=key_id)
    return row


def lookup(s: Session, key_id: str) -> KeyInfo | None:
    row = s.get(ApiKeyRow, key_id)
    if row is None:
        return None
    return KeyInfo(id=row.id, name=row.name, scope=row.scope, secret_hash=row.secret_hash,
                   revoked=row.revoked is not None)
