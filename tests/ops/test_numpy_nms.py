"""The numpy NMS (graph engines) keeps exactly what the torch NMS (torch engine) keeps."""
import numpy as np
import pytest
import torch

from damo_pipeline.ops import batched_nms, batched_nms_numpy, multiclass_nms, multiclass_nms_numpy, nms, nms_numpy


def clustered_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Boxes around a few centres (heavy overlap), some empty, coordinates on a coarse grid (exact ties)."""
    centres = rng.uniform(50, 550, size=(8, 2))[rng.integers(0, 8, size=n)]
    sizes = rng.uniform(0, 120, size=(n, 2))
    sizes[rng.random(n) < 0.03] = 0  # empty boxes: IoU 0 / 0 never suppresses
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    return (np.round(boxes * 2) / 2).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_numpy_nms_equals_torch_nms(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(rng, 700)
    scores = (np.round(rng.random(700) * 50) / 50).astype(np.float32)  # many equal scores
    for threshold in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(nms_numpy(boxes, scores, threshold),
                                      nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy())
    classes = rng.integers(0, 5, size=700)
    np.testing.assert_array_equal(
        batched_nms_numpy(boxes, scores, classes, 0.6),
        batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), 0.6).numpy())


@pytest.mark.parametrize("seed", range(4))
def test_multiclass_numpy_equals_torch(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    boxes = clustered_boxes(rng, 1500)
    scores = rng.random((1500, 12)).astype(np.float32) ** 4
    for score_thr, iou_thr, max_det in ((0.05, 0.7, 500), (0.3, 0.5, 20), (0.99, 0.7, 500)):
        ours = multiclass_nms_numpy(scores, boxes, score_thr, iou_thr, max_det)
        reference = multiclass_nms(torch.from_numpy(scores), torch.from_numpy(boxes), score_thr, iou_thr, max_det)
        for a, b in zip(ours, reference):
            np.testing.assert_array_equal(a, b.numpy())
        assert ours[2].dtype == np.int64


def test_empty_and_bad_inputs() -> None:
    boxes, scores, labels = multiclass_nms_numpy(np.zeros((10, 3), np.float32), np.zeros((10, 4), np.float32),
                                                 0.05, 0.7)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,)
    with pytest.raises(ValueError, match="expected scores"):
        multiclass_nms_numpy(np.zeros((10, 3), np.float32), np.zeros((9, 4), np.float32), 0.05, 0.7)


@pytest.mark.parametrize("max_keep", [1, 7, 40])
def test_max_keep_is_the_greedy_prefix(max_keep: int) -> None:
    rng = np.random.default_rng(7)
    boxes = clustered_boxes(rng, 600)
    scores = rng.random(600).astype(np.float32)
    full = nms_numpy(boxes, scores, 0.5)
    np.testing.assert_array_equal(nms_numpy(boxes, scores, 0.5, max_keep=max_keep), full[:max_keep])
    np.testing.assert_array_equal(nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5, block_size=16,
                                      max_keep=max_keep).numpy(), full[:max_keep])
