"""Test hosts reachable over real SSH on this machine: one sshd per loopback address
(127.0.0.2, 127.0.0.3, ...), each with its own host key and a key pair made by the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ops.local.pg import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

SSHD_CONFIG = """\
ListenAddress {address}:{port}
HostKey {root}/ssh_host_ed25519_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
"""


def make_key(path: Path) -> Path:
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass
class SshHost:
    """An sshd on ``address``; ``root`` holds its keys and the paths the deploy writes for this host."""

    name: str
    address: str
    root: Path
    client_key: Path
    port: int = field(default_factory=lambda: free_port("127.0.0.1"))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        make_key(self.root / "ssh_host_ed25519_key")
        shutil.copy(self.client_key.with_suffix(".pub"), self.root / "authorized_keys")
        conf = self.root / "sshd_config"
        conf.write_text(SSHD_CONFIG.format(address=self.address, port=self.port, root=self.root))
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(conf)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [
                    "ssh",
                    "-i",
                    str(self.client_key),
                    "-p",
                    str(self.port),
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "LogLevel=ERROR",
                    f"root@{self.address}",
                    "true",
                ],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                self._trust()
                return
            time.sleep(0.2)
        raise RuntimeError(f"sshd on {self.address}:{self.port} did not come up")

    @property
    def known_hosts(self) -> Path:
        return self.client_key.parent / "known_hosts"

    def _trust(self) -> None:
        """Record this host's key, so clients check it strictly (no trust-on-first-use)."""
        pub = (self.root / "ssh_host_ed25519_key.pub").read_text().split()
        entry = f"[{self.address}]:{self.port} {pub[0]} {pub[1]}\n"
        lines = self.known_hosts.read_text().splitlines(keepends=True) if self.known_hosts.exists() else []
        lines = [ln for ln in lines if not ln.startswith(f"[{self.address}]:")] + [entry]
        self.known_hosts.write_text("".join(lines))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def inventory_data(self) -> dict[str, object]:
        return {
            "ssh_hostname": self.address,
            "ssh_port": self.port,
            "ssh_user": os.environ.get("USER", "root") if os.geteuid() != 0 else "root",
            "ssh_key": str(self.client_key),
            "ssh_strict_host_key_checking": "yes",
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_connect_retries": 0,
            "host_root": str(self.root),
        }
