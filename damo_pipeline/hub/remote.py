"""Snapshots of model repos from the Hugging Face Hub and ModelScope, through their own clients.

Both clients keep their standard caches (``HF_HUB_CACHE`` / ``HF_HOME``; ``MODELSCOPE_CACHE``) and
return the local snapshot folder. ``local_files_only`` (or the offline environment variables) makes
them answer from the cache alone. Python files that come with a repo may be downloaded with it (the
official ModelScope repos ship their config as ``.py``) but are never imported or executed.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple, Union

from ..version import __version__

logger = logging.getLogger(__name__)

# Large files a detector repo may carry that loading never needs.
IGNORE_PATTERNS = ["*.onnx", "*.engine", "*.trt", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.mp4", "*.tflite"]

PathLike = Union[str, Path]


class HubFetchError(OSError):
    """A hub could not provide the snapshot; the message is one short human reason."""


@dataclass(frozen=True)
class HubClient:
    """One model hub: a display name, a URL for messages, and the snapshot function."""

    key: str
    display: str
    url: Callable[[str], str]
    snapshot: Callable[..., Path]


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def hf_snapshot(repo_id: str, *, revision: Optional[str] = None, cache_dir: Optional[PathLike] = None,
                local_files_only: bool = False, token: Optional[str] = None) -> Path:
    """``huggingface_hub.snapshot_download`` of a model repo; returns the snapshot folder.

    Raises:
        HubFetchError: not cached (offline), not found, unreachable, or an invalid repo id.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id, repo_type="model", revision=revision,
                                   cache_dir=str(cache_dir) if cache_dir is not None else None,
                                   local_files_only=local_files_only, token=token, ignore_patterns=IGNORE_PATTERNS,
                                   library_name="damo_pipeline", library_version=__version__)
    except LocalEntryNotFoundError as e:
        where = "offline mode, not in the Hugging Face cache" if local_files_only else "unreachable and not cached"
        raise HubFetchError(where) from e
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        raise HubFetchError(f"HTTP {status}: {_short(e)}" if status else _short(e)) from e
    except HFValidationError as e:
        raise HubFetchError(f"not a valid Hugging Face repo id ({_short(e)})") from e
    except OSError as e:
        raise HubFetchError(_short(e)) from e
    return Path(folder)


@contextlib.contextmanager
def _quiet_loggers(prefix: str) -> Iterator[None]:
    """Silence a client's per-retry warnings for one call; its failure is reported by our own error."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name == prefix or name.startswith(prefix + ".")]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, saved):
            lg.setLevel(level)


def ms_snapshot(repo_id: str, *, revision: Optional[str] = None, cache_dir: Optional[PathLike] = None,
                local_files_only: bool = False, token: Optional[str] = None) -> Path:
    """ModelScope ``snapshot_download`` of a model repo; returns the snapshot folder.

    Raises:
        HubFetchError: not cached (offline), not found, unreachable, or an invalid repo id.
    """
    import requests
    from modelscope.hub.snapshot_download import snapshot_download
    from modelscope_hub.errors import CacheNotFound, HubError

    try:
        with _quiet_loggers("modelscope_hub"):
            folder = snapshot_download(model_id=repo_id, revision=revision,
                                       cache_dir=str(cache_dir) if cache_dir is not None else None,
                                       local_files_only=local_files_only, token=token, ignore_patterns=IGNORE_PATTERNS)
    except CacheNotFound as e:
        raise HubFetchError("offline mode, not in the ModelScope cache" if local_files_only
                            else f"not in the ModelScope cache ({_short(e)})") from e
    except (HubError, requests.RequestException, OSError, ValueError) as e:
        raise HubFetchError(_short(e)) from e
    return Path(folder)


HUBS: Dict[str, HubClient] = {
    "hf": HubClient("hf", "Hugging Face Hub", lambda repo: f"https://huggingface.co/{repo}", hf_snapshot),
    "ms": HubClient("ms", "ModelScope", lambda repo: f"https://modelscope.cn/models/{repo}", ms_snapshot),
}


def get_hub(key: str) -> HubClient:
    """The :class:`HubClient` for ``hf`` or ``ms``.

    Raises:
        ValueError: unknown key (the message lists the known ones).
    """
    if key not in HUBS:
        raise ValueError(f"Unknown hub {key!r}; known hubs: {sorted(HUBS)}.")
    return HUBS[key]


def split_revision(repo: str) -> Tuple[str, Optional[str]]:
    """``org/name@rev`` -> (``org/name``, ``rev``); no ``@`` -> (repo, None)."""
    if "@" in repo:
        name, _, rev = repo.partition("@")
        return name, (rev or None)
    return repo, None


