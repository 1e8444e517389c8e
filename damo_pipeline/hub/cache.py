"""Where downloaded weights are kept, and the environment variables that steer resolution.

Environment variables (read at call time, never cached):

* ``DAMO_PIPELINE_CACHE``: root of this project's download cache (default ``$XDG_CACHE_HOME/damo_pipeline``,
  else ``~/.cache/damo_pipeline``). Plain URL downloads land in ``<root>/downloads/<host>/<path>``.
* ``DAMO_PIPELINE_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``): never touch the network; only caches and local files.
* ``DAMO_PIPELINE_HUB_ORDER``: which hubs a bare ``org/name`` tries, in order (default ``hf,ms``).
* ``DAMO_PIPELINE_REGISTRY``: local registry folders (``os.pathsep``-separated) searched first for a bare
  ``org/name`` as ``DIR/org/name``.
* ``DAMO_PIPELINE_RELEASE_MIRROR``: base URL that replaces the official release server for zoo ids.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional
from urllib.parse import unquote, urlsplit

CACHE_ENV = "DAMO_PIPELINE_CACHE"
OFFLINE_ENV = "DAMO_PIPELINE_OFFLINE"
HUB_ORDER_ENV = "DAMO_PIPELINE_HUB_ORDER"
REGISTRY_ENV = "DAMO_PIPELINE_REGISTRY"
MIRROR_ENV = "DAMO_PIPELINE_RELEASE_MIRROR"
HF_OFFLINE_ENVS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")

HUB_NAMES = {"hf": "hf", "huggingface": "hf", "ms": "ms", "modelscope": "ms"}
DEFAULT_HUB_ORDER = ("hf", "ms")

_TRUE = {"1", "true", "yes", "on"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")


def cache_root(cache_dir: Optional[os.PathLike] = None) -> Path:
    """The project's download cache: ``cache_dir`` if given, else ``$DAMO_PIPELINE_CACHE``, else the XDG default."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "damo_pipeline"


def url_cache_path(url: str, cache_dir: Optional[os.PathLike] = None) -> Path:
    """Where the file at ``url`` is kept: ``<cache>/downloads/<host>/<url path>`` (query strings dropped).

    The path is predictable, so a file copied there by hand is found without a download.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Not an http(s) URL: {url!r}.")
    host = _UNSAFE.sub("_", parts.netloc)
    segments = [_UNSAFE.sub("_", unquote(s)) for s in parts.path.split("/") if s not in ("", ".", "..")]
    if not segments:
        raise ValueError(f"URL {url!r} names no file (its path is empty).")
    return cache_root(cache_dir).joinpath("downloads", host, *segments)


def offline_mode() -> bool:
    """True when ``DAMO_PIPELINE_OFFLINE`` or ``HF_HUB_OFFLINE`` asks for no network access."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in (OFFLINE_ENV, *HF_OFFLINE_ENVS))


def hub_order() -> List[str]:
    """Hubs tried for a bare ``org/name``, from ``DAMO_PIPELINE_HUB_ORDER`` (e.g. ``ms,hf``).

    Raises:
        ValueError: an unknown hub name in the variable.
    """
    raw = os.environ.get(HUB_ORDER_ENV, "").strip()
    if not raw:
        return list(DEFAULT_HUB_ORDER)
    order: List[str] = []
    for item in raw.split(","):
        key = item.strip().lower()
        if not key:
            continue
        if key not in HUB_NAMES:
            raise ValueError(f"{HUB_ORDER_ENV}={raw!r} names an unknown hub {item.strip()!r}; "
                             f"use a comma-separated list of {sorted(set(HUB_NAMES))}.")
        if HUB_NAMES[key] not in order:
            order.append(HUB_NAMES[key])
    return order or list(DEFAULT_HUB_ORDER)


def registry_dirs() -> List[Path]:
    """Local registry folders from ``DAMO_PIPELINE_REGISTRY`` (existing ones only)."""
    raw = os.environ.get(REGISTRY_ENV, "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip() and Path(p).expanduser().is_dir()]


def describe_how_to_provide() -> str:
    """The standard advice appended to every 'no weights' error."""
    return (f"To provide weights: pass a local checkpoint (model='file.pth' or checkpoint='file.pth') or a local "
            f"model folder (config.json + model.safetensors); copy a downloaded file to the cache location shown "
            f"above (cache root {cache_root()}, set by {CACHE_ENV}); point {REGISTRY_ENV} at a local registry "
            f"(DIR/org/name); or set {MIRROR_ENV} to a reachable copy of the release files. "
            f"{OFFLINE_ENV}=1 or HF_HUB_OFFLINE=1 restricts resolution to local files.")
