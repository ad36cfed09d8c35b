"""The bench data set: tenants, suppliers with private links, working groups, findings and one
group's million shared findings.

`python -m bench.generate` fills a dedicated database (default `wg_bench`, on the embedded server or
the server of DATABASE_URL) with COPY, in one transaction, then VACUUM ANALYZE. It records what it
generated in the database's comment and does nothing the next time unless asked for something
else or `--force`. Everything comes from a seeded random generator, so two runs give the same set.

Findings are written in random tenant order, as months of real traffic would leave them on disk,
so reading one tenant's newest 50 touches pages spread over the table, not one clustered run.

The first working group is the sharing group: its member brands have shared `shared_findings`
records into it (a million by default). The big brand's are its own findings (outside the countries
below), anonymised as the share pipeline does and each with its `shares` row; the other members'
are generated on their linked suppliers. In most countries many members share; in a few, two
members share alone or one member holds nearly every record, so the insights there are suppressed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from bisect import bisect
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import URL

from wg_api.identity import service as identity
from wg_api.platform.database import Database, resolve_admin_url
from wg_api.platform.migrate import migrate
from wg_api.settings import Settings
from wg_api.sharing.anonymise import quarter, workers_band
from wg_api.suppliers.matching import match_key, normalise_name

BENCH_DATABASE = "wg_bench"
# Bump when the shape of the generated data changes, so an older set is regenerated.
DATASET_VERSION = 4
BIG_TENANT_SLUG = "big-brand"
BENCH_CLIENT_NAME = "bench runner"
CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class Spec:
    """How much to generate. The default is the data set of the design brief."""

    tenants: int = 200
    suppliers: int = 20_000
    findings: int = 1_000_000
    groups: int = 10
    shared_findings: int = 1_000_000
    big_share: float = 0.06
    seed: int = 20260701

    def marker(self) -> dict[str, Any]:
        return {"dataset_version": DATASET_VERSION, **asdict(self)}


# ---- connecting ----------------------------------------------------------------------------------


def bench_admin_url(settings: Settings, database: str = BENCH_DATABASE) -> URL:
    """A superuser URL to the bench database: DATABASE_URL's server, or the embedded one."""
    return resolve_admin_url(settings, database).set(database=database)


def connect_kwargs(url: URL) -> dict[str, Any]:
    """asyncpg.connect() arguments for a SQLAlchemy URL (a unix socket comes as `?host=`)."""
    host: Any = url.query.get("host", url.host)
    if isinstance(host, tuple):
        host = host[0]
    return {
        "user": url.username,
        "password": url.password or None,
        "host": host or "127.0.0.1",
        "port": url.port,
        "database": url.database,
    }


def libpq_url(url: URL) -> str:
    """The URL as `wg-api` and libpq read it from DATABASE_URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# ---- vocabularies (api.md) -----------------------------------------------------------------------

KINDS = (("non_compliance", 60), ("observation", 30), ("good_practice", 10))
AREAS = (
    ("health_and_safety", 22),
    ("working_hours", 16),
    ("fair_remuneration", 12),
    ("management_system", 10),
    ("environment", 6),
    ("worker_involvement", 5),
    ("young_workers", 5),
    ("freedom_of_association", 4),
    ("non_discrimination", 4),
    ("precarious_employment", 4),
    ("ethical_business", 4),
    ("migrant_parent_workers", 4),
    ("child_labour", 2),
    ("bonded_labour", 2),
)
SEVERITIES = (("zero_tolerance", 3), ("critical", 12), ("major", 40), ("minor", 45))
STATUSES = (
    ("open", 30),
    ("remediation_in_progress", 25),
    ("resolved", 25),
    ("verified", 15),
    ("disputed", 5),
)
BASES = (("legal", 50), ("code", 40), (None, 10))
SCHEMES = (
    ("smeta", 30),
    ("amfori_bsci", 30),
    ("slcp", 15),
    ("internal", 15),
    ("rba_vap", 5),
    ("other", 5),
)
REMEDIATIONS = ("school", "vocational", "training", "other")

TITLES: dict[str, tuple[str, ...]] = {
    "health_and_safety": (
        "Fire exits blocked by stored materials",
        "No machine guarding on cutting machines",
        "Chemical storage without secondary containment",
        "Evacuation drill not held in the last six months",
        "Workers without hearing protection in the stamping area",
    ),
    "working_hours": (
        "Overtime above 60 hours a week in peak season",
        "Fewer than one rest day in seven",
        "Working hours records incomplete",
        "Overtime not voluntary according to worker interviews",
    ),
    "fair_remuneration": (
        "Overtime paid below the legal premium",
        "Wages paid later than the legal deadline",
        "Piece rates below minimum wage for new workers",
        "Social insurance not paid for all workers",
    ),
    "management_system": (
        "No policy on child labour remediation",
        "Grievance mechanism not known to workers",
        "Subcontractor use not disclosed",
        "Responsible person for social compliance not appointed",
    ),
    "environment": (
        "Wastewater discharge permit expired",
        "Hazardous waste stored outdoors",
        "No records of air emission monitoring",
    ),
    "worker_involvement": (
        "No worker representatives elected",
        "Workers not consulted on the new shift system",
        "Worker committee minutes not shared",
    ),
    "young_workers": (
        "Young workers assigned to night shifts",
        "Young workers not registered with the labour bureau",
        "Young workers handling chemicals",
        "No health check for young workers",
    ),
    "freedom_of_association": (
        "Union representatives not allowed to meet workers",
        "Workers discouraged from joining the union",
    ),
    "non_discrimination": (
        "Pregnancy tests required at hiring",
        "Job advertisement with an age limit",
        "Different pay for the same work by home province",
    ),
    "precarious_employment": (
        "Dispatch workers above the legal share",
        "Probation periods longer than the law allows",
        "Student interns without internship agreements",
    ),
    "ethical_business": (
        "Double books for working hours",
        "Gifts offered to the audit team",
        "Coached answers in worker interviews",
    ),
    "migrant_parent_workers": (
        "No support for migrant parent workers during school holidays",
        "Left-behind children programme not offered",
        "Summer child-friendly space not available",
    ),
    "child_labour": (
        "Worker under the minimum working age found on the line",
        "Age verification documents missing for new hires",
        "Children present in the production area during the summer",
    ),
    "bonded_labour": (
        "Identity documents kept by the factory",
        "Recruitment fees paid by workers",
        "Deposits deducted from the first wage",
    ),
}
DEPARTMENTS = (
    "sewing",
    "cutting",
    "packing",
    "warehouse",
    "assembly",
    "moulding",
    "finishing",
    "painting",
    "quality control",
    "dormitory",
    "canteen",
)
OPENINGS = (
    "During the site tour the auditors observed",
    "Document review showed",
    "Worker interviews indicated",
    "Management confirmed",
    "A follow-up visit found",
)
FOLLOW_UPS = (
    "Management agreed to correct this within the CAP period.",
    "The factory says the issue is limited to the peak season.",
    "No corrective action had been taken since the previous audit.",
    "The brand will verify the correction during the next visit.",
    "The factory disputes part of the finding.",
    "",
)
ROOT_CAUSES = (
    "No procedure in place",
    "Supervisors not trained",
    "Peak season orders",
    "Budget not allocated",
    "Responsibility unclear between departments",
)
PLANNED_ACTIONS = (
    "Train supervisors and update the procedure",
    "Appoint a responsible manager and report monthly",
    "Repair and inspect weekly for three months",
    "Review payroll and pay back the difference",
    "Hire additional workers for the peak season",
)
CONTACT_ROLES = ("HR manager", "EHS manager", "Compliance officer", "General manager")

GEOGRAPHY: tuple[tuple[str, str, str, str | None, int], ...] = (
    ("CN", "Guangdong", "Dongguan", "东莞", 14),
    ("CN", "Guangdong", "Shenzhen", "深圳", 10),
    ("CN", "Guangdong", "Guangzhou", "广州", 6),
    ("CN", "Guangdong", "Foshan", "佛山", 5),
    ("CN", "Jiangsu", "Suzhou", "苏州", 8),
    ("CN", "Jiangsu", "Wuxi", "无锡", 4),
    ("CN", "Jiangsu", "Nantong", "南通", 4),
    ("CN", "Zhejiang", "Ningbo", "宁波", 5),
    ("CN", "Zhejiang", "Yiwu", "义乌", 4),
    ("CN", "Fujian", "Jinjiang", "晋江", 4),
    ("VN", "Binh Duong", "Thu Dau Mot", None, 7),
    ("VN", "Dong Nai", "Bien Hoa", None, 5),
    ("VN", "Ho Chi Minh City", "Ho Chi Minh City", None, 4),
    ("KH", "Phnom Penh", "Phnom Penh", None, 4),
    ("BD", "Dhaka", "Gazipur", None, 5),
    ("ID", "West Java", "Bandung", None, 3),
    ("IN", "Tamil Nadu", "Tirupur", None, 3),
    ("TR", "Istanbul", "Istanbul", None, 2),
)
SECTORS = (
    ("apparel", "Garment", "制衣"),
    ("apparel", "Knitting", "针织"),
    ("footwear", "Shoes", "鞋业"),
    ("toys", "Toys", "玩具"),
    ("toys", "Plastic Products", "塑胶制品"),
    ("hardware", "Hardware", "五金"),
    ("home textiles", "Textile", "纺织"),
    ("electronics accessories", "Electronics", "电子"),
)
NAME_WORDS = (
    ("Sunrise", "日升"),
    ("Golden Star", "金星"),
    ("Evergreen", "长青"),
    ("Pearl River", "珠江"),
    ("Jade", "翠玉"),
    ("Harmony", "和谐"),
    ("Lucky Bamboo", "福竹"),
    ("Silver Bay", "银湾"),
    ("Red Lantern", "红灯"),
    ("Blue Ocean", "蓝海"),
    ("Phoenix", "凤凰"),
    ("Lotus", "莲花"),
    ("Great Wall", "长城"),
    ("East Wind", "东风"),
    ("Bright Future", "前程"),
    ("Rising Sun", "旭日"),
    ("Crystal", "水晶"),
    ("Ever Glory", "永耀"),
    ("Wing Fat", "永发"),
    ("Kam Hing", "锦兴"),
)
LEGAL_SUFFIX = {
    "CN": "Co., Ltd.",
    "VN": "Company Limited",
    "KH": "Co., Ltd.",
    "BD": "Ltd.",
    "ID": "PT",
    "IN": "Pvt. Ltd.",
    "TR": "A.S.",
}
STREETS = ("Industrial", "Xinsha", "Changan", "Huangjiang", "Dongcheng", "Riverside", "Harbour")
DISTRICTS = ("Industrial Zone", "Development Zone", "Export Processing Zone", "New District")
TIMEZONES = (
    "Europe/Stockholm",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Amsterdam",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Hong_Kong",
    "Asia/Tokyo",
    "Australia/Sydney",
)
BRAND_WORDS = (
    "Northwind",
    "Lumen",
    "Harbor",
    "Kestrel",
    "Alder",
    "Brightwater",
    "Cobalt",
    "Driftwood",
    "Fjord",
    "Granite",
    "Juniper",
    "Maple",
    "Oakridge",
    "Pinecrest",
    "Saltmarsh",
    "Tidewell",
)
BRAND_KINDS = ("Apparel", "Toys", "Outdoor", "Home Goods", "Footwear", "Sports", "Kids")


def _weighted(pairs: Sequence[tuple[Any, int]]) -> tuple[list[Any], list[int]]:
    values = [value for value, _ in pairs]
    return values, list(accumulate(weight for _, weight in pairs))


# ---- rows ----------------------------------------------------------------------------------------


@dataclass
class Tenant:
    id: uuid.UUID
    slug: str
    name: str
    kind: str
    timezone: str


def make_tenants(spec: Spec, rng: random.Random) -> list[Tenant]:
    facilitators = max(1, spec.tenants // 20)
    tenants = [
        Tenant(uuid.UUID(int=rng.getrandbits(128), version=4), BIG_TENANT_SLUG, "Big Brand Group",
               "brand", "Europe/Amsterdam")
    ]  # fmt: skip
    for i in range(1, spec.tenants):
        kind = "facilitator" if i <= facilitators else "brand"
        word = BRAND_WORDS[i % len(BRAND_WORDS)]
        if kind == "facilitator":
            slug, name = f"facilitator-{i:03d}", f"{word} Partnership {i:03d}"
        else:
            slug = f"brand-{i:03d}"
            name = f"{word} {BRAND_KINDS[i % len(BRAND_KINDS)]} {i:03d}"
        tenants.append(
            Tenant(
                uuid.UUID(int=rng.getrandbits(128), version=4),
                slug,
                name,
                kind,
                rng.choice(TIMEZONES),
            )
        )
    return tenants


def make_suppliers(spec: Spec, rng: random.Random) -> list[tuple[Any, ...]]:
    """Registry rows; `match_key` is the service's own normalisation, unique like the table's."""
    places, place_weights = _weighted([(g, g[4]) for g in GEOGRAPHY])
    keys: set[str] = set()
    os_ids: set[str] = set()
    rows: list[tuple[Any, ...]] = []
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    while len(rows) < spec.suppliers:
        country, province, city, city_cn, _ = rng.choices(places, cum_weights=place_weights)[0]
        sector, product, product_cn = rng.choice(SECTORS)
        word, word_cn = rng.choice(NAME_WORDS)
        suffix = LEGAL_SUFFIX[country]
        name = f"{suffix} {city} {word} {product}" if country == "ID" else (
            f"{city} {word} {product} {suffix}"
        )  # fmt: skip
        address = (
            f"No. {rng.randint(1, 2999)} {rng.choice(STREETS)} Road, "
            f"{rng.choice(DISTRICTS)}, {city}, {province}"
        )
        key = match_key(name, address, country)
        if key in keys:
            continue
        keys.add(key)
        os_id = None
        if rng.random() < 0.4:
            os_id = f"{country}{rng.randint(2019, 2026)}{rng.randint(1, 366):03d}" + "".join(
                rng.choices(alphabet, k=6)
            )
            if os_id in os_ids:
                os_id = None
            else:
                os_ids.add(os_id)
        local_name = f"{city_cn}{word_cn}{product_cn}有限公司" if city_cn else None
        rows.append(
            (
                uuid.UUID(int=rng.getrandbits(128), version=4),
                name,
                local_name,
                address,
                country,
                province,
                city,
                sector,
                os_id,
                key,
                normalise_name(name),
            )
        )
    return rows


def make_links(
    spec: Spec, rng: random.Random, tenants: list[Tenant], supplier_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Which suppliers each brand sources from: a few hundred each, the big brand the most."""
    links: dict[uuid.UUID, list[uuid.UUID]] = {}
    for tenant in tenants:
        if tenant.kind != "brand":
            continue
        count = 600 if tenant.slug == BIG_TENANT_SLUG else rng.randint(120, 480)
        links[tenant.id] = rng.sample(supplier_ids, min(count, len(supplier_ids)))
    return links


def finding_counts(spec: Spec, rng: random.Random, brands: list[Tenant]) -> list[int]:
    """The big brand holds `big_share` of all findings; the others a long tail (Zipf-like)."""
    big = round(spec.findings * spec.big_share) if len(brands) > 1 else spec.findings
    rest = spec.findings - big
    others = brands[1:]
    weights = [1 / (rank + 5) ** 0.7 for rank in range(len(others))]
    rng.shuffle(weights)
    total = sum(weights)
    counts = [int(rest * w / total) for w in weights]
    for i in range(rest - sum(counts)):
        counts[i % len(counts)] += 1
    return [big, *counts]


def _copy_text(value: Any) -> str:
    """One field of COPY's text format. Vocabularies hold no tab, newline or backslash."""
    return "\\N" if value is None else str(value)


async def _chunks(rows: Iterator[Sequence[Any]]) -> AsyncIterator[bytes]:
    batch: list[str] = []
    for row in rows:
        batch.append("\t".join(map(_copy_text, row)))
        if len(batch) >= CHUNK_ROWS:
            yield ("\n".join(batch) + "\n").encode()
            batch.clear()
            await asyncio.sleep(0)
    if batch:
        yield ("\n".join(batch) + "\n").encode()


FINDING_COLUMNS = (
    "tenant_id",
    "supplier_id",
    "external_id",
    "kind",
    "area",
    "severity",
    "basis",
    "title",
    "description",
    "observed_on",
    "source_scheme",
    "source_reference",
    "status",
    "affected_workers",
    "cap",
    "child_labour_case",
    "created_at",
    "updated_at",
)


def finding_rows(
    spec: Spec,
    rng: random.Random,
    brands: list[Tenant],
    links: dict[uuid.UUID, list[uuid.UUID]],
    today: date,
) -> Iterator[tuple[Any, ...]]:
    """Findings in random tenant order; severity only for non_compliance, as the table demands."""
    counts = finding_counts(spec, rng, brands)
    order: list[int] = []
    for index, count in enumerate(counts):
        order.extend([index] * count)
    rng.shuffle(order)

    days = [today - timedelta(days=offset) for offset in range(3 * 365 + 200)]
    day_text = [d.isoformat() for d in days]
    stamp_text = [f"{d.isoformat()} 09:{offset % 60:02d}:00+00" for offset, d in enumerate(days)]
    kinds, kind_w = _weighted(KINDS)
    areas, area_w = _weighted(AREAS)
    severities, severity_w = _weighted(SEVERITIES)
    statuses, status_w = _weighted(STATUSES)
    bases, basis_w = _weighted(BASES)
    schemes, scheme_w = _weighted(SCHEMES)
    descriptions = {
        area: [
            f"{rng.choice(OPENINGS)} {title.lower()} in the {rng.choice(DEPARTMENTS)} department, "
            f"affecting about {rng.randint(2, 300)} workers. {rng.choice(FOLLOW_UPS)}".strip()
            for title in titles
            for _ in range(8)
        ]
        for area, titles in TITLES.items()
    }
    brand_ids = [b.id for b in brands]
    brand_links = [links[b.id] for b in brands]
    random_ = rng.random
    randint = rng.randint
    for start in range(0, len(order), CHUNK_ROWS):
        part = order[start : start + CHUNK_ROWS]
        n = len(part)
        kind_col = rng.choices(kinds, cum_weights=kind_w, k=n)
        area_col = rng.choices(areas, cum_weights=area_w, k=n)
        severity_col = rng.choices(severities, cum_weights=severity_w, k=n)
        status_col = rng.choices(statuses, cum_weights=status_w, k=n)
        basis_col = rng.choices(bases, cum_weights=basis_w, k=n)
        scheme_col = rng.choices(schemes, cum_weights=scheme_w, k=n)
        for i in range(n):
            t = part[i]
            suppliers = brand_links[t]
            kind = kind_col[i]
            area = area_col[i]
            nc = kind == "non_compliance"
            age = randint(0, 3 * 365)
            created = max(0, age - randint(0, 14))
            updated = max(0, created - randint(0, 90))
            scheme = scheme_col[i]
            cap = None
            if nc and random_() < 0.7:
                due = day_text[max(0, age - randint(30, 180))] if age > 30 else None
                if due is not None:
                    cap = (
                        f'{{"planned_actions": "{PLANNED_ACTIONS[randint(0, 4)]}", '
                        f'"due_on": "{due}", "root_cause": "{ROOT_CAUSES[randint(0, 4)]}", '
                        f'"contact": "{CONTACT_ROLES[randint(0, 3)]}"}}'
                    )
            case = None
            if area in ("child_labour", "young_workers") and random_() < 0.5:
                case = (
                    f'{{"confirmed_under_min_age": {randint(0, 3)}, '
                    f'"young_workers_in_hazardous_work": {randint(0, 6)}, '
                    f'"age_unconfirmed": {randint(0, 4)}, '
                    f'"remediation": "{REMEDIATIONS[randint(0, 3)]}"}}'
                )
            titles = TITLES[area]
            yield (
                brand_ids[t],
                suppliers[int(random_() * len(suppliers))],
                f"F{start + i:07d}" if random_() < 0.5 else None,
                kind,
                area,
                severity_col[i] if nc else None,
                basis_col[i],
                titles[int(random_() * len(titles))],
                descriptions[area][int(random_() * len(descriptions[area]))],
                day_text[age],
                scheme,
                f"{scheme.upper()}-{randint(100000, 999999)}" if random_() < 0.8 else None,
                status_col[i],
                randint(1, 400) if random_() < 0.6 else None,
                cap,
                case,
                stamp_text[created],
                stamp_text[updated],
            )


# ---- shared findings -----------------------------------------------------------------------------

# Where few members share: every insight cell of Turkey has two contributors (below any threshold),
# and one member holds about 92 % of India's (above the 85 % dominance limit in most cells).
FEW_CONTRIBUTORS: dict[str, int] = {"TR": 2}
DOMINATED: dict[str, float] = {"IN": 0.92}
DOMINATED_OTHERS = 3
SHARED_COLUMNS = (
    "group_id",
    "contributor",
    "supplier_id",
    "supplier_name",
    "country",
    "kind",
    "area",
    "severity",
    "basis",
    "status",
    "observed_period",
    "title",
    "description",
    "affected_workers_band",
    "source_scheme",
    "child_labour_case",
)


@dataclass(frozen=True)
class CountryPlan:
    """Who shares on the suppliers of one country, and how much each."""

    country: str
    contributors: list[uuid.UUID]
    cum_weights: list[float]
    suppliers: list[list[uuid.UUID]]  # each contributor's linked suppliers in the country


def sharing_plans(
    rng: random.Random,
    contributors: list[uuid.UUID],
    links: dict[uuid.UUID, list[uuid.UUID]],
    country_of: dict[uuid.UUID, str],
) -> tuple[list[CountryPlan], list[float]]:
    """Per country: the contributing members with suppliers there and their weights (a few
    large contributors and a long tail); the countries weighted as the registry's suppliers."""
    weights = [1 / (rank + 2) ** 0.8 for rank in range(len(contributors))]
    rng.shuffle(weights)
    weight_of = dict(zip(contributors, weights, strict=True))
    country_weight: dict[str, int] = {}
    for country, *_, weight in GEOGRAPHY:
        country_weight[country] = country_weight.get(country, 0) + weight
    plans: list[CountryPlan] = []
    plan_weights: list[float] = []
    for country, weight in country_weight.items():
        there = {c: [s for s in links.get(c, []) if country_of[s] == country] for c in contributors}
        # Most suppliers there first (then by id), so the choice does not depend on dict order.
        sharing = sorted((c for c in contributors if there[c]), key=lambda c: (-len(there[c]), c))
        if not sharing:
            continue
        if country in FEW_CONTRIBUTORS:
            chosen = sharing[: FEW_CONTRIBUTORS[country]]
            shares = [1.0] * len(chosen)
        elif country in DOMINATED:
            chosen = sharing[: 1 + DOMINATED_OTHERS]
            rest = (1 - DOMINATED[country]) / max(1, len(chosen) - 1)
            shares = [DOMINATED[country]] + [rest] * (len(chosen) - 1)
        else:
            chosen, shares = sharing, [weight_of[c] for c in sharing]
        plans.append(
            CountryPlan(country, chosen, list(accumulate(shares)), [there[c] for c in chosen])
        )
        plan_weights.append(weight)
    return plans, list(accumulate(plan_weights))


def shared_finding_rows(
    rng: random.Random,
    group_id: uuid.UUID,
    plans: list[CountryPlan],
    plan_weights: list[float],
    count: int,
    today: date,
    name_of: dict[uuid.UUID, str],
) -> Iterator[tuple[Any, ...]]:
    """Anonymised records as the share pipeline writes them: the quarter, a head-count band,
    child-labour counts only, the supplier's country; a tenth shared without description."""
    quarters = [quarter(today - timedelta(days=offset)) for offset in range(3 * 365 + 1)]
    kinds, kind_w = _weighted(KINDS)
    areas, area_w = _weighted(AREAS)
    severities, severity_w = _weighted(SEVERITIES)
    statuses, status_w = _weighted(STATUSES)
    bases, basis_w = _weighted(BASES)
    schemes, scheme_w = _weighted(SCHEMES)
    descriptions = {
        area: [
            f"{rng.choice(OPENINGS)} {title.lower()} in the {rng.choice(DEPARTMENTS)} department, "
            f"affecting about {rng.randint(2, 300)} workers. {rng.choice(FOLLOW_UPS)}".strip()
            for title in titles
            for _ in range(8)
        ]
        for area, titles in TITLES.items()
    }
    bands = [workers_band(workers) for workers in range(401)]
    group = str(group_id)
    random_ = rng.random
    randint = rng.randint
    for start in range(0, count, CHUNK_ROWS):
        n = min(CHUNK_ROWS, count - start)
        plan_col = rng.choices(plans, cum_weights=plan_weights, k=n)
        kind_col = rng.choices(kinds, cum_weights=kind_w, k=n)
        area_col = rng.choices(areas, cum_weights=area_w, k=n)
        severity_col = rng.choices(severities, cum_weights=severity_w, k=n)
        status_col = rng.choices(statuses, cum_weights=status_w, k=n)
        basis_col = rng.choices(bases, cum_weights=basis_w, k=n)
        scheme_col = rng.choices(schemes, cum_weights=scheme_w, k=n)
        for i in range(n):
            plan = plan_col[i]
            c = bisect(plan.cum_weights, random_() * plan.cum_weights[-1])
            suppliers = plan.suppliers[c]
            area = area_col[i]
            kind = kind_col[i]
            case = None
            if area in ("child_labour", "young_workers") and random_() < 0.5:
                case = (
                    f'{{"confirmed_under_min_age": {randint(0, 3)}, '
                    f'"young_workers_in_hazardous_work": {randint(0, 6)}, '
                    f'"age_unconfirmed": {randint(0, 4)}}}'
                )
            titles = TITLES[area]
            supplier = suppliers[int(random_() * len(suppliers))]
            yield (
                group,
                plan.contributors[c],
                supplier,
                name_of[supplier],
                plan.country,
                kind,
                area,
                severity_col[i] if kind == "non_compliance" else None,
                basis_col[i],
                status_col[i],
                quarters[randint(0, 3 * 365)],
                titles[int(random_() * len(titles))],
                descriptions[area][int(random_() * len(descriptions[area]))]
                if random_() < 0.9
                else None,
                bands[randint(1, 400)] if random_() < 0.6 else None,
                scheme_col[i],
                case,
            )


# The big brand's own findings, shared into the group through the pipeline's projection (its
# generated text holds nothing to scrub), each with the `shares` row that makes it `is_own`.
SHARE_OWN_FINDINGS = """
WITH own AS (
    SELECT gen_random_uuid() AS shared_id, f.id AS finding_id, f.supplier_id,
           s.name AS supplier_name, s.country,
           f.kind, f.area, f.severity, f.basis, f.status,
           to_char(f.observed_on, 'YYYY"-Q"Q') AS observed_period, f.title, f.description,
           CASE WHEN f.affected_workers IS NULL THEN NULL
                WHEN f.affected_workers = 0 THEN '0'
                WHEN f.affected_workers <= 10 THEN '1-10'
                WHEN f.affected_workers <= 50 THEN '11-50'
                WHEN f.affected_workers <= 200 THEN '51-200'
                WHEN f.affected_workers <= 1000 THEN '201-1000'
                ELSE '1001+' END AS band,
           f.source_scheme, f.child_labour_case - 'remediation' AS child_labour_case
    FROM findings f JOIN suppliers s ON s.id = f.supplier_id
    WHERE f.tenant_id = $1 AND s.country <> ALL ($3::text[])
    ORDER BY f.observed_on DESC, f.id
    LIMIT $4
),
shared AS (
    INSERT INTO shared_findings (id, group_id, contributor, supplier_id, supplier_name, country,
        kind, area, severity, basis, status, observed_period, title, description,
        affected_workers_band, source_scheme, child_labour_case)
    SELECT shared_id, $2, $1, supplier_id, supplier_name, country, kind, area, severity, basis,
           status, observed_period, title, description, band, source_scheme, child_labour_case
    FROM own
)
INSERT INTO shares (tenant_id, finding_id, group_id, shared_finding_id)
SELECT $1, finding_id, $2, shared_id FROM own
"""


async def _share(
    conn: asyncpg.Connection,
    spec: Spec,
    rng: random.Random,
    tenants: list[Tenant],
    links: dict[uuid.UUID, list[uuid.UUID]],
    country_of: dict[uuid.UUID, str],
    name_of: dict[uuid.UUID, str],
    members: list[tuple[Any, ...]],
    log: Any,
) -> None:
    """The sharing group's shared findings: the big brand's own first, then the other members'."""
    if not members or spec.shared_findings <= 0:
        return
    group_id = members[0][0]
    big = tenants[0].id
    contributors = [
        tenant_id
        for g, tenant_id, role in members
        if g == group_id and role == "member" and tenant_id != big and tenant_id in links
    ]
    restricted = sorted({*FEW_CONTRIBUTORS, *DOMINATED})
    started = time.perf_counter()
    status = await conn.execute(SHARE_OWN_FINDINGS, big, group_id, restricted, spec.shared_findings)
    own = int(status.split()[-1])
    plans, plan_weights = sharing_plans(rng, contributors, links, country_of)
    others = spec.shared_findings - own if plans else 0
    rows = shared_finding_rows(rng, group_id, plans, plan_weights, others, date.today(), name_of)
    async with _indexes_rebuilt_after(conn, "shared_findings", log):
        await conn.copy_to_table(
            "shared_findings",
            source=_chunks(rows),
            columns=list(SHARED_COLUMNS),
            format="text",
            freeze=True,
        )
    log(
        f"shared findings: {own} of the big brand's with their shares, {others} of "
        f"{len(contributors)} other members in {time.perf_counter() - started:.1f} s"
    )
    # The insight tallies follow shared_findings by a trigger, which replica mode skips.
    started = time.perf_counter()
    await conn.execute("SELECT insight_tallies_rebuild($1)", group_id)
    log(f"insight tallies: counted in {time.perf_counter() - started:.1f} s")


# ---- the database --------------------------------------------------------------------------------


@dataclass
class Generated:
    skipped: bool
    seconds: float
    counts: dict[str, int]


DATA_TABLES = (
    "tenants",
    "suppliers",
    "supplier_links",
    "working_groups",
    "working_group_members",
    "findings",
    "shared_findings",
    "shares",
    "insight_tallies",
    "insight_supplier_bits",
)


async def read_marker(conn: asyncpg.Connection) -> dict[str, Any] | None:
    comment = await conn.fetchval(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname = current_database()"
    )
    try:
        marker = json.loads(comment) if comment else None
    except ValueError:
        return None
    return marker if isinstance(marker, dict) else None


async def table_counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {
        table: int(await conn.fetchval(f"SELECT count(*) FROM {table}")) for table in DATA_TABLES
    }


async def drop_database(settings: Settings, database: str = BENCH_DATABASE) -> None:
    """Drop the bench database, so the next run migrates a new one from scratch."""
    maintenance = bench_admin_url(settings, database).set(database="postgres")
    conn = await asyncpg.connect(**connect_kwargs(maintenance))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


async def generate(
    settings: Settings,
    spec: Spec,
    *,
    database: str = BENCH_DATABASE,
    force: bool = False,
    log: Any = print,
) -> Generated:
    """Migrate the bench database and fill it, unless it already holds this very data set."""
    started = time.perf_counter()
    admin_url = bench_admin_url(settings, database)
    await migrate(admin_url, settings)
    conn = await asyncpg.connect(**connect_kwargs(admin_url))
    try:
        if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            raise SystemExit(
                "bench.generate copies past row-level security and needs a superuser "
                "DATABASE_URL (or the embedded server)."
            )
        marker = await read_marker(conn)
        if marker == spec.marker() and not force:
            return Generated(True, time.perf_counter() - started, await table_counts(conn))
        if marker is not None:
            log(f"regenerating {database}: it held {marker}" if not force else "regenerating")
        rng = random.Random(spec.seed)
        async with conn.transaction():
            await conn.execute(
                "TRUNCATE tenants, suppliers, working_groups, jobs, rate_limit_windows CASCADE"
            )
            # No foreign-key or guard triggers: the generated rows are consistent by construction.
            await conn.execute("SET LOCAL session_replication_role = replica")
            await _fill(conn, spec, rng, log)
            # What readers of each group need (its sharing members, the names to redact) follows
            # memberships, invitations and tenants by triggers, which replica mode skips.
            await conn.execute(
                "SELECT wg_refresh_group_readers(ARRAY(SELECT id FROM working_groups))"
            )
            await conn.execute(
                f"COMMENT ON DATABASE \"{database}\" IS '{json.dumps(spec.marker())}'"
            )
        copied = time.perf_counter() - started
        for table in DATA_TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        vacuumed = time.perf_counter() - started - copied
        log(f"copied in {copied:.1f} s, vacuumed and analysed in {vacuumed:.1f} s")
        return Generated(False, time.perf_counter() - started, await table_counts(conn))
    finally:
        await conn.close()


async def _fill(conn: asyncpg.Connection, spec: Spec, rng: random.Random, log: Any) -> None:
    tenants = make_tenants(spec, rng)
    await conn.copy_records_to_table(
        "tenants",
        records=[(t.id, t.slug, t.name, t.kind, t.timezone) for t in tenants],
        columns=["id", "slug", "name", "kind", "timezone"],
    )
    suppliers = make_suppliers(spec, rng)
    await conn.copy_records_to_table(
        "suppliers",
        records=suppliers,
        columns=[
            "id",
            "name",
            "local_name",
            "address",
            "country",
            "province",
            "city",
            "sector",
            "os_id",
            "match_key",
            "match_name",
        ],
    )
    links = make_links(spec, rng, tenants, [row[0] for row in suppliers])
    name_of = {row[0]: row[1] for row in suppliers}
    await conn.copy_records_to_table(
        "supplier_links",
        # The supplier's name as the link's trigger keeps it (triggers are off for the load).
        records=[
            (tenant_id, supplier_id, f"V-{n:05d}" if n % 10 < 7 else None, name_of[supplier_id])
            for tenant_id, supplier_ids in links.items()
            for n, supplier_id in enumerate(supplier_ids)
        ],
        columns=["tenant_id", "supplier_id", "internal_code", "supplier_name"],
    )
    groups, members = make_groups(spec, rng, tenants)
    await conn.copy_records_to_table(
        "working_groups",
        records=groups,
        columns=["id", "name", "description", "timezone", "anonymity_threshold"],
    )
    await conn.copy_records_to_table(
        "working_group_members", records=members, columns=["group_id", "tenant_id", "role"]
    )
    log(f"{len(tenants)} tenants, {len(suppliers)} suppliers, {len(groups)} groups; findings...")
    brands = [t for t in tenants if t.kind == "brand"]
    rows = finding_rows(spec, rng, brands, links, date.today())
    async with _indexes_rebuilt_after(conn, "findings", log):
        await conn.copy_to_table(
            "findings",
            source=_chunks(rows),
            columns=list(FINDING_COLUMNS),
            format="text",
            freeze=True,  # truncated in this transaction: rows go in frozen, no hint-bit rewrite
        )
    country_of = {row[0]: row[4] for row in suppliers}
    await _share(conn, spec, rng, tenants, links, country_of, name_of, members, log)


@asynccontextmanager
async def _indexes_rebuilt_after(
    conn: asyncpg.Connection, table: str, log: Any
) -> AsyncIterator[None]:
    """Drop the table's plain indexes for a bulk load and build them again after it.

    Sorting a million keys once is far cheaper than a million random b-tree inserts. Indexes that
    back a constraint (the primary key) stay. Within the caller's transaction, so nobody ever sees
    the table without them.
    """
    definitions = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition "
        "FROM pg_index i WHERE i.indrelid = $1::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        table,
    )
    for row in definitions:
        await conn.execute(f"DROP INDEX {row['name']}")
    started = time.perf_counter()
    yield
    loaded = time.perf_counter()
    await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for row in definitions:
        await conn.execute(row["definition"])
    log(
        f"{table}: loaded in {loaded - started:.1f} s, "
        f"{len(definitions)} indexes built in {time.perf_counter() - loaded:.1f} s"
    )


def make_groups(
    spec: Spec, rng: random.Random, tenants: list[Tenant]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Working groups, each run by a facilitator, with a dozen or more brands (the big one too)."""
    facilitators = [t for t in tenants if t.kind == "facilitator"]
    brands = [t for t in tenants if t.kind == "brand"]
    groups: list[tuple[Any, ...]] = []
    members: list[tuple[Any, ...]] = []
    regions = ("Guangdong", "Jiangsu", "Vietnam", "Cambodia", "Bangladesh", "Zhejiang")
    for g in range(spec.groups if facilitators and brands else 0):
        group_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        region = regions[g % len(regions)]
        groups.append(
            (
                group_id,
                f"{region} child rights working group {g + 1}",
                f"Brands sourcing in {region} working together on young workers and childcare.",
                "Asia/Hong_Kong",
                3,
            )
        )
        members.append((group_id, facilitators[g % len(facilitators)].id, "facilitator"))
        chosen = {brands[0].id, *(b.id for b in rng.sample(brands, min(len(brands), 24)))}
        for tenant_id in sorted(chosen):
            role = "observer" if rng.random() < 0.1 else "member"
            if g == 0 and tenant_id == brands[0].id:
                role = "member"  # the sharing group: the big brand shares there
            members.append((group_id, tenant_id, role))
    return groups, members


# ---- API clients for the runner ------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    tenant_id: uuid.UUID
    client_id: str
    client_secret: str


async def bench_clients(
    admin_url: URL, settings: Settings, slugs: Sequence[str]
) -> dict[str, Credentials]:
    """A fresh admin API client for each tenant (a secret is shown only when it is made); the
    previous run's are revoked."""
    database = Database.connect(admin_url, settings)
    found: dict[str, Credentials] = {}
    try:
        for slug in slugs:
            async with database.system_transaction() as session:
                tenant_id = await session.scalar(
                    sa.text("SELECT id FROM tenants WHERE slug = :slug"), {"slug": slug}
                )
            if tenant_id is None:
                raise SystemExit(f"no tenant {slug!r} in the bench database: generate first")
            # The tenant's clients: as the app role, bound to the tenant.
            async with database.transaction(tenant_id) as session:
                await session.execute(
                    sa.text(
                        "UPDATE api_clients SET revoked_at = now() WHERE tenant_id = :tenant "
                        "AND name = :name AND revoked_at IS NULL"
                    ),
                    {"tenant": tenant_id, "name": BENCH_CLIENT_NAME},
                )
                client = await identity.create_client(
                    session, tenant_id=tenant_id, name=BENCH_CLIENT_NAME, role="admin", scopes=None
                )
                found[slug] = Credentials(tenant_id, client.client_id, client.client_secret)
    finally:
        await database.dispose()
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Spec()
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__)
    parser.add_argument("--database", default=BENCH_DATABASE)
    parser.add_argument("--tenants", type=int, default=defaults.tenants)
    parser.add_argument("--suppliers", type=int, default=defaults.suppliers)
    parser.add_argument("--findings", type=int, default=defaults.findings)
    parser.add_argument("--groups", type=int, default=defaults.groups)
    parser.add_argument(
        "--shared-findings",
        type=int,
        default=defaults.shared_findings,
        help="shared into the first working group",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    parser.add_argument(
        "--drop", action="store_true", help="drop the database first: new schema, new data"
    )
    return parser.parse_args(argv)


def spec_of(args: argparse.Namespace) -> Spec:
    if args.tenants < 3:
        raise SystemExit("--tenants must be at least 3 (a facilitator and two brands)")
    return Spec(
        tenants=args.tenants,
        suppliers=args.suppliers,
        findings=args.findings,
        groups=args.groups,
        shared_findings=args.shared_findings,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings, spec = Settings.from_env(), spec_of(args)

    async def work() -> Generated:
        if args.drop:
            await drop_database(settings, args.database)
        return await generate(settings, spec, database=args.database, force=args.force)

    result = asyncio.run(work())
    state = "already generated" if result.skipped else "generated"
    print(f"{args.database}: {state} in {result.seconds:.1f} s: {json.dumps(result.counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
