-- Who holds the session advisory lock with a given 64-bit key (a bigint key shows as classid<<32 | objid).
SELECT a.pid, a.application_name, a.usename, a.backend_start, a.state
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND ((l.classid::bigint << 32) | l.objid::bigint) = %(key)s
  AND l.objsubid = 1;
