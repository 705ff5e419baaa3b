import sys
import types

import pytest

from mmpr.errors import UserError
from mmpr.registry import DuplicateName, Registry, UnknownName


def test_register_get_and_describe():
    reg: Registry[int] = Registry("number")
    reg.register("one", 1, description="the first")

    @reg.register("two", description="the second")
    def two():
        return 2

    assert reg.get("one") == 1
    assert reg.get("two") is two
    assert reg.names() == ["one", "two"]
    assert reg.describe() == {"one": "the first", "two": "the second"}
    assert "one" in reg and "three" not in reg


def test_a_second_registration_raises():
    reg: Registry[int] = Registry("number")
    reg.register("one", 1)
    with pytest.raises(DuplicateName, match="number 'one' is registered twice"):
        reg.register("one", 11)
    reg.alias("uno", "one")
    with pytest.raises(DuplicateName):
        reg.register("uno", 1)
    assert reg.get("one") == 1


def test_unknown_name_lists_the_available_ones_and_the_closest():
    reg: Registry[int] = Registry("engine")
    for name in ("vllm", "openai", "transformers"):
        reg.register(name, 0)
    with pytest.raises(UnknownName) as err:
        reg.get("vlm")
    assert str(err.value) == "unknown engine 'vlm' (did you mean 'vllm'?); available: openai, transformers, vllm"
    assert isinstance(err.value, UserError)
    with pytest.raises(UnknownName, match=r"^unknown engine 'zzz'; available: openai, transformers, vllm$"):
        reg.get("zzz")


def test_lazy_entries_are_imported_on_first_use(monkeypatch):
    module = types.ModuleType("mmpr_lazy_probe")
    module.thing = object()
    monkeypatch.setitem(sys.modules, "mmpr_lazy_probe", module)
    reg: Registry[object] = Registry("thing")
    reg.register("probe", "mmpr_lazy_probe:thing")
    reg.register("missing", "mmpr_no_such_module:thing")
    assert reg.names() == ["missing", "probe"]  # listing imports nothing
    assert reg.get("probe") is module.thing
    with pytest.raises(ModuleNotFoundError):
        reg.get("missing")


def test_builtins_register_themselves_before_the_first_lookup(monkeypatch):
    reg: Registry[int] = Registry("number", builtins=("mmpr_builtins_probe",))
    module = types.ModuleType("mmpr_builtins_probe")
    monkeypatch.setitem(sys.modules, "mmpr_builtins_probe", module)
    assert reg.names() == []  # the module was already imported; nothing registered itself
    reg.register("late", 5)
    assert reg.get("late") == 5


def test_deprecated_alias_warns_and_resolves():
    reg: Registry[str] = Registry("engine")
    reg.register("transformers", "T")
    reg.alias("hf", "transformers")
    reg.alias("old", "transformers", deprecated="--engine transformers")
    assert reg.get("hf") == "T"
    assert reg.canonical("hf") == "transformers"
    with pytest.warns(DeprecationWarning, match="use --engine transformers"):
        assert reg.get("old") == "T"


def test_a_deprecated_alias_is_never_the_suggestion_its_target_is():
    reg: Registry[str] = Registry("engine")
    reg.register("transformers", "T")
    reg.register("vllm", "V")
    reg.alias("hf", "transformers", deprecated="--engine transformers")
    reg.alias("tf", "transformers")
    with pytest.raises(UnknownName, match=r"\(did you mean 'transformers'\?\)"):
        reg.get("hff")
    with pytest.raises(UnknownName, match=r"\(did you mean 'tf'\?\)"):
        reg.get("tff")
