"""Zero-tolerance alerts: the group's other members linked to the supplier for long enough get
the anonymised record, nobody else gets anything, and the contributor learns nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.cosourcing.conftest import (
    ALERT,
    Factory,
    age_links,
    events,
    everything_readable,
    get_ok,
    run_alerts,
    share_zero_tolerance,
    traces_of,
)
from tests.sharing.conftest import record, share
from wg_api.platform.database import Database


async def test_only_members_linked_long_enough_are_alerted(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    assert await events(client, case.linked[0], ALERT) == []  # nothing before the worker runs
    await run_alerts(database, settings)
    for actor in case.linked:
        alerts = [e for e in await events(client, actor, ALERT)]
        assert len(alerts) == 1, alerts
        data = alerts[0]["data"]
        assert set(data) == {"working_group_id", "remediation_room_id", "shared_finding"}
        assert data["working_group_id"] == case.group.id
        # Exactly the record the group reads, nothing else.
        shared = await get_ok(
            client, actor, f"{case.group.path}/shared-findings/{case.shared_finding_id}"
        )
        assert data["shared_finding"] == shared
        assert alerts[0]["occurred_at"].endswith("T00:00:00Z")
    for actor in [case.contributor, *case.bystanders, case.group.outsider]:
        assert await events(client, actor, ALERT) == [], actor.slug
    # The worker sends each alert once.
    await run_alerts(database, settings)
    for actor in case.linked:
        assert len(await events(client, actor, ALERT)) == 1


async def test_both_alerted_share_one_room(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    await run_alerts(database, settings)
    rooms = [
        (await events(client, actor, ALERT))[0]["data"]["remediation_room_id"]
        for actor in factory_case.linked
    ]
    assert rooms[0] == rooms[1]
    mine = await get_ok(client, factory_case.contributor, "/v1/remediation-rooms", limit=200)
    assert [room["id"] for room in mine["items"]] == [rooms[0]]
    assert mine["items"][0]["invited_as"] == "contributor"


async def test_the_contributor_and_the_unlinked_learn_nothing(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    before = {
        actor.slug: await everything_readable(client, actor)
        for actor in (case.contributor, case.unlinked, case.young)
    }
    contributor_room = await get_ok(client, case.contributor, "/v1/remediation-rooms", limit=200)
    await run_alerts(database, settings)
    others = [*case.linked, case.young]
    for actor in (case.contributor, case.unlinked, case.young):
        after = await everything_readable(client, actor)
        # Nothing new anywhere: the same answers whether or not anyone was alerted.
        assert after == before[actor.slug]
        for other in others:
            if other.id == actor.id:
                continue
            for trace in traces_of(other):
                assert trace not in after, (actor.slug, trace)
    room_after = await get_ok(client, case.contributor, "/v1/remediation-rooms", limit=200)
    assert room_after == contributor_room
    assert room_after["items"][0]["status"] == "invited"
    assert room_after["items"][0]["participants"] == []


async def test_a_young_link_is_alerted_once_it_is_old_enough(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    await run_alerts(database, settings)
    assert await events(client, case.young, ALERT) == []
    await age_links(
        database, case.supplier["id"], [case.young], settings.cosourcing_min_link_age_days + 1
    )
    second = await share_zero_tolerance(client, case.contributor, case.supplier["id"], case.group)
    await run_alerts(database, settings)
    alerts = await events(client, case.young, ALERT)
    assert [a["data"]["shared_finding"]["id"] for a in alerts] == [second]


async def test_the_guard_follows_the_setting(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    """With the minimum age set to 2 days, the 3-day-old link is alerted too."""
    await run_alerts(database, settings, min_link_age_days=2)
    assert len(await events(client, factory_case.young, ALERT)) == 1
    assert await events(client, factory_case.unlinked, ALERT) == []


async def test_other_severities_alert_nobody(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    await run_alerts(database, settings)
    finding = await record(client, case.contributor, case.supplier["id"], severity="critical")
    await share(client, case.contributor, finding["id"], case.group)
    await run_alerts(database, settings)
    for actor in case.linked:
        assert len(await events(client, actor, ALERT)) == 1
    rooms = await get_ok(client, case.contributor, "/v1/remediation-rooms", limit=200)
    assert len(rooms["items"]) == 1


async def test_a_withdrawn_share_alerts_nobody(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    case = factory_case
    shares = await get_ok(client, case.contributor, "/v1/findings", limit=200)
    finding_id = shares["items"][0]["id"]
    listed = await get_ok(client, case.contributor, f"/v1/findings/{finding_id}/shares")
    response = await client.delete(
        f"/v1/findings/{finding_id}/shares/{listed[0]['id']}", headers=case.contributor.headers
    )
    assert response.status_code == 204, response.text
    await run_alerts(database, settings)
    for actor in case.linked:
        assert await events(client, actor, ALERT) == []


async def test_raising_a_shared_finding_to_zero_tolerance_alerts(
    client: httpx.AsyncClient, make_group: Any, database: Database, settings: Any
) -> None:
    from tests.sharing.conftest import new_supplier

    group = await make_group(members=3, observer=False)
    contributor, linked, _ = group.members
    supplier = await new_supplier(client, contributor, linked=[linked])
    await age_links(database, supplier["id"], [contributor, linked], 60)
    finding = await record(client, contributor, supplier["id"], severity="major")
    await share(client, contributor, finding["id"], group)
    await run_alerts(database, settings)
    assert await events(client, linked, ALERT) == []
    response = await client.patch(
        f"/v1/findings/{finding['id']}",
        json={"severity": "zero_tolerance", "area": "bonded_labour"},
        headers=contributor.headers,
    )
    assert response.status_code == 200, response.text
    await run_alerts(database, settings)
    alerts = await events(client, linked, ALERT)
    assert len(alerts) == 1
    assert alerts[0]["data"]["shared_finding"]["severity"] == "zero_tolerance"


async def test_alerts_wait_while_the_group_is_below_its_threshold(
    client: httpx.AsyncClient, make_group: Any, database: Database, settings: Any
) -> None:
    from tests.sharing.conftest import new_supplier
    from tests.working_groups.conftest import join

    group = await make_group(members=3, threshold=4, observer=False)
    contributor, linked, leaver = group.members
    supplier = await new_supplier(client, contributor, linked=[linked])
    await age_links(database, supplier["id"], [contributor, linked], 60)
    await share_zero_tolerance(client, contributor, supplier["id"], group)
    response = await client.delete(f"{group.path}/members/{leaver.id}", headers=leaver.headers)
    assert response.status_code == 204, response.text
    await run_alerts(database, settings)
    assert await events(client, linked, ALERT) == []
    await join(client, group.facilitator, group.id, leaver, "member")
    await run_alerts(database, settings)
    assert len(await events(client, linked, ALERT)) == 1
