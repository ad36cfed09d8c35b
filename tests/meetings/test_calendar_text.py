"""What every calendar the tests fetch must be: the text rules Google Calendar and Outlook are
strict about, and, parsed with icalendar and expanded with recurring-ical-events, the API's list.

`fetch_calendar` is the one way the tests read a calendar, so every feed and `calendar.ics` the
suite produces goes through these checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import icalendar
import recurring_ical_events  # type: ignore[import-untyped]

MAX_OCTETS = 75
_TZID_PARAM = re.compile(rb";TZID=([^;:]+)[;:]")


@dataclass(frozen=True)
class Instant:
    """One occurrence as a calendar client shows it (or as the API lists it)."""

    starts_at: datetime
    ends_at: datetime
    status: str
    title: str


def unfolded(body: bytes) -> list[bytes]:
    return body.replace(b"\r\n ", b"").replace(b"\r\n\t", b"").split(b"\r\n")


def check_text(body: bytes) -> None:
    """RFC 5545 as the strict clients read it."""
    assert body.endswith(b"\r\n")
    assert body.count(b"\n") == body.count(b"\r\n"), "a line ends without CR"
    for line in body.split(b"\r\n"):
        assert len(line) <= MAX_OCTETS, f"line of {len(line)} octets: {line!r}"
    lines = unfolded(body)
    assert lines[0] == b"BEGIN:VCALENDAR"
    assert b"VERSION:2.0" in lines
    assert b"METHOD:PUBLISH" in lines
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H" in lines
    assert b"X-PUBLISHED-TTL:PT1H" in lines
    assert any(line.startswith(b"X-WR-CALNAME:") for line in lines)
    assert not any(line.startswith(b"X-WR-TIMEZONE") for line in lines)
    used = {m for line in lines for m in _TZID_PARAM.findall(line)}
    described = [line[len(b"TZID:") :] for line in lines if line.startswith(b"TZID:")]
    assert len(described) == len(set(described)), "a VTIMEZONE is repeated"
    assert used <= set(described), f"TZIDs without a VTIMEZONE: {used - set(described)}"
    event: list[bytes] = []
    for line in lines:
        if line == b"BEGIN:VEVENT":
            event = []
        event.append(line)
        if line == b"END:VEVENT":
            _check_event(event)


def _check_event(lines: list[bytes]) -> None:
    names = [re.split(rb"[;:]", line, maxsplit=1)[0] for line in lines]
    for required in (b"UID", b"DTSTAMP", b"DTSTART", b"SEQUENCE", b"STATUS", b"SUMMARY"):
        assert names.count(required) == 1, (required, lines)
    start = next(line for line in lines if line.startswith(b"DTSTART"))
    for line in lines:
        if line.startswith(b"RRULE:") and b"UNTIL=" in line and b"TZID=" in start:
            until = re.search(rb"UNTIL=([0-9TZ]+)", line)
            assert until is not None
            assert until[1].endswith(b"Z"), line


def expand(body: bytes, start: datetime, end: datetime) -> list[Instant]:
    """The occurrences a standard client shows in [start, end), by start."""
    calendar = icalendar.Calendar.from_ical(body)
    found = []
    for event in recurring_ical_events.of(calendar).between(start, end):
        begins = event.start
        assert isinstance(begins, datetime)
        assert begins.tzinfo is not None
        if not start <= begins < end:
            continue
        found.append(
            Instant(
                begins.astimezone(UTC),
                event.end.astimezone(UTC),
                str(event.get("STATUS", "CONFIRMED")),
                str(event.get("SUMMARY")),
            )
        )
    return sorted(found, key=lambda i: (i.starts_at, i.title, i.status))


def listed(items: list[dict[str, Any]]) -> list[Instant]:
    """The API's occurrences as a calendar client should show them."""
    return sorted(
        (
            Instant(
                _instant(m["starts_at"]),
                _instant(m["ends_at"]),
                "CANCELLED" if m["status"] == "cancelled" else "CONFIRMED",
                m["title"],
            )
            for m in items
        ),
        key=lambda i: (i.starts_at, i.title, i.status),
    )


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def fetch_calendar(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """GET a calendar; a 200 is checked against the text rules and must parse."""
    response = await client.get(url, headers=headers or {})
    if response.status_code == 200:
        assert response.headers["content-type"] == "text/calendar; charset=utf-8"
        assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])
        check_text(response.content)
        icalendar.Calendar.from_ical(response.content)
    return response


def events_by_uid(body: bytes) -> dict[str, list[icalendar.Event]]:
    calendar = icalendar.Calendar.from_ical(body)
    found: dict[str, list[icalendar.Event]] = {}
    for event in calendar.events:
        found.setdefault(str(event["UID"]), []).append(event)
    return found


def text_of(event: icalendar.Event, name: str) -> str:
    """A property's value as written in the calendar."""
    value = event[name].to_ical()
    return value.decode() if isinstance(value, bytes) else str(value)


# The checks themselves catch what they are for -------------------------------------------------

_GOOD = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nMETHOD:PUBLISH\r\n"
    b"X-WR-CALNAME:t\r\nREFRESH-INTERVAL;VALUE=DURATION:PT1H\r\nX-PUBLISHED-TTL:PT1H\r\n"
    b"BEGIN:VTIMEZONE\r\nTZID:Europe/Stockholm\r\nBEGIN:STANDARD\r\nDTSTART:20000101T000000\r\n"
    b"TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    b"BEGIN:VEVENT\r\nUID:a@t\r\nDTSTAMP:20270101T000000Z\r\n"
    b"DTSTART;TZID=Europe/Stockholm:20270301T090000\r\n"
    b"DTEND;TZID=Europe/Stockholm:20270301T100000\r\n"
    b"RRULE:FREQ=WEEKLY;UNTIL=20270401T000000Z\r\nSEQUENCE:0\r\nSTATUS:CONFIRMED\r\n"
    b"SUMMARY:t\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _fails(body: bytes) -> bool:
    try:
        check_text(body)
    except AssertionError:
        return True
    return False


def test_the_text_checks_pass_a_good_calendar_and_catch_each_rule() -> None:
    assert not _fails(_GOOD)
    assert _fails(_GOOD.replace(b"\r\n", b"\n"))
    assert _fails(_GOOD.replace(b"SUMMARY:t", b"SUMMARY:" + b"x" * 80))
    assert _fails(_GOOD.replace(b"TZID:Europe/Stockholm\r\n", b"TZID:Europe/Paris\r\n"))
    assert _fails(_GOOD.replace(b"UNTIL=20270401T000000Z", b"UNTIL=20270401T000000"))
    assert _fails(_GOOD.replace(b"METHOD:PUBLISH\r\n", b"X-WR-TIMEZONE:UTC\r\n"))
    assert _fails(_GOOD.replace(b"SEQUENCE:0\r\n", b""))


def test_expansion_follows_the_zone_across_daylight_saving() -> None:
    found = expand(_GOOD, datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 2, tzinfo=UTC))
    # The VTIMEZONE above has no DST, but icalendar reads a known IANA TZID as that zone (so the
    # expansion tests compare zones; the test below checks our VTIMEZONEs on their own).
    assert [i.starts_at.hour for i in found] == [8, 8, 8, 8, 7]


def test_our_vtimezones_alone_give_the_zones_instants() -> None:
    """A client that reads the VTIMEZONE instead of knowing the IANA name (Outlook maps zones its
    own way) must land on the same instants: rename the TZID so only our definition is used."""
    from zoneinfo import ZoneInfo

    from wg_api.meetings.calendar import vtimezone

    for zone in ("Europe/Stockholm", "America/New_York", "Asia/Hong_Kong"):
        component = vtimezone(zone)
        assert component is not None
        # icalendar keeps parsed definitions by TZID: one name per zone.
        tzid = f"X-Our-{zone.replace('/', '-')}".encode()
        renamed = component.replace(f"TZID:{zone}".encode(), b"TZID:" + tzid)
        body = (
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
            + renamed
            + b"BEGIN:VEVENT\r\nUID:a@t\r\nDTSTAMP:20270101T000000Z\r\n"
            + b"DTSTART;TZID="
            + tzid
            + b":20270104T093000\r\nDTEND;TZID="
            + tzid
            + b":20270104T103000\r\n"
            b"RRULE:FREQ=WEEKLY;COUNT=104\r\nSUMMARY:t\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        found = expand(body, datetime(2027, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC))
        wall = datetime(2027, 1, 4, 9, 30)
        expected = [
            (wall + timedelta(weeks=i)).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
            for i in range(104)
        ]
        assert [i.starts_at for i in found] == expected, zone
