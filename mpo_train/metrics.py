"""Per-step metrics: a jsonl file (the record), the accelerate trackers (tensorboard / wandb), a PNG of curves."""

from __future__ import annotations

import json
from pathlib import Path

CURVES = [("loss", ["loss", "loss_pref", "loss_qual", "loss_gen"]),
          ("rewards", ["rewards_chosen", "rewards_rejected", "rewards_margin", "delta"]),
          ("reward accuracy", ["rewards_accuracy", "eval_rewards_accuracy"]),
          ("gradient norm", ["grad_norm"]),
          ("learning rate", ["lr"]),
          ("response log-probs", ["logps_chosen", "logps_rejected"]),
          ("generation probe", ["probe_unparsable_rate", "probe_repetition"]),
          ("probe length (tokens)", ["probe_mean_length"])]


class MetricsLog:
    def __init__(self, path: Path, *, accelerator, resume_step: int = 0):
        self.path, self.accelerator = Path(path), accelerator
        if accelerator.is_main_process and self.path.exists():
            # a resumed run rewrites the steps after its checkpoint: drop them from the record
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        if not self.accelerator.is_main_process:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        self.accelerator.log(metrics, step=step)

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def plot(self, png: Path) -> Path | None:
        """Training curves, one panel per group of metrics."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        records = self.records()
        if not records:
            return None
        fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.6))
        for ax, (title, keys) in zip(axes, CURVES, strict=True):
            for key in keys:
                points = [(r["step"], r[key]) for r in records if key in r]
                if points:
                    ax.plot(*zip(*points, strict=True), label=key, marker="." if len(points) < 30 else None)
            ax.set_title(title)
            ax.set_xlabel("step")
            if ax.lines:
                ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(png, dpi=110)
        plt.close(fig)
        return png
