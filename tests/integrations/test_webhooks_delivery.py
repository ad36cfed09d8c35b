"""Deliveries against a real receiver: signatures, retries, Retry-After, disabling, redirects,
ordering, fairness between endpoints, redelivery and replay."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.conftest import superuser_transaction
from tests.integrations.conftest import (
    BASE,
    Answer,
    create_endpoint,
    deliveries,
    dispatcher_for,
    emit,
    eventually,
    quick_settings,
    read_endpoint,
    running,
)

pytestmark = pytest.mark.usefixtures("quiet_endpoints")


async def test_a_delivery_is_the_feed_event_signed_per_standard_webhooks(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/hook"))
    assert endpoint["secret"].startswith("whsec_")
    # A real write through the API: its event reaches the endpoint.
    changed = await tenant.http.patch(
        "/v1/tenant", json={"timezone": "Europe/Stockholm"}, headers=await tenant.headers()
    )
    assert changed.status_code == 200, changed.text
    async with running(dispatcher_for(database, quick_settings(settings))):

        async def arrived():
            return [
                r for r in receiver.at("/hook") if json.loads(r.body)["type"] == "tenant.updated"
            ]

        (request,) = await eventually(arrived)
    payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    feed = await tenant.http.get(
        "/v1/events", params={"types": "tenant.updated"}, headers=await tenant.headers()
    )
    (event,) = feed.json()["items"]
    assert payload == event
    assert request.headers["webhook-id"] == event["id"]
    assert request.headers["content-type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body, request.headers)
    (attempt,) = [
        d for d in await deliveries(tenant, endpoint["id"]) if d["event_id"] == event["id"]
    ]
    assert attempt["status"] == "succeeded"
    assert attempt["attempt"] == 1
    assert attempt["response_status"] == 200
    assert attempt["next_attempt_at"] is None
    assert attempt["duration_ms"] >= 0
    assert attempt["event_type"] == "tenant.updated"


def _types(received) -> list[str]:
    return [json.loads(r.body)["type"] for r in received]


def _ids(received) -> list[str]:
    return [r.headers["webhook-id"] for r in received]


async def test_only_the_event_types_asked_for_are_delivered(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    await create_endpoint(tenant, receiver.url("/only"), event_types=["finding.updated"])
    wanted = await emit(database, tenant.id, 2, "finding.updated")
    await emit(database, tenant.id, 3, "finding.created")
    async with running(dispatcher_for(database, quick_settings(settings))):
        await eventually(_count(receiver, "/only", 2))
        await asyncio.sleep(0.3)
    assert sorted(_ids(receiver.at("/only"))) == sorted(wanted)


async def _count_of(receiver, path: str, n: int) -> bool:
    return len(receiver.at(path)) >= n


def _count(receiver, path: str, n: int):
    async def enough() -> bool:
        return await _count_of(receiver, path, n)

    return enough


async def test_after_a_rotation_each_delivery_is_signed_with_both_secrets(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/rotated"))
    rotated = await tenant.http.post(
        f"{BASE}/{endpoint['id']}/rotate-secret", headers=await tenant.headers()
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["secret"].startswith("whsec_")
    assert new["secret"] != endpoint["secret"]
    expires = datetime.fromisoformat(new["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    (event_id,) = await emit(database, tenant.id)
    async with running(dispatcher_for(database, quick_settings(settings))):
        await eventually(
            lambda: _has(receiver, "/rotated", event_id),
        )
    (request,) = [r for r in receiver.at("/rotated") if r.headers["webhook-id"] == event_id]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], new["secret"]):
        Webhook(secret).verify(request.body, request.headers)
    # Once the 24 hours are over, only the new secret signs.
    async with superuser_transaction(database) as session:
        await session.execute(
            sa.text(
                "UPDATE webhook_endpoints SET previous_secret_expires_at = now() WHERE id = :id"
            ),
            {"id": endpoint["id"]},
        )
    (later,) = await emit(database, tenant.id)
    async with running(dispatcher_for(database, quick_settings(settings))):
        await eventually(lambda: _has(receiver, "/rotated", later))
    (request,) = [r for r in receiver.at("/rotated") if r.headers["webhook-id"] == later]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(new["secret"]).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body, request.headers)


async def _has(receiver, path: str, event_id: str) -> bool:
    return any(r.headers["webhook-id"] == event_id for r in receiver.at(path))


async def test_failures_are_retried_on_schedule_with_the_same_webhook_id(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/flaky"))
    receiver.plan("/flaky", Answer(500), Answer(502), Answer(200))
    (event_id,) = await emit(database, tenant.id)
    async with running(dispatcher_for(database, quick_settings(settings))):
        await eventually(_count(receiver, "/flaky", 3), within=15)
        await eventually(
            lambda: _statuses(tenant, endpoint["id"], ["succeeded", "failed", "failed"])
        )
    received = receiver.at("/flaky")
    assert _ids(received) == [event_id] * 3
    # 5 s and 5 min, times the scale of 0.002: 10 ms, then 0.6 s.
    assert received[2].at - received[1].at >= 0.55
    for request in received:
        Webhook(endpoint["secret"]).verify(request.body, request.headers)
    items = await deliveries(tenant, endpoint["id"])
    assert [d["attempt"] for d in items] == [3, 2, 1]
    assert [d["response_status"] for d in items] == [200, 502, 500]
    assert {d["event_id"] for d in items} == {event_id}
    assert items[1]["error"]
    assert items[0]["error"] is None
    failed = await deliveries(tenant, endpoint["id"], status="failed")
    assert [d["attempt"] for d in failed] == [2, 1]


async def _statuses(tenant, endpoint_id: str, wanted: list[str]) -> bool:
    return [d["status"] for d in await deliveries(tenant, endpoint_id)] == wanted


async def test_a_retry_not_yet_made_is_listed_as_pending_with_its_time(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/down"))
    receiver.plan("/down", Answer(503))
    await emit(database, tenant.id)
    async with running(dispatcher_for(database, quick_settings(settings, webhook_retry_scale=1))):
        items = await eventually(lambda: _pending_after_failure(tenant, endpoint["id"]))
    pending, failed = items
    assert pending["attempt"] == 2
    assert failed["attempt"] == 1
    assert pending["attempted_at"] is None
    assert pending["response_status"] is None
    waited = datetime.fromisoformat(pending["next_attempt_at"]) - datetime.fromisoformat(
        failed["attempted_at"]
    )
    # 5 s after the answer came (times the scale of 1).
    answered_in = timedelta(milliseconds=failed["duration_ms"])
    assert (
        timedelta(seconds=5) <= waited <= timedelta(seconds=5) + answered_in + timedelta(seconds=1)
    )
    assert len(receiver.at("/down")) == 1


async def _pending_after_failure(tenant, endpoint_id: str):
    items = await deliveries(tenant, endpoint_id)
    if [d["status"] for d in items] == ["pending", "failed"]:
        return items
    return None


async def test_retry_after_is_honoured(make_tenant, receiver, database, settings):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/busy"))
    receiver.plan("/busy", Answer(429, {"Retry-After": "2"}), Answer(200))
    await emit(database, tenant.id)
    async with running(dispatcher_for(database, quick_settings(settings))):
        await eventually(_count(receiver, "/busy", 2), within=10)
    first, second = receiver.at("/busy")
    # The schedule alone would retry after 10 ms.
    assert second.at - first.at >= 1.9
    items = await deliveries(tenant, endpoint["id"])
    assert [d["response_status"] for d in items] == [200, 429]


async def test_410_disables_the_endpoint_at_once_and_says_so_in_the_feed(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/gone"))
    watcher = await create_endpoint(
        tenant, receiver.url("/watcher"), event_types=["webhook_endpoint.disabled"]
    )
    receiver.plan("/gone", Answer(410))
    await emit(database, tenant.id, 3)
    async with running(dispatcher_for(database, quick_settings(settings))):
        await eventually(lambda: _disabled(tenant, endpoint["id"]))
        await eventually(_count(receiver, "/watcher", 1))
        await asyncio.sleep(0.3)
    body = (await read_endpoint(tenant, endpoint["id"])).json()
    assert body["disabled_reason"] == "gone"
    # Nothing was retried: the attempts in flight when the 410 came were the last.
    sent = _ids(receiver.at("/gone"))
    assert len(sent) == len(set(sent))
    statuses = {d["status"] for d in await deliveries(tenant, endpoint["id"])}
    assert "succeeded" not in statuses
    feed = await tenant.http.get(
        "/v1/events", params={"types": "webhook_endpoint.disabled"}, headers=await tenant.headers()
    )
    (event,) = feed.json()["items"]
    assert event["data"]["id"] == endpoint["id"]
    assert event["data"]["reason"] == "gone"
    assert "secret" not in json.dumps(event)
    (told,) = receiver.at("/watcher")
    assert json.loads(told.body)["data"]["id"] == endpoint["id"]
    Webhook(watcher["secret"]).verify(told.body, told.headers)
    # Enabled again, it gets what happens from then on.
    enabled = await tenant.http.patch(
        f"{BASE}/{endpoint['id']}", json={"status": "enabled"}, headers=await tenant.headers()
    )
    assert enabled.json()["status"] == "enabled"
    assert enabled.json()["disabled_reason"] is None


async def _disabled(tenant, endpoint_id: str) -> bool:
    return bool((await read_endpoint(tenant, endpoint_id)).json()["status"] == "disabled")


async def test_an_endpoint_failing_everything_for_five_days_is_disabled(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/dead"))
    receiver.plan("/dead", Answer(500))
    await emit(database, tenant.id)
    quick = quick_settings(settings, webhook_retry_scale=1)
    async with running(dispatcher_for(database, quick)):
        await eventually(_count(receiver, "/dead", 1))
    assert (await read_endpoint(tenant, endpoint["id"])).json()["status"] == "enabled"
    # Its first failure five days ago: the next failure disables it.
    async with superuser_transaction(database) as session:
        failing = await session.scalar(
            sa.text(
                "UPDATE webhook_endpoints SET failing_since = failing_since - interval '5 days' "
                "WHERE id = :id RETURNING failing_since"
            ),
            {"id": endpoint["id"]},
        )
    assert failing is not None
    await emit(database, tenant.id)
    async with running(dispatcher_for(database, quick)):
        await eventually(lambda: _disabled(tenant, endpoint["id"]))
    assert (await read_endpoint(tenant, endpoint["id"])).json()["disabled_reason"] == "failing"
    feed = await tenant.http.get(
        "/v1/events", params={"types": "webhook_endpoint.disabled"}, headers=await tenant.headers()
    )
    (event,) = feed.json()["items"]
    assert event["data"]["reason"] == "failing"


async def test_a_success_resets_the_five_days(make_tenant, receiver, database, settings):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/recovers"))
    receiver.plan("/recovers", Answer(500), Answer(200))
    await emit(database, tenant.id)
    async with running(dispatcher_for(database, quick_settings(settings))):
        await eventually(_count(receiver, "/recovers", 2))
        await eventually(lambda: _statuses(tenant, endpoint["id"], ["succeeded", "failed"]))
    async with superuser_transaction(database) as session:
        failing = await session.scalar(
            sa.text("SELECT failing_since FROM webhook_endpoints WHERE id = :id"),
            {"id": endpoint["id"]},
        )
    assert failing is None


async def test_redirects_are_not_followed(make_tenant, receiver, database, settings):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/moved"))
    receiver.plan("/moved", Answer(302, {"Location": receiver.url("/elsewhere")}))
    await emit(database, tenant.id)
    async with running(dispatcher_for(database, quick_settings(settings))):
        await eventually(_count(receiver, "/moved", 2), within=10)
    assert receiver.at("/elsewhere") == []
    failed = await deliveries(tenant, endpoint["id"], status="failed")
    assert failed[-1]["response_status"] == 302
    assert "redirect" in failed[-1]["error"]


async def test_a_receiver_slower_than_the_timeout_fails_the_attempt(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/slow"))
    receiver.plan("/slow", Answer(200, delay=2.0), Answer(200))
    await emit(database, tenant.id)
    async with running(
        dispatcher_for(database, quick_settings(settings, webhook_timeout_seconds=0.5))
    ):
        await eventually(lambda: _statuses(tenant, endpoint["id"], ["succeeded", "failed"]))
    items = await deliveries(tenant, endpoint["id"])
    assert "within 0.5 s" in items[1]["error"]
    assert items[1]["response_status"] is None


async def test_ordered_endpoints_get_events_in_feed_order_a_failure_holding_back_the_rest(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    await create_endpoint(tenant, receiver.url("/ordered"), ordered=True)
    receiver.plan("/ordered", Answer(500), Answer(500), Answer(200))
    events = await emit(database, tenant.id, 6)
    async with running(dispatcher_for(database, quick_settings(settings, webhook_concurrency=16))):
        await eventually(_count(receiver, "/ordered", 8), within=15)
    received = receiver.at("/ordered")
    # The first event three times (two failures), then each of the others once, in order.
    assert _ids(received) == [events[0]] * 3 + events[1:]
    # Never two at once.
    assert receiver.most_in_flight["/ordered"] == 1


async def test_a_slow_endpoint_holds_back_only_itself(make_tenant, receiver, database, settings):
    tenant = await make_tenant()
    other = await make_tenant()
    await create_endpoint(tenant, receiver.url("/stuck"), event_types=["finding.created"])
    await create_endpoint(other, receiver.url("/fine"), event_types=["finding.created"])
    stuck = threading.Event()
    receiver.plan("/stuck", Answer(200, hold=stuck))
    await emit(database, tenant.id, 20)
    fine = await emit(database, other.id, 20)
    quick = quick_settings(
        settings, webhook_concurrency=4, webhook_endpoint_concurrency=2, webhook_timeout_seconds=25
    )
    try:
        async with running(dispatcher_for(database, quick)):
            # Every event of the healthy endpoint arrives while the stuck one answers nothing.
            await eventually(_count(receiver, "/fine", 20), within=20)
            assert sorted(_ids(receiver.at("/fine"))) == sorted(fine)
            assert not stuck.is_set()
            # The stuck endpoint had its two requests in flight, never more.
            assert len(receiver.at("/stuck")) == 2
            assert receiver.most_in_flight["/stuck"] == 2
            stuck.set()
            await eventually(_count(receiver, "/stuck", 20), within=20)
    finally:
        stuck.set()


async def test_delayed_events_are_delivered_only_once_visible(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    await create_endpoint(tenant, receiver.url("/delayed"))
    async with superuser_transaction(database) as session:
        event_id = str(
            await session.scalar(
                sa.text(
                    "INSERT INTO events (tenant_id, type, data, visible_at) "
                    "VALUES (:t, 'shared_finding.published', '{}', now() + interval '1 hour') "
                    "RETURNING id"
                ),
                {"t": tenant.id},
            )
        )
    (now_id,) = await emit(database, tenant.id)
    dispatcher = dispatcher_for(database, quick_settings(settings))
    await dispatcher.run_once()
    assert _ids(receiver.at("/delayed")) == [now_id]
    async with superuser_transaction(database) as session:
        await session.execute(
            sa.text("UPDATE events SET visible_at = now() WHERE id = :id"), {"id": event_id}
        )
    await dispatcher.run_once()
    await dispatcher.outbound.aclose()
    assert _ids(receiver.at("/delayed")) == [now_id, event_id]


async def test_two_dispatchers_deliver_each_event_once(make_tenant, receiver, database, settings):
    tenant = await make_tenant()
    only = ["finding.created"]
    await create_endpoint(tenant, receiver.url("/shared"), event_types=only)
    await create_endpoint(tenant, receiver.url("/shared-ordered"), ordered=True, event_types=only)
    events = await emit(database, tenant.id, 40)
    quick = quick_settings(settings, webhook_concurrency=8)
    async with running(dispatcher_for(database, quick)), running(dispatcher_for(database, quick)):
        await eventually(_count(receiver, "/shared", 40))
        await eventually(_count(receiver, "/shared-ordered", 40))
        await asyncio.sleep(0.3)
    got = _ids(receiver.at("/shared"))
    assert len(got) == len(set(got)), [(i, got.count(i)) for i in set(got) if got.count(i) > 1]
    assert sorted(got) == sorted(events)
    assert _ids(receiver.at("/shared-ordered")) == events


async def test_redeliver_sends_the_event_again_with_the_same_id(
    make_tenant, receiver, database, settings
):
    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/again"))
    (event_id,) = await emit(database, tenant.id)
    dispatcher = dispatcher_for(database, quick_settings(settings))
    await dispatcher.run_once()
    (first,) = await deliveries(tenant, endpoint["id"])
    response = await tenant.http.post(
        f"{BASE}/{endpoint['id']}/deliveries/{first['id']}/redeliver",
        headers=await tenant.headers(),
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    assert response.json()["attempt"] == 2
    await dispatcher.run_once()
    await dispatcher.outbound.aclose()
    assert _ids(receiver.at("/again")) == [event_id, event_id]
    assert [d["attempt"] for d in await deliveries(tenant, endpoint["id"])] == [2, 1]


async def test_replay_sends_every_event_since_a_time(make_tenant, receiver, database, settings):
    tenant = await make_tenant()
    before = await emit(database, tenant.id, 3)
    endpoint = await create_endpoint(
        tenant, receiver.url("/replay"), event_types=["finding.created"]
    )
    after = await emit(database, tenant.id, 2)
    dispatcher = dispatcher_for(database, quick_settings(settings))
    await dispatcher.run_once()
    assert sorted(_ids(receiver.at("/replay"))) == sorted(after)
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    response = await tenant.http.post(
        f"{BASE}/{endpoint['id']}/replay", json={"since": since}, headers=await tenant.headers()
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"scheduled": 5}
    await dispatcher.run_once()
    await dispatcher.outbound.aclose()
    replayed = _ids(receiver.at("/replay"))
    assert sorted(replayed) == sorted(after + before + after)
    for future in (
        (datetime.now(UTC) + timedelta(hours=1)),
        datetime.now(UTC) - timedelta(days=40),
    ):
        bad = await tenant.http.post(
            f"{BASE}/{endpoint['id']}/replay",
            json={"since": future.isoformat()},
            headers=await tenant.headers(),
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "since"


async def test_finished_attempts_older_than_the_retention_are_purged(
    make_tenant, receiver, database, settings
):
    from wg_api.integrations.webhooks.tasks import PURGE_JOB, purge_webhook_deliveries
    from wg_api.platform.jobs import JobContext

    tenant = await make_tenant()
    endpoint = await create_endpoint(tenant, receiver.url("/old"))
    receiver.plan("/old", Answer(503))
    await emit(database, tenant.id, 2)
    dispatcher = dispatcher_for(database, quick_settings(settings, webhook_retry_scale=100))
    await dispatcher.run_once()
    await dispatcher.outbound.aclose()
    assert sorted(d["status"] for d in await deliveries(tenant, endpoint["id"])) == [
        "failed",
        "failed",
        "pending",
        "pending",
    ]
    async with superuser_transaction(database) as session:
        await session.execute(
            sa.text(
                "UPDATE webhook_deliveries SET created_at = now() - interval '31 days' "
                "WHERE endpoint_id = :id"
            ),
            {"id": endpoint["id"]},
        )
    async with database.system_transaction() as session:
        result = await purge_webhook_deliveries(
            JobContext(session, database, settings, PURGE_JOB, datetime.now(UTC), 1)
        )
    assert result is not None
    assert result["deleted"] >= 2
    # The retries still to come are kept.
    assert [d["status"] for d in await deliveries(tenant, endpoint["id"])] == [
        "pending",
        "pending",
    ]
