"""DetectionResult: the dict schema, to_hf, to_supervision, plot, save, to_json."""
import json
import pickle
import sys
from pathlib import Path
from typing import List

import cv2
import numpy as np
import pytest
from PIL import Image

from damo_pipeline.pipelines import DetectionResult
from damo_pipeline.pipelines.results import class_color


@pytest.fixture(scope="module")
def photo_rgb(coco_images: List[Path]) -> np.ndarray:
    return np.asarray(Image.open(coco_images[3]).convert("RGB"))


@pytest.fixture(scope="module")
def hand_result(photo_rgb: np.ndarray) -> DetectionResult:
    """Two classes, boxes well inside the image; box 1 corners are non-integer."""
    return DetectionResult(np.array([0.9, 0.6], np.float32), ["person", "dog"],
                           np.array([[40, 60, 200, 220], [250.7, 100.2, 330.9, 180.6]], np.float32),
                           np.array([0, 16]), image_size=photo_rgb.shape[:2], source="hand.jpg", image=photo_rgb)


@pytest.fixture(scope="module")
def real_result(detector, coco_images: List[Path]) -> DetectionResult:
    result = detector(coco_images[5])
    assert result.num_detections > 3
    return result


def test_behaves_as_the_modelscope_dict(real_result: DetectionResult) -> None:
    assert isinstance(real_result, dict)
    assert list(real_result) == ["scores", "labels", "boxes", "label_ids"]
    n = real_result.num_detections
    assert real_result["scores"].dtype == np.float32 and real_result["scores"].shape == (n,)
    assert real_result["boxes"].dtype == np.float32 and real_result["boxes"].shape == (n, 4)
    assert real_result["label_ids"].dtype == np.int64 and isinstance(real_result["labels"], list)
    assert all(isinstance(label, str) for label in real_result["labels"])
    assert np.all(np.diff(real_result["scores"]) <= 0)
    x1, y1, x2, y2 = real_result["boxes"].T
    height, width = real_result.image_size
    assert (x1 <= x2).all() and (y1 <= y2).all() and (x2 <= width).all() and (y2 <= height).all()
    assert dict(real_result) == real_result and real_result == real_result.filter()
    assert "detections" in repr(real_result)


def test_to_hf_is_the_transformers_schema(hand_result: DetectionResult) -> None:
    assert hand_result.to_hf() == [
        {"score": pytest.approx(0.9), "label": "person", "box": {"xmin": 40, "ymin": 60, "xmax": 200, "ymax": 220}},
        {"score": pytest.approx(0.6), "label": "dog", "box": {"xmin": 250, "ymin": 100, "xmax": 330, "ymax": 180}},
    ]
    assert all(isinstance(v, int) for item in hand_result.to_hf() for v in item["box"].values())


def test_to_json_round_trips_exactly(real_result: DetectionResult) -> None:
    text = real_result.to_json()
    data = json.loads(text)
    assert set(data) == {"source", "image_size", "scores", "labels", "boxes", "label_ids"}
    assert data["image_size"] == {"height": real_result.image_size[0], "width": real_result.image_size[1]}
    back = DetectionResult.from_json(text)
    assert back == real_result and back.image is None and back.source == real_result.source
    assert back.image_size == real_result.image_size


def test_pickle_keeps_everything(real_result: DetectionResult) -> None:
    back = pickle.loads(pickle.dumps(real_result))
    assert back == real_result and back.image_size == real_result.image_size
    np.testing.assert_array_equal(back.image, real_result.image)


def test_filter(hand_result: DetectionResult) -> None:
    assert hand_result.filter(min_score=0.7)["labels"] == ["person"]
    assert hand_result.filter(classes=["dog"])["labels"] == ["dog"]
    assert hand_result.filter(classes=[0])["labels"] == ["person"]


def test_to_supervision(real_result: DetectionResult) -> None:
    sv = pytest.importorskip("supervision")
    detections = real_result.to_supervision()
    assert isinstance(detections, sv.Detections) and len(detections) == real_result.num_detections
    np.testing.assert_array_equal(detections.xyxy, real_result["boxes"])
    np.testing.assert_array_equal(detections.confidence, real_result["scores"])
    np.testing.assert_array_equal(detections.class_id, real_result["label_ids"])
    assert list(detections.data["class_name"]) == real_result["labels"]


def test_to_supervision_without_the_package_says_how_to_install(real_result, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "supervision", None)  # makes `import supervision` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'damo_pipeline\[supervision\]'"):
        real_result.to_supervision()


def test_plot_draws_each_class_in_its_colour(hand_result: DetectionResult, photo_rgb: np.ndarray) -> None:
    before = photo_rgb.copy()
    canvas = hand_result.plot(line_width=3)
    assert canvas.shape == photo_rgb.shape and canvas.dtype == np.uint8
    np.testing.assert_array_equal(photo_rgb, before)  # drawn on a copy
    assert class_color(0) != class_color(16)
    # Left edges of the boxes (below any caption) carry the class colours.
    assert tuple(canvas[150, 40]) == class_color(0)
    assert tuple(canvas[150, 251]) == class_color(16)
    # The caption of the first box sits above it, filled with its colour, with text pixels of another colour.
    caption = canvas[30:58, 41:120].reshape(-1, 3)
    is_fill = (caption == class_color(0)).all(1)
    assert 0.3 < is_fill.mean() < 0.98
    np.testing.assert_array_equal(hand_result.plot(min_score=0.95), photo_rgb)


def test_plot_needs_an_image(hand_result: DetectionResult) -> None:
    bare = DetectionResult.from_json(hand_result.to_json())
    with pytest.raises(ValueError, match="no image to draw on"):
        bare.plot()
    assert bare.plot(image=hand_result.image).shape == hand_result.image.shape
    with pytest.raises(ValueError, match="uint8 RGB"):
        bare.plot(image=np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("name", ["out.jpg", "nested/dir/out.png"])
def test_save_image(hand_result: DetectionResult, tmp_path: Path, name: str) -> None:
    path = hand_result.save(tmp_path / name)
    written = cv2.imread(str(path))
    assert written.shape == hand_result.image.shape
    if path.suffix == ".png":
        np.testing.assert_array_equal(written[:, :, ::-1], hand_result.plot())
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files left


def test_save_json_and_bad_suffix(hand_result: DetectionResult, tmp_path: Path) -> None:
    path = hand_result.save(tmp_path / "out.json")
    assert DetectionResult.from_json(path.read_text()) == hand_result
    with pytest.raises(ValueError, match="use a .json file or an image suffix"):
        hand_result.save(tmp_path / "out.txt")


def test_empty_result(photo_rgb: np.ndarray) -> None:
    empty = DetectionResult(np.zeros(0), [], np.zeros((0, 4)), np.zeros(0), image_size=photo_rgb.shape[:2],
                            image=photo_rgb)
    assert empty.num_detections == 0 and empty.to_hf() == [] and empty["boxes"].shape == (0, 4)
    np.testing.assert_array_equal(empty.plot(), photo_rgb)
    assert DetectionResult.from_json(empty.to_json()) == empty


def test_inconsistent_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="one entry per detection"):
        DetectionResult(np.zeros(2), ["a"], np.zeros((2, 4)), np.zeros(2), image_size=(4, 4))
