"""A PNG scatter plot of a search's score against latency, drawn with OpenCV (no plotting library needed)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

Point = Tuple[float, float]

_WHITE, _BLACK, _GREY = (255, 255, 255), (40, 40, 40), (200, 200, 200)
_BLUE, _RED, _GREEN, _ORANGE = (200, 90, 30), (40, 40, 220), (40, 160, 40), (0, 140, 255)  # BGR


def _nice_ticks(lo: float, hi: float, count: int = 5) -> List[float]:
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def pareto_plot(path: Union[str, Path], cloud: Sequence[Point], front: Sequence[Point],
                budget_ms: Optional[float] = None, winner: Optional[Point] = None,
                references: Sequence[Tuple[str, Point]] = (), title: str = "MAE-NAS: score vs latency",
                size: Tuple[int, int] = (960, 640)) -> Path:
    """Draw ``(latency_ms, score)`` points and write a PNG atomically.

    Args:
        path: output ``.png``.
        cloud: every evaluated feasible candidate (grey).
        front: the Pareto front (blue line).
        budget_ms: latency budget (dashed vertical line).
        winner: the chosen structure (red).
        references: labelled points, e.g. the shipped structure of the base size (green).
        title: plot title.
        size: (width, height) in pixels.
    """
    import cv2

    width, height = size
    left, right, top, bottom = 90, 30, 50, 70
    img = np.full((height, width, 3), 255, np.uint8)
    everything = list(cloud) + list(front) + ([winner] if winner else []) + [p for _, p in references]
    if not everything:
        everything = [(0.0, 0.0), (1.0, 1.0)]
    xs = [p[0] for p in everything] + ([budget_ms] if budget_ms else [])
    ys = [p[1] for p in everything]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    x_pad = (x_hi - x_lo) * 0.05 or 1.0
    y_pad = (y_hi - y_lo) * 0.05 or 1.0
    x_lo, x_hi, y_lo, y_hi = x_lo - x_pad, x_hi + x_pad, y_lo - y_pad, y_hi + y_pad

    def to_px(p: Point) -> Tuple[int, int]:
        x = left + (p[0] - x_lo) / (x_hi - x_lo) * (width - left - right)
        y = height - bottom - (p[1] - y_lo) / (y_hi - y_lo) * (height - top - bottom)
        return int(round(x)), int(round(y))

    font = cv2.FONT_HERSHEY_SIMPLEX

    def label(text: str, at: Tuple[int, int], color: Tuple[int, int, int], dy: int) -> None:
        (tw, _), _ = cv2.getTextSize(text, font, 0.5, 1)
        x = at[0] + 9 if at[0] + 9 + tw < width - 4 else at[0] - 9 - tw
        cv2.putText(img, text, (x, at[1] + dy), font, 0.5, color, 1, cv2.LINE_AA)

    cv2.rectangle(img, (left, top), (width - right, height - bottom), _BLACK, 1)
    for tx in _nice_ticks(x_lo, x_hi):
        px, _ = to_px((tx, y_lo))
        cv2.line(img, (px, height - bottom), (px, height - bottom + 5), _BLACK, 1)
        cv2.putText(img, f"{tx:g}", (px - 18, height - bottom + 22), font, 0.45, _BLACK, 1, cv2.LINE_AA)
    for ty in _nice_ticks(y_lo, y_hi):
        _, py = to_px((x_lo, ty))
        cv2.line(img, (left - 5, py), (left, py), _BLACK, 1)
        cv2.putText(img, f"{ty:g}", (8, py + 5), font, 0.45, _BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, "predicted latency of the fused detector (ms)", (left + 150, height - 20), font, 0.55, _BLACK, 1,
                cv2.LINE_AA)
    cv2.putText(img, "entropy score", (8, top - 15), font, 0.55, _BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, title, (left + 120, 28), font, 0.65, _BLACK, 1, cv2.LINE_AA)
    for p in cloud:
        cv2.circle(img, to_px(p), 2, _GREY, -1, cv2.LINE_AA)
    front_px = [to_px(p) for p in sorted(front)]
    if len(front_px) > 1:
        cv2.polylines(img, [np.array(front_px, np.int32)], False, _BLUE, 2, cv2.LINE_AA)
    for q in front_px:
        cv2.circle(img, q, 4, _BLUE, -1, cv2.LINE_AA)
    if budget_ms:
        px, _ = to_px((budget_ms, y_lo))
        for y in range(top, height - bottom, 12):
            cv2.line(img, (px, y), (px, min(y + 6, height - bottom)), _ORANGE, 2)
        label(f"budget {budget_ms:.4g} ms", (px, height - bottom), _ORANGE, -10)
    for name, p in references:
        q = to_px(p)
        cv2.drawMarker(img, q, _GREEN, cv2.MARKER_DIAMOND, 14, 2, cv2.LINE_AA)
        label(name, q, _GREEN, 18)
    if winner:
        q = to_px(winner)
        cv2.drawMarker(img, q, _RED, cv2.MARKER_STAR, 18, 2, cv2.LINE_AA)
        label("winner", q, _RED, -8)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"OpenCV could not encode the plot for {str(target)!r}.")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(encoded.tobytes())
    os.replace(tmp, target)
    return target
