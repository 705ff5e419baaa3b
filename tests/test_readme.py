"""The README's commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    block = re.search(r"## Set up, run, test\n+```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_setup_and_test_commands():
    commands = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[0] in ci, "CI must run the README's setup command"
    assert commands[-1] in ci, "CI must run the README's test command"
