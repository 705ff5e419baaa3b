"""The ``synthetic_grid`` source of ``mmpr.build``: the training questions written by ``python -m
experiments.tiny_grid.generate data OUT`` (``OUT/train.jsonl``). Registered by name in :data:`mmpr.sources.SOURCES`
as a lazy entry, so that naming it imports this module and listing the sources does not."""

from __future__ import annotations

from mmpr.errors import UserError
from mmpr.sources import Columns, DatasetSource, SourceSpec


def synthetic_grid(spec: SourceSpec) -> DatasetSource:
    if not spec.path:
        raise UserError("the synthetic_grid source needs a path: the train.jsonl written by "
                        "`python -m experiments.tiny_grid.generate data OUT`")
    return DatasetSource(name="synthetic_grid", path=spec.path, columns=Columns(id="id", answer_type="answer_type"),
                         category="mathematics", require_image=True)
