"""Image files: checking that they open, hashing their bytes, and a content-addressed store for built data.

An image is usable when it exists, decodes, and has at most :func:`max_pixels` pixels (width x height): a small
file can declare a huge canvas (a 48 kB PNG of 20000 x 20000 px decodes to 1.2 GB), so the size is read from the
header before anything is decoded. The limit is PIL's own default unless ``MMPR_MAX_IMAGE_PIXELS`` (or a tool's
``--max-image-pixels``, which sets it for the whole run, its worker processes included) says otherwise.
"""

from __future__ import annotations

import hashlib
import io
import os
from functools import lru_cache
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mmpr.io import atomic_write_bytes

MAX_PIXELS_ENV = "MMPR_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 89_478_485  # PIL's Image.MAX_IMAGE_PIXELS: 1024 x 1024 x 1024 // 4 // 3, ~9,459 px square
# what cannot be made into pixels: not an image, a torn file, a decompression bomb
UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)
PROBLEMS = {"image_missing": "not found", "image_unreadable": "cannot be decoded",
            "image_too_large": "has more pixels than the limit (--max-image-pixels)"}


class ImageProblem(ValueError):
    """An image that cannot be used; ``code`` is a key of :data:`PROBLEMS`."""

    def __init__(self, code: str, where: str):
        super().__init__(f"{where}: image {PROBLEMS[code]}")
        self.code = code


def max_pixels() -> int:
    """The pixel limit of this run (see the module doc)."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_PIXELS


def set_max_pixels(limit: int | None) -> None:
    """Use ``limit`` (None: keep the current one) for this process and the processes it starts; PIL's own bomb
    check follows it, so an image that only a higher limit admits still opens."""
    if limit is not None:
        if limit <= 0:
            from mmpr.errors import UserError

            raise UserError(f"--max-image-pixels {limit}: must be a positive number of pixels")
        os.environ[MAX_PIXELS_ENV] = str(limit)
        image_problem.cache_clear()
    Image.MAX_IMAGE_PIXELS = max_pixels()


def add_max_pixels_argument(parser) -> None:
    """The ``--max-image-pixels`` flag of the tools that read images; :func:`set_max_pixels` applies it."""
    parser.add_argument("--max-image-pixels", type=int, metavar="N",
                        help=f"skip (and report) images of more than N pixels, width x height (default "
                             f"${MAX_PIXELS_ENV} or {DEFAULT_MAX_PIXELS:,}, PIL's limit)")


def pixels_problem(img: Image.Image) -> str | None:
    """``image_too_large`` when ``img`` (opened, not yet decoded) has more pixels than the limit."""
    return "image_too_large" if img.width * img.height > max_pixels() else None


@lru_cache(maxsize=65_536)
def image_problem(path: str) -> str | None:
    """Why ``path`` is not a usable image (``image_missing``, ``image_unreadable``, ``image_too_large``: see
    :data:`PROBLEMS`), or None if it is fine."""
    p = Path(path)
    if not p.is_file():
        return "image_missing"
    try:
        with Image.open(p) as img:
            if pixels_problem(img):
                return "image_too_large"
            img.verify()
    except Image.DecompressionBombError:
        return "image_too_large"
    except UNREADABLE:
        return "image_unreadable"
    return None


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_rgb(path: str | Path) -> Image.Image:
    with Image.open(path) as img:
        if pixels_problem(img):
            raise ValueError(f"{path}: {img.width} x {img.height} px is more than the limit of {max_pixels():,} "
                             f"pixels (--max-image-pixels)")
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
    except UNREADABLE:  # image_problem says why when the stored file is checked
        return "bin"


set_max_pixels(None)  # PIL's own check at this run's limit
