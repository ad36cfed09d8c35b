"""The webhooks' scheduled work: finished delivery attempts are kept as long as the feed's events
(`WG_EVENT_RETENTION_DAYS`), through the owner's function (the worker's role has no privilege on
the table). Deliveries themselves run in the worker's delivery loop (`delivery.py`)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from wg_api.platform.jobs import JobContext, registry

PURGE_JOB = "webhook-deliveries-purge"


@registry.job(PURGE_JOB, every=timedelta(hours=1))
async def purge_webhook_deliveries(job: JobContext) -> dict[str, int]:
    deleted = await job.session.scalar(
        sa.text("SELECT purge_webhook_deliveries(:days)"),
        {"days": int(job.settings.event_retention_days)},
    )
    return {"deleted": int(deleted or 0)}
