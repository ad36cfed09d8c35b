"""Meetings as an RFC 5545 calendar, built with icalendar (pure: no database, no clock).

A series is one VEVENT with its RRULE, DTSTART in the series' zone and the series' SEQUENCE; each
occurrence that was changed or cancelled is a VEVENT with the same UID, a RECURRENCE-ID and its own
SEQUENCE (cancelled ones `STATUS:CANCELLED`); a rule instance with no occurrence is an EXDATE.
A single meeting is a VEVENT of its own. UIDs are the series' or meeting's id, so they are stable
across fetches, and DTSTAMP is the row's `updated_at`, so the same rows give the same bytes.

What the text must be for Google Calendar and Outlook: CRLF line ends, lines folded at 75 octets
(icalendar does both), one VTIMEZONE for every TZID used, UNTIL in UTC (the stored rule already
is), no X-WR-TIMEZONE. An instant that its zone's wall time cannot name (the second 01:30 of a
night the clocks go back) is written in UTC, so nothing is ever off by an hour.

Two in-process caches keep a warm build cheap: VTIMEZONE components per zone (slow to make), and
each VEVENT's bytes per row version (id, `updated_at`, `sequence`): a feed of 500 meetings
rebuilds only the events that changed.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache, partial
from typing import Any, Generic, TypeVar

from icalendar import Calendar, Event, vDuration, vRecur

from wg_api.meetings.recurrence import (
    HORIZON,
    RecurrenceError,
    expand,
    parse_rule,
    to_local,
    to_utc,
    zone_of,
)
from wg_api.meetings.repository import MeetingRecord, SeriesRecord

PRODID = "-//wg-api//Meetings//EN"
UID_DOMAIN = "wg-api"
# Litestar adds `; charset=utf-8` to text types.
MEDIA_TYPE = "text/calendar"
# VTIMEZONE observances cover meetings from this date to that one (meetings start in the future;
# a rule kept two years ahead stays far inside).
ZONE_FIRST_DATE = date(2000, 1, 1)
ZONE_LAST_DATE = date(2100, 1, 1)
MAX_CACHED_EVENTS = 50_000
_END = b"END:VCALENDAR\r\n"

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A least-recently-used map of at most `size` entries, safe to share between threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        found = self.get(key)
        if found is None:
            found = make()
            self.put(key, found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_events: BoundedCache[tuple[Any, ...], tuple[bytes, frozenset[str]]] = BoundedCache(
    MAX_CACHED_EVENTS
)
_rule_instants: BoundedCache[tuple[Any, ...], frozenset[datetime]] = BoundedCache(4096)


def clear_caches() -> None:
    """Forget built events and rule expansions (the bench measures a cold build with it)."""
    _events.clear()
    _rule_instants.clear()
    vtimezone.cache_clear()


@lru_cache(maxsize=512)
def vtimezone(zone: str) -> bytes | None:
    """The VTIMEZONE of an IANA zone, as icalendar's `add_missing_timezones` makes it; None when
    icalendar cannot describe the zone (its times are then written in UTC)."""
    calendar = Calendar()
    probe = Event()
    probe.add("dtstart", datetime(2030, 1, 1, 12, tzinfo=zone_of(zone)))
    calendar.add_component(probe)
    calendar.add_missing_timezones(first_date=ZONE_FIRST_DATE, last_date=ZONE_LAST_DATE)
    found = [tz for tz in calendar.timezones if tz.tz_name == zone]
    return found[0].to_ical() if found else None


@dataclass
class _Zones:
    """The zones whose TZID the calendar uses, so each gets its VTIMEZONE."""

    used: set[str]

    def moment(self, instant: datetime, zone: str) -> datetime:
        """`instant` as wall time with a TZID of `zone` when that names it exactly, else UTC."""
        if vtimezone(zone) is None or to_utc(to_local(instant, zone), zone) != instant:
            return instant.astimezone(UTC)
        self.used.add(zone)
        return instant.astimezone(zone_of(zone))


def _uid(item_id: uuid.UUID) -> str:
    return f"{item_id}@{UID_DOMAIN}"


def _location_text(location: dict[str, Any]) -> str | None:
    parts = [location.get("venue"), location.get("address")]
    if location.get("mode") in ("online", "hybrid"):
        parts.append(location.get("online_url"))
    text = ", ".join(p for p in parts if p)
    return text or None


def _describe(event: Event, title: str, description: str | None, location: dict[str, Any]) -> None:
    event.add("summary", title)
    if description:
        event.add("description", description)
    place = _location_text(location)
    if place:
        event.add("location", place)
    if location.get("online_url"):
        event.add("url", location["online_url"])


def _stamp(event: Event, item_id: uuid.UUID, created: datetime, updated: datetime) -> None:
    event.add("uid", _uid(item_id))
    event.add("dtstamp", updated.astimezone(UTC))
    event.add("created", created.astimezone(UTC))
    event.add("last-modified", updated.astimezone(UTC))


def _timing(event: Event, zones: _Zones, starts_at: datetime, minutes: int, zone: str) -> None:
    event.add("dtstart", zones.moment(starts_at, zone))
    event.add("dtend", zones.moment(starts_at + timedelta(minutes=minutes), zone))


def _occurrence_event(record: MeetingRecord, zones: _Zones, series: SeriesRecord | None) -> Event:
    """A single meeting, or an occurrence of `series` that differs from its rule."""
    event = Event()
    _stamp(event, series.id if series else record.id, record.created_at, record.updated_at)
    if series is not None and record.recurrence_id is not None:
        event.add("recurrence-id", zones.moment(record.recurrence_id, series.timezone))
    _timing(event, zones, record.starts_at, record.duration_minutes, record.timezone)
    _describe(event, record.title, record.description, record.location)
    event.add("sequence", record.sequence)
    event.add("status", "CANCELLED" if record.status == "cancelled" else "CONFIRMED")
    return event


def _series_event(series: SeriesRecord, zones: _Zones, excluded: Sequence[datetime]) -> Event:
    event = Event()
    _stamp(event, series.id, series.created_at, series.updated_at)
    starts_at = to_utc(series.start_local, series.timezone)
    _timing(event, zones, starts_at, series.duration_minutes, series.timezone)
    event.add("rrule", vRecur.from_ical(series.rrule))
    for instant in excluded:
        event.add("exdate", zones.moment(instant, series.timezone))
    _describe(event, series.title, series.description, series.location)
    event.add("sequence", series.sequence)
    event.add("status", "CONFIRMED")
    return event


def _built(key: tuple[Any, ...], zones: set[str], make: Callable[[_Zones], Event]) -> bytes:
    """The event's bytes from the cache, or built; `zones` gains the zones the event uses."""
    cached = _events.get(key)
    if cached is None:
        used = _Zones(set())
        cached = (make(used).to_ical(), frozenset(used.used))
        _events.put(key, cached)
    text, used_zones = cached
    zones.update(used_zones)
    return text


def _expected_instants(series: SeriesRecord, last: datetime) -> frozenset[datetime]:
    """The rule's instants up to the last stored occurrence (a rule kept two years ahead has
    none stored beyond; the feed says nothing about those)."""

    def make() -> frozenset[datetime]:
        try:
            found = expand(
                parse_rule(series.rrule),
                series.start_local,
                series.timezone,
                now=last - HORIZON + timedelta(seconds=1),
                limit=None,
            )
        except RecurrenceError:
            return frozenset()
        return frozenset(o.starts_at for o in found if o.starts_at <= last)

    key = (series.id, series.updated_at, series.rrule, series.start_local, series.timezone, last)
    return _rule_instants.get_or_make(key, make)


def _is_override(record: MeetingRecord) -> bool:
    return (
        record.is_exception
        or record.status != "scheduled"
        or record.recurrence_id is None
        or record.starts_at != record.recurrence_id
    )


def render(
    name: str,
    occurrences: Iterable[MeetingRecord],
    series: dict[uuid.UUID, SeriesRecord],
) -> bytes:
    """The calendar of these occurrences (every one of them, cancelled ones too), `name` its
    display name. Occurrences of a series missing from `series` are written as single events."""
    singles: list[MeetingRecord] = []
    members: dict[uuid.UUID, list[MeetingRecord]] = defaultdict(list)
    for record in occurrences:
        if record.series_id is not None and record.series_id in series:
            members[record.series_id].append(record)
        else:
            singles.append(record)
    zones: set[str] = set()
    chunks: list[tuple[datetime, bytes]] = []
    for series_id, rows in members.items():
        chunks.extend(_series_chunks(series[series_id], rows, zones))
    for record in singles:
        key = ("single", record.id, record.updated_at, record.sequence)
        chunks.append(
            (
                record.starts_at,
                _built(key, zones, partial(_occurrence_event, record, series=None)),
            )
        )
    chunks.sort(key=lambda chunk: chunk[0])
    head = _head(name)
    return b"".join(
        [
            head[: -len(_END)],
            *(vtimezone(zone) or b"" for zone in sorted(zones)),
            *(text for _, text in chunks),
            _END,
        ]
    )


def _series_chunks(
    series: SeriesRecord, rows: list[MeetingRecord], zones: set[str]
) -> list[tuple[datetime, bytes]]:
    rows.sort(key=lambda r: (r.series_index or 0, r.id))
    stored = {r.recurrence_id for r in rows if r.recurrence_id is not None}
    last = max(stored) if stored else to_utc(series.start_local, series.timezone)
    excluded = sorted(_expected_instants(series, last) - stored)
    master_key = (
        "series",
        series.id,
        series.updated_at,
        series.sequence,
        tuple(excluded),
    )
    first = to_utc(series.start_local, series.timezone)
    master = _built(master_key, zones, partial(_series_event, series, excluded=excluded))
    chunks = [(first, master)]
    for record in rows:
        if not _is_override(record):
            continue
        key = (
            "override",
            record.id,
            series.id,
            record.updated_at,
            record.sequence,
            series.timezone,
        )
        chunks.append(
            (
                record.recurrence_id or record.starts_at,
                _built(key, zones, partial(_occurrence_event, record, series=series)),
            )
        )
    return chunks


@lru_cache(maxsize=1024)
def _head(name: str) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(timedelta(hours=1)))
    text: bytes = calendar.to_ical()
    return text
