"""Every module of every package imports, and the tree passes ruff (F821 included)."""

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["mmpr", "mpo_train", "evals", "cards", "experiments"]


def _modules():
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield name
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            yield info.name


@pytest.mark.parametrize("module", sorted(_modules()))
def test_module_imports(module):
    importlib.import_module(module)


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "E,F,W,I,B,UP", str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_front_doors_import_the_cli():
    """Library code never imports :mod:`mmpr.cli`: only a module that is itself a front door (it wraps a ``main``
    in ``front_door``) may."""
    offenders = []
    for name in [*PACKAGES, "experiments"]:
        for path in (ROOT / name).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "from mmpr.cli import" in text and "@front_door" not in text and path.name != "cli.py":
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


def test_importing_the_build_library_imports_neither_its_cli_nor_the_hub():
    code = ("import sys, mmpr.build\n"
            "print([m for m in ('mmpr.cli', 'mmpr.build.cli', 'huggingface_hub', 'datasets') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
