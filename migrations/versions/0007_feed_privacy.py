"""Feed privacy: per-tenant feed positions given when an event becomes visible, delayed and
day-precision events about shared findings, and group publishing for active members only.

Revision ID: 0007_feed_privacy
Revises: 0006_sharing_rules

The feed was ordered by (transaction id, global sequence), which the cursor carried and which made
a contributor's edit arrive in two groups at the same instant, side by side. Now:

- `events.visible_at`: when the event may be read (`now()`; for events about shared findings, a
  random delay later, drawn per group by `publish_shared_finding_event`).
- `events.position`: the event's place in its tenant's feed, given by `position_events()` once the
  event is committed and visible, under a lock on the tenant's `event_feed_heads` row, in
  (visible_at, seq) order. Positions of a tenant are handed out one lock holder at a time and each
  holder commits before the next reads the head, so a reader that sees position p sees every
  position below p, and a late commit gets a position above every cursor already handed out.
- `events.positioned_at`: when it got its position (the cursor's age for the 410, and what the
  purge counts from).

The app role may no longer update or delete events, nor insert anything but (tenant_id, type,
data): positions are the database's to give. `publish_group_event` now requires an active member
and refuses events about shared findings, which only `publish_shared_finding_event` writes.
"""

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role, tenant_rls_statements

revision = "0007_feed_privacy"
down_revision = "0006_sharing_rules"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
SHARED_EVENT_TYPES = (
    "('shared_finding.published', 'shared_finding.updated', 'shared_finding.withdrawn')"
)
# A reader positions at most this many events per call (a tenant's first read after weeks).
POSITION_BATCH = 5000
# The longest delay the database accepts for an event about a shared finding: one day.
MAX_DELAY_SECONDS = 86400

POSITION_EVENTS = f"""
    CREATE FUNCTION position_events() RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        caller uuid := {CURRENT_TENANT};
        head bigint;
        stamp timestamptz;
        placed int;
        top bigint;
    BEGIN
        IF caller IS NULL THEN
            RAISE EXCEPTION 'no tenant bound' USING ERRCODE = '42501';
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM public.events e
            WHERE e.tenant_id = caller AND e.position IS NULL
              AND e.visible_at <= clock_timestamp()
        ) THEN
            RETURN 0;
        END IF;
        INSERT INTO public.event_feed_heads (tenant_id) VALUES (caller)
        ON CONFLICT (tenant_id) DO NOTHING;
        -- One positioner per tenant at a time; it commits before the next one reads the head.
        SELECT h.position INTO head FROM public.event_feed_heads h
        WHERE h.tenant_id = caller FOR UPDATE;
        -- Read after the lock: this statement's snapshot sees every earlier holder's positions.
        stamp := clock_timestamp();
        WITH ready AS (
            SELECT e.seq, e.visible_at FROM public.events e
            WHERE e.tenant_id = caller AND e.position IS NULL AND e.visible_at <= stamp
            ORDER BY e.visible_at, e.seq
            LIMIT {POSITION_BATCH}
            FOR UPDATE
        ), due AS (
            SELECT r.seq, row_number() OVER (ORDER BY r.visible_at, r.seq) AS n FROM ready r
        ), given AS (
            UPDATE public.events e SET position = head + due.n, positioned_at = stamp
            FROM due WHERE e.seq = due.seq
            RETURNING e.position
        )
        SELECT count(*), max(g.position) INTO placed, top FROM given g;
        -- The highest position given: should a row vanish between lock and update (the purge),
        -- its gap is stepped over by readers, never given twice.
        UPDATE public.event_feed_heads SET position = greatest(head, coalesce(top, head))
        WHERE tenant_id = caller;
        RETURN placed;
    END
    $$
"""

PUBLISH_GROUP_EVENT = f"""
    CREATE OR REPLACE FUNCTION publish_group_event(p_group uuid, p_type text, p_data jsonb,
                                                   p_include_self boolean)
    RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        caller uuid := {CURRENT_TENANT};
        published int;
    BEGIN
        -- Only an active member speaks to the group; a former member has nothing to say to it
        -- but the withdrawal of what it shared, which publish_shared_finding_event carries.
        IF caller IS NULL OR NOT EXISTS (
            SELECT 1 FROM public.working_group_members m
            WHERE m.group_id = p_group AND m.tenant_id = caller AND m.status = 'active'
        ) THEN
            RAISE EXCEPTION 'not an active member of this group' USING ERRCODE = '42501';
        END IF;
        IF p_type IN {SHARED_EVENT_TYPES} THEN
            RAISE EXCEPTION 'events about shared findings go through publish_shared_finding_event'
                USING ERRCODE = '22023';
        END IF;
        INSERT INTO public.events (tenant_id, type, data)
        SELECT m.tenant_id, p_type, p_data FROM public.working_group_members m
        WHERE m.group_id = p_group AND m.status = 'active'
          AND (p_include_self OR m.tenant_id <> caller);
        GET DIAGNOSTICS published = ROW_COUNT;
        RETURN published;
    END
    $$
"""

PUBLISH_GROUP_EVENT_0003 = f"""
    CREATE OR REPLACE FUNCTION publish_group_event(p_group uuid, p_type text, p_data jsonb,
                                                   p_include_self boolean)
    RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        caller uuid := {CURRENT_TENANT};
        published int;
    BEGIN
        IF caller IS NULL OR NOT EXISTS (
            SELECT 1 FROM public.working_group_members m
            WHERE m.group_id = p_group AND m.tenant_id = caller
              AND (m.status = 'active' OR p_type = 'shared_finding.withdrawn')
        ) THEN
            RAISE EXCEPTION 'not a member of this group' USING ERRCODE = '42501';
        END IF;
        INSERT INTO public.events (tenant_id, type, data)
        SELECT m.tenant_id, p_type, p_data FROM public.working_group_members m
        WHERE m.group_id = p_group AND m.status = 'active'
          AND (p_include_self OR m.tenant_id <> caller);
        GET DIAGNOSTICS published = ROW_COUNT;
        RETURN published;
    END
    $$
"""

# Events about a shared finding go to the group's other active members, dated by the day only
# and readable after a random delay of up to p_max_delay_seconds, drawn once per call: per group.
PUBLISH_SHARED_FINDING_EVENT = """
    CREATE FUNCTION publish_shared_finding_event(p_shared uuid, p_type text, p_data jsonb{extra})
    RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {search_path}
    AS $$
    DECLARE
        caller uuid := {current_tenant};
        target uuid;
        published int;
    BEGIN
        IF p_type NOT IN {types}
           OR p_data ->> 'id' IS DISTINCT FROM p_shared::text THEN
            RAISE EXCEPTION 'not an event about this shared finding' USING ERRCODE = '22023';
        END IF;
        SELECT s.group_id INTO target FROM public.shared_findings s
        WHERE s.id = p_shared AND s.contributor = caller;
        IF target IS NULL THEN
            RAISE EXCEPTION 'not the contributor of this shared finding'
                USING ERRCODE = '42501';
        END IF;
        {insert}
        GET DIAGNOSTICS published = ROW_COUNT;
        RETURN published;
    END
    $$
"""
DELAYED_INSERT = f"""
        INSERT INTO public.events (tenant_id, type, data, occurred_at, visible_at)
        SELECT m.tenant_id, p_type, p_data, date_trunc('day', now(), 'UTC'),
               now() + make_interval(secs => random()
                   * least(greatest(coalesce(p_max_delay_seconds, 0), 0), {MAX_DELAY_SECONDS}))
        FROM public.working_group_members m
        WHERE m.group_id = target AND m.status = 'active' AND m.tenant_id <> caller;
"""
PLAIN_INSERT = """
        INSERT INTO public.events (tenant_id, type, data)
        SELECT m.tenant_id, p_type, p_data FROM public.working_group_members m
        WHERE m.group_id = target AND m.status = 'active' AND m.tenant_id <> caller;
"""
NEW_PUBLISH_SIGNATURE = "publish_shared_finding_event(uuid, text, jsonb, double precision)"
OLD_PUBLISH_SIGNATURE = "publish_shared_finding_event(uuid, text, jsonb)"


def _publish_shared(*, delayed: bool) -> str:
    return PUBLISH_SHARED_FINDING_EVENT.format(
        extra=", p_max_delay_seconds double precision" if delayed else "",
        search_path=SEARCH_PATH,
        current_tenant=CURRENT_TENANT,
        types=SHARED_EVENT_TYPES,
        insert=DELAYED_INSERT if delayed else PLAIN_INSERT,
    )


def upgrade() -> None:
    app = migration_role("app")
    op.execute("ALTER TABLE events ADD COLUMN visible_at timestamptz NOT NULL DEFAULT now()")
    op.execute("ALTER TABLE events ADD COLUMN position bigint")
    op.execute("ALTER TABLE events ADD COLUMN positioned_at timestamptz")
    op.execute(
        """
        CREATE TABLE event_feed_heads (
            tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
            position bigint NOT NULL DEFAULT 0
        )
        """
    )
    for statement in tenant_rls_statements("event_feed_heads"):
        op.execute(statement)
    op.execute(f"REVOKE ALL ON event_feed_heads FROM {app}, {migration_role('system')}")
    # Events already written keep the feed's old order (committed transactions by id).
    op.execute(
        """
        UPDATE events e
        SET visible_at = e.occurred_at, position = o.n, positioned_at = e.occurred_at
        FROM (SELECT seq, row_number() OVER (PARTITION BY tenant_id ORDER BY xid, seq) AS n
              FROM events) o
        WHERE e.seq = o.seq
        """
    )
    op.execute(
        "INSERT INTO event_feed_heads (tenant_id, position) "
        "SELECT tenant_id, max(position) FROM events GROUP BY tenant_id"
    )
    op.execute("DROP INDEX events_feed")
    op.execute("DROP INDEX events_occurred_at")
    op.execute("ALTER TABLE events DROP COLUMN xid")
    op.execute("CREATE UNIQUE INDEX events_feed ON events (tenant_id, position)")
    op.execute(
        "CREATE INDEX events_pending ON events (tenant_id, visible_at) WHERE position IS NULL"
    )
    op.execute("CREATE INDEX events_expiry ON events ((coalesce(positioned_at, visible_at)))")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON events FROM {app}")
    op.execute(f"GRANT INSERT (tenant_id, type, data) ON events TO {app}")

    op.execute(POSITION_EVENTS)
    op.execute("REVOKE ALL ON FUNCTION position_events() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION position_events() TO {app}")

    op.execute(PUBLISH_GROUP_EVENT)
    op.execute(f"DROP FUNCTION {OLD_PUBLISH_SIGNATURE}")
    op.execute(_publish_shared(delayed=True))
    op.execute(f"REVOKE ALL ON FUNCTION {NEW_PUBLISH_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {NEW_PUBLISH_SIGNATURE} TO {app}")


def downgrade() -> None:
    app = migration_role("app")
    op.execute(f"DROP FUNCTION {NEW_PUBLISH_SIGNATURE}")
    op.execute(_publish_shared(delayed=False))
    op.execute(f"REVOKE ALL ON FUNCTION {OLD_PUBLISH_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {OLD_PUBLISH_SIGNATURE} TO {app}")
    op.execute(PUBLISH_GROUP_EVENT_0003)
    op.execute("DROP FUNCTION position_events()")

    op.execute(f"REVOKE INSERT (tenant_id, type, data) ON events FROM {app}")
    op.execute(f"GRANT INSERT, UPDATE, DELETE ON events TO {app}")
    op.execute("DROP INDEX events_expiry")
    op.execute("DROP INDEX events_pending")
    op.execute("DROP INDEX events_feed")
    # Transaction ids are gone; the restored column keeps the positions' order through seq.
    op.execute("ALTER TABLE events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()")
    op.execute("CREATE INDEX events_feed ON events (tenant_id, xid, seq)")
    op.execute("CREATE INDEX events_occurred_at ON events (occurred_at)")
    op.execute("DROP TABLE event_feed_heads")
    op.execute("ALTER TABLE events DROP COLUMN positioned_at")
    op.execute("ALTER TABLE events DROP COLUMN position")
    op.execute("ALTER TABLE events DROP COLUMN visible_at")
