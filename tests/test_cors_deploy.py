"""The real pyinfra deploy of the CORS files on @local: idempotent, reloads on change, and a config
that fails ``nginx -t`` (or bad settings) leaves the running Nginx serving the old one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ops import REPO_ROOT, TEMPLATES_DIR
from ops.cors import CorsSettings
from ops.local.pg import free_port
from ops.local.webstack import WebStack, web_settings

PYINFRA = Path(sys.executable).with_name("pyinfra")
ORIGIN = "http://localhost:3000"


class Deploy:
    def __init__(self, root: Path):
        self.root = root
        self.port, self.app_port = free_port(), free_port()
        self.inventory = root / "inventory.py"
        self.restarts = root / "restarts.log"
        self.stack = WebStack(root=root, cors=CorsSettings(origins=[ORIGIN]), port=self.port, app_port=self.app_port)

    def run(self, extra_env: dict[str, str] | None = None, **cors) -> subprocess.CompletedProcess[str]:
        web = web_settings(self.root, self.port, self.app_port)
        data = {f"web_{k}": v for k, v in web.model_dump().items() if v is not None}
        data |= {
            "env": "deploytest",
            "app_env_path": str(self.stack.app.env_file),
            "app_restart_command": f"echo restart >> {self.restarts}",
            "cors_origins": [ORIGIN],
            **{f"cors_{k}": v for k, v in cors.items()},
        }
        self.inventory.write_text(f"_data = {data!r}\nweb = (['@local'], _data)\napp = (['@local'], _data)\n")
        env = {**os.environ, "COLUMNS": "200", **(extra_env or {})}
        return subprocess.run(
            [str(PYINFRA), "-y", str(self.inventory), "deploy.py"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def max_age(self) -> str | None:
        r = httpx.options(
            self.stack.base_url + "/api/auth/me",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
        )
        return r.headers.get("access-control-max-age")

    def wait_max_age(self, expected: str) -> str | None:
        deadline = time.monotonic() + 10
        while (seen := self.max_age()) != expected and time.monotonic() < deadline:
            time.sleep(0.1)  # a reload starts new workers
        return seen

    @property
    def site(self) -> Path:
        return self.stack.prefix / "conf" / "s10-site.conf"

    def restart_count(self) -> int:
        return len(self.restarts.read_text().splitlines()) if self.restarts.exists() else 0


def changed_ops(proc: subprocess.CompletedProcess[str]) -> str:
    """The Success column of pyinfra's Grand total line: '-' when nothing changed."""
    m = re.search(r"Grand total\s+\d+\s+(\S+)", proc.stdout + proc.stderr)
    assert m, proc.stdout + proc.stderr
    return m.group(1)


@pytest.fixture
def deploy(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    root.chmod(0o755)
    d = Deploy(root)
    yield d
    d.stack.stop()


def test_deploy_installs_reloads_on_change_and_keeps_old_config_when_nginx_t_fails(deploy, tmp_path):
    first = deploy.run(max_age=86400)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Chromium caches a preflight for 7200 s" in first.stdout + first.stderr
    deploy.stack.start()
    assert deploy.max_age() == "86400"
    assert (deploy.stack.app.env_file.stat().st_mode & 0o777) == 0o640

    again = deploy.run(max_age=86400)
    assert again.returncode == 0 and changed_ops(again) == "-", again.stdout
    assert deploy.restart_count() == 1  # the app was restarted for the first env file only

    changed = deploy.run(max_age=600)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert deploy.wait_max_age("600") == "600"
    assert deploy.restart_count() == 2

    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, broken)
    site_template = broken / "nginx" / "s10-site.conf.j2"
    site_template.write_text(
        site_template.read_text().replace("    location /api/ {", "    bogus_directive on;\n    location /api/ {")
    )
    live = deploy.site.read_text()
    failed = deploy.run(extra_env={"S10_TEMPLATES_DIR": str(broken)}, max_age=7200)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert 'unknown directive "bogus_directive"' in output and "running config stays in place" in output, output
    assert deploy.site.read_text() == live
    staging = deploy.stack.prefix / "staging"
    assert staging.is_dir() and not list(staging.iterdir())  # no candidate, wrapper or backup left
    assert sorted(p.name for p in deploy.site.parent.iterdir()) == ["nginx.conf", "s10-site.conf"]
    time.sleep(0.3)
    assert deploy.max_age() == "600"  # still serving the old config


def test_bad_settings_fail_the_deploy_before_any_host_is_touched(deploy):
    proc = deploy.run(origins=["null"])
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "cors_*: origins: " in output and "'null' is never allowed" in output, output
    assert "Traceback" not in output
    assert not deploy.site.exists() and not deploy.stack.app.env_file.exists()


def test_a_clash_with_the_hosts_own_config_is_undone(tmp_path):
    """The candidate passes nginx -t alone but clashes with the host's config: the old file comes back."""
    from ops.cors import render_host, render_main
    from ops.deploy.web import CANDIDATE, CHECK, install_command, staged

    prefix = tmp_path / "nginx"
    (prefix / "conf").mkdir(parents=True)
    (prefix / "staging").mkdir()
    (prefix / "logs").mkdir()
    web = web_settings(tmp_path, free_port(), free_port()).model_copy(
        update={"main_conf": str(prefix / "conf" / "host.conf"), "reload_command": "echo reloaded"}
    )
    # The host's own main config includes our site and something else that defines the same upstream.
    Path(web.main_conf).write_text(
        render_main(web, web.site_path).replace("include ", "include clash.conf;\n    include ", 1)
    )
    (prefix / "conf" / "clash.conf").write_text("upstream s10_app { server 127.0.0.1:9; }\n")
    site = next(f for f in render_host("t", CorsSettings(origins=[ORIGIN]), web, None) if f.kind == "nginx-site")
    old = "# the site as it was\n"
    Path(web.site_path).write_text(old)
    Path(staged(web, web.site_path, CANDIDATE)).write_text(site.content)
    Path(staged(web, web.site_path, CHECK)).write_text(render_main(web, staged(web, web.site_path, CANDIDATE)))

    proc = subprocess.run(["sh", "-c", install_command(web, [site])], capture_output=True, text=True)
    assert proc.returncode == 1
    assert 'duplicate upstream "s10_app"' in proc.stderr and "running config stays in place" in proc.stderr
    assert "reloaded" not in proc.stdout
    assert Path(web.site_path).read_text() == old
    assert not list((prefix / "staging").iterdir())
