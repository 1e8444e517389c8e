"""Errors raised for inputs the pipelines cannot use.

Each one subclasses the standard exception a caller would already catch (``ValueError``, ``OSError``), and
its message names the input and the problem.
"""
from __future__ import annotations

__all__ = ["ImageDownloadError", "InvalidImageError"]


class InvalidImageError(ValueError):
    """The input exists but is not an image we can use: undecodable bytes, wrong array shape or dtype."""


class ImageDownloadError(OSError):
    """An image URL could not be fetched: unreachable host, timeout, HTTP error status or too large a body."""
