"""Install ``ops`` on a host: a wheel built once per deploy from this checkout, into a venv.

The build id is a SHA-256 of everything the wheel carries (ops/, sql/, templates/, the packaging
files). The host keeps the id of what it has in ``<venv>/s10-ops.build``: the same id means no
build, no upload, no pip; a second deploy changes nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import posixpath
import shlex
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from pyinfra import host
from pyinfra.api import FactBase, FileUploadCommand, StringCommand, operation
from pyinfra.api.exceptions import PyinfraError

from ops import REPO_ROOT
from ops.deploy.provisioning import ProvisionSettings

SOURCES = ("ops", "sql", "templates")
PACKAGING = ("pyproject.toml", "setup.py")
WHEEL_CACHE = REPO_ROOT / ".local" / "wheels"
REMOTE_DIR = "/var/lib/s10-ops/wheels"
BUILD_STAMP = "s10-ops.build"


def _source_files() -> list[Path]:
    found = [REPO_ROOT / name for name in PACKAGING]
    for top in SOURCES:
        found += [
            p
            for p in (REPO_ROOT / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and "_data" not in p.parts and p.suffix != ".pyc"
        ]
    return sorted(found)


@cache
def build_id() -> str:
    """SHA-256 (16 hex digits) of the files the wheel is built from: changes exactly when the wheel would."""
    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@cache
def wheel() -> Path:
    """The wheel of this checkout, built once per build id (a file lock keeps parallel deploys to one build)."""
    out = WHEEL_CACHE / build_id()
    out.mkdir(parents=True, exist_ok=True)
    with open(WHEEL_CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = sorted(out.glob("*.whl"))
        if built:
            return built[0]
        with tempfile.TemporaryDirectory() as tmp:
            # Build from a copy: pip would leave build/ and *.egg-info in the checkout.
            src = Path(tmp) / "src"
            src.mkdir()
            for name in PACKAGING:
                shutil.copy2(REPO_ROOT / name, src / name)
            for top in SOURCES:
                shutil.copytree(REPO_ROOT / top, src / top, ignore=shutil.ignore_patterns("__pycache__", "_data"))
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
                capture_output=True,
                text=True,
                check=False,
            )
        if proc.returncode != 0:
            raise PyinfraError(f"building the ops wheel failed: {proc.stderr.strip().splitlines()[-1:]}")
        return sorted(out.glob("*.whl"))[0]


class OpsBuild(FactBase[str]):
    """The build id of the ops installed in a venv by the deploy ('' when none)."""

    @staticmethod
    def default() -> str:
        return ""

    def command(self, venv: str) -> str:  # type: ignore[override]
        stamp = shlex.quote(posixpath.join(venv, BUILD_STAMP))
        bin_ops = shlex.quote(posixpath.join(venv, "bin", "ops"))
        return f"if [ -x {bin_ops} ] && [ -f {stamp} ]; then cat {stamp}; else echo; fi"

    def process(self, output: list[str]) -> str:  # type: ignore[override]
        return (output[0] if output else "").strip()


def ops_is_current(prov: ProvisionSettings) -> bool:
    """True when the host's venv has exactly this checkout's ops (or the deploy does not install ops)."""
    if not prov.ops_venv:
        return True
    return host.get_fact(OpsBuild, venv=prov.ops_venv) == build_id()


@operation()
def ops_installed(prov: ProvisionSettings):
    """
    Install this checkout's ``ops`` into ``db_ops_venv`` (deps from the package index, or the wheelhouse).

    + prov: validated ``ProvisionSettings`` (ops_venv, ops_wheelhouse)

    Compares the ``OpsBuild`` fact with :func:`build_id`: equal means nothing to do. Otherwise
    builds the wheel (once per deploy), creates the venv if missing, uploads the wheel (and the
    wheelhouse's files), installs with pip and records the build id last, so an interrupted
    install is retried by the next deploy.
    """
    assert prov.ops_venv is not None
    venv = prov.ops_venv
    have = host.get_fact(OpsBuild, venv=venv)
    want = build_id()
    if have == want:
        host.noop(f"ops build {want} already installed in {venv}")
        return
    whl = wheel()
    q = shlex.quote
    remote_whl = posixpath.join(REMOTE_DIR, whl.name)
    yield StringCommand(f"mkdir -p {q(REMOTE_DIR)} && {{ [ -x {q(venv)}/bin/python ] || python3 -m venv {q(venv)}; }}")
    yield FileUploadCommand(str(whl), remote_whl)
    if prov.ops_wheelhouse:
        remote_house = posixpath.join(REMOTE_DIR, "wheelhouse")
        yield StringCommand(f"mkdir -p {q(remote_house)}")
        for item in sorted(Path(prov.ops_wheelhouse).glob("*.whl")):
            yield FileUploadCommand(str(item), posixpath.join(remote_house, item.name))
    yield StringCommand(_pip_command(venv, remote_whl, bool(prov.ops_wheelhouse)))
    yield StringCommand(f"echo {q(want)} > {q(posixpath.join(venv, BUILD_STAMP))}")


def _pip_command(venv: str, remote_whl: str, wheelhouse: bool) -> str:
    q = shlex.quote
    pip = f"{q(venv)}/bin/pip install -q --disable-pip-version-check"
    index = f" --no-index --find-links {q(posixpath.join(REMOTE_DIR, 'wheelhouse'))}" if wheelhouse else ""
    # Dependencies first (kept when they satisfy the pins), then the wheel itself reinstalled without
    # deps: same version number, new content.
    return f"{pip}{index} {q(remote_whl)} && {pip}{index} --force-reinstall --no-deps {q(remote_whl)}"
