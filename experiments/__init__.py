"""Experiments built with the project's own commands, each in its own folder (generator, task, report, script and
a ``LOG.md`` of what was run and measured). They plug into the product through its registries and nothing in
``mmpr``, ``mpo_train`` or ``evals`` imports them."""
