import pytest

from mmpr.engines import Request
from mmpr.testing import tiny_images


@pytest.fixture(scope="session")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("engine-images")
    paths = []
    for i, img in enumerate(tiny_images(2, size=(90, 70))):
        img.save(folder / f"{i}.png")
        paths.append(str(folder / f"{i}.png"))
    return paths


@pytest.fixture
def requests_(image_paths):
    return [Request("one", "How many shapes?", (image_paths[0],), n=3, seed=11),
            Request("two", "Compare <image> with <image>.", tuple(image_paths), n=2, seed=12),
            Request("cont", "Describe the picture.", (), n=1, seed=13, prefix="The picture shows"),
            Request("long", "word " * 5000, (image_paths[0],), n=1, seed=14)]
