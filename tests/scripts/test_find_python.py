"""scripts/find_python.sh: the scripts run on the checkout's .venv without an activated environment, and say in
one line how to make one when there is none."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_readme import plain_env

ROOT = Path(__file__).resolve().parents[2]


def _checkout(tmp_path: Path) -> Path:
    """A checkout of the scripts alone (copied: the scripts find the checkout from where they lie)."""
    shutil.copytree(ROOT / "scripts", tmp_path / "checkout" / "scripts")
    shutil.copytree(ROOT / "experiments", tmp_path / "checkout" / "experiments",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "checkout"


@pytest.mark.parametrize("script, args", [("experiments/tiny_grid/reproduce.sh", ["runs/tiny", "--quick"]),
                                          ("scripts/reproduce_internvl2_8b_mpo.sh", [])])
def test_the_scripts_run_the_checkouts_venv(tmp_path, script, args):
    checkout = _checkout(tmp_path)
    calls = tmp_path / "calls.txt"
    python = checkout / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\nexit 3\n')  # records, then fails the step
    python.chmod(0o755)
    env = plain_env(WORK=str(tmp_path / "work"))
    (tmp_path / "work" / "MMPR-v1.0").mkdir(parents=True)  # the downloads are done: the first python step runs
    (tmp_path / "work" / "MMPR-v1.0" / "meta.json").write_text("{}")
    (tmp_path / "work" / "original" / "InternVL2-8B").mkdir(parents=True)
    (tmp_path / "work" / "original" / "InternVL2-8B" / "config.json").write_text("{}")
    done = subprocess.run(["bash", script, *args], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    first = calls.read_text().splitlines()[0]
    assert first.startswith(("-m experiments.tiny_grid.generate", "-m mmpr.convert")), first


def test_without_an_environment_the_scripts_say_how_to_make_one(tmp_path):
    checkout = _checkout(tmp_path)
    bare = tmp_path / "bin"  # a PATH with bash and the basic tools, and no python at all
    bare.mkdir()
    for tool in ("bash", "dirname", "readlink", "date", "mkdir", "cat", "env"):
        found = shutil.which(tool)
        if found:
            (bare / tool).symlink_to(found)
    env = {**plain_env(), "PATH": str(bare)}
    done = subprocess.run(["bash", "experiments/tiny_grid/reproduce.sh", "runs/tiny", "--quick"], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "run 'bash scripts/setup.sh'" in done.stderr, done.stderr
    assert not (checkout / "runs").exists()
