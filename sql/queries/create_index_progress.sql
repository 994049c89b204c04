-- Progress of a CREATE INDEX / REINDEX (CONCURRENTLY) run by one backend, and who it waits for.
SELECT p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total,
       p.lockers_done, p.lockers_total, p.current_locker_pid,
       pg_blocking_pids(p.pid) AS blocking_pids
FROM pg_stat_progress_create_index p
WHERE p.pid = %(pid)s;
