"""The distribution's name: free on the package index (``sloth`` belongs to another project),
the same in pyproject.toml and the README, the import name staying ``sloth``."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_distribution_name_agrees_between_pyproject_and_readme():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = project["name"]
    assert name != "sloth"  # taken on the Python Package Index by an unrelated project
    readme = (ROOT / "README.md").read_text()
    assert f"`{name}`" in readme
    assert project["scripts"]["sloth"] == "sloth.cli:main"
    assert (ROOT / "sloth" / "__init__.py").is_file()  # the import name
