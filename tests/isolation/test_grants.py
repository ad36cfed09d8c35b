"""Every privilege the app role, the system role and PUBLIC hold, against an explicit allow-list.

The catalogue is read directly (aclexplode over pg_proc.proacl, pg_class.relacl, pg_attribute.attacl
and pg_default_acl, with PostgreSQL's built-in defaults where an object has no ACL of its own, so
the implicit PUBLIC EXECUTE on a new function shows up). Each grant is one line in GRANT syntax with
the roles named by kind (`app`, `system`, `owner`, `PUBLIC`); a new function, table or grant fails
this test until its line is added to `ALLOWED` on purpose. Functions that belong to an extension
(pg_trgm) are not ours and are left out.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import drop_database
from wg_api.platform.database import make_engine
from wg_api.platform.migrate import alembic_config, downgrade, migrate
from wg_api.settings import Settings

# One line per grant. Keep it sorted by object; say why when a grant is not obvious.
ALLOWED = {
    # -- functions: only the role that calls each one --------------------------------------------
    # Before the tenant is known: the token endpoint, bearer tokens of people, the rate limiter.
    "EXECUTE ON FUNCTION api_client_for_token(text) TO app",
    "EXECUTE ON FUNCTION identity_provider_for_issuer(text) TO app",
    "EXECUTE ON FUNCTION rate_limit_hit(text,timestamp with time zone,bigint) TO app",
    # Group visibility, insights and the events members send each other.
    "EXECUTE ON FUNCTION group_insights(uuid,text[],uuid,text,text,text,text,text,integer) TO app",
    "EXECUTE ON FUNCTION publish_group_event(uuid,text,jsonb,boolean) TO app",
    "EXECUTE ON FUNCTION publish_invitation_answer(uuid,text,jsonb) TO app",
    "EXECUTE ON FUNCTION publish_invitation_event(uuid,text,jsonb) TO app",
    "EXECUTE ON FUNCTION publish_shared_finding_event(uuid,text,jsonb,double precision) TO app",
    "EXECUTE ON FUNCTION position_events() TO app",
    "EXECUTE ON FUNCTION share_linkable_groups(uuid,uuid) TO app",
    "EXECUTE ON FUNCTION wg_group_below_threshold(uuid) TO app",
    "EXECUTE ON FUNCTION shared_finding_scrub_names(uuid) TO app",
    "EXECUTE ON FUNCTION wg_group_role(uuid) TO app",
    # The three above in one (0018): what a reader of a group's shared findings is there.
    "EXECUTE ON FUNCTION wg_group_reader(uuid) TO app",
    # The caller's groups, asked once per statement by the group tables' policies (0019).
    "EXECUTE ON FUNCTION wg_active_groups() TO app",
    "EXECUTE ON FUNCTION wg_facilitated_groups() TO app",
    "EXECUTE ON FUNCTION wg_invited_group_name(uuid) TO app",
    # Cross-tenant work of the command line and the worker (0008), instead of BYPASSRLS.
    "EXECUTE ON FUNCTION create_tenant(text,text,text,text,text,text[]) TO system",
    "EXECUTE ON FUNCTION purge_events(integer) TO system",
    "EXECUTE ON FUNCTION purge_idempotency_keys() TO system",
    "EXECUTE ON FUNCTION purge_rate_limit_windows() TO system",
    # -- tables: the app role works under forced RLS; the system role only runs jobs -------------
    "SELECT ON TABLE alembic_version TO app",
    "SELECT ON TABLE alembic_version TO system",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE api_clients TO app",
    # Append-only for the app role.
    "SELECT, INSERT ON TABLE audit_log TO app",
    "USAGE, SELECT ON SEQUENCE audit_log_seq_seq TO app",
    "SELECT ON TABLE events TO app",
    # What a reader of a group needs, kept per group by triggers (0020): its active members read it.
    "SELECT ON TABLE group_readers TO app",
    # Meetings (migration 0012): the worker reaches them only through the owner's functions.
    "EXECUTE ON FUNCTION open_ended_meeting_series() TO system",
    "EXECUTE ON FUNCTION publish_meeting_event(uuid,text,jsonb,text[],uuid) TO app",
    # Meeting slots (0013): when a group's member tenants are in their other groups' meetings.
    "EXECUTE ON FUNCTION meeting_slot_busy_times(uuid,timestamp with time zone,"
    "timestamp with time zone) TO app",
    "EXECUTE ON FUNCTION send_meeting_reminders(timestamp with time zone,integer) TO system",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE action_items TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE agenda_items TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE meeting_attendance TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE meeting_minutes TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE meeting_reminders TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE meeting_rsvps TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE meeting_series TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE meetings TO app",
    # Calendar feeds (migration 0014): the public feed finds its tenant by the token's hash before
    # any tenant is bound; feeds are revoked (revoked_at), never changed or deleted otherwise.
    "EXECUTE ON FUNCTION calendar_feed_for_token(bytea) TO app",
    "EXECUTE ON FUNCTION meeting_calendar_version(uuid[]) TO app",
    "SELECT, INSERT ON TABLE calendar_feeds TO app",
    "UPDATE (revoked_at) ON TABLE calendar_feeds TO app",
    # Webhooks (migration 0015): the worker fans out, claims and records only through the
    # owner's functions; the API reads deliveries and adds redeliveries and replays.
    "EXECUTE ON FUNCTION purge_webhook_deliveries(integer) TO system",
    "EXECUTE ON FUNCTION webhook_claim(integer,integer,double precision) TO system",
    "EXECUTE ON FUNCTION webhook_fan_out(integer) TO system",
    "EXECUTE ON FUNCTION webhook_record(uuid[],uuid[],uuid[],boolean[],integer[],integer[],"
    "text[],timestamp with time zone[],timestamp with time zone[],boolean[],double precision) "
    "TO system",
    "SELECT, INSERT ON TABLE webhook_deliveries TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE webhook_endpoints TO app",
    # Co-sourcing (migration 0016): rooms span tenants, so invitations, introductions, alerts,
    # matching and reminders are the owner's functions; the app role writes only its own opt-ins,
    # planned audits, and the messages and action items of rooms it was introduced into.
    "EXECUTE ON FUNCTION cosourcing_forget_planned_audit(uuid) TO app",
    "EXECUTE ON FUNCTION cosourcing_group_rooms(uuid) TO app",
    "EXECUTE ON FUNCTION cosourcing_in_room(uuid) TO app",
    "EXECUTE ON FUNCTION cosourcing_introduce(uuid) TO app",
    "EXECUTE ON FUNCTION cosourcing_match_planned_audits(integer,double precision) TO system",
    "EXECUTE ON FUNCTION cosourcing_open_remediation_room(uuid,jsonb) TO app",
    "EXECUTE ON FUNCTION cosourcing_publish_room_event(uuid,text,jsonb) TO app",
    "EXECUTE ON FUNCTION cosourcing_send_alerts(integer,double precision,integer,uuid) TO system",
    "EXECUTE ON FUNCTION cosourcing_send_room_reminders(timestamp with time zone,integer) "
    "TO system",
    "EXECUTE ON FUNCTION cosourcing_withdraw_opt_in(uuid) TO app",
    # No `alert`, `audit_pair`, `introduced_at` or reminder columns: nothing about others.
    "SELECT (id, kind, supplier_id, working_group_id, shared_finding_id, window_start, "
    "window_end, created_at, deadline_at) ON TABLE cosourcing_rooms TO app",
    "SELECT ON TABLE cosourcing_invitations TO app",
    "SELECT ON TABLE cosourcing_participants TO app",
    "SELECT, INSERT ON TABLE cosourcing_action_items TO app",
    "SELECT, INSERT ON TABLE cosourcing_messages TO app",
    "SELECT, INSERT ON TABLE cosourcing_opt_ins TO app",
    "SELECT, INSERT, DELETE ON TABLE planned_audits TO app",
    "UPDATE (title, owner_tenant_id, due_on, status, updated_at) "
    "ON TABLE cosourcing_action_items TO app",
    # Joint funding (migration 0009): the ledger and money records are append-only.
    "EXECUTE ON FUNCTION initiative_funder_lines(uuid) TO app",
    "EXECUTE ON FUNCTION initiative_funding(uuid) TO app",
    "EXECUTE ON FUNCTION initiative_mark_funded(uuid) TO app",
    "EXECUTE ON FUNCTION lock_initiative(uuid) TO app",
    "EXECUTE ON FUNCTION publish_pledge_event(uuid,text,jsonb) TO app",
    "EXECUTE ON FUNCTION wg_member_groups(text[]) TO app",
    "SELECT, INSERT ON TABLE expenses TO app",
    "SELECT, INSERT ON TABLE indicator_results TO app",
    "SELECT, INSERT ON TABLE indicators TO app",
    "SELECT, INSERT ON TABLE ledger_bookings TO app",
    "SELECT, INSERT ON TABLE ledger_entries TO app",
    "SELECT, INSERT ON TABLE payments TO app",
    "SELECT, INSERT ON TABLE pledges TO app",
    "SELECT, INSERT, UPDATE ON TABLE initiatives TO app",
    "UPDATE (status, paid, updated_at) ON TABLE pledges TO app",
    "USAGE, SELECT ON SEQUENCE ledger_bookings_seq_seq TO app",
    "USAGE, SELECT ON SEQUENCE ledger_entries_id_seq TO app",
    "INSERT (tenant_id, type, data) ON TABLE events TO app",
    "USAGE, SELECT ON SEQUENCE events_seq_seq TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE findings TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE identity_providers TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE idempotency_keys TO app",
    # Invitations: written by facilitators, answered (status) by the invitee.
    "SELECT, INSERT, DELETE ON TABLE invitations TO app",
    "UPDATE (status, responded_at) ON TABLE invitations TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE jobs TO system",
    "USAGE, SELECT ON SEQUENCE jobs_id_seq TO system",
    # The contributor column is nobody's business but group_insights'.
    "SELECT (id, group_id, supplier_id, supplier_name, country, kind, area, severity, basis, "
    "status, observed_period, title, description, affected_workers_band, source_scheme, "
    "child_labour_case) ON TABLE shared_findings TO app",
    "INSERT (id, group_id, contributor, supplier_id, supplier_name, country, kind, area, "
    "severity, basis, status, observed_period, title, description, affected_workers_band, "
    "source_scheme, child_labour_case) ON TABLE shared_findings TO app",
    "UPDATE (supplier_id, supplier_name, country, kind, area, severity, basis, status, "
    "observed_period, title, description, affected_workers_band, source_scheme, "
    "child_labour_case) ON TABLE shared_findings TO app",
    "DELETE ON TABLE shared_findings TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE shares TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE supplier_links TO app",
    # The common registry: matched and added to, never changed or removed by a tenant.
    "SELECT, INSERT ON TABLE suppliers TO app",
    # The directory: every tenant reads it, and updates its own row (RLS); create_tenant inserts.
    "SELECT ON TABLE tenants TO app",
    # The tenant's profile (migration 0011): its own zone, country and hours; aliases under RLS.
    "UPDATE (timezone, country, working_hours) ON TABLE tenants TO app",
    "SELECT, INSERT, DELETE ON TABLE tenant_aliases TO app",
    "EXECUTE ON FUNCTION tenant_name_key(text) TO app",
    "EXECUTE ON FUNCTION tenant_name_taken(text) TO app",
    "EXECUTE ON FUNCTION tenant_name_taken(text) TO system",
    "EXECUTE ON FUNCTION shared_finding_contributor_names(uuid) TO app",
    "SELECT ON TABLE tenants TO system",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE users TO app",
    # Memberships: a row is inserted and its role and status change; the trigger keeps the dates.
    "SELECT ON TABLE working_group_members TO app",
    "INSERT (group_id, tenant_id, role) ON TABLE working_group_members TO app",
    "UPDATE (role, status) ON TABLE working_group_members TO app",
    "SELECT, INSERT, UPDATE, DELETE ON TABLE working_groups TO app",
    # -- defaults for what migrations create next ------------------------------------------------
    "DEFAULT SELECT, INSERT, UPDATE, DELETE ON TABLES IN SCHEMA public TO app",
    "DEFAULT USAGE, SELECT ON SEQUENCES IN SCHEMA public TO app",
}

_GRANTS = sa.text(
    """
    WITH objects AS (
        SELECT 'FUNCTION' AS kind, p.oid::regprocedure::text AS name, NULL::text AS col,
               0 AS attnum, p.proowner AS owner,
               coalesce(p.proacl, acldefault('f'::"char", p.proowner)) AS acl
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND NOT EXISTS (
            SELECT 1 FROM pg_depend d
            WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
        )
        UNION ALL
        SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.relname, NULL, 0,
               c.relowner,
               coalesce(c.relacl,
                        acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char",
                                   c.relowner))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
        UNION ALL
        SELECT 'COLUMN', c.relname, a.attname, a.attnum, c.relowner, a.attacl
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attacl IS NOT NULL
        UNION ALL
        SELECT 'DEFAULT',
               CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                    WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END
               || coalesce(' IN SCHEMA ' || n.nspname, ''),
               NULL, 0, d.defaclrole, d.defaclacl
        FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
    )
    SELECT o.kind, o.name, o.col, o.attnum, a.privilege_type AS privilege, a.is_grantable,
           CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee
    FROM objects o CROSS JOIN LATERAL aclexplode(o.acl) a
    WHERE a.grantee <> o.owner
    ORDER BY o.kind, o.name, grantee, o.attnum
    """
)

_ORDER = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"]


def _privileges(names: list[str]) -> str:
    # USAGE first, as GRANT on sequences is usually written.
    rank = {name: i for i, name in enumerate(["USAGE", *_ORDER, "EXECUTE"])}
    return ", ".join(sorted(set(names), key=lambda name: rank.get(name, 99)))


async def actual_grants(conn: AsyncConnection, settings: Settings) -> set[str]:
    """Every grant to a role other than the object's owner, one GRANT-like line each."""
    kinds = {
        settings.app_role: "app",
        settings.system_role: "system",
        settings.owner_role: "owner",
    }
    whole: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    columns: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for row in await conn.execute(_GRANTS):
        grantee = kinds.get(row.grantee, row.grantee)
        suffix = " WITH GRANT OPTION" if row.is_grantable else ""
        if row.kind == "COLUMN":
            columns[(row.name, row.privilege, grantee, suffix)].append(row.col)
        else:
            whole[(row.kind, row.name, grantee, suffix)].append(row.privilege)
    lines = set()
    for (kind, name, grantee, suffix), privileges in whole.items():
        if kind == "DEFAULT":
            lines.add(f"DEFAULT {_privileges(privileges)} ON {name} TO {grantee}{suffix}")
        else:
            lines.add(f"{_privileges(privileges)} ON {kind} {name} TO {grantee}{suffix}")
    for (table, privilege, grantee, suffix), names in columns.items():
        lines.add(f"{privilege} ({', '.join(names)}) ON TABLE {table} TO {grantee}{suffix}")
    return lines


@pytest.fixture
async def admin(admin_url, database) -> AsyncIterator[AsyncConnection]:
    engine = make_engine(admin_url, pool_size=1, application_name="wg-api-tests")
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


def _difference(actual: set[str], allowed: set[str]) -> str:
    extra = sorted(actual - allowed)
    missing = sorted(allowed - actual)
    parts = []
    if extra:
        parts.append(
            "granted but not in ALLOWED (revoke it, or add the line on purpose):\n"
            + "\n".join(f'    "{line}",' for line in extra)
        )
    if missing:
        parts.append(
            "in ALLOWED but not granted (remove the line):\n"
            + "\n".join(f'    "{line}",' for line in missing)
        )
    return "\n".join(parts)


async def test_every_grant_is_on_the_allow_list(admin, settings):
    actual = await actual_grants(admin, settings)
    assert actual == ALLOWED, _difference(actual, ALLOWED)


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("UPDATE suppliers SET name = 'Renamed'", "app"),
        ("DELETE FROM suppliers", "app"),
        ("INSERT INTO tenants (slug, name, kind) VALUES ('forged', 'Forged', 'brand')", "app"),
        ("DELETE FROM tenants", "app"),
        ("SELECT * FROM api_client_for_token('wgc_x')", "system"),
        ("SELECT count(*) FROM findings", "system"),
        ("DELETE FROM idempotency_keys", "system"),
        ("SELECT * FROM create_tenant('forged', 'Forged', 'brand', 'UTC', NULL, NULL)", "app"),
        ("SELECT purge_events(1)", "app"),
    ],
)
async def test_the_roles_are_refused_what_they_do_not_need(database, make_tenant, statement, kind):
    tenant = await make_tenant()
    transaction = (
        database.transaction(tenant.id) if kind == "app" else database.system_transaction()
    )
    async with transaction as session:
        with pytest.raises(DBAPIError) as refused:
            await session.execute(sa.text(statement))
    assert "permission denied" in str(refused.value.orig)


async def test_the_list_catches_a_new_function_and_a_new_grant(admin, settings):
    """A function created the ordinary way and a stray table grant both show up as extra."""
    async with admin.begin():
        await admin.exec_driver_sql(f"SET LOCAL ROLE {settings.owner_role}")
        await admin.exec_driver_sql(
            "CREATE FUNCTION grants_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'"
        )
        await admin.exec_driver_sql(f"GRANT UPDATE ON suppliers TO {settings.system_role}")
        extra = await actual_grants(admin, settings) - ALLOWED
        await admin.rollback()
    # Functions the owner creates are no longer executable by PUBLIC unless granted (0008).
    assert extra == {"UPDATE ON TABLE suppliers TO system"}


async def test_the_list_sees_the_implicit_public_execute(admin, settings):
    """PostgreSQL's built-in PUBLIC EXECUTE (a function with no ACL of its own) is a grant too."""
    async with admin.begin():
        await admin.exec_driver_sql(
            "CREATE FUNCTION grants_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'"
        )
        await admin.exec_driver_sql(f"ALTER FUNCTION grants_probe() OWNER TO {settings.owner_role}")
        acl = await admin.scalar(
            sa.text("SELECT proacl FROM pg_proc WHERE proname = 'grants_probe'")
        )
        extra = await actual_grants(admin, settings) - ALLOWED
        await admin.rollback()
    assert acl is None
    assert extra == {"EXECUTE ON FUNCTION grants_probe() TO PUBLIC"}


async def test_0008_downgrades_to_exactly_the_grants_before_it(admin_url, settings):
    """Migration 0008 is reversible, grants included: down, every grant is as it was before it."""
    script = ScriptDirectory.from_config(alembic_config(settings))
    revision = script.get_revision("0008_least_privilege")
    assert revision is not None
    before = str(revision.down_revision)
    fresh = admin_url.set(database=f"wg_grants_{uuid.uuid4().hex[:10]}")
    try:
        await migrate(fresh, settings, revision=before)
        granted_before = await _grants_of(fresh, settings)
        await migrate(fresh, settings)
        at_head = await _grants_of(fresh, settings)
        await downgrade(fresh, settings, before)
        granted_after = await _grants_of(fresh, settings)
    finally:
        await drop_database(fresh)
    assert at_head == ALLOWED, _difference(at_head, ALLOWED)
    assert "EXECUTE ON FUNCTION api_client_for_token(text) TO PUBLIC" in granted_before
    assert "SELECT, INSERT, UPDATE, DELETE ON TABLE findings TO system" in granted_before
    assert granted_after == granted_before, _difference(granted_after, granted_before)


async def _grants_of(url: URL, settings: Settings) -> set[str]:
    engine = make_engine(url, pool_size=1, application_name="wg-api-tests")
    try:
        async with engine.connect() as conn:
            return await actual_grants(conn, settings)
    finally:
        await engine.dispose()
