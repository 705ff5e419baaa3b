import subprocess
import sys

import pytest

from mmpr.errors import UserError
from mmpr.sources import SOURCES, SourceSpec, make_source


def test_the_build_names_the_source_without_importing_the_experiment():
    code = ("import sys\nfrom mmpr.sources import available_sources\n"
            "print('synthetic_grid' in available_sources(), 'experiments.tiny_grid.source' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"], done.stdout + done.stderr
    assert SOURCES.get("synthetic_grid").__module__ == "experiments.tiny_grid.source"


def test_the_source_needs_the_generators_train_file():
    with pytest.raises(UserError, match="the synthetic_grid source needs a path: the train.jsonl written by "
                                        "`python -m experiments.tiny_grid.generate data OUT`"):
        make_source(SourceSpec(name="synthetic_grid"))
