"""Working groups (members, invitations), the supplier registry with private links, findings.

Revision ID: 0003_groups_suppliers_findings
Revises: 0002_identity

Group visibility goes through one STABLE SECURITY DEFINER function, `wg_group_role(group_id)`:
the caller tenant's active role in the group, or NULL. Its lookup is one probe of the membership
primary key. Policies that call it apply to the app role only, so the function (running as the
owner, who may read memberships through `owner_lookup`) never recurses into them.
"""

from alembic import op

from wg_api.platform.rls import (
    CURRENT_TENANT,
    TENANT_PREDICATE,
    migration_role,
    tenant_rls_statements,
)

revision = "0003_groups_suppliers_findings"
down_revision = "0002_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    app, owner = migration_role("app"), migration_role("owner")

    op.execute(
        """
        CREATE TABLE working_groups (
            id uuid PRIMARY KEY,
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            description text CHECK (length(description) <= 5000),
            timezone text NOT NULL DEFAULT 'Asia/Hong_Kong',
            anonymity_threshold int NOT NULL DEFAULT 3 CHECK (anonymity_threshold >= 3),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE working_group_members (
            group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            role text NOT NULL CHECK (role IN ('facilitator', 'member', 'observer')),
            status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'left', 'removed')),
            joined_at timestamptz NOT NULL DEFAULT now(),
            left_at timestamptz,
            PRIMARY KEY (group_id, tenant_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX working_group_members_tenant ON working_group_members (tenant_id, status)"
    )
    op.execute(
        f"""
        CREATE FUNCTION wg_group_role(p_group uuid) RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
            SELECT m.role FROM public.working_group_members m
            WHERE m.group_id = p_group AND m.tenant_id = {CURRENT_TENANT} AND m.status = 'active'
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION wg_group_role(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION wg_group_role(uuid) TO {app}")

    for statement in tenant_rls_statements("working_group_members"):
        op.execute(statement)
    op.execute(
        f"CREATE POLICY owner_lookup ON working_group_members FOR SELECT TO {owner} USING (true)"
    )
    op.execute(
        f"CREATE POLICY co_members ON working_group_members FOR SELECT TO {app} "
        "USING (wg_group_role(group_id) IS NOT NULL)"
    )
    op.execute(
        f"CREATE POLICY facilitator_manage ON working_group_members FOR UPDATE TO {app} "
        "USING (wg_group_role(group_id) = 'facilitator') "
        "WITH CHECK (wg_group_role(group_id) = 'facilitator')"
    )

    # RLS lets a tenant write its own membership row; this trigger says which writes are legal, so
    # nobody joins without an invitation (or by creating the group) or promotes itself.
    op.execute(
        f"""
        CREATE FUNCTION wg_membership_guard() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        DECLARE
            caller uuid := {CURRENT_TENANT};
            caller_role text := wg_group_role(NEW.group_id);
            invited boolean;
        BEGIN
            IF caller IS NULL THEN
                RETURN NEW;  -- the system role (no tenant bound) seeds and repairs
            END IF;
            SELECT EXISTS (
                SELECT 1 FROM public.invitations i
                WHERE i.group_id = NEW.group_id AND i.tenant_id = NEW.tenant_id
                  AND i.status = 'pending' AND i.role = NEW.role
            ) INTO invited;
            IF TG_OP = 'INSERT' THEN
                IF NEW.tenant_id <> caller OR NEW.status <> 'active' THEN
                    RAISE EXCEPTION 'a tenant can only join a group itself' USING ERRCODE = '42501';
                END IF;
                IF NOT invited AND NOT (
                    NEW.role = 'facilitator'
                    AND NOT EXISTS (SELECT 1 FROM public.working_group_members m
                                    WHERE m.group_id = NEW.group_id)
                ) THEN
                    RAISE EXCEPTION 'joining needs an invitation' USING ERRCODE = '42501';
                END IF;
                RETURN NEW;
            END IF;
            -- Only the invited tenant itself takes up an invitation: nobody is rejoined for it.
            invited := invited AND NEW.tenant_id = caller;
            IF NEW.role <> OLD.role AND caller_role IS DISTINCT FROM 'facilitator'
               AND NOT (OLD.status <> 'active' AND NEW.status = 'active' AND invited) THEN
                RAISE EXCEPTION 'only facilitators change roles' USING ERRCODE = '42501';
            END IF;
            IF NEW.status = 'active' AND OLD.status <> 'active' AND NOT invited THEN
                RAISE EXCEPTION 'rejoining needs an invitation' USING ERRCODE = '42501';
            END IF;
            IF NEW.status = 'removed' AND caller_role IS DISTINCT FROM 'facilitator' THEN
                RAISE EXCEPTION 'only facilitators remove members' USING ERRCODE = '42501';
            END IF;
            IF NEW.status = 'left' AND NEW.tenant_id <> caller THEN
                RAISE EXCEPTION 'only the member itself leaves' USING ERRCODE = '42501';
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER membership_guard BEFORE INSERT OR UPDATE ON working_group_members "
        "FOR EACH ROW EXECUTE FUNCTION wg_membership_guard()"
    )
    # Leaving and removal are status changes; a deleted row would erase the history and could
    # leave a group with no members at all, which the guard treats as claimable by its creator.
    op.execute(f"REVOKE UPDATE, DELETE ON working_group_members FROM {app}")
    op.execute(f"GRANT UPDATE (role, status, left_at, joined_at) ON working_group_members TO {app}")

    op.execute("ALTER TABLE working_groups ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE working_groups FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY members_read ON working_groups FOR SELECT TO {app} "
        "USING (wg_group_role(id) IS NOT NULL)"
    )
    # A group is created first, then its first (facilitator) membership, in one transaction.
    op.execute(
        f"CREATE POLICY anyone_creates ON working_groups FOR INSERT TO {app} WITH CHECK (true)"
    )
    op.execute(
        f"CREATE POLICY facilitators_change ON working_groups FOR UPDATE TO {app} "
        "USING (wg_group_role(id) = 'facilitator') WITH CHECK (wg_group_role(id) = 'facilitator')"
    )
    op.execute(f"CREATE POLICY owner_lookup ON working_groups FOR SELECT TO {owner} USING (true)")

    op.execute(
        """
        CREATE TABLE invitations (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            role text NOT NULL CHECK (role IN ('facilitator', 'member', 'observer')),
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'accepted', 'declined', 'revoked')),
            created_at timestamptz NOT NULL DEFAULT now(),
            responded_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX invitations_tenant ON invitations (tenant_id, created_at, id)")
    op.execute("CREATE INDEX invitations_group ON invitations (group_id, created_at, id)")
    op.execute(
        "CREATE UNIQUE INDEX invitations_one_pending ON invitations (group_id, tenant_id) "
        "WHERE status = 'pending'"
    )
    # The invitee reads and answers its invitations but never writes one: an invitation it could
    # insert for itself would let it join any group, in any role, through the membership guard.
    op.execute("ALTER TABLE invitations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE invitations FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON invitations FOR SELECT USING ({TENANT_PREDICATE})"
    )
    op.execute(
        f"CREATE POLICY invitee_answers ON invitations FOR UPDATE USING ({TENANT_PREDICATE}) "
        f"WITH CHECK ({TENANT_PREDICATE})"
    )
    op.execute(
        f"CREATE POLICY facilitators_invite ON invitations FOR ALL TO {app} "
        "USING (wg_group_role(group_id) = 'facilitator') "
        "WITH CHECK (wg_group_role(group_id) = 'facilitator')"
    )
    op.execute(f"CREATE POLICY owner_lookup ON invitations FOR SELECT TO {owner} USING (true)")
    # Invitees answer (status), facilitators revoke (status); nothing else of an invitation changes.
    op.execute(f"REVOKE UPDATE ON invitations FROM {app}")
    op.execute(f"GRANT UPDATE (status, responded_at) ON invitations TO {app}")
    # An answer is final: a declined, revoked or accepted invitation never becomes pending again.
    op.execute(
        f"""
        CREATE FUNCTION wg_invitation_guard() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        DECLARE
            caller uuid := {CURRENT_TENANT};
        BEGIN
            IF caller IS NULL THEN
                RETURN NEW;
            END IF;
            IF TG_OP = 'INSERT' THEN
                IF NEW.status <> 'pending' THEN
                    RAISE EXCEPTION 'an invitation starts pending' USING ERRCODE = '42501';
                END IF;
                RETURN NEW;
            END IF;
            IF NEW.status IS NOT DISTINCT FROM OLD.status THEN
                RETURN NEW;
            END IF;
            IF OLD.status <> 'pending' THEN
                RAISE EXCEPTION 'an answered invitation is final' USING ERRCODE = '42501';
            END IF;
            IF NEW.status IN ('accepted', 'declined') AND NEW.tenant_id <> caller THEN
                RAISE EXCEPTION 'only the invited tenant answers' USING ERRCODE = '42501';
            END IF;
            IF NEW.status = 'revoked' AND wg_group_role(NEW.group_id) IS DISTINCT FROM 'facilitator'
            THEN
                RAISE EXCEPTION 'only facilitators revoke' USING ERRCODE = '42501';
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER invitation_guard BEFORE INSERT OR UPDATE ON invitations "
        "FOR EACH ROW EXECUTE FUNCTION wg_invitation_guard()"
    )
    # The invitee is not a member yet, so RLS hides the group; it may still learn the group's name.
    op.execute(
        f"""
        CREATE FUNCTION wg_invited_group_name(p_group uuid) RETURNS text
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
            SELECT g.name FROM public.working_groups g
            WHERE g.id = p_group AND EXISTS (
                SELECT 1 FROM public.invitations i
                WHERE i.group_id = p_group AND i.tenant_id = {CURRENT_TENANT}
            )
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION wg_invited_group_name(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION wg_invited_group_name(uuid) TO {app}")

    # Events other members must learn (a member joined, a finding was shared) are written through
    # these functions only; they check the caller's right to speak to those tenants.
    op.execute(f"CREATE POLICY owner_publish ON events FOR INSERT TO {owner} WITH CHECK (true)")
    op.execute(
        f"""
        CREATE FUNCTION publish_group_event(p_group uuid, p_type text, p_data jsonb,
                                            p_include_self boolean)
        RETURNS int
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        DECLARE
            caller uuid := {CURRENT_TENANT};
            published int;
        BEGIN
            -- Active members speak to the group; a former member only to withdraw what it shared.
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
    )
    op.execute(
        f"""
        CREATE FUNCTION publish_invitation_event(p_invitation uuid, p_type text, p_data jsonb)
        RETURNS void
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        DECLARE
            invitee uuid;
        BEGIN
            SELECT i.tenant_id INTO invitee FROM public.invitations i
            JOIN public.working_group_members m
              ON m.group_id = i.group_id AND m.tenant_id = {CURRENT_TENANT}
             AND m.status = 'active' AND m.role = 'facilitator'
            WHERE i.id = p_invitation;
            IF invitee IS NULL THEN
                RAISE EXCEPTION 'not a facilitator of that group' USING ERRCODE = '42501';
            END IF;
            INSERT INTO public.events (tenant_id, type, data) VALUES (invitee, p_type, p_data);
        END
        $$
        """
    )
    # The invitee is not a member, so it tells the group's facilitators its answer through this.
    op.execute(
        f"""
        CREATE FUNCTION publish_invitation_answer(p_invitation uuid, p_type text, p_data jsonb)
        RETURNS int
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        DECLARE
            answered_group uuid;
            published int;
        BEGIN
            SELECT i.group_id INTO answered_group FROM public.invitations i
            WHERE i.id = p_invitation AND i.tenant_id = {CURRENT_TENANT} AND i.status <> 'pending';
            IF answered_group IS NULL THEN
                RAISE EXCEPTION 'not an answered invitation of yours' USING ERRCODE = '42501';
            END IF;
            INSERT INTO public.events (tenant_id, type, data)
            SELECT m.tenant_id, p_type, p_data FROM public.working_group_members m
            WHERE m.group_id = answered_group AND m.status = 'active' AND m.role = 'facilitator';
            GET DIAGNOSTICS published = ROW_COUNT;
            RETURN published;
        END
        $$
        """
    )
    for function in (
        "publish_group_event(uuid, text, jsonb, boolean)",
        "publish_invitation_event(uuid, text, jsonb)",
        "publish_invitation_answer(uuid, text, jsonb)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app}")

    # The common supplier registry: canonical fields only, nothing about who links to what.
    op.execute(
        """
        CREATE TABLE suppliers (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
            local_name text CHECK (length(local_name) <= 300),
            address text NOT NULL CHECK (length(address) BETWEEN 1 AND 500),
            country char(2) NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
            province text CHECK (length(province) <= 100),
            city text CHECK (length(city) <= 100),
            sector text CHECK (length(sector) <= 100),
            os_id text UNIQUE CHECK (os_id ~ '^[A-Z]{2}[0-9]{7}[A-Z0-9]{6}$'),
            match_key text NOT NULL UNIQUE,
            match_name text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE INDEX suppliers_match_name_trgm ON suppliers USING gin (match_name gin_trgm_ops)"
    )
    op.execute("CREATE INDEX suppliers_country_name ON suppliers (country, name, id)")
    op.execute("CREATE INDEX suppliers_name ON suppliers (name, id)")

    op.execute(
        """
        CREATE TABLE supplier_links (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            supplier_id uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
            internal_code text CHECK (length(internal_code) BETWEEN 1 AND 100),
            created_at timestamptz NOT NULL DEFAULT now(),
            supplier_name text NOT NULL,
            PRIMARY KEY (tenant_id, supplier_id)
        )
        """
    )
    # A tenant's supplier list is ordered by name: keeping the name on the link makes each page
    # one index range, instead of a probe of the registry per link. Triggers keep it true.
    op.execute(
        "CREATE INDEX supplier_links_by_name "
        "ON supplier_links (tenant_id, supplier_name, supplier_id)"
    )
    op.execute(
        """
        CREATE FUNCTION supplier_links_fill_name() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, public
        AS $$
        BEGIN
            NEW.supplier_name := (
                SELECT s.name FROM public.suppliers s WHERE s.id = NEW.supplier_id
            );
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER fill_name BEFORE INSERT OR UPDATE OF supplier_id ON supplier_links "
        "FOR EACH ROW EXECUTE FUNCTION supplier_links_fill_name()"
    )
    op.execute(
        """
        CREATE FUNCTION suppliers_rename_links() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        BEGIN
            UPDATE public.supplier_links SET supplier_name = NEW.name
            WHERE supplier_id = NEW.id;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER rename_links AFTER UPDATE OF name ON suppliers "
        "FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) "
        "EXECUTE FUNCTION suppliers_rename_links()"
    )
    op.execute(
        "CREATE UNIQUE INDEX supplier_links_internal_code "
        "ON supplier_links (tenant_id, internal_code) WHERE internal_code IS NOT NULL"
    )
    for statement in tenant_rls_statements("supplier_links"):
        op.execute(statement)
    op.execute(
        f"CREATE POLICY owner_rename ON supplier_links FOR ALL TO {owner} USING (true) "
        "WITH CHECK (true)"
    )

    op.execute(
        """
        CREATE TABLE findings (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            supplier_id uuid NOT NULL REFERENCES suppliers (id),
            external_id text CHECK (length(external_id) BETWEEN 1 AND 200),
            kind text NOT NULL CHECK (kind IN ('non_compliance', 'observation', 'good_practice')),
            area text NOT NULL,
            severity text CHECK (severity IN ('zero_tolerance', 'critical', 'major', 'minor')),
            basis text CHECK (basis IN ('legal', 'code')),
            title text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
            description text NOT NULL CHECK (length(description) <= 10000),
            observed_on date NOT NULL,
            source_scheme text NOT NULL,
            source_reference text,
            status text NOT NULL,
            affected_workers int CHECK (affected_workers >= 0),
            cap jsonb,
            child_labour_case jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CHECK ((kind = 'non_compliance') = (severity IS NOT NULL))
        )
        """
    )
    op.execute(
        "CREATE INDEX findings_tenant_observed ON findings (tenant_id, observed_on DESC, id DESC)"
    )
    op.execute("CREATE INDEX findings_tenant_supplier ON findings (tenant_id, supplier_id)")
    op.execute("CREATE INDEX findings_tenant_updated ON findings (tenant_id, updated_at)")
    op.execute(
        "CREATE UNIQUE INDEX findings_tenant_external_id ON findings (tenant_id, external_id) "
        "WHERE external_id IS NOT NULL"
    )
    for statement in tenant_rls_statements("findings"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE findings")
    op.execute("DROP TABLE supplier_links")
    op.execute("DROP TABLE suppliers")
    op.execute("DROP FUNCTION suppliers_rename_links()")
    op.execute("DROP FUNCTION supplier_links_fill_name()")
    op.execute("DROP FUNCTION publish_invitation_answer(uuid, text, jsonb)")
    op.execute("DROP FUNCTION publish_invitation_event(uuid, text, jsonb)")
    op.execute("DROP FUNCTION publish_group_event(uuid, text, jsonb, boolean)")
    op.execute("DROP POLICY owner_publish ON events")
    op.execute("DROP FUNCTION wg_invited_group_name(uuid)")
    op.execute("DROP TABLE invitations")
    op.execute("DROP FUNCTION wg_invitation_guard()")
    op.execute("DROP TABLE working_group_members CASCADE")
    op.execute("DROP FUNCTION wg_membership_guard()")
    op.execute("DROP TABLE working_groups CASCADE")
    op.execute("DROP FUNCTION wg_group_role(uuid)")
