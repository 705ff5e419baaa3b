"""The README's commands are the ones CI runs, and its commands for this machine work exactly as printed, run the
way a reader runs them: from a checkout, with no environment activated (the commands name `.venv/bin/python`,
the scripts find `.venv` themselves)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _readme_commands():
    block = re.search(r"## Set up, run, test\n+```bash\n(.*?)```", README, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def printed(start: str) -> str:
    """The README's command that starts with ``start`` (continuation lines joined), exactly as printed."""
    lines = README.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(start):
            command = line
            while command.rstrip().endswith("\\"):
                i += 1
                command = command.rstrip()[:-1].rstrip() + " " + lines[i].strip()
            return command.split("  #")[0].strip()
    raise AssertionError(f"the README prints no command starting with {start!r}")


def plain_env(**extra: str) -> dict[str, str]:
    """This environment as a fresh shell has it: no virtual environment activated, no interpreter chosen for the
    scripts (the project is importable through PYTHONPATH, as CI's checkout is through its editable install)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHON", "CONDA_PREFIX")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


def checkout_view(folder: Path) -> Path:
    """A folder that looks like the checkout (its code, scripts, recipes and .venv linked in) so that a printed
    command's relative outputs (runs/...) land there, not in the repository."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (".venv", "scripts", "mpo_train", "mmpr", "evals", "configs", "cards", "experiments"):
        if (ROOT / name).exists() and not (folder / name).exists():
            (folder / name).symlink_to(ROOT / name)
    return folder


def run_printed(command: str, cwd: Path, timeout: int = 1800, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(shlex.split(command), cwd=cwd, env=plain_env(**env), capture_output=True, text=True,
                          timeout=timeout)


def test_ci_runs_the_readme_setup_and_test_commands():
    setup_and_main, test = _readme_commands()
    setup, _, main_job = setup_and_main.partition(" && ")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup in ci, "CI must run the README's setup command"
    assert test in ci, "CI must run the README's test command"
    assert main_job.startswith(".venv/bin/python -m mmpr.build")


def test_the_printed_commands_for_this_machine_are_found():
    assert printed(".venv/bin/python -m mpo_train").endswith("output_dir=runs/mpo-demo")
    assert "--data mathvista=path/to/mathvista_testmini.parquet" in printed(".venv/bin/python -m evals.run")
    for command in ("bash experiments/tiny_grid/reproduce.sh runs/tiny --quick",
                    "bash scripts/reproduce_internvl2_8b_mpo.sh"):
        assert printed(command) == command


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The README's main job, run once as printed; the train and eval commands below reuse its output."""
    view = checkout_view(tmp_path_factory.mktemp("checkout"))
    result = run_printed(_readme_commands()[0].partition(" && ")[2], view)
    return view, result


@pytest.mark.slow
def test_the_readme_main_job_runs(demo):
    view, result = demo
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dataset written to" in result.stdout
    engine_lines = [line for line in result.stdout.splitlines() if re.match(r"(DEBUG|INFO|WARNING|ERROR) \d", line)]
    assert not engine_lines, "results on stdout; engine logs go to the build's log file"
    assert (view / "runs" / "demo" / ".mmpr-work" / "build.log").is_file()
    from datasets import load_dataset

    assert len(load_dataset(str(view / "runs" / "demo"), split="train")) > 0


@pytest.mark.slow
def test_the_readme_training_command_runs_on_the_demo_dataset(demo):
    view, built = demo
    assert built.returncode == 0, built.stderr[-3000:]
    result = run_printed(printed(".venv/bin/python -m mpo_train"), view)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (view / "runs" / "mpo-demo" / "final" / "config.json").is_file()


@pytest.mark.slow
def test_the_readme_eval_command_runs_on_a_local_mathvista(demo):
    from datasets import Dataset

    from tests.evals.conftest import MATHVISTA_FEATURES, mathvista_rows

    view, _ = demo
    parquet = view / "path" / "to" / "mathvista_testmini.parquet"  # the path the README prints
    parquet.parent.mkdir(parents=True)
    Dataset.from_list(mathvista_rows(8), features=MATHVISTA_FEATURES).to_parquet(str(parquet))
    result = run_printed(printed(".venv/bin/python -m evals.run"), view)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mathvista:" in result.stdout and (view / "runs" / "eval-tiny" / "results.json").is_file()
