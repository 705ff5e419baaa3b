"""cards: dataset and model card templates (Jinja), filled from build manifests and eval results."""
