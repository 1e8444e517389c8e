"""pipeline("image-object-detection", ...): construction, official parity, every input form, batches, options."""
from pathlib import Path
from types import ModuleType
from typing import Dict, List

import numpy as np
import pytest
import torch
from PIL import Image

from damo_pipeline.models import Detector, build_model
from damo_pipeline.ops import multiclass_nms
from damo_pipeline.ops.resize import letterbox_size
from damo_pipeline.pipelines import DetectionResult, ObjectDetectionPipeline, list_tasks, pipeline


def _size(photo: Path):
    with Image.open(photo) as image:
        return image.height, image.width


def _assert_same(a: DetectionResult, b: DetectionResult) -> None:
    assert a.num_detections == b.num_detections > 0
    assert a["labels"] == b["labels"]
    np.testing.assert_array_equal(a["label_ids"], b["label_ids"])
    np.testing.assert_array_equal(a["scores"], b["scores"])
    np.testing.assert_array_equal(a["boxes"], b["boxes"])


# -- construction ---------------------------------------------------------------------------------------------------
def test_tasks_and_alias(checkpoints: Dict[str, Path]) -> None:
    assert {"image-object-detection", "object-detection"} <= set(list_tasks(with_aliases=True))
    detector = pipeline("object-detection", model=checkpoints["pth"], device="cpu")
    assert isinstance(detector, ObjectDetectionPipeline) and detector.task == "image-object-detection"


def test_unknown_per_call_option_lists_the_known_ones(detector, coco_images: List[Path]) -> None:
    with pytest.raises(TypeError, match=r"Unknown option\(s\) \['threshold'\].*score_threshold"):
        detector(coco_images[0], threshold=0.5)


def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"Unknown task 'image-segmentation'.*image-object-detection"):
        pipeline("image-segmentation", model="damoyolo-t")


def test_model_forms_give_the_same_detections(checkpoints: Dict[str, Path], reference_model: Detector,
                                              detector: ObjectDetectionPipeline, coco_images: List[Path],
                                              small_options) -> None:
    image = coco_images[5]
    expected = detector(image)
    options = small_options
    for model, checkpoint in [(checkpoints["safetensors"], None), ("damoyolo-t", checkpoints["pth"]),
                              (reference_model, None), (build_model("damoyolo-t"), checkpoints["safetensors"])]:
        other = pipeline("image-object-detection", model=model, checkpoint=checkpoint, **options)
        _assert_same(other(image), expected)


def test_a_detector_instance_is_copied_not_fused_in_place(reference_model: Detector) -> None:
    before = {k: v.clone() for k, v in reference_model.state_dict().items()}
    detector = pipeline("image-object-detection", model=reference_model, device="cpu")
    assert detector.model is not reference_model and detector.model.is_fused
    assert not reference_model.is_fused
    assert all(torch.equal(v, reference_model.state_dict()[k]) for k, v in before.items())
    assert not any(p.requires_grad for p in detector.model.parameters())


def test_missing_weights_say_where_they_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        pipeline("image-object-detection", model="damoyolo-t", checkpoint=tmp_path / "nope.pth", device="cpu")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        pipeline("image-object-detection", model=str(tmp_path / "missing.safetensors"), device="cpu")
    with pytest.raises(TypeError, match="model must be"):
        pipeline("image-object-detection", model=42, device="cpu")


def test_hub_folder_round_trip(reference_model: Detector, detector: ObjectDetectionPipeline, tmp_path: Path,
                               coco_images: List[Path], small_options) -> None:
    hub = pytest.importorskip("damo_pipeline.hub")
    if not hasattr(hub, "save_pretrained"):
        pytest.skip("damo_pipeline.hub.save_pretrained is not available")
    folder = hub.save_pretrained(reference_model, tmp_path / "model", compute_profile=False)
    loaded = pipeline("image-object-detection", model=folder, **small_options)
    _assert_same(loaded(coco_images[5]), detector(coco_images[5]))


def test_defaults_come_from_the_model_config(checkpoints: Dict[str, Path]) -> None:
    detector = pipeline("image-object-detection", model=checkpoints["pth"], device="cpu")
    pre, _, post = detector._defaults
    assert pre["img_size"] == (640, 640) and pre["resize"] == "stretch" and pre["color_order"] == "bgr"
    assert post["score_threshold"] == 0.05 and post["iou_threshold"] == 0.7 and post["max_detections"] == 500
    assert detector.device == torch.device("cpu") and detector.batch_size == 1 and not detector.half
    nano = pipeline("image-object-detection", model=build_model("damoyolo-ns"), device="cpu")
    pre, _, post = nano._defaults
    assert pre["img_size"] == (416, 416) and post["iou_threshold"] == 0.65 and post["score_threshold"] == 0.03
    assert nano.to("cpu") is nano and nano.device == torch.device("cpu") and "damoyolo-ns" in repr(nano)


def test_legacy_checkpoints_default_to_the_letterbox_resize() -> None:
    legacy = pipeline("image-object-detection", model=build_model("damoyolo-t", head={"legacy": True}), device="cpu")
    assert legacy._defaults[0]["resize"] == "letterbox"
    assert len(legacy.class_names) == 80


def test_default_model_without_weights_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DAMO_PIPELINE_OFFLINE", "1")
    monkeypatch.setenv("DAMO_PIPELINE_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="No weights found for 'damoyolo-s'"):
        pipeline("image-object-detection", device="cpu")


@pytest.mark.parametrize("options, error, message", [
    ({"score_threshold": 1.5}, ValueError, "score_threshold must be a number in"),
    ({"iou_threshold": -0.1}, ValueError, "iou_threshold must be a number in"),
    ({"max_detections": 0}, ValueError, "max_detections must be a positive int"),
    ({"img_size": 100}, ValueError, "multiples of 32"),
    ({"resize": "crop"}, ValueError, "resize must be one of"),
    ({"color_order": "bgra"}, ValueError, "color_order must be one of"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
    ({"half": True}, ValueError, "CUDA devices only"),
    ({"device": "tpu"}, ValueError, "device must be"),
    ({"threshold": 0.5}, TypeError, "threshold"),
])
def test_bad_options_fail_at_construction_and_per_call(options, error, message, detector, coco_images) -> None:
    if not torch.cuda.is_available() or "half" not in options:
        with pytest.raises(error, match=message):
            detector(coco_images[0], **options)
    with pytest.raises(error, match=message):
        pipeline("image-object-detection", model=detector.model, **{"device": "cpu", **options})


def test_cuda_unavailable_is_a_clear_error(detector) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        detector("unused.jpg", device="cuda")


# -- official parity ------------------------------------------------------------------------------------------------
PARITY_PHOTOS = ("000000000009.jpg", "000000000042.jpg", "000000000086.jpg")  # the last is a grayscale (L) JPEG


@pytest.fixture(scope="module")
def native(checkpoints: Dict[str, Path]) -> ObjectDetectionPipeline:
    """Official settings (640, stretch, 0.05, 0.7, 500) and raw, unclipped boxes."""
    return pipeline("image-object-detection", model=checkpoints["pth"], device="cpu", clip_boxes=False)


def _photo(coco_images: List[Path], name: str) -> Path:
    return next(p for p in coco_images if p.name == name)


def test_file_preprocessing_is_the_official_demo_tensor(detector, detweights: ModuleType,
                                                        coco_images: List[Path]) -> None:
    photos = [_photo(coco_images, name) for name in PARITY_PHOTOS] + coco_images[20:23]
    for photo in photos:
        inputs = detector.preprocess(str(photo), img_size=(640, 640), resize="stretch")
        ours = torch.from_numpy(inputs["pixel_values"]).permute(0, 3, 1, 2).float()
        official = detweights.official_preprocess(str(photo), 640)
        assert ours.shape == official.shape == (1, 3, 640, 640)
        assert torch.equal(ours, official), photo.name
        assert inputs["original_size"] == _size(photo)


def _official_detections(model: Detector, x: torch.Tensor, size, score: float, iou: float):
    """The official demo flow: model(x) -> multiclass_nms -> per-axis rescale, no clipping."""
    with torch.inference_mode():
        scores, boxes = model(x)
    boxes, scores, labels = multiclass_nms(scores[0], boxes[0], score, iou, 500)
    height, width = size
    return boxes * torch.tensor([width / 640, height / 640, width / 640, height / 640]), scores, labels


@pytest.mark.parametrize("name", PARITY_PHOTOS)
def test_detections_equal_the_official_flow(name: str, native, reference_model, detweights,
                                            coco_images: List[Path]) -> None:
    photo = _photo(coco_images, name)
    result = native(str(photo))
    size = result.image_size
    assert result.num_detections > 0 and size == _size(photo)
    x = detweights.official_preprocess(str(photo), 640)
    # Same fused network: the whole flow must agree bit for bit.
    boxes, scores, labels = _official_detections(native.model, x, size, 0.05, 0.7)
    np.testing.assert_array_equal(result["scores"], scores.numpy())
    np.testing.assert_array_equal(result["label_ids"], labels.numpy())
    np.testing.assert_allclose(result["boxes"], boxes.numpy(), rtol=0, atol=1e-4)
    # The unfused official form: equal up to float re-association (~2e-5 on scores). Two boxes of one class whose
    # scores tie within that noise may trade places in the greedy NMS, so allow a few such swaps, no more.
    boxes, scores, labels = _official_detections(reference_model, x, size, 0.05, 0.7)
    assert len(scores) == result.num_detections
    ours = np.concatenate([result["boxes"], result["scores"][:, None] * 1e3, result["label_ids"][:, None] * 1e4], 1)
    theirs = np.concatenate([boxes.numpy(), scores.numpy()[:, None] * 1e3, labels.numpy()[:, None] * 1e4], 1)
    distance = np.abs(ours[:, None, :] - theirs[None, :, :]).max(-1)
    unmatched = np.flatnonzero(distance.min(1) > 0.1)
    assert len(unmatched) <= max(2, result.num_detections // 100)
    for row in unmatched:  # a tie: the official list has a same-class box with the same score
        tie = (labels.numpy() == result["label_ids"][row]) & (np.abs(scores.numpy() - result["scores"][row]) < 1e-4)
        assert tie.any()


def test_clipping_is_the_only_difference_from_the_raw_official_boxes(checkpoints, coco_images,
                                                                     small_options) -> None:
    native = pipeline("image-object-detection", model=checkpoints["pth"], **{**small_options, "score_threshold": 0.05})
    raw, clipped = native(coco_images[5], clip_boxes=False), native(coco_images[5])
    height, width = raw.image_size
    expected = raw["boxes"].copy()
    expected[:, 0::2] = expected[:, 0::2].clip(0, width)
    expected[:, 1::2] = expected[:, 1::2].clip(0, height)
    assert (raw["boxes"] != expected).any(), "no box crosses the border; pick another photo"
    np.testing.assert_array_equal(clipped["boxes"], expected)


# -- input forms and batches ----------------------------------------------------------------------------------------
def test_every_input_form_gives_the_file_result(detector, coco_images: List[Path], image_server) -> None:
    photo = coco_images[1]  # the photo the HTTP server serves
    expected = detector(str(photo))
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    forms = [
        (photo, {}), (photo.read_bytes(), {}), (Image.open(photo), {}),
        (np.ascontiguousarray(rgb[:, :, ::-1]), {}), (rgb, {"color_order": "rgb"}),
        (torch.from_numpy(rgb.copy()).permute(2, 0, 1), {}),
        (torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255, {}),
        (image_server.url("/photo.jpg"), {}),
    ]
    for image, options in forms:
        result = detector(image, **options)
        _assert_same(result, expected)
        assert result.image_size == expected.image_size


def test_grayscale_forms_agree(detector, coco_images: List[Path]) -> None:
    gray_photo = next(p for p in coco_images if p.name == "000000000086.jpg")
    expected = detector(gray_photo)
    gray = np.asarray(Image.open(gray_photo))
    assert gray.ndim == 2
    _assert_same(detector(gray), expected)
    _assert_same(detector(torch.from_numpy(gray.copy())), expected)


def test_batches_equal_single_calls(detector, coco_images: List[Path]) -> None:
    photos = coco_images[:4]
    singles = [detector(p) for p in photos]
    for batch_size in (3, 4):
        batched = detector(photos, batch_size=batch_size)
        assert isinstance(batched, list) and len(batched) == 4
        for one, many in zip(singles, batched):
            np.testing.assert_array_equal(one["label_ids"], many["label_ids"])
            np.testing.assert_allclose(one["scores"], many["scores"], rtol=0, atol=1e-5)
            np.testing.assert_allclose(one["boxes"], many["boxes"], rtol=0, atol=1e-3)
    assert detector(tuple(photos[:2]))[1]["labels"] == singles[1]["labels"]
    assert detector([]) == []


def test_a_bad_item_in_a_batch_names_it(detector, coco_images: List[Path], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gone.jpg"):
        detector([coco_images[0], tmp_path / "gone.jpg"], batch_size=2)


# -- per-call options -----------------------------------------------------------------------------------------------
def test_per_call_options_override_and_do_not_stick(detector, coco_images: List[Path]) -> None:
    photo = coco_images[5]
    base = detector(photo)
    strict = detector(photo, score_threshold=0.5)
    assert 0 < strict.num_detections < base.num_detections and strict["scores"].min() > 0.5
    assert detector(photo, max_detections=3).num_detections == 3
    top = base["labels"][0]
    only = detector(photo, classes=[top])
    assert set(only["labels"]) == {top}
    np.testing.assert_array_equal(only["scores"], base["scores"][np.asarray(base["labels"]) == top])
    assert detector(photo, iou_threshold=0.3).num_detections < base.num_detections
    _assert_same(detector(photo), base)  # nothing stuck


def test_img_size_and_letterbox_change_the_input(detector, coco_images: List[Path]) -> None:
    photo = coco_images[5]
    inputs = detector.preprocess(photo, img_size=(320, 320), resize="letterbox")
    assert inputs["pixel_values"].shape == (1, 320, 320, 3)
    height, width = inputs["original_size"]
    assert inputs["resized_size"] == letterbox_size(height, width, 320, 320) != (320, 320)
    result = detector(photo, img_size=320, resize="letterbox")
    assert result.image_size == (height, width)
    assert (result["boxes"][:, 2] <= width).all() and (result["boxes"][:, 3] <= height).all()


def test_construction_options_are_the_defaults(checkpoints: Dict[str, Path], coco_images: List[Path],
                                               small_options) -> None:
    named = pipeline("image-object-detection", model=checkpoints["pth"], **{**small_options, "score_threshold": 0.4},
                     classes=["frisbee", "skis"], max_detections=4, keep_image=False)
    result = named(coco_images[5])
    assert result.num_detections <= 4 and set(result["labels"]) <= {"frisbee", "skis"}
    assert result["scores"].min() > 0.4 and result.image is None


def test_inference_runs_without_autograd(detector, coco_images: List[Path]) -> None:
    result = detector(coco_images[0])
    assert isinstance(result["scores"], np.ndarray) and result["scores"].dtype == np.float32
    assert result["boxes"].dtype == np.float32 and result["label_ids"].dtype == np.int64
    assert np.all(np.diff(result["scores"]) <= 0)
