-- How old this database's statistics counters are: since pg_stat_database.stats_reset, or, when
-- they were never reset, at least since the server started (a conservative lower bound).
SELECT d.stats_reset,
       pg_postmaster_start_time()                                              AS server_start,
       coalesce(d.stats_reset, pg_postmaster_start_time())                     AS counting_since,
       extract(epoch FROM now() - coalesce(d.stats_reset, pg_postmaster_start_time()))::float8 AS age_s
FROM pg_stat_database d
WHERE d.datname = current_database();
