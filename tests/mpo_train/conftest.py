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
