"""Monitoring on real services: PostgreSQL (pg_stat_statements preloaded), postgres_exporter with the
generated queries, node_exporter reading the jobs' textfiles, a real nginx for the CORS check, and
Prometheus evaluating the rendered rules every second. Each staged fault fires its alert (seen
through Prometheus's HTTP API), fixing it resolves it, and a healthy database fires nothing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from ops import SQL_DIR
from ops.local.monitoring import MonitoringStack
from ops.local.pg import Cluster, free_port, load_schema
from ops.monitor import dashboard, exporter, rules
from ops.monitor.settings import MonitorSettings
from ops.settings import MaintenanceSettings
from tests.conftest import run_ops
from tests.nginx_helper import http_config, start_nginx

ORIGIN = "http://localhost:3000"
MONITORING_DIR = Path(__file__).parent / "monitoring"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
DB = "mon"


# --------------------------------------------------------------------------- the stack


@dataclass
class World:
    cluster: Cluster
    stack: MonitoringStack
    nginx_flag: Path  # while it exists, nginx answers the preflight without CORS headers
    api_url: str

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(DB)

    @property
    def textfiles(self) -> Path:
        return self.stack.textfile_dir

    def env(self) -> dict[str, str]:
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return {**env, **self.cluster.env(DB)}

    def ops(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_ops(*args, env=self.env())

    def sql(self, text: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(text)  # type: ignore[arg-type]

    def prom(self, path: str, **params: str) -> dict:
        resp = httpx.get(f"{self.stack.url}{path}", params=params, timeout=5)
        resp.raise_for_status()
        return resp.json()["data"]

    def alerts(self, state: str | None = None) -> list[dict]:
        found = self.prom("/api/v1/alerts")["alerts"]
        return [a for a in found if state is None or a["state"] == state]

    def firing(self, name: str) -> list[dict]:
        """The firing alerts named ``name``; fails when any other alert is firing (each fault fires its own only)."""
        firing = self.alerts("firing")
        others = {a["labels"]["alertname"] for a in firing} - {name}
        assert not others, f"other alerts fire while staging the {name} fault: {others}"
        return [a for a in firing if a["labels"]["alertname"] == name]

    def cors_check(self) -> subprocess.CompletedProcess[str]:
        """What the cron entry on the monitoring host runs."""
        return self.ops(
            "playbook", "cors", self.api_url, "--origin", ORIGIN, "-H", "Authorization",
            "--metrics-file", str(self.textfiles / rules.CORS_TEXTFILE),
        )  # fmt: skip


def wait_for(what: str, check: Callable[[], object], timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def _edge_conf(port: int, flag: Path) -> str:
    """An API edge that answers preflights for ORIGIN (Max-Age 7200); while ``flag`` exists it stops
    allowing the origin (an empty value sends no Access-Control-Allow-Origin)."""
    return f"""
server {{
    listen 127.0.0.1:{port};
    location /api/ {{
        set $acao "{ORIGIN}";
        if (-f {flag}) {{ set $acao ""; }}
        add_header Access-Control-Allow-Origin $acao always;
        add_header Vary Origin always;
        add_header Access-Control-Allow-Credentials true always;
        add_header Access-Control-Allow-Methods "GET, POST" always;
        add_header Access-Control-Allow-Headers "Authorization, Content-Type" always;
        add_header Access-Control-Max-Age 7200 always;
        if ($request_method = OPTIONS) {{ return 204; }}
        return 200 '{{}}';
    }}
}}
"""


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="s10mon-"))
    root.chmod(0o755)
    # A cluster of its own: pg_stat_statements preloaded (ops.local.pg's server settings), installed in
    # its own schema so that the generated queries must qualify it.
    cluster = Cluster(root=root / "pg", port=free_port())
    cluster.init(fsync=False)
    cluster.start()
    cluster.createdb(DB)
    load_schema(cluster.dsn(DB), SQL_DIR / "schema")
    with psycopg.connect(cluster.dsn(DB), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA pgss; CREATE EXTENSION pg_stat_statements SCHEMA pgss")
        # the exporter's login role: monitoring rights only, and an empty search_path, so every
        # generated query must reach its objects by qualified names
        conn.execute("CREATE ROLE s10_exporter LOGIN IN ROLE pg_monitor")
        conn.execute("GRANT USAGE ON SCHEMA pgss TO s10_exporter")  # the extension's schema, as sql/roles.sql must
        conn.execute("ALTER ROLE s10_exporter SET search_path = ''")
        from ops.maintain import sample

        sample.fill(conn, users=2000, orgs=50, sessions=4000, jobs=4000)  # ends with ANALYZE
    settings = MonitorSettings(
        pgss_schema="pgss",
        exporter_port=free_port(),
        node_port=free_port(),
        prometheus_port=free_port(),
        scrape_interval="1s",
        evaluation_interval="1s",
        for_override="1s",
        rate_window="5s",
        slow_min_calls=3,
    )
    stack = MonitoringStack(
        root=root / "monitoring",
        dsn=f"host={cluster.socket_dir} port={cluster.port} user=s10_exporter dbname={DB} sslmode=disable",
        textfile_dir=root / "textfiles",
        settings=settings,
        maint=MaintenanceSettings(),
        env="test",
    )
    edge_port, flag = free_port(), root / "cors-broken"
    nginx = start_nginx(http_config(_edge_conf(edge_port, flag)))
    try:
        stack.start()
        w = World(cluster, stack, flag, f"http://127.0.0.1:{edge_port}/api/auth/me")
        # the healthy starting point: the jobs' textfiles as cron writes them, a passing CORS check
        assert (
            w.ops("maintain", "analyze", "--metrics-file", str(w.textfiles / "s10_maintain_analyze.prom")).returncode
            == 0
        )
        assert (
            w.ops("maintain", "reindex", "--metrics-file", str(w.textfiles / "s10_maintain_reindex.prom")).returncode
            == 0
        )
        assert w.ops(
            "maintain", "bloat", "--metrics-file", str(w.textfiles / "s10_maintain_bloat.prom")
        ).returncode in (0, 1)
        check = w.cors_check()
        assert check.returncode in (0, 1), check.stdout + check.stderr
        wait_for("both exporters scraped", lambda: len(w.prom("/api/v1/query", query="up == 1")["result"]) == 2)
        yield w
    finally:
        stack.stop()
        nginx.stop()
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- healthy, then each fault


def test_healthy_database_fires_nothing(world: World) -> None:
    # a few evaluations with every figure present: nothing pending, nothing firing
    wait_for("the statement figures", lambda: world.prom("/api/v1/query", query="pg_s10_statement_calls")["result"])
    wait_for("the CORS figures", lambda: world.prom("/api/v1/query", query="s10_cors_check_status")["result"])
    time.sleep(4)
    assert world.alerts() == []
    assert world.prom("/api/v1/query", query="pg_up")["result"][0]["value"][1] == "1"


def test_slow_statement_fires_and_resolves(world: World) -> None:
    world.sql("CREATE FUNCTION public.s10_report() RETURNS void LANGUAGE sql AS 'SELECT pg_sleep(0.15)'")
    stop = threading.Event()

    def app() -> None:  # the app calling the statement again and again
        with psycopg.connect(world.dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("SELECT public.s10_report()")
                time.sleep(0.05)

    thread = threading.Thread(target=app, daemon=True)
    thread.start()
    try:
        [alert] = wait_for("S10SlowStatement firing", lambda: world.firing("S10SlowStatement"))  # type: ignore[misc]
        assert alert["labels"]["severity"] == "warning" and alert["labels"]["command"] == "SELECT"
        assert alert["annotations"]["runbook_url"].endswith("RUNBOOK.md#s10slowstatement")
        assert 120 < float(alert["value"]) < 400  # the mean in ms over the window
        assert "query" not in alert["labels"]  # never the statement's text as a label
        # the fix: the same statement becomes fast; the alert resolves while the app keeps calling it
        world.sql("CREATE OR REPLACE FUNCTION public.s10_report() RETURNS void LANGUAGE sql AS 'SELECT'")
        wait_for("S10SlowStatement resolved", lambda: not world.firing("S10SlowStatement"))
    finally:
        stop.set()
        thread.join(timeout=5)


def test_invalid_index_fires_and_resolves(world: World) -> None:
    world.sql("INSERT INTO public.users (email) VALUES ('twice@example.com'), ('twice@example.com')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        world.sql("CREATE UNIQUE INDEX CONCURRENTLY ix_users_email_mon ON public.users (email)")
    [alert] = wait_for("S10InvalidIndex firing", lambda: world.firing("S10InvalidIndex"))  # type: ignore[misc]
    assert alert["labels"]["index"] == "ix_users_email_mon" and alert["labels"]["table"] == "users"
    world.sql("DROP INDEX CONCURRENTLY public.ix_users_email_mon")
    wait_for("S10InvalidIndex resolved", lambda: not world.firing("S10InvalidIndex"))


def test_failed_maintenance_fires_and_resolves(world: World) -> None:
    textfile = str(world.textfiles / "s10_maintain_reindex.prom")
    # a real failed run: the job cannot reach its database (and says so in its textfile)
    failed = world.ops("maintain", "reindex", "--dsn", f"host={world.cluster.socket_dir} port=1 dbname={DB}",
                       "--metrics-file", textfile)  # fmt: skip
    assert failed.returncode != 0
    [alert] = wait_for("S10MaintenanceFailed firing", lambda: world.firing("S10MaintenanceFailed"))  # type: ignore[misc]
    assert alert["labels"]["job"] == "reindex"
    assert world.ops("maintain", "reindex", "--metrics-file", textfile).returncode == 0  # the next run succeeds
    wait_for("S10MaintenanceFailed resolved", lambda: not world.firing("S10MaintenanceFailed"))


def test_broken_preflight_fires_and_resolves(world: World) -> None:
    world.nginx_flag.touch()  # the edge stops allowing the origin
    try:
        assert world.cors_check().returncode == 2
        [alert] = wait_for("S10CorsCheckCritical firing", lambda: world.firing("S10CorsCheckCritical"))  # type: ignore[misc]
        assert alert["labels"]["severity"] == "critical" and alert["labels"]["origin"] == ORIGIN
    finally:
        world.nginx_flag.unlink()
    assert world.cors_check().returncode in (0, 1)
    wait_for("S10CorsCheckCritical resolved", lambda: not world.firing("S10CorsCheckCritical"))


def test_cors_textfile_has_each_browsers_max_age(world: World) -> None:
    result = world.prom("/api/v1/query", query="s10_cors_preflight_max_age_seconds")["result"]
    by_browser = {r["metric"]["browser"]: float(r["value"][1]) for r in result}
    assert by_browser == {"Chromium": 7200, "Firefox": 7200, "Safari": 600}
    # the textfile's mtime, as S10MetricsStale selects it
    mtime = world.prom("/api/v1/query", query='node_textfile_mtime_seconds{file=~".*/s10_cors[.]prom"}')["result"]
    assert len(mtime) == 1


def test_every_dashboard_panel_query_returns_a_series(world: World) -> None:
    model = dashboard.build("test")
    queries = dashboard.panel_queries(model)
    assert len(queries) >= 10
    empty = []
    for title, expr in queries:
        if not world.prom("/api/v1/query", query=expr)["result"]:
            empty.append(f"{title}: {expr}")
    assert empty == []


# --------------------------------------------------------------------------- rules and queries, no services


def test_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    """tests/monitoring/*.yml run against the rules rendered with the default settings."""
    rules_file = tmp_path / "s10-alerts.yml"
    rules_file.write_text(rules.render(MonitorSettings(), MaintenanceSettings(), "test"))
    check = subprocess.run([PROMTOOL, "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = sorted(MONITORING_DIR.glob("*.yml"))
    assert tests
    for t in tests:
        shutil.copy(t, tmp_path / t.name)
    run = subprocess.run(
        [PROMTOOL, "test", "rules", *(t.name for t in tests)], capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_has_labels_annotations_and_a_runbook_section() -> None:
    doc = yaml.safe_load(rules.render(MonitorSettings(), MaintenanceSettings(), "test"))
    runbook = (SQL_DIR.parent / "RUNBOOK.md").read_text()
    alerts_section = runbook.split("\n## Alerts\n", 1)[1]
    for r in doc["groups"][0]["rules"]:
        assert r["labels"]["severity"] in ("critical", "warning", "info")
        assert r["annotations"]["summary"] and r["annotations"]["description"]
        assert f"\n### {r['alert']}\n" in alerts_section, f"RUNBOOK.md has no '### {r['alert']}' under ## Alerts"
        assert r["for"] != "0s"


def test_no_figure_is_defined_twice() -> None:
    """Every exporter query is a named file of sql/queries, used once; no two files hold the same query."""
    import pglast

    files = {q.sql_file for q in exporter.exporter_queries(MonitorSettings())}
    assert len(files) == len(exporter.exporter_queries(MonitorSettings()))
    assert all((SQL_DIR / "queries" / f"{f}.sql").is_file() for f in files)
    seen: dict[str, str] = {}
    for path in sorted((SQL_DIR / "queries").glob("*.sql")):
        text = exporter._PARAM.sub("1", exporter.fill_schema(path.read_text(), "ext"))
        text = re.sub(r":'\w+'", "'x'", re.sub(r':"(\w+)"', r'"\1"', text))  # psql variables (deploy_state)
        fp = pglast.fingerprint(text)
        assert fp not in seen, f"{path.name} is the same query as {seen.get(fp)}"
        seen[fp] = path.name
    # and every pg_s10_* figure the rules and the dashboard read is one the exporter exports
    exported = {f"{q.name}_{m.column}" for q in exporter.exporter_queries(MonitorSettings()) for m in q.metrics}
    used = rules.render(MonitorSettings(), MaintenanceSettings(), "t") + dashboard.render("t")
    assert set(re.findall(r"\bpg_s10_[a-z_]+", used)) <= exported


def test_exporter_queries_qualify_pg_stat_statements() -> None:
    text = exporter.render(MonitorSettings(pgss_schema="pgss"))
    doc = yaml.safe_load(text)
    statement = doc["pg_s10_statement"]["query"]
    assert "pgss.pg_stat_statements AS s" in statement and "pgss.pg_stat_statements_info" in statement
    assert "LIMIT 20" in statement


# --------------------------------------------------------------------------- the deploy


def test_deploy_installs_checked_monitoring_files_then_changes_nothing(db, tmp_path: Path) -> None:
    """pyinfra on @local as db_primary and monitoring host, every path under tmp_path: the exporter's files,
    the promtool-checked rules and config, the dashboard and the CORS crontab; a second run changes nothing."""
    from tests.test_deploy import pyinfra, write_inventory

    etc = tmp_path / "etc"
    log = tmp_path / "actions.log"
    monitor = {
        "monitor_exporter_dsn": db.cluster.dsn(db.name),
        "monitor_exporter_queries_path": str(etc / "exporter" / "s10-queries.yml"),
        "monitor_exporter_env_path": str(etc / "default" / "prometheus-postgres-exporter"),
        "monitor_exporter_restart_command": f"echo exporter-restarted >> {log}",
        "monitor_rules_path": str(etc / "prometheus" / "s10-alerts.yml"),
        "monitor_prometheus_config_path": str(etc / "prometheus" / "prometheus.yml"),
        "monitor_prometheus_reload_command": f"echo prometheus-reloaded >> {log}",
        "monitor_dashboard_path": str(etc / "grafana" / "s10-dashboard.json"),
        "monitor_cors_cron_file": str(etc / "cron.d" / "s10-ops-cors"),
        "monitor_textfile_dir": str(tmp_path / "textfiles"),
        "monitor_cors_url": "https://api.example.com/api/auth/me",
        "monitor_cors_origin": ORIGIN,
        "maint_cron_file": str(etc / "cron.d" / "s10-ops-maintenance"),
        "maint_cron_user": "",
        "maint_log_file": str(tmp_path / "maint.log"),
        "maint_lock_dir": str(tmp_path / "run"),
    }
    inventory = write_inventory(tmp_path, db, **monitor)
    inventory.write_text(inventory.read_text() + "monitoring = (['@local'], _data)\n")

    first = pyinfra(inventory)
    assert first.returncode == 0, first.stdout
    assert log.read_text().split() == ["exporter-restarted", "prometheus-reloaded"]
    queries = yaml.safe_load((etc / "exporter" / "s10-queries.yml").read_text())
    assert set(queries) == {q.name for q in exporter.exporter_queries(MonitorSettings())}
    env_file = (etc / "default" / "prometheus-postgres-exporter").read_text()
    assert f"DATA_SOURCE_NAME='{db.cluster.dsn(db.name)}'" in env_file and "password=" not in env_file
    config = yaml.safe_load((etc / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == [str(etc / "prometheus" / "s10-alerts.yml")]
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9187"]
    assert "--metrics-file" in (etc / "cron.d" / "s10-ops-cors").read_text()
    assert dashboard.panel_queries(__import__("json").loads((etc / "grafana" / "s10-dashboard.json").read_text()))

    second = pyinfra(inventory)
    assert second.returncode == 0, second.stdout
    assert log.read_text().split() == ["exporter-restarted", "prometheus-reloaded"]  # nothing restarted again
    rows = [
        (row.split("  ")[0].strip(), m.group(2))
        for row in second.stdout.split("--> Results:")[-1].splitlines()
        if (m := re.search(r"\s(\d+)\s+(\d+|-)\s+(\d+|-)\s+(\d+|-)\s*$", row))
    ]
    assert len(rows) >= 10 and [name for name, success in rows if success != "-"] == []


def test_cors_check_refuses_a_metrics_file_it_cannot_write(tmp_path: Path) -> None:
    proc = run_ops(
        "playbook", "cors", "http://127.0.0.1:9/api", "--origin", ORIGIN,
        "--metrics-file", str(tmp_path / "missing" / "s10_cors.prom"),
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"ops: error: --metrics-file {tmp_path}/missing/s10_cors.prom: "
                                                f"directory {tmp_path}/missing does not exist"]  # fmt: skip


def test_render_rejects_a_bad_monitoring_setting_naming_it(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.py"
    inventory.write_text(
        "monitoring = (['mon1.example'], {'env': 'x', 'monitor_slow_ms': -5})\n"
        "db_primary = (['db1.example'], {'env': 'x', 'db_ops_bin': '/opt/ops'})\n"
    )
    proc = run_ops(
        "render", "--inventory", str(inventory), "--out", str(tmp_path / "out"), env={"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 2
    assert "slow_ms" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("schedule", "weekday", "days"),
    [
        ("0 6 * * 1", None, 7),  # usage: weekly
        ("0 3 1-7 * *", 7, 35),  # reindex + analyze: the first Sunday of each month
        ("0 4 1-7 1,4,7,10 *", 7, 91),  # bloat: the first Sunday of each quarter
        ("*/5 * * * *", None, 300 / 86400),  # the CORS check
        ("0 3 1 * 0", None, 7),  # both day fields restricted: cron runs on either
    ],
)
def test_longest_gap_of_the_maintenance_schedules(schedule: str, weekday: int | None, days: float) -> None:
    from ops.monitor.schedule import longest_gap

    assert longest_gap(schedule, weekday) == pytest.approx(days * 86400)
