"""`wg-api demo`: a seeded, fictional data set so the API has something to show.

A facilitator and four brands; a working group with all of them; suppliers in Guangdong, Jiangsu
and Vietnam (several shared between brands, each brand typing them its own way); findings across
areas (child labour as counts only, young workers, working hours, migrant parent workers, health
and safety, ...), shared anonymised into the group. Every name is made up.

Tenants and clients are made directly (there is no API for creating tenants); everything else goes
through the public HTTP API in-process, with the demo clients' own tokens, exactly as a client
would do it. Idempotent: a second run finds the group, its members, the supplier links (matched by
name and address) and the findings (by external id) and adds nothing; each run issues fresh demo
clients (revoking the previous ones) because a secret can only be shown when it is made.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
from asgi_lifespan import LifespanManager

from wg_api.cosourcing import service as cosourcing
from wg_api.identity import service
from wg_api.meetings import feeds
from wg_api.meetings import service as meetings
from wg_api.meetings.schemas import CalendarFeedIn, Location, MeetingIn
from wg_api.platform.database import Database
from wg_api.settings import Settings
from wg_api.working_groups import service as groups

DEMO_TENANTS: list[dict[str, str]] = [
    {
        "slug": "bridgeway",
        "name": "Bridgeway Collective",
        "kind": "facilitator",
        "timezone": "Asia/Hong_Kong",
        "country": "HK",
    },
    {
        "slug": "northwind-apparel",
        "name": "Northwind Apparel",
        "kind": "brand",
        "timezone": "Europe/Stockholm",
        "country": "SE",
    },
    {
        "slug": "lumen-toys",
        "name": "Lumen Toys",
        "kind": "brand",
        "timezone": "Europe/Berlin",
        "country": "DE",
    },
    {
        "slug": "harbor-home",
        "name": "Harbor Home Goods",
        "kind": "brand",
        "timezone": "America/New_York",
        "country": "US",
    },
    {
        "slug": "kestrel-outdoor",
        "name": "Kestrel Outdoor",
        "kind": "brand",
        "timezone": "Europe/London",
        "country": "GB",
    },
]

DEMO_CLIENT_NAME = "demo"
DEMO_FEED_NAME = "Demo calendar"
FACILITATOR = "bridgeway"

DEMO_GROUP: dict[str, Any] = {
    "name": "Pearl River and Yangtze Child Rights Working Group",
    "description": (
        "Brands sourcing from the same factories in southern and eastern China and in Vietnam: "
        "child labour prevention and remediation, young workers, migrant parent workers and "
        "their left-behind children. Meets quarterly in Hong Kong or online."
    ),
    "timezone": "Asia/Hong_Kong",
    "anonymity_threshold": 3,
}

# The registry entries, as the first brand to link each one types it.
SUPPLIERS: dict[str, dict[str, str]] = {
    "dongguan-brightway": {
        "name": "Dongguan Brightway Garment Co., Ltd.",
        "local_name": "东莞市明途制衣有限公司",
        "address": "No. 26 Xinan Industrial Road, Chang'an Town, Dongguan",
        "country": "CN",
        "province": "Guangdong",
        "city": "Dongguan",
        "sector": "apparel",
        "os_id": "CN2024113A7F3KQ",
    },
    "shenzhen-silver-lake": {
        "name": "Shenzhen Silver Lake Toys Factory",
        "local_name": "深圳市银湖玩具厂",
        "address": "No. 8 Longgang Avenue, Henggang Street, Longgang District, Shenzhen",
        "country": "CN",
        "province": "Guangdong",
        "city": "Shenzhen",
        "sector": "toys",
    },
    "foshan-evergreen": {
        "name": "Foshan Evergreen Home Products Co., Ltd.",
        "local_name": "佛山市常青家居用品有限公司",
        "address": "No. 3 Lecong Road, Shunde District, Foshan",
        "country": "CN",
        "province": "Guangdong",
        "city": "Foshan",
        "sector": "home goods",
    },
    "suzhou-morning-star": {
        "name": "Suzhou Morning Star Textile Co., Ltd.",
        "local_name": "苏州晨星纺织有限公司",
        "address": "No. 115 Tongyuan Road, Suzhou Industrial Park, Suzhou",
        "country": "CN",
        "province": "Jiangsu",
        "city": "Suzhou",
        "sector": "textiles",
    },
    "changzhou-riverbend": {
        "name": "Changzhou Riverbend Hardware Factory",
        "local_name": "常州河湾五金厂",
        "address": "No. 42 Huashan Road, Xinbei District, Changzhou",
        "country": "CN",
        "province": "Jiangsu",
        "city": "Changzhou",
        "sector": "hardware",
    },
    "song-xanh": {
        "name": "Song Xanh Garment Co., Ltd.",
        "local_name": "Công ty TNHH May mặc Sông Xanh",
        "address": "Lot C4, Tan Uyen Industrial Park, Binh Duong",
        "country": "VN",
        "province": "Binh Duong",
        "city": "Tan Uyen",
        "sector": "apparel",
    },
    "hoa-sen": {
        "name": "Hoa Sen Toys JSC",
        "local_name": "Công ty Cổ phần Đồ chơi Hoa Sen",
        "address": "Lot 12, Trang Due Industrial Park, An Duong, Hai Phong",
        "country": "VN",
        "province": "Hai Phong",
        "city": "An Duong",
        "sector": "toys",
    },
}

# Who sources where, and how each brand types the factory (the registry matches them up).
SUPPLIER_LINKS: dict[str, list[tuple[str, dict[str, str]]]] = {
    "northwind-apparel": [
        ("dongguan-brightway", {"internal_code": "NW-DG-014"}),
        ("suzhou-morning-star", {"internal_code": "NW-SZ-003"}),
        ("song-xanh", {"internal_code": "NW-VN-021"}),
    ],
    "lumen-toys": [
        ("shenzhen-silver-lake", {"internal_code": "LT-0087"}),
        ("hoa-sen", {"internal_code": "LT-0112"}),
    ],
    "harbor-home": [
        ("foshan-evergreen", {"internal_code": "HH/FS/2"}),
        (
            "suzhou-morning-star",
            {
                "name": "SUZHOU MORNING STAR TEXTILE COMPANY LIMITED",
                "address": "115 Tongyuan Rd, Suzhou Industrial Park, Suzhou",
                "internal_code": "HH/SZ/7",
            },
        ),
        (
            "shenzhen-silver-lake",
            {
                "name": "shenzhen silver lake toys",
                "address": "8 Longgang Ave., Henggang Street, Longgang Dist., Shenzhen",
                "internal_code": "HH/SZ/9",
            },
        ),
        ("changzhou-riverbend", {"internal_code": "HH/CZ/1"}),
    ],
    "kestrel-outdoor": [
        (
            "dongguan-brightway",
            {"by": "os_id", "internal_code": "KO-CN-DG1"},
        ),
        (
            "suzhou-morning-star",
            {
                "name": "Suzhou Morning Star Textile Co Ltd",
                "address": "no. 115 tongyuan road, suzhou industrial park, suzhou",
                "internal_code": "KO-CN-SZ4",
            },
        ),
        (
            "changzhou-riverbend",
            {
                "name": "Changzhou Riverbend Hardware",
                "address": "42 Huashan Rd., Xinbei Dist., Changzhou",
                "internal_code": "KO-CN-CZ2",
            },
        ),
        (
            "song-xanh",
            {
                "name": "SONG XANH GARMENT COMPANY LIMITED",
                "address": "lot c4 tan uyen industrial park binh duong",
                "internal_code": "KO-VN-07",
            },
        ),
    ],
}


@dataclasses.dataclass(frozen=True)
class DemoFinding:
    external_id: str
    brand: str
    supplier: str
    kind: str
    area: str
    severity: str | None
    title: str
    description: str
    days_ago: int
    scheme: str
    status: str = "open"
    affected_workers: int | None = None
    cap: tuple[str, str, int] | None = None  # root cause, planned actions, days to fix
    child_labour_case: dict[str, Any] | None = None


FINDINGS: list[DemoFinding] = [
    DemoFinding(
        "DEMO-NW-001",
        "northwind-apparel",
        "dongguan-brightway",
        "non_compliance",
        "child_labour",
        "zero_tolerance",
        "Workers below the legal minimum age in the packing section",
        "Two workers were confirmed to be under 16 and one could not prove their age. "
        "Hiring accepted photocopied ID cards without checking the originals.",
        75,
        "amfori_bsci",
        status="remediation_in_progress",
        affected_workers=3,
        cap=(
            "Age checks at hiring accepted copies of ID cards",
            "Verify original ID cards at hiring; remediation with school enrolment and wage "
            "continuation until the legal working age",
            120,
        ),
        child_labour_case={
            "confirmed_under_min_age": 2,
            "young_workers_in_hazardous_work": 0,
            "age_unconfirmed": 1,
            "remediation": "school",
        },
    ),
    DemoFinding(
        "DEMO-NW-002",
        "northwind-apparel",
        "dongguan-brightway",
        "non_compliance",
        "working_hours",
        "major",
        "Weekly hours above 72 in peak season",
        "Sewing lines averaged 72 hours a week for six weeks in September and October, "
        "with one rest day in fourteen.",
        75,
        "amfori_bsci",
        affected_workers=240,
        cap=(
            "Order peaks without capacity planning",
            "Joint production planning with buyers; overtime capped at 60 hours",
            90,
        ),
    ),
    DemoFinding(
        "DEMO-NW-003",
        "northwind-apparel",
        "suzhou-morning-star",
        "non_compliance",
        "young_workers",
        "minor",
        "Health checks of young workers overdue",
        "Three registered workers aged 16 to 17 had no periodic health check this year; "
        "none works nights or with chemicals.",
        40,
        "slcp",
        affected_workers=3,
        child_labour_case={"young_workers_in_hazardous_work": 0, "age_unconfirmed": 0},
    ),
    DemoFinding(
        "DEMO-NW-004",
        "northwind-apparel",
        "song-xanh",
        "good_practice",
        "migrant_parent_workers",
        None,
        "Summer child-friendly space for workers' children",
        "For six weeks in July and August the factory ran a supervised space with a "
        "teacher for 45 children of migrant workers who joined their parents for the holidays.",
        110,
        "internal",
        status="verified",
        affected_workers=45,
    ),
    DemoFinding(
        "DEMO-LT-001",
        "lumen-toys",
        "shenzhen-silver-lake",
        "non_compliance",
        "health_and_safety",
        "critical",
        "Emergency exit blocked in the moulding workshop",
        "Cartons of finished goods blocked one of two emergency exits on the second floor.",
        20,
        "smeta",
        status="resolved",
        affected_workers=85,
        cap=("No owner for keeping exits clear", "Daily exit check by shift leaders", 30),
    ),
    DemoFinding(
        "DEMO-LT-002",
        "lumen-toys",
        "shenzhen-silver-lake",
        "observation",
        "migrant_parent_workers",
        None,
        "Most workers are parents whose children stay in their home provinces",
        "About 70 % of the workers interviewed have children living with grandparents; "
        "there is no leave policy for family visits outside Chinese New Year.",
        20,
        "smeta",
        affected_workers=310,
    ),
    DemoFinding(
        "DEMO-LT-003",
        "lumen-toys",
        "hoa-sen",
        "non_compliance",
        "young_workers",
        "major",
        "Young workers assigned to the paint-spraying line",
        "Four workers aged 16 and 17 worked on the spraying line without respiratory protection.",
        55,
        "rba_vap",
        status="remediation_in_progress",
        affected_workers=4,
        cap=(
            "No list of tasks forbidden to young workers",
            "Move young workers to assembly; publish a hazardous-task list; train supervisors",
            45,
        ),
        child_labour_case={"young_workers_in_hazardous_work": 4, "remediation": "training"},
    ),
    DemoFinding(
        "DEMO-HH-001",
        "harbor-home",
        "foshan-evergreen",
        "non_compliance",
        "fair_remuneration",
        "major",
        "Piece rates leave some workers below the minimum wage",
        "Payroll for August shows 18 workers on piece rates paid below the local minimum "
        "wage for a normal working week.",
        35,
        "amfori_bsci",
        affected_workers=18,
        cap=("Piece rates not checked against the minimum wage", "Top-up and back pay", 60),
    ),
    DemoFinding(
        "DEMO-HH-002",
        "harbor-home",
        "suzhou-morning-star",
        "non_compliance",
        "working_hours",
        "minor",
        "Overtime records incomplete for the dyeing section",
        "Time records for the dyeing section miss the overtime of two weekends in October.",
        40,
        "slcp",
        affected_workers=26,
    ),
    DemoFinding(
        "DEMO-HH-003",
        "harbor-home",
        "changzhou-riverbend",
        "non_compliance",
        "health_and_safety",
        "major",
        "No hearing protection in the stamping area",
        "Noise in the stamping area exceeds 90 dB; ear plugs are not provided or worn.",
        15,
        "internal",
        affected_workers=32,
        cap=("Noise never measured", "Provide and enforce hearing protection; measure noise", 30),
    ),
    DemoFinding(
        "DEMO-HH-004",
        "harbor-home",
        "shenzhen-silver-lake",
        "good_practice",
        "child_labour",
        None,
        "Age verification records complete and checked at hiring",
        "Every personnel file sampled had a verified copy of the original ID card and a "
        "record of who checked it.",
        20,
        "smeta",
        status="verified",
    ),
    DemoFinding(
        "DEMO-KO-001",
        "kestrel-outdoor",
        "dongguan-brightway",
        "non_compliance",
        "working_hours",
        "critical",
        "Rest days skipped for three consecutive weeks",
        "Workers on the cutting line worked 21 days without a rest day before a shipment.",
        70,
        "other",
        affected_workers=60,
    ),
    DemoFinding(
        "DEMO-KO-002",
        "kestrel-outdoor",
        "song-xanh",
        "non_compliance",
        "health_and_safety",
        "major",
        "Missing machine guards on cutting machines",
        "Four of eleven band knives had their guards removed to speed up cutting.",
        50,
        "amfori_bsci",
        status="remediation_in_progress",
        affected_workers=11,
    ),
    DemoFinding(
        "DEMO-KO-003",
        "kestrel-outdoor",
        "changzhou-riverbend",
        "non_compliance",
        "environment",
        "minor",
        "Wastewater treatment log incomplete",
        "The treatment log misses daily readings for most of September.",
        15,
        "internal",
    ),
    DemoFinding(
        "DEMO-KO-004",
        "kestrel-outdoor",
        "suzhou-morning-star",
        "good_practice",
        "migrant_parent_workers",
        None,
        "Parent-worker hotline and summer programme for left-behind children",
        "A counselling hotline for parent workers, and paid travel for children to spend "
        "the summer with their parents, run with a local NGO.",
        100,
        "internal",
        status="verified",
        affected_workers=120,
    ),
]


class DemoApiError(RuntimeError):
    """The API refused a demo request: the data set and the API disagree."""


@contextlib.asynccontextmanager
async def _in_process_api(
    settings: Settings, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The whole ASGI app (with its lifespan) served in this event loop, without a socket.

    Not Litestar's AsyncTestClient: it runs the app in a thread with a loop of its own, and the
    database's pooled asyncpg connections belong to this loop.
    """
    from wg_api.app import asgi_app

    app = asgi_app(settings, database)
    # A log line per demo request would drown what the demo prints.
    quiet = {name: logging.getLogger(name) for name in ("httpx", "wg_api.access")}
    levels = {name: logger.level for name, logger in quiet.items()}
    try:
        for logger in quiet.values():
            logger.setLevel(logging.WARNING)
        async with (
            # Requests go to `app` itself: the manager's wrapper hands every request one shared
            # `state` dict, where Litestar caches the request body.
            LifespanManager(app, startup_timeout=60, shutdown_timeout=60),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=settings.public_url
            ) as http,
        ):
            yield http
    finally:
        for name, logger in quiet.items():
            logger.setLevel(levels[name])


class _DemoClient:
    """Calls the API as one of the demo tenants."""

    def __init__(self, http: httpx.AsyncClient, slug: str, token: str) -> None:
        self.http = http
        self.slug = slug
        self.headers = {"Authorization": f"Bearer {token}"}

    @classmethod
    async def login(
        cls, http: httpx.AsyncClient, slug: str, client_id: str, client_secret: str
    ) -> _DemoClient:
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        if response.status_code != 200:
            raise DemoApiError(f"{slug}: no token: {response.text}")
        return cls(http, slug, response.json()["access_token"])

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200, 201),
    ) -> Any:
        response = await self.http.request(
            method, path, json=json, params=params, headers=self.headers
        )
        if response.status_code not in expect:
            raise DemoApiError(
                f"{self.slug}: {method} {path} answered {response.status_code}: {response.text}"
            )
        return response.json() if response.content else None

    async def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
            page = await self.call("GET", path, params=query)
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items


async def _working_group(clients: dict[str, _DemoClient]) -> dict[str, Any]:
    """The demo group, made by the facilitator, with every brand a member."""
    facilitator = clients[FACILITATOR]
    groups = await facilitator.all_pages("/v1/working-groups")
    group = next((g for g in groups if g["name"] == DEMO_GROUP["name"]), None)
    if group is None:
        group = await facilitator.call("POST", "/v1/working-groups", json=DEMO_GROUP)
    members_path = f"/v1/working-groups/{group['id']}/members"
    members = {m["tenant"]["slug"] for m in await facilitator.all_pages(members_path)}
    for slug, brand in clients.items():
        if slug in members:
            continue
        pending = await brand.all_pages("/v1/invitations", status="pending")
        invitation = next((i for i in pending if i["working_group"]["id"] == group["id"]), None)
        if invitation is None:
            invitation = await facilitator.call(
                "POST",
                f"/v1/working-groups/{group['id']}/invitations",
                json={"tenant_slug": slug, "role": "member"},
            )
        await brand.call("POST", f"/v1/invitations/{invitation['id']}/accept")
    result: dict[str, Any] = await facilitator.call("GET", f"/v1/working-groups/{group['id']}")
    return result


async def _link_suppliers(clients: dict[str, _DemoClient]) -> dict[tuple[str, str], str]:
    """Each brand links its suppliers, typed its own way; answers (brand, key) -> supplier id."""
    ids: dict[tuple[str, str], str] = {}
    for slug, links in SUPPLIER_LINKS.items():
        for key, typed in links:
            if typed.get("by") == "os_id":
                body: dict[str, Any] = {"os_id": SUPPLIERS[key]["os_id"]}
            else:
                body = {k: v for k, v in SUPPLIERS[key].items() if k not in typed}
                body |= {k: v for k, v in typed.items() if k != "internal_code"}
            body["internal_code"] = typed["internal_code"]
            result = await clients[slug].call("POST", "/v1/suppliers", json=body)
            ids[(slug, key)] = result["supplier"]["id"]
    for key in SUPPLIERS:
        if len({v for (_, k), v in ids.items() if k == key}) > 1:
            raise DemoApiError(f"{key}: the brands' typings did not match one supplier")
    return ids


def _finding_body(spec: DemoFinding, supplier_id: str, today: date) -> dict[str, Any]:
    observed = today - timedelta(days=spec.days_ago)
    body: dict[str, Any] = {
        "supplier_id": supplier_id,
        "kind": spec.kind,
        "area": spec.area,
        "severity": spec.severity,
        "title": spec.title,
        "description": spec.description,
        "observed_on": observed.isoformat(),
        "source": {"scheme": spec.scheme, "reference": f"{spec.scheme.upper()}-{spec.external_id}"},
        "status": spec.status,
        "affected_workers": spec.affected_workers,
        "child_labour_case": spec.child_labour_case,
    }
    if spec.cap is not None:
        root_cause, planned_actions, days = spec.cap
        body["cap"] = {
            "root_cause": root_cause,
            "planned_actions": planned_actions,
            "due_on": (observed + timedelta(days=days)).isoformat(),
            "contact": "Factory compliance manager",
        }
    return body


async def _record_findings(
    clients: dict[str, _DemoClient],
    supplier_ids: dict[tuple[str, str], str],
    group_id: str,
) -> int:
    """Each finding by its external id (created once, replaced after), shared into the group."""
    today = date.today()
    for spec in FINDINGS:
        brand = clients[spec.brand]
        body = _finding_body(spec, supplier_ids[(spec.brand, spec.supplier)], today)
        finding = await brand.call(
            "PUT", f"/v1/findings/by-external-id/{spec.external_id}", json=body
        )
        shares_path = f"/v1/findings/{finding['id']}/shares"
        shares = await brand.call("GET", shares_path)
        if not any(s["working_group_id"] == group_id and s["status"] == "active" for s in shares):
            await brand.call("POST", shares_path, json={"working_group_id": group_id})
    return len(FINDINGS)


# Funding: a summer programme pledged in four currencies (rates stored with each pledge), and a
# finished two-year programme with its outcome indicator.
SUMMER_SPACES: dict[str, Any] = {
    "title": "Factory child-friendly spaces, summer 2027",
    "description": (
        "Safe, supervised spaces with carers and activities for workers' children who join their "
        "parents at the factories over the school holidays, in four Guangdong factories."
    ),
    "currency": "HKD",
    "budget": {"amount": 48_000_000, "currency": "HKD"},
    "funding_target": {"amount": 45_000_000, "currency": "HKD"},
    "starts_on": "2027-06-28",
    "ends_on": "2027-08-27",
    "pledge_visibility": "totals_only",
}
# (brand, amount, fx_rate: HKD per one unit of the pledge's currency, payments received)
SUMMER_PLEDGES: list[tuple[str, dict[str, Any], str | None, list[tuple[int, str]]]] = [
    (
        "kestrel-outdoor",
        {"amount": 12_000_000, "currency": "HKD"},
        None,
        [(12_000_000, "2027-05-20")],
    ),
    (
        "harbor-home",
        {"amount": 1_500_000, "currency": "USD"},
        "7.8125",
        [(1_500_000, "2027-05-28")],
    ),
    (
        "northwind-apparel",
        {"amount": 16_000_000, "currency": "SEK"},
        "0.7305",
        [(8_000_000, "2027-05-31"), (8_000_000, "2027-07-15")],
    ),
    ("lumen-toys", {"amount": 1_400_000, "currency": "EUR"}, "8.421", [(700_000, "2027-06-10")]),
]
SUMMER_EXPENSES: list[dict[str, Any]] = [
    {
        "description": "Carers for four spaces, eight weeks",
        "category": "staff",
        "amount": {"amount": 19_200_000, "currency": "HKD"},
        "incurred_on": "2027-06-25",
    },
    {
        "description": "Play and learning materials",
        "category": "materials",
        "amount": {"amount": 4_350_000, "currency": "HKD"},
        "incurred_on": "2027-06-20",
    },
    {
        "description": "Child safeguarding training for carers (external trainer)",
        "category": "training",
        "amount": {"amount": 600_000, "currency": "USD"},
        "fx_rate": "7.8150",
        "incurred_on": "2027-06-22",
    },
]
PARENTS_PROGRAMME: dict[str, Any] = {
    "title": "Migrant parent workers: in-factory trainings and mobile eLearning, 2025-2026",
    "description": (
        "Two years of trainings for migrant parent workers on parenting at a distance, "
        "communication with left-behind children and child protection, in factories and on phones."
    ),
    "currency": "USD",
    "budget": {"amount": 24_000_000, "currency": "USD"},
    "starts_on": "2025-01-06",
    "ends_on": "2026-12-18",
    "pledge_visibility": "open",
}
WORKERS_REACHED: dict[str, Any] = {
    "name": "Workers reached",
    "unit": "workers",
    "baseline": 0,
    "target": 4_000,
    "breakdown": ["in_factory_training", "elearning"],
}
WORKERS_RESULTS: list[dict[str, Any]] = [
    {
        "period_start": "2025-01-06",
        "period_end": "2025-12-31",
        "value": 2_210,
        "breakdown": {"in_factory_training": 1_700, "elearning": 510},
        "note": "Year one: six factories.",
    },
    {
        "period_start": "2026-01-01",
        "period_end": "2026-12-18",
        "value": 2_447,
        "breakdown": {"in_factory_training": 1_812, "elearning": 635},
        "note": "Year two: mobile eLearning opened to night shifts.",
    },
]
BRANDS = ("northwind-apparel", "lumen-toys", "harbor-home", "kestrel-outdoor")


async def _initiative(
    facilitator: _DemoClient, group_id: str, spec: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The initiative with this title, made (and opened) if the group has none yet."""
    path = f"/v1/working-groups/{group_id}/initiatives"
    existing = next(
        (i for i in await facilitator.all_pages(path) if i["title"] == spec["title"]), None
    )
    if existing is not None:
        return existing, False
    made = await facilitator.call("POST", path, json=spec)
    opened = await facilitator.call(
        "PATCH", f"/v1/initiatives/{made['id']}", json={"status": "open"}
    )
    return opened, True


async def _pledge_and_pay(
    clients: dict[str, _DemoClient],
    initiative_id: str,
    pledges: list[tuple[str, dict[str, Any], str | None, list[tuple[int, str]]]],
) -> None:
    facilitator = clients[FACILITATOR]
    for slug, amount, rate, payments in pledges:
        body: dict[str, Any] = {"amount": amount, **({"fx_rate": rate} if rate else {})}
        made = await clients[slug].call(
            "POST", f"/v1/initiatives/{initiative_id}/pledges", json=body
        )
        await clients[slug].call("POST", f"/v1/pledges/{made['id']}/commit")
        for paid, received_on in payments:
            await facilitator.call(
                "POST",
                f"/v1/pledges/{made['id']}/payments",
                json={
                    "amount": {"amount": paid, "currency": amount["currency"]},
                    "received_on": received_on,
                    "reference": f"{slug}-{received_on}",
                },
            )


async def _fund_initiatives(clients: dict[str, _DemoClient], group_id: str) -> list[dict[str, Any]]:
    """The funding part of the demo; each initiative is made once, found on later runs."""
    facilitator = clients[FACILITATOR]
    summer, made = await _initiative(facilitator, group_id, SUMMER_SPACES)
    if made:
        await _pledge_and_pay(clients, summer["id"], SUMMER_PLEDGES)
        await facilitator.call(
            "PATCH", f"/v1/initiatives/{summer['id']}", json={"status": "active"}
        )
        for expense in SUMMER_EXPENSES:
            await facilitator.call("POST", f"/v1/initiatives/{summer['id']}/expenses", json=expense)
    parents, made = await _initiative(facilitator, group_id, PARENTS_PROGRAMME)
    if made:
        share = {"amount": 6_000_000, "currency": "USD"}
        await _pledge_and_pay(
            clients,
            parents["id"],
            [(slug, share, None, [(6_000_000, "2025-01-15")]) for slug in BRANDS],
        )
        path = f"/v1/initiatives/{parents['id']}"
        await facilitator.call("PATCH", path, json={"status": "active"})
        for description, amount in (
            ("In-factory trainings, 2025", 10_900_000),
            ("In-factory trainings, 2026", 11_200_000),
            ("Mobile eLearning platform and content", 1_650_000),
        ):
            await facilitator.call(
                "POST",
                f"{path}/expenses",
                json={
                    "description": description,
                    "category": "programme",
                    "amount": {"amount": amount, "currency": "USD"},
                    "incurred_on": "2026-12-18",
                },
            )
        indicator = await facilitator.call("POST", f"{path}/indicators", json=WORKERS_REACHED)
        for result in WORKERS_RESULTS:
            await facilitator.call("POST", f"/v1/indicators/{indicator['id']}/results", json=result)
        await facilitator.call("PATCH", path, json={"status": "completed"})
    out = []
    for initiative in (summer, parents):
        current = await facilitator.call("GET", f"/v1/initiatives/{initiative['id']}")
        out.append({k: current[k] for k in ("id", "title", "currency", "status", "funding")})
    return out


async def seed_demo(database: Database, settings: Settings) -> dict[str, Any]:
    tenants_out: list[dict[str, Any]] = []
    credentials: dict[str, tuple[str, str]] = {}
    for spec in DEMO_TENANTS:
        async with database.system_transaction() as session:
            known = await service.tenant_by_slug(session, spec["slug"])
            tenant = (
                msgspec.structs.asdict(known)
                if known
                else await service.create_tenant(
                    session,
                    slug=spec["slug"],
                    name=spec["name"],
                    kind=spec["kind"],
                    timezone=spec["timezone"],
                    country=spec["country"],
                )
            )
        # The tenant's own rows: as the app role, bound to the tenant.
        async with database.transaction(tenant["id"]) as session:
            await service.revoke_clients_named(session, tenant["id"], DEMO_CLIENT_NAME)
            client = await service.create_client(
                session, tenant_id=tenant["id"], name=DEMO_CLIENT_NAME, role="admin", scopes=None
            )
            credentials[spec["slug"]] = (client.client_id, client.client_secret)
            tenants_out.append(
                {
                    "tenant": {k: tenant[k] for k in ("id", "slug", "name", "kind")},
                    "client_id": client.client_id,
                    "client_secret": client.client_secret,
                    "get_token": (
                        f"curl -s -u {client.client_id}:{client.client_secret} "
                        f"-d grant_type=client_credentials {settings.public_url}/oauth/token"
                    ),
                }
            )
    async with _in_process_api(settings, database) as http:
        clients = {
            slug: await _DemoClient.login(http, slug, client_id, secret)
            for slug, (client_id, secret) in credentials.items()
        }
        group = await _working_group(clients)
        supplier_ids = await _link_suppliers(clients)
        findings = await _record_findings(clients, supplier_ids, group["id"])
        initiatives = await _fund_initiatives(clients, group["id"])
        facilitator_id = next(
            t["tenant"]["id"] for t in tenants_out if t["tenant"]["slug"] == FACILITATOR
        )
        meeting_summary = await _schedule_meetings(database, clients, facilitator_id, group["id"])
        best_slots = await _best_slots(clients[FACILITATOR], group["id"])
        co_sourcing = await _co_source(database, clients)
    calendar_feed = await _calendar_feed(database, settings, tenants_out, group["id"])
    return {
        "tenants": tenants_out,
        "working_group": {
            "id": group["id"],
            "name": group["name"],
            "member_count": group["member_count"],
        },
        "suppliers": len(set(supplier_ids.values())),
        "findings": findings,
        "initiatives": initiatives,
        "meetings": meeting_summary,
        "best_meeting_slots": best_slots,
        "calendar_feed": calendar_feed,
        "co_sourcing": co_sourcing,
    }


async def _calendar_feed(
    database: Database, settings: Settings, tenants: list[dict[str, Any]], group_id: str
) -> dict[str, str]:
    """A secret feed URL of the group's meetings for the facilitator, to paste into a calendar
    client. Its token is shown once, so every run revokes the last run's feed and makes one."""
    tenant_id = next(t["tenant"]["id"] for t in tenants if t["tenant"]["slug"] == FACILITATOR)
    async with database.transaction(tenant_id) as session:
        await feeds.revoke_feeds_named(session, tenant_id, DEMO_FEED_NAME)
        feed = await feeds.create_feed(
            session,
            tenant_id,
            CalendarFeedIn(working_group_id=uuid.UUID(str(group_id)), name=DEMO_FEED_NAME),
            settings.public_url,
        )
    assert feed.url is not None  # made now, not replayed
    return {
        "url": feed.url,
        "subscribe": "Paste the URL into Google Calendar (Other calendars > From URL), Outlook "
        "(Add calendar > Subscribe from web) or Apple Calendar (File > New Calendar "
        "Subscription); it is shown once. List and revoke feeds at /v1/calendar-feeds.",
    }


# Northwind shares a zero-tolerance finding at Dongguan Brightway, where Kestrel sources too.
ALERTED_BRAND = "kestrel-outdoor"
CONTRIBUTING_BRAND = "northwind-apparel"


async def _co_source(database: Database, clients: dict[str, _DemoClient]) -> dict[str, Any]:
    """The worker's alert run for the demo's zero-tolerance room, then both brands opt in and
    are introduced. The demo's links are seconds old, so this one run treats them as established
    (minimum link age 0); the worker waits `WG_COSOURCING_MIN_LINK_AGE_DAYS`."""
    alerted, contributor = clients[ALERTED_BRAND], clients[CONTRIBUTING_BRAND]
    rooms = await contributor.all_pages("/v1/remediation-rooms")
    if not rooms:
        raise DemoApiError("the zero-tolerance share opened no remediation room")
    room_id = rooms[0]["id"]
    async with database.system_transaction() as session:
        await cosourcing.send_alerts(
            session,
            min_link_age_days=0,
            shared_event_delay_seconds=0,
            room_id=uuid.UUID(room_id),
        )
    alerts = await alerted.call(
        "GET", "/v1/events", params={"types": "supplier.zero_tolerance_alert", "limit": 200}
    )
    alert = next(
        (e["data"] for e in alerts["items"] if e["data"]["remediation_room_id"] == room_id), None
    )
    if alert is None:
        raise DemoApiError("no zero-tolerance alert reached the alerted brand")
    path = f"/v1/remediation-rooms/{room_id}"
    await alerted.call("POST", f"{path}/opt-in")
    room = await contributor.call("POST", f"{path}/opt-in")
    return {
        "alerted_brand": ALERTED_BRAND,
        "alert": alert["shared_finding"]["title"],
        "remediation_room_id": room["id"],
        "status": room["status"],
        "participants": sorted(p["slug"] for p in room["participants"]),
    }


QUARTERLY_TITLE = "Quarterly working group meeting"
KICK_OFF_TITLE = "Kick-off call: summer child-friendly spaces 2027"


def _second_thursday_ahead(today: date, at_least: timedelta) -> date:
    """The first second-Thursday-of-a-month at least `at_least` after `today`."""
    month = date(today.year, today.month, 1)
    while True:
        first_thursday = month + timedelta(days=(3 - month.weekday()) % 7)
        second = first_thursday + timedelta(days=7)
        if second >= today + at_least:
            return second
        month = (month + timedelta(days=32)).replace(day=1)


async def _past_kick_off(
    database: Database, facilitator_id: uuid.UUID, group_id: str, today: date
) -> str:
    """The kick-off call, three weeks ago. The API never schedules a meeting in the past, so the
    demo asks the service with the clock of the day it was planned (a week before), and no
    reminders."""
    day = today - timedelta(days=21)
    async with database.transaction(facilitator_id) as session:
        member = await groups.require_member(session, uuid.UUID(group_id), facilitator_id)
        meeting = await meetings.create_meeting(
            session,
            member,
            MeetingIn(
                title=KICK_OFF_TITLE,
                start_local=f"{day.isoformat()}T16:00",
                timezone="Asia/Hong_Kong",
                duration_minutes=60,
                location=Location(mode="online", online_url="https://meet.example.org/kick-off"),
                reminders_minutes_before=[],
            ),
            datetime.combine(day - timedelta(days=7), time(9), tzinfo=UTC),
        )
    return str(meeting.id)


async def _schedule_meetings(
    database: Database,
    clients: dict[str, _DemoClient],
    facilitator_id: uuid.UUID,
    group_id: str,
) -> dict[str, Any]:
    """A quarterly hybrid series in Hong Kong with RSVPs and an agenda, and an online kick-off
    call three weeks ago with published minutes and action items (minutes may be written after
    a meeting)."""
    facilitator = clients[FACILITATOR]
    brands = [slug for slug in clients if slug != FACILITATOR]
    path = f"/v1/working-groups/{group_id}/meetings"
    every = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    known = await facilitator.all_pages(path, **every)
    quarterly = next((m for m in known if m["title"] == QUARTERLY_TITLE), None)
    kick_off = next((m for m in known if m["title"] == KICK_OFF_TITLE), None)
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Hong_Kong")).date()
    if quarterly is None:
        start = _second_thursday_ahead(today, timedelta(days=14))
        quarterly = await facilitator.call(
            "POST",
            path,
            json={
                "title": QUARTERLY_TITLE,
                "description": "Shared findings, remediation cases, the 2027 programme budget.",
                "start_local": f"{start.isoformat()}T10:00",
                "timezone": "Asia/Hong_Kong",
                "duration_minutes": 180,
                "location": {
                    "mode": "hybrid",
                    "venue": "Bridgeway Collective, meeting room 2",
                    "address": "18/F, 9 Queen's Road Central, Hong Kong",
                    "online_url": "https://meet.example.org/bridgeway-quarterly",
                },
                "rrule": "FREQ=MONTHLY;INTERVAL=3;BYDAY=2TH;COUNT=4",
            },
        )
        url = f"/v1/meetings/{quarterly['id']}"
        answers = ["accepted", "accepted", "tentative", "declined"]
        for slug, answer in zip(brands, answers, strict=False):
            await clients[slug].call(
                "PUT",
                f"{url}/rsvp",
                json={
                    "response": answer,
                    "attendees": [{"name": "CSR lead", "email": f"csr@{slug}.example"}]
                    if answer != "declined"
                    else [],
                },
            )
        await facilitator.call("PUT", f"{url}/rsvp", json={"response": "accepted"})
        for title, minutes in (
            ("Welcome and shared findings of the quarter", 30),
            ("Remediation cases: follow-up", 45),
        ):
            item = await facilitator.call(
                "POST",
                f"{url}/agenda-items",
                json={"title": title, "duration_minutes": minutes},
            )
            await facilitator.call(
                "PATCH", f"/v1/agenda-items/{item['id']}", json={"status": "accepted"}
            )
        await clients[brands[0]].call(
            "POST",
            f"{url}/agenda-items",
            json={"title": "Young workers on night shifts in peak season", "duration_minutes": 20},
        )
    if kick_off is None:
        kick_off = {"id": await _past_kick_off(database, facilitator_id, group_id, today)}
        url = f"/v1/meetings/{kick_off['id']}"
        members = {
            m["tenant"]["slug"]: m["tenant"]["id"]
            for m in await facilitator.all_pages(f"/v1/working-groups/{group_id}/members")
        }
        await facilitator.call(
            "PUT",
            f"{url}/minutes",
            json={
                "summary": "Agreed to co-fund child-friendly spaces in four factories this summer.",
                "decisions": [{"text": "Budget split by sourcing volume, reviewed in Q3."}],
                "action_items": [
                    {
                        "title": "Share the list of candidate factories",
                        "owner_tenant_id": members[brands[0]],
                        "due_on": (today + timedelta(days=30)).isoformat(),
                    },
                    {
                        "title": "Draft the memorandum of understanding",
                        "owner_tenant_id": members[FACILITATOR],
                        "due_on": (today + timedelta(days=45)).isoformat(),
                    },
                ],
            },
        )
        await facilitator.call("POST", f"{url}/minutes/publish")
    occurrences = [m for m in await facilitator.all_pages(path, **every)]
    return {
        "quarterly_series_id": quarterly["series_id"],
        "occurrences": len(occurrences),
        "kick_off_meeting_id": kick_off["id"],
    }


async def _best_slots(facilitator: _DemoClient, group_id: str) -> list[dict[str, Any]]:
    """The three best 90-minute times in the coming four weeks, and who cannot come and why."""
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Hong_Kong")).date()
    found = await facilitator.call(
        "POST",
        f"/v1/working-groups/{group_id}/meeting-slots",
        json={
            "duration_minutes": 90,
            "from": (today + timedelta(days=1)).isoformat(),
            "to": (today + timedelta(days=28)).isoformat(),
            "count": 3,
        },
    )
    return [
        {
            "start_local": slot["start_local"],
            "available_tenants": slot["available_tenants"],
            "total_tenants": slot["total_tenants"],
            "unavailable": {u["tenant"]["slug"]: u["reason"] for u in slot["unavailable"]},
        }
        for slot in found["slots"]
    ]
