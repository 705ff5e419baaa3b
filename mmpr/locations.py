"""Where data and models come from: a local path is checked as a local path, before anything asks the Hub."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mmpr.errors import UserError

# the folder the running tool writes to: a write error that names no file is reported against it
_WRITING: dict[str, Path | None] = {"out": None}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_local(location: str | Path) -> bool:
    """Written as a path (relative, absolute, home-relative, or with a file extension), or present on disk."""
    text = str(location)
    return (text.startswith((".", "/", "~")) or Path(text).expanduser().exists() or not _HUB_ID.match(text)
            or Path(text).suffix in (".json", ".jsonl", ".parquet", ".csv", ".yaml", ".yml"))


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def hub_unreachable(timeout: float = 5.0) -> str | None:
    """Why the Hub cannot be asked now (``HF_HUB_OFFLINE``, or no answer at ``HF_ENDPOINT`` within ``timeout``
    seconds), or None when it answers: asked once, so that an id is not retried for half a minute."""
    import urllib.error
    import urllib.request

    if offline():
        return "the Hub is switched off here (HF_HUB_OFFLINE=1)"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:  # it answered
        return None
    except (urllib.error.URLError, OSError) as e:
        return f"the Hub ({endpoint}) cannot be reached ({getattr(e, 'reason', e)})"
    return None


def hub_out_of_reach(what: str, hub_id: str, reason: str, *, repo_type: str, use: str | None = None) -> UserError:
    """The line for a Hub id that cannot be fetched because the Hub is offline or unreachable: how to use a
    local copy instead (``use``: how to give that folder, by default as ``what``)."""
    flag = " --repo-type dataset" if repo_type == "dataset" else ""
    unset = "; or unset HF_HUB_OFFLINE" if offline() else ""
    use = use or f"give DIR as {what}"
    return UserError(f"{what} {hub_id}: no such local folder, and {reason}; if it is a Hub id, download it where "
                     f"the Hub is reachable (huggingface-cli download {hub_id}{flag} --local-dir DIR) and {use} "
                     f"instead{unset}")


def check_location(location: str | Path, what: str, *, repo_type: str = "dataset") -> str:
    """``location`` as a local path if there is one, else a Hub id the Hub knows; a :class:`UserError` naming
    ``what`` (e.g. ``data``, ``--model``) otherwise."""
    text = str(location)
    path = Path(text).expanduser()
    if path.exists():
        return str(path)
    if looks_local(text):
        raise UserError(f"{what} {text}: no such file or folder; check the path")
    reason = hub_unreachable()
    if reason is not None:
        raise hub_out_of_reach(what, text, reason, repo_type=repo_type)
    from huggingface_hub import HfApi

    try:
        exists = HfApi().repo_exists(text, repo_type=repo_type)
    except Exception as e:  # no network, proxy, auth: say what was tried
        raise UserError(f"{what} {text}: no such local folder, and the Hub could not be asked ({type(e).__name__})"
                        f"; check the path or the network") from e
    if not exists:
        raise UserError(f"{what} {text}: no such local folder, and no such {repo_type} on the Hub; check the path")
    return text


def check_out(out: str | Path, *, marker: str, same_job, overwrite: bool, what: str = "--out") -> Path:
    """Make ``out`` ready for a job: a new or empty folder is used; one that holds this same job (``same_job(out)``
    true: a resume) is used as it is; anything else is refused unless ``overwrite``, which empties it first.
    ``marker`` names what the job writes there, for the message."""
    out = Path(out).expanduser()
    writing_to(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{what} {out}: is a file, not a folder; choose another {what}")
    check_writable(out, what)
    if not out.exists() or not any(out.iterdir()) or same_job(out):
        return out
    if not overwrite:
        raise UserError(f"{what} {out}: holds something else (not {marker} of this job); choose another {what} "
                        f"or add --overwrite to replace it")
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return out


# an absolute path in text: a "/" that starts a word, then no spaces, quotes or brackets
_ABSOLUTE = re.compile(r"(?<![\w.~/:-])/[^\s'\"`()\[\]{},;]+")


def _local_part(match: re.Match) -> str:
    path = Path(match.group(0).rstrip(".:"))
    parts = path.parts
    if len(parts) < 2 or not Path(parts[0], parts[1]).exists():  # not a folder of this machine: leave it
        return match.group(0)
    return path.name + match.group(0)[len(str(path)):]


def without_local_paths(value):
    """``value`` (text, or lists and dicts of it) with every absolute path of this machine cut to its last part:
    what is published (a dataset card, a manifest) must not carry the folders of the machine that made it."""
    if isinstance(value, str):
        return _ABSOLUTE.sub(_local_part, value)
    if isinstance(value, list | tuple):
        return [without_local_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: without_local_paths(v) for k, v in value.items()}
    return value


def check_apart(src: str | Path, out: str | Path, *, what_src: str, what_out: str = "--out",
                inside_ok: bool = False) -> None:
    """A :class:`UserError` when writing ``out`` could touch ``src``: the same folder, ``src`` inside ``out`` (which
    ``--overwrite`` would empty) or, unless ``inside_ok``, ``out`` inside ``src``."""
    a, b = Path(src).expanduser().resolve(), Path(out).expanduser().resolve()
    if a == b:
        raise UserError(f"{what_out} {out}: is {what_src} itself; writing there would replace it; choose another "
                        f"{what_out}")
    if b.is_relative_to(a) and not inside_ok:
        raise UserError(f"{what_out} {out}: inside {what_src} {src}; choose a folder outside it")
    if a.is_relative_to(b):
        raise UserError(f"{what_out} {out}: holds {what_src} {src}; choose a folder outside it")


def check_inputs_apart(out: str | Path, inputs: Iterable[tuple[str, str | Path | None]], *,
                       what_out: str = "--out") -> None:
    """:func:`check_apart` for every local input ``(what, path)`` of a job (Hub ids and ``None`` pass): the output
    folder is never an input and never holds one; it may sit inside an input folder (results next to a model)."""
    for what, path in inputs:
        if path is not None and Path(str(path)).expanduser().exists():
            check_apart(path, out, what_src=what, what_out=what_out, inside_ok=True)


def claim(out: str | Path, marker: str, settings: dict) -> None:
    """Record in ``out/marker``, before anything else is written, which job writes ``out``: a rerun of the same job
    (:func:`claimed_by`) then resumes or redoes it, and any other content stays another job's."""
    from mmpr.io import atomic_write_text

    atomic_write_text(Path(out) / marker, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def changed_settings(recorded: dict, settings: dict) -> list[str]:
    """The keys whose values differ between the settings an earlier run recorded and ``settings`` (compared as
    JSON, so a tuple equals the list it was saved as): a resume must match the settings, and this is where it is
    decided."""
    settings = json.loads(json.dumps(settings, default=str))
    return sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))


def check_same_settings(recorded: dict, settings: dict, *, where: str, what: str, out_flag: str = "--out") -> None:
    """A :class:`UserError` when ``where`` holds ``what`` made with other settings than ``settings``."""
    changed = changed_settings(recorded, settings)
    if changed:
        raise UserError(f"{where}: holds {what} made with other settings ({', '.join(changed)}); rerun with the same "
                        f"settings to resume, choose another {out_flag}, or add --overwrite")


def claimed_by(marker: str, settings: dict) -> Callable[[Path], bool]:
    """``same_job`` for :func:`check_out`: ``out`` holds this job's ``marker`` with these settings."""
    def same(out: Path) -> bool:
        try:
            return not changed_settings(json.loads((out / marker).read_text()), settings)
        except (OSError, ValueError, AttributeError):  # no marker, not JSON, or not a mapping: not this job's
            return False
    return same
def check_writable(folder: str | Path, what: str = "--out") -> None:
    """A :class:`UserError` naming ``what`` unless a file can be made in ``folder`` (or, when it does not exist
    yet, in its nearest existing parent): a read-only folder is refused before any work, not after it."""
    import tempfile

    folder = Path(folder).expanduser().absolute()
    probe = next((p for p in (folder, *folder.parents) if p.exists()), folder)
    try:
        fd, name = tempfile.mkstemp(prefix=".mmpr-probe-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        cause = (e.strerror or type(e).__name__).lower()
        raise UserError(f"{what} {folder}: cannot be written ({cause} in {probe}); make it writable or choose another "
                        f"{what}, then rerun the same command") from e


def check_server(url: str, what: str, *, timeout: float = 5.0) -> None:
    """An :class:`~mmpr.errors.Unreachable` naming ``what`` unless something answers HTTP at ``url`` (any status:
    a server that says 404 is there)."""
    import urllib.error
    import urllib.request

    from mmpr.errors import Unreachable

    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Unreachable(f"{what} {url}: did not answer ({reason}); start the server or check the address") from e


def writing_to(out: str | Path | None) -> None:
    """Record the folder the running tool writes to (``None``: none yet), for :func:`written_to`."""
    _WRITING["out"] = None if out is None else Path(out).expanduser()


def written_to() -> Path | None:
    """The folder recorded by :func:`writing_to`: a write error that names no file is reported against it."""
    return _WRITING["out"]


@contextmanager
def new_folder(path: str | Path, *, only: type[BaseException] | tuple = BaseException,
               unless: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Remove ``path`` again if this block created it and then failed with ``only`` (any error by default), so a
    failed run leaves no half-made folder; a resumable job passes ``only=UserError`` so that the work of an
    interrupted or crashed run stays for the rerun, and ``unless(path)`` true keeps it too (it holds results)."""
    path = Path(path)
    existed = path.exists()
    try:
        yield path
    except BaseException as e:
        if not existed and path.exists() and isinstance(e, only) and not (unless is not None and unless(path)):
            shutil.rmtree(path, ignore_errors=True)
        raise
