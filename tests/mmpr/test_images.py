from mmpr.images import ImageStore, image_problem
from mmpr.testing import tiny_images


def test_store_deduplicates_and_accepts_pil_bytes_and_paths(tmp_path):
    store = ImageStore(tmp_path / "store")
    img = tiny_images(1)[0]
    a = store.put(img)
    b = store.put(open(a, "rb").read())
    c = store.put(a)
    assert a == b == c and a.endswith(".png")
    assert len(list((tmp_path / "store").rglob("*.png"))) == 1


def test_image_problems(tmp_path):
    good = tmp_path / "g.png"
    tiny_images(1)[0].save(good)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    assert image_problem(str(good)) is None
    assert image_problem(str(tmp_path / "bad.png")) == "image_unreadable"
    assert image_problem(str(tmp_path / "none.png")) == "image_missing"
