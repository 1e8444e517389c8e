"""Training curves as a PNG: losses, learning rate and validation AP per epoch.

Drawn with matplotlib when it is installed, otherwise with OpenCV (a required dependency), so a run
always ends with ``curves.png``.
"""
from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["plot_curves"]

Series = Tuple[str, List[float], List[float]]  # (label, x, y)
COLORS_BGR = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140)]


def _panels(records: Sequence[Dict[str, Any]]) -> List[Tuple[str, List[Series]]]:
    """(title, series) for the loss, AP and learning-rate panels."""
    def series(key: str) -> Series:
        xs, ys = [], []
        for r in records:
            value = r.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                xs.append(float(r.get("epoch", len(xs))))
                ys.append(float(value))
        return key, xs, ys

    keys = []
    for r in records:
        keys += [k for k in r if k not in keys]
    loss_keys = ["total_loss"] + sorted(k for k in keys if k.startswith("loss_"))
    ap_keys = [k for k in ("AP", "AP50", "AP75") if k in keys]
    panels = [("training losses (epoch mean)", [series(k) for k in loss_keys if k in keys]),
              ("validation AP (pycocotools)", [series(k) for k in ap_keys]),
              ("learning rate", [series("lr")] if "lr" in keys else [])]
    return [(title, [s for s in group if s[1]]) for title, group in panels]


def plot_curves(records: Sequence[Dict[str, Any]], path: Union[str, Path]) -> Path:
    """Draw the run's curves from ``metrics.jsonl`` records into ``path`` (PNG).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = _panels(records)
    if importlib.util.find_spec("matplotlib") is not None:
        _plot_matplotlib(panels, path)
    else:
        _plot_cv2(panels, path)
    return path


def _plot_matplotlib(panels: List[Tuple[str, List[Series]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, (title, group) in zip(np.atleast_1d(axes), panels):
        for label, xs, ys in group:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if group:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)


def _plot_cv2(panels: List[Tuple[str, List[Series]]], path: Path, size: Tuple[int, int] = (500, 400)) -> None:
    import cv2

    width, height = size
    canvas = np.full((height, width * len(panels), 3), 255, np.uint8)
    margin_l, margin_r, margin_t, margin_b = 60, 15, 30, 40
    for p, (title, group) in enumerate(panels):
        x0 = p * width
        cv2.putText(canvas, title, (x0 + margin_l, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        left, right = x0 + margin_l, x0 + width - margin_r
        top, bottom = margin_t, height - margin_b
        cv2.rectangle(canvas, (left, top), (right, bottom), (0, 0, 0), 1)
        all_x = [x for _, xs, _ in group for x in xs]
        all_y = [y for _, _, ys in group for y in ys]
        if not all_x:
            continue
        xmin, xmax = min(all_x), max(all_x)
        ymin, ymax = min(all_y), max(all_y)
        xmax = xmax if xmax > xmin else xmin + 1
        ymax = ymax if ymax > ymin else ymin + 1e-9 + abs(ymin) * 0.1 + 1e-3
        for value, y_text in ((ymax, top), (ymin, bottom)):
            cv2.putText(canvas, f"{value:.3g}", (x0 + 2, y_text + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        for value, x_text in ((xmin, left), (xmax, right - 20)):
            cv2.putText(canvas, f"{value:g}", (x_text, bottom + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        for k, (label, xs, ys) in enumerate(group):
            color = COLORS_BGR[k % len(COLORS_BGR)]
            pts = np.array([[left + (x - xmin) / (xmax - xmin) * (right - left),
                             bottom - (y - ymin) / (ymax - ymin) * (bottom - top)] for x, y in zip(xs, ys)],
                           np.int32)
            cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, color, 2, cv2.LINE_AA)
            cv2.putText(canvas, label, (left + 5, top + 15 + 14 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1,
                        cv2.LINE_AA)
    if not cv2.imwrite(str(path), canvas):
        raise OSError(f"Could not write the curves image {str(path)!r}.")
