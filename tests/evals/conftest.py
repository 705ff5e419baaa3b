import io

import pytest
from datasets import Dataset, Features, Image, List, Value

from mmpr.testing import tiny_images

MATHVISTA_FEATURES = Features({
    "pid": Value("string"), "question": Value("string"), "image": Value("string"), "decoded_image": Image(),
    "choices": List(Value("string")), "unit": Value("string"), "precision": Value("float64"),
    "answer": Value("string"), "question_type": Value("string"), "answer_type": Value("string"),
    "metadata": {"category": Value("string"), "context": Value("string"), "grade": Value("string"),
                 "language": Value("string"), "skills": List(Value("string")), "source": Value("string"),
                 "split": Value("string"), "task": Value("string")},
    "query": Value("string"),
})


def mathvista_rows(n=8):
    images = tiny_images(n, size=(112, 84))
    rows = []
    for i in range(n):
        buf = io.BytesIO()
        images[i].save(buf, format="PNG")
        mc = i % 2 == 0
        rows.append({
            "pid": str(i + 1), "question": f"How many shapes are in the figure? ({i})", "image": f"images/{i}.png",
            "decoded_image": {"bytes": buf.getvalue()}, "choices": ["1", "2", "3", "4"] if mc else None,
            "unit": None, "precision": None if mc else 1.0, "answer": str(i % 4 + 1) if mc else f"{i}.5",
            "question_type": "multi_choice" if mc else "free_form", "answer_type": "text" if mc else "float",
            "metadata": {"category": "math-targeted-vqa", "context": "synthetic scene", "grade": "elementary school",
                         "language": "english", "skills": ["arithmetic reasoning"] + (["numeric commonsense"] if mc
                                                                                       else []),
                         "source": "synthetic", "split": "testmini", "task": "figure question answering"},
            "query": f"Hint: ... Question: How many shapes? ({i})"})
    return rows


@pytest.fixture(scope="session")
def mathvista_parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("mathvista") / "testmini.parquet"
    Dataset.from_list(mathvista_rows(), features=MATHVISTA_FEATURES).to_parquet(str(path))
    return path
