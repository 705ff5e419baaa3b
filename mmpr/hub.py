"""Versioned publishing of a dataset folder to the Hugging Face Hub: one commit and one tag per version.

A version's tag is ``v<X.Y.Z>``. Publishing a version whose tag already exists is a no-op when the content
hash is the same and is refused when it differs: a published version never changes. The token comes from
``--token``, ``HF_TOKEN`` or ``huggingface-cli login``, as everywhere in huggingface_hub.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from mmpr.dataset_writer import CARD, MANIFEST, read_manifest
from mmpr.io import atomic_write_text
from mmpr.schemas import Manifest, VersionEntry
from mmpr.versioning import next_version, parse_version

REPO_TYPE = "dataset"


class PublishError(RuntimeError):
    pass


def tag_of(version: str) -> str:
    parse_version(version)
    return f"v{version}"


@dataclass
class PublishPlan:
    repo_id: str
    version: str
    tag: str
    private: bool
    uploads: list[tuple[str, int]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    rewrites: dict[str, str] = field(default_factory=dict, repr=False)
    up_to_date: bool = False
    repo_exists: bool = False

    def describe(self) -> str:
        if self.up_to_date:
            return f"{self.repo_id}: tag {self.tag} already holds this content; nothing to upload"
        lines = [f"repo {self.repo_id} (dataset, {'private' if self.private else 'public'}"
                 f"{', new' if not self.repo_exists else ''}): one commit, then tag {self.tag}"]
        lines += [f"  upload {path} ({size:,} bytes)" for path, size in self.uploads]
        lines += [f"  delete {path}" for path in self.deletes]
        total = sum(size for _, size in self.uploads)
        lines.append(f"  {len(self.uploads)} file(s), {total:,} bytes; {len(self.deletes)} deletion(s)")
        return "\n".join(lines)


def _local_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _remote_manifest(api: HfApi, repo_id: str, tag: str) -> Manifest:
    path = api.hf_hub_download(repo_id, MANIFEST, repo_type=REPO_TYPE, revision=tag)
    return Manifest.model_validate_json(Path(path).read_text())


def _latest(tags: list[str]) -> str | None:
    versions = [t.removeprefix("v") for t in tags if t.startswith("v")]
    valid = []
    for v in versions:
        try:
            valid.append((parse_version(v), v))
        except ValueError:
            continue
    return max(valid)[1] if valid else None


def plan(folder: str | Path, repo_id: str, *, version: str | None = None, private: bool = False,
         api: HfApi | None = None) -> tuple[PublishPlan, Manifest]:
    """Work out what publishing ``folder`` would do, and the manifest it would publish (version and
    history set from the repo's tags). Reads from the Hub; changes nothing."""
    from cards import render_dataset_card

    folder = Path(folder)
    api = api or HfApi()
    manifest = read_manifest(folder)
    try:
        tags = [t.name for t in api.list_repo_refs(repo_id, repo_type=REPO_TYPE).tags]
        remote_files = set(api.list_repo_files(repo_id, repo_type=REPO_TYPE))
        exists = True
    except RepositoryNotFoundError:
        tags, remote_files, exists = [], set(), False
    latest = _latest(tags)
    previous = _remote_manifest(api, repo_id, tag_of(latest)) if latest else None
    if version is None:
        if previous is not None and previous.content_hash == manifest.content_hash:
            version = previous.dataset_version
        else:
            version = next_version([latest] if latest else [])
    tag = tag_of(version)
    if tag in tags:
        published = previous if latest == version else _remote_manifest(api, repo_id, tag)
        if published.content_hash != manifest.content_hash:
            raise PublishError(f"{repo_id}: tag {tag} already exists with other content (published hash "
                               f"{published.content_hash[:12]}, this folder {manifest.content_hash[:12]}); "
                               f"a published version never changes: choose a new --version")
        return PublishPlan(repo_id, version, tag, private, up_to_date=True, repo_exists=exists), published
    history = list(manifest.history)
    if previous is not None and not any(h.version == previous.dataset_version for h in history):
        history = [*previous.history, VersionEntry(version=previous.dataset_version, created_at=previous.created_at,
                                                   content_hash=previous.content_hash,
                                                   num_pairs=previous.num_pairs, note=previous.extra.get("note", ""))]
    manifest = manifest.model_copy(update={"dataset_version": version, "history": history})
    # the version and history depend on the repo, so the card and manifest are rewritten before they go up
    rewrites = {CARD: render_dataset_card(manifest, repo_id=repo_id),
                MANIFEST: manifest.model_dump_json(indent=2) + "\n"}
    files = _local_files(folder)
    local = {p.relative_to(folder).as_posix() for p in files} | set(rewrites)
    uploads = [(path, len(rewrites[path].encode()) if path in rewrites else (folder / path).stat().st_size)
               for path in sorted(local)]
    deletes = sorted(f for f in remote_files - local if f.startswith("data/"))
    return PublishPlan(repo_id, version, tag, private, uploads, deletes, rewrites, repo_exists=exists), manifest


def publish(folder: str | Path, repo_id: str, *, version: str | None = None, private: bool = False,
            token: str | None = None, dry_run: bool = False, api: HfApi | None = None) -> PublishPlan:
    """Publish ``folder`` as one commit on ``repo_id`` tagged ``v<version>``; see :func:`plan`.

    With ``dry_run`` nothing is written, locally or on the Hub: the plan is returned (and printed by the CLI).
    """
    folder = Path(folder)
    api = api or HfApi(token=token)
    the_plan, manifest = plan(folder, repo_id, version=version, private=private, api=api)
    if dry_run or the_plan.up_to_date:
        return the_plan
    for path, text in the_plan.rewrites.items():
        atomic_write_text(folder / path, text)
    api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path))
                  for path, _ in the_plan.uploads]
    operations += [CommitOperationDelete(path_in_repo=path) for path in the_plan.deletes]
    commit = api.create_commit(repo_id, operations, repo_type=REPO_TYPE,
                               commit_message=f"{manifest.name} {the_plan.tag}: {manifest.num_pairs} pairs",
                               commit_description=f"content hash {manifest.content_hash}")
    api.create_tag(repo_id, tag=the_plan.tag, revision=commit.oid, repo_type=REPO_TYPE,
                   tag_message=f"{manifest.name} {manifest.dataset_version}")
    return the_plan


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("publishing to the Hugging Face Hub")
    group.add_argument("--push", action="store_true", help="publish the output folder (one commit + a version tag)")
    group.add_argument("--repo-id", help="ORG/NAME of the dataset repo (required with --push)")
    group.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps "
                       "its visibility)")
    group.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    group.add_argument("--dry-run", action="store_true", help="print exactly what would be uploaded; change nothing")


def check_push_arguments(args: argparse.Namespace) -> None:
    if args.push and not args.repo_id:
        raise SystemExit("error: --push needs --repo-id ORG/NAME")
    if args.dry_run and not args.push:
        raise SystemExit("error: --dry-run goes with --push")
    if getattr(args, "version", None):
        try:
            parse_version(args.version)
        except ValueError as e:
            raise SystemExit(f"error: --version: {e}") from e


def push_from_args(args: argparse.Namespace, folder: str | Path) -> int:
    try:
        result = publish(folder, args.repo_id, version=args.version, private=args.private, token=args.token,
                         dry_run=args.dry_run)
    except PublishError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    if args.dry_run:
        print("dry run, nothing uploaded:")
    print(result.describe())
    if not args.dry_run and not result.up_to_date:
        print(f"published {args.repo_id}@{result.tag}: load_dataset({json.dumps(args.repo_id)}, "
              f"revision={json.dumps(result.tag)})")
    return 0
