"""Co-sourcing's scheduled work, registered with the worker's job registry.

Each job runs in its own transaction as the system role, through the owner's functions, with the
minimum link age from the settings: alerts and overlaps go out within a minute (the job every
15 seconds, then a random delay of at most 30), reminders at each room's 72-hour mark.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wg_api.cosourcing import service
from wg_api.platform.jobs import JobContext, registry

ALERTS_JOB = "cosourcing-alerts"
OVERLAPS_JOB = "cosourcing-audit-overlaps"
REMINDERS_JOB = "cosourcing-room-reminders"


@registry.job(ALERTS_JOB, every=timedelta(seconds=15))
async def send_zero_tolerance_alerts(job: JobContext) -> dict[str, int]:
    return await service.send_alerts(
        job.session,
        min_link_age_days=job.settings.cosourcing_min_link_age_days,
        shared_event_delay_seconds=job.settings.shared_event_delay_seconds,
    )


@registry.job(OVERLAPS_JOB, every=timedelta(seconds=15))
async def match_planned_audits(job: JobContext) -> dict[str, int]:
    return await service.match_planned_audits(
        job.session,
        min_link_age_days=job.settings.cosourcing_min_link_age_days,
        shared_event_delay_seconds=job.settings.shared_event_delay_seconds,
    )


@registry.job(REMINDERS_JOB, every=timedelta(minutes=1))
async def send_room_reminders(job: JobContext) -> dict[str, int]:
    return await service.send_room_reminders(job.session, datetime.now(UTC))
