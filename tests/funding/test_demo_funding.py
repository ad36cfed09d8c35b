"""`wg-api demo`'s funding part: the summer spaces pledged in four currencies, the finished
two-year programme with 3,512 + 1,145 = 4,657 workers reached; a second run adds nothing."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.demo import DEMO_GROUP, PARENTS_PROGRAMME, SUMMER_SPACES, seed_demo

TITLES = [SUMMER_SPACES["title"], PARENTS_PROGRAMME["title"]]
COUNTS = """
    WITH demo AS (
        SELECT i.id FROM initiatives i JOIN working_groups g ON g.id = i.working_group_id
        WHERE g.name = :group AND i.title = ANY(:titles)
    )
    SELECT (SELECT count(*) FROM demo) AS initiatives,
           (SELECT count(*) FROM pledges WHERE initiative_id IN (SELECT id FROM demo)) AS pledges,
           (SELECT count(*) FROM ledger_bookings WHERE initiative_id IN (SELECT id FROM demo))
           AS bookings
"""


async def _counts(admin: AsyncConnection) -> tuple[int, ...]:
    async with admin.begin():
        row = (
            await admin.execute(sa.text(COUNTS), {"titles": TITLES, "group": DEMO_GROUP["name"]})
        ).one()
    return tuple(row)


async def test_the_demo_funds_two_initiatives_once(client, database, settings, admin):
    first = await seed_demo(database, settings)
    summer, parents = first["initiatives"]
    assert summer["title"] == SUMMER_SPACES["title"]
    assert summer["status"] == "active"
    assert summer["currency"] == "HKD"
    # HK$120,000 + US$15,000 x 7.8125 + SEK 160,000 x 0.7305 + EUR 14,000 x 8.421
    assert summer["funding"]["committed"] == {"amount": 47_196_150, "currency": "HKD"}
    assert summer["funding"]["funders"] == 4
    assert summer["funding"]["paid"] == {"amount": 41_301_450, "currency": "HKD"}
    assert summer["funding"]["spent"] == {"amount": -28_239_000, "currency": "HKD"}
    assert summer["funding"]["balance"] == {"amount": 13_062_450, "currency": "HKD"}
    assert parents["status"] == "completed"
    counts = await _counts(admin)
    assert counts == (2, 8, 15)

    again = await seed_demo(database, settings)
    assert [i["id"] for i in again["initiatives"]] == [summer["id"], parents["id"]]
    assert await _counts(admin) == counts

    brand = next(t for t in again["tenants"] if t["tenant"]["slug"] == "lumen-toys")
    token = (
        await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(brand["client_id"], brand["client_secret"]),
        )
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    statement = (
        await client.get(f"/v1/initiatives/{summer['id']}/statement", headers=headers)
    ).json()
    assert "payment" not in {e["kind"] for e in statement["entries"]}
    assert [e["amount"]["amount"] for e in statement["entries"] if e["kind"] == "funders"] == [
        41_301_450
    ]
    indicators = (
        await client.get(f"/v1/initiatives/{parents['id']}/indicators", headers=headers)
    ).json()["items"]
    (workers,) = indicators
    assert workers["total"] == 4_657
    parts = [r["breakdown"] for r in workers["results"]]
    assert sum(p["in_factory_training"] for p in parts) == 3_512
    assert sum(p["elearning"] for p in parts) == 1_145
