"""Pledges in several currencies, commitments, the automatic funded move (once, even under
concurrent commits), withdrawal rules, payments, and who hears about them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.funding.conftest import (
    assert_problem,
    error_fields,
    get_initiative,
    money,
    open_initiative,
    pay,
    pledge,
)
from tests.working_groups.conftest import event_data
from wg_api.funding import service


async def test_pledges_in_four_currencies_convert_half_even_with_the_stored_rate(client, fund):
    initiative = await open_initiative(client, fund, budget=money(100_000_000))
    a, b, c, d = fund.brands
    in_hkd = await pledge(client, a, initiative, 5_000_000, commit=False)
    in_usd = await pledge(client, b, initiative, 640_000, "USD", "7.8125", commit=False)
    in_sek = await pledge(client, c, initiative, 1_234_567, "SEK", "0.7305", commit=False)
    in_jpy = await pledge(client, d, initiative, 1_000_001, "JPY", "0.05", commit=False)
    assert in_hkd["fx_rate"] is None
    assert in_hkd["amount_in_initiative_currency"] == money(5_000_000)
    assert in_usd["amount_in_initiative_currency"] == money(5_000_000)  # $6,400 x 7.8125
    assert in_usd["fx_rate"] == "7.8125"
    # SEK 12,345.67 x 0.7305 = HK$9,018.51194 -> 901851
    assert in_sek["amount_in_initiative_currency"] == money(901_851)
    # JPY 1,000,001 x 0.05 = HK$50,000.05 exactly
    assert in_jpy["amount_in_initiative_currency"] == money(5_000_005)
    assert in_sek["status"] == "offered"
    assert in_sek["paid"] == money(0, "SEK")
    assert in_sek["tenant"]["id"] == str(c.id)


async def test_half_even_on_an_exact_half(client, fund):
    initiative = await open_initiative(client, fund)
    # USD 0.01 x 0.5 = HK$0.005 -> 0 would be nothing; USD 0.03 x 0.5 = 0.015 -> 0.02
    made = await pledge(client, fund.brands[0], initiative, 3, "USD", "0.5", commit=False)
    assert made["amount_in_initiative_currency"] == money(2)
    made = await pledge(client, fund.brands[0], initiative, 5, "USD", "0.5", commit=False)
    assert made["amount_in_initiative_currency"] == money(2)  # 0.025 -> 0.02


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"amount": money(100, "ABC")}, "amount.currency", 422),
        ({"amount": money(100, "XXX"), "fx_rate": "1"}, "amount.currency", 422),
        ({"amount": money(100, "BOV"), "fx_rate": "1"}, "amount.currency", 422),
        ({"amount": money(0)}, "amount.amount", 422),
        ({"amount": money(-100)}, "amount.amount", 422),
        ({"amount": money(10**15)}, "amount.amount", 422),
        ({"amount": money(100, "USD")}, "fx_rate", 422),
        ({"amount": money(100), "fx_rate": "1"}, "fx_rate", 422),
        ({"amount": money(100, "USD"), "fx_rate": "0"}, "fx_rate", 422),
        ({"amount": money(100, "USD"), "fx_rate": "-7.8"}, "fx_rate", 422),
        ({"amount": money(100, "USD"), "fx_rate": "7,8"}, "fx_rate", 422),
        ({"amount": money(100, "USD"), "fx_rate": "1e3"}, "fx_rate", 422),
        ({"amount": money(100, "USD"), "fx_rate": "7.81234567891"}, None, 201),
        ({"amount": money(100, "USD"), "fx_rate": "7.812345678912"}, "fx_rate", 422),
        ({"amount": money(1, "USD"), "fx_rate": "0.0001"}, "amount.amount", 422),
        ({"amount": money(10**15 - 1, "KWD"), "fx_rate": "100"}, "fx_rate", 422),
        ({"amount": money(100, "USD"), "fx_rate": 7.8}, "fx_rate", 400),
        ({"amount": money(100), "tenant_id": str(uuid.uuid4())}, "tenant_id", 400),
        ({"amount": {"amount": "100", "currency": "HKD"}}, "amount.amount", 400),
    ],
)
async def test_bad_pledges(client, fund, body, field, status):
    initiative = await open_initiative(client, fund)
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/pledges", json=body, headers=fund.brands[0].headers
    )
    if status == 201:
        assert response.status_code == 201, response.text
        return
    assert field in error_fields(assert_problem(response, status))


async def test_observers_do_not_pledge_and_drafts_take_no_pledges(client, fund):
    initiative = await open_initiative(client, fund)
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/pledges",
        json={"amount": money(100)},
        headers=fund.observer.headers,
    )
    assert_problem(response, 403)
    cancelled = await client.patch(
        f"/v1/initiatives/{initiative['id']}",
        json={"status": "cancelled"},
        headers=fund.facilitator.headers,
    )
    assert cancelled.status_code == 200
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/pledges",
        json={"amount": money(100)},
        headers=fund.brands[0].headers,
    )
    assert assert_problem(response, 409)["type"] == "/problems/invalid-transition"


async def test_commit_twice_is_409_and_only_the_pledger_commits(client, fund):
    initiative = await open_initiative(client, fund)
    made = await pledge(client, fund.brands[0], initiative, 100, commit=False)
    by_facilitator = await client.post(
        f"/v1/pledges/{made['id']}/commit", headers=fund.facilitator.headers
    )
    assert_problem(by_facilitator, 403)
    by_other = await client.post(f"/v1/pledges/{made['id']}/commit", headers=fund.brands[1].headers)
    random = await client.post(f"/v1/pledges/{uuid.uuid4()}/commit", headers=fund.brands[1].headers)
    assert_problem(by_other, 404)
    assert by_other.json() == random.json()
    first = await client.post(f"/v1/pledges/{made['id']}/commit", headers=fund.brands[0].headers)
    assert first.json()["status"] == "committed"
    again = await client.post(f"/v1/pledges/{made['id']}/commit", headers=fund.brands[0].headers)
    assert assert_problem(again, 409)["type"] == "/problems/invalid-transition"


async def test_funded_exactly_once_and_every_member_hears_it(client, fund, database):
    initiative = await open_initiative(client, fund, budget=money(300_000))
    a, b, c, d = fund.brands
    await pledge(client, a, initiative, 150_000)
    assert (await get_initiative(client, a, initiative))["status"] == "open"
    await pledge(client, b, initiative, 150_000)
    assert (await get_initiative(client, a, initiative))["status"] == "funded"
    await pledge(client, c, initiative, 50_000)  # pledging goes on while funded
    for actor in (fund.facilitator, a, b, c, d, fund.observer):
        funded = await event_data(database, actor, "initiative.funded")
        assert len(funded) == 1, actor
        assert funded[0]["initiative"]["id"] == initiative["id"]
    assert await event_data(database, fund.outsider, "initiative.funded") == []


async def test_two_commits_over_http_at_once_fund_it_once(client, fund, database):
    initiative = await open_initiative(client, fund, budget=money(200_000))
    a, b = fund.brands[:2]
    first = await pledge(client, a, initiative, 100_000, commit=False)
    second = await pledge(client, b, initiative, 100_000, commit=False)
    responses = await asyncio.gather(
        client.post(f"/v1/pledges/{first['id']}/commit", headers=a.headers),
        client.post(f"/v1/pledges/{second['id']}/commit", headers=b.headers),
    )
    assert [r.status_code for r in responses] == [200, 200]
    assert (await get_initiative(client, a, initiative))["status"] == "funded"
    assert len(await event_data(database, fund.facilitator, "initiative.funded")) == 1


async def test_a_commit_waits_for_the_one_before_it_on_two_connections(client, fund, database):
    """Each commit alone stays below the target; without the initiative's row lock each would
    count only its own and neither would move the initiative to funded."""
    initiative = await open_initiative(client, fund, budget=money(200_000))
    a, b = fund.brands[:2]
    first = await pledge(client, a, initiative, 100_000, commit=False)
    second = await pledge(client, b, initiative, 100_000, commit=False)
    pledge_a, pledge_b = uuid.UUID(first["id"]), uuid.UUID(second["id"])
    async with database.transaction(a.id) as session_a:
        await service.commit_pledge(session_a, a.id, pledge_a)

        async def commit_b() -> None:
            async with database.transaction(b.id) as session_b:
                await service.commit_pledge(session_b, b.id, pledge_b)

        waiting = asyncio.create_task(commit_b())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # blocked on the initiative's row
    await asyncio.wait_for(waiting, 10)
    assert (await get_initiative(client, a, initiative))["status"] == "funded"
    assert len(await event_data(database, fund.facilitator, "initiative.funded")) == 1


async def test_withdraw_rules(client, fund):
    initiative = await open_initiative(client, fund, budget=money(300_000))
    a, b, c = fund.brands[:3]
    offered = await pledge(client, a, initiative, 10_000, commit=False)
    response = await client.post(f"/v1/pledges/{offered['id']}/withdraw", headers=a.headers)
    assert response.json()["status"] == "withdrawn"
    again = await client.post(f"/v1/pledges/{offered['id']}/withdraw", headers=a.headers)
    assert_problem(again, 409)
    recommit = await client.post(f"/v1/pledges/{offered['id']}/commit", headers=a.headers)
    assert_problem(recommit, 409)

    committed_unpaid = await pledge(client, a, initiative, 10_000)
    response = await client.post(
        f"/v1/pledges/{committed_unpaid['id']}/withdraw", headers=a.headers
    )
    assert response.json()["status"] == "withdrawn"

    committed_paid = await pledge(client, a, initiative, 10_000)
    await pay(client, fund, committed_paid["id"], 1_000)
    response = await client.post(f"/v1/pledges/{committed_paid['id']}/withdraw", headers=a.headers)
    assert assert_problem(response, 409)["type"] == "/problems/invalid-transition"

    binding = await pledge(client, b, initiative, 150_000)
    await pledge(client, c, initiative, 150_000)
    assert (await get_initiative(client, a, initiative))["status"] == "funded"
    response = await client.post(f"/v1/pledges/{binding['id']}/withdraw", headers=b.headers)
    assert assert_problem(response, 409)["type"] == "/problems/invalid-transition"
    late_offer = await pledge(client, b, initiative, 5_000, commit=False)
    response = await client.post(f"/v1/pledges/{late_offer['id']}/withdraw", headers=b.headers)
    assert response.status_code == 200


async def test_payments_move_the_pledge_to_partially_paid_then_fulfilled(client, fund):
    initiative = await open_initiative(client, fund, budget=money(100_000_000))
    brand = fund.brands[1]
    made = await pledge(client, brand, initiative, 640_000, "USD", "7.8125")
    payment = await pay(client, fund, made["id"], 400_000, "USD")
    assert payment["amount"] == money(400_000, "USD")
    assert payment["amount_in_initiative_currency"] == money(3_125_000)
    assert payment["pledge_id"] == made["id"]
    assert payment["received_on"] == "2027-06-15"
    current = (await client.get(f"/v1/pledges/{made['id']}", headers=brand.headers)).json()
    assert current["status"] == "partially_paid"
    assert current["paid"] == money(400_000, "USD")
    over = await client.post(
        f"/v1/pledges/{made['id']}/payments",
        json={"amount": money(240_001, "USD"), "received_on": "2027-07-01"},
        headers=fund.facilitator.headers,
    )
    assert "amount.amount" in error_fields(assert_problem(over, 422))
    wrong_currency = await client.post(
        f"/v1/pledges/{made['id']}/payments",
        json={"amount": money(1, "HKD"), "received_on": "2027-07-01"},
        headers=fund.facilitator.headers,
    )
    assert "amount.currency" in error_fields(assert_problem(wrong_currency, 422))
    await pay(client, fund, made["id"], 240_000, "USD")
    current = (await client.get(f"/v1/pledges/{made['id']}", headers=brand.headers)).json()
    assert current["status"] == "fulfilled"
    more = await client.post(
        f"/v1/pledges/{made['id']}/payments",
        json={"amount": money(1, "USD"), "received_on": "2027-07-01"},
        headers=fund.facilitator.headers,
    )
    assert_problem(more, 409)
    funding = (await get_initiative(client, fund.facilitator, initiative))["funding"]
    assert funding["paid"] == money(3_125_000 + 1_875_000)


async def test_payments_are_for_facilitators_on_committed_pledges(client, fund):
    initiative = await open_initiative(client, fund)
    brand = fund.brands[0]
    offered = await pledge(client, brand, initiative, 10_000, commit=False)
    body = {"amount": money(100), "received_on": "2027-06-01"}
    response = await client.post(
        f"/v1/pledges/{offered['id']}/payments", json=body, headers=fund.facilitator.headers
    )
    assert assert_problem(response, 409)["type"] == "/problems/invalid-transition"
    response = await client.post(
        f"/v1/pledges/{offered['id']}/payments", json=body, headers=brand.headers
    )
    assert_problem(response, 403)
    response = await client.post(
        f"/v1/pledges/{offered['id']}/payments",
        json={**body, "received_on": "June"},
        headers=fund.facilitator.headers,
    )
    assert "received_on" in error_fields(assert_problem(response, 422))


async def test_pledge_events_reach_the_pledger_and_facilitators_only(client, fund, database):
    initiative = await open_initiative(client, fund)
    a, b = fund.brands[:2]
    made = await pledge(client, a, initiative, 10_000)
    await pay(client, fund, made["id"], 4_000)
    withdrawn_offer = await pledge(client, a, initiative, 5_000, commit=False)
    await client.post(f"/v1/pledges/{withdrawn_offer['id']}/withdraw", headers=a.headers)
    for type in ("pledge.committed", "payment.recorded", "pledge.withdrawn"):
        assert len(await event_data(database, a, type)) == 1, type
        assert len(await event_data(database, fund.facilitator, type)) == 1, type
        for other in (b, *fund.brands[2:], fund.observer, fund.outsider):
            assert await event_data(database, other, type) == [], (type, other)
    opened = await event_data(database, b, "initiative.opened")
    assert [e["initiative"]["id"] for e in opened] == [initiative["id"]]
    recorded = (await event_data(database, a, "payment.recorded"))[0]
    assert recorded["payment"]["amount"] == money(4_000)
