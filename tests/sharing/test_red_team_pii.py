"""Red team: a contributor writes every kind of personal and identifying detail into a finding it
shares (and into a later change); no other tenant of the group can read any of it, nor anything
that names the contributor, in any byte of any response: the list, each item, every insight
grouping, the change feed.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import httpx
import pytest

from tests.sharing.conftest import (
    SHARED_FINDING_KEYS,
    Actor,
    SharingGroup,
    add_person,
    feed,
    groupings,
    json_keys,
    list_pages,
    new_supplier,
    record,
    share,
)

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(first17: str) -> str:
    """An 18-character resident identity number with its ISO 7064 MOD 11-2 check character."""
    return (
        first17
        + "10X98765432"[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]
    )


EMAILS = ["li.wei+audit@kestrel-mail.com.cn", "HR.Dept@Factory-Example.CN"]
MOBILES = ["+86 138 1234 5678", "13912345678", "137-2345-6789", "0086 13698765432"]
LANDLINES = ["0769-8888 1234", "(020) 12345678"]
INTERNATIONAL = ["+44 20 7946 0958"]
RESIDENT_IDS = [
    resident_id("44030519900307241"),
    resident_id("11010519491231002"),  # its check character is X
    resident_id("11010519491231002").lower(),
    "110105491231002",
]
LONG_DIGITS = ["6222020200112233445", "4500-1234-5678"]
URLS = [
    "https://intranet.example-brand.com/audits/4711?case=9",
    "www.audit-portal.org/report",
    "example-brand.com/suppliers",
]
CAP_CONTACT = "Zhou Jielun"
USER_NAMES = ["Chen Meiling", "李美玲"]
OBSERVED_ON = "2026-08-12"
EXTERNAL_ID = "QX-ERP-55120"
INTERNAL_CODE = "QX-SUP-77431"
SOURCE_REFERENCE = "QX-SMETA-88213"
PRIVATE_NOTES = ["Root cause known only to us QX-ROOT-71", "Planned with our agent QX-PLAN-72"]
# What a member could write before the scrubber knew real audit text (issue 9).
CHILD = "王小明"
WORKER = "Maria Lopez"
MESSAGING = ["wxid_8k2n5p0q1z", "lihua_88", "284719365"]
DOCUMENTS = ["E12345678", "A123456(3)", "001203004567"]
DISGUISED_EMAILS = ["li.wei at kestrel dot com", "zhang.san\uff20factory-mail\uff0ecn"]
ODD_PHONES = ["138  1234  5678", "139/2845/6610"]
WORDS_DATE = "12 March 2011"
READABLE = ["湖南邵阳人", "60 hours", "2 workers", "Article 38"]
NUMBERS = MOBILES + LANDLINES + INTERNATIONAL + RESIDENT_IDS + LONG_DIGITS + ODD_PHONES


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@dataclasses.dataclass
class Scene:
    group: SharingGroup
    contributor: Actor
    finding: dict[str, Any]
    shared_id: str
    pii: list[str]
    identity: list[str]
    # (who, what) -> raw bytes (and headers) of one response another tenant of the group got
    exposures: dict[tuple[str, str], bytes]
    records: list[tuple[str, dict[str, Any]]]


def _pii_text(group: SharingGroup, contributor: Actor, variant: int) -> str:
    names = []
    for number, actor in enumerate(group.readers):
        name = actor.name.upper() if number % 2 else actor.name.lower()
        names.append(f"{name} ({actor.slug.upper()})")
    # A member's name with a legal form, a zero-width space inside, its distinctive word alone.
    first = group.readers[0].name
    word, rest = first.split(" ", 1)
    names += [f"{first} Limited", f"{word}\u200b {rest}", f"the {word} audit team"]
    return " ".join(
        [
            f"Variant {variant}. Young workers were found on line 3 on {OBSERVED_ON}.",
            f"HR: write to {EMAILS[0]} or {EMAILS[1]};",
            f"mobiles {', '.join(MOBILES)};",
            f"office {LANDLINES[0]}, {LANDLINES[1]}, head office {INTERNATIONAL[0]}.",
            f"ID cards {', '.join(RESIDENT_IDS)}.",
            f"Payroll account {LONG_DIGITS[0]}, purchase order {LONG_DIGITS[1]}.",
            f"Reports at {', '.join(URLS)}.",
            f"Buyers present: {', '.join(names)}.",
            f"Our contact {CAP_CONTACT} and our staff {USER_NAMES[0]}, {USER_NAMES[1]} attended.",
            f"Child worker {CHILD}, 14岁, {READABLE[0]}; worker {WORKER}, 15 years old.",
            f"WeChat id {MESSAGING[0]}, WeChat: {MESSAGING[1]}, QQ {MESSAGING[2]};",
            f"passport {DOCUMENTS[0]}, HKID {DOCUMENTS[1]}, CCCD {DOCUMENTS[2]};",
            f"mail {DISGUISED_EMAILS[0]} or {DISGUISED_EMAILS[1]};",
            f"phones {ODD_PHONES[0]} and {ODD_PHONES[1]}; born {WORDS_DATE}.",
            f"{READABLE[1]} a week, {READABLE[2]} hurt, {READABLE[3]} breached.",
            f"Our case {EXTERNAL_ID}, vendor code {INTERNAL_CODE}, audit {SOURCE_REFERENCE},",
            f"synced by {contributor.handle.client_id}",
            f"for {contributor.id} ({contributor.id.hex}).",
        ]
    )


async def _exposures(
    client: httpx.AsyncClient, group: SharingGroup, contributor: Actor
) -> tuple[dict[tuple[str, str], bytes], list[tuple[str, dict[str, Any]]]]:
    exposures: dict[tuple[str, str], bytes] = {}
    records: list[tuple[str, dict[str, Any]]] = []

    def keep(who: str, what: str, response: httpx.Response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items()).encode()
        exposures[(who, what)] = headers + b"\n\n" + response.content

    for reader in group.others(contributor):
        who = reader.slug
        for number, page in enumerate(await list_pages(client, reader, group, limit=1)):
            keep(who, f"list page {number}", page)
            for item in page.json()["items"]:
                records.append((f"{who} list", item))
                one = await client.get(
                    f"{group.path}/shared-findings/{item['id']}", headers=reader.headers
                )
                assert one.status_code == 200, one.text
                keep(who, f"item {item['id']}", one)
                records.append((f"{who} item", one.json()))
        for dims in groupings():
            response = await client.get(
                f"{group.path}/insights",
                params={"group_by": ",".join(dims)},
                headers=reader.headers,
            )
            assert response.status_code == 200, response.text
            keep(who, f"insights {dims}", response)
        events = await feed(client, reader, at_least=2)
        keep(who, "events", events)
        types = [event["type"] for event in events.json()["items"]]
        assert types == ["shared_finding.published", "shared_finding.updated"], types
        records += [(f"{who} {e['type']}", e["data"]) for e in events.json()["items"]]
    return exposures, records


@pytest.fixture(scope="module")
async def scene(client: httpx.AsyncClient, make_group: Any, database: Any) -> Scene:
    group = await make_group(members=4)
    contributor = group.members[1]
    for name in USER_NAMES:
        await add_person(database, contributor, name)
    supplier = await new_supplier(
        client, contributor, linked=group.members[2:], internal_code=INTERNAL_CODE
    )
    finding = await record(
        client,
        contributor,
        supplier["id"],
        external_id=EXTERNAL_ID,
        area="child_labour",
        severity="zero_tolerance",
        title=f"{USER_NAMES[0]} ({MOBILES[1]}, {EMAILS[0]}) of {contributor.name} saw it",
        description=_pii_text(group, contributor, 1),
        observed_on=OBSERVED_ON,
        affected_workers=37,
        source={"scheme": "smeta", "reference": SOURCE_REFERENCE},
        cap={
            "root_cause": PRIVATE_NOTES[0],
            "planned_actions": PRIVATE_NOTES[1],
            "due_on": "2027-01-31",
            "contact": CAP_CONTACT,
        },
        child_labour_case={
            "confirmed_under_min_age": 2,
            "young_workers_in_hazardous_work": 1,
            "age_unconfirmed": 0,
            "remediation": "school",
        },
    )
    created = await share(client, contributor, finding["id"], group)
    changed = await client.patch(
        f"/v1/findings/{finding['id']}",
        json={
            "title": f"Still seen by {USER_NAMES[1]}: call {MOBILES[0]} or {INTERNATIONAL[0]}",
            "description": _pii_text(group, contributor, 2),
            "status": "remediation_in_progress",
        },
        headers=contributor.headers,
    )
    assert changed.status_code == 200, changed.text

    pii = [*EMAILS, *NUMBERS, *URLS, CAP_CONTACT, *USER_NAMES, OBSERVED_ON, *PRIVATE_NOTES]
    pii += [CHILD, "14岁", WORKER, *MESSAGING, *DOCUMENTS, WORDS_DATE]
    pii += ["li.wei", "kestrel dot com", "zhang.san", "factory-mail"]
    for actor in group.readers:
        word = actor.name.split(" ", 1)[0]
        pii += [actor.name, actor.slug, f"{word} Apparel", f"{word}\u200b", f"the {word} audit"]
    identity = [
        str(contributor.id),
        contributor.id.hex,
        contributor.slug,
        contributor.name,
        contributor.handle.client_id,
        EXTERNAL_ID,
        INTERNAL_CODE,
        SOURCE_REFERENCE,
        CAP_CONTACT,
        finding["id"],
        created["id"],
    ]
    exposures, records = await _exposures(client, group, contributor)
    return Scene(
        group=group,
        contributor=contributor,
        finding=finding,
        shared_id=created["shared_finding_id"],
        pii=pii,
        identity=identity,
        exposures=exposures,
        records=records,
    )


def _leaks(scene: Scene, secrets: list[str]) -> list[str]:
    leaks = []
    for (who, what), raw in scene.exposures.items():
        text = raw.decode()
        lowered, only_digits = text.lower(), digits(text)
        for secret in secrets:
            found = secret.lower() in lowered
            if secret in NUMBERS:
                found = found or digits(secret) in only_digits
            if found:
                leaks.append(f"{who} / {what}: {secret!r}")
    return leaks


async def test_the_scene_exposes_what_other_members_may_read(scene):
    """The attacks below read real responses: the record is there, scrubbed, not dropped."""
    readers = {who for who, _ in scene.exposures}
    assert readers == {actor.slug for actor in scene.group.others(scene.contributor)}
    items = [record for label, record in scene.records if label.endswith(" item")]
    assert len(items) == len(readers)
    shared = items[0]
    assert shared["id"] == scene.shared_id
    assert shared["observed_period"] == "2026-Q3"
    assert shared["affected_workers_band"] == "11-50"
    assert shared["status"] == "remediation_in_progress"
    assert shared["child_labour_case"] == {
        "confirmed_under_min_age": 2,
        "young_workers_in_hazardous_work": 1,
        "age_unconfirmed": 0,
    }
    description = shared["description"]
    assert description.startswith("Variant 2. Young workers were found on line 3 on ")
    kinds: tuple[str, ...] = ("email", "phone", "id_number", "number", "url", "organisation")
    kinds += ("person",)
    # UUIDs are references now ("id" is not one of the contract's kinds of redaction).
    kinds += ("messaging_id", "date", "age")
    for kind in (*kinds, "reference", "credential"):
        assert f"[redacted:{kind}]" in description, (kind, description)
    for readable in READABLE:
        assert readable in description, (readable, description)
    assert shared["title"].startswith("Still seen by [redacted:person]: call [redacted:phone]")


async def test_no_personal_data_reaches_another_member(scene):
    assert _leaks(scene, scene.pii) == []


async def test_nothing_names_the_contributor(scene):
    assert _leaks(scene, scene.identity) == []


FORBIDDEN_KEY_PARTS = (
    "tenant",
    "contributor",
    "external",
    "internal",
    "user",
    "client",
    "reference",
    "contact",
    "created",
    "updated",
    "withdrawn",
    "_at",
    "_on",
    "date",
    "time",
    "finding_id",
    "share",
)
EXACT_TIME = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}")


def _values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _values(item)]
    return [value]


async def test_no_key_of_a_shared_record_names_an_owner_or_an_exact_time(scene):
    assert len(scene.records) >= 3 * len(scene.group.others(scene.contributor))
    for label, shared in scene.records:
        expected = SHARED_FINDING_KEYS
        if label.endswith("shared_finding.published") or label.endswith("updated"):
            expected = SHARED_FINDING_KEYS | {"working_group_id"}
        assert set(shared) == expected, label
        bad = {k for k in json_keys(shared) for part in FORBIDDEN_KEY_PARTS if part in k.lower()}
        assert bad == set(), (label, bad)
        timestamps = [v for v in _values(shared) if isinstance(v, str) and EXACT_TIME.search(v)]
        assert timestamps == [], (label, timestamps)
