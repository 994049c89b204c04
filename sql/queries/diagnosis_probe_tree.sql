-- The parse tree the server stored for the diagnosis probe (ops/safety.py): a temporary SQL function whose
-- BEGIN ATOMIC body is the statement under diagnosis, created in a transaction that is rolled back.
SELECT p.prosqlbody::text AS tree
FROM pg_catalog.pg_proc p
WHERE p.proname = %(name)s AND p.pronamespace = pg_catalog.pg_my_temp_schema();
