"""`POST /v1/working-groups/{id}/meeting-slots`: when the group's member tenants can meet."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, post
from litestar.params import FromPath, JSONBody

from wg_api.identity.access import requires
from wg_api.identity.principal import Principal
from wg_api.meetings import slots
from wg_api.meetings.slots import Slots, SlotsIn
from wg_api.platform.http import Body
from wg_api.platform.transaction import DbSession
from wg_api.working_groups import service as groups

AnyRequest = Request[Principal, Any, Any]


class MeetingSlotsController(Controller):
    path = "/working-groups/{group_id:uuid}"
    tags = ["Meetings"]

    @post(
        "/meeting-slots",
        summary="Find times the group can meet",
        status_code=200,
        data_dto=Body[SlotsIn],
        **requires("meetings:read"),
    )
    async def find(
        self,
        request: AnyRequest,
        data: JSONBody[SlotsIn],
        db_session: DbSession,
        group_id: FromPath[uuid.UUID],
    ) -> Slots:
        """Any member. Starts on the quarter hour from `from` to `to` (dates in the group's zone,
        both included, at most 92 days apart), ranked by how many member tenants (members and
        facilitators) can come, then by time; for each slot, every tenant that cannot and the
        first reason: `public_holiday` (with its name), `weekend`, `outside_working_hours`,
        `meeting_conflict`. Slots over a meeting of this group, or that nobody can attend, are
        not offered; `in_person` keeps to Hong Kong's working hours and public holidays too.
        Changes nothing (scope `meetings:read`)."""
        member = await groups.require_member(db_session, group_id, request.user.tenant_id)
        return await slots.find_slots(db_session, member, data, datetime.now(UTC))
