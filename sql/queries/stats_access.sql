-- Whether this role may read every statement's text and figures in pg_stat_statements (and other sessions'
-- activity): it needs the privileges of pg_read_all_stats (granted through pg_monitor and s10_monitoring).
SELECT pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats;
