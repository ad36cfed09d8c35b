"""Sharing: anonymised shared findings, the owners' shares, and the insights function.

Revision ID: 0004_sharing
Revises: 0003_groups_suppliers_findings

A shared finding carries no link to its contributor that the app role can read: `contributor` is
excluded from the app role's column privileges and only `group_insights()` (SECURITY DEFINER) reads
it, to count distinct contributors; it answers suppressed cells without their counts and rounds the
published ones, so exact small numbers never leave the database. The contributor finds its own
records through its `shares` rows (tenant RLS).
"""

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role, tenant_rls_statements

revision = "0004_sharing"
down_revision = "0003_groups_suppliers_findings"
branch_labels = None
depends_on = None

PUBLIC_COLUMNS = (
    "id, group_id, supplier_id, supplier_name, country, kind, area, severity, basis, status, "
    "observed_period, title, description, affected_workers_band, source_scheme, child_labour_case"
)
UPDATABLE_COLUMNS = (
    "supplier_id, supplier_name, country, kind, area, severity, basis, status, observed_period, "
    "title, description, affected_workers_band, source_scheme, child_labour_case"
)


RENAME_FUNCTION = """
    CREATE OR REPLACE FUNCTION suppliers_rename_links() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
    BEGIN
        UPDATE public.supplier_links SET supplier_name = NEW.name
        WHERE supplier_id = NEW.id;{shared}
        RETURN NULL;
    END
    $$
"""


# The insights function of this revision (0005 replaces it and restores it on downgrade).
GROUP_INSIGHTS = """
    CREATE FUNCTION group_insights(
        p_group uuid, p_dims text[], p_supplier uuid, p_area text, p_severity text,
        p_country text, p_period text, p_kind text, p_rounding int
    )
    RETURNS TABLE (cell jsonb, findings bigint, suppliers bigint, contributors text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    SET work_mem = '32MB'
    AS $$
    DECLARE
        k int;
        dim text;
        expr text;
        dims text[] := coalesce(p_dims, ARRAY[]::text[]);
        rest text[];
        sel_sql text := '';
        grp_sql text := '';
        names_sql text := '';
        key_sql text := '';
        where_sql text;
        suppliers_sql text;
        presorted_aggregate text := current_setting('enable_presorted_aggregate', true);
        -- The dimensions in the order of the index shared_findings_cells (after group_id).
        allowed constant text[] := ARRAY['area', 'country', 'period', 'severity', 'kind'];
    BEGIN
        IF wg_group_role(p_group) IS NULL THEN
            RAISE EXCEPTION 'not a member of this group' USING ERRCODE = '42501';
        END IF;
        SELECT greatest(3, g.anonymity_threshold) INTO k
        FROM public.working_groups g WHERE g.id = p_group;
        FOREACH dim IN ARRAY dims LOOP
            IF NOT dim = ANY (allowed) THEN
                RAISE EXCEPTION 'unknown dimension %', dim USING ERRCODE = '22023';
            END IF;
        END LOOP;
        -- Grouped by the columns themselves, in index order, so that the index hands the
        -- rows over already grouped when it can (NULL and '' severity are one cell).
        FOREACH dim IN ARRAY allowed LOOP
            CONTINUE WHEN NOT dim = ANY (dims);
            expr := CASE dim WHEN 'period' THEN 'observed_period'
                             WHEN 'severity' THEN 'coalesce(severity, '''')'
                             ELSE dim END;
            sel_sql := sel_sql || format('%s AS %I, ',
                CASE dim WHEN 'country' THEN 'country::text' ELSE expr END, dim);
            grp_sql := grp_sql || expr || ', ';
            names_sql := names_sql || format('%I, ', dim);
            key_sql := key_sql || format('%L, NULLIF(%I, %L), ', dim, dim, '');
        END LOOP;
        -- Only the filters given, so the planner sees the conditions it can use.
        where_sql := concat_ws(' AND ', 'group_id = $1',
            CASE WHEN p_supplier IS NOT NULL THEN 'supplier_id = $2' END,
            CASE WHEN p_area IS NOT NULL THEN 'area = $3' END,
            CASE WHEN p_severity IS NOT NULL THEN 'severity = $4' END,
            CASE WHEN p_country IS NOT NULL THEN 'country = $5' END,
            CASE WHEN p_period IS NOT NULL THEN 'observed_period = $6' END,
            CASE WHEN p_kind IS NOT NULL THEN 'kind = $7' END);
        -- Distinct suppliers per cell: when the grouped dimensions are the index's leading
        -- columns (those filtered to one value aside), one pass over the index in order,
        -- counting each cell's suppliers as it goes; otherwise through (cell, supplier) pairs.
        rest := dims;
        FOREACH dim IN ARRAY allowed LOOP
            EXIT WHEN cardinality(rest) = 0;
            IF dim = ANY (rest) AND dim <> 'severity' THEN
                rest := array_remove(rest, dim);
            ELSIF NOT ((dim = 'area' AND p_area IS NOT NULL)
                    OR (dim = 'country' AND p_country IS NOT NULL)
                    OR (dim = 'period' AND p_period IS NOT NULL)
                    OR (dim = 'severity' AND p_severity IS NOT NULL)
                    OR (dim = 'kind' AND p_kind IS NOT NULL)) THEN
                EXIT;
            END IF;
        END LOOP;
        IF cardinality(dims) > 0 AND cardinality(rest) = 0 THEN
            suppliers_sql := $s$
                SELECT %1$s count(DISTINCT supplier_id) AS suppliers
                FROM public.shared_findings WHERE %5$s
                GROUP BY %2$s ()
            $s$;
        ELSE
            suppliers_sql := $s$
                SELECT %3$s count(*) AS suppliers
                FROM (
                    SELECT %1$s supplier_id FROM public.shared_findings WHERE %5$s
                    GROUP BY %2$s supplier_id
                ) per_supplier
                GROUP BY %3$s ()
            $s$;
        END IF;
        -- Sorting each cell's suppliers inside the aggregate beats re-sorting whole rows
        -- (PostgreSQL 16+ would); restored below, and by any error.
        IF presorted_aggregate IS NOT NULL THEN
            PERFORM set_config('enable_presorted_aggregate', 'off', true);
        END IF;
        -- Two aggregates over the same rows, side by side (a parallel append can run them
        -- at once): per contributor, and distinct suppliers.
        RETURN QUERY EXECUTE format(
            $q$
            WITH per_contributor AS (
                SELECT %1$s count(*) AS n
                FROM public.shared_findings WHERE %5$s
                GROUP BY %2$s contributor
            ),
            supplier_counts AS ($q$ || suppliers_sql || $q$),
            parts AS (
                SELECT %3$s sum(n) AS findings, count(*) AS contributors, max(n) AS top,
                       NULL::bigint AS suppliers
                FROM per_contributor GROUP BY %3$s ()
                UNION ALL
                SELECT %3$s NULL, NULL, NULL, suppliers FROM supplier_counts
            ),
            cells AS (
                SELECT %3$s max(findings) AS findings, max(contributors) AS contributors,
                       max(top) AS top, max(suppliers) AS suppliers
                FROM parts GROUP BY %3$s ()
                HAVING max(contributors) > 0  -- no findings at all is no cell
            )
            SELECT jsonb_build_object(%4$s '_', null) - '_',
                   CASE WHEN published THEN (round(findings / $8::numeric) * $8)::bigint END,
                   CASE WHEN published
                        THEN greatest($8, (round(suppliers / $8::numeric) * $8)::bigint) END,
                   CASE WHEN NOT published THEN NULL
                        WHEN contributors >= 10 THEN '10+'
                        WHEN contributors >= 5 THEN '5+'
                        ELSE '3+' END
            FROM (
                SELECT *, (contributors >= $9 AND top <= 0.85 * findings) AS published
                FROM cells
            ) c
            $q$,
            sel_sql, grp_sql, names_sql, key_sql, where_sql
        )
        USING p_group, p_supplier, p_area, p_severity, p_country, p_period, p_kind,
              p_rounding, k;
        IF presorted_aggregate IS NOT NULL THEN
            PERFORM set_config('enable_presorted_aggregate', presorted_aggregate, true);
        END IF;
    END
    $$
"""


def upgrade() -> None:
    app, owner = migration_role("app"), migration_role("owner")
    op.execute(
        """
        CREATE TABLE shared_findings (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
            contributor uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            supplier_id uuid NOT NULL REFERENCES suppliers (id),
            supplier_name text NOT NULL,
            country char(2) NOT NULL,
            kind text NOT NULL,
            area text NOT NULL,
            severity text,
            basis text,
            status text NOT NULL,
            observed_period text NOT NULL CHECK (observed_period ~ '^[0-9]{4}-Q[1-4]$'),
            title text NOT NULL,
            description text,
            affected_workers_band text,
            source_scheme text NOT NULL,
            child_labour_case jsonb
        )
        """
    )
    op.execute(
        "CREATE INDEX shared_findings_listing "
        "ON shared_findings (group_id, supplier_id, observed_period DESC, id)"
    )
    # The list's order (supplier name, supplier, newest quarter, id) as one index range.
    op.execute(
        "CREATE INDEX shared_findings_by_supplier ON shared_findings "
        "(group_id, supplier_name, supplier_id, observed_period DESC, id)"
    )
    op.execute(
        "CREATE INDEX shared_findings_cells ON shared_findings "
        "(group_id, area, country, observed_period, severity, kind, contributor, supplier_id)"
    )
    op.execute("ALTER TABLE shared_findings ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE shared_findings FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY members_read ON shared_findings FOR SELECT TO {app} "
        "USING (wg_group_role(group_id) IS NOT NULL)"
    )
    # A contributor that left the group can still find, refresh and withdraw what it shared.
    op.execute(
        f"CREATE POLICY contributor_read ON shared_findings FOR SELECT TO {app} "
        f"USING (contributor = {CURRENT_TENANT})"
    )
    op.execute(
        f"CREATE POLICY members_share ON shared_findings FOR INSERT TO {app} "
        f"WITH CHECK (contributor = {CURRENT_TENANT} "
        "AND wg_group_role(group_id) IN ('member', 'facilitator'))"
    )
    op.execute(
        f"CREATE POLICY contributor_refresh ON shared_findings FOR UPDATE TO {app} "
        f"USING (contributor = {CURRENT_TENANT}) WITH CHECK (contributor = {CURRENT_TENANT})"
    )
    op.execute(
        f"CREATE POLICY contributor_withdraw ON shared_findings FOR DELETE TO {app} "
        f"USING (contributor = {CURRENT_TENANT})"
    )
    op.execute(f"CREATE POLICY owner_lookup ON shared_findings FOR SELECT TO {owner} USING (true)")
    op.execute(
        f"CREATE POLICY owner_rename ON shared_findings FOR UPDATE TO {owner} "
        "USING (true) WITH CHECK (true)"
    )
    # A renamed supplier is renamed on its links (0003) and on the shared records.
    op.execute(
        RENAME_FUNCTION.format(
            shared="""
            UPDATE public.shared_findings SET supplier_name = NEW.name
            WHERE supplier_id = NEW.id;"""
        )
    )
    op.execute(f"REVOKE ALL ON shared_findings FROM {app}")
    op.execute(f"GRANT SELECT ({PUBLIC_COLUMNS}) ON shared_findings TO {app}")
    op.execute(f"GRANT INSERT ({PUBLIC_COLUMNS}, contributor) ON shared_findings TO {app}")
    op.execute(f"GRANT UPDATE ({UPDATABLE_COLUMNS}) ON shared_findings TO {app}")
    op.execute(f"GRANT DELETE ON shared_findings TO {app}")

    op.execute(
        """
        CREATE TABLE shares (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            finding_id uuid NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
            group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
            shared_finding_id uuid REFERENCES shared_findings (id) ON DELETE SET NULL,
            include_description boolean NOT NULL DEFAULT true,
            status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'withdrawn')),
            created_at timestamptz NOT NULL DEFAULT now(),
            withdrawn_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX shares_finding ON shares (tenant_id, finding_id, created_at, id)")
    op.execute("CREATE INDEX shares_shared_finding ON shares (shared_finding_id)")
    op.execute(
        "CREATE UNIQUE INDEX shares_one_active ON shares (tenant_id, finding_id, group_id) "
        "WHERE status = 'active'"
    )
    for statement in tenant_rls_statements("shares"):
        op.execute(statement)

    op.execute(GROUP_INSIGHTS)
    op.execute(
        "REVOKE ALL ON FUNCTION "
        "group_insights(uuid, text[], uuid, text, text, text, text, text, int) FROM PUBLIC"
    )
    op.execute(
        "GRANT EXECUTE ON FUNCTION "
        f"group_insights(uuid, text[], uuid, text, text, text, text, text, int) TO {app}"
    )

    # Events about a shared finding go to the group's other active members; the right to speak
    # comes from having contributed the record, so a contributor that left can still announce
    # a change or a withdrawal of what it shared (and nothing else).
    op.execute(
        f"""
        CREATE FUNCTION publish_shared_finding_event(p_shared uuid, p_type text, p_data jsonb)
        RETURNS int
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        DECLARE
            caller uuid := {CURRENT_TENANT};
            target uuid;
            published int;
        BEGIN
            IF p_type NOT IN ('shared_finding.published', 'shared_finding.updated',
                              'shared_finding.withdrawn')
               OR p_data ->> 'id' IS DISTINCT FROM p_shared::text THEN
                RAISE EXCEPTION 'not an event about this shared finding' USING ERRCODE = '22023';
            END IF;
            SELECT s.group_id INTO target FROM public.shared_findings s
            WHERE s.id = p_shared AND s.contributor = caller;
            IF target IS NULL THEN
                RAISE EXCEPTION 'not the contributor of this shared finding'
                    USING ERRCODE = '42501';
            END IF;
            INSERT INTO public.events (tenant_id, type, data)
            SELECT m.tenant_id, p_type, p_data FROM public.working_group_members m
            WHERE m.group_id = target AND m.status = 'active' AND m.tenant_id <> caller;
            GET DIAGNOSTICS published = ROW_COUNT;
            RETURN published;
        END
        $$
        """
    )
    # The names scrubbed out of shared text: every tenant that is, was or is invited to be in the
    # group. Row-level security shows a former member none of them, yet its changes still flow
    # into what it shared.
    op.execute(
        f"""
        CREATE FUNCTION shared_finding_scrub_names(p_group uuid)
        RETURNS TABLE (name text, slug text)
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        BEGIN
            -- plpgsql, not sql: its plan is cached per connection (called on every list read).
            IF NOT EXISTS (
                SELECT 1 FROM public.working_group_members me
                WHERE me.group_id = p_group AND me.tenant_id = {CURRENT_TENANT}
            ) THEN
                RETURN;
            END IF;
            RETURN QUERY
                SELECT t.name, t.slug FROM public.tenants t
                JOIN (
                    SELECT m.tenant_id FROM public.working_group_members m
                    WHERE m.group_id = p_group
                    UNION
                    SELECT i.tenant_id FROM public.invitations i
                    WHERE i.group_id = p_group AND i.status = 'pending'
                ) g ON g.tenant_id = t.id
                ORDER BY t.slug;
        END
        $$
        """
    )
    for function in (
        "publish_shared_finding_event(uuid, text, jsonb)",
        "shared_finding_scrub_names(uuid)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app}")


def downgrade() -> None:
    op.execute(RENAME_FUNCTION.format(shared=""))
    op.execute("DROP FUNCTION shared_finding_scrub_names(uuid)")
    op.execute("DROP FUNCTION publish_shared_finding_event(uuid, text, jsonb)")
    op.execute(
        "DROP FUNCTION group_insights(uuid, text[], uuid, text, text, text, text, text, int)"
    )
    op.execute("DROP TABLE shares")
    op.execute("DROP TABLE shared_findings")
