"""Recurrence rules expanded in the meeting's own zone (pure: no database, no clock).

A series is a local wall time (`start_local`, naive), an IANA zone and an RFC 5545 RRULE. Each
occurrence is the rule's local wall time made an instant in the zone, so a 10:00 Hong Kong meeting
stays at 10:00 whatever daylight saving does elsewhere and a Stockholm 09:00 series keeps 09:00
across its DST changes. A local time in a DST gap moves forward by the gap's length (02:30 becomes
03:30); an ambiguous one is its first instant (fold=0): RFC 5545's rule and what zoneinfo does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr  # type: ignore[import-untyped]

MAX_OCCURRENCES = 500
# Rules with neither COUNT nor UNTIL are kept this far ahead of now.
HORIZON = timedelta(days=731)
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
# The parts a rule may have besides FREQ, COUNT and UNTIL, in the order they are written back.
_PARTS = ("INTERVAL", "BYMONTH", "BYMONTHDAY", "BYDAY", "BYSETPOS", "WKST")
_UNTIL = re.compile(r"^(\d{8}T\d{6})Z$")
_DIGITS = re.compile(r"^[1-9]\d{0,3}$")


class RecurrenceError(ValueError):
    """A rule or start that cannot make a series; `field` names the request field to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Rule:
    """A parsed RRULE. `until` is an instant (RFC 5545: UTC when DTSTART has a zone)."""

    freq: str
    parts: tuple[tuple[str, str], ...]
    count: int | None = None
    until: datetime | None = None

    @property
    def bounded(self) -> bool:
        return self.count is not None or self.until is not None

    def text(self) -> str:
        """The rule as RRULE text, its parts in a fixed order."""
        items = [f"FREQ={self.freq}", *(f"{k}={v}" for k, v in self.parts)]
        if self.count is not None:
            items.append(f"COUNT={self.count}")
        if self.until is not None:
            items.append(f"UNTIL={self.until.astimezone(UTC):%Y%m%dT%H%M%SZ}")
        return ";".join(items)

    def with_count(self, count: int) -> Rule:
        return replace(self, count=count, until=None)

    def with_until(self, until: datetime) -> Rule:
        return replace(self, count=None, until=until)

    def _dateutil_text(self) -> str:
        # COUNT and UNTIL are applied by `expand`, which knows the zone.
        return ";".join([f"FREQ={self.freq}", *(f"{k}={v}" for k, v in self.parts)])


@dataclass(frozen=True)
class Occurrence:
    """The `index`-th occurrence (from 0): its wall time in the zone and its instant in UTC."""

    index: int
    start_local: datetime
    starts_at: datetime


def parse_rule(text: str) -> Rule:
    """Parse and check an RRULE value such as `FREQ=MONTHLY;INTERVAL=3;BYDAY=2TH;COUNT=4`."""
    found: dict[str, str] = {}
    for item in text.strip().removeprefix("RRULE:").split(";"):
        name, sep, value = item.partition("=")
        name = name.strip().upper()
        if not sep or not name or not value.strip():
            raise RecurrenceError("rrule", f"`{item}` is not NAME=value")
        if name in found:
            raise RecurrenceError("rrule", f"{name} is given twice")
        found[name] = value.strip().upper()
    freq = found.pop("FREQ", None)
    if freq not in FREQUENCIES:
        raise RecurrenceError("rrule", "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
    count = until = None
    if "COUNT" in found and "UNTIL" in found:
        raise RecurrenceError("rrule", "COUNT and UNTIL cannot both be given")
    if (raw_count := found.pop("COUNT", None)) is not None:
        if not _DIGITS.match(raw_count):
            raise RecurrenceError("rrule", "COUNT must be a whole number from 1")
        count = int(raw_count)
        if count > MAX_OCCURRENCES:
            raise RecurrenceError("rrule", f"COUNT is at most {MAX_OCCURRENCES}")
    if (raw_until := found.pop("UNTIL", None)) is not None:
        match = _UNTIL.match(raw_until)
        if match is None:
            raise RecurrenceError("rrule", "UNTIL must be a UTC date-time such as 20271231T235959Z")
        try:
            until = datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        except ValueError as exc:
            raise RecurrenceError("rrule", "UNTIL is not a valid date-time") from exc
    unknown = sorted(set(found) - set(_PARTS))
    if unknown:
        raise RecurrenceError("rrule", f"{', '.join(unknown)} is not supported")
    if (interval := found.get("INTERVAL")) is not None and not _DIGITS.match(interval):
        raise RecurrenceError("rrule", "INTERVAL must be a whole number from 1")
    rule = Rule(freq, tuple((k, found[k]) for k in _PARTS if k in found), count, until)
    try:
        rrulestr(rule._dateutil_text(), dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise RecurrenceError("rrule", f"not a valid RRULE: {exc}") from exc
    return rule


@lru_cache(maxsize=512)
def zone_of(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def to_utc(local: datetime, zone: str) -> datetime:
    """The instant of a wall time: fold=0, so a gap moves forward and an overlap takes the first."""
    return local.replace(tzinfo=zone_of(zone), fold=0).astimezone(UTC)


def to_local(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(zone_of(zone)).replace(tzinfo=None)


def exists(local: datetime, zone: str) -> bool:
    """False for a wall time that a DST gap skips."""
    return to_local(to_utc(local, zone), zone) == local


def require_existing(local: datetime, zone: str) -> None:
    if not exists(local, zone):
        raise RecurrenceError(
            "start_local",
            f"{local:%Y-%m-%dT%H:%M} does not exist in {zone} (a daylight-saving gap)",
        )


def _instants(rule: Rule, start_local: datetime, zone: str) -> Iterator[tuple[datetime, datetime]]:
    for local in rrulestr(rule._dateutil_text(), dtstart=start_local):
        yield local, to_utc(local, zone)


def expand(
    rule: Rule,
    start_local: datetime,
    zone: str,
    *,
    now: datetime,
    limit: int | None = MAX_OCCURRENCES,
) -> list[Occurrence]:
    """Every occurrence of the series: up to COUNT, to UNTIL, or (neither) two years past `now`.

    `start_local` must exist in the zone and be the rule's first occurrence. More than `limit`
    occurrences is an error (None: no limit, for keeping an accepted rule ahead of time).
    """
    require_existing(start_local, zone)
    horizon = now + HORIZON
    found: list[Occurrence] = []
    for local, instant in _instants(rule, start_local, zone):
        if not found and local != start_local:
            raise RecurrenceError(
                "start_local", "must itself be an occurrence of the rule (its first one)"
            )
        if rule.count is not None and len(found) >= rule.count:
            break
        if rule.until is not None and instant > rule.until:
            break
        if not rule.bounded and instant >= horizon and found:
            break
        if limit is not None and len(found) >= limit:
            raise RecurrenceError("rrule", f"gives more than {limit} occurrences")
        found.append(Occurrence(len(found), to_local(instant, zone), instant))
    if not found:
        raise RecurrenceError("start_local", "must itself be an occurrence of the rule")
    return found
