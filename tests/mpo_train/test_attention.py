import pytest

from mmpr.registry import UnknownName
from mpo_train.attention import ATTENTION_BACKENDS, backend
from mpo_train.config import ConfigError, load_config


def test_each_backend_says_how_it_takes_the_packed_mask():
    assert {name: backend(name).mask for name in ("sdpa", "eager", "flex_attention", "flash_attention_2")} == {
        "sdpa": "boolean", "eager": "additive", "flex_attention": "block", "flash_attention_2": None}
    assert backend("flash_attention_3").installed == "is_flash_attn_3_available"
    assert not backend("kernels-community/flash-attn").packs, "a kernel from the Hub takes no custom mask"
    assert "paged|eager" in ATTENTION_BACKENDS and not backend("paged|eager").packs, "transformers' own join too"


def test_an_unknown_backend_is_one_line_listing_the_known_ones():
    with pytest.raises(UnknownName, match=r"^unknown attention backend 'spda' \(did you mean 'sdpa'\?\); available: "
                                          r"eager, .*flex_attention.*, sdpa(, |$)"):
        backend("spda")
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model=m", "data=[d]", "output_dir=o", "attn_implementation=spda"])
    assert "attn_implementation: " in str(err.value) and "did you mean 'sdpa'" in str(err.value)
    assert "\n" not in str(err.value)
    assert load_config(None, ["model=m", "data=[d]", "output_dir=o",
                              "attn_implementation=kernels-community/flash-attn"]).attn_implementation
