"""The official DAMO-YOLO pre/post-processing rules (spec/architecture.md §7, §8) on hand-checked cases."""
from pathlib import Path
from typing import List

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from damo_pipeline.ops.resize import as_size, letterbox_size, rescale_boxes, resize_image


# -- resize ---------------------------------------------------------------------------------------------------------
def test_stretch_resize_is_cv2_inter_linear_on_uint8_rgb(coco_images: List[Path]) -> None:
    rgb = np.asarray(Image.open(coco_images[0]).convert("RGB"))
    canvas, resized = resize_image(rgb, (640, 640), "stretch")
    assert resized == (640, 640)
    np.testing.assert_array_equal(canvas, cv2.resize(rgb, (640, 640), interpolation=cv2.INTER_LINEAR))
    canvas, resized = resize_image(rgb, (320, 480), "stretch")  # (height, width): cv2 takes (width, height)
    assert canvas.shape == (320, 480, 3) and resized == (320, 480)
    np.testing.assert_array_equal(canvas, cv2.resize(rgb, (480, 320), interpolation=cv2.INTER_LINEAR))


@pytest.mark.parametrize("hw, target, expected", [
    ((480, 640), (640, 640), (480, 640)),   # r = 1
    ((500, 333), (640, 640), (640, 426)),   # r = 1.28, int(333 * 1.28) = int(426.24)
    ((100, 200), (64, 64), (32, 64)),       # r = 0.32
    ((1, 5000), (64, 64), (1, 64)),         # never below one pixel
])
def test_letterbox_size_is_the_official_keep_ratio_rule(hw, target, expected) -> None:
    assert letterbox_size(*hw, *target) == expected


def test_letterbox_pads_bottom_right_with_zeros() -> None:
    image = np.full((100, 200, 3), 200, dtype=np.uint8)
    canvas, resized = resize_image(image, (64, 64), "letterbox")
    assert resized == (32, 64) and canvas.shape == (64, 64, 3)
    assert (canvas[:32] == 200).all() and (canvas[32:] == 0).all()
    np.testing.assert_array_equal(canvas[:32], cv2.resize(image, (64, 32), interpolation=cv2.INTER_LINEAR))


def test_resize_rejects_bad_mode_and_input() -> None:
    with pytest.raises(ValueError, match="resize must be one of"):
        resize_image(np.zeros((4, 4, 3), np.uint8), (32, 32), "crop")
    with pytest.raises(ValueError, match="uint8"):
        resize_image(np.zeros((4, 4, 3), np.float32), (32, 32))


@pytest.mark.parametrize("bad, error", [(100, ValueError), ((640, 100), ValueError), (0, ValueError),
                                        ("640", TypeError), (True, TypeError), ((640,), TypeError)])
def test_img_size_must_be_multiples_of_32(bad, error) -> None:
    with pytest.raises(error, match="img_size"):
        as_size(bad)
    assert as_size(416) == (416, 416) and as_size((320, 640)) == (320, 640)


# -- box back-projection --------------------------------------------------------------------------------------------
def test_boxes_scale_back_per_axis() -> None:
    boxes = torch.tensor([[32.0, 32.0, 64.0, 64.0], [0.0, 16.0, 8.0, 48.0]])
    out = rescale_boxes(boxes, resized_size=(64, 64), original_size=(100, 300))  # x * 300/64, y * 100/64
    expected = torch.tensor([[150.0, 50.0, 300.0, 100.0], [0.0, 25.0, 37.5, 75.0]])
    torch.testing.assert_close(out, expected)


def test_boxes_are_clipped_only_when_asked() -> None:
    boxes = torch.tensor([[-6.4, -12.8, 70.4, 64.0]])
    raw = rescale_boxes(boxes, (64, 64), (100, 300), clip=False)
    torch.testing.assert_close(raw, torch.tensor([[-30.0, -20.0, 330.0, 100.0]]))
    clipped = rescale_boxes(boxes, (64, 64), (100, 300), clip=True)
    torch.testing.assert_close(clipped, torch.tensor([[0.0, 0.0, 300.0, 100.0]]))


def test_integer_boxes_are_scaled_in_float() -> None:
    out = rescale_boxes(torch.tensor([[32, 32, 64, 64]]), resized_size=(64, 64), original_size=(100, 300))
    torch.testing.assert_close(out, torch.tensor([[150.0, 50.0, 300.0, 100.0]]))


def test_letterbox_boxes_use_the_resized_size_not_the_padded_one() -> None:
    out = rescale_boxes(torch.tensor([[0.0, 0.0, 64.0, 32.0]]), resized_size=(32, 64), original_size=(100, 200))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 200.0, 100.0]]))


# -- post-processing through the pipeline's postprocess -------------------------------------------------------------
def _outputs(scores: List[List[float]], boxes: List[List[float]], size=(64, 64), original=(64, 64)) -> dict:
    return {"scores": torch.tensor([scores]), "boxes": torch.tensor([boxes], dtype=torch.float32), "resized_size": size,
            "original_size": original, "source": "hand", "frame_index": None, "image": None}


def _post(detector, outputs: dict, **options) -> dict:
    params = {"score_threshold": 0.5, "iou_threshold": 0.5, "max_detections": 500, "clip_boxes": True,
              "keep_image": False}
    params.update(detector._sanitize_parameters(**options)[2])
    return detector.postprocess(outputs, **params)


def _scores(k: int, **by_class: float) -> List[float]:
    row = [0.0] * k
    for index, value in by_class.items():
        row[int(index[1:])] = value
    return row


def test_score_threshold_is_strict(detector) -> None:
    k = len(detector.class_names)
    outputs = _outputs([_scores(k, c0=0.5), _scores(k, c1=0.75)], [[0, 0, 10, 10], [20, 20, 30, 30]])
    kept = _post(detector, outputs, score_threshold=0.5)
    assert kept["scores"].tolist() == [0.75] and kept["label_ids"].tolist() == [1]
    assert _post(detector, outputs, score_threshold=0.49)["scores"].tolist() == [0.75, 0.5]


def test_a_box_is_kept_once_per_passing_class(detector) -> None:
    k = len(detector.class_names)
    kept = _post(detector, _outputs([_scores(k, c0=0.875, c2=0.75)], [[4, 4, 40, 40]]))
    assert kept["label_ids"].tolist() == [0, 2]
    assert kept["labels"] == [detector.class_names[0], detector.class_names[2]]
    np.testing.assert_array_equal(kept["boxes"], [[4, 4, 40, 40], [4, 4, 40, 40]])


def test_nms_suppresses_only_iou_strictly_above_threshold_within_a_class(detector) -> None:
    k = len(detector.class_names)
    boxes = [[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 5]]  # IoU(first, second) = 50 / 100 = 0.5 exactly
    outputs = _outputs([_scores(k, c0=0.875), _scores(k, c0=0.75), _scores(k, c3=0.625)], boxes)
    assert _post(detector, outputs, iou_threshold=0.5)["label_ids"].tolist() == [0, 0, 3]
    suppressed = _post(detector, outputs, iou_threshold=0.49)
    assert suppressed["label_ids"].tolist() == [0, 3]  # the other class's box survives an IoU of 1 with class 0
    assert suppressed["scores"].tolist() == [0.875, 0.625]


def test_max_detections_keeps_the_best(detector) -> None:
    k = len(detector.class_names)
    values = [0.55, 0.95, 0.65, 0.85, 0.75]
    boxes = [[12 * i, 0, 12 * i + 10, 10] for i in range(5)]
    outputs = _outputs([_scores(k, c5=v) for v in values], boxes)
    kept = _post(detector, outputs, max_detections=3)
    np.testing.assert_allclose(kept["scores"], [0.95, 0.85, 0.75])
    np.testing.assert_array_equal(kept["boxes"][:, 0], [12, 36, 48])
    assert _post(detector, outputs)["scores"].shape == (5,)


def test_classes_filter_by_name_and_id(detector) -> None:
    k = len(detector.class_names)
    outputs = _outputs([_scores(k, c0=0.9), _scores(k, c1=0.8), _scores(k, c2=0.7)],
                       [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])
    names = detector.class_names
    assert _post(detector, outputs, classes=[names[2], 0])["label_ids"].tolist() == [0, 2]
    assert _post(detector, outputs, classes=names[1])["labels"] == [names[1]]
    with pytest.raises(ValueError, match="not classes of this model"):
        _post(detector, outputs, classes=["unicorn"])
    with pytest.raises(ValueError, match="not classes of this model"):
        _post(detector, outputs, classes=[k])


def test_postprocess_maps_boxes_to_the_original_image(detector) -> None:
    k = len(detector.class_names)
    outputs = _outputs([_scores(k, c0=0.9)], [[32, 32, 64, 64]], size=(64, 64), original=(100, 300))
    np.testing.assert_allclose(_post(detector, outputs)["boxes"], [[150, 50, 300, 100]])
