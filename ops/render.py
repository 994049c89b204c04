"""``ops render``: write what the deploy would write on each web and app host, for review."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ops.errors import OpsError
from ops.output import emit_json, info, table

if TYPE_CHECKING:  # ops.cors (pydantic, jinja2) is imported when a render runs, not at CLI start-up
    from ops.cors import HostPlan, RenderedFile

SUBDIR = {"nginx-site": "nginx", "nginx-main": "nginx", "app-env": "app", "crontab": "cron"}
# ops/monitor/plan.py: the exporter's files on database hosts; rules, Prometheus, dashboard, CORS check on monitoring
SUBDIR |= dict.fromkeys(
    ["exporter-queries", "exporter-env", "prometheus-rules", "prometheus-config", "dashboard", "cors-cron"],
    "monitoring",
)


def _host_dir(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("_") or "host"


def db_primary_files(h: Any) -> list[RenderedFile]:
    """The crontab the deploy installs on a db_primary host (its settings validated like the deploy's)."""
    if "db_primary" not in h.groups:
        return []
    from ops.cors import RenderedFile
    from ops.deploy.cron import render as render_crontab
    from ops.deploy.provisioning import db_settings
    from ops.settings import MaintenanceSettings, host_settings

    _, db = db_settings(h.data, f"{h.name} (db_primary)")
    maint = host_settings(MaintenanceSettings, h.data, "maint", f"{h.name} (db_primary maintenance)")
    mode = 0o644 if maint.cron_user else 0o600  # as the deploy writes it
    return [RenderedFile("crontab", maint.cron_file, render_crontab(maint, db), mode)]


def render_env(env: str | None, inventory: str | None, out: Path, json: bool = False) -> list[dict]:
    """Validate every host's settings first, then write each host's files under ``out/<host>/``."""
    from ops.cors import host_plan
    from ops.deploy.inventory import inventory_path, load_hosts

    path = Path(inventory) if inventory else inventory_path(env or "")
    from ops.monitor.plan import host_files as monitoring_files

    plans: list[tuple[str, HostPlan | None, list[RenderedFile]]] = []
    hosts = load_hosts(path)
    for h in hosts:
        plan = host_plan(h.data, h.groups, h.name)
        files = list(plan.files) if plan is not None else []
        files += db_primary_files(h)
        files += monitoring_files(h, hosts)
        if files:
            plans.append((h.name, plan, files))
    if not plans:
        info(f"{path}: no host in the db_primary, web, app or monitoring group, nothing to render")
    written = []
    for name, plan, files in plans:
        for warning in plan.cors.warnings() if plan is not None else []:
            info(f"WARNING {name}: {warning}")
        for f in files:
            target = out / _host_dir(name) / SUBDIR[f.kind] / Path(f.dest).name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f.content)
                target.chmod(f.mode)
            except OSError as exc:
                raise OpsError(f"cannot write {target}: {exc.strerror}") from None
            written.append(
                {"host": name, "kind": f.kind, "file": str(target), "deploys_to": f.dest, "mode": f"{f.mode:04o}"}
            )
    if json:
        emit_json(0, f"rendered {len(written)} file(s) into {out}", {"files": written}, kind="action")
    else:
        table("rendered", ["host", "kind", "file", "deploys to", "mode"], [list(w.values()) for w in written])
    return written


def register(app: typer.Typer) -> None:
    @app.command("render")
    def render(
        out: Annotated[Path, typer.Option("--out", help="Directory to write into (created).")],
        env: Annotated[
            str | None, typer.Option("--env", help="Environment: reads inventory/<ENV>.py and its group data.")
        ] = None,
        inventory: Annotated[
            str | None, typer.Option("--inventory", help="An inventory file instead of --env.")
        ] = None,
        json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    ) -> None:
        """Render the Nginx site (and a standalone Nginx's main config), the app's CORS env file, the
        primary's maintenance crontab and the monitoring files (postgres_exporter's queries on the database
        hosts; alert rules, Prometheus config, dashboard and CORS check on the monitoring hosts), exactly as
        the deploy would write them, into OUT/<host>/.
        Every host's settings are validated first; no host is contacted."""
        if (env is None) == (inventory is None):
            raise typer.BadParameter("give exactly one of --env or --inventory")
        render_env(env, inventory, out, json)
