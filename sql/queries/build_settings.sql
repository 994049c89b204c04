-- What an index build session may use, for `ops migrate apply` to size maintenance_work_mem and
-- max_parallel_maintenance_workers per build session (defaults sized for the server): the current
-- values, shared_buffers (about a quarter of RAM on a tuned server) and the worker pools a
-- parallel build draws from.
SELECT pg_size_bytes(current_setting('maintenance_work_mem'))  AS maintenance_work_mem,
       pg_size_bytes(current_setting('shared_buffers'))        AS shared_buffers,
       current_setting('max_parallel_maintenance_workers')::int AS max_parallel_maintenance_workers,
       current_setting('max_parallel_workers')::int             AS max_parallel_workers,
       current_setting('max_worker_processes')::int             AS max_worker_processes;
