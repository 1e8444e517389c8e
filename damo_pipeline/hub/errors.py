"""Errors raised while resolving and loading weights."""
from __future__ import annotations

from typing import Sequence, Tuple


class WeightsNotFoundError(FileNotFoundError):
    """No usable weights for a model spec; the message lists every source tried and why it failed."""

    def __init__(self, spec: str, attempts: Sequence[Tuple[str, str]], advice: str = "") -> None:
        self.spec = spec
        self.attempts = list(attempts)
        tried = "; ".join(f"{where}: {why}" for where, why in self.attempts) or "nothing could be tried"
        advice = advice or ("Provide weights as a local checkpoint (pipeline(..., checkpoint='file.pth') or "
                            "model='file.pth'), a local hub folder, or a hub id reachable from this machine.")
        super().__init__(f"No weights found for {spec!r}. Tried: {tried}. {advice}")
