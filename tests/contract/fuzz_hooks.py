"""schemathesis hooks for `make fuzz` (loaded through SCHEMATHESIS_HOOKS by tests/contract/fuzz.py).

A list cursor is opaque: the service seals it for one list and one tenant, so no string a
generator makes from the schema's pattern is one the service issued (it answers 400, rightly).
In positive cases, a generated cursor is replaced by a real one, read from the list's first page
(the same path, `limit=1`), or left out when the list has no second page. Negative cases keep
whatever was generated.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis

CURSOR_PARAMETERS = ("cursor", "after")


def _real_cursor(path: str) -> str | None:
    base_url = os.environ.get("FUZZ_BASE_URL")
    bearer = os.environ.get("FUZZ_TOKEN")
    if not base_url or not bearer:
        return None
    try:
        response = httpx.get(
            f"{base_url}{path}",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    cursor = response.json().get("next_cursor")
    return cursor if isinstance(cursor, str) else None


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not case.query:
        return case
    present = [name for name in CURSOR_PARAMETERS if case.query.get(name) is not None]
    if not present:
        return case
    cursor = _real_cursor(case.formatted_path)
    for name in present:
        if cursor is None:
            del case.query[name]
        else:
            case.query[name] = cursor
    return case
