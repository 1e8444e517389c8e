"""Turn a ``model=`` value into a local folder or file, trying each source in order.

Spec forms (first match wins):

1. an existing local path: a hub folder, an official-layout folder or a checkpoint file;
2. ``http(s)://...``: a checkpoint file, downloaded into the project cache;
3. ``hf://org/name[@rev]`` / ``ms://org/name[@rev]``: that hub only;
4. a zoo id, ``damoyolo-t`` (its best weights) or ``damoyolo-t.plain``: the official release file (cache,
   then ``DAMO_PIPELINE_RELEASE_MIRROR`` or the release server), then its ModelScope repo when there is one;
5. ``org/name[@rev]``: ``DAMO_PIPELINE_REGISTRY`` folders (``DIR/org/name``), then the hubs in
   ``DAMO_PIPELINE_HUB_ORDER`` order (default Hugging Face, then ModelScope).

Every failed source is recorded; when nothing works :class:`WeightsNotFoundError` lists them all.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

from ..models.checkpoint import CHECKPOINT_SUFFIXES
from .cache import MIRROR_ENV, hub_order, offline_mode, registry_dirs, url_cache_path
from .download import describe_request_error, download_url
from .errors import DownloadError, WeightsNotFoundError
from .official import ZooWeights, mirror_url, parse_zoo_spec
from .remote import HubFetchError, get_hub, split_revision

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
HUB_PREFIXES = {"hf://": "hf", "hf-hub:": "hf", "ms://": "ms", "modelscope://": "ms"}


@dataclass(frozen=True)
class Resolved:
    """Where the weights were found: a local ``path`` (folder or file) and a human ``source`` description."""

    path: Path
    source: str
    zoo: Optional[ZooWeights] = None


@dataclass(frozen=True)
class FetchOptions:
    """Keyword options every source shares."""

    revision: Optional[str] = None
    cache_dir: Optional[PathLike] = None
    local_files_only: bool = False
    token: Optional[str] = None


def _attempt_label(kind: str, what: str) -> str:
    return f"{kind} {what}"


def _merge_revision(spec: str, in_spec: Optional[str], given: Optional[str]) -> Optional[str]:
    if in_spec and given and in_spec != given:
        raise ValueError(f"{spec!r} names revision {in_spec!r} but revision={given!r} was also given; pass one.")
    return in_spec or given


def _fetch_hub(hub_key: str, repo: str, options: FetchOptions, attempts: List[Tuple[str, str]]) -> Optional[Path]:
    hub = get_hub(hub_key)
    label = f"{hub.display} {repo}" + (f"@{options.revision}" if options.revision else "")
    try:
        path = hub.snapshot(repo, revision=options.revision, cache_dir=options.cache_dir,
                            local_files_only=options.local_files_only, token=options.token)
    except HubFetchError as e:
        attempts.append((label, str(e)))
        return None
    logger.info("Resolved %s to %s", label, path)
    return path


def _fetch_url(url: str, options: FetchOptions, attempts: List[Tuple[str, str]], *, sha256: Optional[str] = None,
               dest: Optional[Path] = None, label: Optional[str] = None) -> Optional[Path]:
    dest = dest or url_cache_path(url, options.cache_dir)
    label = label or f"download of {url}"
    try:
        return download_url(url, dest, sha256=sha256, local_files_only=options.local_files_only)
    except FileNotFoundError:
        attempts.append((label, f"offline mode and not in the cache (looked for {dest})"))
    except DownloadError as e:
        attempts.append((label, f"{e.reason}; cache location {dest}"))
    except OSError as e:
        attempts.append((label, f"{describe_request_error(e)}; cache location {dest}"))
    return None


def _resolve_zoo(zoo: ZooWeights, options: FetchOptions, attempts: List[Tuple[str, str]]) -> Optional[Resolved]:
    official = zoo.pretrained.url
    dest = url_cache_path(official, options.cache_dir)
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    url = mirror_url(official, mirror) if mirror else official
    label = (f"official release file of {zoo.spec} via {MIRROR_ENV} ({url})" if mirror
             else f"official release file of {zoo.spec} ({url})")
    path = _fetch_url(url, options, attempts, sha256=zoo.pretrained.sha256, dest=dest, label=label)
    if path is not None:
        return Resolved(path, label, zoo)
    if zoo.pretrained.modelscope_id:
        folder = _fetch_hub("ms", zoo.pretrained.modelscope_id, options, attempts)
        if folder is not None:
            return Resolved(folder, f"ModelScope {zoo.pretrained.modelscope_id}", zoo)
    return None


def _resolve_repo(spec: str, repo: str, hubs: List[str], options: FetchOptions,
                  attempts: List[Tuple[str, str]]) -> Optional[Resolved]:
    if not REPO_ID.match(repo):
        raise ValueError(f"{spec!r} is not a hub repo id of the form org/name[@revision].")
    if len(hubs) > 1:  # bare org/name: local registries first
        for registry in registry_dirs():
            candidate = registry / repo
            if candidate.is_dir():
                return Resolved(candidate, f"local registry {registry}")
            attempts.append((f"local registry {registry}", f"no folder {repo}"))
    for key in hubs:
        folder = _fetch_hub(key, repo, options, attempts)
        if folder is not None:
            return Resolved(folder, f"{get_hub(key).display} {repo}")
    return None


def resolve_model(model: PathLike, *, revision: Optional[str] = None, cache_dir: Optional[PathLike] = None,
                  local_files_only: Optional[bool] = None, token: Optional[str] = None) -> Resolved:
    """Find ``model`` locally or download it (see the module docstring for the spec forms and order).

    Args:
        model: a path, URL, ``hf://``/``ms://`` id, zoo id or bare ``org/name``.
        revision: hub branch, tag or commit (or ``@rev`` in the spec).
        cache_dir: cache root for every client (default: each client's standard cache).
        local_files_only: never connect; default from ``DAMO_PIPELINE_OFFLINE`` / ``HF_HUB_OFFLINE``.
        token: hub access token (default: the clients' standard environment variables / login).

    Returns:
        A :class:`Resolved` local path.

    Raises:
        WeightsNotFoundError: no source worked; the message lists each one and why.
        ValueError: a spec that matches no form, or two different revisions.
    """
    spec = str(model).strip()
    if local_files_only is None:
        local_files_only = offline_mode()
    path = Path(spec[7:] if spec.startswith("file://") else spec).expanduser()
    if path.exists():
        return Resolved(path, f"local path {str(path)!r}")
    attempts: List[Tuple[str, str]] = []
    options = FetchOptions(revision, cache_dir, bool(local_files_only), token)
    lowered = spec.lower()
    if lowered.startswith(("http://", "https://")):
        found = _fetch_url(spec, options, attempts)
        if found is not None:
            return Resolved(found, f"download of {spec}")
        raise WeightsNotFoundError(spec, attempts)
    for prefix, hub_key in HUB_PREFIXES.items():
        if lowered.startswith(prefix):
            repo, rev = split_revision(spec[len(prefix):])
            options = FetchOptions(_merge_revision(spec, rev, revision), cache_dir, bool(local_files_only), token)
            resolved = _resolve_repo(spec, repo, [hub_key], options, attempts)
            if resolved is None:
                raise WeightsNotFoundError(spec, attempts)
            return resolved
    zoo = parse_zoo_spec(spec)
    if zoo is not None:
        resolved = _resolve_zoo(zoo, options, attempts)
        if resolved is None:
            raise WeightsNotFoundError(spec, attempts)
        return resolved
    repo, rev = split_revision(spec)
    if REPO_ID.match(repo) and not spec.endswith(CHECKPOINT_SUFFIXES + (".json",)):
        options = FetchOptions(_merge_revision(spec, rev, revision), cache_dir, bool(local_files_only), token)
        attempts.append((f"local path {spec!r}", "does not exist"))
        resolved = _resolve_repo(spec, repo, hub_order(), options, attempts)
        if resolved is None:
            raise WeightsNotFoundError(spec, attempts)
        return resolved
    from ..models import list_models

    if spec.endswith(CHECKPOINT_SUFFIXES + (".json",)) or os.sep in spec or spec.startswith("."):
        raise WeightsNotFoundError(spec, [(f"local path {spec!r}", "no such file or folder")])
    raise WeightsNotFoundError(spec, [
        (f"local path {spec!r}", "no such file or folder"),
        ("zoo ids", f"not one of {list_models()} (optionally with .distill / .plain)"),
        ("hub ids", "not of the form org/name, hf://org/name or ms://org/name")])
