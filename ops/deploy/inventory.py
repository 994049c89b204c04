"""Load an inventory file the way the pyinfra CLI does, for commands that run outside a deploy.

``ops render`` uses it so the data it renders from (inventory groups, ``group_data/*.py``,
host data, with pyinfra's precedence) is exactly the data ``deploy.py`` sees as ``host.data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyinfra.api import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from ops import REPO_ROOT
from ops.errors import UsageError
from ops.settings import SAFE_NAME

INVENTORY_DIR = REPO_ROOT / "inventory"


@dataclass(frozen=True)
class InventoryHost:
    name: str
    groups: list[str]
    data: Any  # pyinfra HostData: .get(key)


def inventory_path(env: str) -> Path:
    """inventory/<env>.py, or a clear error listing the environments there are."""
    if not SAFE_NAME.match(env):
        raise UsageError(f"--env {env!r}: letters, digits, '.', '_' and '-' only")
    path = INVENTORY_DIR / f"{env}.py"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in INVENTORY_DIR.glob("*.py"))) or "none"
        raise UsageError(f"no inventory for environment {env!r} (inventory/{env}.py); environments: {have}")
    return path


def load_hosts(path: Path) -> list[InventoryHost]:
    """Every host in the inventory file with its groups and merged data, as pyinfra would load them."""
    if not path.is_file():
        raise UsageError(f"inventory file not found: {path}")
    try:
        with ctx_state.use(State()):
            inventory = make_inventory(str(path), cwd=str(Path.cwd()))
    except Exception as exc:  # an inventory is a Python module: any error in it is the user's to fix
        raise UsageError(f"cannot load inventory {path}: {type(exc).__name__}: {exc}") from None
    return [InventoryHost(h.name, list(dict.fromkeys(h.groups)), h.data) for h in inventory]
