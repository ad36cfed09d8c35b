"""`wg-api worker` delivers webhooks (signed), and a worker killed in the middle of a delivery loses
nothing: the delivery is made again, with the same webhook-id, once its lease runs out."""

from __future__ import annotations

import os
import threading

import pytest
from standardwebhooks import Webhook

from tests.integrations.conftest import (
    Answer,
    create_endpoint,
    deliveries,
    dispatcher_for,
    emit,
    eventually,
    quick_settings,
    running,
)
from tests.platform.test_jobs import WorkerProcess

pytestmark = pytest.mark.usefixtures("quiet_endpoints")


async def test_a_worker_killed_mid_delivery_leaves_it_to_be_retried_with_the_same_id(
    make_tenant, receiver, database, settings, admin_url
):
    tenant = await make_tenant()
    endpoint = await create_endpoint(
        tenant, receiver.url("/killed"), event_types=["finding.created"]
    )
    hold = threading.Event()
    receiver.plan("/killed", Answer(200, hold=hold), Answer(200))
    (event_id,) = await emit(database, tenant.id)
    env = {
        **os.environ,
        "DATABASE_URL": admin_url.render_as_string(hide_password=False),
        "WG_DATA_DIR": str(settings.data_dir),
        "WG_SIGNING_KEY_FILE": str(settings.key_file),
        "WG_OUTBOUND_ALLOW_LOOPBACK": "true",
        "WG_LOG_LEVEL": "INFO",
        "WG_WEBHOOK_POLL_SECONDS": "0.1",
        # The lease is twice the timeout: 3 s.
        "WG_WEBHOOK_TIMEOUT_SECONDS": "1.5",
    }
    worker = await WorkerProcess.start(env)
    try:

        async def in_flight() -> bool:
            return len(receiver.at("/killed")) == 1

        await eventually(in_flight, within=30)
        worker.process.kill()
        await worker.process.wait()
    finally:
        hold.set()
        await worker.stop()
    (pending,) = await deliveries(tenant, endpoint["id"])
    assert pending["status"] == "pending"
    assert pending["attempted_at"] is None
    async with running(dispatcher_for(database, quick_settings(settings))):

        async def again() -> bool:
            return len(receiver.at("/killed")) == 2

        await eventually(again, within=10)
        first, second = receiver.at("/killed")
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
        assert second.at - first.at >= 2.5
        for request in (first, second):
            Webhook(endpoint["secret"]).verify(request.body, request.headers)

        async def recorded() -> bool:
            items = await deliveries(tenant, endpoint["id"])
            return [d["status"] for d in items] == ["succeeded"]

        await eventually(recorded)
