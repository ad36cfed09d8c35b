"""The service's own signing keys: a private JWK set on disk, the first key signs, all verify.

Rotation without downtime: `wg-api keys rotate` puts a new key first; tokens signed by the older
keys keep verifying until they expire, after which the old key can be dropped.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey

SIGNING_ALGORITHM = "RS256"


def _new_key() -> RSAKey:
    kid = uuid.uuid4().hex[:16]
    return RSAKey.generate_key(
        2048, parameters={"kid": kid, "use": "sig", "alg": SIGNING_ALGORITHM}, private=True
    )


def _write_atomically(path: Path, data: dict[str, Any], *, exclusive: bool) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    if exclusive:
        try:
            os.link(tmp, path)  # fails if another process created the file first
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True
    os.replace(tmp, path)
    return True


class SigningKeys:
    def __init__(self, key_set: KeySet) -> None:
        if not key_set.keys:
            raise ValueError("the signing key set is empty")
        self.key_set = key_set
        self.active = key_set.keys[0]

    @property
    def active_kid(self) -> str:
        kid = self.active.kid
        assert kid is not None
        return kid

    def secrets(self) -> list[bytes]:
        """Each key's private material, active key first: what other keys of the service (the
        cursor cipher's) are derived from, so they rotate with these."""
        return [
            json.dumps(key.as_dict(private=True), sort_keys=True).encode()
            for key in self.key_set.keys
        ]

    def public_jwks(self) -> dict[str, Any]:
        return dict(self.key_set.as_dict(private=False))

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKeys:
        if not path.exists():
            _write_atomically(
                path, dict(KeySet([_new_key()]).as_dict(private=True)), exclusive=True
            )
        return cls(KeySet.import_key_set(json.loads(path.read_text())))

    @classmethod
    def rotate(cls, path: Path, keep: int = 2) -> SigningKeys:
        """Put a new key first and keep the `keep` newest older ones for verification."""
        current = cls.load_or_create(path)
        keys = [_new_key(), *current.key_set.keys[:keep]]
        key_set = KeySet(keys)
        _write_atomically(path, dict(key_set.as_dict(private=True)), exclusive=False)
        return cls(key_set)
