"""Every data file inside the package (bundled weights, templates, static files) is listed in pyproject's
package-data, so a non-editable install (the deploy image) ships it: a missing weights file would not fail,
the learned tile filter would quietly fall back to its rules."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_data_file_of_the_package_is_in_package_data():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = [p for p in (REPO / "lpd_pipeline").rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert any(p.name == "text_net.pt" for p in files)  # the test sees the bundled weights
    missing = []
    for path in files:
        package_dir = path.parent
        while package_dir != REPO and not (package_dir / "__init__.py").is_file():
            package_dir = package_dir.parent
        package = ".".join(package_dir.relative_to(REPO).parts)
        relative = path.relative_to(package_dir).as_posix()
        if not any(fnmatch.fnmatchcase(relative, pattern) for pattern in patterns.get(package, [])):
            missing.append(f"{package}: {relative}")
    assert not missing, f"not in [tool.setuptools.package-data] of pyproject.toml: {missing}"
