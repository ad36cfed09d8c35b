"""A secret is shown once: an Idempotency-Key replay never carries it, and it is not stored."""

import sqlalchemy as sa

from tests.conftest import superuser_transaction


async def test_replayed_client_creation_does_not_carry_or_store_the_secret(
    client, make_tenant, database
):
    tenant = await make_tenant()
    headers = {**await tenant.headers(), "Idempotency-Key": "create-sync-client"}
    body = {"name": "sync", "role": "viewer"}

    first = await client.post("/v1/api-clients", json=body, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["client_secret"]
    assert secret.startswith("wgs_")

    replay = await client.post("/v1/api-clients", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["client_secret"] is None
    assert replay.json()["client_id"] == first.json()["client_id"]

    async with superuser_transaction(database) as session:
        stored = await session.scalar(
            sa.text("SELECT body FROM idempotency_keys WHERE tenant_id = :t"),
            {"t": tenant.id},
        )
    assert stored is not None
    assert secret.encode() not in bytes(stored)
