import pytest

from mmpr.errors import UserError
from mpo_train.config import ConfigError, TrainConfig, load_config


def test_recipe_with_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: m\ndata: [d]\noutput_dir: out\nlearning_rate: 1.0e-6\n")
    cfg = load_config(recipe, ["learning_rate=2e-6", "lora.r=8", "loss_weights=[1, 0, 1]", "data=[a, b]"])
    assert cfg.learning_rate == 2e-6 and cfg.lora.r == 8 and cfg.lora.alpha == 32
    assert cfg.loss_weights == (1, 0, 1) and cfg.data == ["a", "b"]
    assert cfg.beta == 0.1 and cfg.weight_decay == 0.05 and cfg.max_length == 6144


def test_unknown_keys_list_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model=m", "data=[d]", "output_dir=o", "learnin_rate=1"])
    text = str(err.value)
    assert "learnin_rate: unknown key" in text and "\n" not in text
    assert "valid keys:" in text and "learning_rate" in text and "lora.r" in text


def test_a_bad_value_names_the_recipe_line_or_the_override(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: m\ndata: [d]\noutput_dir: out\nbeta: -1\n")
    with pytest.raises(ConfigError, match=r"r.yaml: invalid settings: beta: Input should be greater than 0 \(line 4\)"):
        load_config(recipe)
    with pytest.raises(ConfigError, match=r"lora.r: Input should be greater than or equal to 1 \(override\)"):
        load_config(recipe, ["beta=0.1", "lora.r=0"])


def test_inconsistent_settings_are_refused():
    with pytest.raises(ValueError, match="lora_base needs lora"):
        TrainConfig(model="m", data=["d"], output_dir="o", reference="lora_base")
    with pytest.raises(ValueError, match="all zero"):
        TrainConfig(model="m", data=["d"], output_dir="o", loss_weights=(0, 0, 0))
    with pytest.raises(UserError, match="override 'oops': expected KEY=VALUE"):
        load_config(None, ["oops"])


@pytest.mark.parametrize("name", ["tiny_cpu.yaml", "internvl2_8b_mpo.yaml", "qwen2_5_vl_7b_mpo.yaml"])
def test_shipped_recipes_are_valid(name):
    from importlib.resources import files

    cfg = load_config(files("mpo_train") / "recipes" / name)
    assert cfg.loss_weights == (0.8, 0.2, 1.0) and cfg.beta == 0.1


def test_chat_template_options_from_a_dotted_override():
    cfg = load_config(overrides=["model=m", "data=[d]", "output_dir=o", "chat_template_options.enable_thinking=false"])
    assert cfg.chat_template_options == {"enable_thinking": False}
    assert TrainConfig(model="m", data=["d"], output_dir="o").chat_template_options == {}


def _from_command_line(argv: list[str]) -> TrainConfig:
    from mpo_train.__main__ import build_parser, config_from_args

    return config_from_args(build_parser().parse_intermixed_args(argv))


def test_every_plain_key_is_also_a_flag_named_by_it(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: m\ndata: [d]\noutput_dir: out\nlearning_rate: 1.0e-6\ngradient_checkpointing: true\n")
    cfg = _from_command_line(["--config", str(recipe), "--learning-rate", "3e-6", "lora.r=8", "--data", "a", "b",
                              "--loss-weights", "1", "0", "1", "--no-gradient-checkpointing", "--forward", "plain",
                              "--max-image-pixels", "1000000", "beta=0.2", "--report-to", "tensorboard"])
    assert cfg.learning_rate == 3e-6 and cfg.lora.r == 8 and cfg.data == ["a", "b"] and cfg.beta == 0.2
    assert cfg.loss_weights == (1, 0, 1) and cfg.gradient_checkpointing is False and cfg.forward == "plain"
    assert cfg.max_image_pixels == 1_000_000 and cfg.report_to == ["tensorboard"]
    assert _from_command_line(["--config", str(recipe)]).learning_rate == 1e-6, "the recipe where no flag is given"
    with pytest.raises(ConfigError, match=r"^beta: given as --beta and as beta=...; give it once$"):
        _from_command_line(["--config", str(recipe), "--beta", "0.2", "beta=0.3"])
    with pytest.raises(ConfigError, match=r"learning_rate: Input should be greater than 0 \(--learning-rate\)"):
        _from_command_line(["--config", str(recipe), "--learning-rate", "-1"])
