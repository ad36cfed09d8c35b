"""The meetings domain's scheduled work, registered with the worker's job registry.

Reminders go out in the job's own transaction (system role, through the owner's function): a
reminder is marked sent in the same
commit that writes its events and marks the job done, so two workers, or a worker killed halfway,
never send a reminder twice or not at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wg_api.meetings import service
from wg_api.platform.jobs import JobContext, registry

REMINDERS_JOB = "meeting-reminders"
HORIZON_JOB = "meeting-series-horizon"


@registry.job(REMINDERS_JOB, every=timedelta(minutes=1))
async def send_meeting_reminders(job: JobContext) -> dict[str, int]:
    return await service.send_due_reminders(job.session, datetime.now(UTC))


@registry.job(HORIZON_JOB, every=timedelta(hours=6))
async def keep_series_ahead(job: JobContext) -> dict[str, int]:
    return await service.extend_open_ended_series(job.database, job.session, datetime.now(UTC))
