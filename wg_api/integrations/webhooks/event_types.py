"""Every event type the service records, in one place: what an endpoint's `event_types` may name.

A test scans the code and the migrations for event types and fails on one missing here.
"""

from __future__ import annotations

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "action_item.assigned",
        "agenda_item.proposed",
        "api_client.created",
        "api_client.revoked",
        "api_client.secret_rotated",
        "finding.created",
        "finding.deleted",
        "finding.updated",
        "identity_provider.added",
        "identity_provider.removed",
        "initiative.cancelled",
        "initiative.completed",
        "initiative.funded",
        "initiative.opened",
        "invitation.declined",
        "invitation.received",
        "invitation.revoked",
        "meeting.cancelled",
        "meeting.minutes_published",
        "meeting.reminder",
        "meeting.scheduled",
        "meeting.updated",
        "payment.recorded",
        "pledge.committed",
        "pledge.withdrawn",
        "share.created",
        "share.withdrawn",
        "shared_finding.published",
        "shared_finding.updated",
        "shared_finding.withdrawn",
        "supplier.linked",
        "supplier.unlinked",
        "tenant.updated",
        "user.role_changed",
        "webhook_endpoint.created",
        "webhook_endpoint.deleted",
        "webhook_endpoint.disabled",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.updated",
        "working_group.created",
        "working_group.member_joined",
        "working_group.member_left",
        "working_group.member_removed",
        "working_group.member_role_changed",
        "working_group.updated",
    }
)
