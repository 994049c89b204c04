"""S10 ops: online index migrations, CORS edge configs, scheduled maintenance, playbooks."""

from importlib.resources import files
from pathlib import Path

__version__ = "0.1.0"

#: The repository root: in a checkout (editable install) sql/ and templates/ sit beside the package.
REPO_ROOT = Path(__file__).resolve().parent.parent


def _data_root() -> Path:
    """Where sql/ and templates/ are: ops/_data in a wheel install (setup.py ships them), else the checkout."""
    shipped = Path(str(files("ops").joinpath("_data")))
    return shipped if (shipped / "sql").is_dir() else REPO_ROOT


DATA_ROOT = _data_root()
SQL_DIR = DATA_ROOT / "sql"
TEMPLATES_DIR = DATA_ROOT / "templates"
