"""S10 ops: online index migrations, CORS edge configs, scheduled maintenance, playbooks."""

from pathlib import Path

__version__ = "0.1.0"

#: The repository root (the package is installed editable, so sql/ and templates/ sit beside it).
REPO_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = REPO_ROOT / "sql"
TEMPLATES_DIR = REPO_ROOT / "templates"
