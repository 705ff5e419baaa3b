"""The Mixed Preference Optimization loss (Wang et al., 2024, arXiv 2411.10442, the MPO objective):

    L = w_p * L_pref + w_q * L_qual + w_g * L_gen            (defaults w = (0.8, 0.2, 1.0), beta = 0.1)

with logratio(y) = log pi_theta(y|x) - log pi_ref(y|x), each log-prob summed over the response tokens, and
r(y) = beta * logratio(y):

    L_pref = -log sigmoid(r(y_c) - r(y_r))                                   (preference, DPO: "sigmoid")
    L_qual = -log sigmoid(r(y_c) - delta) - log sigmoid(-(r(y_r) - delta))  (quality, BCO: "bco_pair")
    L_gen  = token-mean negative log-likelihood of the chosen responses      (generation, SFT)

delta is a running mean of the rewards: after each micro-batch, the detached mean of cat(r(y_c), r(y_r)) over
the batch (all ranks), and delta = the cumulative average of those per-step means (:class:`RewardMean`).
Each term is averaged over the pairs of the micro-batch. All functions are pure; shapes are given per argument.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Weights = tuple[float, float, float]
DEFAULT_WEIGHTS: Weights = (0.8, 0.2, 1.0)


def sigmoid_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """DPO preference loss per pair: ``-log sigmoid(r_c - r_r)``. Inputs and output: [B]."""
    return -F.logsigmoid(chosen_rewards - rejected_rewards)


def bco_pair_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor, delta: float | torch.Tensor = 0.0
                  ) -> torch.Tensor:
    """BCO quality loss per pair: ``-log sigmoid(r_c - delta) - log sigmoid(-(r_r - delta))``. [B] -> [B]."""
    return -F.logsigmoid(chosen_rewards - delta) - F.logsigmoid(-(rejected_rewards - delta))


def mpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
             ref_rejected_logps: torch.Tensor, chosen_nll: torch.Tensor, *, beta: float = 0.1,
             weights: Weights = DEFAULT_WEIGHTS, delta: float | torch.Tensor = 0.0
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The MPO loss of one micro-batch and its metrics.

    Args:
        policy_chosen_logps, policy_rejected_logps: [B] summed response log-probs under the policy.
        ref_chosen_logps, ref_rejected_logps: [B] the same under the reference model.
        chosen_nll: scalar, token-mean NLL of the chosen responses of the micro-batch.
        beta: reward scale. weights: (w_pref, w_qual, w_gen); a zero weight drops its term, so DPO-only is
            (1, 0, 0), DPO+SFT (1, 0, 1), BCO+SFT (0, 1, 1).
        delta: the BCO reward mean *before* this update (a float or a 0-d tensor).

    Returns:
        ``(loss, metrics)``: the scalar loss, and detached metrics: each term, rewards chosen/rejected, margin,
        accuracy, and ``reward_mean`` (the batch mean of all rewards, to update delta with).
    """
    w_pref, w_qual, w_gen = weights
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    pref = sigmoid_loss(chosen_rewards, rejected_rewards).mean()
    qual = bco_pair_loss(chosen_rewards, rejected_rewards, delta).mean()
    loss = w_pref * pref + w_qual * qual + w_gen * chosen_nll
    with torch.no_grad():
        metrics = {
            "loss": loss.detach(),
            "loss_pref": pref.detach(),
            "loss_qual": qual.detach(),
            "loss_gen": chosen_nll.detach(),
            "rewards_chosen": chosen_rewards.mean(),
            "rewards_rejected": rejected_rewards.mean(),
            "rewards_margin": (chosen_rewards - rejected_rewards).mean(),
            "rewards_accuracy": (chosen_rewards > rejected_rewards).float().mean(),
            "reward_mean": torch.cat([chosen_rewards, rejected_rewards]).mean(),
        }
    return loss, metrics


class RewardMean:
    """The BCO delta: the cumulative average of per-step batch-mean rewards (not an EMA).

    ``update`` takes the step's batch mean (already averaged over ranks) and returns the new delta. The state
    is saved in checkpoints, so a resumed run continues with the delta it had.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self.steps = 0

    @property
    def value(self) -> float:
        return self.total / self.steps if self.steps else 0.0

    def update(self, step_mean: float) -> float:
        self.total += float(step_mean)
        self.steps += 1
        return self.value

    def state_dict(self) -> dict:
        return {"total": self.total, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.total, self.steps = float(state["total"]), int(state["steps"])
