-- Exact btree bloat of one index with pgstatindex() (extension pgstattuple): reads the whole index.
-- {schema} is the extension's schema (usually public). Bloat is measured against a fresh build:
-- the live leaf data at the fillfactor, internal pages in proportion, and the metapage.
WITH s AS (
    SELECT * FROM {schema}.pgstatindex(%(index)s::regclass)
), ff AS (
    SELECT coalesce((SELECT split_part(o, '=', 2)::int FROM pg_class c, unnest(c.reloptions) o
                     WHERE c.oid = %(index)s::regclass AND o LIKE 'fillfactor=%%'), 90) AS fillfactor
), fresh AS (
    SELECT s.*, ff.fillfactor,
           CASE WHEN s.leaf_pages = 0 OR s.avg_leaf_density = 'NaN' THEN 0
                ELSE ceil(s.leaf_pages * s.avg_leaf_density / ff.fillfactor) END AS fresh_leaf_pages
    FROM s, ff
)
SELECT index_size                                                    AS bytes,
       leaf_pages, internal_pages, empty_pages, deleted_pages,
       CASE WHEN avg_leaf_density = 'NaN' THEN NULL ELSE avg_leaf_density END AS avg_leaf_density,
       CASE WHEN leaf_fragmentation = 'NaN' THEN NULL ELSE leaf_fragmentation END AS leaf_fragmentation,
       fillfactor,
       ((1 + fresh_leaf_pages
           + CASE WHEN leaf_pages = 0 THEN 0
                  ELSE ceil(internal_pages::numeric * fresh_leaf_pages / leaf_pages) END)
        * current_setting('block_size')::int)::bigint                AS expected_bytes
FROM fresh;
