-- Estimated bloat of every btree index, from the catalog and the planner statistics only: cheap
-- (no index is read) but rough; it needs a recent ANALYZE and is confirmed with pgstatindex().
-- The expected size is what a fresh build would take: tuples of the average key width (pg_stats
-- avg_width, or the index's own stats for expression columns), posting lists where btree
-- deduplication (PostgreSQL 13+) merges equal keys, leaf pages filled to the fillfactor (90 by
-- default), plus internal pages and the metapage. bloat = actual size - expected size.
-- Only the app's schemas (%(schemas)s).
WITH idx AS (
    SELECT i.indexrelid,
           i.indrelid,
           n.nspname                                            AS schema,
           t.relname                                            AS table,
           c.relname                                            AS index,
           quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified,
           quote_ident(n.nspname) || '.' || quote_ident(t.relname) AS qualified_table,
           i.indisunique                                        AS is_unique,
           i.indisvalid                                         AS is_valid,
           i.indnatts                                           AS natts,
           i.indnkeyatts                                        AS nkeys,
           i.indkey::int2[]                                     AS attnums,
           -- a partial index holds fewer rows than its table: use its own count then
           CASE WHEN i.indpred IS NULL THEN t.reltuples ELSE c.reltuples END AS rows,
           pg_relation_size(i.indexrelid)                       AS bytes,
           current_setting('block_size')::int                   AS bs,
           coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) o
                     WHERE o LIKE 'fillfactor=%%'), 90)         AS fillfactor,
           i.indnatts = i.indnkeyatts
             AND NOT i.indisunique
             AND coalesce((SELECT split_part(o, '=', 2) FROM unnest(c.reloptions) o
                           WHERE o LIKE 'deduplicate_items=%%'), 'on') IN ('on', 'true', '1')
             AND current_setting('server_version_num')::int >= 130000 AS dedup
    FROM pg_index i
    JOIN pg_class c     ON c.oid = i.indexrelid
    JOIN pg_class t     ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_am am       ON am.oid = c.relam
    WHERE am.amname = 'btree'
      AND n.nspname = ANY (%(schemas)s::text[])
),
cols AS (
    -- one row per index column: width, null fraction and distinct values from pg_stats
    SELECT idx.indexrelid,
           k.pos,
           coalesce(st.avg_width, se.avg_width, nullif(ty.typlen, -1)::int) AS width,
           coalesce(st.null_frac, se.null_frac, 0)                           AS null_frac,
           CASE WHEN coalesce(st.n_distinct, se.n_distinct) < 0
                THEN -coalesce(st.n_distinct, se.n_distinct) * greatest(idx.rows, 1)
                ELSE coalesce(st.n_distinct, se.n_distinct) END              AS n_distinct
    FROM idx
    CROSS JOIN LATERAL unnest(idx.attnums) WITH ORDINALITY AS k(attnum, pos)
    JOIN pg_attribute ia ON ia.attrelid = idx.indexrelid AND ia.attnum = k.pos
    JOIN pg_type ty      ON ty.oid = ia.atttypid
    LEFT JOIN pg_attribute ta ON k.attnum > 0 AND ta.attrelid = idx.indrelid AND ta.attnum = k.attnum
    LEFT JOIN pg_stats st ON k.attnum > 0 AND st.schemaname = idx.schema AND st.tablename = idx.table
                         AND st.attname = ta.attname
    LEFT JOIN pg_stats se ON k.attnum = 0 AND se.schemaname = idx.schema AND se.tablename = idx.index
                         AND se.attname = ia.attname
),
shape AS (
    SELECT idx.*,
           -- IndexTupleData (8 bytes) + null bitmap when any column has nulls + key data, MAXALIGNed
           8 * ceil((8 + CASE WHEN max(cols.null_frac) > 0 THEN 4 ELSE 0 END
                       + sum(cols.width * (1 - cols.null_frac))) / 8.0)                 AS tuple_bytes,
           least(greatest(idx.rows, 1),
                 exp(sum(ln(greatest(cols.n_distinct, 1))) FILTER (WHERE cols.pos <= idx.nkeys))) AS keys,
           bool_and(cols.width IS NOT NULL)                                            AS have_widths,
           bool_and(cols.n_distinct IS NOT NULL)                                       AS have_distinct
    FROM idx
    JOIN cols ON cols.indexrelid = idx.indexrelid
    GROUP BY idx.indexrelid, idx.indrelid, idx.schema, idx.table, idx.index, idx.qualified, idx.qualified_table,
             idx.is_unique, idx.is_valid, idx.natts, idx.nkeys, idx.attnums, idx.rows, idx.bytes, idx.bs,
             idx.fillfactor, idx.dedup
),
leaf AS (
    SELECT shape.*,
           -- usable bytes on a leaf page: minus page header (24) and btree special space (16)
           (bs - 40) * fillfactor / 100.0                                               AS leaf_space,
           CASE
             WHEN dedup AND have_distinct AND rows / keys >= 2 THEN
               -- posting lists: fresh builds cap one at ~10 percent of a page; 6 bytes per heap TID
               keys * (ceil((rows / keys) / floor((8 * floor(bs * 0.1 / 8) - 4 - tuple_bytes) / 6.0))
                       * (tuple_bytes + 4) + (rows / keys) * 6)
             ELSE rows * (tuple_bytes + 4)           -- one tuple and one line pointer per row
           END                                                                          AS leaf_bytes
    FROM shape
),
est AS (
    SELECT leaf.*,
           ceil(leaf_bytes / leaf_space)                                                AS leaf_pages
    FROM leaf
)
SELECT schema, "table", index, qualified, qualified_table, is_valid, bytes,
       rows::bigint                                                     AS rows,
       fillfactor,
       -- equal keys merged into posting lists: pgstatindex's density misjudges these (ops/maintain/bloat.py)
       coalesce(dedup AND have_distinct AND rows / keys >= 2, false)    AS deduplicated,
       CASE WHEN rows < 0 OR NOT have_widths THEN NULL
            ELSE ((1 + leaf_pages + ceil(leaf_pages * (tuple_bytes + 4) / ((bs - 40) * 0.7))) * bs)::bigint
       END                                                              AS expected_bytes,
       CASE WHEN rows < 0 OR NOT have_widths THEN NULL
            ELSE greatest(0, bytes - (1 + leaf_pages + ceil(leaf_pages * (tuple_bytes + 4) / ((bs - 40) * 0.7))) * bs)::bigint
       END                                                              AS bloat_bytes,
       CASE WHEN rows < 0 OR NOT have_widths THEN NULL
            WHEN bytes = 0 THEN 0
            ELSE round(100 * greatest(0, bytes - (1 + leaf_pages + ceil(leaf_pages * (tuple_bytes + 4) / ((bs - 40) * 0.7))) * bs)::numeric / bytes, 1)
       END                                                              AS bloat_pct
FROM est
ORDER BY bloat_bytes DESC NULLS LAST, bytes DESC;
