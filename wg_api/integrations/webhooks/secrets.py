"""Endpoint signing secrets: made here, shown once, stored sealed.

A secret is `whsec_` and 32 random bytes in base64 (what Standard Webhooks libraries take). It is
stored sealed with AES-256-GCM under a key derived (HKDF) from the service's signing keys, bound to
its endpoint, so a database dump alone does not sign deliveries, and a sealed secret copied to
another endpoint does not open. The worker opens it with the same keys; a rotation of the signing
keys keeps the older key for opening.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
_SECRET_BYTES = 32
_NONCE_BYTES = 12


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(_SECRET_BYTES)).decode("ascii")


class SecretUnreadable(Exception):
    """No key of the service opens the sealed secret (its signing key is gone)."""


class SecretBox:
    """Seals and opens endpoint secrets; the first key seals, every key opens."""

    def __init__(self, key_material: Sequence[bytes]) -> None:
        if not key_material:
            raise ValueError("sealing secrets needs at least one key")
        self._keys = [
            AESGCM(
                HKDF(
                    algorithm=hashes.SHA256(),
                    length=32,
                    salt=None,
                    info=b"wg-api webhook secrets v1",
                ).derive(material)
            )
            for material in key_material
        ]

    def seal(self, secret: str, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        context = f"{tenant_id}:{endpoint_id}".encode()
        return nonce + self._keys[0].encrypt(nonce, secret.encode("ascii"), context)

    def open(self, sealed: bytes, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> str:
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        context = f"{tenant_id}:{endpoint_id}".encode()
        for key in self._keys:
            try:
                return key.decrypt(nonce, body, context).decode("ascii")
            except (InvalidTag, ValueError):
                continue
        raise SecretUnreadable("no signing key of the service opens this endpoint's secret")
