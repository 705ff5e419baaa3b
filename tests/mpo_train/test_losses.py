import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from mpo_train.losses import RewardMean, bco_pair_loss, mpo_loss, sigmoid_loss


def _softplus(x):
    return math.log1p(math.exp(-x))  # -log sigmoid(x)


def test_hand_worked_values():
    # rewards: chosen 0.1 * (-10 + 11) = 0.1, rejected 0.1 * (-12 + 11) = -0.1
    loss, m = mpo_loss(torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]), torch.tensor([-11.0]),
                       torch.tensor(2.0))
    assert m["loss_pref"].item() == pytest.approx(0.598138869, abs=1e-7)   # log(1 + e^-0.2)
    assert m["loss_qual"].item() == pytest.approx(1.288793319, abs=1e-7)   # 2 log(1 + e^-0.1)
    assert loss.item() == pytest.approx(0.8 * 0.598138869 + 0.2 * 1.288793319 + 2.0, abs=1e-6)
    assert m["rewards_chosen"].item() == pytest.approx(0.1) and m["rewards_rejected"].item() == pytest.approx(-0.1)
    assert m["rewards_margin"].item() == pytest.approx(0.2) and m["rewards_accuracy"].item() == 1.0
    assert m["reward_mean"].item() == pytest.approx(0.0, abs=1e-7)


def test_delta_shifts_the_bco_term_only():
    args = (torch.tensor([-10.0, -5.0]), torch.tensor([-12.0, -4.0]), torch.tensor([-11.0, -6.0]),
            torch.tensor([-11.0, -6.0]), torch.tensor(1.0))
    _, m0 = mpo_loss(*args, delta=0.0)
    _, m1 = mpo_loss(*args, delta=0.05)
    rc, rr = [0.1, 0.1], [-0.1, 0.2]
    expected = sum(_softplus(c - 0.05) + _softplus(-(r - 0.05)) for c, r in zip(rc, rr, strict=True)) / 2
    assert m1["loss_qual"].item() == pytest.approx(expected, rel=1e-6)
    assert m1["loss_pref"] == m0["loss_pref"] and m1["loss_qual"] != m0["loss_qual"]
    assert m0["rewards_accuracy"].item() == 0.5


def test_at_initialisation_the_loss_is_1_2_ln2_plus_nll():
    logps = torch.tensor([-30.0, -20.0])
    loss, _ = mpo_loss(logps, logps - 3, logps, logps - 3, torch.tensor(1.5))
    assert loss.item() == pytest.approx(1.2 * math.log(2) + 1.5, rel=1e-6)


@pytest.mark.parametrize("weights, terms", [((1, 0, 0), ["loss_pref"]), ((1, 0, 1), ["loss_pref", "loss_gen"]),
                                            ((0, 1, 1), ["loss_qual", "loss_gen"])])
def test_ablations_are_weights(weights, terms):
    loss, m = mpo_loss(torch.tensor([-3.0]), torch.tensor([-4.0]), torch.tensor([-3.5]), torch.tensor([-3.5]),
                       torch.tensor(0.7), weights=weights)
    assert loss.item() == pytest.approx(sum(m[t].item() for t in terms), rel=1e-6)


def test_gradients_flow_to_policy_logps_only():
    pc, pr = torch.tensor([-10.0], requires_grad=True), torch.tensor([-12.0], requires_grad=True)
    nll = torch.tensor(2.0, requires_grad=True)
    loss, _ = mpo_loss(pc, pr, torch.tensor([-11.0]), torch.tensor([-11.0]), nll)
    loss.backward()
    assert pc.grad.item() < 0 < pr.grad.item() and nll.grad.item() == 1.0


def test_reward_mean_is_a_cumulative_average_and_checkpoints():
    delta = RewardMean()
    assert delta.value == 0.0
    assert delta.update(1.0) == 1.0 and delta.update(0.0) == 0.5 and delta.update(2.0) == 1.0
    restored = RewardMean()
    restored.load_state_dict(delta.state_dict())
    assert restored.value == 1.0 and restored.update(-3.0) == 0.0


def _trl_loss(chosen_token_logps, rejected_token_logps, ref_chosen, ref_rejected, beta, loss_types, weights):
    """TRL 1.16 DPOTrainer._compute_loss on a model that returns these per-token log-probs."""
    from trl import DPOTrainer

    B = len(chosen_token_logps)
    width = max(len(t) for t in chosen_token_logps + rejected_token_logps)
    per_token = torch.zeros(2 * B, width)
    mask = torch.zeros(2 * B, width + 1, dtype=torch.long)
    for i, tokens in enumerate(chosen_token_logps + rejected_token_logps):
        per_token[i, :len(tokens)] = torch.tensor(tokens)
        mask[i, 1:len(tokens) + 1] = 1
    outputs = SimpleNamespace(log_probs=per_token, entropy=torch.zeros_like(per_token),
                              mean_logits=torch.zeros_like(per_token), is_top1=torch.zeros_like(per_token).bool())

    def model(**kwargs):
        return outputs

    model.training = True
    identity = SimpleNamespace(gather_for_metrics=lambda x: x, gather=lambda x: x, device="cpu")
    trainer = SimpleNamespace(model=model, accelerator=identity, ld_alpha=None, precompute_ref_logps=True,
                              f_divergence_type="reverse_kl", loss_types=loss_types, loss_weights=weights, beta=beta,
                              use_weighting=False, aux_loss_enabled=False, _total_train_tokens=0, _tp_size=1,
                              _metrics=defaultdict(lambda: defaultdict(list)), label_smoothing=0.0)
    inputs = {"input_ids": torch.zeros_like(mask), "attention_mask": torch.ones_like(mask), "completion_mask": mask,
              "ref_chosen_logps": torch.tensor(ref_chosen), "ref_rejected_logps": torch.tensor(ref_rejected)}
    return DPOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)


def test_matches_trl_with_delta_zero():
    """TRL >= 0.29 dropped BCO's running delta: with delta = 0 both compute the same MPO loss."""
    chosen = [[-1.0, -2.0, -0.5], [-0.2, -0.1]]
    rejected = [[-3.0, -1.0], [-0.5, -0.5, -0.7, -0.2]]
    ref_chosen, ref_rejected = [-4.0, -0.4], [-3.5, -1.5]
    trl = _trl_loss(chosen, rejected, ref_chosen, ref_rejected, 0.1, ["sigmoid", "bco_pair", "sft"], [0.8, 0.2, 1.0])
    nll = -sum(sum(t) for t in chosen) / sum(len(t) for t in chosen)
    ours, _ = mpo_loss(torch.tensor([sum(t) for t in chosen]), torch.tensor([sum(t) for t in rejected]),
                       torch.tensor(ref_chosen), torch.tensor(ref_rejected), torch.tensor(nll), delta=0.0)
    torch.testing.assert_close(ours, trl.float(), rtol=1e-6, atol=1e-6)
    ours_with_delta, _ = mpo_loss(torch.tensor([sum(t) for t in chosen]), torch.tensor([sum(t) for t in rejected]),
                                  torch.tensor(ref_chosen), torch.tensor(ref_rejected), torch.tensor(nll), delta=0.3)
    assert abs(ours_with_delta.item() - trl.item()) > 1e-3, "with a delta the paper's loss differs from TRL's"


def test_terms_are_pure_functions_of_rewards():
    c, r = torch.tensor([0.3, -0.2]), torch.tensor([0.1, 0.4])
    torch.testing.assert_close(sigmoid_loss(c, r), torch.tensor([_softplus(0.2), _softplus(-0.6)]))
    torch.testing.assert_close(bco_pair_loss(c, r, 0.1), torch.tensor([_softplus(0.2) + _softplus(0.0),
                                                                       _softplus(-0.3) + _softplus(-0.3)]))
