"""Release folders around the real ``meta.json`` entries of data/mmpr_meta/ (rows and images made up)."""

import json
from pathlib import Path, PurePosixPath

from mmpr.testing import tiny_images

META_DIR = Path(__file__).parent / "data" / "mmpr_meta"
MAX_ROWS = 40


def load_meta(file: str, names: list[str] | None = None) -> dict:
    """The entries of one fixture file, as found (all, or those named, in the file's order)."""
    meta = json.loads((META_DIR / file).read_text())
    return {k: v for k, v in meta.items() if names is None or k in names}


def layout_path(path: str) -> PurePosixPath:
    """Where a release folder keeps what a meta path names: from its last ``images``/``annotations`` part on
    (the Hub layout), else its last two parts (paths on the authors' cluster)."""
    parts = PurePosixPath(path).parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("images", "annotations"):
            return PurePosixPath(*parts[i:])
    return PurePosixPath(*parts[-2:])


def rows_of(entry: dict) -> int:
    """Made-up rows per subset: the meta's own length when small (0 stays 0), else MAX_ROWS."""
    return min(entry.get("length", MAX_ROWS), MAX_ROWS)


def write_real_release(root: Path, meta: dict) -> Path:
    """``root`` with ``meta`` as its meta.json, verbatim, and made-up rows and images where the entries point."""
    root.mkdir(parents=True, exist_ok=True)
    images = tiny_images(3, size=(32, 32))
    for name, entry in meta.items():
        text_only = entry["root"] is None
        if not text_only:
            folder = root / layout_path(entry["root"])
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images):
                image.save(folder / f"{i}.png")
        rows = []
        for k in range(rows_of(entry)):
            row = {"question": f"{'' if text_only else '<image>'}\n{name}: question {k}?",
                   "chosen": f"Good answer {k}.", "rejected": f"Bad answer {k}."}
            if not text_only:
                row["image"] = f"{k % 3}.png"
            rows.append(json.dumps(row))
        annotation = root / layout_path(entry["annotation"])
        annotation.parent.mkdir(parents=True, exist_ok=True)
        annotation.write_text("".join(line + "\n" for line in rows))
    (root / "meta.json").write_text(json.dumps(meta, indent=4))
    return root


def expected_pairs(entry: dict) -> int:
    """Pairs InternVL's MPO trainer reads from ``rows_of(entry)`` lines: int(n * r) below 1, n * int(r) above."""
    n, r = rows_of(entry), entry.get("repeat_time", 1)
    return int(n * r) if r < 1 else n * int(r)
