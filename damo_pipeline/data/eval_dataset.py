"""The evaluation dataset (official test preprocessing) and the batch collate function."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .dataset import DetectionDataset
from .transforms import get_resize, scale_boxes, to_chw_tensor

logger = logging.getLogger(__name__)


class EvalDataset(Dataset):
    """Images preprocessed the official way for evaluation (architecture.md §7): RGB, resized to S x S with cv2
    INTER_LINEAR (``stretch``: aspect ignored, the official default; ``letterbox``: keep ratio, top-left, zero
    padding, for legacy checkpoints), float 0..255 CHW, no flip.

    ``dataset[i]`` returns ``(image float32 [3, S, S], target)`` with target ``{"boxes": float32 [K, 4] xyxy network
    pixels, "labels": int64 [K], "image_id": int, "orig_size": (h, w), "scale": (sx, sy), "valid": bool}``.
    Original pixels = network pixels / scale, per axis; "original" is the frame of the annotations
    (``image_info(i)`` height and width), which is the decoded image's unless the report counts a size mismatch.

    An unreadable image gives a flagged empty sample: an all-zero image, ``"valid": False``, empty boxes, and
    ``orig_size``/``scale`` from the annotation file's size. It stays in the set, so its ground truth still counts
    (as misses) in COCOeval unless the evaluator drops ``image_id``s whose sample is not valid. It is counted
    in ``dataset.report``.
    """

    def __init__(self, dataset: DetectionDataset, img_size: int = 640, resize: str = "stretch") -> None:
        if not isinstance(img_size, int) or img_size <= 0:
            raise ValueError(f"img_size must be a positive int, got {img_size!r}.")
        self.dataset = dataset
        self.img_size = img_size
        self.resize = resize
        self._resize = get_resize(resize)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def class_names(self) -> List[str]:
        """The dataset's class list."""
        return self.dataset.class_names

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, Dict[str, Any]]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"Index {index} out of range for {len(self)} evaluation images.")
        index = int(index) % len(self)
        info = self.dataset.image_info(index)
        boxes, labels = self.dataset.annotations(index)
        image = self.dataset.load_image(index)
        size = self.img_size
        if image is None:
            height, width = max(info["height"], 1), max(info["width"], 1)
            scale = (size / width, size / height)
            return torch.zeros(3, size, size), {
                "boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "image_id": int(info["id"]),
                "orig_size": (height, width), "scale": scale, "valid": False}
        resized, scale = self._resize(image, size)
        orig_size = (int(image.shape[0]), int(image.shape[1]))
        if info["height"] > 0 and orig_size != (info["height"], info["width"]):
            # The file decodes to another size than the annotations record (counted in the report): express the
            # scale against the recorded size, the frame of the ground truth and of COCO results.
            scale = (scale[0] * orig_size[1] / info["width"], scale[1] * orig_size[0] / info["height"])
            orig_size = (info["height"], info["width"])
        return to_chw_tensor(resized), {
            "boxes": torch.from_numpy(scale_boxes(boxes, scale)), "labels": torch.from_numpy(labels),
            "image_id": int(info["id"]), "orig_size": orig_size,
            "scale": (float(scale[0]), float(scale[1])), "valid": True}


def collate_detection(batch: Sequence[Tuple[torch.Tensor, Dict[str, Any]]],
                      size_divisible: int = 32) -> Tuple[torch.Tensor, List[Dict[str, Any]]]:
    """Stack samples into ``(images float32 [N, 3, H, W], [target, ...])``.

    Images of different sizes are zero-padded at the bottom/right to the largest size rounded up to a multiple of
    ``size_divisible`` (the official batching); equal-sized images (always, with the stretch resize) are stacked.
    """
    if not batch:
        raise ValueError("collate_detection got an empty batch.")
    images = [sample[0] for sample in batch]
    targets = [sample[1] for sample in batch]
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) == 1:
        return torch.stack(images, 0), targets
    height = max(image.shape[1] for image in images)
    width = max(image.shape[2] for image in images)
    height = int(np.ceil(height / size_divisible) * size_divisible)
    width = int(np.ceil(width / size_divisible) * size_divisible)
    padded = images[0].new_zeros((len(images), images[0].shape[0], height, width))
    for slot, image in zip(padded, images):
        slot[:, :image.shape[1], :image.shape[2]] = image
    return padded, targets
