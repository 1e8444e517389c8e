"""Plain-URL downloads into the project's cache: resumable, verified, retried, atomic.

A file is written to ``<dest>.part`` and moved to ``<dest>`` with :func:`os.replace` only once it is
complete (its size matches ``Content-Length``) and, when a sha256 is known, verified. An interrupted
transfer keeps its ``.part`` file and the next attempt resumes it with an HTTP ``Range`` request; a
server that ignores ``Range`` simply sends the whole file again. A file that fails verification is
deleted, so a corrupt or truncated file is never used. Concurrent downloads of the same file are
serialised with a lock file.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from .cache import url_cache_path
from .errors import ChecksumMismatchError, DownloadError

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
TRANSFER_CHUNK_SIZE = 1 << 16  # small reads: bytes received before a dropped connection still reach the disk
DEFAULT_TIMEOUT: Tuple[float, float] = (10.0, 60.0)  # connect, read (seconds)
DEFAULT_RETRIES = 3
LOCK_TIMEOUT_S = 600.0
_RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


def sha256_of(path: Union[str, Path]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_request_error(exc: BaseException) -> str:
    """A short human reason for a failed request: ``connection refused``, ``HTTP 404 Not Found``, ..."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "transfer truncated (the connection closed before the announced length)"
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    if match:
        return match.group(1).strip().lower()
    return f"{type(exc).__name__}: {exc}"


def _verify(path: Path, sha256: Optional[str], url: str) -> None:
    if sha256 is None:
        return
    actual = sha256_of(path)
    if actual != sha256.lower():
        path.unlink(missing_ok=True)
        raise ChecksumMismatchError(f"{url} gave a file whose sha256 is {actual}, not the recorded {sha256.lower()}; "
                                    f"the file was deleted. The server may host a different or corrupt file.",
                                    f"sha256 mismatch (got {actual[:12]}..., expected {sha256.lower()[:12]}...)")


def _content_range_start(value: Optional[str]) -> Optional[int]:
    match = re.match(r"bytes (\d+)-", value or "")
    return int(match.group(1)) if match else None


def _transfer(url: str, part: Path, *, headers: Dict[str, str], timeout: Tuple[float, float],
              progress: bool, desc: str) -> Tuple[int, Optional[int], bool]:
    """One GET into ``part`` (resuming it when it exists). Returns (bytes on disk, expected size, resumed)."""
    import requests
    from tqdm import tqdm

    have = part.stat().st_size if part.is_file() else 0
    request_headers = dict(headers)
    if have:
        request_headers["Range"] = f"bytes={have}-"
    with requests.get(url, headers=request_headers, timeout=timeout, stream=True) as response:
        if response.status_code == 416 and have:  # our partial file is already as long as (or longer than) the file
            part.unlink()
            return 0, None, False
        response.raise_for_status()
        resumed = have > 0 and response.status_code == 206 and _content_range_start(
            response.headers.get("Content-Range")) == have
        if not resumed:
            have = 0
        length = response.headers.get("Content-Length")
        expected = have + int(length) if length is not None and length.isdigit() else None
        if resumed:
            logger.info("Resuming %s at byte %d", url, have)
        with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=expected, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                disable=not progress, file=sys.stderr, leave=True) as bar:
            try:
                for chunk in response.iter_content(chunk_size=TRANSFER_CHUNK_SIZE):
                    f.write(chunk)
                    bar.update(len(chunk))
            finally:
                f.flush()
                os.fsync(f.fileno())
    return part.stat().st_size, expected, resumed


def download_url(url: str, dest: Optional[Union[str, Path]] = None, *, sha256: Optional[str] = None,
                 cache_dir: Optional[Union[str, Path]] = None, local_files_only: bool = False,
                 progress: Optional[bool] = None, retries: int = DEFAULT_RETRIES,
                 timeout: Tuple[float, float] = DEFAULT_TIMEOUT, backoff_s: float = 1.0,
                 headers: Optional[Dict[str, str]] = None) -> Path:
    """Download ``url`` into the cache (or ``dest``) unless a good copy is already there.

    Args:
        url: an ``http(s)://`` URL.
        dest: final path; default :func:`~damo_pipeline.hub.cache.url_cache_path` of ``url``.
        sha256: expected hex digest; checked on every cache hit and after every download.
        cache_dir: cache root used when ``dest`` is not given.
        local_files_only: only return a cached copy, never connect.
        progress: show a tqdm bar on stderr; default only when stderr is a terminal.
        retries: transfer attempts in all (connection errors, truncated transfers, 5xx answers).
        timeout: (connect, read) timeouts in seconds for each attempt.
        backoff_s: sleep before retry k is ``backoff_s * 2**(k-1)`` seconds.
        headers: extra request headers (never logged).

    Returns:
        The path of the complete, verified file.

    Raises:
        FileNotFoundError: ``local_files_only`` and no cached copy.
        ChecksumMismatchError: the file's sha256 is not ``sha256`` (the bad file is deleted).
        DownloadError: every attempt failed, or the server answered with a non-retryable HTTP error.
    """
    import requests
    from filelock import FileLock

    if retries < 1:
        raise ValueError(f"retries must be at least 1, got {retries}.")
    dest = Path(dest) if dest is not None else url_cache_path(url, cache_dir)
    if dest.is_file():
        try:
            _verify(dest, sha256, f"cached copy {dest} of {url}")
            logger.debug("Cache hit for %s: %s", url, dest)
            return dest
        except ChecksumMismatchError:
            if local_files_only:
                raise
            logger.warning("Cached copy %s of %s failed sha256 verification; downloading it again.", dest, url)
    if local_files_only:
        raise FileNotFoundError(f"{url} is not in the cache ({dest}) and downloads are disabled (offline mode).")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    show = sys.stderr.isatty() if progress is None else progress
    with FileLock(str(dest.with_name(dest.name + ".lock")), timeout=LOCK_TIMEOUT_S):
        if dest.is_file():  # another process finished it while we waited for the lock
            _verify(dest, sha256, f"cached copy {dest} of {url}")
            return dest
        last_problem = "no attempt made"
        for attempt in range(1, retries + 1):
            if attempt > 1 and backoff_s > 0:
                time.sleep(backoff_s * 2 ** (attempt - 2))
            try:
                size, expected, resumed = _transfer(url, part, headers=headers or {}, timeout=timeout,
                                                    progress=show, desc=dest.name)
            except requests.HTTPError as e:
                status = e.response.status_code if e.response is not None else None
                last_problem = describe_request_error(e)
                if status not in _RETRYABLE_STATUS:
                    part.unlink(missing_ok=True)
                    raise DownloadError(f"Download of {url} failed: {last_problem}.", last_problem) from e
                logger.info("Attempt %d/%d for %s: %s", attempt, retries, url, last_problem)
                continue
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
                last_problem = describe_request_error(e)
                logger.info("Attempt %d/%d for %s: %s", attempt, retries, url, last_problem)
                continue
            if expected is None and size == 0:
                last_problem = "server sent an empty response"
                continue
            if expected is not None and size != expected:
                last_problem = f"transfer truncated at {size} of {expected} bytes"
                logger.info("Attempt %d/%d for %s: %s; will resume", attempt, retries, url, last_problem)
                if size > expected:
                    part.unlink(missing_ok=True)
                continue
            try:
                _verify(part, sha256, url)
            except ChecksumMismatchError:
                if resumed and attempt < retries:  # the resumed tail may not belong to the head: start over
                    last_problem = "sha256 mismatch after resuming"
                    continue
                raise
            os.replace(part, dest)
            logger.info("Downloaded %s to %s (%d bytes)", url, dest, size)
            return dest
        kept = (f" The partial file {part} is kept and will be resumed next time."
                if part.is_file() and part.stat().st_size else "")
        raise DownloadError(f"Download of {url} failed after {retries} attempts: {last_problem}.{kept}",
                            f"{last_problem} ({retries} attempts)")
