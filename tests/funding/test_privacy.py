"""Red team of `totals_only`: a member who is not a facilitator reads everything it can and must
find no other tenant's amount, pledge id or name, exactly or by subtracting its own; aggregates
of funders' money appear only with three tenants behind them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import uuid
from typing import Any

import httpx

from tests.funding.conftest import (
    Actor,
    assert_problem,
    backdate_expense,
    backdate_payment,
    get_initiative,
    money,
    open_initiative,
    pay,
    pledge,
    spend,
)

NUMBERS = re.compile(r"-?\d+")
FUNDING_EVENTS = (
    ",".join(f"initiative.{verb}" for verb in ("opened", "funded", "completed", "cancelled"))
    + ",pledge.committed,pledge.withdrawn,payment.recorded"
)


async def funding_feed(client: httpx.AsyncClient, reader: Actor, expected: int) -> Any:
    """The reader's funding events; waits briefly while concurrent transactions (other tests')
    hold the feed back (it shows only what no running transaction can still precede)."""
    for _ in range(100):
        response = await client.get(
            "/v1/events", params={"limit": 200, "types": FUNDING_EVENTS}, headers=reader.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        if len(body["items"]) >= expected:
            break
        await asyncio.sleep(0.05)
    return body


async def everything(
    client: httpx.AsyncClient, reader: Actor, initiative: dict[str, Any], probes: list[str]
) -> list[str]:
    """Every answer `reader` can get about the initiative, including errors on others' ids."""
    base = f"/v1/initiatives/{initiative['id']}"
    paths = [
        base,
        f"{base}/pledges",
        f"{base}/expenses",
        f"{base}/statement",
        f"{base}/statement?format=csv",
        f"{base}/indicators",
        f"/v1/working-groups/{initiative['working_group_id']}/initiatives",
    ]
    texts = [(await client.get(path, headers=reader.headers)).text for path in paths]
    for probe in probes:
        texts.append((await client.get(f"/v1/pledges/{probe}", headers=reader.headers)).text)
        for action in ("commit", "withdraw"):
            texts.append(
                (await client.post(f"/v1/pledges/{probe}/{action}", headers=reader.headers)).text
            )
    # Membership is no secret among members: the funding events are what must say nothing.
    texts.append(json.dumps(await funding_feed(client, reader, expected=1)))
    return texts


def assert_nothing_of(texts: list[str], other: Actor, ids: list[str], amounts: set[int]) -> None:
    for text in texts:
        for secret in (*ids, str(other.id), other.slug, other.name):
            assert secret not in text, (secret, text[:300])
        found = {int(n) for n in NUMBERS.findall(text)}
        assert not found & amounts, (found & amounts, text[:300])


async def test_two_funders_reveal_nothing_to_each_other(client, fund):
    initiative = await open_initiative(client, fund, budget=money(5_000_000))
    a, b, c, d = fund.brands
    mine = await pledge(client, a, initiative, 123_457)
    theirs = await pledge(client, b, initiative, 23_456, "USD", "7.7777")
    their_hkd = theirs["amount_in_initiative_currency"]["amount"]
    their_payment = await pay(client, fund, theirs["id"], 11_111, "USD")
    my_payment = await pay(client, fund, mine["id"], 45_679)
    await spend(client, fund, initiative, 7_001)

    for reader in (a, d, fund.observer):
        seen = await get_initiative(client, reader, initiative)
        assert seen["funding"]["committed"] is None
        assert seen["funding"]["percent_committed"] is None
        assert seen["funding"]["funders"] == "fewer than 3"
        assert seen["funding"]["paid"] is None
        assert seen["funding"]["balance"] is None
        assert seen["funding"]["spent"] == money(-7_001)

    listed = await client.get(f"/v1/initiatives/{initiative['id']}/pledges", headers=a.headers)
    assert [p["id"] for p in listed.json()["items"]] == [mine["id"]]
    listed = await client.get(f"/v1/initiatives/{initiative['id']}/pledges", headers=d.headers)
    assert listed.json()["items"] == []

    theirs_read = await client.get(f"/v1/pledges/{theirs['id']}", headers=a.headers)
    random_read = await client.get(f"/v1/pledges/{uuid.uuid4()}", headers=a.headers)
    assert_problem(theirs_read, 404)
    assert theirs_read.json() == random_read.json()

    statement = (
        await client.get(f"/v1/initiatives/{initiative['id']}/statement", headers=a.headers)
    ).json()
    assert [e["kind"] for e in statement["entries"]] == ["expense"]
    assert statement["entries"][0]["balance"] is None
    assert statement["totals"] == {"paid": None, "spent": money(-7_001), "balance": None}

    secrets = {
        theirs["amount"]["amount"],
        their_hkd,
        their_payment["amount"]["amount"],
        their_payment["amount_in_initiative_currency"]["amount"],
        # What subtracting one's own from a total would give.
        their_hkd + mine["amount_in_initiative_currency"]["amount"],
        their_payment["amount_in_initiative_currency"]["amount"]
        + my_payment["amount_in_initiative_currency"]["amount"],
    }
    for reader in (a, d, fund.observer):
        texts = await everything(client, reader, initiative, [theirs["id"]])
        assert_nothing_of(texts, b, [theirs["id"], their_payment["id"]], secrets)
    # The facilitator sees it all.
    seen = await get_initiative(client, fund.facilitator, initiative)
    assert seen["funding"]["committed"] == money(123_457 + their_hkd)
    assert seen["funding"]["funders"] == 2
    # c has nothing to do with it, but is a member: the same answers as d.
    assert (await get_initiative(client, c, initiative))["funding"] == (
        await get_initiative(client, d, initiative)
    )["funding"]


async def test_three_funders_show_totals_and_a_funders_line(client, fund):
    initiative = await open_initiative(client, fund, budget=money(5_000_000))
    a, b, c, d = fund.brands
    pledges = [
        await pledge(client, brand, initiative, amount)
        for brand, amount in ((a, 100_003), (b, 200_005), (c, 300_007))
    ]
    for made, amount in zip(pledges, (50_001, 60_002, 70_003), strict=True):
        await pay(client, fund, made["id"], amount)
    for reader in (a, d):
        funding = (await get_initiative(client, reader, initiative))["funding"]
        assert funding["committed"] == money(600_015)
        assert funding["funders"] == 3
        assert funding["percent_committed"] == 12
        assert funding["paid"] == money(180_006)
        assert funding["balance"] == money(180_006)
        statement = (
            await client.get(
                f"/v1/initiatives/{initiative['id']}/statement", headers=reader.headers
            )
        ).json()
        assert [(e["kind"], e["amount"], e["balance"]) for e in statement["entries"]] == [
            ("funders", money(180_006), money(180_006))
        ]
        listed = await client.get(
            f"/v1/initiatives/{initiative['id']}/pledges", headers=reader.headers
        )
        assert all(p["tenant"]["id"] == str(reader.id) for p in listed.json()["items"])
        texts = await everything(client, reader, initiative, [p["id"] for p in pledges])
        for other, made in zip((a, b, c), pledges, strict=True):
            if other is reader:
                continue
            assert_nothing_of(texts, other, [made["id"]], {made["amount"]["amount"]})


async def test_months_below_three_payers_are_carried_into_the_next_released_month(
    client, fund, admin
):
    initiative = await open_initiative(client, fund, budget=money(9_000_000))
    a, b, c, d = fund.brands
    made = {
        brand.slug: await pledge(client, brand, initiative, 1_000_000) for brand in (a, b, c, d)
    }

    async def paid_on(brand: Actor, amount: int, at: str) -> None:
        payment = await pay(client, fund, made[brand.slug]["id"], amount)
        await backdate_payment(admin, payment["id"], at)

    await paid_on(a, 10_001, "2027-01-05T01:00:00Z")
    await paid_on(b, 10_002, "2027-01-06T01:00:00Z")
    await paid_on(c, 10_003, "2027-01-31T23:00:00Z")
    await paid_on(d, 40_004, "2027-02-10T01:00:00Z")  # alone in February: withheld
    expense = await spend(client, fund, initiative, 5_005)
    await backdate_expense(admin, expense["id"], "2027-02-20T00:00:00Z")
    await paid_on(a, 50_005, "2027-03-01T01:00:00Z")
    await paid_on(b, 60_006, "2027-03-02T01:00:00Z")  # two in March: withheld too

    reader = c
    path = f"/v1/initiatives/{initiative['id']}/statement"
    statement = (await client.get(path, headers=reader.headers)).json()
    assert [
        (e["kind"], e["booked_at"], e["amount"], e["balance"]) for e in statement["entries"]
    ] == [
        ("funders", "2027-01-31T23:00:00Z", money(30_006), money(30_006)),
        ("expense", "2027-02-20T00:00:00Z", money(-5_005), money(25_001)),
    ]
    assert statement["totals"]["paid"] == money(30_006)
    funding = (await get_initiative(client, reader, initiative))["funding"]
    assert funding["paid"] == money(30_006)
    assert funding["balance"] == money(25_001)
    # D's February payment (40,004) appears nowhere, not even as a difference.
    texts = await everything(client, reader, initiative, [made[d.slug]["id"]])
    assert_nothing_of(texts, d, [made[d.slug]["id"]], {40_004, 40_004 + 30_006})

    await paid_on(a, 1_001, "2027-04-03T01:00:00Z")
    await paid_on(b, 1_002, "2027-04-04T01:00:00Z")
    await paid_on(d, 1_003, "2027-04-05T01:00:00Z")
    statement = (await client.get(path, headers=reader.headers)).json()
    carried = 40_004 + 50_005 + 60_006 + 1_001 + 1_002 + 1_003
    assert [(e["kind"], e["booked_at"], e["amount"]) for e in statement["entries"]] == [
        ("funders", "2027-01-31T23:00:00Z", money(30_006)),
        ("expense", "2027-02-20T00:00:00Z", money(-5_005)),
        ("funders", "2027-04-05T01:00:00Z", money(carried)),
    ]
    assert statement["entries"][-1]["balance"] == money(30_006 - 5_005 + carried)
    csv_rows = list(
        csv.DictReader(
            io.StringIO((await client.get(path + "?format=csv", headers=reader.headers)).text)
        )
    )
    assert [(r["kind"], int(r["amount"]), r["balance"]) for r in csv_rows] == [
        ("funders", 30_006, "30006"),
        ("expense", -5_005, "25001"),
        ("funders", carried, str(30_006 - 5_005 + carried)),
    ]
    # The facilitator's statement has every payment, in the same months.
    full = (await client.get(path, headers=fund.facilitator.headers)).json()
    assert sum(1 for e in full["entries"] if e["kind"] == "payment") == 9
    assert full["totals"]["paid"] == money(30_006 + carried)


async def test_open_visibility_shows_every_pledge_and_payment_to_members(client, fund):
    initiative = await open_initiative(
        client, fund, budget=money(5_000_000), pledge_visibility="open"
    )
    a, b = fund.brands[:2]
    theirs = await pledge(client, b, initiative, 77_777)
    await pay(client, fund, theirs["id"], 7_777)
    seen = (await client.get(f"/v1/pledges/{theirs['id']}", headers=a.headers)).json()
    assert seen["amount"] == money(77_777)
    assert seen["tenant"]["name"] == b.name
    funding = (await get_initiative(client, a, initiative))["funding"]
    assert funding["committed"] == money(77_777)
    assert funding["funders"] == 1
    statement = (
        await client.get(f"/v1/initiatives/{initiative['id']}/statement", headers=a.headers)
    ).json()
    assert [e["kind"] for e in statement["entries"]] == ["payment"]


async def test_the_event_feed_tells_a_member_only_its_own_money(client, fund):
    initiative = await open_initiative(client, fund, budget=money(300_000))
    a, b, c = fund.brands[:3]
    for brand, amount in ((a, 100_001), (b, 100_002), (c, 100_003)):
        made = await pledge(client, brand, initiative, amount)
        await pay(client, fund, made["id"], amount - 1)
    feed = await funding_feed(client, a, expected=4)
    types = [e["type"] for e in feed["items"]]
    assert types.count("initiative.opened") == 1
    assert types.count("pledge.committed") == 1
    assert types.count("payment.recorded") == 1
    assert types.count("initiative.funded") == 1
    text = json.dumps(feed)
    for secret in ("100002", "100003", str(b.id), str(c.id), b.name, c.name):
        assert secret not in text
