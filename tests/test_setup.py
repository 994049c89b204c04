"""scripts/system-packages.sh respects the machine: each target installs only what it needs, and the
script never stops, disables or reconfigures a service; the packages it installs are kept from
starting by a policy-rc.d that exists only around its own apt-get install.

The script runs for real (bash, its own logic), with dpkg-query, apt-get, systemctl and service
replaced by recorders on PATH: the test must not install packages or touch this machine's services.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ops import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "system-packages.sh"
DEMO = {"postgresql-15", "postgresql-contrib-15", "postgresql-15-hypopg", "nginx"}
TEST_ONLY = {"chromium", "wrk", "prometheus", "openssh-server"}

RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
"""
APT_GET = """#!/bin/sh
echo "apt-get $*" >> "{log}"
if [ "$1" = install ]; then
  if [ -x "{policy}" ] && grep -q 'exit 101' "{policy}"; then echo "policy-rc.d: in place" >> "{log}"; fi
fi
"""


def run_script(tmp_path: Path, *targets: str) -> tuple[subprocess.CompletedProcess[str], list[str], Path]:
    shims, log, policy = tmp_path / "bin", tmp_path / "calls.log", tmp_path / "policy-rc.d"
    shims.mkdir(exist_ok=True)
    log.write_text("")
    for name, text in {
        "dpkg-query": "#!/bin/sh\nexit 1\n",  # every package missing
        "id": "#!/bin/sh\necho 0\n",  # as root
        "apt-get": APT_GET,
        "systemctl": RECORDER,
        "service": RECORDER,
        "invoke-rc.d": RECORDER,
        "deb-systemd-invoke": RECORDER,
    }.items():
        (shims / name).write_text(text.format(log=log, policy=policy))
        (shims / name).chmod(0o755)
    env = {"PATH": f"{shims}:/usr/bin:/bin", "POLICY_RC_D": str(policy)}
    proc = subprocess.run(["bash", str(SCRIPT), *targets], env=env, capture_output=True, text=True, timeout=30)
    return proc, log.read_text().splitlines(), policy


def installed(calls: list[str]) -> set[str]:
    [install] = [c for c in calls if c.startswith("apt-get install")]
    return {word for word in install.split()[2:] if not word.startswith("-")}


def test_the_demo_installs_only_what_the_demo_needs_and_starts_no_service(tmp_path):
    proc, calls, policy = run_script(tmp_path, "demo")
    assert proc.returncode == 0, proc.stderr
    got = installed(calls)
    assert got <= DEMO and "nginx" in got and not got & TEST_ONLY, got
    assert "policy-rc.d: in place" in calls, "services of the packages it installs would start"
    assert not policy.exists(), "the policy-rc.d must exist only around the script's own apt-get install"
    touched = [c for c in calls if c.split()[0] in ("systemctl", "service", "invoke-rc.d", "deb-systemd-invoke")]
    assert touched == [], f"the script touched the machine's services: {touched}"


def test_the_tests_get_the_rest(tmp_path):
    proc, calls, _ = run_script(tmp_path, "test")
    assert proc.returncode == 0, proc.stderr
    assert TEST_ONLY <= installed(calls) and "nginx" in installed(calls)


def test_a_policy_rc_d_the_machine_has_is_left_as_it_is(tmp_path):
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\n# the machine's own\nexit 101\n")
    policy.chmod(0o755)
    proc, _, _ = run_script(tmp_path, "demo")
    assert proc.returncode == 0, proc.stderr
    assert policy.read_text() == "#!/bin/sh\n# the machine's own\nexit 101\n"


@pytest.mark.parametrize("target", ["nope", "--all"])
def test_an_unknown_target_is_one_line_and_exit_2(tmp_path, target):
    proc, calls, _ = run_script(tmp_path, target)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and target in proc.stderr
    assert not [c for c in calls if c.startswith("apt-get")]


def test_nothing_missing_means_nothing_run(tmp_path):
    # the real dpkg-query of this machine, where the packages are installed: no apt-get, no network
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    proc = subprocess.run(["bash", str(SCRIPT), "demo"], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
