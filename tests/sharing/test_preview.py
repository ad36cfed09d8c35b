"""Share preview: `POST /v1/findings/{id}/shares/preview` answers exactly the shared finding the
group would see, with the kinds of what scrubbing removed (never the removed text), and creates
nothing; the rules of sharing hold, and the endpoint hygiene of every endpoint.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.sharing.conftest import (
    SHARED_FINDING_KEYS,
    Actor,
    SharingGroup,
    assert_problem,
    feed,
    insights,
    new_supplier,
    record,
    share,
    shared_findings,
)
from tests.suppliers.conftest import assert_hidden

REDACTION_KINDS = {
    "email",
    "url",
    "phone",
    "id_number",
    "messaging_id",
    "credential",
    "date",
    "age",
    "person",
    "organisation",
    "reference",
    "number",
}
EMAIL = "li.wei@kestrel-audits.com"
PHONE = "+86 138 1234 5678"
URL = "https://files.kestrel-audits.com/cases/7781"
DAY = "2026-08-12"


def preview_path(finding_id: str) -> str:
    return f"/v1/findings/{finding_id}/shares/preview"


async def preview(
    client: httpx.AsyncClient, actor: Actor, finding_id: str, group: SharingGroup, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        preview_path(finding_id),
        json={"working_group_id": group.id, **body},
        headers=actor.headers,
    )
    assert response.status_code == 200, response.text
    previewed: dict[str, Any] = response.json()
    return previewed


async def _shares_of(client: httpx.AsyncClient, actor: Actor, finding_id: str) -> list[Any]:
    response = await client.get(f"/v1/findings/{finding_id}/shares", headers=actor.headers)
    assert response.status_code == 200, response.text
    shares: list[Any] = response.json()
    return shares


@dataclasses.dataclass
class Scene:
    group: SharingGroup
    owner: Actor
    rival: Actor  # another member of the group, whose name the owner writes into its text
    finding: dict[str, Any]


@pytest.fixture(scope="module")
async def scene(client: httpx.AsyncClient, make_group: Any) -> Scene:
    group = await make_group()
    owner, rival = group.members[0], group.members[1]
    supplier = await new_supplier(client, owner)
    finding = await record(
        client,
        owner,
        supplier["id"],
        title=f"Overtime records falsified on {DAY}",
        description=(
            f"Raised with {rival.name} at the joint visit. Contact the auditor at {EMAIL} or "
            f"{PHONE}; photos at {URL}. Workers averaged 72 hours a week."
        ),
    )
    return Scene(group, owner, rival, finding)


async def test_a_preview_is_exactly_what_sharing_then_publishes_and_creates_nothing(
    client, make_group
):
    group = await make_group()
    owner, rival = group.members[0], group.members[1]
    supplier = await new_supplier(client, owner)
    finding = await record(
        client,
        owner,
        supplier["id"],
        title=f"Overtime records falsified on {DAY}",
        description=f"Raised with {rival.name}; contact {EMAIL} or {PHONE}, photos at {URL}.",
    )
    before = (await insights(client, group.facilitator, group, ("area",))).json()

    previewed = await preview(client, owner, finding["id"], group)
    again = await preview(client, owner, finding["id"], group)
    assert again == previewed

    # Nothing was created: no share, no shared record, no insight, no event for anyone.
    assert await _shares_of(client, owner, finding["id"]) == []
    for reader in group.readers:
        assert await shared_findings(client, reader, group) == []
    assert (await insights(client, group.facilitator, group, ("area",))).json() == before

    created = await share(client, owner, finding["id"], group)
    published = await client.get(
        f"{group.path}/shared-findings/{created['shared_finding_id']}", headers=owner.headers
    )
    assert published.status_code == 200, published.text
    redactions = previewed.pop("redactions")
    assert previewed["id"] is None
    assert previewed["is_own"] is True
    assert set(previewed) == SHARED_FINDING_KEYS
    assert previewed == {**published.json(), "id": None}
    # Another member reads the same record, only not as its own.
    theirs = await client.get(
        f"{group.path}/shared-findings/{created['shared_finding_id']}", headers=rival.headers
    )
    assert theirs.json() == {**previewed, "id": created["shared_finding_id"], "is_own": False}

    assert {r["kind"] for r in redactions if r["field"] == "title"} >= {"date"}
    assert {r["kind"] for r in redactions if r["field"] == "description"} >= {
        "organisation",
        "email",
        "phone",
        "url",
    }
    # One share, one record, one event each: the previews before it left no trace.
    assert len(await _shares_of(client, owner, finding["id"])) == 1
    own = await feed(client, owner, "share.created")
    assert [e["data"]["finding_id"] for e in own.json()["items"]].count(finding["id"]) == 1
    for reader in group.others(owner):
        events = (await feed(client, reader, "shared_finding.published")).json()["items"]
        assert [e["data"]["id"] for e in events] == [created["shared_finding_id"]]


async def test_redactions_name_kinds_never_the_removed_text(client, scene):
    previewed = await preview(client, scene.owner, scene.finding["id"], scene.group)
    text = json.dumps(previewed, ensure_ascii=False)
    for removed in (EMAIL, PHONE, URL, DAY, scene.rival.name, "kestrel-audits", "1234 5678"):
        assert removed not in text
    assert previewed["redactions"], previewed
    for redaction in previewed["redactions"]:
        assert set(redaction) == {"kind", "field"}
        assert redaction["kind"] in REDACTION_KINDS
        assert redaction["field"] in ("title", "description")
    # Each kind once per field, and only for text that was removed: the plain words stay.
    pairs = [(r["field"], r["kind"]) for r in previewed["redactions"]]
    assert len(pairs) == len(set(pairs))
    assert "72 hours a week" in previewed["description"]
    assert "Overtime records falsified" in previewed["title"]


async def test_a_preview_without_the_description_has_none_and_no_redactions_in_it(client, scene):
    previewed = await preview(
        client, scene.owner, scene.finding["id"], scene.group, include_description=False
    )
    assert previewed["description"] is None
    assert {r["field"] for r in previewed["redactions"]} == {"title"}


async def test_clean_text_has_no_redactions(client, scene):
    supplier = await new_supplier(client, scene.owner)
    finding = await record(client, scene.owner, supplier["id"])
    previewed = await preview(client, scene.owner, finding["id"], scene.group)
    assert previewed["redactions"] == []
    assert previewed["title"] == finding["title"]
    assert previewed["description"] == finding["description"]


async def test_a_finding_already_shared_previews_its_published_record(client, make_group):
    """Documented choice: a preview of a finding already shared into the group still answers
    (sharing again would be 409 already-shared); it is what that share publishes now."""
    group = await make_group()
    owner = group.members[0]
    supplier = await new_supplier(client, owner)
    finding = await record(client, owner, supplier["id"], description=f"Call {PHONE}.")
    created = await share(client, owner, finding["id"], group)
    previewed = await preview(client, owner, finding["id"], group)
    published = await client.get(
        f"{group.path}/shared-findings/{created['shared_finding_id']}", headers=owner.headers
    )
    assert {**published.json(), "id": None} == {
        k: v for k, v in previewed.items() if k != "redactions"
    }
    assert len(await _shares_of(client, owner, finding["id"])) == 1


async def test_an_idempotency_key_replays_the_preview(client, scene):
    headers = {**scene.owner.headers, "Idempotency-Key": f"preview-{uuid.uuid4()}"}
    body = {"working_group_id": scene.group.id}
    first = await client.post(preview_path(scene.finding["id"]), json=body, headers=headers)
    assert first.status_code == 200, first.text
    replay = await client.post(preview_path(scene.finding["id"]), json=body, headers=headers)
    assert replay.status_code == 200, replay.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    other = {**body, "include_description": False}
    reused = await client.post(preview_path(scene.finding["id"]), json=other, headers=headers)
    assert assert_problem(reused, 422)["type"] == "/problems/idempotency-key-reused"


async def test_another_tenants_finding_is_404_like_a_random_id(client, scene):
    body = {"json": {"working_group_id": scene.group.id}}
    await assert_hidden(
        client,
        "POST",
        preview_path(scene.finding["id"]),
        preview_path(str(uuid.uuid4())),
        scene.rival.headers,
        **body,
    )


async def test_previewing_needs_the_sharing_scope(client, scene):
    token = await scene.owner.handle.token("findings:read findings:write working-groups:read")
    response = await client.post(
        preview_path(scene.finding["id"]),
        json={"working_group_id": scene.group.id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert assert_problem(response, 403)["type"] == "/problems/forbidden"


async def test_an_observer_cannot_preview(client, scene):
    observer = scene.group.observer
    assert observer is not None
    supplier = await new_supplier(client, observer)
    finding = await record(client, observer, supplier["id"])
    response = await client.post(
        preview_path(finding["id"]),
        json={"working_group_id": scene.group.id},
        headers=observer.headers,
    )
    assert assert_problem(response, 403)["type"] == "/problems/forbidden"


async def test_a_group_too_small_refuses_the_preview(client, make_group):
    group = await make_group(members=1, threshold=3)
    owner = group.members[0]
    supplier = await new_supplier(client, owner)
    finding = await record(client, owner, supplier["id"])
    response = await client.post(
        preview_path(finding["id"]), json={"working_group_id": group.id}, headers=owner.headers
    )
    assert assert_problem(response, 409)["type"] == "/problems/group-below-anonymity-threshold"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"working_group_id": "GROUP", "tenant_id": str(uuid.uuid4())}, 400, "tenant_id"),
        ({"working_group_id": "GROUP", "redactions": []}, 400, "redactions"),
        ({"working_group_id": "GROUP", "include_description": "yes"}, 400, "include_description"),
        ({"working_group_id": 42}, 400, "working_group_id"),
        ({"include_description": False}, 422, "working_group_id"),
        ({"working_group_id": "RANDOM"}, 422, "working_group_id"),
    ],
)
async def test_bad_preview_bodies(client, scene, body, status, field):
    values = {"GROUP": scene.group.id, "RANDOM": str(uuid.uuid4())}
    body = {k: values.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    response = await client.post(
        preview_path(scene.finding["id"]), json=body, headers=scene.owner.headers
    )
    problem = assert_problem(response, status)
    assert [e["field"] for e in problem["errors"]] == [field]
