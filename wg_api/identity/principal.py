"""Who is calling: the authenticated principal every guard and service sees."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID
    type: Literal["client", "user"]
    id: uuid.UUID
    name: str
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    token_id: str = ""

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def idempotency_scope(self) -> str:
        """Whose Idempotency-Keys these are: this caller, with exactly these powers."""
        return f"{self.type}:{self.id}:{self.role}:{' '.join(sorted(self.scopes))}"
