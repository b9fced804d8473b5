"""Webhook secrets at rest: sealed with AES-256-GCM under `WEBHOOK_SECRETS_KEY` when one is
configured, so a copy of the database alone does not let anyone sign as the dealer or as
its ERP. Without a key they are stored as they are (development)."""

import base64
import binascii
import os
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from shared.service import Runtime

SEALED = "aesgcm:"
KEY_INFO = "webhook_secrets_key"


class SecretsKeyError(RuntimeError):
    """The configured key is unusable, or a sealed secret cannot be opened with it."""


def parse_key(value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretsKeyError("WEBHOOK_SECRETS_KEY is not base64") from exc
    if len(key) != 32:
        raise SecretsKeyError("WEBHOOK_SECRETS_KEY must be 32 bytes (base64 of 32 random bytes)")
    return key


def seal(secret: str, key: bytes | None) -> str:
    if key is None:
        return secret
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), SEALED.encode())
    return SEALED + base64.b64encode(nonce + sealed).decode()


def unseal(stored: str, key: bytes | None) -> str:
    if not stored.startswith(SEALED):
        return stored  # stored before a key was configured
    if key is None:
        raise SecretsKeyError("a webhook secret is sealed but WEBHOOK_SECRETS_KEY is not set")
    raw = base64.b64decode(stored[len(SEALED) :])
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], SEALED.encode()).decode()
    except InvalidTag as exc:
        raise SecretsKeyError("a webhook secret does not open with WEBHOOK_SECRETS_KEY") from exc


def key_of(session: Any) -> bytes | None:
    """The key for this session's service (set on its sessions at start-up)."""
    key: bytes | None = session.info.get(KEY_INFO)
    return key


async def install_key(runtime: "Runtime") -> None:
    """Start-up step: check the configured key and hand it to every session."""
    value = getattr(runtime.settings, "webhook_secrets_key", None)
    key = parse_key(value) if value else None
    runtime.db.sessionmaker.kw.setdefault("info", {})[KEY_INFO] = key
