"""Errors raised while resolving, downloading and loading weights."""
from __future__ import annotations

from typing import Sequence, Tuple

from .cache import describe_how_to_provide


class WeightsNotFoundError(FileNotFoundError):
    """No usable weights for a model spec; the message lists every source tried and why it failed.

    Attributes:
        spec: the ``model=`` value as given.
        attempts: ``(source, reason)`` pairs in the order they were tried.
    """

    def __init__(self, spec: str, attempts: Sequence[Tuple[str, str]], advice: str = "") -> None:
        self.spec = spec
        self.attempts = list(attempts)
        tried = "; ".join(f"{where}: {why}" for where, why in self.attempts) or "nothing could be tried"
        advice = advice or describe_how_to_provide()
        super().__init__(f"No weights found for {spec!r}. Tried: {tried}. {advice}")


class DownloadError(OSError):
    """A download failed for good (after retries), or its bytes were not the expected ones.

    The partial file is kept only when it can be resumed; a file that failed verification is deleted.

    Attributes:
        reason: a short human reason (``connection refused``, ``HTTP 404 Not Found``, ...).
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class ChecksumMismatchError(DownloadError):
    """The downloaded (or cached) file's sha256 differs from the recorded one; the file was deleted."""
