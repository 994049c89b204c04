-- Where one index lives on disk and its identity: the tablespace directory (the data directory for
-- the default tablespaces; reading it needs pg_read_all_settings or superuser) and its relfilenode.
SELECT c.relfilenode,
       pg_relation_size(c.oid)                                 AS bytes,
       CASE WHEN c.reltablespace = 0 OR ts.spcname IN ('pg_default', 'pg_global')
            THEN current_setting('data_directory', true)
            ELSE pg_tablespace_location(c.reltablespace) END   AS directory
FROM pg_class c
LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
WHERE c.oid = %(index)s::regclass;
