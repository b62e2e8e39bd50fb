"""The import-linter contracts of pyproject.toml hold, and they do catch an upward import and a cycle."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.conf import settings

PACKAGES = tomllib.loads((Path(settings.BASE_DIR) / "pyproject.toml").read_text())["tool"]["importlinter"][
    "root_packages"
]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the packages and the contracts to break."""
    root = Path(settings.BASE_DIR)
    for package in PACKAGES:
        shutil.copytree(root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_house_keeps_its_contracts():
    result = _lint(Path(settings.BASE_DIR))
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_layers(tree):
    with (tree / "transactions" / "selectors.py").open("a") as module:
        module.write("\nfrom settlement.models import Imbalance  # noqa: E402, F401\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "transactions.selectors -> settlement.models" in result.stdout


def test_a_cycle_between_modules_breaks_the_contract(tree):
    with (tree / "settlement" / "services.py").open("a") as module:
        module.write("\nfrom settlement import dirty  # noqa: E402, F401\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "No module imports itself back BROKEN" in result.stdout
