"""The exported-graph engines: ONNX Runtime results equal the torch engine's, the export cache, and no torch.

Real components throughout: the deterministic T weights written as a real checkpoint, graphs exported by our own
code, real coco128 photos, ONNX Runtime sessions, and a separate Python process for the torch-free check.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch

from damo_pipeline.export import cached_onnx_export, export_onnx, onnx_cache_key
from damo_pipeline.models import Detector
from damo_pipeline.pipelines import GraphObjectDetectionPipeline, ObjectDetectionPipeline, pipeline

pytest.importorskip("onnxruntime")

SIZE = 256
OPTIONS = {"img_size": SIZE, "score_threshold": 0.3}


@pytest.fixture(scope="module")
def photos(coco_images: List[Path]) -> List[Path]:
    return [coco_images[i] for i in (0, 3, 7, 11, 20, 42)]


@pytest.fixture(scope="module")
def torch_detector(checkpoints: Dict[str, Path]) -> ObjectDetectionPipeline:
    return pipeline("image-object-detection", model=checkpoints["pth"], device="cpu", **OPTIONS)


@pytest.fixture(scope="module")
def ort_detector(checkpoints: Dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                 ) -> GraphObjectDetectionPipeline:
    cache = tmp_path_factory.mktemp("graph_cache")
    return pipeline("image-object-detection", model=checkpoints["pth"], engine="onnxruntime", cache_dir=cache,
                    **OPTIONS)


@pytest.fixture(scope="module")
def graph_file(reference_model: Detector, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(reference_model, tmp_path_factory.mktemp("graphs") / "t256.onnx", img_size=SIZE)


def assert_same_detections(ours, reference, score_tol: float = 1e-4, box_tol: float = 0.05) -> None:
    assert len(ours["scores"]) == len(reference["scores"]) > 0
    assert ours["labels"] == reference["labels"]
    np.testing.assert_allclose(ours["scores"], reference["scores"], atol=score_tol)
    np.testing.assert_allclose(ours["boxes"], reference["boxes"], atol=box_tol)


def test_onnxruntime_engine_equals_torch_engine_on_photos(torch_detector, ort_detector, photos) -> None:
    assert isinstance(ort_detector, GraphObjectDetectionPipeline) and ort_detector.engine == "onnxruntime"
    for photo in photos:
        assert_same_detections(ort_detector(str(photo)), torch_detector(str(photo)))
    # batches, per-call options and the class filter go through the same stages
    batch = ort_detector([str(p) for p in photos], batch_size=4, score_threshold=0.5, max_detections=3)
    for photo, result in zip(photos, batch):
        assert_same_detections(result, torch_detector(str(photo), score_threshold=0.5, max_detections=3))
    label = torch_detector(str(photos[0]))["labels"][0]
    filtered = ort_detector(str(photos[0]), classes=[label])
    assert set(filtered["labels"]) == {label}
    assert_same_detections(filtered, torch_detector(str(photos[0]), classes=[label]))


def test_onnx_file_as_model_defaults_to_onnxruntime(graph_file, torch_detector, photos) -> None:
    detector = pipeline("image-object-detection", model=str(graph_file), score_threshold=0.3)
    assert isinstance(detector, GraphObjectDetectionPipeline)
    assert detector.runner.input_size == (SIZE, SIZE)
    assert len(detector.class_names) == 80 and detector.class_names[0] == "person"
    for photo in photos[:3]:
        assert_same_detections(detector(str(photo)), torch_detector(str(photo)))
    with pytest.raises(ValueError, match="fixed input size"):
        detector(str(photos[0]), img_size=320)
    with pytest.raises(ValueError, match="fixed input size"):
        pipeline("image-object-detection", model=graph_file, img_size=320)
    with pytest.raises(ValueError, match="do not apply to a .onnx model"):
        pipeline("image-object-detection", model=graph_file, checkpoint="x.pth")


def test_model_exported_on_demand_at_other_sizes(ort_detector, torch_detector, photos) -> None:
    result = ort_detector(str(photos[1]), img_size=320)
    assert_same_detections(result, torch_detector(str(photos[1]), img_size=320))
    assert (320, 320) in ort_detector._runners


def test_fixed_batch_graph_runs_any_batch(reference_model, tmp_path, photos, torch_detector) -> None:
    path = export_onnx(reference_model, tmp_path / "b2.onnx", img_size=SIZE, batch=2)
    detector = pipeline("image-object-detection", model=path, score_threshold=0.3, batch_size=3)
    results = detector([str(p) for p in photos[:5]])  # batches of 3 and 2 on a batch-2 graph
    for photo, result in zip(photos, results):
        assert_same_detections(result, torch_detector(str(photo)))


def test_cache_key_follows_weights_size_and_options(reference_model, tmp_path) -> None:
    key = onnx_cache_key(reference_model, SIZE)
    assert key == onnx_cache_key(reference_model, (SIZE, SIZE))
    assert key != onnx_cache_key(reference_model, 320)
    assert key != onnx_cache_key(reference_model, SIZE, opset=13)
    changed = type(reference_model)(reference_model.config)
    changed.load_state_dict(reference_model.state_dict())
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-3
    assert key != onnx_cache_key(changed, SIZE)

    first = cached_onnx_export(reference_model, SIZE, cache_dir=tmp_path)
    stamp = first.stat().st_mtime_ns
    second = cached_onnx_export(reference_model, SIZE, cache_dir=tmp_path)
    assert second == first and second.stat().st_mtime_ns == stamp  # reused, not exported again
    assert first.parent == tmp_path / "onnx" and key[:16] in first.name
    assert cached_onnx_export(changed, SIZE, cache_dir=tmp_path) != first
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 2


def test_engine_errors(graph_file, reference_model, tmp_path) -> None:
    with pytest.raises(ValueError, match="no engine 'tflite'.*onnxruntime"):
        pipeline("image-object-detection", model=graph_file, engine="tflite")
    with pytest.raises(ValueError, match="half=True is a TensorRT option"):
        pipeline("image-object-detection", model=graph_file, half=True)
    with pytest.raises(ValueError, match="runs on the CPU"):
        pipeline("image-object-detection", model=graph_file, device="cuda")
    nms_graph = export_onnx(reference_model, tmp_path / "nms.onnx", img_size=SIZE, nms=True)
    with pytest.raises(ValueError, match="nms=True"):
        pipeline("image-object-detection", model=nms_graph)
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        pipeline("image-object-detection", model=tmp_path / "missing.onnx")


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def test_onnxruntime_engine_never_imports_torch(graph_file, torch_detector, photos) -> None:
    done = _run_python(f"""
        import json, sys
        from damo_pipeline import pipeline
        detector = pipeline("image-object-detection", model={str(graph_file)!r}, score_threshold=0.3)
        result = detector({str(photos[0])!r})
        print(json.dumps({{"torch": "torch" in sys.modules, "result": result.to_dict()}}))
    """)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] is False
    reference = torch_detector(str(photos[0]))
    assert report["result"]["labels"] == reference["labels"]
    np.testing.assert_allclose(report["result"]["scores"], reference["scores"], atol=1e-4)


def test_missing_onnxruntime_says_how_to_install(graph_file) -> None:
    done = _run_python(f"""
        import sys
        sys.modules["onnxruntime"] = None  # what Python does for a package that is not installed
        from damo_pipeline import pipeline
        pipeline("image-object-detection", model={str(graph_file)!r})
    """)
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "pip install 'damo_pipeline[onnx]'" in done.stderr


def test_tensorrt_engine_says_why_it_cannot_run_here(graph_file) -> None:
    from damo_pipeline.runtime import tensorrt_status

    reason = tensorrt_status()
    if reason is None:
        pytest.skip("TensorRT can run here; the GPU tests cover it")
    with pytest.raises(RuntimeError, match="TensorRT cannot run here"):
        pipeline("image-object-detection", model=graph_file, engine="tensorrt", half=False)


def test_channels_last_is_the_cpu_default_and_changes_nothing(checkpoints, torch_detector, photos) -> None:
    assert torch_detector.memory_format(torch.device("cpu")) == torch.channels_last
    assert next(torch_detector.model.parameters()).is_contiguous(memory_format=torch.channels_last) or any(
        p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
        for p in torch_detector.model.parameters())
    nchw = pipeline("image-object-detection", model=checkpoints["pth"], device="cpu", channels_last=False, **OPTIONS)
    assert nchw.memory_format(torch.device("cpu")) == torch.contiguous_format
    for photo in photos[:3]:
        assert_same_detections(torch_detector(str(photo)), nchw(str(photo)))


def test_int8_engine_quantises_once_on_real_photos(checkpoints, coco_images, photos, tmp_path) -> None:
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for photo in coco_images[60:64]:  # never the photos checked below
        (calibration / photo.name).write_bytes(photo.read_bytes())
    options = dict(model=checkpoints["pth"], engine="onnxruntime", int8=True, calibration=calibration,
                   cache_dir=tmp_path / "cache", **OPTIONS)
    int8 = pipeline("image-object-detection", **options)
    graphs = sorted((tmp_path / "cache" / "onnx").glob("*-int8-*.onnx"))
    assert len(graphs) == 1 and "int8" in repr(int8)
    assert int8.runner.metadata["quantization"]["format"]
    stamp = graphs[0].stat().st_mtime_ns
    again = pipeline("image-object-detection", **options)
    assert again.runner.path == graphs[0] and graphs[0].stat().st_mtime_ns == stamp  # cached, not re-quantised
    fp32 = pipeline("image-object-detection", model=checkpoints["pth"], engine="onnxruntime",
                    cache_dir=tmp_path / "cache", **OPTIONS)
    pixels = np.stack([int8.preprocess(str(p), img_size=(SIZE, SIZE))["pixel_values"][0] for p in photos[:2]])
    images = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32)
    scores8, _ = int8.runner(images)
    scores32, _ = fp32.runner(images)
    assert np.corrcoef(scores8.ravel(), scores32.ravel())[0, 1] > 0.85  # parity weights: measured 0.93
    assert int8(str(photos[0])).num_detections > 0
    with pytest.raises(ValueError, match="needs calibration"):
        pipeline("image-object-detection", model=checkpoints["pth"], engine="onnxruntime", int8=True)
    with pytest.raises(ValueError, match="ONNX Runtime"):
        pipeline("image-object-detection", model=checkpoints["pth"], engine="tensorrt", int8=True,
                 calibration=calibration)
