import pytest
from datasets import Dataset, Features, Image, List, Value

from mmpr.testing import tiny_images


@pytest.fixture(scope="session")
def pair_rows():
    """Hand-made pairs: one image, two images, none; responses of different lengths."""
    imgs = tiny_images(3, size=(90, 70))
    return [
        {"id": "a", "question": "How many shapes are there?", "images": [imgs[0]],
         "chosen": "I count three shapes. Final answer: 3", "rejected": "Final answer: 5, I think, maybe more"},
        {"id": "b", "question": "Compare <image> with <image>.", "images": [imgs[1], imgs[2]],
         "chosen": "The first is red.", "rejected": "They are the same picture of a dog on a mat."},
        {"id": "c", "question": "What is 2 + 2?", "images": [], "chosen": "2 + 2 = 4. Final answer: 4",
         "rejected": "Final answer: 5"},
    ]


@pytest.fixture(scope="session")
def pair_dataset(pair_rows):
    features = Features({"id": Value("string"), "question": Value("string"), "images": List(Image()),
                         "chosen": Value("string"), "rejected": Value("string")})
    return Dataset.from_list(pair_rows, features=features)


def write_pairs(folder, n, *, seed=0, systematic=True, text_only_every=5):
    """An mmpr dataset of ``n`` pairs (every ``text_only_every``-th without an image); with ``systematic``, chosen
    and rejected differ in a learnable way."""
    import random

    from mmpr.dataset_writer import SubsetInput, write_dataset
    from mmpr.schemas import PreferencePair

    rng = random.Random(seed)
    image_dir = folder / "src"
    image_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(tiny_images(8, size=(56, 56), seed=seed)):
        img.save(image_dir / f"{i}.png")
        paths.append(str(image_dir / f"{i}.png"))
    pairs = []
    for i in range(n):
        k = rng.randrange(10)
        chosen = f"I count them one by one. Final answer: {k}" if systematic else f"maybe {k}"
        rejected = f"no idea, it could be anything, say {k + 1}" if systematic else f"perhaps {k + 2}"
        images = [] if i % text_only_every == text_only_every - 1 else [paths[i % 8]]
        pairs.append(PreferencePair(id=f"p{i}", subset="toy", question=f"How many shapes ({i})?", images=images,
                                    chosen=chosen, rejected=rejected, kind="correctness", source="toy"))
    write_dataset(folder / "data", [SubsetInput("toy", pairs)], name="toy")
    return folder / "data"


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each Trainer here runs as if in its own process (accelerate keeps one global state per process)."""
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
