-- Whether the diagnosis safety check (ops/safety.py) can have the server parse a statement into a temporary
-- function's body (rolled back): not on a hot standby or a read-only server, only with TEMP privilege, and not
-- when an event trigger would run on that CREATE FUNCTION (user code of its own).
SELECT pg_catalog.pg_is_in_recovery()                                                 AS standby,
       pg_catalog.current_setting('default_transaction_read_only')::bool              AS read_only,
       pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMP')       AS temp,
       ARRAY(SELECT e.evtname::text FROM pg_catalog.pg_event_trigger e
             WHERE e.evtenabled <> 'D'
               AND e.evtevent IN ('ddl_command_start', 'ddl_command_end', 'sql_drop'))   AS event_triggers;
