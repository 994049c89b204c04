-- Whether the diagnosis safety check (ops/safety.py) can have the server parse a statement into a temporary
-- function's body (rolled back): not on a hot standby or a read-only server, and only with TEMP privilege.
SELECT pg_catalog.pg_is_in_recovery()                                                 AS standby,
       pg_catalog.current_setting('default_transaction_read_only')::bool              AS read_only,
       pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMP')       AS temp;
