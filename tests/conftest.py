"""Test-wide settings: no hub, a private HF cache, vLLM's CPU engine in-process, tiny models built once."""

import os
import tempfile

_CACHE = tempfile.mkdtemp(prefix="mmpr-tests-hf-")
os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    HF_HOME=_CACHE,
    HF_DATASETS_CACHE=os.path.join(_CACHE, "datasets"),
    TOKENIZERS_PARALLELISM="false",
    VLLM_CPU_KVCACHE_SPACE="1",
    VLLM_ENABLE_V1_MULTIPROCESSING="0",
    VLLM_CPU_OMP_THREADS_BIND="nobind",
    MPLBACKEND="Agg",
    MMPR_CACHE=os.path.join(_CACHE, "mmpr"),  # tiny:<family> models are built once per test session
)

import datasets  # noqa: E402, F401 - its log handler binds the sys.stderr of its first import: before capture
import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the slow end-to-end tests (CI does)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow end-to-end test: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Build each tiny family once per session: ``tiny_model_dir("llava")`` -> its folder."""
    from mmpr.testing import tiny_vlm

    built = {}

    def get(family: str = "qwen2_vl"):
        if family not in built:
            built[family] = tiny_vlm(tmp_path_factory.mktemp(f"tiny-{family}"), family)
        return built[family]

    return get
