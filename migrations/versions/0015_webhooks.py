"""Webhooks: endpoints, one delivery row per attempt, and the worker's functions.

Revision ID: 0015_webhooks
Revises: 0014_calendar_feeds

`webhook_endpoints` holds each endpoint with its signing secret sealed by the service (never the
plain secret), the secret it replaced while both still sign, and `feed_position`: the last
position of the tenant's feed that was turned into deliveries. `webhook_deliveries` has one row
per attempt: a retry not yet made is a `pending` row with its `next_attempt_at`; `lease_token` and
`lease_until` mark a row a worker has claimed, so a worker that dies mid-delivery leaves it to be
claimed again after the lease.

The worker (system role, no privilege on these tables) goes through three owner functions:
`webhook_fan_out` gives the feed's positions (`position_events()`, so only visible events, in
feed order) and writes a delivery per enabled endpoint and matching event; `webhook_claim` leases
due deliveries (a few per endpoint, one at a time and in feed order for `ordered` endpoints) and
answers what sending needs: the URL, the sealed secrets and the event; `webhook_record` stores
outcomes, schedules the next attempt and disables an endpoint on 410 or after 5 days of failures,
writing `webhook_endpoint.disabled` into the tenant's feed. `purge_webhook_deliveries` drops
finished attempts older than the feed's retention (an hourly job).
"""

from alembic import op

from wg_api.platform.rls import migration_role, tenant_rls_statements

revision = "0015_webhooks"
down_revision = "0014_calendar_feeds"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
TABLES = ("webhook_endpoints", "webhook_deliveries")

FAN_OUT = f"""
    CREATE FUNCTION webhook_fan_out(p_limit int) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        t uuid;
        head bigint;
        written bigint := 0;
        n bigint;
    BEGIN
        FOR t IN SELECT DISTINCT e.tenant_id FROM public.webhook_endpoints e
                 WHERE e.status = 'enabled' ORDER BY 1 LOOP
            -- Positions are given as for a reader of this tenant's feed: visible events only.
            PERFORM set_config('app.tenant_id', t::text, true);
            PERFORM public.position_events();
            head := coalesce(
                (SELECT max(ev.position) FROM public.events ev WHERE ev.tenant_id = t), 0);
            WITH eps AS (
                SELECT ep.id, ep.feed_position, ep.event_types,
                       least(head, ep.feed_position + p_limit) AS upto
                FROM public.webhook_endpoints ep
                WHERE ep.tenant_id = t AND ep.status = 'enabled' AND ep.feed_position < head
                FOR UPDATE SKIP LOCKED
            ), moved AS (
                UPDATE public.webhook_endpoints ep SET feed_position = eps.upto
                FROM eps WHERE ep.tenant_id = t AND ep.id = eps.id
                RETURNING ep.id
            ), made AS (
                INSERT INTO public.webhook_deliveries
                    (tenant_id, endpoint_id, event_id, event_type, event_position, attempt)
                SELECT t, eps.id, ev.id, ev.type, ev.position, 1
                FROM eps JOIN public.events ev
                  ON ev.tenant_id = t AND ev.position > eps.feed_position
                 AND ev.position <= eps.upto
                WHERE eps.event_types IS NULL OR ev.type = ANY (eps.event_types)
                ORDER BY ev.position
                ON CONFLICT DO NOTHING
                RETURNING 1
            )
            SELECT count(*) INTO n FROM made;
            written := written + n;
        END LOOP;
        PERFORM set_config('app.tenant_id', '', true);
        RETURN written;
    END
    $$
"""

CLAIM = f"""
    CREATE FUNCTION webhook_claim(p_limit int, p_per_endpoint int, p_lease_seconds float8)
    RETURNS TABLE (tenant_id uuid, delivery_id uuid, endpoint_id uuid, url text,
                   secret bytea, previous_secret bytea, event_id uuid, event_type text,
                   occurred_at timestamptz, data text, attempt int, retries int,
                   lease_token uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        token uuid := gen_random_uuid();
        picked uuid[];
    BEGIN
        -- A few due rows per enabled endpoint, fewer when some of its rows are in flight; an
        -- ordered endpoint's first pending row in feed order only, and only when due and free.
        SELECT array_agg(c.id) INTO picked FROM (
            SELECT d.id, d.next_attempt_at FROM public.webhook_endpoints ep
            CROSS JOIN LATERAL (
                SELECT count(*) AS n FROM public.webhook_deliveries f
                WHERE f.tenant_id = ep.tenant_id AND f.endpoint_id = ep.id
                  AND f.status = 'pending' AND f.lease_until >= now()
            ) busy
            CROSS JOIN LATERAL (
                SELECT w.id, w.next_attempt_at FROM public.webhook_deliveries w
                WHERE w.tenant_id = ep.tenant_id AND w.endpoint_id = ep.id
                  AND w.status = 'pending'
                  AND (ep.ordered OR (w.next_attempt_at <= now()
                       AND (w.lease_until IS NULL OR w.lease_until < now())))
                ORDER BY w.event_position, w.created_at, w.id
                LIMIT CASE WHEN ep.ordered THEN 1
                           ELSE greatest(p_per_endpoint - busy.n, 0) END
            ) d
            WHERE ep.status = 'enabled'
              AND d.next_attempt_at <= now()
              AND NOT (ep.ordered AND busy.n > 0)
            ORDER BY d.next_attempt_at
            LIMIT p_limit
        ) c;
        IF picked IS NULL THEN
            RETURN;
        END IF;
        RETURN QUERY
        WITH locked AS (
            SELECT w.tenant_id, w.id FROM public.webhook_deliveries w
            WHERE w.id = ANY (picked) AND w.status = 'pending' AND w.next_attempt_at <= now()
              AND (w.lease_until IS NULL OR w.lease_until < now())
            FOR UPDATE SKIP LOCKED
        ), leased AS (
            UPDATE public.webhook_deliveries w
            SET lease_token = token,
                lease_until = now() + make_interval(secs => p_lease_seconds)
            FROM locked WHERE w.tenant_id = locked.tenant_id AND w.id = locked.id
            RETURNING w.tenant_id, w.id, w.endpoint_id, w.event_id, w.event_type, w.attempt,
                      w.retries
        )
        SELECT l.tenant_id, l.id, l.endpoint_id, ep.url, ep.secret,
               CASE WHEN ep.previous_secret_expires_at > now() THEN ep.previous_secret END,
               l.event_id, l.event_type, ev.occurred_at, ev.data::text, l.attempt, l.retries,
               token
        FROM leased l
        JOIN public.webhook_endpoints ep ON ep.tenant_id = l.tenant_id AND ep.id = l.endpoint_id
        LEFT JOIN public.events ev ON ev.tenant_id = l.tenant_id AND ev.id = l.event_id;
    END
    $$
"""

RECORD = f"""
    CREATE FUNCTION webhook_record(
        p_tenant uuid[], p_id uuid[], p_token uuid[], p_succeeded boolean[],
        p_response_status int[], p_duration_ms int[], p_error text[],
        p_attempted_at timestamptz[], p_next_attempt_at timestamptz[], p_gone boolean[],
        p_disable_after_seconds float8)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        i int;
        done public.webhook_deliveries;
        ep public.webhook_endpoints;
        recorded bigint := 0;
        reason text;
    BEGIN
        FOR i IN 1 .. coalesce(array_length(p_id, 1), 0) LOOP
            -- Only while the lease is still this worker's: a late answer after a reclaim is
            -- dropped, the new holder records its own.
            UPDATE public.webhook_deliveries d
            SET status = CASE WHEN p_succeeded[i] THEN 'succeeded' ELSE 'failed' END,
                response_status = p_response_status[i], duration_ms = p_duration_ms[i],
                error = p_error[i], attempted_at = p_attempted_at[i], next_attempt_at = NULL,
                lease_token = NULL, lease_until = NULL
            WHERE d.tenant_id = p_tenant[i] AND d.id = p_id[i] AND d.status = 'pending'
              AND d.lease_token = p_token[i]
            RETURNING d.* INTO done;
            CONTINUE WHEN NOT FOUND;
            recorded := recorded + 1;
            IF p_succeeded[i] THEN
                UPDATE public.webhook_endpoints e SET failing_since = NULL
                WHERE e.tenant_id = done.tenant_id AND e.id = done.endpoint_id
                  AND e.failing_since IS NOT NULL;
                CONTINUE;
            END IF;
            IF p_next_attempt_at[i] IS NOT NULL AND NOT p_gone[i] THEN
                INSERT INTO public.webhook_deliveries
                    (tenant_id, endpoint_id, event_id, event_type, event_position, attempt,
                     retries, next_attempt_at)
                VALUES (done.tenant_id, done.endpoint_id, done.event_id, done.event_type,
                        done.event_position, done.attempt + 1, done.retries + 1,
                        p_next_attempt_at[i]);
            END IF;
            UPDATE public.webhook_endpoints e
            SET failing_since = coalesce(e.failing_since, p_attempted_at[i])
            WHERE e.tenant_id = done.tenant_id AND e.id = done.endpoint_id
            RETURNING e.* INTO ep;
            reason := CASE
                WHEN p_gone[i] THEN 'gone'
                WHEN ep.failing_since <= now() - make_interval(secs => p_disable_after_seconds)
                    THEN 'failing'
            END;
            IF reason IS NOT NULL AND ep.status = 'enabled' THEN
                UPDATE public.webhook_endpoints e
                SET status = 'disabled', disabled_reason = reason, updated_at = now()
                WHERE e.tenant_id = ep.tenant_id AND e.id = ep.id;
                INSERT INTO public.events (tenant_id, type, data)
                VALUES (ep.tenant_id, 'webhook_endpoint.disabled', jsonb_build_object(
                    'id', ep.id, 'url', ep.url, 'reason', reason,
                    'failing_since', to_char(ep.failing_since AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
            END IF;
        END LOOP;
        RETURN recorded;
    END
    $$
"""

PURGE = f"""
    CREATE FUNCTION purge_webhook_deliveries(p_retention_days int) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        deleted bigint;
    BEGIN
        IF p_retention_days IS NULL OR p_retention_days < 1 THEN
            RAISE EXCEPTION 'the retention is at least one day' USING ERRCODE = '22023';
        END IF;
        -- Finished attempts as old as the feed's retention; pending ones wait for their turn.
        DELETE FROM public.webhook_deliveries d
        WHERE d.status <> 'pending'
          AND d.created_at < now() - make_interval(days => p_retention_days);
        GET DIAGNOSTICS deleted = ROW_COUNT;
        RETURN deleted;
    END
    $$
"""

SYSTEM_FUNCTIONS = (
    "webhook_fan_out(int)",
    "purge_webhook_deliveries(int)",
    "webhook_claim(int, int, float8)",
    "webhook_record(uuid[], uuid[], uuid[], boolean[], int[], int[], text[], timestamptz[], "
    "timestamptz[], boolean[], float8)",
)


def upgrade() -> None:
    app, owner, system = migration_role("app"), migration_role("owner"), migration_role("system")
    op.execute(
        """
        CREATE TABLE webhook_endpoints (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
            description text CHECK (length(description) <= 500),
            event_types text[],
            ordered boolean NOT NULL DEFAULT false,
            status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
            disabled_reason text CHECK (disabled_reason IN ('manual', 'gone', 'failing')),
            secret bytea NOT NULL,
            previous_secret bytea,
            previous_secret_expires_at timestamptz,
            secret_rotated_at timestamptz,
            feed_position bigint NOT NULL DEFAULT 0,
            failing_since timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, id)
        )
        """
    )
    op.execute(
        "CREATE INDEX webhook_endpoints_list ON webhook_endpoints (tenant_id, created_at, id)"
    )
    op.execute(
        "CREATE INDEX webhook_endpoints_enabled ON webhook_endpoints (tenant_id) "
        "WHERE status = 'enabled'"
    )
    op.execute(
        """
        CREATE TABLE webhook_deliveries (
            tenant_id uuid NOT NULL,
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            endpoint_id uuid NOT NULL,
            event_id uuid NOT NULL,
            event_type text NOT NULL,
            event_position bigint NOT NULL,
            attempt int NOT NULL CHECK (attempt >= 1),
            retries int NOT NULL DEFAULT 0,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'succeeded', 'failed')),
            next_attempt_at timestamptz DEFAULT now(),
            attempted_at timestamptz,
            response_status int,
            duration_ms int,
            error text,
            lease_token uuid,
            lease_until timestamptz,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (tenant_id, id),
            UNIQUE (tenant_id, endpoint_id, event_id, attempt),
            FOREIGN KEY (tenant_id, endpoint_id)
                REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE,
            CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
        )
        """
    )
    op.execute(
        "CREATE INDEX webhook_deliveries_list "
        "ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC, id DESC)"
    )
    op.execute(
        "CREATE INDEX webhook_deliveries_pending "
        "ON webhook_deliveries (tenant_id, endpoint_id, event_position, created_at, id) "
        "WHERE status = 'pending'"
    )
    op.execute("CREATE INDEX webhook_deliveries_claimed ON webhook_deliveries (id)")
    for table in TABLES:
        for statement in tenant_rls_statements(table):
            op.execute(statement)
    # The API: endpoints in full; deliveries are read, and added by redeliver and replay.
    op.execute(f"REVOKE ALL ON webhook_deliveries FROM {app}")
    op.execute(f"GRANT SELECT, INSERT ON webhook_deliveries TO {app}")
    # The worker's functions run as the owner, whom forced RLS holds to these policies.
    for table in TABLES:
        op.execute(f"CREATE POLICY owner_lookup ON {table} FOR SELECT TO {owner} USING (true)")
        op.execute(
            f"CREATE POLICY owner_delivers ON {table} FOR UPDATE TO {owner} "
            "USING (true) WITH CHECK (true)"
        )
    op.execute(
        f"CREATE POLICY owner_schedules ON webhook_deliveries FOR INSERT TO {owner} "
        "WITH CHECK (true)"
    )
    op.execute(
        f"CREATE POLICY owner_purges ON webhook_deliveries FOR DELETE TO {owner} USING (true)"
    )
    for statement in (FAN_OUT, CLAIM, RECORD, PURGE):
        op.execute(statement)
    for function in SYSTEM_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {system}")


def downgrade() -> None:
    for function in reversed(SYSTEM_FUNCTIONS):
        op.execute(f"DROP FUNCTION {function}")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
