import json
from types import SimpleNamespace

from mpo_train.metrics import MetricsLog


def _accelerator(logged):
    return SimpleNamespace(is_main_process=True, log=lambda metrics, step: logged.append((step, metrics)))


def test_writes_jsonl_logs_trackers_and_plots(tmp_path):
    logged = []
    log = MetricsLog(tmp_path / "m.jsonl", accelerator=_accelerator(logged))
    for step in range(1, 6):
        log.write(step, {"loss": 2.0 / step, "rewards_accuracy": step / 5, "lr": 1e-5, "grad_norm": 1.0,
                         "rewards_chosen": 0.1 * step, "rewards_rejected": -0.1 * step, "rewards_margin": 0.2 * step,
                         "delta": 0.0, "loss_pref": 0.6, "loss_qual": 1.2, "loss_gen": 1.0})
    assert [r["step"] for r in log.records()] == [1, 2, 3, 4, 5] and logged[0][0] == 1
    png = log.plot(tmp_path / "curves.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000


def test_a_resumed_run_drops_the_steps_after_its_checkpoint(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": s}) + "\n" for s in range(1, 8)))
    log = MetricsLog(path, accelerator=_accelerator([]), resume_step=4)
    assert [r["step"] for r in log.records()] == [1, 2, 3, 4]
