"""Real fresh Debian 12 hosts on this machine: a Docker engine, a bare image, containers on the host network.

    python -m ops.local.docker up [db1 web1 app1]   engine (started when none answers), image, containers
    python -m ops.local.docker env                  DOCKER_HOST=... for the shell
    python -m ops.local.docker down                 remove the containers; stop the engine if we started it

The engine runs without touching the machine's network (``--iptables=false --bridge=none``) and the
containers share the host's network namespace, so their services listen on loopback ports. The
image is made from Debian's packages (mmdebstrap minbase + python3; no registry is reachable here)
and cached outside the checkout, so tests and ``make docker-demo`` build it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ops.local.env import LOCAL_DIR

ENGINE_DIR = LOCAL_DIR / "docker"
SOCKET = ENGINE_DIR / "docker.sock"
PIDFILE = ENGINE_DIR / "dockerd.pid"
#: Everything mmdebstrap is given: the cache key of the image (change it, get a new image).
MMDEBSTRAP_ARGS = ["--variant=minbase", "--include=python3", "bookworm"]
IMAGE_KEY = hashlib.sha256(" ".join(MMDEBSTRAP_ARGS).encode()).hexdigest()[:12]
IMAGE = f"s10-ops/debian12-bare:{IMAGE_KEY}"
CONTAINER_PREFIX = "s10-"
LABEL = "s10-ops.local=1"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "s10-ops" / "docker"


def image_tarball() -> Path:
    return cache_dir() / f"debian12-bare-{IMAGE_KEY}.tar"


def _docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["docker", *args],
        env={**os.environ, "DOCKER_HOST": docker_host()},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:2])} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return proc


def docker_host() -> str:
    """An engine that already answers (DOCKER_HOST from the environment), else ours under .local/."""
    return os.environ.get("S10_DOCKER_HOST") or f"unix://{SOCKET}"


def answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return _docker("version", "--format", "{{.Server.Version}}", check=False, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def started_by_us() -> int | None:
    """The pid of the engine this checkout started, if it still runs."""
    try:
        pid = int(PIDFILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def engine_up() -> bool:
    """Start dockerd under .local/docker when no engine answers; True when this call started it."""
    if answers():
        return False
    if not shutil.which("dockerd"):
        raise SystemExit(
            "no Docker engine answers and dockerd is not installed (make system-packages installs docker.io)"
        )
    ENGINE_DIR.mkdir(parents=True, exist_ok=True)
    log = open(ENGINE_DIR / "dockerd.log", "ab")
    subprocess.Popen(
        [
            "dockerd",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--data-root",
            str(ENGINE_DIR / "data"),
            "--exec-root",
            str(ENGINE_DIR / "exec"),
            "-H",
            f"unix://{SOCKET}",
            "--pidfile",
            str(PIDFILE),
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if answers():
            return True
        time.sleep(0.5)
    raise SystemExit(f"dockerd did not answer within 60 s: see {ENGINE_DIR / 'dockerd.log'}")


def engine_down() -> None:
    """Stop the engine only if this checkout started it (its pidfile under .local/docker)."""
    pid = started_by_us()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if started_by_us() is None:
            break
        time.sleep(0.2)
    _unmount_leftovers()


def _unmount_leftovers() -> None:
    """dockerd can leave its network-namespace mount (exec/netns/default) behind: unmount what lies
    under our own engine directory, deepest first, so `rm -rf .local` works. Nothing outside it."""
    root = str(ENGINE_DIR.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    for point in sorted((p for p in points if p.startswith(root)), key=len, reverse=True):
        subprocess.run(["umount", point], capture_output=True, check=False)


def build_tarball() -> Path:
    """mmdebstrap the bare image once (about a minute); reused from the cache afterwards."""
    tar = image_tarball()
    if tar.exists():
        return tar
    if not shutil.which("mmdebstrap"):
        raise SystemExit("mmdebstrap is not installed (make system-packages installs it)")
    tar.parent.mkdir(parents=True, exist_ok=True)
    partial = tar.with_suffix(".partial.tar")
    print(f"building the bare Debian 12 image with mmdebstrap (once, cached in {tar.parent})", file=sys.stderr)
    proc = subprocess.run(["mmdebstrap", "-q", *MMDEBSTRAP_ARGS, str(partial)], capture_output=True, text=True)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise SystemExit(f"mmdebstrap failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    partial.rename(tar)
    return tar


def image() -> str:
    if _docker("image", "inspect", IMAGE, check=False).returncode != 0:
        _docker("import", "-c", 'CMD ["sleep", "infinity"]', str(build_tarball()), IMAGE, timeout=600)
    return IMAGE


def container_name(name: str) -> str:
    return CONTAINER_PREFIX + name


def containers_up(names: list[str]) -> list[str]:
    """Bare containers (started if missing) on the host network; returns their names."""
    img = image()
    running = set(_docker("ps", "--filter", f"label={LABEL}", "--format", "{{.Names}}").stdout.split())
    out = []
    for name in names:
        cname = container_name(name)
        if cname not in running:
            _docker("rm", "-f", cname, check=False)
            _docker(
                "run",
                "-d",
                "--init",
                "--network",
                "host",
                "--label",
                LABEL,
                "--name",
                cname,
                img,
                "sleep",
                "infinity",
            )
        out.append(cname)
    return out


def containers_down(names: list[str] | None = None) -> None:
    if not answers():
        return
    if names is None:
        names_out = _docker("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}").stdout.split()
    else:
        names_out = [container_name(n) for n in names]
    if names_out:
        _docker("rm", "-f", *names_out, check=False, timeout=120)


def wheelhouse() -> Path:
    """The ops wheel's dependencies as wheels (the containers cannot reach the package index), cached per build."""
    from ops.deploy.install import wheel

    whl = wheel()
    house = whl.parent / "wheelhouse"
    if not any(house.glob("*.whl")):
        house.mkdir(exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", str(house), str(whl)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"building the wheelhouse failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        for own in house.glob("s10_ops-*.whl"):
            own.unlink()  # the deploy uploads this checkout's wheel itself
    return house


def exec_in(name: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return _docker("exec", container_name(name), *argv, check=False, timeout=timeout)


def main(argv: list[str]) -> None:
    cmd = argv[0] if argv else "up"
    names = argv[1:] or ["db1", "web1", "app1"]
    if cmd == "up":
        started = engine_up()
        print(
            f"docker engine: {docker_host()}" + (" (started under .local/docker)" if started else ""), file=sys.stderr
        )
        print(json.dumps(containers_up(names)))
    elif cmd == "env":
        print(f"export DOCKER_HOST={docker_host()}")
    elif cmd == "down":
        containers_down()
        engine_down()
    elif cmd == "image":
        print(image() if engine_up() or answers() else "")
    else:
        raise SystemExit(f"unknown command {cmd!r}: up [names], env, down, image")


if __name__ == "__main__":
    main(sys.argv[1:])
