"""Finding a time: quarter-hour slots in a window of days, ranked by how many member tenants can
come, and for every slot which tenant cannot and why.

Each member tenant (role member or facilitator; observers are not counted) brings its zone,
working hours and days, the public holidays of its `country` (the `holidays` package) and the
other wg-api meetings it has. The window is indexed in quarter hours from its first instant:
each tenant's possible starts are a few runs of indices (one per working day, minus its meetings),
added into one count per start with a difference array, so the work grows with days and meetings,
not with tenants times quarter hours. Reasons are worked out only for the slots answered.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import holidays
import msgspec
from msgspec import Meta
from sqlalchemy.ext.asyncio import AsyncConnection

from wg_api.identity import service as identity
from wg_api.meetings import service as meetings
from wg_api.platform.errors import FieldError, ValidationFailed
from wg_api.working_groups import service as groups
from wg_api.working_groups.schemas import TenantRef
from wg_api.working_groups.service import Membership

QUARTER = 900  # seconds
MAX_WINDOW_DAYS = 92
MAX_AHEAD = timedelta(days=5 * 366)
MAX_MEETING = timedelta(minutes=1440)
ATTENDING_ROLES = frozenset({"member", "facilitator"})
WEEKDAY_INDEX = {name: index for index, name in enumerate(identity.WEEKDAYS)}
HONG_KONG = "Asia/Hong_Kong"

Reason = Literal["public_holiday", "weekend", "outside_working_hours", "meeting_conflict"]


class SlotsIn(msgspec.Struct, forbid_unknown_fields=True):
    duration_minutes: Annotated[int, Meta(ge=15, le=480)]
    from_: Annotated[
        date, Meta(description="First day, in the group's time zone (not before today).")
    ] = msgspec.field(name="from")
    to: Annotated[date, Meta(description="Last day, included; at most 92 days after `from`.")]
    count: Annotated[int, Meta(ge=1, le=20)] = 5
    in_person: Annotated[
        bool,
        Meta(description="In Hong Kong: 09:00-18:00 Monday to Friday there, no HK public holiday."),
    ] = False


class Unavailable(msgspec.Struct):
    tenant: TenantRef
    reason: Reason
    holiday: Annotated[
        str | None, Meta(description="The holiday's name, with `public_holiday`.")
    ] = None


class Slot(msgspec.Struct):
    starts_at: str
    ends_at: str
    start_local: Annotated[str, Meta(description="Wall time in the group's time zone.")]
    available_tenants: int
    total_tenants: int
    unavailable: list[Unavailable]


class Slots(msgspec.Struct):
    timezone: Annotated[str, Meta(description="The group's zone, that of `start_local`.")]
    slots: list[Slot]


@dataclass(frozen=True)
class Attendee:
    """A member tenant as the slot finder weighs it; `busy` holds its other meetings (epoch
    seconds, sorted)."""

    ref: TenantRef
    zone: ZoneInfo
    country: str | None
    start: time
    end: time
    days: frozenset[int]
    busy: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Window:
    """Possible starts `origin + QUARTER * i` for i in [first, size), `duration` seconds long."""

    origin: int
    size: int
    first: int
    duration: int

    def instant(self, index: int) -> int:
        return self.origin + QUARTER * index


@lru_cache(maxsize=64)
def zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# Holiday calendars by (country, year): slow to build (lunar calendars), so built once, in a
# thread for a request that needs new ones, and kept (bounded: years come from requests).
_CALENDARS: OrderedDict[tuple[str, int], Mapping[date, str]] = OrderedDict()
MAX_CALENDARS = 2048


def _build_calendar(country: str, year: int) -> Mapping[date, str]:
    """One country's public holidays of one year, in English where the package has it."""
    try:
        calendar = holidays.country_holidays(country, years=year, language="en_US")
    except NotImplementedError:
        return {}
    return dict(calendar.items())


def _calendar(country: str, year: int) -> Mapping[date, str]:
    key = (country, year)
    found = _CALENDARS.get(key)
    if found is None:
        found = _CALENDARS[key] = _build_calendar(country, year)
        while len(_CALENDARS) > MAX_CALENDARS:
            _CALENDARS.popitem(last=False)
    return found


def holiday(country: str | None, day: date) -> str | None:
    return _calendar(country, day.year).get(day) if country else None


def missing_calendars(
    countries: Iterable[str | None], years: Iterable[int]
) -> list[tuple[str, int]]:
    return [
        (country, year)
        for country in sorted({c for c in countries if c})
        for year in years
        if (country, year) not in _CALENDARS
    ]


def build_calendars(wanted: Sequence[tuple[str, int]]) -> None:
    for country, year in wanted:
        _calendar(country, year)


def _epoch(day: date, wall: time, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, wall, tzinfo=zone).timestamp())


def _ceil_quarters(seconds: int) -> int:
    return -(-seconds // QUARTER)


def _working_runs(attendee: Attendee, window: Window) -> list[tuple[int, int]]:
    """Index runs [lo, hi) of starts whose whole slot lies in one of its working days' hours."""
    runs: list[tuple[int, int]] = []
    first = datetime.fromtimestamp(window.instant(window.first), attendee.zone).date()
    last = datetime.fromtimestamp(
        window.instant(window.size) + window.duration, attendee.zone
    ).date()
    day = first
    while day <= last:
        if day.weekday() in attendee.days and holiday(attendee.country, day) is None:
            begin = _epoch(day, attendee.start, attendee.zone)
            finish = _epoch(day, attendee.end, attendee.zone) - window.duration
            lo = max(_ceil_quarters(begin - window.origin), window.first)
            hi = min((finish - window.origin) // QUARTER + 1, window.size)
            if lo < hi:
                runs.append((lo, hi))
        day += timedelta(days=1)
    return runs


def _blocked_runs(busy: Iterable[tuple[int, int]], window: Window) -> list[tuple[int, int]]:
    """Index runs [lo, hi) of starts whose slot overlaps one of `busy`, merged and sorted."""
    runs = sorted(
        (
            max((start - window.duration - window.origin) // QUARTER + 1, 0),
            min(_ceil_quarters(end - window.origin), window.size),
        )
        for start, end in busy
    )
    merged: list[tuple[int, int]] = []
    for lo, hi in runs:
        if lo >= hi:
            continue
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _minus(runs: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`runs` without `holes` (both sorted, disjoint)."""
    left: list[tuple[int, int]] = []
    h = 0
    for lo, hi in runs:
        while h < len(holes) and holes[h][1] <= lo:
            h += 1
        k = h
        while k < len(holes) and holes[k][0] < hi:
            if holes[k][0] > lo:
                left.append((lo, holes[k][0]))
            lo = max(lo, holes[k][1])
            k += 1
        if lo < hi:
            left.append((lo, hi))
    return left


def available_counts(attendees: Sequence[Attendee], window: Window) -> list[int]:
    """For every start index, how many attendees can come."""
    steps = [0] * (window.size + 1)
    for attendee in attendees:
        free = _minus(_working_runs(attendee, window), _blocked_runs(attendee.busy, window))
        for lo, hi in free:
            steps[lo] += 1
            steps[hi] -= 1
    return list(itertools.accumulate(steps[: window.size]))


def offered(
    window: Window, blocked: Iterable[tuple[int, int]], place: Attendee | None
) -> bytearray:
    """1 for every start that may be offered: not over a meeting of this group, and inside the
    venue's hours (in person) if there is one."""
    mask = bytearray(window.size)
    if place is None:
        mask[window.first :] = b"\x01" * (window.size - window.first)
    else:
        for lo, hi in _working_runs(place, window):
            mask[lo:hi] = b"\x01" * (hi - lo)
    for lo, hi in _blocked_runs(blocked, window):
        mask[lo:hi] = bytes(hi - lo)
    return mask


def why_not(attendee: Attendee, start: int, end: int) -> tuple[Reason, str | None] | None:
    """The first reason that keeps the attendee from [start, end), in the contract's order."""
    opening = datetime.fromtimestamp(start, attendee.zone)
    closing = datetime.fromtimestamp(end - 1, attendee.zone)
    days = sorted({opening.date(), closing.date()})
    for day in days:
        if (name := holiday(attendee.country, day)) is not None:
            return "public_holiday", name
    if any(day.weekday() not in attendee.days for day in days):
        return "weekend", None
    if (
        len(days) > 1
        or start < _epoch(days[0], attendee.start, attendee.zone)
        or end > _epoch(days[0], attendee.end, attendee.zone)
    ):
        return "outside_working_hours", None
    if any(busy_start < end and busy_end > start for busy_start, busy_end in attendee.busy):
        return "meeting_conflict", None
    return None


def _utc_text(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rank(
    attendees: Sequence[Attendee],
    window: Window,
    *,
    zone: ZoneInfo,
    blocked: Iterable[tuple[int, int]],
    place: Attendee | None,
    count: int,
) -> list[Slot]:
    """The `count` best slots: most attendees first, then earliest; none that nobody can attend."""
    counts = available_counts(attendees, window)
    mask = offered(window, blocked, place)
    candidates = [i for i in itertools.compress(range(window.size), mask) if counts[i] > 0]
    best = heapq.nsmallest(count, candidates, key=lambda i: (-counts[i], i))
    slots: list[Slot] = []
    for index in best:
        start = window.instant(index)
        end = start + window.duration
        unavailable = [
            Unavailable(tenant=attendee.ref, reason=reason[0], holiday=reason[1])
            for attendee in attendees
            if (reason := why_not(attendee, start, end)) is not None
        ]
        slots.append(
            Slot(
                starts_at=_utc_text(start),
                ends_at=_utc_text(end),
                start_local=datetime.fromtimestamp(start, zone).strftime("%Y-%m-%dT%H:%M"),
                available_tenants=len(attendees) - len(unavailable),
                total_tenants=len(attendees),
                unavailable=unavailable,
            )
        )
    return slots


def window_for(data: SlotsIn, zone: ZoneInfo, now: datetime) -> Window:
    errors: list[FieldError] = []
    today = now.astimezone(zone).date()
    if data.from_ < today:
        errors.append(FieldError("from", f"must not be before today ({today}) in the group's zone"))
    elif data.from_ > today + MAX_AHEAD:
        errors.append(FieldError("from", f"must be within {MAX_AHEAD.days} days from today"))
    if data.to < data.from_:
        errors.append(FieldError("to", "must not be before `from`"))
    elif (data.to - data.from_).days > MAX_WINDOW_DAYS:
        errors.append(FieldError("to", f"must be at most {MAX_WINDOW_DAYS} days after `from`"))
    if errors:
        raise ValidationFailed("The window is not valid.", errors=errors)
    origin = _epoch(data.from_, time(0), zone)
    finish = _epoch(data.to + timedelta(days=1), time(0), zone)
    size = _ceil_quarters(finish - origin)
    first = min(max(_ceil_quarters(int(now.timestamp()) - origin), 0), size)
    return Window(origin=origin, size=size, first=first, duration=data.duration_minutes * 60)


def attendee_of(profile: identity.WorkingTime, busy: list[tuple[int, int]]) -> Attendee:
    hours = profile.working_hours
    return Attendee(
        ref=TenantRef(id=profile.id, slug=profile.slug, name=profile.name),
        zone=zone_info(profile.timezone),
        country=profile.country,
        start=time.fromisoformat(hours.start),
        end=time.fromisoformat(hours.end),
        days=frozenset(WEEKDAY_INDEX[day] for day in hours.days),
        busy=tuple(sorted(busy)),
    )


def _hong_kong() -> Attendee:
    return Attendee(
        ref=TenantRef(id=uuid.UUID(int=0), slug="hong-kong", name="Hong Kong"),
        zone=zone_info(HONG_KONG),
        country="HK",
        start=time(9),
        end=time(18),
        days=frozenset(range(5)),
    )


def _span(starts_at: datetime, ends_at: datetime) -> tuple[int, int]:
    return int(starts_at.timestamp()), int(ends_at.timestamp())


async def find_slots(
    session: AsyncConnection, member: Membership, data: SlotsIn, now: datetime
) -> Slots:
    """Any member of the group, observers too; observers are not counted as attendees."""
    zone = zone_info(member.group.timezone)
    window = window_for(data, zone, now)
    begin = datetime.fromtimestamp(window.origin, UTC)
    finish = datetime.fromtimestamp(window.instant(window.size) + window.duration, UTC)
    roles = await groups.member_roles(session, member.group_id)
    attending = [tenant for tenant, role in roles.items() if role in ATTENDING_ROLES]
    profiles = await identity.working_times(session, attending)
    own = await meetings.list_occurrences(
        session, [member.group_id], begin - MAX_MEETING, finish, status="scheduled"
    )
    busy: dict[uuid.UUID, list[tuple[int, int]]] = {tenant: [] for tenant in attending}
    for tenant, starts_at, ends_at in await meetings.member_busy_times(
        session, member.group_id, begin, finish
    ):
        busy.setdefault(tenant, []).append(_span(starts_at, ends_at))
    attendees = sorted(
        (attendee_of(profiles[tenant], busy[tenant]) for tenant in attending if tenant in profiles),
        key=lambda a: (a.ref.name, a.ref.slug),
    )
    place = _hong_kong() if data.in_person else None
    # Each tenant's local days may start a day before `from` and end a day after `to`.
    years = range((data.from_ - timedelta(days=1)).year, (data.to + timedelta(days=2)).year + 1)
    countries = [a.country for a in attendees] + [place.country if place else None]
    if wanted := missing_calendars(countries, years):
        await asyncio.to_thread(build_calendars, wanted)
    slots = rank(
        attendees,
        window,
        zone=zone,
        blocked=[_span(m.starts_at, m.ends_at) for m in own],
        place=place,
        count=data.count,
    )
    return Slots(timezone=member.group.timezone, slots=slots)
