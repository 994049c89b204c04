"""The local demo environment (python -m ops.local.env): taken ports named with the variable that moves
them and the log to read, before anything starts; ports left in TIME-WAIT by a server that just
stopped are free (make demo-down && make demo); one line without the demo, help with --help."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.local.pg import free_port, port_taken
from ops.local.standin import StandIn
from tests.conftest import run_local_env


def local_env(*args: str, tmp: Path, **ports: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "S10_LOCAL_"))}
    env["S10_LOCAL_DIR"] = str(tmp)
    for name in ("PGPORT", "WEBPORT", "APPPORT"):
        env[f"S10_LOCAL_{name}"] = str(ports.get(name.lower(), free_port()))
    return run_local_env(*args, env=env, timeout=60)


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("command", "port", "variable", "log"),
    [
        ("up", "pgport", "S10_LOCAL_PGPORT", "pg/server.log"),
        ("demo", "pgport", "S10_LOCAL_PGPORT", "pg/server.log"),
        ("demo", "webport", "S10_LOCAL_WEBPORT", "nginx/logs/error.log"),
        ("demo", "appport", "S10_LOCAL_APPPORT", "app/standin.log"),
    ],
)
def test_a_taken_port_is_named_with_its_variable_and_log_before_anything_starts(
    tmp_path, listener, command, port, variable, log
):
    proc = local_env(command, tmp=tmp_path, **{port: listener})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    [said] = proc.stderr.strip().splitlines()
    assert f"127.0.0.1:{listener}" in said and "taken" in said, said
    assert variable in said and str(tmp_path / log) in said, said
    assert not (tmp_path / "pg").exists(), "nothing half-done: no cluster made before the ports were checked"


def time_wait_port() -> int:
    """A port with a connection in TIME-WAIT and nothing listening: what a server that just stopped leaves."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its end of the connection goes to TIME-WAIT
    time.sleep(0.1)
    client.close()
    server.close()
    return port


def test_a_port_in_time_wait_is_free(tmp_path):
    port = time_wait_port()
    with socket.socket() as plain:  # the old probe, without SO_REUSEADDR, calls it taken
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    assert port_taken("127.0.0.1", port) is None
    env_file = tmp_path / "cors.env"
    env_file.write_text("")
    app = StandIn(env_file=env_file, port=port, pidfile=tmp_path / "app.pid", logfile=tmp_path / "app.log")
    try:
        app.start()  # make demo-down && make demo at once: the stand-in app starts on its port
        assert app.running()
    finally:
        app.stop()


def test_a_listening_port_is_taken(listener):
    assert port_taken("127.0.0.1", listener) == "Address already in use"


def test_without_the_demo_one_line_and_help_with_help(tmp_path):
    proc = local_env(tmp=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    [said] = proc.stdout.strip().splitlines()
    assert "stopped" in said and "make demo" in said
    helped = local_env("--help", tmp=tmp_path)
    assert helped.returncode == 0 and "S10_LOCAL_PGPORT" in helped.stdout and "demo" in helped.stdout
    assert helped.stderr == ""
    env = local_env("env", tmp=tmp_path)
    assert env.returncode == 0 and "export PGHOST=" in env.stdout
    bad = local_env("nope", tmp=tmp_path)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and "Traceback" not in bad.stderr


def test_a_server_that_will_not_start_names_the_port_and_the_log_line_that_says_why():
    import tempfile

    from ops.errors import OpsError
    from ops.local.pg import Cluster

    cluster = Cluster(root=Path(tempfile.mkdtemp(prefix="s10pg-")), port=free_port())
    cluster.init(fsync=False)
    with open(cluster.data / "postgresql.conf", "a") as conf:
        conf.write("shared_buffers = 'plenty'\n")
    try:
        with pytest.raises(OpsError) as failed:
            cluster.start()
    finally:
        cluster.destroy()
    said = str(failed.value)
    assert f"port {cluster.port}" in said and str(cluster.logfile) in said and "FATAL" in said, said
