-- Describe backends by pid (used to name who blocked a build).
SELECT a.pid, a.state, a.usename, a.application_name,
       round(extract(epoch FROM now() - a.xact_start)::numeric, 1) AS xact_age_s,
       left(regexp_replace(a.query, '\s+', ' ', 'g'), 200)          AS query
FROM pg_stat_activity a
WHERE a.pid = ANY(%(pids)s);
