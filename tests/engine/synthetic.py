"""A tiny synthetic detection dataset for engine tests (no files, deterministic).

Each image is a dark, lightly textured square with one or two bright rectangles; class 0 rectangles
are white, class 1 rectangles are red. It speaks the engine's dataset protocol: items batched by
:func:`collate`, ``set_epoch``/``set_mosaic``, ``to_coco_gt()``, ``class_names``, ``category_ids``.
Loaded by path (``importlib``) from the tests and from the DDP worker script.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import torch

CLASS_NAMES = ["white", "red"]
CATEGORY_IDS = [3, 7]  # deliberately not 0..K-1, to exercise the label -> category id mapping


class SyntheticBoxes(torch.utils.data.Dataset):
    """``n`` images of ``size`` x ``size``; with ``random_flip`` a flip drawn from numpy's global RNG."""

    def __init__(self, n: int = 8, size: int = 128, seed: int = 0, random_flip: bool = False,
                 orig_scale: Tuple[float, float] = (1.0, 1.0)) -> None:
        rng = np.random.default_rng(seed)
        self.size = size
        self.random_flip = random_flip
        self.orig_scale = orig_scale  # original image = network image scaled by (sx, sy) per axis
        self.class_names = list(CLASS_NAMES)
        self.category_ids = list(CATEGORY_IDS)
        self.images: List[np.ndarray] = []
        self.boxes: List[np.ndarray] = []
        self.labels: List[np.ndarray] = []
        for _ in range(n):
            image = (rng.random((size, size, 3)) * 40).astype(np.float32)
            count = int(rng.integers(1, 3))
            boxes, labels = [], []
            for _ in range(count):
                w, h = rng.integers(size // 5, size // 2, 2)
                x1, y1 = rng.integers(0, size - w), rng.integers(0, size - h)
                label = int(rng.integers(0, 2))
                color = (255.0, 255.0, 255.0) if label == 0 else (255.0, 30.0, 30.0)
                image[y1:y1 + h, x1:x1 + w] = color
                boxes.append([x1, y1, x1 + w, y1 + h])
                labels.append(label)
            self.images.append(image)
            self.boxes.append(np.array(boxes, np.float32))
            self.labels.append(np.array(labels, np.int64))
        self.epochs_seen: List[int] = []
        self.mosaic_calls: List[bool] = []

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epochs_seen.append(epoch)

    def set_mosaic(self, enabled: bool) -> None:
        self.mosaic_calls.append(enabled)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, Dict[str, Any]]:
        image = self.images[index].copy()
        boxes = self.boxes[index].copy()
        if self.random_flip and np.random.random() < 0.5:
            image = image[:, ::-1].copy()
            boxes[:, [0, 2]] = self.size - boxes[:, [2, 0]]
        sx, sy = self.orig_scale
        target = {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(self.labels[index].copy()),
                  "image_id": index + 1, "orig_size": (round(self.size * sy), round(self.size * sx))}
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), target

    def coco_dict(self) -> Dict[str, Any]:
        sx, sy = self.orig_scale
        images, annotations = [], []
        for i, (boxes, labels) in enumerate(zip(self.boxes, self.labels)):
            images.append({"id": i + 1, "file_name": f"{i}.png", "height": round(self.size * sy),
                           "width": round(self.size * sx)})
            for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels.tolist()):
                w, h = (x2 - x1) * sx, (y2 - y1) * sy
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                    "category_id": self.category_ids[label], "bbox": [x1 * sx, y1 * sy, w, h],
                                    "area": w * h, "iscrowd": 0})
        categories = [{"id": c, "name": n} for c, n in zip(self.category_ids, self.class_names)]
        return {"images": images, "annotations": annotations, "categories": categories}

    def to_coco_gt(self) -> Any:
        from pycocotools.coco import COCO

        gt = COCO()
        gt.dataset = self.coco_dict()
        gt.createIndex()
        return gt


def collate(samples: List[Tuple[torch.Tensor, Dict[str, Any]]]) -> Tuple[torch.Tensor, List[Dict[str, Any]]]:
    """Stack images, keep targets as a list."""
    return torch.stack([s[0] for s in samples]).float(), [s[1] for s in samples]
