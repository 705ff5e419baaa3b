"""No test file under tests/ is left out of a run: pytest skips folders by name (``norecursedirs``)."""

from fnmatch import fnmatch
from pathlib import Path

TESTS = Path(__file__).parent


def _test_files() -> set[Path]:
    return {p.resolve() for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts}


def test_no_test_folder_is_skipped_by_name(pytestconfig):
    patterns = pytestconfig.getini("norecursedirs")
    hidden = [str(path.relative_to(TESTS)) for path in _test_files()
              if any(fnmatch(part, pattern) for part in path.relative_to(TESTS).parent.parts for pattern in patterns)]
    assert not hidden, f"norecursedirs {patterns} hides {hidden}"
    assert "build" not in patterns


def test_a_whole_run_collects_every_test_file(request):
    """Where this run was asked for all of tests/, every test file there gave at least one test."""
    asked = [Path(a.split("::")[0]).resolve() for a in request.config.args] or [TESTS.resolve()]
    if TESTS.resolve() not in asked and Path.cwd().resolve() not in asked:
        asked_files = {p for p in _test_files() if any(p == a or a in p.parents for a in asked)}
    else:
        asked_files = _test_files()
    collected = {Path(item.path).resolve() for item in request.session.items}
    missing = sorted(str(p.relative_to(TESTS.resolve())) for p in asked_files - collected)
    assert not missing, f"test files that pytest did not collect: {missing}"
