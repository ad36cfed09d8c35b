"""Insights withstand subtraction: no published cell and its published sub-cells bound a
suppressed cell's count tighter than the rounding base.

Revision ID: 0010_insight_suppression
Revises: 0009_funding

Every insights answer is a set of cells of one *level*: the grouped dimensions plus the filtered
ones (`group_by=period&area=x` answers the cells (area, period) with area = x), so a filter against
no filter, or a coarser grouping against a finer one, is a cell against its sub-cells along one
dimension. With a published count r meaning [r - 2, r + 2] (base 5) and a suppressed cell at least
1 (it is counted), a member learned, for a suppressed sub-cell z of a published cell,
`z <= (r + 2) - sum(published siblings' r - 2) - (other suppressed siblings)`: [1, 3] or [1, 4]
with small numbers (a quarter of 4 findings shown as 5, its working hours of 3 shown as 5, and
one brand's child-labour finding beside them: [1, 4]).

`group_insights()` now publishes a cell only if, besides the contributor rule, along every
dimension the level does not fix, the widest bound its rounded count minus its sub-cells would
leave on a hidden sub-cell is at least the base (for base 5: [1, 5] or wider):

    r + 2 - sum(lo of the sub-cells that may be published) - (hidden - 1) >= base,
    or, when no sub-cell is surely hidden, r + 2 - sum(lo) + lo(w) >= base for every sub-cell w
    of several finest cells (one that may be hidden for its own sub-cells),

with lo = max(r_sub - 2, k). This is decided from the cell's sub-cells alone (never the filter
values asked for), so a cell is published or suppressed alike in every answer, and cells of the
same findings (a cell and its only sub-cell) alike too. The contributor rule on the sub-cells is
not counted exactly (that would cost a count per contributor for every sub-level): a sub-cell is
*surely hidden* when the sum over its finest cells of their contributors is under k, or one
contributor's findings in one finest cell are over 85 % of it; any other sub-cell is taken as
possibly published, which can only make the bound narrower, so the rule errs on hiding. A sub-cell
of one finest cell is judged exactly, and one of several is the only kind that can be hidden for
its own sub-cells.

Not covered (see tests/sharing/test_insights_bounds.py, which prints them): the same cell of every
supplier against the group's cell (the supplier is a filter, never a grouping, and judging it would
count every supplier's records), and intersections of several subtractions.
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0010_insight_suppression"
down_revision = "0009_funding"
branch_labels = None
depends_on = None

SEARCH_PATH = "pg_catalog, public, pg_temp"
# A shared finding as the insights see it (as in 0005): severity '' where there is none.
PROJECTION = (
    "area, country::text AS country, observed_period AS period, "
    "coalesce(severity, '''') AS severity, kind, contributor, supplier_id"
)

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
        -- Never finer than 5, whatever the caller asks: exact small counts stay in here.
        base int := greatest(5, coalesce(p_rounding, 5));
        dim text;
        dims text[] := coalesce(p_dims, ARRAY[]::text[]);
        level text[] := ARRAY[]::text[];  -- grouped and filtered dimensions
        others text[] := ARRAY[]::text[];  -- the dimensions the level does not fix
        cols text := '';  -- the level's columns, each followed by ', '
        key_sql text := '';
        where_sql text;
        source text;
        supplier_counts text;
        finest_source text;  -- findings per finest cell and contributor
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
            IF dim = ANY (dims)
               OR (dim = 'area' AND p_area IS NOT NULL)
               OR (dim = 'country' AND p_country IS NOT NULL)
               OR (dim = 'period' AND p_period IS NOT NULL)
               OR (dim = 'severity' AND p_severity IS NOT NULL)
               OR (dim = 'kind' AND p_kind IS NOT NULL) THEN
                level := level || dim;
                cols := cols || format('%I, ', dim);
            ELSE
                others := others || dim;
            END IF;
        END LOOP;
        FOREACH dim IN ARRAY allowed LOOP
            CONTINUE WHEN NOT dim = ANY (dims);
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
            -- The tallies (0005): findings per finest cell and contributor, supplier bitmaps.
            source := format('SELECT * FROM public.insight_tallies WHERE %s', where_sql);
            finest_source := source;
            supplier_counts := format(
                'SELECT %1$s sum(bit_count(seen)) AS suppliers FROM (
                     SELECT %1$s bit_or(bits) AS seen FROM public.insight_supplier_bits
                     WHERE %2$s GROUP BY %1$s chunk
                 ) per_chunk GROUP BY %1$s ()', cols, where_sql);
        ELSE
            -- One supplier's records are few: counted from the records themselves.
            source := format(
                'SELECT * FROM (
                     SELECT group_id, {PROJECTION}, 1 AS n FROM public.shared_findings
                     WHERE group_id = $1 AND supplier_id = $2
                 ) f WHERE %s', where_sql);
            finest_source := format(
                'SELECT area, country, period, severity, kind, contributor, sum(n) AS n
                 FROM (%s) f GROUP BY area, country, period, severity, kind, contributor',
                source);
            supplier_counts := format(
                'SELECT %1$s count(DISTINCT supplier_id) AS suppliers FROM (%2$s) f
                 GROUP BY %1$s ()', cols, source);
        END IF;
        RETURN QUERY EXECUTE format(
            $q$
            WITH level AS (
                -- The cells asked for, with the contributor rule (k contributors, none above
                -- 85 %%) counted exactly.
                SELECT %1$s sum(n) AS findings, count(*) AS contributors, max(n) AS top
                FROM (
                    SELECT %1$s contributor, sum(n) AS n FROM (%2$s) t
                    GROUP BY %1$s contributor
                ) per_contributor
                GROUP BY %1$s ()
            ),
            finest AS (
                -- Each finest cell: findings, contributors, the largest contributor's count.
                SELECT area, country, period, severity, kind,
                       sum(n) AS n, count(*) AS contributors, max(n) AS top
                FROM (%3$s) per_contributor
                GROUP BY area, country, period, severity, kind
            ),
            sub_cells AS (
                -- Each cell's sub-cells along each dimension it does not fix (which: along),
                -- from its finest cells: a sub-cell is surely suppressed when even the sum of
                -- its finest cells' contributors is under k, or one contributor's findings in
                -- one of them are over 85 %% of it; otherwise it may be published.
                SELECT %1$s along, n,
                       greatest((round(n / $8::numeric) * $8)::bigint - $8 / 2, $9) AS lo,
                       (contributors < $9 OR top > 0.85 * n) AS hidden, several
                FROM (
                    SELECT %1$s %4$s AS along, sum(n) AS n, sum(contributors) AS contributors,
                           max(top) AS top, count(*) > 1 AS several
                    FROM finest GROUP BY GROUPING SETS (%5$s) HAVING %8$s
                ) s
            ),
            verdicts AS (
                -- Along each dimension, the widest bound a hidden sub-cell gets from the cell's
                -- rounded count minus what its sub-cells show: those surely suppressed hidden
                -- (at least 1 each) and the others shown (at least lo each), or, if none is
                -- surely suppressed, any one of several finest cells hidden for its own
                -- sub-cells. Under the base, the cell is suppressed.
                SELECT %1$s bool_or(
                           (round(n / $8::numeric) * $8)::bigint + ($8 - 1) / 2 - shown
                           + CASE WHEN hidden > 0 THEN 1 - hidden ELSE smallest END < $8
                       ) AS fails
                FROM (
                    SELECT %1$s along, sum(n) AS n, count(*) FILTER (WHERE hidden) AS hidden,
                           coalesce(sum(lo) FILTER (WHERE NOT hidden), 0) AS shown,
                           min(lo) FILTER (WHERE NOT hidden AND several) AS smallest
                    FROM sub_cells GROUP BY %1$s along
                ) along_each
                GROUP BY %1$s ()
            ),
            parts AS (
                SELECT %1$s findings, contributors, top, NULL::boolean AS fails,
                       NULL::numeric AS suppliers
                FROM level
                UNION ALL
                SELECT %1$s NULL, NULL, NULL, fails, NULL FROM verdicts
                UNION ALL
                SELECT %1$s NULL, NULL, NULL, NULL, suppliers FROM (%6$s) supplier_counts
            ),
            cells AS (
                SELECT %1$s max(findings) AS findings, max(contributors) AS contributors,
                       max(top) <= 0.85 * max(findings) AND max(contributors) >= $9
                       AND NOT coalesce(bool_or(fails), false) AS published,
                       max(suppliers) AS suppliers
                FROM parts GROUP BY %1$s ()
                HAVING max(findings) IS NOT NULL
            )
            SELECT jsonb_build_object(%7$s '_', null) - '_',
                   CASE WHEN published
                        THEN (round(findings / $8::numeric) * $8)::bigint END,
                   CASE WHEN published
                        THEN greatest($8, (round(suppliers / $8::numeric) * $8)::bigint) END,
                   CASE WHEN NOT published THEN NULL
                        WHEN contributors >= 10 THEN '10+'
                        WHEN contributors >= 5 THEN '5+'
                        ELSE '3+' END
            FROM cells
            $q$,
            cols, source,
            -- (The finest level has no sub-cells: nothing to count.)
            CASE WHEN cardinality(others) > 0 THEN finest_source
                 ELSE finest_source || ' LIMIT 0' END,
            CASE WHEN cardinality(others) > 0
                 THEN format('GROUPING(%s)', array_to_string(others, ', ')) ELSE '0' END,
            -- (No dimension left: the finest level has no sub-cells; HAVING false below.)
            coalesce((SELECT string_agg(format('(%s %s)', cols, o), ', ') FROM unnest(others) o),
                     format('(%s)', rtrim(cols, ', '))),
            supplier_counts, key_sql,
            CASE WHEN cardinality(others) > 0 THEN 'true' ELSE 'false' END)
        USING p_group, p_supplier, p_area, p_severity, p_country, p_period, p_kind, base, k;
    END
    $fn$
"""


def _insights_of_0005() -> str:
    """Revision 0005's insights function, restored on downgrade."""
    path = Path(__file__).with_name("0005_insight_tallies.py")
    spec = importlib.util.spec_from_file_location("wg_migration_0005", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.GROUP_INSIGHTS)


def upgrade() -> None:
    op.execute(GROUP_INSIGHTS)


def downgrade() -> None:
    op.execute(_insights_of_0005())
