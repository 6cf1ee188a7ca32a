"""Refresh tokens sealed with the configured secret, so a copied database grants nothing.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with a key derived from the secret
by PBKDF2-HMAC-SHA256 and a random salt per grant. The sealed text names its method,
iteration count and salt, so they can change later without breaking stored grants.
"""

from __future__ import annotations

import base64
import functools
import os

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

__all__ = ["ITERATIONS", "salt_of", "seal", "unseal"]

ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256; about 0.2 s here, once per grant
_METHOD = "pbkdf2-sha256"


@functools.lru_cache(maxsize=64)
def _key(secret: str, salt: bytes, iterations: int) -> bytes:
    """The Fernet key for secret and salt (derived once per process: it is slow on purpose)."""
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    return base64.urlsafe_b64encode(kdf.derive(secret.encode()))


def seal(secret: str, plaintext: str, salt: bytes | None = None) -> str:
    """plaintext encrypted with a key from secret; the salt is new unless given (a rotation)."""
    salt = salt if salt is not None else os.urandom(16)
    token = Fernet(_key(secret, salt, ITERATIONS)).encrypt(plaintext.encode())
    return f"{_METHOD}${ITERATIONS}${base64.urlsafe_b64encode(salt).decode()}${token.decode()}"


def salt_of(sealed: str) -> bytes:
    """The salt a sealed text was made with (reused when its grant's token rotates)."""
    return base64.urlsafe_b64decode(sealed.split("$")[2])


def unseal(secret: str, sealed: str) -> str:
    """The plaintext, or ValueError when the secret is not the one it was sealed with.

    >>> box = seal("s3cret", "refresh-me")
    >>> "refresh-me" in box, unseal("s3cret", box)
    (False, 'refresh-me')
    >>> unseal("other", box)
    Traceback (most recent call last):
    ...
    ValueError: sealed with another secret, or damaged
    """
    try:
        method, iterations, salt, token = sealed.split("$")
        if method != _METHOD:
            raise ValueError(f"unknown sealing method {method!r}")
        key = _key(secret, base64.urlsafe_b64decode(salt), int(iterations))
        return Fernet(key).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError) as exc:
        if isinstance(exc, ValueError) and "unknown sealing" in str(exc):
            raise
        raise ValueError("sealed with another secret, or damaged") from None
