"""Signing keys: Ed25519 key pairs for signed checkpoints, and the error of this package.

``cryptography`` is imported only inside these functions (the ``crypto`` extra), so the core of the
library works without it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import TYPE_CHECKING, Any

from .._errors import MediationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "CheckpointError",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
]


class CheckpointError(MediationError):
    """A key or checkpoint file cannot be used (unreadable, malformed, wrong kind of key), or
    ``cryptography`` is not installed.  ``line`` names the offending line of a file, if any."""

    def __init__(self, message: str, *, line: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.line = line


def _crypto() -> None:
    """Fail with a clear message when the ``crypto`` extra is missing."""
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise CheckpointError(
            "signed checkpoints need the 'cryptography' package: pip install 'mediation[crypto]'",
            message_zh="签名检查点需要 cryptography 包：pip install 'mediation[crypto]'",
        ) from exc


def _passphrase(passphrase: bytes | None) -> bytes | None:
    if passphrase is not None:
        return passphrase
    env = os.environ.get("MEDIATION_KEY_PASSPHRASE")
    return env.encode() if env else None


def generate_key(passphrase: bytes | None = None) -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as ``(private PEM, public PEM)``.

    The private key is PKCS#8, encrypted with ``passphrase`` (or ``$MEDIATION_KEY_PASSPHRASE``)
    when one is given; the public key is SubjectPublicKeyInfo PEM.
    """
    _crypto()
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    secret = _passphrase(passphrase)
    encryption: Any = ser.BestAvailableEncryption(secret) if secret else ser.NoEncryption()
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, encryption)
    public = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    return bytes(private), bytes(public)


def load_private_key(data: bytes, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8)."""
    _crypto()
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = ser.load_pem_private_key(data, password=_passphrase(passphrase))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(
            f"not a usable PEM private key: {exc}", message_zh="不是可用的 PEM 私钥"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(
            f"the private key is {type(key).__name__}, not Ed25519",
            message_zh="私钥不是 Ed25519 密钥",
        )
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, or from its 32 raw bytes written as hex or base64."""
    _crypto()
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        if b"PRIVATE KEY" in text.split(b"\n", 1)[0]:
            raise CheckpointError(
                "this is a private key; verify with the public key (the .pub file)",
                message_zh="这是私钥；请使用公钥（.pub 文件）验证",
            )
        try:
            key = ser.load_pem_public_key(text)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(
                f"not a usable PEM public key: {exc}", message_zh="不是可用的 PEM 公钥"
            ) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise CheckpointError(
                f"the public key is {type(key).__name__}, not Ed25519",
                message_zh="公钥不是 Ed25519 密钥",
            )
        return key
    raw: bytes | None = None
    try:
        raw = bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        raise CheckpointError(
            "not an Ed25519 public key (expected PEM, or 32 bytes as hex or base64)",
            message_zh="不是 Ed25519 公钥（应为 PEM，或 32 字节的十六进制/base64）",
        )
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise CheckpointError(f"not an Ed25519 public key: {exc}") from exc


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's fingerprint: hex SHA-256 of its 32 raw bytes (recorded in every checkpoint)."""
    from cryptography.hazmat.primitives import serialization as ser

    raw = public_key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()
