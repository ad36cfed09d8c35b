async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_me(client, make_tenant):
    t = await make_tenant()
    r = await client.get("/v1/me", headers=await t.headers())
    assert r.status_code == 200, r.text
    assert r.json()["tenant"]["slug"] == t.slug
