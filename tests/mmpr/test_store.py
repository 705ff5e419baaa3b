import shutil

import pytest

from mmpr.schemas import PreferencePair, SourceItem
from mmpr.store import ItemRecord, WorkStore
from mmpr.testing import tiny_images


def _record(store, i):
    path = store.images.put(tiny_images(1, seed=i)[0])
    item = SourceItem(id=f"s/{i}", source="s", category="other", question="q", images=[path], answer=None,
                      answer_type=None)
    pair = PreferencePair(id=f"p{i}", subset="s", question="q", images=[path], chosen="a", rejected="b",
                          kind="dropout_ntp", source="s")
    return ItemRecord(item=item, route="dropout_ntp", prompt="q", pairs=[pair], outcome="paired")


def test_chunks_are_atomic_files_read_back_in_order(tmp_path):
    store = WorkStore(tmp_path)
    store.check_config({"a": 1})
    store.write_chunk("0of1", 1, [_record(store, 1)])
    store.write_chunk("0of1", 0, [_record(store, 0)])
    assert store.has_chunk("0of1", 0) and not store.has_chunk("0of1", 2)
    assert [r.item.id for r in store.records()] == ["s/0", "s/1"]


def test_other_settings_are_refused_unless_overwriting(tmp_path):
    store = WorkStore(tmp_path)
    store.check_config({"a": 1, "b": 2})
    store.check_config({"a": 1, "b": 2})
    store.write_chunk("0of1", 0, [])
    with pytest.raises(ValueError, match=r"other settings \(b\)"):
        store.check_config({"a": 1, "b": 3})
    store.check_config({"a": 1, "b": 3}, overwrite=True)
    assert not store.has_chunk("0of1", 0)


def test_a_moved_build_folder_finds_its_images(tmp_path):
    store = WorkStore(tmp_path / "a")
    store.write_chunk("0of1", 0, [_record(store, 0)])
    shutil.move(tmp_path / "a", tmp_path / "b")
    (record,) = WorkStore(tmp_path / "b").records()
    assert record.item.images[0].startswith(str(tmp_path / "b"))
    assert record.pairs[0].images == record.item.images
