"""SADA box-level augmentation (optional): colour blending around boxes, crop ops, translate adds boxes, ramp."""
import numpy as np
import pytest
import torch

from damo_pipeline.data import TrainAugmentConfig, TrainDataset, load_detection_dataset
from damo_pipeline.data.sada import COLOUR_OPS, gaussian_masks, sada_augment


def _scene():
    image = np.full((200, 300, 3), 100, np.uint8)
    image[60:100, 40:120] = (200, 40, 40)
    image[:, 150:] = np.linspace(0, 255, 150, dtype=np.uint8)[None, :, None]  # a gradient far from the box
    boxes = np.array([[40, 60, 120, 100]], np.float32)
    return image, boxes, np.array([1], np.int64)


def test_no_op_after_the_ramp_and_at_zero():
    image, boxes, labels = _scene()
    for ratio in (0.0, 1.5):
        out, out_boxes, out_labels = sada_augment(image, boxes, labels, np.random.default_rng(0), ratio)
        np.testing.assert_array_equal(out, image.astype(np.float32))
        assert out_boxes is boxes and out_labels is labels


def test_colour_op_is_blended_around_the_box_only():
    image, boxes, labels = _scene()
    policy = [(("Brightness", 1.0, 0), ("hflip", 0.0, 1))]  # brightness factor 0.1: strong darkening
    out, out_boxes, _ = sada_augment(image, boxes, labels, np.random.default_rng(0), 1.0, box_prob=10.0,
                                     policies=policy)
    centre = (80, 80)  # (row, col): the box centre gets the full op
    assert out[centre][0] == pytest.approx(image[centre][0] * 0.1, abs=1.0)
    assert np.abs(out[:, 200:] - image[:, 200:]).max() < 1.0  # far away: unchanged
    np.testing.assert_array_equal(out_boxes, boxes)
    mask = gaussian_masks(200, 300, boxes.astype(np.float64), np.array([2048.0, 10240.0, 51200.0]) * 0.25)
    assert mask[80, 80] == pytest.approx(1.0) and mask[0, 299] < 1e-3
    for name, op in COLOUR_OPS.items():
        result = op(image / 255.0, 5)
        assert result.shape == image.shape and result.min() >= 0.0 and result.max() <= 1.0, name


def test_translate_adds_a_shifted_copy_and_hflip_mirrors_the_crop():
    image, boxes, labels = _scene()
    policy = [(("Color", 0.0, 2), ("translateX", 1.0, 4))]  # 48 px, sign drawn at random
    out, out_boxes, out_labels = sada_augment(image, boxes, labels, np.random.default_rng(1), 1.0, box_prob=10.0,
                                              policies=policy)
    assert out_labels.tolist() == [1, 1] and len(out_boxes) == 2
    shift = out_boxes[1, 0] - boxes[0, 0]
    assert abs(shift) == 48 and out_boxes[1, 1] == boxes[0, 1]
    x1, y1, x2, y2 = out_boxes[1].astype(int)
    np.testing.assert_allclose(out[(y1 + y2) // 2, (x1 + x2) // 2], image[80, 80], atol=1.0)  # copy's centre
    mirrored = image.copy()
    mirrored[:, 40:140] = np.arange(100, dtype=np.uint8)[None, :, None]  # a ramp inside the box, to see the mirror
    boxes = np.array([[40, 60, 140, 100]], np.float32)
    out, _, _ = sada_augment(mirrored, boxes, labels, np.random.default_rng(0), 1.0, box_prob=10.0,
                             policies=[(("Color", 0.0, 2), ("hflip", 1.0, 1))])
    assert out[80, 90] == pytest.approx(mirrored[80, 40 + (139 - 90), 0], abs=1.5)


def test_rotate_and_shear_keep_boxes():
    image, boxes, labels = _scene()
    for op in ("rotate", "shearX", "shearY"):
        out, out_boxes, _ = sada_augment(image, boxes, labels, np.random.default_rng(2), 1.0, box_prob=10.0,
                                         policies=[(("Color", 0.0, 2), (op, 1.0, 10))])
        np.testing.assert_array_equal(out_boxes, boxes)
        assert np.abs(out - image).max() > 10, op  # the crop changed
        assert np.abs(out[:, 150:] - image[:, 150:]).max() == 0, op  # outside the box untouched


def test_training_dataset_with_sada(synthetic_coco):
    ds = load_detection_dataset(synthetic_coco)
    config = TrainAugmentConfig(img_size=128, mosaic_size=128, sada=True, sada_epochs=100, sada_box_prob=3.0)
    with_sada, without = TrainDataset(ds, config, seed=3), TrainDataset(ds, config.replace(sada=False), seed=3)
    changed = 0
    for epoch in (97, 98, 99):
        with_sada.set_epoch(epoch)
        without.set_epoch(epoch)
        changed += sum(not torch.equal(with_sada[i][0], without[i][0]) for i in range(len(ds)))
    assert 8 <= changed <= 30  # about 40 % of samples get an op near the end of the ramp
    again = TrainDataset(ds, config, seed=3)
    again.set_epoch(99)
    assert all(torch.equal(again[i][0], with_sada[i][0]) for i in range(3))  # deterministic
    for dataset in (with_sada, without):
        dataset.set_epoch(100)  # the ramp is over: SADA is off
    assert all(torch.equal(with_sada[i][0], without[i][0]) for i in range(4))
    assert TrainAugmentConfig.from_dict(config.to_dict()) == config
