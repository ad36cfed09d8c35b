"""Webhook endpoints through the API: the secret shown once and sealed at rest, validation of
URLs and event types, scopes, ETags, and another tenant seeing nothing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.identity.conftest import assert_problem, field_names
from tests.integrations.conftest import (
    BASE,
    create_endpoint,
    deliveries,
    dispatcher_for,
    emit,
    quick_settings,
)
from wg_api.integrations.webhooks.event_types import EVENT_TYPES
from wg_api.settings import PROJECT_ROOT

pytestmark = pytest.mark.usefixtures("quiet_endpoints")

URL = "https://127.0.0.1:9/hooks"


async def test_create_shows_the_secret_once_and_stores_it_sealed(make_tenant, database):
    tenant = await make_tenant()
    made = await create_endpoint(
        tenant,
        URL,
        event_types=["finding.created", "finding.created", "share.created"],
        description="Compliance sync",
        ordered=True,
    )
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", made["secret"])
    assert made["event_types"] == ["finding.created", "share.created"]
    assert made["ordered"] is True
    assert made["status"] == "enabled"
    read = await tenant.http.get(f"{BASE}/{made['id']}", headers=await tenant.headers())
    assert read.status_code == 200
    assert "secret" not in read.json()
    assert read.headers["etag"]
    assert read.json() == {
        k: v for k, v in made.items() if k not in ("secret", "previous_secret_expires_at")
    }
    listed = await tenant.http.get(BASE, headers=await tenant.headers())
    assert [e["id"] for e in listed.json()["items"]] == [made["id"]]
    assert made["secret"] not in listed.text
    async with superuser_transaction(database) as session:
        stored = (
            await session.execute(
                sa.text("SELECT * FROM webhook_endpoints WHERE id = :id"), {"id": made["id"]}
            )
        ).one()
    raw_secret = made["secret"].removeprefix("whsec_").encode()
    for value in stored:
        assert raw_secret not in (
            bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        )
    # The feed tells other integrations, never the secret.
    feed = await tenant.http.get(
        "/v1/events", params={"types": "webhook_endpoint.created"}, headers=await tenant.headers()
    )
    assert feed.json()["items"][0]["data"]["id"] == made["id"]
    assert made["secret"] not in feed.text


async def test_an_idempotent_replay_of_create_does_not_show_the_secret_again(make_tenant):
    tenant = await make_tenant()
    headers = {**await tenant.headers(), "Idempotency-Key": "endpoint-1"}
    first = await tenant.http.post(BASE, json={"url": URL}, headers=headers)
    again = await tenant.http.post(BASE, json={"url": URL}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["secret"] is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://8.8.8.8/hooks", "https"),
        ("ftp://127.0.0.1/hooks", "https"),
        ("https://user:pass@127.0.0.1/hooks", "credentials"),
        ("https://10.0.0.7/hooks", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://[::ffff:192.168.1.1]/hooks", "private"),
        ("https://100.64.0.1/hooks", "CGNAT"),
        ("not a url", ""),
    ],
)
async def test_urls_the_service_will_not_call_are_422(make_tenant, url, why):
    tenant = await make_tenant()
    response = await tenant.http.post(BASE, json={"url": url}, headers=await tenant.headers())
    body = assert_problem(response, 422)
    assert field_names(body) == {"url"}
    assert why in body["errors"][0]["message"]
    listed = await tenant.http.get(BASE, headers=await tenant.headers())
    assert listed.json()["items"] == []


async def test_http_to_loopback_needs_the_loopback_setting(settings, database, make_tenant):
    from wg_api.integrations.webhooks.service import url_errors
    from wg_api.platform.outbound import OutboundClient

    strict = OutboundClient(allow_loopback=False)
    try:
        (error,) = await url_errors(strict, "http://127.0.0.1:8080/hooks")
        assert "loopback" in error.message
        (error,) = await url_errors(strict, "https://127.0.0.1:8080/hooks")
        assert error.field == "url"
    finally:
        await strict.aclose()


async def test_event_types_must_be_known(make_tenant):
    tenant = await make_tenant()
    for event_types in (["finding.created", "finding.exploded"], []):
        response = await tenant.http.post(
            BASE, json={"url": URL, "event_types": event_types}, headers=await tenant.headers()
        )
        assert field_names(assert_problem(response, 422)) == {"event_types"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"url": URL, "tenant_id": str(uuid.uuid4())}, 400),
        ({"url": URL, "ordered": "yes"}, 400),
        ({"url": 5}, 400),
        ({}, 422),
        ({"url": URL, "description": "x" * 501}, 422),
        ({"url": "https://example.com/" + "a" * 2048}, 422),
    ],
)
async def test_bad_bodies(make_tenant, body, status):
    tenant = await make_tenant()
    response = await tenant.http.post(BASE, json=body, headers=await tenant.headers())
    assert_problem(response, status)
    assert (await tenant.http.get(BASE, headers=await tenant.headers())).json()["items"] == []


async def test_webhooks_need_the_scope_and_the_admin_role(make_tenant):
    admin = await make_tenant()
    made = await create_endpoint(admin, URL)
    editor = await make_tenant(role="editor")
    for headers in (await admin.headers("events:read"), await editor.headers()):
        for method, path in (
            ("POST", BASE),
            ("GET", BASE),
            ("GET", f"{BASE}/{made['id']}"),
            ("POST", f"{BASE}/{made['id']}/rotate-secret"),
            ("GET", f"{BASE}/{made['id']}/deliveries"),
        ):
            response = await admin.http.request(method, path, json={"url": URL}, headers=headers)
            assert_problem(response, 403)


async def test_patch_and_delete_honour_if_match(make_tenant):
    tenant = await make_tenant()
    made = await create_endpoint(tenant, URL)
    path = f"{BASE}/{made['id']}"
    headers = await tenant.headers()
    etag = (await tenant.http.get(path, headers=headers)).headers["etag"]
    changed = await tenant.http.patch(
        path,
        json={"description": "new", "event_types": ["finding.updated"], "status": "disabled"},
        headers={**headers, "If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "new"
    assert changed.json()["event_types"] == ["finding.updated"]
    assert changed.json()["status"] == "disabled"
    assert changed.json()["disabled_reason"] == "manual"
    stale = await tenant.http.patch(
        path, json={"description": "again"}, headers={**headers, "If-Match": etag}
    )
    assert_problem(stale, 412)
    back = await tenant.http.patch(path, json={"event_types": None}, headers=headers)
    assert back.json()["event_types"] is None
    for patch, field in (
        ({"url": "http://8.8.8.8/"}, "url"),
        ({"event_types": ["nope.nope"]}, "event_types"),
    ):
        bad = await tenant.http.patch(path, json=patch, headers=headers)
        assert field_names(assert_problem(bad, 422)) == {field}
    paused = await tenant.http.patch(path, json={"status": "paused"}, headers=headers)
    assert field_names(assert_problem(paused, 422)) == {"status"}
    assert_problem(await tenant.http.patch(path, json={"secret": "x"}, headers=headers), 400)
    assert (await tenant.http.get(path, headers=headers)).json()["description"] == "new"
    stale_delete = await tenant.http.delete(path, headers={**headers, "If-Match": etag})
    assert_problem(stale_delete, 412)
    assert (await tenant.http.delete(path, headers=headers)).status_code == 204
    assert_problem(await tenant.http.get(path, headers=headers), 404)


async def test_lists_are_paginated(make_tenant):
    tenant = await make_tenant()
    made = [(await create_endpoint(tenant, URL))["id"] for _ in range(3)]
    headers = await tenant.headers()
    first = await tenant.http.get(BASE, params={"limit": 2}, headers=headers)
    assert [e["id"] for e in first.json()["items"]] == made[:2]
    assert 'rel="next"' in first.headers["link"]
    second = await tenant.http.get(
        BASE, params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=headers
    )
    assert [e["id"] for e in second.json()["items"]] == made[2:]
    assert second.json()["next_cursor"] is None
    assert_problem(await tenant.http.get(BASE, params={"limit": 201}, headers=headers), 400)
    assert_problem(
        await tenant.http.get(
            f"{BASE}/{made[0]}/deliveries", params={"limit": 201}, headers=headers
        ),
        400,
    )
    assert_problem(
        await tenant.http.get(
            f"{BASE}/{made[0]}/deliveries", params={"status": "lost"}, headers=headers
        ),
        422,
    )


async def test_another_tenant_sees_nothing(make_tenant, receiver, database, settings):
    owner = await make_tenant(name="Brand Owner Ltd")
    rival = await make_tenant(name="Rival Brand Ltd")
    made = await create_endpoint(owner, receiver.url("/private"), description="Owner sync")
    rival_endpoint = await create_endpoint(rival, receiver.url("/rival"))
    (event_id,) = await emit(database, owner.id)
    dispatcher = dispatcher_for(database, quick_settings(settings))
    await dispatcher.run_once()
    await dispatcher.outbound.aclose()
    (delivery,) = [d for d in await deliveries(owner, made["id"]) if d["event_id"] == event_id]
    # The rival's endpoint got none of the owner's events.
    assert all(r.headers["webhook-id"] != event_id for r in receiver.at("/rival"))
    rival_headers = await rival.headers()
    random_id = uuid.uuid4()
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    for suffix, method, body in (
        ("", "GET", None),
        ("", "PATCH", {"description": "mine"}),
        ("", "DELETE", None),
        ("/rotate-secret", "POST", None),
        ("/deliveries", "GET", None),
        (f"/deliveries/{delivery['id']}/redeliver", "POST", None),
        ("/replay", "POST", {"since": an_hour_ago}),
    ):
        theirs = await rival.http.request(
            method, f"{BASE}/{made['id']}{suffix}", json=body, headers=rival_headers
        )
        nobody = await rival.http.request(
            method, f"{BASE}/{random_id}{suffix}", json=body, headers=rival_headers
        )
        assert_problem(theirs, 404)
        assert theirs.json() == nobody.json()
    # The rival's own endpoint with the owner's delivery id: not found either.
    foreign = await rival.http.post(
        f"{BASE}/{rival_endpoint['id']}/deliveries/{delivery['id']}/redeliver",
        headers=rival_headers,
    )
    assert_problem(foreign, 404)
    listed = await rival.http.get(BASE, headers=rival_headers)
    assert [e["id"] for e in listed.json()["items"]] == [rival_endpoint["id"]]
    feed = await rival.http.get("/v1/events", headers=rival_headers)
    for text in (made["id"], owner.name, "Owner sync", str(owner.id), event_id):
        assert text not in listed.text
        assert text not in feed.text
    for request in receiver.at("/rival"):
        for text in (made["id"], owner.name, "Owner sync", str(owner.id)):
            assert text.encode() not in request.body
    assert (await owner.http.get(f"{BASE}/{made['id']}", headers=await owner.headers())).json()[
        "description"
    ] == "Owner sync"


def test_every_event_type_the_code_records_is_known():
    """Types written by record_event, the publish_* functions and the migrations' SQL."""
    pattern = re.compile(
        r"""(?:record_event\([^)]*?|publish_[a-z_]+\([^)]*?|_event\([^)]*?|'|")"""
        r"""\b((?:finding|share|shared_finding|supplier|tenant|api_client|identity_provider|"""
        r"""working_group|invitation|meeting|agenda_item|action_item|initiative|pledge|"""
        r"""payment|webhook_endpoint|user|remediation_room|audit_overlap|audit|calendar_feed)\.[a-z_]+)\b['"]"""
    )
    found: set[str] = set()
    for root in ("wg_api", "migrations"):
        for path in Path(PROJECT_ROOT, root).rglob("*.py"):
            found.update(pattern.findall(path.read_text()))
    assert found, "the scan found nothing: the pattern is broken"
    assert found - EVENT_TYPES == set()
