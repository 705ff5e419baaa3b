"""Dataset identity: an order-independent content hash and semantic versions."""

from __future__ import annotations

import hashlib
import json
import re

from mmpr.errors import UserError
from mmpr.schemas import PreferencePair

_MOD = 1 << 256


def pair_digest(pair: PreferencePair, image_digests: list[str]) -> bytes:
    """SHA-256 of what a pair *is*: its texts, kind, provenance and image bytes (by digest), not its id or
    file paths, so the same pair built twice, or read from another copy of the images, hashes the same."""
    body = pair.model_dump(exclude={"id", "images"})
    body["images"] = image_digests
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).digest()


class ContentHash:
    """A multiset hash: the sum of pair digests modulo 2**256, with the count.

    Addition commutes, so the result does not depend on the order pairs arrive in (sharded or resumed
    builds, parallel writers) and needs O(1) memory; repeated pairs count as often as they occur.
    """

    def __init__(self) -> None:
        self._sum = 0
        self.count = 0

    def add(self, digest: bytes) -> None:
        self._sum = (self._sum + int.from_bytes(digest, "big")) % _MOD
        self.count += 1

    def update(self, other: ContentHash) -> None:
        self._sum = (self._sum + other._sum) % _MOD
        self.count += other.count

    def hexdigest(self) -> str:
        return hashlib.sha256(f"mmpr-pairs:{self.count}:{self._sum:064x}".encode()).hexdigest()


_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def parse_version(version: str) -> tuple[int, int, int]:
    m = _SEMVER.match(version.removeprefix("v"))
    if not m:
        raise UserError(f"version {version!r} is not semantic (X.Y.Z)")
    return int(m[1]), int(m[2]), int(m[3])


def next_version(existing: list[str], *, bump: str = "minor") -> str:
    """The version after the highest of ``existing`` semantic versions (others ignored); 1.0.0 for none."""
    versions = sorted(parse_version(v) for v in existing if _SEMVER.match(v.removeprefix("v")))
    if not versions:
        return "1.0.0"
    major, minor, patch = versions[-1]
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise UserError(f"bump must be major, minor or patch, not {bump!r}")
