"""ONNX export: checker, metadata, ONNX Runtime vs PyTorch for every size, in-graph NMS, the CLI."""
import copy

import numpy as np
import pytest
import torch

from damo_pipeline.export import export_onnx, read_metadata
from damo_pipeline.export.cli import main as export_main
from damo_pipeline.models import build_model, list_models
from damo_pipeline.ops.torch_nms import multiclass_nms

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is an optional extra (pip install damo_pipeline[onnx])")


@pytest.fixture(scope="module")
def photo_batch(data_dir):
    """Two real coco128 photos, stretched to 320x320 as the official preprocessing does."""
    import cv2
    from PIL import Image

    files = sorted((data_dir / "coco128" / "images").rglob("*.jpg"))[:2]
    images = [cv2.resize(np.asarray(Image.open(f).convert("RGB")), (320, 320), interpolation=cv2.INTER_LINEAR)
              for f in files]
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32))


def _reference(model, x):
    fused = copy.deepcopy(model).eval().fuse()
    with torch.no_grad():
        return fused(x)


@pytest.fixture(scope="module")
def photo_model(deterministic_model, detweights, photo_batch):
    """Parity weights with BatchNorm statistics calibrated on the photos (realistic activations)."""

    def make(name):
        return detweights.calibrate_bn(deterministic_model(name), photo_batch).eval()

    return make


@pytest.mark.parametrize("name", list_models())
def test_raw_export_matches_torch(name, tmp_path, photo_model, photo_batch):
    model = photo_model(name)
    path = export_onnx(model, tmp_path / f"{name}.onnx", img_size=320)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores, boxes = session.run(None, {"images": photo_batch.numpy()})
    ref_scores, ref_boxes = _reference(model, photo_batch)
    with torch.no_grad():
        unfused_scores, unfused_boxes = model(photo_batch)
    assert scores.shape == tuple(ref_scores.shape) and boxes.shape == tuple(ref_boxes.shape)
    # 1e-4, or twice the model's own float32 re-association noise (fused vs unfused torch) where that
    # is larger: with these random deep weights M and L amplify rounding to ~3e-4 (trained weights do not).
    score_tol = max(1e-4, 2 * float((ref_scores - unfused_scores).abs().max()))
    box_tol = max(0.05, 2 * float((ref_boxes - unfused_boxes).abs().max()))
    assert np.abs(scores - ref_scores.numpy()).max() < score_tol
    assert np.abs(boxes - ref_boxes.numpy()).max() < box_tol
    meta = read_metadata(path)
    assert meta["class_names"] == model.class_names and meta["img_size"] == 320 and meta["nms"] is False
    assert set(meta["outputs"]) == {"scores", "boxes"} and meta["resize"] == "stretch"


@pytest.mark.parametrize("name", ["damoyolo-ns", "damoyolo-t"])
def test_nms_export_matches_multiclass_nms(name, tmp_path, photo_model, photo_batch):
    model = photo_model(name)
    path = export_onnx(model, tmp_path / "nms.onnx", img_size=320, nms=True, max_detections=50)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    num, boxes, scores, classes = session.run(None, {"images": photo_batch.numpy()})
    assert num.shape == (2, 1) and boxes.shape == (2, 50, 4) and scores.shape == (2, 50) and classes.shape == (2, 50)
    ref_scores, ref_boxes = _reference(model, photo_batch)
    for i in range(2):
        b, s, c = multiclass_nms(ref_scores[i], ref_boxes[i], model.config.score_threshold,
                                 model.config.iou_threshold, 50)
        k = int(num[i, 0])
        assert k == len(s)
        np.testing.assert_allclose(scores[i, :k], s.numpy(), atol=1e-4)
        np.testing.assert_array_equal(classes[i, :k], c.numpy())
        np.testing.assert_allclose(boxes[i, :k], b.numpy(), atol=0.05)
        assert (classes[i, k:] == -1).all() and (scores[i, k:] == 0).all()
    meta = read_metadata(path)
    assert meta["nms"] is True and meta["max_detections"] == 50
    assert set(meta["outputs"]) == {"num_dets", "det_boxes", "det_scores", "det_classes"}


def test_fixed_batch_and_dynamic_batch(tmp_path):
    model = build_model("damoyolo-ns")
    fixed = export_onnx(model, tmp_path / "b1.onnx", img_size=128, batch=1)
    dyn = export_onnx(model, tmp_path / "dyn.onnx", img_size=128)
    x = np.zeros((3, 3, 128, 128), np.float32)
    assert ort.InferenceSession(str(dyn), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0].shape[0] == 3
    with pytest.raises(Exception):
        ort.InferenceSession(str(fixed), providers=["CPUExecutionProvider"]).run(None, {"images": x})


def test_bad_arguments(tmp_path):
    model = build_model("damoyolo-ns")
    with pytest.raises(ValueError, match="multiples of 32"):
        export_onnx(model, tmp_path / "x.onnx", img_size=100)
    with pytest.raises(ValueError, match="batch"):
        export_onnx(model, tmp_path / "x.onnx", batch=0)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "x.onnx", nms=True, opset=10)
    assert not (tmp_path / "x.onnx").exists()
    assert not list(tmp_path.glob("*.part"))


def test_cli_exports_a_checkpoint(tmp_path, capsys):
    model = build_model("damoyolo-ns")
    torch.save({"model": model.state_dict()}, tmp_path / "ns.pth")
    code = export_main([str(tmp_path / "ns.pth"), "--out", str(tmp_path / "ns.onnx"), "--img-size", "128", "--nms"])
    assert code == 0 and (tmp_path / "ns.onnx").is_file()
    assert '"architecture": "damoyolo-ns"' in capsys.readouterr().out
    assert export_main(["damoyolo-t", "--checkpoint", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "t.onnx")]) == 2
    assert "missing.pth" in capsys.readouterr().err
