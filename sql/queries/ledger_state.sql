-- The ledger table ops migrate keeps (%(schema)s.%(table)s, never found through search_path): does its
-- schema exist, may we create it there, does it exist, with which columns, and may we read and write it.
SELECT n.oid IS NOT NULL                                                   AS schema_exists,
       n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE')
                         AND has_schema_privilege(n.oid, 'CREATE')          AS may_create,
       c.oid IS NOT NULL                                                   AS exists,
       c.relkind::text                                                     AS relkind,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum)                                            AS columns,
       c.oid IS NOT NULL AND has_table_privilege(c.oid, 'SELECT')          AS may_read,
       c.oid IS NOT NULL AND has_table_privilege(c.oid, 'INSERT')
                         AND has_table_privilege(c.oid, 'UPDATE')          AS may_write
FROM (SELECT %(schema)s::text AS schema) AS w
LEFT JOIN pg_namespace n ON n.nspname = w.schema
LEFT JOIN pg_class c     ON c.relnamespace = n.oid AND c.relname = %(table)s;
