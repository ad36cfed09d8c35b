"""Meetings: series, occurrences, RSVPs, agenda items, minutes, action items, attendance, reminders.

Revision ID: 0012_meetings
Revises: 0011_tenant_profile

Every table carries `working_group_id` and is under forced RLS through `wg_group_role`: members
of the group read, facilitators organise; a tenant writes only its own RSVP and its own agenda
proposals, and an action item's owner tenant may change its status. Child rows reference their
meeting together with its group (a composite key), so no row can point into another group.

`meeting_reminders` holds one row per occurrence, offset and start time: the key that makes each
`meeting.reminder` go out exactly once (the worker marks the row sent in the transaction that
writes the events). `publish_meeting_event` writes an event into the feeds of the group's
members, or of some roles, or of one member tenant; only an active member may call it.
"""

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role

revision = "0012_meetings"
down_revision = "0011_tenant_profile"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
MEMBER = "wg_group_role(working_group_id) IS NOT NULL"
FACILITATOR = "wg_group_role(working_group_id) = 'facilitator'"
OWN = f"tenant_id = {CURRENT_TENANT}"

TABLES = (
    "meeting_series",
    "meetings",
    "meeting_rsvps",
    "agenda_items",
    "meeting_minutes",
    "action_items",
    "meeting_attendance",
    "meeting_reminders",
)


def _meeting_ref() -> str:
    return (
        "FOREIGN KEY (meeting_id, working_group_id) "
        "REFERENCES meetings (id, working_group_id) ON DELETE CASCADE"
    )


def upgrade() -> None:
    app = migration_role("app")
    op.execute(
        """
        CREATE TABLE meeting_series (
            id uuid PRIMARY KEY,
            working_group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
            rrule text NOT NULL,
            timezone text NOT NULL,
            start_local timestamp NOT NULL,
            duration_minutes int NOT NULL CHECK (duration_minutes BETWEEN 5 AND 1440),
            title text NOT NULL,
            description text,
            location jsonb NOT NULL,
            reminders_minutes_before int[] NOT NULL,
            sequence int NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (id, working_group_id)
        )
        """
    )
    op.execute("CREATE INDEX meeting_series_group ON meeting_series (working_group_id)")
    op.execute(
        """
        CREATE TABLE meetings (
            id uuid PRIMARY KEY,
            working_group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
            series_id uuid,
            series_index int,
            title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
            description text,
            start_local timestamp NOT NULL,
            timezone text NOT NULL,
            starts_at timestamptz NOT NULL,
            ends_at timestamptz NOT NULL,
            duration_minutes int NOT NULL CHECK (duration_minutes BETWEEN 5 AND 1440),
            location jsonb NOT NULL,
            status text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
            cancel_reason text,
            sequence int NOT NULL DEFAULT 0,
            recurrence_id timestamptz,
            is_exception boolean NOT NULL DEFAULT false,
            reminders_minutes_before int[] NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (id, working_group_id),
            FOREIGN KEY (series_id, working_group_id)
                REFERENCES meeting_series (id, working_group_id) ON DELETE CASCADE,
            CHECK ((series_id IS NULL) = (series_index IS NULL))
        )
        """
    )
    op.execute("CREATE INDEX meetings_group_start ON meetings (working_group_id, starts_at, id)")
    op.execute("CREATE UNIQUE INDEX meetings_series_index ON meetings (series_id, series_index)")
    op.execute(
        f"""
        CREATE TABLE meeting_rsvps (
            meeting_id uuid NOT NULL,
            working_group_id uuid NOT NULL,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            response text NOT NULL CHECK (response IN ('accepted', 'tentative', 'declined')),
            attendees jsonb NOT NULL DEFAULT '[]',
            comment text,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (meeting_id, tenant_id),
            {_meeting_ref()}
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE agenda_items (
            id uuid PRIMARY KEY,
            meeting_id uuid NOT NULL,
            working_group_id uuid NOT NULL,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            title text NOT NULL,
            description text,
            duration_minutes int,
            status text NOT NULL DEFAULT 'proposed'
                CHECK (status IN ('proposed', 'accepted', 'rejected')),
            position int,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            {_meeting_ref()}
        )
        """
    )
    op.execute("CREATE INDEX agenda_items_meeting ON agenda_items (meeting_id, created_at, id)")
    op.execute(
        f"""
        CREATE TABLE meeting_minutes (
            meeting_id uuid PRIMARY KEY,
            working_group_id uuid NOT NULL,
            draft jsonb,
            draft_updated_at timestamptz,
            published jsonb,
            published_at timestamptz,
            revision int NOT NULL DEFAULT 0,
            {_meeting_ref()}
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE action_items (
            id uuid PRIMARY KEY,
            meeting_id uuid NOT NULL,
            working_group_id uuid NOT NULL,
            title text NOT NULL,
            owner_tenant_id uuid REFERENCES tenants (id) ON DELETE SET NULL,
            due_on date,
            status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            {_meeting_ref()}
        )
        """
    )
    op.execute("CREATE INDEX action_items_group ON action_items (working_group_id, created_at, id)")
    op.execute("CREATE INDEX action_items_meeting ON action_items (meeting_id)")
    op.execute(
        f"""
        CREATE TABLE meeting_attendance (
            meeting_id uuid NOT NULL,
            working_group_id uuid NOT NULL,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            attended boolean NOT NULL,
            attendees_count int CHECK (attendees_count >= 0),
            recorded_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (meeting_id, tenant_id),
            {_meeting_ref()}
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE meeting_reminders (
            meeting_id uuid NOT NULL,
            working_group_id uuid NOT NULL,
            minutes_before int NOT NULL,
            starts_at timestamptz NOT NULL,
            due_at timestamptz NOT NULL,
            sent_at timestamptz,
            PRIMARY KEY (meeting_id, minutes_before, starts_at),
            {_meeting_ref()}
        )
        """
    )
    op.execute(
        "CREATE INDEX meeting_reminders_due ON meeting_reminders (due_at) WHERE sent_at IS NULL"
    )

    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY members_read ON {table} FOR SELECT TO {app} USING ({MEMBER})")
    for table in ("meeting_series", "meetings", "meeting_minutes", "meeting_attendance"):
        op.execute(
            f"CREATE POLICY facilitators_organise ON {table} FOR ALL TO {app} "
            f"USING ({FACILITATOR}) WITH CHECK ({FACILITATOR})"
        )
    # Reminder rows follow the meeting's time, which only facilitators change.
    op.execute(
        f"CREATE POLICY facilitators_organise ON meeting_reminders FOR ALL TO {app} "
        f"USING ({FACILITATOR}) WITH CHECK ({FACILITATOR})"
    )
    op.execute(
        f"CREATE POLICY own_answer ON meeting_rsvps FOR ALL TO {app} "
        f"USING ({OWN} AND {MEMBER}) WITH CHECK ({OWN} AND {MEMBER})"
    )
    op.execute(
        f"CREATE POLICY own_proposal ON agenda_items FOR ALL TO {app} "
        f"USING ({OWN} AND {MEMBER}) WITH CHECK ({OWN} AND {MEMBER})"
    )
    op.execute(
        f"CREATE POLICY facilitators_organise ON agenda_items FOR ALL TO {app} "
        f"USING ({FACILITATOR}) WITH CHECK ({FACILITATOR})"
    )
    op.execute(
        f"CREATE POLICY facilitators_organise ON action_items FOR ALL TO {app} "
        f"USING ({FACILITATOR}) WITH CHECK ({FACILITATOR})"
    )
    op.execute(
        f"CREATE POLICY owner_updates ON action_items FOR UPDATE TO {app} "
        f"USING (owner_tenant_id = {CURRENT_TENANT} AND {MEMBER}) "
        f"WITH CHECK (owner_tenant_id = {CURRENT_TENANT} AND {MEMBER})"
    )

    op.execute(
        f"""
        CREATE FUNCTION publish_meeting_event(p_group uuid, p_type text, p_data jsonb,
                                              p_roles text[], p_tenant uuid)
        RETURNS int
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
        DECLARE
            caller uuid := {CURRENT_TENANT};
            published int;
        BEGIN
            IF caller IS NULL OR NOT EXISTS (
                SELECT 1 FROM public.working_group_members m
                WHERE m.group_id = p_group AND m.tenant_id = caller AND m.status = 'active'
            ) THEN
                RAISE EXCEPTION 'not a member of this group' USING ERRCODE = '42501';
            END IF;
            IF split_part(p_type, '.', 1) NOT IN ('meeting', 'agenda_item', 'action_item') THEN
                RAISE EXCEPTION 'not a meeting event' USING ERRCODE = '42501';
            END IF;
            INSERT INTO public.events (tenant_id, type, data)
            SELECT m.tenant_id, p_type, p_data FROM public.working_group_members m
            WHERE m.group_id = p_group AND m.status = 'active'
              AND (p_roles IS NULL OR m.role = ANY (p_roles))
              AND (p_tenant IS NULL OR m.tenant_id = p_tenant);
            GET DIAGNOSTICS published = ROW_COUNT;
            RETURN published;
        END
        $$
        """
    )
    op.execute(
        "REVOKE ALL ON FUNCTION publish_meeting_event(uuid, text, jsonb, text[], uuid) FROM PUBLIC"
    )
    op.execute(
        f"GRANT EXECUTE ON FUNCTION publish_meeting_event(uuid, text, jsonb, text[], uuid) TO {app}"
    )

    # The worker's cross-tenant work (system role, no BYPASSRLS, no privilege on these tables):
    # reminders due are marked sent and their events written in one call; open-ended series are
    # named with an active facilitator of their group, for whom the worker then extends them.
    system, owner = migration_role("system"), migration_role("owner")
    for table in ("meetings", "meeting_series", "meeting_reminders"):
        op.execute(f"CREATE POLICY owner_lookup ON {table} FOR SELECT TO {owner} USING (true)")
    op.execute(
        f"CREATE POLICY owner_sends ON meeting_reminders FOR UPDATE TO {owner} "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(
        f"""
        CREATE FUNCTION send_meeting_reminders(p_now timestamptz, p_limit int)
        RETURNS TABLE (marked bigint, written bigint)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
        BEGIN
            CREATE TEMPORARY TABLE IF NOT EXISTS pg_temp.due_reminders (
                meeting_id uuid, minutes_before int, starts_at timestamptz
            ) ON COMMIT DROP;
            TRUNCATE pg_temp.due_reminders;
            WITH due AS (
                SELECT r.meeting_id, r.minutes_before, r.starts_at
                FROM public.meeting_reminders r
                WHERE r.sent_at IS NULL AND r.due_at <= p_now
                ORDER BY r.due_at
                LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            ), sent AS (
                UPDATE public.meeting_reminders r SET sent_at = p_now
                FROM due
                WHERE (r.meeting_id, r.minutes_before, r.starts_at)
                    = (due.meeting_id, due.minutes_before, due.starts_at)
                RETURNING r.meeting_id, r.minutes_before, r.starts_at
            )
            INSERT INTO pg_temp.due_reminders SELECT * FROM sent;
            marked := (SELECT count(*) FROM pg_temp.due_reminders);
            -- A reminder whose meeting was cancelled, moved or has started is marked and dropped.
            INSERT INTO public.events (tenant_id, type, data)
            SELECT wm.tenant_id, 'meeting.reminder', jsonb_build_object(
                'meeting_id', m.id, 'series_id', m.series_id,
                'working_group_id', m.working_group_id, 'title', m.title,
                'starts_at', to_char(m.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                'minutes_before', r.minutes_before)
            FROM pg_temp.due_reminders r
            JOIN public.meetings m ON m.id = r.meeting_id
                AND m.starts_at = r.starts_at AND m.status = 'scheduled' AND m.starts_at > p_now
            JOIN public.working_group_members wm
                ON wm.group_id = m.working_group_id AND wm.status = 'active'
            ORDER BY m.starts_at, m.id, r.minutes_before DESC, wm.tenant_id;
            GET DIAGNOSTICS written = ROW_COUNT;
            RETURN NEXT;
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION open_ended_meeting_series()
        RETURNS TABLE (series_id uuid, working_group_id uuid, facilitator_tenant_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            SELECT s.id, s.working_group_id, f.tenant_id
            FROM public.meeting_series s
            CROSS JOIN LATERAL (
                SELECT wm.tenant_id FROM public.working_group_members wm
                WHERE wm.group_id = s.working_group_id AND wm.status = 'active'
                  AND wm.role = 'facilitator'
                ORDER BY wm.tenant_id LIMIT 1
            ) f
            WHERE s.rrule NOT LIKE '%COUNT=%' AND s.rrule NOT LIKE '%UNTIL=%'
            ORDER BY s.id
        $$
        """
    )
    for function in ("send_meeting_reminders(timestamptz, int)", "open_ended_meeting_series()"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {system}")


def downgrade() -> None:
    op.execute("DROP FUNCTION open_ended_meeting_series()")
    op.execute("DROP FUNCTION send_meeting_reminders(timestamptz, int)")
    op.execute("DROP FUNCTION publish_meeting_event(uuid, text, jsonb, text[], uuid)")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
