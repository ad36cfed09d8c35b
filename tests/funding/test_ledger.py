"""The ledger: append-only for the app role, balanced per booking at commit; the statement read
from it, as JSON and CSV, with a running balance."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.funding.conftest import (
    Fund,
    assert_problem,
    error_fields,
    get_initiative,
    money,
    open_initiative,
    pay,
    pledge,
    spend,
)


async def _booked(client: httpx.AsyncClient, fund: Fund) -> dict[str, Any]:
    initiative = await open_initiative(client, fund, budget=money(10_000_000))
    a, b = fund.brands[:2]
    pledge_a = await pledge(client, a, initiative, 2_000_000)
    pledge_b = await pledge(client, b, initiative, 200_000, "USD", "7.8")
    await pay(client, fund, pledge_a["id"], 1_500_000)
    await spend(client, fund, initiative, 300_000, description="Play mats")
    await pay(client, fund, pledge_b["id"], 100_000, "USD")  # HK$7,800.00
    await spend(
        client,
        fund,
        initiative,
        money(10_000, "USD"),
        description="Trainer",
        category="staff",
        fx_rate="7.85",
    )
    return initiative


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET debit = debit + 1",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries",
        "UPDATE ledger_bookings SET description = 'changed'",
        "DELETE FROM ledger_bookings",
        "UPDATE payments SET amount = 1",
        "DELETE FROM expenses",
    ],
)
async def test_the_app_role_cannot_change_or_delete_the_ledger(client, fund, database, statement):
    initiative = await _booked(client, fund)
    before = (
        await client.get(
            f"/v1/initiatives/{initiative['id']}/statement", headers=fund.facilitator.headers
        )
    ).json()
    with pytest.raises(DBAPIError, match="permission denied"):
        async with database.transaction(fund.facilitator.id) as session:
            await session.execute(sa.text(statement))
    after = (
        await client.get(
            f"/v1/initiatives/{initiative['id']}/statement", headers=fund.facilitator.headers
        )
    ).json()
    assert after == before


async def _insert_booking(
    session: AsyncConnection, initiative: dict[str, Any], debit: int, credit: int
) -> None:
    booking_id = uuid.uuid4()
    await session.execute(
        sa.text(
            "INSERT INTO ledger_bookings (id, working_group_id, initiative_id, kind, description, "
            "expense_id) SELECT :id, working_group_id, id, 'expense', 'probe', "
            "(SELECT e.id FROM expenses e WHERE e.initiative_id = :initiative LIMIT 1) "
            "FROM initiatives WHERE id = :initiative"
        ),
        {"id": booking_id, "initiative": uuid.UUID(initiative["id"])},
    )
    for account, d, c in (("expenses", debit, 0), ("cash", 0, credit)):
        await session.execute(
            sa.text(
                "INSERT INTO ledger_entries (booking_id, working_group_id, initiative_id, "
                "account, debit, credit, currency) SELECT :booking, working_group_id, id, "
                ":account, :debit, :credit, 'HKD' FROM initiatives WHERE id = :initiative"
            ),
            {
                "booking": booking_id,
                "initiative": uuid.UUID(initiative["id"]),
                "account": account,
                "debit": d,
                "credit": c,
            },
        )


async def test_an_unbalanced_booking_is_refused_at_commit(client, fund, database):
    initiative = await _booked(client, fund)
    path = f"/v1/initiatives/{initiative['id']}/statement"
    before = (await client.get(path, headers=fund.facilitator.headers)).json()
    async with database.connection(fund.facilitator.id) as session:
        await session.begin()
        await _insert_booking(session, initiative, 500, 400)
        # Inside the transaction the check is deferred: the statements pass, the commit fails.
        with pytest.raises(DBAPIError, match="does not balance"):
            await session.commit()
    assert (await client.get(path, headers=fund.facilitator.headers)).json() == before
    # A balanced one is accepted: the same role appends (a reversing booking is one such).
    async with database.transaction(fund.facilitator.id) as session:
        await _insert_booking(session, initiative, 500, 500)
    after = (await client.get(path, headers=fund.facilitator.headers)).json()
    assert len(after["entries"]) == len(before["entries"]) + 1


async def test_a_member_cannot_write_the_ledger(client, fund, database):
    initiative = await _booked(client, fund)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with database.transaction(fund.brands[0].id) as session:
            await _insert_booking(session, initiative, 500, 500)


async def test_the_statement_runs_a_balance_over_payments_and_expenses(client, fund):
    initiative = await _booked(client, fund)
    response = await client.get(
        f"/v1/initiatives/{initiative['id']}/statement", headers=fund.facilitator.headers
    )
    assert response.status_code == 200
    assert response.headers["etag"]
    body = response.json()
    assert body["currency"] == "HKD"
    entries = body["entries"]
    assert [(e["kind"], e["amount"]["amount"]) for e in entries] == [
        ("payment", 1_500_000),
        ("expense", -300_000),
        ("payment", 780_000),
        ("expense", -78_500),
    ]
    assert [e["balance"]["amount"] for e in entries] == [1_500_000, 1_200_000, 1_980_000, 1_901_500]
    assert entries[2]["original_amount"] == money(100_000, "USD")
    assert entries[2]["fx_rate"] == "7.8"
    assert entries[3]["original_amount"] == money(10_000, "USD")
    assert entries[3]["fx_rate"] == "7.85"
    assert entries[0]["original_amount"] is None
    assert entries[1]["description"] == "Play mats (equipment)"
    assert body["totals"] == {
        "paid": money(2_280_000),
        "spent": money(-378_500),
        "balance": money(1_901_500),
    }
    funding = (await get_initiative(client, fund.facilitator, initiative))["funding"]
    assert funding["paid"] == body["totals"]["paid"]
    assert funding["spent"] == body["totals"]["spent"]
    assert funding["balance"] == body["totals"]["balance"]
    assert funding["committed"] == money(2_000_000 + 1_560_000)


async def test_the_csv_statement_has_the_same_entries(client, fund):
    initiative = await _booked(client, fund)
    path = f"/v1/initiatives/{initiative['id']}/statement"
    as_json = (await client.get(path, headers=fund.facilitator.headers)).json()
    response = await client.get(path, params={"format": "csv"}, headers=fund.facilitator.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == [
        "id",
        "booked_at",
        "kind",
        "description",
        "amount",
        "currency",
        "original_amount",
        "original_currency",
        "fx_rate",
        "balance",
    ]
    assert [
        (r["id"], r["kind"], int(r["amount"]), r["currency"], int(r["balance"])) for r in rows
    ] == [
        (e["id"], e["kind"], e["amount"]["amount"], "HKD", e["balance"]["amount"])
        for e in as_json["entries"]
    ]
    assert rows[2]["original_amount"] == "100000"
    assert rows[2]["original_currency"] == "USD"
    assert rows[2]["fx_rate"] == "7.8"
    assert rows[0]["fx_rate"] == ""
    bad = await client.get(path, params={"format": "xml"}, headers=fund.facilitator.headers)
    assert_problem(bad, bad.status_code)
    assert bad.status_code in (400, 422)


async def test_members_read_expenses_and_facilitators_record_them(client, fund):
    initiative = await open_initiative(client, fund)
    await spend(client, fund, initiative, 5_000)
    brand = fund.brands[0]
    listed = await client.get(f"/v1/initiatives/{initiative['id']}/expenses", headers=brand.headers)
    assert [e["amount"] for e in listed.json()["items"]] == [money(5_000)]
    refused = await client.post(
        f"/v1/initiatives/{initiative['id']}/expenses",
        json={
            "description": "x",
            "category": "y",
            "amount": money(1),
            "incurred_on": "2027-06-01",
        },
        headers=brand.headers,
    )
    assert_problem(refused, 403)


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"amount": money(0)}, "amount.amount", 422),
        ({"amount": money(100, "QQQ"), "fx_rate": "1"}, "amount.currency", 422),
        ({"amount": money(100, "EUR")}, "fx_rate", 422),
        ({"amount": money(100), "fx_rate": "8.1"}, "fx_rate", 422),
        ({"amount": money(100, "EUR"), "fx_rate": "eight"}, "fx_rate", 422),
        ({"description": "  "}, "description", 422),
        ({"incurred_on": "2027-13-01"}, "incurred_on", 422),
        ({"vendor": "x"}, "vendor", 400),
    ],
)
async def test_bad_expenses(client, fund, body, field, status):
    initiative = await open_initiative(client, fund)
    payload = {
        "description": "Snacks",
        "category": "food",
        "amount": money(100),
        "incurred_on": "2027-06-01",
        **body,
    }
    response = await client.post(
        f"/v1/initiatives/{initiative['id']}/expenses",
        json=payload,
        headers=fund.facilitator.headers,
    )
    assert field in error_fields(assert_problem(response, status))


async def test_a_wrong_expense_is_corrected_by_a_reversing_booking_once(client, fund):
    initiative = await open_initiative(client, fund)
    made = await pledge(client, fund.brands[0], initiative, 50_000)
    await pay(client, fund, made["id"], 50_000)
    wrong = await spend(client, fund, initiative, 20_000, description="Double-booked invoice")
    assert wrong["reversed"] is False
    member_try = await client.post(
        f"/v1/expenses/{wrong['id']}/reverse", headers=fund.brands[0].headers
    )
    assert_problem(member_try, 403)
    theirs = await client.post(f"/v1/expenses/{wrong['id']}/reverse", headers=fund.outsider.headers)
    random = await client.post(
        f"/v1/expenses/{uuid.uuid4()}/reverse", headers=fund.outsider.headers
    )
    assert_problem(theirs, 404)
    assert theirs.json() == random.json()
    response = await client.post(
        f"/v1/expenses/{wrong['id']}/reverse", headers=fund.facilitator.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == money(20_000)
    again = await client.post(
        f"/v1/expenses/{wrong['id']}/reverse", headers=fund.facilitator.headers
    )
    assert assert_problem(again, 409)["type"] == "/problems/invalid-transition"
    statement = (
        await client.get(
            f"/v1/initiatives/{initiative['id']}/statement", headers=fund.facilitator.headers
        )
    ).json()
    assert [
        (e["kind"], e["amount"]["amount"], e["balance"]["amount"]) for e in statement["entries"]
    ] == [
        ("payment", 50_000, 50_000),
        ("expense", -20_000, 30_000),
        ("reversal", 20_000, 50_000),
    ]
    assert statement["entries"][2]["description"].startswith("Reversal of: Double-booked")
    assert statement["totals"]["spent"] == money(0)
    funding = (await get_initiative(client, fund.brands[1], initiative))["funding"]
    assert funding["spent"] == money(0)
    listed = await client.get(
        f"/v1/initiatives/{initiative['id']}/expenses", headers=fund.brands[1].headers
    )
    assert [e["reversed"] for e in listed.json()["items"]] == [True]


async def test_an_idempotency_key_replays_a_pledge(client, fund):
    initiative = await open_initiative(client, fund)
    headers = {**fund.brands[0].headers, "Idempotency-Key": f"pledge-{uuid.uuid4()}"}
    path = f"/v1/initiatives/{initiative['id']}/pledges"
    first = await client.post(path, json={"amount": money(1_000)}, headers=headers)
    replay = await client.post(path, json={"amount": money(1_000)}, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    other = await client.post(path, json={"amount": money(2_000)}, headers=headers)
    assert_problem(other, 422)
    listed = await client.get(path, headers=fund.brands[0].headers)
    assert len(listed.json()["items"]) == 1
