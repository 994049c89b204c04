"""Ship sql/ and templates/ inside the wheel as ops/_data/ (the deploy installs ops from a wheel on hosts).

The repository keeps them at the top level, where people and the other tools read them; an editable
install (``pip install -e``) reads them there through ``ops.REPO_ROOT``, a built wheel from ``ops/_data``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("sql", "templates")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # editable: ops reads the repo's own sql/ and templates/
        for name in SHIPPED:
            dest = Path(self.build_lib) / "ops" / "_data" / name
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(HERE / name, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithData})
