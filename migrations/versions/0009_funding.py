"""Joint funding: initiatives, pledges, payments, expenses, a double-entry ledger, indicators.

Revision ID: 0009_funding
Revises: 0008_least_privilege

Every table is under forced RLS through the group role function `wg_group_role`: facilitators see
everything of their group's initiatives; other members see initiatives that are not drafts, their
expenses, indicators and results, their own pledges and payments, and other tenants' only under
`open` visibility. Aggregates of other tenants' money leave the database only through
`initiative_funding()` and `initiative_funder_lines()` (SECURITY DEFINER), which apply the
three-funder rule of `totals_only` themselves. The ledger is append-only for the app role (INSERT
and SELECT grants only) and a deferred constraint trigger refuses, at commit, any booking whose
debits and credits differ. Members commit pledges but never write an initiative: the lock taken
while committing and the automatic `open -> funded` move are two owner-run functions.
"""

from alembic import op

from wg_api.platform.rls import CURRENT_TENANT, migration_role

revision = "0009_funding"
down_revision = "0008_least_privilege"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"


# Policies test a row's group against the caller's groups computed once per statement (an
# InitPlan array, also usable as an index condition), never with a function call per row.
def _groups(roles: str) -> str:
    return f"working_group_id = ANY (ARRAY(SELECT wg_member_groups({roles})))"


MEMBER = _groups("NULL")
FACILITATES = _groups("'{facilitator}'")
MAY_PLEDGE = _groups("'{facilitator,member}'")
# The initiative is one the caller may read (RLS on initiatives: drafts are facilitators' only).
INITIATIVE_VISIBLE = "initiative_id = ANY (ARRAY(SELECT i.id FROM initiatives i))"
OPEN_VISIBILITY = (
    "initiative_id = ANY (ARRAY(SELECT i.id FROM initiatives i WHERE i.pledge_visibility = 'open'))"
)
# A funder's money: its own, the facilitators', or every member's under `open` visibility.
FUNDER_ROWS = f"tenant_id = {CURRENT_TENANT} OR {FACILITATES} OR {OPEN_VISIBILITY}"
AMOUNT = "bigint NOT NULL CHECK ({0} > 0 AND {0} < 1000000000000000)"
CURRENCY = "char(3) NOT NULL CHECK ({0} ~ '^[A-Z]{{3}}$')"
RATE = "numeric CHECK ({0} > 0)"

TABLES = (
    "initiatives",
    "pledges",
    "payments",
    "expenses",
    "ledger_bookings",
    "ledger_entries",
    "indicators",
    "indicator_results",
)


def upgrade() -> None:
    app, owner, system = migration_role("app"), migration_role("owner"), migration_role("system")

    op.execute(
        f"""
        CREATE TABLE initiatives (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            working_group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
            title text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
            description text CHECK (length(description) <= 10000),
            currency {CURRENCY.format("currency")},
            budget {AMOUNT.format("budget")},
            funding_target {AMOUNT.format("funding_target")},
            starts_on date NOT NULL,
            ends_on date NOT NULL CHECK (ends_on >= starts_on),
            pledge_visibility text NOT NULL DEFAULT 'totals_only'
                CHECK (pledge_visibility IN ('open', 'totals_only')),
            status text NOT NULL DEFAULT 'draft' CHECK (status IN
                ('draft', 'open', 'funded', 'active', 'completed', 'cancelled')),
            funded_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (id, working_group_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX initiatives_group ON initiatives (working_group_id, created_at DESC, id DESC)"
    )

    op.execute(
        f"""
        CREATE TABLE pledges (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            working_group_id uuid NOT NULL,
            initiative_id uuid NOT NULL,
            amount {AMOUNT.format("amount")},
            currency {CURRENCY.format("currency")},
            fx_rate {RATE.format("fx_rate")},
            amount_in_initiative_currency bigint NOT NULL
                CHECK (amount_in_initiative_currency >= 0),
            status text NOT NULL DEFAULT 'offered' CHECK (status IN
                ('offered', 'committed', 'partially_paid', 'fulfilled', 'withdrawn')),
            paid bigint NOT NULL DEFAULT 0 CHECK (paid >= 0 AND paid <= amount),
            note text CHECK (length(note) <= 2000),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (initiative_id, working_group_id)
                REFERENCES initiatives (id, working_group_id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX pledges_initiative ON pledges (initiative_id, created_at, id)")
    op.execute("CREATE INDEX pledges_tenant ON pledges (tenant_id, initiative_id)")

    op.execute(
        f"""
        CREATE TABLE payments (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants (id),
            working_group_id uuid NOT NULL,
            initiative_id uuid NOT NULL,
            pledge_id uuid NOT NULL REFERENCES pledges (id) ON DELETE CASCADE,
            amount {AMOUNT.format("amount")},
            currency {CURRENCY.format("currency")},
            fx_rate {RATE.format("fx_rate")},
            amount_in_initiative_currency bigint NOT NULL
                CHECK (amount_in_initiative_currency >= 0),
            received_on date NOT NULL,
            reference text CHECK (length(reference) <= 200),
            created_at timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (initiative_id, working_group_id)
                REFERENCES initiatives (id, working_group_id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX payments_pledge ON payments (pledge_id, created_at)")

    op.execute(
        f"""
        CREATE TABLE expenses (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            working_group_id uuid NOT NULL,
            initiative_id uuid NOT NULL,
            description text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
            category text NOT NULL CHECK (length(category) BETWEEN 1 AND 100),
            amount {AMOUNT.format("amount")},
            currency {CURRENCY.format("currency")},
            fx_rate {RATE.format("fx_rate")},
            amount_in_initiative_currency bigint NOT NULL
                CHECK (amount_in_initiative_currency >= 0),
            incurred_on date NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (initiative_id, working_group_id)
                REFERENCES initiatives (id, working_group_id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX expenses_initiative ON expenses (initiative_id, created_at, id)")

    # A booking is one event in the books; its entries move money between the initiative's
    # accounts. tenant_id names the funder of a payment (NULL for expenses): it decides who reads.
    op.execute(
        f"""
        CREATE TABLE ledger_bookings (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            working_group_id uuid NOT NULL,
            initiative_id uuid NOT NULL,
            tenant_id uuid,
            kind text NOT NULL CHECK (kind IN ('payment', 'expense', 'reversal')),
            description text NOT NULL,
            booked_at timestamptz NOT NULL DEFAULT now(),
            payment_id uuid REFERENCES payments (id) ON DELETE CASCADE,
            expense_id uuid REFERENCES expenses (id) ON DELETE CASCADE,
            reverses uuid UNIQUE REFERENCES ledger_bookings (id) ON DELETE CASCADE,
            original_amount bigint,
            original_currency char(3),
            fx_rate {RATE.format("fx_rate")},
            CHECK ((kind = 'payment') = (payment_id IS NOT NULL)),
            CHECK ((kind = 'expense') = (expense_id IS NOT NULL)),
            CHECK ((kind = 'reversal') = (reverses IS NOT NULL)),
            CHECK ((original_amount IS NULL) = (original_currency IS NULL)),
            FOREIGN KEY (initiative_id, working_group_id)
                REFERENCES initiatives (id, working_group_id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        "CREATE INDEX ledger_bookings_initiative ON ledger_bookings (initiative_id, booked_at, seq)"
    )
    op.execute(
        """
        CREATE TABLE ledger_entries (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            booking_id uuid NOT NULL REFERENCES ledger_bookings (id) ON DELETE CASCADE,
            working_group_id uuid NOT NULL,
            initiative_id uuid NOT NULL,
            tenant_id uuid,
            account text NOT NULL CHECK (account IN ('cash', 'contributions', 'expenses')),
            debit bigint NOT NULL DEFAULT 0 CHECK (debit >= 0),
            credit bigint NOT NULL DEFAULT 0 CHECK (credit >= 0),
            currency char(3) NOT NULL,
            CHECK ((debit > 0) <> (credit > 0))
        )
        """
    )
    op.execute("CREATE INDEX ledger_entries_booking ON ledger_entries (booking_id, account)")
    op.execute(
        "CREATE INDEX ledger_entries_initiative ON ledger_entries (initiative_id, account) "
        "INCLUDE (booking_id, debit, credit)"
    )
    op.execute(
        f"""
        CREATE FUNCTION ledger_booking_balances() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
        DECLARE
            booking uuid;
            debits numeric;
            credits numeric;
            lines int;
        BEGIN
            IF TG_TABLE_NAME = 'ledger_bookings' THEN
                booking := NEW.id;
            ELSE
                booking := NEW.booking_id;
            END IF;
            SELECT coalesce(sum(e.debit), 0), coalesce(sum(e.credit), 0), count(*)
            INTO debits, credits, lines
            FROM public.ledger_entries e WHERE e.booking_id = booking;
            IF lines < 2 OR debits <> credits THEN
                RAISE EXCEPTION 'ledger booking % does not balance: debits %, credits %',
                    booking, debits, credits USING ERRCODE = '23514';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for table in ("ledger_bookings", "ledger_entries"):
        op.execute(
            f"CREATE CONSTRAINT TRIGGER balanced AFTER INSERT ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_booking_balances()"
        )

    op.execute(
        """
        CREATE TABLE indicators (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            working_group_id uuid NOT NULL,
            initiative_id uuid NOT NULL,
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
            unit text NOT NULL CHECK (length(unit) BETWEEN 1 AND 100),
            baseline bigint NOT NULL,
            target bigint NOT NULL,
            breakdown text[],
            created_at timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (initiative_id, working_group_id)
                REFERENCES initiatives (id, working_group_id) ON DELETE CASCADE
        )
        """
    )
    op.execute("CREATE INDEX indicators_initiative ON indicators (initiative_id, created_at, id)")
    op.execute(
        """
        CREATE TABLE indicator_results (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            working_group_id uuid NOT NULL,
            initiative_id uuid NOT NULL,
            indicator_id uuid NOT NULL REFERENCES indicators (id) ON DELETE CASCADE,
            period_start date NOT NULL,
            period_end date NOT NULL CHECK (period_end >= period_start),
            value bigint NOT NULL,
            breakdown jsonb,
            note text CHECK (length(note) <= 2000),
            created_at timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (initiative_id, working_group_id)
                REFERENCES initiatives (id, working_group_id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        "CREATE INDEX indicator_results_indicator "
        "ON indicator_results (indicator_id, period_start, id)"
    )

    op.execute(
        f"""
        CREATE FUNCTION wg_member_groups(p_roles text[]) RETURNS SETOF uuid
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            SELECT m.group_id FROM public.working_group_members m
            WHERE m.tenant_id = {CURRENT_TENANT} AND m.status = 'active'
              AND (p_roles IS NULL OR m.role = ANY (p_roles))
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION wg_member_groups(text[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION wg_member_groups(text[]) TO {app}")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY owner_lookup ON {table} FOR SELECT TO {owner} USING (true)")

    op.execute(
        f"CREATE POLICY members_read ON initiatives FOR SELECT TO {app} "
        f"USING ({FACILITATES} OR (status <> 'draft' AND {MEMBER}))"
    )
    op.execute(
        f"CREATE POLICY facilitators_write ON initiatives FOR INSERT TO {app} "
        f"WITH CHECK ({FACILITATES})"
    )
    op.execute(
        f"CREATE POLICY facilitators_change ON initiatives FOR UPDATE TO {app} "
        f"USING ({FACILITATES}) WITH CHECK ({FACILITATES})"
    )
    op.execute(f"CREATE POLICY owner_change ON initiatives FOR UPDATE TO {owner} USING (true)")

    op.execute(f"CREATE POLICY funders_read ON pledges FOR SELECT TO {app} USING ({FUNDER_ROWS})")
    op.execute(
        f"CREATE POLICY pledgers_write ON pledges FOR INSERT TO {app} "
        f"WITH CHECK (tenant_id = {CURRENT_TENANT} AND {MAY_PLEDGE} AND {INITIATIVE_VISIBLE})"
    )
    op.execute(
        f"CREATE POLICY pledger_or_facilitator ON pledges FOR UPDATE TO {app} "
        f"USING (tenant_id = {CURRENT_TENANT} OR {FACILITATES}) "
        f"WITH CHECK (tenant_id = {CURRENT_TENANT} OR {FACILITATES})"
    )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON pledges FROM {app}")
    # Initiatives are cancelled, never deleted.
    op.execute(f"REVOKE DELETE, TRUNCATE ON initiatives FROM {app}")
    op.execute(f"GRANT UPDATE (status, paid, updated_at) ON pledges TO {app}")

    op.execute(f"CREATE POLICY funders_read ON payments FOR SELECT TO {app} USING ({FUNDER_ROWS})")
    # Expenses (no funder) are every member's to read; payments follow the funder's rule.
    for table in ("ledger_bookings", "ledger_entries"):
        op.execute(
            f"CREATE POLICY members_read ON {table} FOR SELECT TO {app} "
            f"USING ({MEMBER} AND (tenant_id IS NULL OR {FUNDER_ROWS}))"
        )
    for table in ("expenses", "indicators", "indicator_results"):
        op.execute(
            f"CREATE POLICY members_read ON {table} FOR SELECT TO {app} "
            f"USING ({MEMBER} AND {INITIATIVE_VISIBLE})"
        )
    # Money and outcomes are recorded by facilitators, and never changed: a correction is a new
    # record (in the ledger, a reversing booking).
    for table in TABLES[2:]:
        op.execute(
            f"CREATE POLICY facilitators_write ON {table} FOR INSERT TO {app} "
            f"WITH CHECK ({FACILITATES})"
        )
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {app}, {system}")

    # Outgoing money of a booking is the cash account's credit; incoming its debit.
    op.execute(
        f"""
        CREATE FUNCTION initiative_funder_lines(p_initiative uuid)
        RETURNS TABLE (booked_at timestamptz, amount bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            WITH cash AS (
                SELECT b.tenant_id, b.kind, b.booked_at, e.debit - e.credit AS amount,
                       date_trunc('month', b.booked_at AT TIME ZONE 'UTC') AS month
                FROM public.ledger_bookings b
                JOIN public.ledger_entries e ON e.booking_id = b.id AND e.account = 'cash'
                 AND e.initiative_id = p_initiative
                WHERE b.initiative_id = p_initiative AND b.tenant_id IS NOT NULL
                  AND EXISTS (SELECT 1 FROM public.initiatives i WHERE i.id = p_initiative
                              AND wg_group_role(i.working_group_id) IS NOT NULL)
            ),
            months AS (
                SELECT month, sum(amount) AS amount,
                       count(DISTINCT tenant_id) FILTER (WHERE kind = 'payment') AS tenants,
                       max(booked_at) FILTER (WHERE kind = 'payment') AS last_payment
                FROM cash GROUP BY month
            ),
            running AS (
                SELECT month, tenants, last_payment,
                       sum(amount) OVER (ORDER BY month) AS carried
                FROM months
            ),
            released AS (
                SELECT last_payment,
                       carried - coalesce(lag(carried) OVER (ORDER BY month), 0) AS amount
                FROM running WHERE tenants >= 3
            )
            SELECT last_payment, amount::bigint FROM released ORDER BY last_payment
        $$
        """
    )
    # The funding block: other tenants' money only as aggregates of at least three funders
    # for a member who is not a facilitator of a `totals_only` initiative (then NULL).
    op.execute(
        f"""
        CREATE FUNCTION initiative_funding(p_initiative uuid)
        RETURNS TABLE (committed bigint, funders int, paid bigint, spent bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            WITH initiative AS (
                SELECT i.id, i.pledge_visibility = 'totals_only'
                       AND wg_group_role(i.working_group_id) IS DISTINCT FROM 'facilitator'
                       AS restricted
                FROM public.initiatives i
                WHERE i.id = p_initiative AND (
                    wg_group_role(i.working_group_id) = 'facilitator'
                    OR (i.status <> 'draft' AND wg_group_role(i.working_group_id) IS NOT NULL))
            ),
            pledged AS (
                SELECT coalesce(sum(p.amount_in_initiative_currency), 0)::bigint AS committed,
                       count(DISTINCT p.tenant_id)::int AS funders
                FROM public.pledges p
                WHERE p.initiative_id = p_initiative
                  AND p.status IN ('committed', 'partially_paid', 'fulfilled')
            ),
            cash AS (
                SELECT coalesce(sum(e.debit - e.credit)
                                FILTER (WHERE b.tenant_id IS NOT NULL), 0)::bigint AS paid,
                       coalesce(sum(e.debit - e.credit)
                                FILTER (WHERE b.tenant_id IS NULL), 0)::bigint AS spent
                FROM public.ledger_bookings b
                JOIN public.ledger_entries e ON e.booking_id = b.id AND e.account = 'cash'
                 AND e.initiative_id = p_initiative
                WHERE b.initiative_id = p_initiative
            ),
            released AS (
                SELECT sum(l.amount)::bigint AS paid FROM initiative_funder_lines(p_initiative) l
            )
            SELECT CASE WHEN i.restricted AND pledged.funders < 3 THEN NULL
                        ELSE pledged.committed END,
                   CASE WHEN i.restricted AND pledged.funders < 3 THEN NULL
                        ELSE pledged.funders END,
                   CASE WHEN i.restricted THEN (SELECT paid FROM released) ELSE cash.paid END,
                   cash.spent
            FROM initiative i, pledged, cash
        $$
        """
    )
    # Committing and withdrawing pledges serialise on the initiative's row; members lock it here.
    op.execute(
        f"""
        CREATE FUNCTION lock_initiative(p_initiative uuid) RETURNS text
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            SELECT i.status FROM public.initiatives i
            WHERE i.id = p_initiative AND i.status <> 'draft'
              AND wg_group_role(i.working_group_id) IN ('facilitator', 'member')
            FOR UPDATE
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION initiative_mark_funded(p_initiative uuid) RETURNS boolean
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
            WITH moved AS (
                UPDATE public.initiatives i
                SET status = 'funded', funded_at = now(), updated_at = now()
                WHERE i.id = p_initiative AND i.status = 'open'
                  AND wg_group_role(i.working_group_id) IN ('facilitator', 'member')
                  AND (SELECT coalesce(sum(p.amount_in_initiative_currency), 0)
                       FROM public.pledges p WHERE p.initiative_id = i.id
                         AND p.status IN ('committed', 'partially_paid', 'fulfilled'))
                      >= i.funding_target
                RETURNING true
            )
            SELECT EXISTS (SELECT 1 FROM moved)
        $$
        """
    )
    # Pledge and payment events reach the pledging tenant and the group's facilitators only.
    op.execute(
        f"""
        CREATE FUNCTION publish_pledge_event(p_pledge uuid, p_type text, p_data jsonb)
        RETURNS int
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SEARCH_PATH}
        AS $$
        DECLARE
            caller uuid := {CURRENT_TENANT};
            pledger uuid;
            pledge_group uuid;
            published int;
        BEGIN
            SELECT p.tenant_id, p.working_group_id INTO pledger, pledge_group
            FROM public.pledges p WHERE p.id = p_pledge;
            IF pledger IS NULL OR caller IS NULL OR NOT (
                (caller = pledger AND wg_group_role(pledge_group) IS NOT NULL)
                OR wg_group_role(pledge_group) = 'facilitator'
            ) THEN
                RAISE EXCEPTION 'not the pledger or a facilitator' USING ERRCODE = '42501';
            END IF;
            INSERT INTO public.events (tenant_id, type, data)
            SELECT t.tenant_id, p_type, p_data FROM (
                SELECT pledger AS tenant_id
                UNION
                SELECT m.tenant_id FROM public.working_group_members m
                WHERE m.group_id = pledge_group AND m.status = 'active'
                  AND m.role = 'facilitator'
            ) t;
            GET DIAGNOSTICS published = ROW_COUNT;
            RETURN published;
        END
        $$
        """
    )
    for function in (
        "initiative_funder_lines(uuid)",
        "initiative_funding(uuid)",
        "lock_initiative(uuid)",
        "initiative_mark_funded(uuid)",
        "publish_pledge_event(uuid, text, jsonb)",
        "ledger_booking_balances()",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        if function != "ledger_booking_balances()":
            op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app}")


def downgrade() -> None:
    for function in (
        "publish_pledge_event(uuid, text, jsonb)",
        "initiative_mark_funded(uuid)",
        "lock_initiative(uuid)",
        "initiative_funding(uuid)",
        "initiative_funder_lines(uuid)",
    ):
        op.execute(f"DROP FUNCTION {function}")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE {table}")
    op.execute("DROP FUNCTION ledger_booking_balances()")
    op.execute("DROP FUNCTION wg_member_groups(text[])")
