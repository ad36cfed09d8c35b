"""GET/PATCH /v1/tenant: the caller's own tenant, its time zone, country, working hours, aliases."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import superuser_transaction
from tests.identity.conftest import assert_problem, field_names
from wg_api.identity import service

DEFAULT_HOURS = {"start": "09:00", "end": "18:00", "days": ["mon", "tue", "wed", "thu", "fri"]}


def word() -> str:
    """A made-up brand word nobody else in the test database goes by."""
    return "Zq" + "".join(random.choices("bcdfghjklmnprstvwxz", k=8))


def han() -> str:
    """Two random CJK ideographs: a name that may be two characters long."""
    return "".join(chr(random.randint(0x4E00, 0x9FA5)) for _ in range(2))


async def tenant_events(client: Any, headers: dict[str, str], *, at_least: int) -> Any:
    """The tenant's `tenant.updated` events, once there are `at_least` (the feed holds back events
    while an older transaction still runs)."""
    for _ in range(100):
        response = await client.get(
            "/v1/events", params={"types": "tenant.updated"}, headers=headers
        )
        if len(response.json()["items"]) >= at_least:
            return response.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} tenant.updated events: {response.text}")


async def patch(client: Any, headers: dict[str, str], body: dict[str, Any], **extra: str) -> Any:
    return await client.patch("/v1/tenant", json=body, headers={**headers, **extra})


async def test_a_new_tenant_has_the_contract_defaults(client, make_tenant):
    tenant = await make_tenant(role="viewer")
    response = await client.get("/v1/tenant", headers=await tenant.headers())
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "name": tenant.name,
        "kind": "brand",
        "timezone": "Asia/Hong_Kong",
        "country": None,
        "working_hours": DEFAULT_HOURS,
        "aliases": [],
    }
    assert response.headers["etag"].startswith('"')
    # Any scope will do to read it; a token without any is refused as everywhere.
    narrow = await client.get("/v1/tenant", headers=await tenant.headers("findings:read"))
    assert narrow.json() == response.json()
    assert_problem(await client.get("/v1/tenant"), 401)


async def test_an_admin_changes_every_field_and_the_change_is_audited_and_announced(
    client, make_tenant
):
    tenant = await make_tenant()
    headers = await tenant.headers()
    before = await client.get("/v1/tenant", headers=headers)
    aliases = [f"{word()} Kids", han(), tenant.name.upper()]
    body = {
        "timezone": "Europe/Stockholm",
        "country": "SE",
        "working_hours": {"start": "08:30", "end": "17:15", "days": ["fri", "mon", "wed"]},
        "aliases": aliases,
    }
    response = await patch(client, headers, body, **{"If-Match": before.headers["etag"]})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["timezone"] == "Europe/Stockholm"
    assert changed["country"] == "SE"
    # Days come back in week order.
    assert changed["working_hours"] == {
        "start": "08:30",
        "end": "17:15",
        "days": ["mon", "wed", "fri"],
    }
    # The tenant's own name is accepted as an alias.
    assert changed["aliases"] == aliases
    assert response.headers["etag"] != before.headers["etag"]
    again = await client.get("/v1/tenant", headers=headers)
    assert again.json() == changed
    assert again.headers["etag"] == response.headers["etag"]

    cleared = await patch(client, headers, {"country": None})
    assert cleared.json()["country"] is None
    assert cleared.json()["timezone"] == "Europe/Stockholm"  # what was not sent stays

    log = (await client.get("/v1/audit-log", headers=headers)).json()["items"]
    assert [e["action"] for e in log[:2]] == ["tenant.updated", "tenant.updated"]
    assert log[0]["details"] == {
        "changed": ["country"],
        "from": {"country": "SE"},
        "to": {"country": None},
    }
    assert log[1]["details"]["changed"] == ["aliases", "country", "timezone", "working_hours"]
    assert log[1]["details"]["to"]["aliases"] == aliases
    assert log[1]["target"] == {"type": "tenant", "id": str(tenant.id)}

    feed = await tenant_events(client, headers, at_least=2)
    assert [e["data"]["changed"] for e in feed["items"]] == [
        ["aliases", "country", "timezone", "working_hours"],
        ["country"],
    ]
    assert feed["items"][-1]["data"]["tenant"] == cleared.json()

    # Sending what is already there changes nothing and records nothing.
    same = await patch(client, headers, {"country": None, "aliases": aliases})
    assert same.status_code == 200
    assert same.headers["etag"] == cleared.headers["etag"]
    assert len((await client.get("/v1/audit-log", headers=headers)).json()["items"]) == len(log)


async def test_aliases_are_normalised_and_repeats_dropped(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    name = word()
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in name)  # full-width look-alikes
    body = {"aliases": [f"  {name}  Kids ", fullwidth, name.upper(), f"{name[:3]}\u200b{name[3:]}"]}
    response = await patch(client, headers, body)
    assert response.status_code == 200, response.text
    assert response.json()["aliases"] == [f"{name} Kids", name]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"country": "XX"}, "country"),
        ({"country": "se"}, "country"),
        ({"country": "SWE"}, "country"),
        (
            {"working_hours": {"start": "09:10", "end": "18:00", "days": ["mon"]}},
            "working_hours.start",
        ),
        (
            {"working_hours": {"start": "9:00", "end": "18:00", "days": ["mon"]}},
            "working_hours.start",
        ),
        (
            {"working_hours": {"start": "09:00", "end": "18:05", "days": ["mon"]}},
            "working_hours.end",
        ),
        (
            {"working_hours": {"start": "18:00", "end": "09:00", "days": ["mon"]}},
            "working_hours.end",
        ),
        (
            {"working_hours": {"start": "09:00", "end": "09:00", "days": ["mon"]}},
            "working_hours.end",
        ),
        (
            {"working_hours": {"start": "09:00", "end": "24:00", "days": ["mon"]}},
            "working_hours.end",
        ),
        ({"working_hours": {"start": "09:00", "end": "18:00", "days": []}}, "working_hours.days"),
        (
            {"working_hours": {"start": "09:00", "end": "18:00", "days": ["mon", "mon"]}},
            "working_hours.days",
        ),
        (
            {"working_hours": {"start": "09:00", "end": "18:00", "days": ["funday"]}},
            "working_hours.days",
        ),
        ({"working_hours": {"start": "09:00", "end": "18:00"}}, "working_hours.days"),
        ({"aliases": ["ab"]}, "aliases[0]"),
        ({"aliases": ["Fine Alias X", "   x  "]}, "aliases[1]"),
        ({"aliases": ["凯"]}, "aliases[0]"),
        ({"aliases": ["Z" * 101]}, "aliases[0]"),
        ({"aliases": [f"Alias {n:02d}" for n in range(51)]}, "aliases"),
        ({"aliases": ["Kids"]}, "aliases[0]"),
        ({"aliases": ["Zqualified Brand", "APPAREL"]}, "aliases[1]"),
        ({"aliases": ["Apparel Ltd"]}, "aliases[0]"),
        ({"aliases": ["有限公司"]}, "aliases[0]"),
    ],
)
async def test_bad_values_are_422_naming_the_field_and_change_nothing(
    client, make_tenant, body, field
):
    tenant = await make_tenant()
    headers = await tenant.headers()
    before = (await client.get("/v1/tenant", headers=headers)).json()
    problem = assert_problem(await patch(client, headers, body), 422)
    assert field_names(problem) == {field}, problem
    assert (await client.get("/v1/tenant", headers=headers)).json() == before


async def test_a_cjk_alias_may_be_two_characters(client, make_tenant):
    tenant = await make_tenant()
    short = han()
    response = await patch(client, await tenant.headers(), {"aliases": [short]})
    assert response.status_code == 200, response.text
    assert response.json()["aliases"] == [short]


async def test_nobody_may_take_another_tenants_name_slug_or_alias_in_any_case(client, make_tenant):
    rival, tenant = await make_tenant(name=f"{word()} Apparel"), await make_tenant()
    rival_alias = f"{word()} Kids"
    assert (
        await patch(client, await rival.headers(), {"aliases": [rival_alias]})
    ).status_code == 200
    headers = await tenant.headers()
    for taken in (
        rival.name.upper(),
        rival.name.lower().replace(" ", "-"),
        rival.slug.upper(),
        rival.slug.replace("-", " "),
        rival_alias.lower(),
        rival_alias.upper().replace(" ", "_"),
    ):
        problem = assert_problem(await patch(client, headers, {"aliases": ["Ours Zq", taken]}), 422)
        assert problem["errors"] == [
            {"field": "aliases[1]", "message": "is another tenant's name, slug or alias"}
        ]
        # The answer names no tenant.
        assert rival.slug not in json.dumps(problem)
    assert (await client.get("/v1/tenant", headers=headers)).json()["aliases"] == []
    # Once the rival lets go of its alias, it is free.
    assert (await patch(client, await rival.headers(), {"aliases": []})).status_code == 200
    freed = await patch(client, headers, {"aliases": [rival_alias]})
    assert freed.json()["aliases"] == [rival_alias]


async def test_another_tenants_aliases_are_never_readable_only_testable(
    client, make_tenant, database
):
    owner, other = await make_tenant(), await make_tenant()
    alias = f"{word()} Sport"
    assert (await patch(client, await owner.headers(), {"aliases": [alias]})).status_code == 200
    async with database.transaction(other.id) as session:
        rows = (await session.execute(sa.text("SELECT * FROM tenant_aliases"))).all()
        taken = await session.scalar(sa.text("SELECT tenant_name_taken(:t)"), {"t": alias.upper()})
        free = await session.scalar(sa.text("SELECT tenant_name_taken(:t)"), {"t": word()})
    assert rows == []
    assert (taken, free) == (True, False)
    async with database.transaction(owner.id) as session:
        own = await session.scalar(sa.text("SELECT tenant_name_taken(:t)"), {"t": alias})
    assert own is False  # its own alias is not "another tenant's"


async def test_the_app_role_may_change_only_the_profile_columns_of_its_own_row(
    make_tenant, database
):
    tenant, other = await make_tenant(), await make_tenant()
    for column in ("name", "slug", "kind"):
        with pytest.raises(sa.exc.DBAPIError, match="permission denied"):
            async with database.transaction(tenant.id) as session:
                await session.execute(
                    sa.text(f"UPDATE tenants SET {column} = {column} WHERE id = :id"),  # noqa: S608
                    {"id": tenant.id},
                )
    async with database.transaction(tenant.id) as session:
        moved = await session.execute(
            sa.text("UPDATE tenants SET country = 'SE' WHERE id = :id"), {"id": other.id}
        )
    assert moved.rowcount == 0


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_only_admins_change_the_tenant(client, make_tenant, role):
    tenant = await make_tenant(role=role)
    problem = assert_problem(await patch(client, await tenant.headers(), {"country": "SE"}), 403)
    assert "admin" in problem["detail"]


async def test_the_admin_scope_is_needed(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers("findings:read findings:write")
    problem = assert_problem(await patch(client, headers, {"country": "SE"}), 403)
    assert "`admin` scope" in problem["detail"]
    assert (await client.get("/v1/tenant", headers=headers)).json()["country"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Renamed"},
        {"slug": "renamed"},
        {"kind": "facilitator"},
        {"id": str(uuid.uuid4())},
        {"working_hours": {"start": "09:00", "end": "18:00", "days": ["mon"], "lunch": "12:00"}},
        {"aliases": "KAL"},
        {"country": 46},
    ],
)
async def test_unknown_fields_and_wrong_types_are_400(client, make_tenant, body):
    tenant = await make_tenant()
    headers = await tenant.headers()
    before = (await client.get("/v1/tenant", headers=headers)).json()
    assert_problem(await patch(client, headers, body), 400)
    assert (await client.get("/v1/tenant", headers=headers)).json() == before


async def test_if_match_is_honoured(client, make_tenant):
    tenant = await make_tenant()
    headers = await tenant.headers()
    etag = (await client.get("/v1/tenant", headers=headers)).headers["etag"]
    assert (
        await patch(client, headers, {"country": "HK"}, **{"If-Match": etag})
    ).status_code == 200
    stale = await patch(client, headers, {"country": "SE"}, **{"If-Match": etag})
    assert_problem(stale, 412)
    assert (await client.get("/v1/tenant", headers=headers)).json()["country"] == "HK"
    assert (await patch(client, headers, {"country": "SE"}, **{"If-Match": "*"})).status_code == 200


async def test_the_command_line_takes_country_and_aliases(client, admin_url, settings, database):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    aliases = [f"{word()} Kids", han()]

    async def cli(*args: str) -> tuple[int, Any]:
        env = {
            **os.environ,
            "DATABASE_URL": admin_url.render_as_string(hide_password=False),
            "WG_DATA_DIR": str(settings.data_dir),
            "WG_LOG_LEVEL": "WARNING",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wg_api.cli",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert out, err.decode()
        return process.returncode or 0, json.loads(out)

    code, made = await cli(
        "tenant",
        "create",
        "--slug",
        slug,
        "--name",
        f"{word()} Apparel",
        "--country",
        "VN",
        "--alias",
        aliases[0],
        "--alias",
        aliases[1],
    )
    assert code == 0, made
    assert made["country"] == "VN"
    assert made["aliases"] == aliases
    assert made["working_hours"] == DEFAULT_HOURS

    async with superuser_transaction(database) as session:
        tenant_id = await service.tenant_for_cli(session, slug)
    async with database.transaction(tenant_id) as session:
        profile = await service.tenant_profile(session, tenant_id)
    assert (profile.country, profile.aliases) == ("VN", aliases)

    for args, fields in (
        (["--alias", aliases[0].upper()], ["aliases[0]"]),
        (
            ["--country", "ZZ", "--alias", "Fine Zqxx", "--alias", "Footwear"],
            ["country", "aliases[1]"],
        ),
    ):
        other = f"cli-{uuid.uuid4().hex[:8]}"
        code, refused = await cli("tenant", "create", "--slug", other, "--name", "X Y Z", *args)
        assert code == 1, refused
        assert refused["error"] == "validation-failed"
        assert [e["field"] for e in refused["errors"]] == fields
        async with superuser_transaction(database) as session:
            assert (
                await session.scalar(
                    sa.text("SELECT count(*) FROM tenants WHERE slug = :s"), {"s": other}
                )
                == 0
            )
