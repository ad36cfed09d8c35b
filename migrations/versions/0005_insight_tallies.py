"""Insight tallies: what insights need of a group's shared findings, kept up to date as they change.

Revision ID: 0005_insight_tallies
Revises: 0004_sharing

Counting a million shared findings twice (per contributor, and distinct suppliers) on every
insights request takes half a second or more, whatever the indexes. The counts are kept instead, in
the same transaction as every change to `shared_findings` (a statement trigger with transition
tables), at the finest grain insights can group by (area, country, period, severity, kind):

- `insight_tallies`: how many findings each contributor has in each cell (about one row per cell
  and contributor, a tenth of the records in the bench set);
- `insight_supplier_bits`: which suppliers have findings in each cell, as bitmaps over the group's
  supplier numbers (`insight_suppliers`, handed out by `insight_groups`), in chunks of
  `CHUNK_BITS`, so that the distinct suppliers of any coarser cell are the bits of an OR.

Any grouping and any filter on the five dimensions rolls up from these. A filter on one supplier
reads that supplier's records themselves, which are few. Like `shared_findings.contributor`, the
tallies name contributors: neither the app role nor the worker's role has any privilege on them,
and only the SECURITY DEFINER functions below read or write them. This revision also pins every
SECURITY DEFINER function's search_path with pg_temp last, and floors the rounding of insights.
"""

import importlib.util
from pathlib import Path

from alembic import op

from wg_api.platform.rls import migration_role

revision = "0005_insight_tallies"
down_revision = "0004_sharing"
branch_labels = None
depends_on = None

INSIGHTS_SIGNATURE = "group_insights(uuid, text[], uuid, text, text, text, text, text, int)"
# Bits per bitmap row: a group of up to this many suppliers needs one row per cell.
CHUNK_BITS = 1024
ZERO = f"repeat('0', {CHUNK_BITS})::bit({CHUNK_BITS})"
# Seeds the hash of the transaction locks on cells, apart from other advisory locks' keys.
LOCK_SEED = 50_050
# A statement that touches more cells than this locks their groups instead.
MANY_CELLS = 64
# The cells a statement's changes touch, as lock keys.
CELLS_TO_LOCK = """
    cells AS (
        SELECT DISTINCT group_id,
               concat_ws('/', group_id, area, country, period, severity, kind) AS key
        FROM (%s) c
    )
"""
# Functions that run as the owner look names up in the catalog and public only (pg_temp last,
# so a caller's temporary objects can never stand in for them).
SEARCH_PATH = "pg_catalog, public, pg_temp"
CELL = "area, country, period, severity, kind"
# A shared finding as the tallies see it: severity '' where there is none (one cell either way).
PROJECTION = (
    "group_id, area, country::text AS country, observed_period AS period, "
    "coalesce(severity, '') AS severity, kind, contributor, supplier_id"
)
# The same inside a quoted SQL string.
PROJECTION_QUOTED = PROJECTION.replace("'", "''")

TABLES = f"""
    CREATE TABLE insight_tallies (
        group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
        area text NOT NULL,
        country text NOT NULL,
        period text NOT NULL,
        severity text NOT NULL,
        kind text NOT NULL,
        contributor uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        n int NOT NULL,  -- 0 or less only inside the statement that deletes it
        PRIMARY KEY (group_id, {CELL}, contributor)
    )
    ---
    CREATE TABLE insight_groups (
        group_id uuid PRIMARY KEY REFERENCES working_groups (id) ON DELETE CASCADE,
        suppliers_numbered int NOT NULL
    )
    ---
    CREATE TABLE insight_suppliers (
        group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
        supplier_id uuid NOT NULL REFERENCES suppliers (id) ON DELETE CASCADE,
        number int NOT NULL,
        PRIMARY KEY (group_id, supplier_id),
        UNIQUE (group_id, number)
    )
    ---
    CREATE TABLE insight_supplier_bits (
        group_id uuid NOT NULL REFERENCES working_groups (id) ON DELETE CASCADE,
        area text NOT NULL,
        country text NOT NULL,
        period text NOT NULL,
        severity text NOT NULL,
        kind text NOT NULL,
        chunk int NOT NULL,
        bits bit({CHUNK_BITS}) NOT NULL,
        PRIMARY KEY (group_id, {CELL}, chunk)
    )
"""
TABLE_NAMES = ("insight_tallies", "insight_groups", "insight_suppliers", "insight_supplier_bits")

# Applies the rows a statement added (d = 1) and removed (d = -1) to the tallies. Dynamic SQL,
# because each trigger has only the transition tables of its own event. Safe under concurrent
# changes: every cell a statement touches is locked first, in one order, for the rest of the
# transaction (or its whole group, when the statement touches many cells: a tenant's records
# going at once), so the tallies and bits of a cell change one transaction at a time, and the
# statement that looks for a supplier's other records in a cell sees every change before it.
FOLLOW = f"""
    CREATE FUNCTION insight_tallies_follow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $fn$
    DECLARE
        added text := 'SELECT {PROJECTION_QUOTED}, 1 AS d FROM new_rows';
        -- A group being deleted takes its tallies with it; nothing to count down.
        removed text := 'SELECT {PROJECTION_QUOTED}, -1 AS d FROM old_rows '
                        'WHERE group_id IN (SELECT id FROM public.working_groups)';
        changes text;
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            -- Most updates change text or status (a source edit, a supplier renamed): no record
            -- moved cell, supplier or contributor, so nothing to count.
            PERFORM FROM old_rows o JOIN new_rows n USING (id)
            WHERE (o.group_id, o.area, o.country, o.observed_period, o.severity, o.kind,
                   o.supplier_id, o.contributor)
                IS DISTINCT FROM (n.group_id, n.area, n.country, n.observed_period, n.severity,
                                  n.kind, n.supplier_id, n.contributor)
            LIMIT 1;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
        END IF;
        changes := CASE TG_OP WHEN 'INSERT' THEN added WHEN 'DELETE' THEN removed
                              ELSE added || ' UNION ALL ' || removed END;

        -- Locks: each group shared and its cells one by one, or, past {MANY_CELLS} cells in
        -- the statement, its groups exclusively (one transaction never holds thousands).
        EXECUTE format($q$
            WITH {CELLS_TO_LOCK}
            SELECT count(CASE WHEN (SELECT count(*) FROM cells) > {MANY_CELLS}
                THEN pg_advisory_xact_lock(hashtextextended(group_id::text, {LOCK_SEED}))
                ELSE pg_advisory_xact_lock_shared(hashtextextended(group_id::text, {LOCK_SEED}))
                END)
            FROM (SELECT DISTINCT group_id FROM cells ORDER BY group_id) g
        $q$, changes);
        EXECUTE format($q$
            WITH {CELLS_TO_LOCK}
            SELECT count(pg_advisory_xact_lock(hashtextextended(key, {LOCK_SEED})))
            FROM (
                SELECT key FROM cells WHERE (SELECT count(*) FROM cells) <= {MANY_CELLS}
                ORDER BY key
            ) one_by_one
        $q$, changes);

        -- Findings per contributor and cell, counted up and down in one pass in key order;
        -- a count that reaches zero goes.
        EXECUTE format($q$
            INSERT INTO public.insight_tallies AS t (group_id, {CELL}, contributor, n)
            SELECT group_id, {CELL}, contributor, sum(d)::int
            FROM (%s) changes
            GROUP BY group_id, {CELL}, contributor
            HAVING sum(d) <> 0
            ORDER BY group_id, {CELL}, contributor
            ON CONFLICT (group_id, {CELL}, contributor) DO UPDATE SET n = t.n + excluded.n
        $q$, changes);
        IF TG_OP <> 'INSERT' THEN
            EXECUTE format($q$
                DELETE FROM public.insight_tallies t USING (%s) c
                WHERE (t.group_id, t.area, t.country, t.period, t.severity, t.kind, t.contributor)
                    = (c.group_id, c.area, c.country, c.period, c.severity, c.kind, c.contributor)
                  AND t.n <= 0
            $q$, removed);
        END IF;

        IF TG_OP <> 'DELETE' THEN
            -- A number for each supplier the group has not seen yet, from the group's counter
            -- (its row lock orders concurrent statements; a number lost to a race is harmless).
            EXECUTE format($q$
                WITH missing AS (
                    SELECT DISTINCT c.group_id, c.supplier_id FROM (%s) c
                    WHERE NOT EXISTS (
                        SELECT 1 FROM public.insight_suppliers s
                        WHERE s.group_id = c.group_id AND s.supplier_id = c.supplier_id
                    )
                ),
                wanted AS (SELECT group_id, count(*)::int AS k FROM missing GROUP BY group_id),
                reserved AS (
                    INSERT INTO public.insight_groups AS g (group_id, suppliers_numbered)
                    SELECT group_id, k FROM wanted ORDER BY group_id
                    ON CONFLICT (group_id) DO UPDATE
                        SET suppliers_numbered = g.suppliers_numbered + excluded.suppliers_numbered
                    RETURNING g.group_id, g.suppliers_numbered
                )
                INSERT INTO public.insight_suppliers (group_id, supplier_id, number)
                SELECT m.group_id, m.supplier_id,
                       r.suppliers_numbered - w.k - 1
                       + row_number() OVER (PARTITION BY m.group_id ORDER BY m.supplier_id)
                FROM missing m JOIN wanted w USING (group_id) JOIN reserved r USING (group_id)
                ON CONFLICT (group_id, supplier_id) DO NOTHING
            $q$, added);
            -- The suppliers' bits in the cells they now have findings in.
            EXECUTE format($q$
                INSERT INTO public.insight_supplier_bits AS b (group_id, {CELL}, chunk, bits)
                SELECT c.group_id, c.area, c.country, c.period, c.severity, c.kind,
                       s.number / {CHUNK_BITS} AS chunk,
                       bit_or(set_bit({ZERO}, s.number %% {CHUNK_BITS}, 1))
                FROM (%s) c JOIN public.insight_suppliers s
                    ON s.group_id = c.group_id AND s.supplier_id = c.supplier_id
                GROUP BY c.group_id, c.area, c.country, c.period, c.severity, c.kind, chunk
                ORDER BY c.group_id, c.area, c.country, c.period, c.severity, c.kind, chunk
                ON CONFLICT (group_id, {CELL}, chunk) DO UPDATE SET bits = b.bits | excluded.bits
            $q$, added);
        END IF;

        IF TG_OP <> 'INSERT' THEN
            -- A supplier leaves a cell when its last finding there does: clear its bit.
            EXECUTE format($q$
                WITH gone AS (
                    SELECT DISTINCT c.group_id, c.area, c.country, c.period, c.severity, c.kind,
                           c.supplier_id
                    FROM (%s) c
                    WHERE NOT EXISTS (
                        SELECT 1 FROM public.shared_findings f
                        WHERE f.group_id = c.group_id AND f.supplier_id = c.supplier_id
                          AND f.observed_period = c.period AND f.area = c.area
                          AND f.kind = c.kind AND coalesce(f.severity, '') = c.severity
                          AND f.country::text = c.country
                    )
                ),
                masks AS (
                    SELECT g.group_id, g.area, g.country, g.period, g.severity, g.kind,
                           s.number / {CHUNK_BITS} AS chunk,
                           bit_or(set_bit({ZERO}, s.number %% {CHUNK_BITS}, 1)) AS mask
                    FROM gone g JOIN public.insight_suppliers s
                        ON s.group_id = g.group_id AND s.supplier_id = g.supplier_id
                    GROUP BY g.group_id, g.area, g.country, g.period, g.severity, g.kind, chunk
                ),
                emptied AS (
                    DELETE FROM public.insight_supplier_bits b USING masks m
                    WHERE (b.group_id, b.area, b.country, b.period, b.severity, b.kind, b.chunk)
                        = (m.group_id, m.area, m.country, m.period, m.severity, m.kind, m.chunk)
                      AND b.bits & ~m.mask = {ZERO}
                )
                UPDATE public.insight_supplier_bits b SET bits = b.bits & ~m.mask FROM masks m
                WHERE (b.group_id, b.area, b.country, b.period, b.severity, b.kind, b.chunk)
                    = (m.group_id, m.area, m.country, m.period, m.severity, m.kind, m.chunk)
                  AND b.bits & ~m.mask <> {ZERO}
            $q$, removed);
        END IF;
        RETURN NULL;
    END
    $fn$
"""

TRIGGERS = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
}

# Counts a group's tallies afresh from its shared findings: for data loaded around the trigger
# (the bench generator's COPY) and for this migration's backfill.
REBUILD = f"""
    CREATE FUNCTION insight_tallies_rebuild(p_group uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = {SEARCH_PATH}
    AS $fn$
    BEGIN
        -- The group's lock, exclusively: changes in flight finish first, later ones wait.
        PERFORM pg_advisory_xact_lock(hashtextextended(p_group::text, {LOCK_SEED}));
        DELETE FROM public.insight_supplier_bits WHERE group_id = p_group;
        DELETE FROM public.insight_suppliers WHERE group_id = p_group;
        DELETE FROM public.insight_groups WHERE group_id = p_group;
        DELETE FROM public.insight_tallies WHERE group_id = p_group;
        INSERT INTO public.insight_tallies (group_id, {CELL}, contributor, n)
        SELECT group_id, {CELL}, contributor, count(*)
        FROM (SELECT {PROJECTION} FROM public.shared_findings WHERE group_id = p_group) f
        GROUP BY group_id, {CELL}, contributor;
        INSERT INTO public.insight_suppliers (group_id, supplier_id, number)
        SELECT p_group, supplier_id, row_number() OVER (ORDER BY supplier_id) - 1
        FROM (SELECT DISTINCT supplier_id FROM public.shared_findings WHERE group_id = p_group) s;
        INSERT INTO public.insight_groups (group_id, suppliers_numbered)
        SELECT p_group, count(*) FROM public.insight_suppliers WHERE group_id = p_group;
        INSERT INTO public.insight_supplier_bits (group_id, {CELL}, chunk, bits)
        SELECT f.group_id, f.area, f.country, f.period, f.severity, f.kind,
               s.number / {CHUNK_BITS} AS chunk,
               bit_or(set_bit({ZERO}, s.number % {CHUNK_BITS}, 1))
        FROM (SELECT {PROJECTION} FROM public.shared_findings WHERE group_id = p_group) f
        JOIN public.insight_suppliers s
            ON s.group_id = f.group_id AND s.supplier_id = f.supplier_id
        GROUP BY f.group_id, f.area, f.country, f.period, f.severity, f.kind, chunk;
    END
    $fn$
"""

GROUP_INSIGHTS = f"""
    CREATE OR REPLACE FUNCTION group_insights(
        p_group uuid, p_dims text[], p_supplier uuid, p_area text, p_severity text,
        p_country text, p_period text, p_kind text, p_rounding int
    )
    RETURNS TABLE (cell jsonb, findings bigint, suppliers bigint, contributors text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {SEARCH_PATH}
    SET work_mem = '32MB'
    AS $fn$
    DECLARE
        k int;
        dim text;
        dims text[] := coalesce(p_dims, ARRAY[]::text[]);
        cols text := '';  -- the grouped columns, each followed by ', '
        key_sql text := '';
        where_sql text;
        per_contributor text;
        supplier_counts text;
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
        FOREACH dim IN ARRAY allowed LOOP
            CONTINUE WHEN NOT dim = ANY (dims);
            cols := cols || format('%I, ', dim);
            key_sql := key_sql || format('%L, NULLIF(%I, %L), ', dim, dim, '');
        END LOOP;
        -- Only the filters given, so the planner sees the conditions it can use.
        where_sql := concat_ws(' AND ', 'group_id = $1',
            CASE WHEN p_area IS NOT NULL THEN 'area = $3' END,
            CASE WHEN p_severity IS NOT NULL THEN 'severity = $4' END,
            CASE WHEN p_country IS NOT NULL THEN 'country = $5' END,
            CASE WHEN p_period IS NOT NULL THEN 'period = $6' END,
            CASE WHEN p_kind IS NOT NULL THEN 'kind = $7' END);
        IF p_supplier IS NULL THEN
            -- The tallies (migration 0005): rows per cell and contributor, and supplier bitmaps.
            per_contributor := format(
                'SELECT %1$s contributor, sum(n) AS n FROM public.insight_tallies
                 WHERE %2$s GROUP BY %1$s contributor', cols, where_sql);
            supplier_counts := format(
                'SELECT %1$s sum(bit_count(seen)) AS suppliers FROM (
                     SELECT %1$s bit_or(bits) AS seen FROM public.insight_supplier_bits
                     WHERE %2$s GROUP BY %1$s chunk
                 ) per_chunk GROUP BY %1$s ()', cols, where_sql);
        ELSE
            -- One supplier's records are few: counted from the records themselves.
            per_contributor := format(
                'SELECT %1$s contributor, count(*) AS n FROM (
                     SELECT {PROJECTION_QUOTED} FROM public.shared_findings
                     WHERE group_id = $1 AND supplier_id = $2
                 ) f WHERE %2$s GROUP BY %1$s contributor', cols, where_sql);
            supplier_counts := format(
                'SELECT %1$s count(DISTINCT supplier_id) AS suppliers FROM (
                     SELECT {PROJECTION_QUOTED} FROM public.shared_findings
                     WHERE group_id = $1 AND supplier_id = $2
                 ) f WHERE %2$s GROUP BY %1$s ()', cols, where_sql);
        END IF;
        RETURN QUERY EXECUTE format(
            $q$
            WITH per_contributor AS (%1$s),
            parts AS (
                SELECT %3$s sum(n) AS findings, count(*) AS contributors, max(n) AS top,
                       NULL::bigint AS suppliers
                FROM per_contributor GROUP BY %3$s ()
                UNION ALL
                SELECT %3$s NULL, NULL, NULL, suppliers FROM (%2$s) supplier_counts
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
            per_contributor, supplier_counts, cols, key_sql
        )
        -- Never finer than 5, whatever the caller asks: exact small counts stay in here.
        USING p_group, p_supplier, p_area, p_severity, p_country, p_period, p_kind,
              greatest(5, coalesce(p_rounding, 5)), k;
    END
    $fn$
"""


def _insights_of_0004() -> str:
    """Revision 0004's insights function, restored on downgrade."""
    path = Path(__file__).with_name("0004_sharing.py")
    spec = importlib.util.spec_from_file_location("wg_migration_0004", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.GROUP_INSIGHTS)


# Sets search_path on every SECURITY DEFINER function of the public schema (0003 and 0004 set it
# without pg_temp).
DEFINERS_SEARCH_PATH = """
    DO $$
    DECLARE
        fn regprocedure;
    BEGIN
        FOR fn IN
            SELECT p.oid::regprocedure FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND p.prosecdef
        LOOP
            EXECUTE format('ALTER FUNCTION %s SET search_path = {path}', fn);
        END LOOP;
    END
    $$
"""


def upgrade() -> None:
    app, owner, system = migration_role("app"), migration_role("owner"), migration_role("system")
    for statement in TABLES.split("---"):
        op.execute(statement)
    for table in TABLE_NAMES:
        # Nobody but the owner's functions: no grants to the app or system roles, and forced RLS
        # with an owner-only policy in case one is ever granted by mistake.
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY owner_maintains ON {table} TO {owner} USING (true) WITH CHECK (true)"
        )
        op.execute(f"REVOKE ALL ON {table} FROM PUBLIC, {app}, {system}")
    op.execute(FOLLOW)
    for event, referencing in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER insight_tallies_{event.lower()} AFTER {event} ON shared_findings "
            f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION insight_tallies_follow()"
        )
    op.execute(REBUILD)
    op.execute("REVOKE ALL ON FUNCTION insight_tallies_follow() FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION insight_tallies_rebuild(uuid) FROM PUBLIC")
    op.execute(GROUP_INSIGHTS)
    op.execute(DEFINERS_SEARCH_PATH.format(path=SEARCH_PATH))
    # The live insights query's index goes (a supplier's records are found by
    # shared_findings_listing); lists filtered on several dimensions keep one of their own.
    op.execute("DROP INDEX shared_findings_cells")
    op.execute(
        "CREATE INDEX shared_findings_filters ON shared_findings "
        "(group_id, area, country, observed_period, severity, kind)"
    )
    op.execute(
        "SELECT insight_tallies_rebuild(group_id) "
        "FROM (SELECT DISTINCT group_id FROM shared_findings) g"
    )


def downgrade() -> None:
    app = migration_role("app")
    op.execute("DROP INDEX shared_findings_filters")
    op.execute(
        "CREATE INDEX shared_findings_cells ON shared_findings "
        "(group_id, area, country, observed_period, severity, kind, contributor, supplier_id)"
    )
    op.execute(DEFINERS_SEARCH_PATH.format(path="pg_catalog, public"))
    op.execute(f"DROP FUNCTION {INSIGHTS_SIGNATURE}")
    op.execute(_insights_of_0004())
    op.execute(f"REVOKE ALL ON FUNCTION {INSIGHTS_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {INSIGHTS_SIGNATURE} TO {app}")
    for event in TRIGGERS:
        op.execute(f"DROP TRIGGER insight_tallies_{event.lower()} ON shared_findings")
    op.execute("DROP FUNCTION insight_tallies_rebuild(uuid)")
    op.execute("DROP FUNCTION insight_tallies_follow()")
    op.execute(f"DROP TABLE {', '.join(reversed(TABLE_NAMES))}")
