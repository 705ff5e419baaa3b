import os

import pytest

# Ray >= 2.59 turns token authentication on for new local clusters; a throwaway test cluster on the loopback
# interface opts out as Ray's token-auth guide says (RAY_AUTH_MODE=disabled), in this process and its children.
RAY_ENV = {"RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def cluster():
    """A local CPU-only Ray instance owned by this process (ray.shutdown stops exactly what it started)."""
    ray = pytest.importorskip("ray")
    old = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    ray.init(num_cpus=2, num_gpus=0, object_store_memory=200 * 2**20, include_dashboard=False,
             log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
