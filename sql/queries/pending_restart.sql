-- Settings changed in the configuration that take effect only after a restart (the deploy reports them).
SELECT coalesce(string_agg(name, ', ' ORDER BY name), '') FROM pg_settings WHERE pending_restart;
