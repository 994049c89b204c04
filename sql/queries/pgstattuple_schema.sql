-- The schema pgstattuple is installed in, if it is (one row), and whether we may call it.
SELECT e.extnamespace::regnamespace::text AS schema,
       has_function_privilege(
         (e.extnamespace::regnamespace::text || '.pgstatindex(regclass)')::regprocedure, 'EXECUTE') AS can_execute
FROM pg_extension e
WHERE e.extname = 'pgstattuple';
