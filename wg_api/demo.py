"""`wg-api demo`: a seeded, fictional data set so the API has something to show.

Idempotent: tenants are created once; each run issues fresh demo clients (revoking the previous
ones) because a secret can only be shown when it is made.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from wg_api.identity import repository, service
from wg_api.identity.models import api_clients
from wg_api.platform.database import Database
from wg_api.settings import Settings

DEMO_TENANTS: list[dict[str, str]] = [
    {
        "slug": "bridgeway",
        "name": "Bridgeway Collective",
        "kind": "facilitator",
        "timezone": "Asia/Hong_Kong",
    },
    {
        "slug": "northwind-apparel",
        "name": "Northwind Apparel",
        "kind": "brand",
        "timezone": "Europe/Stockholm",
    },
    {"slug": "lumen-toys", "name": "Lumen Toys", "kind": "brand", "timezone": "Europe/Berlin"},
    {
        "slug": "harbor-home",
        "name": "Harbor Home Goods",
        "kind": "brand",
        "timezone": "America/New_York",
    },
    {
        "slug": "kestrel-outdoor",
        "name": "Kestrel Outdoor",
        "kind": "brand",
        "timezone": "Europe/London",
    },
]

DEMO_CLIENT_NAME = "demo"


async def seed_demo(database: Database, settings: Settings) -> dict[str, Any]:
    tenants_out: list[dict[str, Any]] = []
    async with database.system_transaction() as session:
        for spec in DEMO_TENANTS:
            row = await repository.tenant_by_slug(session, spec["slug"])
            tenant = dict(row._mapping) if row else await service.create_tenant(session, **spec)
            await session.execute(
                sa.update(api_clients)
                .where(
                    api_clients.c.tenant_id == tenant["id"],
                    api_clients.c.name == DEMO_CLIENT_NAME,
                    api_clients.c.revoked_at.is_(None),
                )
                .values(revoked_at=sa.func.now())
            )
            client = await service.create_client(
                session, tenant_id=tenant["id"], name=DEMO_CLIENT_NAME, role="admin", scopes=None
            )
            tenants_out.append(
                {
                    "tenant": {k: tenant[k] for k in ("id", "slug", "name", "kind")},
                    "client_id": client.client_id,
                    "client_secret": client.client_secret,
                    "get_token": (
                        f"curl -s -u {client.client_id}:{client.client_secret} "
                        f"-d grant_type=client_credentials {settings.public_url}/oauth/token"
                    ),
                }
            )
    return {"tenants": tenants_out}
