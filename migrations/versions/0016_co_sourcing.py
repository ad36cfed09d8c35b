"""Co-sourcing: zero-tolerance alerts, remediation rooms and joint audits by double opt-in.

Revision ID: 0016_co_sourcing
Revises: 0015_webhooks

A room (`cosourcing_rooms`, no tenant column: it spans tenants) is either a remediation room, one
per zero-tolerance shared finding, or a joint-audit room, one per pair of overlapping planned
audits. Who may join a room is each tenant's own row (`cosourcing_invitations`, written only by
the owner's functions); whether it opted in is its own row too (`cosourcing_opt_ins`), deleted on
opt-out, so an opt-out before the introduction leaves nothing anyone can read. Only
`cosourcing_introduce` turns opt-ins into participants, and only once at least two tenants have
opted in; participants, messages and action items are readable by the room's participants alone
(`cosourcing_in_room`). Facilitators see introduced rooms of their group and how many are in them
(`cosourcing_group_rooms`), never who, and never a room before its introduction.

The worker (system role, no privilege on these tables) sends alerts to linked tenants, matches
planned audits and sends deadline reminders through the owner's functions, each taking the
minimum link age from the settings (`WG_COSOURCING_MIN_LINK_AGE_DAYS`).
"""

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role, tenant_rls_statements

revision = "0016_co_sourcing"
down_revision = "0015_webhooks"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
IN_ROOM = "cosourcing_in_room(room_id)"
TENANT_TABLES = ("cosourcing_invitations", "cosourcing_opt_ins", "planned_audits")
ROOM_TABLES = ("cosourcing_participants", "cosourcing_messages", "cosourcing_action_items")
TENANT_JSON = "jsonb_build_object('id', t.id, 'slug', t.slug, 'name', t.name)"

APP_FUNCTIONS = (
    "cosourcing_open_remediation_room(uuid,jsonb)",
    "cosourcing_introduce(uuid)",
    "cosourcing_withdraw_opt_in(uuid)",
    "cosourcing_in_room(uuid)",
    "cosourcing_group_rooms(uuid)",
    "cosourcing_publish_room_event(uuid,text,jsonb)",
    "cosourcing_forget_planned_audit(uuid)",
)
SYSTEM_FUNCTIONS = (
    "cosourcing_send_alerts(integer,double precision,integer,uuid)",
    "cosourcing_match_planned_audits(integer,double precision)",
    "cosourcing_send_room_reminders(timestamp with time zone,integer)",
)

FUNCTIONS = [
    # The caller's own shared finding, if zero tolerance: its room (made once), the contributor
    # invited; the alert waits in the room for the worker. Answers the room's id.
    f"""
    CREATE FUNCTION cosourcing_open_remediation_room(p_shared uuid, p_alert jsonb)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        caller uuid := {CURRENT_TENANT};
        shared record;
        room uuid;
    BEGIN
        SELECT s.id, s.group_id, s.supplier_id, s.severity INTO shared
        FROM public.shared_findings s WHERE s.id = p_shared AND s.contributor = caller;
        IF shared.id IS NULL THEN
            RAISE EXCEPTION 'not the contributor of this shared finding' USING ERRCODE = '42501';
        END IF;
        IF shared.severity IS DISTINCT FROM 'zero_tolerance'
           OR p_alert ->> 'id' IS DISTINCT FROM p_shared::text THEN
            RAISE EXCEPTION 'not a zero-tolerance shared finding' USING ERRCODE = '22023';
        END IF;
        INSERT INTO public.cosourcing_rooms
            (id, kind, supplier_id, working_group_id, shared_finding_id, deadline_at, alert)
        VALUES (gen_random_uuid(), 'remediation', shared.supplier_id, shared.group_id, p_shared,
                now() + interval '72 hours', p_alert)
        -- Changed again before the worker ran: the alert carries the record as it is now.
        ON CONFLICT (shared_finding_id) DO UPDATE SET alert = EXCLUDED.alert
            WHERE cosourcing_rooms.alert IS NOT NULL;
        SELECT r.id INTO room FROM public.cosourcing_rooms r WHERE r.shared_finding_id = p_shared;
        INSERT INTO public.cosourcing_invitations (tenant_id, room_id, reason)
        VALUES (caller, room, 'contributor') ON CONFLICT DO NOTHING;
        RETURN room;
    END
    $$
    """,
    # Alerts: every other active member of the group linked to the supplier for at least the
    # minimum age, invited to the room and told, dated by the day, after a random delay. Every
    # waiting room, or only `p_room`.
    f"""
    CREATE FUNCTION cosourcing_send_alerts(p_min_link_age_days int,
                                           p_max_delay_seconds double precision, p_limit int,
                                           p_room uuid)
    RETURNS TABLE (rooms bigint, alerts bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        pending record;
        told bigint;
    BEGIN
        rooms := 0;
        alerts := 0;
        FOR pending IN
            SELECT r.id, r.working_group_id, r.supplier_id, r.shared_finding_id, r.alert
            FROM public.cosourcing_rooms r
            JOIN public.working_groups g ON g.id = r.working_group_id
            WHERE r.alert IS NOT NULL AND (p_room IS NULL OR r.id = p_room)
              -- A group below its anonymity threshold shows nothing: its alerts wait.
              AND (SELECT count(*) FROM public.working_group_members m
                   WHERE m.group_id = g.id AND m.status = 'active'
                     AND m.role IN ('member', 'facilitator')) >= g.anonymity_threshold
            ORDER BY r.created_at
            LIMIT p_limit
            FOR UPDATE OF r SKIP LOCKED
        LOOP
            WITH alerted AS (
                INSERT INTO public.cosourcing_invitations (tenant_id, room_id, reason)
                SELECT m.tenant_id, pending.id, 'alerted'
                FROM public.shared_findings s
                JOIN public.working_group_members m
                    ON m.group_id = s.group_id AND m.status = 'active'
                    AND m.tenant_id <> s.contributor
                JOIN public.supplier_links l
                    ON l.tenant_id = m.tenant_id AND l.supplier_id = s.supplier_id
                    AND l.created_at <= now() - make_interval(days => p_min_link_age_days)
                WHERE s.id = pending.shared_finding_id
                ON CONFLICT DO NOTHING
                RETURNING tenant_id
            )
            INSERT INTO public.events (tenant_id, type, data, occurred_at, visible_at)
            SELECT a.tenant_id, 'supplier.zero_tolerance_alert',
                   jsonb_build_object('working_group_id', pending.working_group_id,
                                      'remediation_room_id', pending.id,
                                      'shared_finding', pending.alert),
                   date_trunc('day', now(), 'UTC'),
                   now() + make_interval(secs => random()
                       * least(greatest(coalesce(p_max_delay_seconds, 0), 0), 30))
            FROM alerted a;
            GET DIAGNOSTICS told = ROW_COUNT;
            UPDATE public.cosourcing_rooms SET alert = NULL, alerted_at = now()
            WHERE id = pending.id;
            rooms := rooms + 1;
            alerts := alerts + told;
        END LOOP;
        RETURN NEXT;
    END
    $$
    """,
    # The one way to be introduced: the caller has opted in; with at least two opt-ins every
    # one of them becomes a participant and each participant is told who is in the room.
    # Answers whether the caller is now a participant; before two opt-ins it changes nothing.
    f"""
    CREATE FUNCTION cosourcing_introduce(p_room uuid)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        caller uuid := {CURRENT_TENANT};
        room record;
        opted int;
        added int;
        people jsonb;
    BEGIN
        IF caller IS NULL OR NOT EXISTS (
            SELECT 1 FROM public.cosourcing_opt_ins o
            WHERE o.room_id = p_room AND o.tenant_id = caller
        ) THEN
            RAISE EXCEPTION 'not opted in to this room' USING ERRCODE = '42501';
        END IF;
        -- Opt-ins and opt-outs of one room take this lock, so a count is never stale.
        SELECT r.id, r.kind, r.working_group_id, r.shared_finding_id, r.supplier_id,
               r.window_start, r.window_end
        INTO room FROM public.cosourcing_rooms r WHERE r.id = p_room FOR UPDATE;
        SELECT count(*) INTO opted FROM public.cosourcing_opt_ins o WHERE o.room_id = p_room;
        IF opted < 2 THEN
            RETURN false;
        END IF;
        INSERT INTO public.cosourcing_participants (room_id, tenant_id)
        SELECT p_room, o.tenant_id FROM public.cosourcing_opt_ins o WHERE o.room_id = p_room
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS added = ROW_COUNT;
        UPDATE public.cosourcing_rooms SET introduced_at = coalesce(introduced_at, now())
        WHERE id = p_room;
        IF added > 0 THEN
            SELECT jsonb_agg({TENANT_JSON} ORDER BY t.name, t.id) INTO people
            FROM public.cosourcing_participants p JOIN public.tenants t ON t.id = p.tenant_id
            WHERE p.room_id = p_room;
            INSERT INTO public.events (tenant_id, type, data)
            SELECT p.tenant_id,
                   CASE room.kind WHEN 'remediation' THEN 'remediation_room.introduced'
                                  ELSE 'audit_overlap.introduced' END,
                   jsonb_strip_nulls(jsonb_build_object(
                       CASE room.kind WHEN 'remediation' THEN 'remediation_room_id'
                                      ELSE 'audit_overlap_id' END, p_room,
                       'working_group_id', room.working_group_id,
                       'shared_finding_id', room.shared_finding_id,
                       'supplier_id', room.supplier_id,
                       'window', CASE WHEN room.window_start IS NULL THEN NULL
                                 ELSE jsonb_build_object('start', room.window_start,
                                                         'end', room.window_end) END))
                   || jsonb_build_object('participants', people)
            FROM public.cosourcing_participants p WHERE p.room_id = p_room
            ORDER BY p.tenant_id;
        END IF;
        RETURN true;
    END
    $$
    """,
    # Opting out: only before the caller is introduced; the opt-in row goes, nothing else.
    f"""
    CREATE FUNCTION cosourcing_withdraw_opt_in(p_room uuid)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        caller uuid := {CURRENT_TENANT};
    BEGIN
        IF caller IS NULL OR NOT EXISTS (
            SELECT 1 FROM public.cosourcing_invitations i
            WHERE i.room_id = p_room AND i.tenant_id = caller
        ) THEN
            RAISE EXCEPTION 'not invited to this room' USING ERRCODE = '42501';
        END IF;
        PERFORM 1 FROM public.cosourcing_rooms r WHERE r.id = p_room FOR UPDATE;
        IF EXISTS (
            SELECT 1 FROM public.cosourcing_participants p
            WHERE p.room_id = p_room AND p.tenant_id = caller
        ) THEN
            RETURN false;
        END IF;
        DELETE FROM public.cosourcing_opt_ins o WHERE o.room_id = p_room AND o.tenant_id = caller;
        RETURN true;
    END
    $$
    """,
    f"""
    CREATE FUNCTION cosourcing_in_room(p_room uuid)
    RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM public.cosourcing_participants p
            WHERE p.room_id = p_room AND p.tenant_id = {CURRENT_TENANT}
        )
    $$
    """,
    # Facilitators: the group's introduced rooms and how many are in each; never who, never a
    # room that has not been introduced (so a count is always at least two).
    f"""
    CREATE FUNCTION cosourcing_group_rooms(p_group uuid)
    RETURNS TABLE (room_id uuid, shared_finding_id uuid, participants bigint,
                   deadline_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
        SELECT r.id, r.shared_finding_id, count(p.tenant_id), r.deadline_at
        FROM public.cosourcing_rooms r
        JOIN public.cosourcing_participants p ON p.room_id = r.id
        WHERE r.working_group_id = p_group AND r.kind = 'remediation'
          AND r.introduced_at IS NOT NULL
          AND EXISTS (
              SELECT 1 FROM public.working_group_members m
              WHERE m.group_id = p_group AND m.tenant_id = {CURRENT_TENANT}
                AND m.status = 'active' AND m.role = 'facilitator'
          )
        GROUP BY r.id
        HAVING count(p.tenant_id) >= 2
        ORDER BY r.id
    $$
    """,
    # A participant tells the room's other participants (messages, action items).
    f"""
    CREATE FUNCTION cosourcing_publish_room_event(p_room uuid, p_type text, p_data jsonb)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        caller uuid := {CURRENT_TENANT};
    BEGIN
        IF caller IS NULL OR NOT EXISTS (
            SELECT 1 FROM public.cosourcing_participants p
            WHERE p.room_id = p_room AND p.tenant_id = caller
        ) THEN
            RAISE EXCEPTION 'not a participant of this room' USING ERRCODE = '42501';
        END IF;
        IF split_part(p_type, '.', 1) NOT IN ('remediation_room', 'audit_overlap') THEN
            RAISE EXCEPTION 'not a room event' USING ERRCODE = '22023';
        END IF;
        INSERT INTO public.events (tenant_id, type, data)
        SELECT p.tenant_id, p_type, p_data FROM public.cosourcing_participants p
        WHERE p.room_id = p_room AND p.tenant_id <> caller;
    END
    $$
    """,
    # Planned audits: pairs of different tenants' audits of one supplier, both open to a joint
    # audit, windows overlapping (inclusive: sharing one day is overlapping), not over, both
    # tenants linked for at least the minimum age and members of a common group. Each pair gets
    # one room; each side is invited and told only the supplier and the common window.
    f"""
    CREATE FUNCTION cosourcing_match_planned_audits(p_min_link_age_days int,
                                                    p_max_delay_seconds double precision)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        pair record;
        room uuid;
        found bigint := 0;
        linked_since timestamptz := now() - make_interval(days => p_min_link_age_days);
    BEGIN
        FOR pair IN
            SELECT a.tenant_id AS tenant_a, a.id AS audit_a, b.tenant_id AS tenant_b,
                   b.id AS audit_b, a.supplier_id,
                   greatest(a.window_start, b.window_start) AS window_start,
                   least(a.window_end, b.window_end) AS window_end
            FROM public.planned_audits a
            JOIN public.planned_audits b
                ON b.supplier_id = a.supplier_id AND b.tenant_id > a.tenant_id
                AND a.window_start <= b.window_end AND b.window_start <= a.window_end
            WHERE a.open_to_joint_audit AND b.open_to_joint_audit
              AND least(a.window_end, b.window_end) >= current_date
              AND EXISTS (SELECT 1 FROM public.supplier_links l
                          WHERE l.tenant_id = a.tenant_id AND l.supplier_id = a.supplier_id
                            AND l.created_at <= linked_since)
              AND EXISTS (SELECT 1 FROM public.supplier_links l
                          WHERE l.tenant_id = b.tenant_id AND l.supplier_id = b.supplier_id
                            AND l.created_at <= linked_since)
              AND EXISTS (SELECT 1 FROM public.working_group_members ma
                          JOIN public.working_group_members mb
                              ON mb.group_id = ma.group_id AND mb.tenant_id = b.tenant_id
                              AND mb.status = 'active'
                          WHERE ma.tenant_id = a.tenant_id AND ma.status = 'active')
              AND NOT EXISTS (SELECT 1 FROM public.cosourcing_rooms r
                              WHERE r.audit_pair = ARRAY[a.id, b.id])
            ORDER BY a.id, b.id
        LOOP
            room := gen_random_uuid();
            INSERT INTO public.cosourcing_rooms
                (id, kind, supplier_id, window_start, window_end, audit_pair, alerted_at)
            VALUES (room, 'joint_audit', pair.supplier_id, pair.window_start, pair.window_end,
                    ARRAY[pair.audit_a, pair.audit_b], now());
            INSERT INTO public.cosourcing_invitations (tenant_id, room_id, reason, planned_audit_id)
            VALUES (pair.tenant_a, room, 'overlap', pair.audit_a),
                   (pair.tenant_b, room, 'overlap', pair.audit_b);
            INSERT INTO public.events (tenant_id, type, data, occurred_at, visible_at)
            SELECT i.tenant_id, 'audit.overlap_found',
                   jsonb_build_object('audit_overlap_id', room,
                                      'planned_audit_id', i.planned_audit_id,
                                      'supplier_id', pair.supplier_id,
                                      'window', jsonb_build_object('start', pair.window_start,
                                                                   'end', pair.window_end)),
                   date_trunc('day', now(), 'UTC'),
                   now() + make_interval(secs => random()
                       * least(greatest(coalesce(p_max_delay_seconds, 0), 0), 30))
            FROM public.cosourcing_invitations i WHERE i.room_id = room;
            found := found + 1;
        END LOOP;
        RETURN found;
    END
    $$
    """,
    # Before the caller deletes its planned audit: its overlaps not yet introduced vanish.
    f"""
    CREATE FUNCTION cosourcing_forget_planned_audit(p_audit uuid)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
        DELETE FROM public.cosourcing_rooms r
        USING public.cosourcing_invitations i
        WHERE i.room_id = r.id AND i.tenant_id = {CURRENT_TENANT}
          AND i.planned_audit_id = p_audit AND r.kind = 'joint_audit'
          AND r.introduced_at IS NULL
    $$
    """,
    # The 72-hour mark of a remediation room: every tenant invited to it is reminded, whatever
    # anyone else did, so the reminder says nothing about others.
    f"""
    CREATE FUNCTION cosourcing_send_room_reminders(p_now timestamptz, p_limit int)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        written bigint;
    BEGIN
        WITH due AS (
            SELECT r.id FROM public.cosourcing_rooms r
            WHERE r.kind = 'remediation' AND r.reminder_sent_at IS NULL
              AND r.alert IS NULL AND r.deadline_at <= p_now
            ORDER BY r.deadline_at
            LIMIT p_limit
            FOR UPDATE SKIP LOCKED
        ), sent AS (
            UPDATE public.cosourcing_rooms r SET reminder_sent_at = p_now
            FROM due WHERE r.id = due.id
            RETURNING r.id, r.working_group_id, r.shared_finding_id, r.deadline_at
        )
        INSERT INTO public.events (tenant_id, type, data)
        SELECT i.tenant_id, 'remediation_room.deadline_reminder', jsonb_build_object(
            'remediation_room_id', s.id, 'working_group_id', s.working_group_id,
            'shared_finding_id', s.shared_finding_id,
            'deadline_at', to_char(s.deadline_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
        FROM sent s JOIN public.cosourcing_invitations i ON i.room_id = s.id
        ORDER BY s.id, i.tenant_id;
        GET DIAGNOSTICS written = ROW_COUNT;
        RETURN written;
    END
    $$
    """,
]


def upgrade() -> None:
    app, owner = migration_role("app"), migration_role("owner")
    op.execute(
        """
        CREATE TABLE cosourcing_rooms (
            id uuid PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('remediation', 'joint_audit')),
            supplier_id uuid NOT NULL REFERENCES suppliers (id),
            working_group_id uuid REFERENCES working_groups (id) ON DELETE CASCADE,
            shared_finding_id uuid UNIQUE,
            window_start date,
            window_end date,
            audit_pair uuid[] UNIQUE,
            alert jsonb,
            alerted_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            deadline_at timestamptz,
            reminder_sent_at timestamptz,
            introduced_at timestamptz,
            CHECK ((kind = 'remediation') = (shared_finding_id IS NOT NULL)),
            CHECK ((kind = 'joint_audit') = (audit_pair IS NOT NULL))
        )
        """
    )
    op.execute(
        "CREATE INDEX cosourcing_rooms_pending ON cosourcing_rooms (created_at) "
        "WHERE alert IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX cosourcing_rooms_reminders ON cosourcing_rooms (deadline_at) "
        "WHERE reminder_sent_at IS NULL"
    )
    op.execute("CREATE INDEX cosourcing_rooms_group ON cosourcing_rooms (working_group_id)")
    op.execute(
        """
        CREATE TABLE cosourcing_invitations (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            room_id uuid NOT NULL REFERENCES cosourcing_rooms (id) ON DELETE CASCADE,
            reason text NOT NULL CHECK (reason IN ('contributor', 'alerted', 'overlap')),
            planned_audit_id uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, room_id)
        )
        """
    )
    op.execute("CREATE INDEX cosourcing_invitations_room ON cosourcing_invitations (room_id)")
    op.execute(
        "CREATE INDEX cosourcing_invitations_listing "
        "ON cosourcing_invitations (tenant_id, created_at, room_id)"
    )
    op.execute(
        """
        CREATE TABLE cosourcing_opt_ins (
            tenant_id uuid NOT NULL,
            room_id uuid NOT NULL,
            opted_in_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, room_id),
            FOREIGN KEY (tenant_id, room_id)
                REFERENCES cosourcing_invitations (tenant_id, room_id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX cosourcing_opt_ins_room ON cosourcing_opt_ins (room_id)")
    op.execute(
        """
        CREATE TABLE cosourcing_participants (
            room_id uuid NOT NULL REFERENCES cosourcing_rooms (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            introduced_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (room_id, tenant_id)
        )
        """
    )
    op.execute("CREATE INDEX cosourcing_participants_tenant ON cosourcing_participants (tenant_id)")
    op.execute(
        """
        CREATE TABLE cosourcing_messages (
            room_id uuid NOT NULL REFERENCES cosourcing_rooms (id) ON DELETE CASCADE,
            id uuid NOT NULL,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            body text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (room_id, id)
        )
        """
    )
    op.execute(
        "CREATE INDEX cosourcing_messages_thread ON cosourcing_messages (room_id, created_at, id)"
    )
    op.execute(
        """
        CREATE TABLE cosourcing_action_items (
            room_id uuid NOT NULL REFERENCES cosourcing_rooms (id) ON DELETE CASCADE,
            id uuid NOT NULL,
            title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
            owner_tenant_id uuid REFERENCES tenants (id) ON DELETE SET NULL,
            due_on date,
            status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (room_id, id)
        )
        """
    )
    op.execute(
        "CREATE INDEX cosourcing_action_items_list "
        "ON cosourcing_action_items (room_id, created_at, id)"
    )
    op.execute(
        """
        CREATE TABLE planned_audits (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id uuid NOT NULL,
            supplier_id uuid NOT NULL REFERENCES suppliers (id),
            window_start date NOT NULL,
            window_end date NOT NULL,
            scheme text NOT NULL,
            open_to_joint_audit boolean NOT NULL,
            note text,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (tenant_id, id),
            CHECK (window_end >= window_start)
        )
        """
    )
    op.execute(
        "CREATE INDEX planned_audits_listing ON planned_audits (tenant_id, window_start, id)"
    )
    op.execute(
        "CREATE INDEX planned_audits_matching ON planned_audits (supplier_id, window_start) "
        "WHERE open_to_joint_audit"
    )

    # Before the policies: they call cosourcing_in_room.
    for statement in FUNCTIONS:
        op.execute(statement)

    # Tenant tables: the tenant's own rows; the owner's functions read (and write) across them.
    for table in TENANT_TABLES:
        for statement in tenant_rls_statements(table):
            op.execute(statement)
        op.execute(f"CREATE POLICY owner_lookup ON {table} FOR SELECT TO {owner} USING (true)")
    op.execute(
        f"CREATE POLICY owner_invites ON cosourcing_invitations FOR INSERT TO {owner} "
        "WITH CHECK (true)"
    )
    op.execute(
        f"CREATE POLICY owner_withdraws ON cosourcing_opt_ins FOR DELETE TO {owner} USING (true)"
    )
    # Rooms span tenants: a tenant reads the rooms it is invited to; the owner does the rest.
    op.execute("ALTER TABLE cosourcing_rooms ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE cosourcing_rooms FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY invited_read ON cosourcing_rooms FOR SELECT TO {app} USING (EXISTS ("
        "SELECT 1 FROM cosourcing_invitations i WHERE i.room_id = cosourcing_rooms.id "
        f"AND i.tenant_id = {CURRENT_TENANT}))"
    )
    op.execute(
        f"CREATE POLICY owner_manages ON cosourcing_rooms FOR ALL TO {owner} "
        "USING (true) WITH CHECK (true)"
    )
    for table in ROOM_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY participants_read ON {table} FOR SELECT TO {app} USING ({IN_ROOM})"
        )
    op.execute(
        f"CREATE POLICY owner_introduces ON cosourcing_participants FOR ALL TO {owner} "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(
        f"CREATE POLICY participants_write ON cosourcing_messages FOR INSERT TO {app} "
        f"WITH CHECK (tenant_id = {CURRENT_TENANT} AND {IN_ROOM})"
    )
    op.execute(
        f"CREATE POLICY participants_write ON cosourcing_action_items FOR INSERT TO {app} "
        f"WITH CHECK ({IN_ROOM})"
    )
    op.execute(
        f"CREATE POLICY participants_change ON cosourcing_action_items FOR UPDATE TO {app} "
        f"USING ({IN_ROOM}) WITH CHECK ({IN_ROOM})"
    )

    # Grants: the app role reads what RLS lets it, writes its own opt-ins, planned audits,
    # messages and action items; rooms, invitations and participants only through functions.
    for table in (*TENANT_TABLES, "cosourcing_rooms", *ROOM_TABLES):
        op.execute(f"REVOKE ALL ON {table} FROM {app}")
    op.execute(
        "GRANT SELECT (id, kind, supplier_id, working_group_id, shared_finding_id, window_start, "
        f"window_end, created_at, deadline_at) ON cosourcing_rooms TO {app}"
    )
    op.execute(f"GRANT SELECT ON cosourcing_invitations TO {app}")
    op.execute(f"GRANT SELECT, INSERT ON cosourcing_opt_ins TO {app}")
    op.execute(f"GRANT SELECT ON cosourcing_participants TO {app}")
    op.execute(f"GRANT SELECT, INSERT ON cosourcing_messages TO {app}")
    op.execute(f"GRANT SELECT, INSERT ON cosourcing_action_items TO {app}")
    op.execute(
        f"GRANT UPDATE (status, title, due_on, owner_tenant_id, updated_at) "
        f"ON cosourcing_action_items TO {app}"
    )
    op.execute(f"GRANT SELECT, INSERT, DELETE ON planned_audits TO {app}")

    system = migration_role("system")
    for function in APP_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app}")
    for function in SYSTEM_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {system}")


def downgrade() -> None:
    op.execute("DROP POLICY invited_read ON cosourcing_rooms")
    for table in (
        "planned_audits",
        "cosourcing_action_items",
        "cosourcing_messages",
        "cosourcing_participants",
        "cosourcing_opt_ins",
        "cosourcing_invitations",
        "cosourcing_rooms",
    ):
        op.execute(f"DROP TABLE {table}")
    for function in (*SYSTEM_FUNCTIONS, *APP_FUNCTIONS):
        op.execute(f"DROP FUNCTION {function}")
