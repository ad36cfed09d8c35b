"""The tenant's profile: country, working hours and aliases; aliases scrubbed from shared text.

Revision ID: 0011_tenant_profile
Revises: 0010_insight_suppression

`tenants` gains `country` and `working_hours` (`timezone` exists since 0001). The app role may
update only `timezone`, `country` and `working_hours` of its own row (RLS `tenants_self`), no
longer `slug`, `name` or `kind`.

Aliases live in `tenant_aliases`, one row per alias, under tenant RLS: a tenant reads and writes
its own, nobody reads another's. `tenant_name_taken(term)` (SECURITY DEFINER) answers only whether
a term is another tenant's name, slug or alias, compared by `tenant_name_key()` (NFKC, lower case,
runs of spaces, hyphens and underscores as one space), and a unique index on that key keeps two
tenants from claiming the same alias at once. `shared_finding_scrub_names()` answers the aliases
of the group's tenants too, and now only to an active member of the group: a tenant that left or
was removed learns nothing of who joined since. What a contributor's shares are scrubbed of when
built comes from `shared_finding_contributor_names()`: the same for an active member; for a
tenant that left, who was in the group while it was (its changes still flow into what it shared).
"""

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role, tenant_rls_statements

revision = "0011_tenant_profile"
down_revision = "0010_insight_suppression"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
WEEKDAYS = '\'["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\'::jsonb'
DEFAULT_HOURS = (
    '\'{"start": "09:00", "end": "18:00", "days": ["mon", "tue", "wed", "thu", "fri"]}\'::jsonb'
)
QUARTER_HOUR = "'^([01][0-9]|2[0-3]):(00|15|30|45)$'"

SCRUB_NAMES = f"""
    CREATE FUNCTION shared_finding_scrub_names(p_group uuid)
    RETURNS TABLE (name text, slug text, aliases text[])
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    BEGIN
        -- plpgsql, not sql: its plan is cached per connection (called on every list read).
        IF public.wg_group_role(p_group) IS NULL THEN
            RETURN;
        END IF;
        RETURN QUERY
            SELECT t.name, t.slug, ARRAY(
                SELECT a.alias FROM public.tenant_aliases a
                WHERE a.tenant_id = t.id ORDER BY a.position
            )
            FROM public.tenants t
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

# What a contributor's text is scrubbed of when its share is built or rebuilt. A tenant that left
# (or was removed) may still change what it shared there: it gets the tenants that were members
# while it was one, never anyone who joined since (it cannot read the result anyway).
CONTRIBUTOR_NAMES = f"""
    CREATE FUNCTION shared_finding_contributor_names(p_group uuid)
    RETURNS TABLE (name text, slug text, aliases text[])
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        my_status text;
        my_left_at timestamptz;
    BEGIN
        SELECT m.status, m.left_at INTO my_status, my_left_at
        FROM public.working_group_members m
        WHERE m.group_id = p_group AND m.tenant_id = {CURRENT_TENANT};
        IF my_status IS NULL THEN
            RETURN;
        ELSIF my_status = 'active' THEN
            RETURN QUERY SELECT * FROM public.shared_finding_scrub_names(p_group);
            RETURN;
        END IF;
        RETURN QUERY
            SELECT t.name, t.slug, ARRAY(
                SELECT a.alias FROM public.tenant_aliases a
                WHERE a.tenant_id = t.id ORDER BY a.position
            )
            FROM public.tenants t
            JOIN public.working_group_members m ON m.tenant_id = t.id
            WHERE m.group_id = p_group AND m.joined_at <= my_left_at
            ORDER BY t.slug;
    END
    $$
"""

# 0004's version, restored on downgrade.
OLD_SCRUB_NAMES = f"""
    CREATE FUNCTION shared_finding_scrub_names(p_group uuid)
    RETURNS TABLE (name text, slug text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    BEGIN
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


# The tenant and its first aliases in one call of the owner's function (migration 0008 made the
# four-argument one): the system role, which creates tenants, has no privilege on either table.
CREATE_TENANT = f"""
    CREATE FUNCTION create_tenant(
        p_slug text, p_name text, p_kind text, p_timezone text, p_country text, p_aliases text[]
    )
    RETURNS SETOF tenants
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
    DECLARE
        created public.tenants;
    BEGIN
        INSERT INTO public.tenants (slug, name, kind, timezone, country)
        VALUES (p_slug, p_name, p_kind, p_timezone, p_country)
        RETURNING * INTO created;
        INSERT INTO public.tenant_aliases (tenant_id, position, alias)
        SELECT created.id, (a.ord - 1)::smallint, a.alias
        FROM unnest(coalesce(p_aliases, '{{}}'::text[])) WITH ORDINALITY AS a (alias, ord);
        RETURN NEXT created;
    END
    $$
"""
OLD_CREATE_TENANT = f"""
    CREATE FUNCTION create_tenant(p_slug text, p_name text, p_kind text, p_timezone text)
    RETURNS SETOF tenants
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $$
        INSERT INTO public.tenants (slug, name, kind, timezone)
        VALUES (p_slug, p_name, p_kind, p_timezone)
        RETURNING *
    $$
"""
NEW_SIGNATURE = "create_tenant(text, text, text, text, text, text[])"
OLD_SIGNATURE = "create_tenant(text, text, text, text)"


def upgrade() -> None:
    app, owner, system = migration_role("app"), migration_role("owner"), migration_role("system")
    op.execute(
        f"""
        ALTER TABLE tenants
            ADD COLUMN country text CHECK (country ~ '^[A-Z]{{2}}$'),
            ADD COLUMN working_hours jsonb NOT NULL DEFAULT {DEFAULT_HOURS} CHECK (
                jsonb_typeof(working_hours) = 'object'
                AND working_hours ?& ARRAY['start', 'end', 'days']
                AND (working_hours ->> 'start') ~ {QUARTER_HOUR}
                AND (working_hours ->> 'end') ~ {QUARTER_HOUR}
                AND (working_hours ->> 'end') > (working_hours ->> 'start')
                AND jsonb_typeof(working_hours -> 'days') = 'array'
                AND jsonb_array_length(working_hours -> 'days') BETWEEN 1 AND 7
                AND (working_hours -> 'days') <@ {WEEKDAYS}
            )
        """
    )
    op.execute(f"REVOKE UPDATE ON tenants FROM {app}")
    op.execute(f"GRANT UPDATE (timezone, country, working_hours) ON tenants TO {app}")

    op.execute(
        """
        CREATE FUNCTION tenant_name_key(p_term text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog
        AS $$ SELECT btrim(regexp_replace(lower(normalize(p_term, NFKC)), '[\\s_-]+', ' ', 'g')) $$
        """
    )
    # Every insert into tenant_aliases computes the unique index's key with it.
    op.execute("REVOKE ALL ON FUNCTION tenant_name_key(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION tenant_name_key(text) TO {app}")
    op.execute(
        """
        CREATE TABLE tenant_aliases (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            position smallint NOT NULL CHECK (position BETWEEN 0 AND 49),
            alias text NOT NULL CHECK (length(alias) BETWEEN 2 AND 100 AND alias = btrim(alias)),
            PRIMARY KEY (tenant_id, position)
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX tenant_aliases_key ON tenant_aliases (tenant_name_key(alias))")
    for statement in tenant_rls_statements("tenant_aliases"):
        op.execute(statement)
    # The owner's functions below read every tenant's aliases; the app role only its own.
    op.execute(f"CREATE POLICY owner_lookup ON tenant_aliases FOR SELECT TO {owner} USING (true)")
    op.execute(f"REVOKE UPDATE, TRUNCATE ON tenant_aliases FROM {app}")
    op.execute(
        f"CREATE POLICY owner_create ON tenant_aliases FOR INSERT TO {owner} WITH CHECK (true)"
    )
    op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
    op.execute(CREATE_TENANT)
    op.execute(f"REVOKE ALL ON FUNCTION {NEW_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {NEW_SIGNATURE} TO {system}")

    op.execute(
        f"""
        CREATE FUNCTION tenant_name_taken(p_term text) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            SELECT EXISTS (
                SELECT 1 FROM public.tenants t
                WHERE t.id IS DISTINCT FROM {CURRENT_TENANT}
                  AND public.tenant_name_key(p_term) IN (
                      public.tenant_name_key(t.name), public.tenant_name_key(t.slug)
                  )
            ) OR EXISTS (
                SELECT 1 FROM public.tenant_aliases a
                WHERE a.tenant_id IS DISTINCT FROM {CURRENT_TENANT}
                  AND public.tenant_name_key(a.alias) = public.tenant_name_key(p_term)
            )
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION tenant_name_taken(text) FROM PUBLIC")
    # The command line (system role) creates tenants with aliases too.
    op.execute(f"GRANT EXECUTE ON FUNCTION tenant_name_taken(text) TO {app}, {system}")

    op.execute("DROP FUNCTION shared_finding_scrub_names(uuid)")
    op.execute(SCRUB_NAMES)
    op.execute("REVOKE ALL ON FUNCTION shared_finding_scrub_names(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION shared_finding_scrub_names(uuid) TO {app}")
    op.execute(CONTRIBUTOR_NAMES)
    op.execute("REVOKE ALL ON FUNCTION shared_finding_contributor_names(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION shared_finding_contributor_names(uuid) TO {app}")


def downgrade() -> None:
    app, system = migration_role("app"), migration_role("system")
    op.execute(f"DROP FUNCTION {NEW_SIGNATURE}")
    op.execute(OLD_CREATE_TENANT)
    op.execute(f"REVOKE ALL ON FUNCTION {OLD_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {OLD_SIGNATURE} TO {system}")
    op.execute("DROP FUNCTION shared_finding_contributor_names(uuid)")
    op.execute("DROP FUNCTION shared_finding_scrub_names(uuid)")
    op.execute(OLD_SCRUB_NAMES)
    op.execute("REVOKE ALL ON FUNCTION shared_finding_scrub_names(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION shared_finding_scrub_names(uuid) TO {app}")
    op.execute("DROP FUNCTION tenant_name_taken(text)")
    op.execute("DROP TABLE tenant_aliases")
    op.execute("DROP FUNCTION tenant_name_key(text)")
    op.execute(f"REVOKE UPDATE ON tenants FROM {app}")
    op.execute(f"GRANT UPDATE ON tenants TO {app}")
    op.execute("ALTER TABLE tenants DROP COLUMN working_hours, DROP COLUMN country")
