"""The training dataset: official augmentation on top of a :class:`DetectionDataset`, worker-process safe.

Each sample is a pure function of (seed, epoch, index): its ``numpy.random.Generator`` is seeded from those three
numbers, so results do not depend on the number of DataLoader workers or on which worker draws which index.

The epoch and the mosaic switch live in a 2-element shared-memory tensor. ``set_epoch`` and ``set_mosaic`` called
in the main process are therefore seen by worker processes that already exist (``persistent_workers=True``), for
fork and spawn start methods alike; the engine does not need to recreate the DataLoader. Batches that workers had
already prefetched before the call keep the old setting (as in the official trainer).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment_config import TrainAugmentConfig
from .dataset import DetectionDataset
from .mosaic import Annotated, build_mosaic, drop_empty_boxes, drop_small_boxes, mixup, random_affine, sample_affine
from .sada import sada_augment
from .transforms import hflip, scale_boxes, stretch_resize, to_chw_tensor

logger = logging.getLogger(__name__)

_RANDOM_RETRIES = 10  # random replacements tried for an unreadable image before a linear scan


class TrainDataset(Dataset):
    """Augmented training samples: mosaic -> random affine -> mixup -> stretch resize -> flip (training.md §3.2).

    With the mosaic switched off (:meth:`set_mosaic`), each sample is the plain image stretched to S x S and flipped
    with ``flip_prob`` (the official no-aug final epochs). With ``config.sada`` the SADA box-level augmentation
    follows the flip, ramping up over ``config.sada_epochs`` (off by default).

    Unreadable images never stop training: an unreadable image is replaced by another readable one (drawn from the
    sample's own generator, so still deterministic) and counted once in ``dataset.report``. Only a dataset with no
    readable image at all raises (``OSError``).

    Args:
        dataset: the cleaned split.
        config: augmentation settings; None takes ``TrainAugmentConfig()`` (T/S/M/L defaults, 640).
        seed: base seed of every sample's generator.

    ``dataset[i]`` returns ``(image, target)``: image float32 [3, S, S] RGB 0..255; target ``{"boxes": float32
    [K, 4] xyxy network pixels, "labels": int64 [K], "image_id": int, "orig_size": (h, w)}`` of the sampled image
    (the mosaic's first tile). Images and mosaics without boxes give empty [0, 4] / [0] tensors.
    """

    def __init__(self, dataset: DetectionDataset, config: Optional[TrainAugmentConfig] = None, seed: int = 0) -> None:
        if len(dataset) == 0:
            raise ValueError(f"Dataset {dataset.name!r} has no images; a training set needs at least one.")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
        self.dataset = dataset
        self.config = config if config is not None else TrainAugmentConfig()
        if not isinstance(self.config, TrainAugmentConfig):
            raise TypeError(f"config must be a TrainAugmentConfig, got {type(self.config).__name__}.")
        self.seed = seed
        self._state = torch.tensor([0, 1], dtype=torch.int64).share_memory_()  # [epoch, mosaic enabled]

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def class_names(self):
        """The dataset's class list."""
        return self.dataset.class_names

    @property
    def epoch(self) -> int:
        """Current epoch (part of every sample's seed)."""
        return int(self._state[0])

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch used to seed the samples; call before iterating each epoch."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}.")
        self._state[0] = epoch

    @property
    def mosaic_enabled(self) -> bool:
        """True while mosaic/affine/mixup are on."""
        return bool(int(self._state[1]))

    def set_mosaic(self, enabled: bool) -> None:
        """Switch the mosaic pipeline on or off (off = the no-aug pipeline of the last epochs)."""
        self._state[1] = int(bool(enabled))

    def generator(self, index: int, epoch: Optional[int] = None) -> np.random.Generator:
        """The random generator of sample ``index`` at ``epoch`` (default: the current epoch)."""
        epoch = self.epoch if epoch is None else epoch
        return np.random.default_rng([self.seed, epoch, index])

    def _load(self, index: int, rng: np.random.Generator) -> Tuple[int, Annotated]:
        """Image ``index`` with its boxes, or a readable replacement when it is unreadable."""
        candidates = [index] + [int(i) for i in rng.integers(0, len(self.dataset), size=_RANDOM_RETRIES)]
        for candidate in candidates:
            image = self.dataset.load_image(candidate)
            if image is not None:
                return candidate, self._annotated(candidate, image)
        for offset in range(1, len(self.dataset)):
            candidate = (index + offset) % len(self.dataset)
            image = self.dataset.load_image(candidate)
            if image is not None:
                return candidate, self._annotated(candidate, image)
        raise OSError(f"No image of {self.dataset.name!r} can be decoded ({len(self.dataset)} tried); "
                      f"check the image folder.")

    def _annotated(self, index: int, image: np.ndarray) -> Annotated:
        boxes, labels = self.dataset.annotations(index)
        seg_points, seg_counts = self.dataset.segments(index)
        info = self.dataset.image_info(index)
        if image.shape[:2] != (info["height"], info["width"]) and info["height"] > 0:
            # Annotation size differs from the decoded image: scale the boxes so they keep their relative place.
            sy, sx = image.shape[0] / info["height"], image.shape[1] / info["width"]
            boxes = scale_boxes(boxes, (sx, sy))
            seg_points = (seg_points * np.array([sx, sy], np.float32)).astype(np.float32)
        return Annotated(image, boxes, labels, seg_points, seg_counts)

    def _mosaic_sample(self, first: Annotated, rng: np.random.Generator) -> Annotated:
        cfg = self.config
        size = cfg.mosaic_size
        center = (int(rng.uniform(0.5 * size, 1.5 * size)), int(rng.uniform(0.5 * size, 1.5 * size)))
        tiles = [first]
        for other in rng.integers(0, len(self.dataset), size=3):
            tiles.append(self._load(int(other), rng)[1])
        canvas = build_mosaic(tiles, center, size, cfg.fill_value)
        if cfg.drop_cut_boxes:
            canvas = drop_empty_boxes(canvas)
        matrix, scale = sample_affine(rng, canvas.image.shape[:2], size, cfg.degrees, cfg.translate,
                                      cfg.mosaic_scale, cfg.shear)
        sample = random_affine(canvas, matrix, scale, size, cfg.fill_value, cfg.use_polygons, cfg.candidate_wh,
                               cfg.candidate_area_ratio, cfg.candidate_aspect)
        if len(sample.boxes) and len(self.dataset.indices_with_boxes) and rng.random() < cfg.mixup_prob:
            pick = int(self.dataset.indices_with_boxes[rng.integers(0, len(self.dataset.indices_with_boxes))])
            _, other = self._load(pick, rng)
            sample = mixup(sample, other, rng, cfg.mixup_scale, cfg.fill_value)
        return drop_small_boxes(sample, cfg.min_box_area)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, Dict[str, Any]]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"Index {index} out of range for {len(self)} training images.")
        index = int(index) % len(self)
        cfg = self.config
        rng = self.generator(index)
        used, sample = self._load(index, rng)
        info = self.dataset.image_info(used)
        orig_size = (int(sample.image.shape[0]), int(sample.image.shape[1]))
        if self.mosaic_enabled and rng.random() < cfg.mosaic_prob:
            sample = self._mosaic_sample(sample, rng)
        image, scale = stretch_resize(sample.image, cfg.img_size)
        boxes, labels = scale_boxes(sample.boxes, scale), sample.labels
        if rng.random() < cfg.flip_prob:
            image, boxes = hflip(image, boxes)
        if cfg.sada and self.epoch < cfg.sada_epochs:
            image, boxes, labels = sada_augment(image, boxes, labels, rng, self.epoch / cfg.sada_epochs,
                                                cfg.sada_box_prob)
        target = {"boxes": torch.from_numpy(boxes.reshape(-1, 4).astype(np.float32)),
                  "labels": torch.from_numpy(labels.astype(np.int64)),
                  "image_id": int(info["id"]), "orig_size": orig_size}
        return to_chw_tensor(image), target
