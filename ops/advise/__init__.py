"""``ops advise``: from the workload to reviewed index migrations (evidence, then a file in sql/migrations/)."""
