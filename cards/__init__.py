"""cards: dataset and model card templates (Jinja), filled from build manifests and eval results."""

from cards.render import render_dataset_card, render_model_card

__all__ = ["render_dataset_card", "render_model_card"]
