"""The identity domain's scheduled work, registered with the worker's job registry."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from wg_api.platform.jobs import JobContext, registry


@registry.job("purge-rate-limit-windows", every=timedelta(hours=1))
async def purge_rate_limit_windows(job: JobContext) -> dict[str, int]:
    """The rate limiter's counters (one row per bucket and minute) older than a day, of every
    tenant, through the owner's function (the system role has no privilege on the table)."""
    deleted = await job.session.scalar(sa.text("SELECT purge_rate_limit_windows()"))
    return {"deleted": int(deleted or 0)}
