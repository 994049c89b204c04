"""Monitoring: postgres_exporter's custom queries (from sql/queries), Prometheus alert rules, the
scrape configuration and the Grafana dashboard, each rendered from an environment's settings.

Nothing here talks to a host or a database: ``ops render`` writes the files, the deploy installs them.
"""
