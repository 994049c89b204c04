-- Client backends that would make an online index build on a table wait: they hold a lock on
-- the table that conflicts with the build (anything stronger than ROW SHARE), or they hold a
-- snapshot the build must outlive; and their transaction is older than %(min_age)s seconds
-- (short transactions are waited for, not reported).
SELECT DISTINCT a.pid,
       a.state,
       a.usename,
       a.application_name,
       round(extract(epoch FROM now() - a.xact_start)::numeric, 1) AS xact_age_s,
       left(regexp_replace(a.query, '\s+', ' ', 'g'), 200)          AS query
FROM pg_stat_activity a
LEFT JOIN pg_locks l
       ON l.pid = a.pid AND l.granted AND l.relation = to_regclass(%(table)s)
      AND l.mode NOT IN ('AccessShareLock', 'RowShareLock')
WHERE a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
  AND a.datname = current_database()
  AND a.xact_start < now() - make_interval(secs => %(min_age)s)
  AND (l.pid IS NOT NULL OR a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
ORDER BY xact_age_s DESC;
