"""The README's commands are the ones CI runs, and its main job works as written."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    block = re.search(r"## Set up, run, test\n+```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_setup_and_test_commands():
    setup_and_main, test = _readme_commands()
    setup, _, main_job = setup_and_main.partition(" && ")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert setup in ci, "CI must run the README's setup command"
    assert test in ci, "CI must run the README's test command"
    assert main_job.startswith(".venv/bin/python -m mmpr.build")


@pytest.mark.slow
def test_the_readme_main_job_runs(tmp_path):
    main_job = _readme_commands()[0].partition(" && ")[2]
    argv = shlex.split(main_job)
    argv[0] = sys.executable
    argv[argv.index("--out") + 1] = str(tmp_path / "demo")
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dataset written to" in result.stdout
    engine_lines = [line for line in result.stdout.splitlines() if re.match(r"(DEBUG|INFO|WARNING|ERROR) \d", line)]
    assert not engine_lines, "results on stdout; engine logs go to the build's log file"
    assert (tmp_path / "demo" / ".mmpr-work" / "build.log").is_file()
    from datasets import load_dataset

    assert len(load_dataset(str(tmp_path / "demo"), split="train")) > 0
