"""Image files: checking that they open, hashing their bytes, and a content-addressed store for built data."""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mmpr.io import atomic_write_bytes


@lru_cache(maxsize=65_536)
def image_problem(path: str) -> str | None:
    """Why ``path`` is not a usable image (missing, empty, not decodable), or None if it is fine."""
    p = Path(path)
    if not p.is_file():
        return "image_missing"
    try:
        with Image.open(p) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "image_unreadable"
    return None


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_rgb(path: str | Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


class ImageStore:
    """Images saved once under ``root/<sha256[:2]>/<sha256>.<ext>``, whatever they were given as.

    Sources hand their images (PIL, bytes or a path) to :meth:`put` and keep the returned path, so records
    stay small, reruns find the files already there, and equal images are stored once.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def put(self, image: Image.Image | bytes | str | Path) -> str:
        if isinstance(image, Image.Image):
            buf = io.BytesIO()
            fmt = "JPEG" if image.mode == "RGB" and image.format == "JPEG" else "PNG"
            image.save(buf, format=fmt)
            data, ext = buf.getvalue(), fmt.lower().replace("jpeg", "jpg")
        elif isinstance(image, bytes | bytearray):
            data = bytes(image)
            ext = _sniff_ext(data)
        else:
            data = Path(image).read_bytes()
            ext = Path(image).suffix.lstrip(".").lower() or _sniff_ext(data)
        digest = bytes_digest(data)
        path = self.root / digest[:2] / f"{digest}.{ext}"
        if not path.exists():
            atomic_write_bytes(path, data)
        return str(path)


def _sniff_ext(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return (img.format or "png").lower().replace("jpeg", "jpg")
    except (UnidentifiedImageError, OSError):
        return "bin"
