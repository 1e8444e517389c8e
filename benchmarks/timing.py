"""Timing helpers shared by the benchmark scripts (stdlib only: the baselines import it from other venvs).

A script in ``benchmarks/`` imports it as ``from timing import ...``: Python puts a script's own folder first on
``sys.path``, in whichever venv runs it.
"""
from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence


def timed_calls(call: Callable[[int], Any], warmup: int, runs: int) -> List[float]:
    """Run ``call(i)`` for ``warmup`` untimed then ``runs`` timed indices (both from 0); the timed seconds.

    Call ``i`` reads the same photos on every side: ``batch_of(images, i, batch)``.
    """
    for index in range(warmup):
        call(index)
    seconds = []
    for index in range(runs):
        start = time.perf_counter()
        call(index)
        seconds.append(time.perf_counter() - start)
    return seconds


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an ascending list."""
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(times_s: Sequence[float], divisor: int = 1) -> Dict[str, float]:
    """median / mean / p10 / p90 / min / max in ms of ``times_s`` (seconds), each divided by ``divisor``; and n."""
    ms = sorted(t * 1000.0 / divisor for t in times_s)
    return {"median": round(_percentile(ms, 50), 3), "mean": round(sum(ms) / len(ms), 3),
            "p10": round(_percentile(ms, 10), 3), "p90": round(_percentile(ms, 90), 3),
            "min": round(ms[0], 3), "max": round(ms[-1], 3), "n": len(ms)}


def batch_of(images: Sequence[str], call_index: int, batch: int) -> List[str]:
    """The photos of call ``call_index``: ``images[(call_index * batch + j) % len(images)]``, ``j < batch``."""
    return [images[(call_index * batch + j) % len(images)] for j in range(batch)]


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM: unlike ru_maxrss it is not inherited across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
