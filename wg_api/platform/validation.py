"""Small value checks shared by every domain."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def slug_error(slug: str) -> str | None:
    if not _SLUG.match(slug):
        return "must be 1 to 64 lowercase letters, digits or hyphens, not starting or ending with -"
    return None


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_timezone(name: str) -> bool:
    if name not in _zones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, from the time zone database's own table (tzdata ships it)."""
    table = resources.files("tzdata.zoneinfo").joinpath("iso3166.tab").read_text("utf-8")
    return frozenset(
        line.split("\t", 1)[0] for line in table.splitlines() if line and not line.startswith("#")
    )


def is_country_code(code: str) -> bool:
    return code in _countries()


# What PostgreSQL refuses in `text` (and `jsonb`): NUL, and lone UTF-16 surrogates (no UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "contains a character that is not allowed (NUL or a lone surrogate)"


def is_storable_text(value: str) -> bool:
    """Whether PostgreSQL can store `value` as text: no NUL byte, no lone surrogate."""
    return _UNSTORABLE.search(value) is None


def unstorable_path(value: object, path: str = "") -> str | None:
    """The JSON path (`a.b[0].c`, or `body` for the root) of the first string, key included, in a
    decoded JSON value that PostgreSQL could not store; None when every string is storable."""
    if isinstance(value, str):
        return None if is_storable_text(value) else (path or "body")
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and not is_storable_text(key):
                return path or "body"
            if (found := unstorable_path(item, where)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := unstorable_path(item, f"{path}[{index}]")) is not None:
                return found
    return None
