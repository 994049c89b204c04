-- The btree indexes ops playbook integrity checks with amcheck, in order, with a skip reason for
-- those it must not or cannot check: INVALID or not ready (a build in progress or failed: see
-- ops playbook index-health), temporary (another session's, or ours), unlogged on a standby.
-- System schemas and the objects of extensions are left out; %(schemas)s (NULL: all) narrows it.
SELECT c.oid::bigint                                AS oid,
       n.nspname                                    AS schema,
       t.relname                                    AS table,
       c.relname                                    AS index,
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS qualified,
       pg_catalog.pg_relation_size(c.oid)           AS bytes,
       CASE WHEN c.relpersistence = 't' THEN 'temporary'
            WHEN NOT (i.indisvalid AND i.indisready AND i.indislive) THEN 'invalid'
            WHEN c.relpersistence = 'u' AND pg_catalog.pg_is_in_recovery() THEN 'unlogged on a standby'
       END                                          AS skip
FROM pg_catalog.pg_index AS i
JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_class AS t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
WHERE am.amname = 'btree'
  AND c.relkind = 'i'
  AND n.nspname <> 'information_schema'
  AND n.nspname !~ '^pg_(catalog|toast)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend AS d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.objid = t.oid AND d.deptype = 'e')
  AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY (%(schemas)s::text[]))
ORDER BY n.nspname, t.relname, c.relname;
