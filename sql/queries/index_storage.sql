-- Where one index lives on disk and its identity: the tablespace directory (the data directory for
-- the default tablespaces; reading it needs pg_read_all_settings or superuser) and its relfilenode.
-- %(index)s is a qualified, quoted name (schema.index).
SELECT c.relfilenode,
       pg_relation_size(c.oid)                                 AS bytes,
       CASE WHEN c.reltablespace = 0 OR ts.spcname IN ('pg_default', 'pg_global')
            -- without pg_read_all_settings: NULL (free space is then not checked), not an error
            THEN CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE') THEN current_setting('data_directory') END
            ELSE pg_tablespace_location(c.reltablespace) END   AS directory
FROM pg_class c
LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
WHERE c.oid = %(index)s::regclass;
