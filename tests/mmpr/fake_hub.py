"""A Hub that lives in memory, reached through huggingface_hub's real client with only the transport swapped.

It answers the endpoints publishing uses (create repo, refs, tree, preupload, commit, tag, file download) and
records every request, so tests see the operations and tags that were actually sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field

import httpx2
import yaml

ENDPOINT = "http://hub.test"


@dataclass
class FakeRepo:
    private: bool
    commits: list[dict[str, bytes]] = field(default_factory=list)  # full file tree after each commit
    oids: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def tree(self, rev: str) -> dict[str, bytes]:
        if not self.commits:
            return {}
        if rev == "main":
            return self.commits[-1]
        oid = self.tags.get(rev, rev)
        return self.commits[self.oids.index(oid)]

    def resolve(self, rev: str) -> str:
        return self.oids[-1] if rev == "main" else self.tags.get(rev, rev)


class FakeHub:
    def __init__(self):
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self.commit_payloads: list[list[dict]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        method, path = request.method, request.url.path
        self.requests.append((method, path))
        if method == "POST" and path == "/api/repos/create":
            body = json.loads(request.content)
            repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            if repo_id in self.repos:
                return httpx2.Response(409, json={"error": "You already created this dataset repo",
                                                  "url": f"{ENDPOINT}/datasets/{repo_id}"})
            self.repos[repo_id] = FakeRepo(private=body.get("visibility", "private" if body.get("private") else
                                                          "public") == "private")
            return httpx2.Response(200, json={"url": f"{ENDPOINT}/datasets/{repo_id}", "name": repo_id})
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(request.content)["content"])
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)/(refs|tree|preupload|commit|tag)(?:/([^/]+))?", path)
        if m:
            repo_id, action, rev = m[1], m[2], m[3]
            repo = self.repos.get(repo_id)
            if repo is None:
                return httpx2.Response(404, headers={"X-Error-Code": "RepoNotFound"},
                                       json={"error": "Repository not found"})
            return getattr(self, f"_{action}")(repo_id, repo, request, rev or "main")
        m = re.match(r"^/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m:
            return self._resolve(self.repos[m[1]], request, m[2], m[3])
        return httpx2.Response(500, json={"error": f"fake hub: no route for {method} {path}"})

    @staticmethod
    def _validate_yaml(content: str) -> httpx2.Response:
        """The Hub rejects a card whose front matter is not a YAML mapping with valid configs."""
        m = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(m[1]) if m else {}
            assert isinstance(meta, dict)
            for config in meta.get("configs", []):
                assert config["config_name"] and config["data_files"]
        except Exception as e:  # noqa: BLE001 - any failure is a validation error
            return httpx2.Response(400, json={"error": f"invalid metadata: {e!r}"})
        return httpx2.Response(200, json={"warnings": []})

    def _refs(self, repo_id, repo, request, rev):
        tags = [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": oid} for t, oid in repo.tags.items()]
        branches = [{"name": "main", "ref": "refs/heads/main", "targetCommit": repo.oids[-1]}] if repo.oids else []
        return httpx2.Response(200, json={"branches": branches, "tags": tags, "converts": []})

    def _tree(self, repo_id, repo, request, rev):
        return httpx2.Response(200, json=[
            {"type": "file", "path": p, "oid": hashlib.sha1(b).hexdigest(), "size": len(b)}
            for p, b in sorted(repo.tree(rev).items())])

    def _preupload(self, repo_id, repo, request, rev):
        files = json.loads(request.content)["files"]
        return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular",
                                                     "shouldIgnore": False} for f in files]})

    def _commit(self, repo_id, repo, request, rev):
        lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
        self.commit_payloads.append(lines)
        tree = dict(repo.tree("main"))
        for line in lines:
            if line["key"] == "file":
                tree[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            elif line["key"] == "deletedFile":
                tree.pop(line["value"]["path"], None)
        oid = hashlib.sha1(json.dumps(sorted((p, hashlib.sha1(b).hexdigest()) for p, b in tree.items()))
                           .encode() + str(len(repo.oids)).encode()).hexdigest()
        repo.commits.append(tree)
        repo.oids.append(oid)
        return httpx2.Response(200, json={"commitUrl": f"{ENDPOINT}/datasets/{repo_id}/commit/{oid}", "commitOid": oid})

    def _tag(self, repo_id, repo, request, rev):
        body = json.loads(request.content)
        if body["tag"] in repo.tags:
            return httpx2.Response(409, json={"error": "tag exists"})
        repo.tags[body["tag"]] = repo.resolve(rev)
        return httpx2.Response(200, json={})

    def _resolve(self, repo, request, rev, path):
        content = repo.tree(rev).get(path)
        if content is None:
            return httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound"}, json={"error": "not found"})
        headers = {"X-Repo-Commit": repo.resolve(rev), "ETag": f'"{hashlib.sha1(content).hexdigest()}"',
                   "Content-Length": str(len(content))}
        return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else content)

    def tags_sent(self) -> list[str]:
        return [p.rsplit("/", 1)[-1] for m, p in self.requests if m == "POST" and "/tag/" in p]
