"""CUDA paths: the default device, per-call device overrides and float16 (skipped without a CUDA device).

cuDNN may use TF32 and float16 moves scores by ~1e-3, so detections are compared as sets with tolerances: every
clear detection on one side has a twin of the same class on the other.
"""
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch

from damo_pipeline.pipelines import DetectionResult, pipeline

pytestmark = pytest.mark.gpu


def _has_twins(strong: DetectionResult, reference: DetectionResult, box_tol: float = 2.0,
               score_tol: float = 1e-2) -> bool:
    same_class = strong["label_ids"][:, None] == reference["label_ids"][None, :]
    close_box = np.abs(strong["boxes"][:, None, :] - reference["boxes"][None, :, :]).max(-1) < box_tol
    close_score = np.abs(strong["scores"][:, None] - reference["scores"][None, :]) < score_tol
    return bool((same_class & close_box & close_score).any(1).all())


def test_cuda_matches_cpu(checkpoints, detector, coco_images: List[Path], small_options) -> None:
    gpu = pipeline("image-object-detection", model=checkpoints["pth"], **{**small_options, "device": None})
    assert gpu.device.type == "cuda" and next(gpu.model.parameters()).is_cuda
    for photo in coco_images[:3]:
        on_gpu, on_cpu = gpu(photo), detector(photo)
        assert abs(on_gpu.num_detections - on_cpu.num_detections) <= max(2, on_cpu.num_detections // 20)
        assert _has_twins(on_gpu.filter(min_score=0.35), on_cpu)
        assert _has_twins(on_cpu.filter(min_score=0.35), on_gpu)


def test_per_call_device_and_half_use_cached_copies(detector, coco_images: List[Path]) -> None:
    photo = coco_images[5]
    on_cpu = detector(photo)
    on_gpu = detector(photo, device="cuda")
    again = detector(photo, device="cuda:0")
    assert len(detector._models) == 2 and detector.device == torch.device("cpu")
    np.testing.assert_array_equal(on_gpu["scores"], again["scores"])
    half = detector(photo, device="cuda", half=True)
    assert half["scores"].dtype == np.float32 and len(detector._models) == 3
    strong = half.filter(min_score=0.35)
    assert strong.num_detections > 0 and _has_twins(strong, on_cpu)


def test_half_batches(checkpoints, coco_images: List[Path], small_options) -> None:
    half = pipeline("image-object-detection", model=checkpoints["pth"], **{**small_options, "device": "cuda"},
                    half=True, batch_size=4)
    assert next(half.model.parameters()).dtype == torch.float16
    results = half(coco_images[:6])
    assert len(results) == 6 and all(r["boxes"].dtype == np.float32 for r in results)
    singles = [half(p) for p in coco_images[:6]]
    for one, many in zip(singles, results):
        assert _has_twins(one.filter(min_score=0.35), many)
