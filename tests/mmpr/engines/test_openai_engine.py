import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from mmpr.engines import Completion, EngineError, make_engine
from mmpr.engines.openai_engine import data_url
from mmpr.schemas import SamplingConfig


def test_images_travel_as_data_urls(image_paths):
    url = data_url(image_paths[0])
    assert url.startswith("data:image/png;base64,iVBOR")


def test_needs_an_endpoint():
    with pytest.raises(ValueError, match="at least one endpoint"):
        make_engine("openai", "m", endpoints="")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """A real `vllm serve` of the tiny model on 127.0.0.1."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    model = str(tiny_model_dir("qwen2_vl"))
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", "127.0.0.1",
             "--port", str(port), "--max-model-len", "1024", "--enforce-eager", "--no-enable-chunked-prefill",
             "--limit-mm-per-prompt", '{"image": 2, "video": 0}'],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "1"})
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vllm serve exited: {log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("vllm serve did not come up in 240 s")
    yield model, f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.slow
def test_openai_engine_against_vllm_serve(server, requests_):
    model, url = server
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    engine = make_engine("openai", model, endpoints=[dead, url], max_retries=0, concurrency=2)
    sampling = SamplingConfig(max_tokens=8)
    one, two, cont, long = engine.generate(requests_, sampling)
    assert len(one) == 3 and len(two) == 2 and len(cont) == 1, "the dead endpoint passes its requests on"
    assert all(isinstance(c, Completion) and c.prompt_tokens > 0 for c in one + two + cont)
    assert two[0].prompt_tokens > one[0].prompt_tokens
    assert isinstance(long, EngineError) and long.code == "prompt_too_long"
    assert [c.text for c in engine.generate(requests_[:1], sampling)[0]] == [c.text for c in one]
    only_dead = make_engine("openai", model, endpoints=[dead], max_retries=0)
    (result,) = only_dead.generate(requests_[:1], sampling)
    assert isinstance(result, EngineError) and result.code == "engine_unreachable"
