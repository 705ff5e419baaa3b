import random

import pytest

from mmpr.dataset_writer import SubsetInput, write_dataset
from mmpr.schemas import PreferencePair
from mmpr.testing import tiny_images
from mmpr.versioning import ContentHash, next_version, pair_digest, parse_version


def _pairs(n):
    return [PreferencePair(id=f"s/{i}", subset="s", question=f"q{i}", chosen=f"c{i}", rejected=f"r{i}",
                           kind="correctness", source="s") for i in range(n)]


def _hash(pairs):
    h = ContentHash()
    for p in pairs:
        h.add(pair_digest(p, []))
    return h.hexdigest()


def test_hash_ignores_order_and_ids_but_not_content():
    pairs = _pairs(50)
    shuffled = pairs[:]
    random.Random(0).shuffle(shuffled)
    renamed = [p.model_copy(update={"id": f"other/{i}"}) for i, p in enumerate(pairs)]
    assert _hash(pairs) == _hash(shuffled) == _hash(renamed)
    changed = pairs[:-1] + [pairs[-1].model_copy(update={"rejected": "r49 "})]
    assert _hash(changed) != _hash(pairs)
    assert _hash(pairs + pairs[:1]) != _hash(pairs), "a duplicate counts"


def test_merged_partial_hashes_equal_the_whole():
    pairs = _pairs(10)
    a, b = ContentHash(), ContentHash()
    for p in pairs[:4]:
        a.add(pair_digest(p, []))
    for p in pairs[4:]:
        b.add(pair_digest(p, []))
    a.update(b)
    assert a.hexdigest() == _hash(pairs) and a.count == 10


def test_dataset_hash_depends_on_image_bytes_not_paths(tmp_path):
    img = tiny_images(2)
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        img[0].save(tmp_path / folder / "a.png")
    img[1].save(tmp_path / "y" / "b.png")

    def build(folder, name):
        pair = PreferencePair(id="s/0", subset="s", question="q", images=[str(tmp_path / folder / name)],
                              chosen="c", rejected="r", kind="correctness", source="s")
        return write_dataset(tmp_path / f"out-{folder}-{name}", [SubsetInput("s", [pair])], name="d").content_hash

    assert build("x", "a.png") == build("y", "a.png") != build("y", "b.png")


def test_versions():
    assert parse_version("v1.2.3") == (1, 2, 3)
    with pytest.raises(ValueError, match="not semantic"):
        parse_version("1.2")
    assert next_version([]) == "1.0.0"
    assert next_version(["1.0.0", "1.10.0", "1.9.4", "main"]) == "1.11.0"
    assert next_version(["1.0.0"], bump="patch") == "1.0.1"
    assert next_version(["1.3.0"], bump="major") == "2.0.0"
