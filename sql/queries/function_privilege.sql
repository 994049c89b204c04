-- Whether this role may execute one function of a schema, e.g. pgstattuple's pgstatindex(regclass) in
-- the extension's schema (PostgreSQL grants it to pg_stat_scan_tables, not to PUBLIC).
SELECT has_function_privilege(format('%%I.%%s', %(schema)s::text, %(function)s::text), 'EXECUTE') AS may_execute;
