"""The worker's co-sourcing jobs: registered, and run with the settings' minimum link age."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.cosourcing.conftest import ALERT, Factory, events
from wg_api.cosourcing.tasks import ALERTS_JOB, OVERLAPS_JOB, REMINDERS_JOB
from wg_api.platform.database import Database
from wg_api.platform.jobs import JobContext, registry


async def _run(database: Database, settings: Any, name: str) -> Any:
    definition = registry.get(name)
    assert definition is not None
    async with database.system_transaction() as session:
        context = JobContext(
            session=session,
            database=database,
            settings=settings,
            name=name,
            fire_time=datetime.now(UTC),
            attempt=1,
        )
        return await definition.handler(context)


async def test_jobs_are_registered_within_a_minute() -> None:
    for name in (ALERTS_JOB, OVERLAPS_JOB, REMINDERS_JOB):
        definition = registry.get(name)
        assert definition is not None
        assert definition.schedule.every is not None
        assert definition.schedule.every <= timedelta(minutes=1)
    alerts = registry.get(ALERTS_JOB)
    assert alerts is not None
    assert alerts.schedule.every is not None
    # The job's period plus the longest delay stays within a minute.
    assert alerts.schedule.every + timedelta(seconds=30) <= timedelta(minutes=1)


async def test_the_alert_job_takes_the_minimum_age_from_the_settings(
    client: httpx.AsyncClient, factory_case: Factory, database: Database, settings: Any
) -> None:
    strict = dataclasses.replace(
        settings, cosourcing_min_link_age_days=365, shared_event_delay_seconds=0.0
    )
    await _run(database, strict, ALERTS_JOB)
    # The 90-day links are too young under a one-year minimum, and the alert is spent.
    for actor in factory_case.linked:
        assert await events(client, actor, ALERT) == []
    await _run(database, dataclasses.replace(strict, cosourcing_min_link_age_days=30), ALERTS_JOB)
    for actor in factory_case.linked:
        assert await events(client, actor, ALERT) == []
