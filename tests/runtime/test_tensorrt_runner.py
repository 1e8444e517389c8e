"""TensorRTRunner: the clear "cannot run here" path (everywhere), its pure decisions (everywhere), and on a GPU
with TensorRT: fp16 engine outputs against ONNX Runtime fp32, batches 1 and 3, and the engine cache."""
import sys

import numpy as np
import pytest
import torch

from damo_pipeline.export import export_onnx
from damo_pipeline.models import build_model
from damo_pipeline.runtime.tensorrt_runner import (EngineKey, TensorRTRunner, _inspect_graph, _plan_build,
                                                   fp16_needs_half_graph, gpu_has_fast_fp16, tensorrt_status)

pytest.importorskip("onnx", reason="exporting graphs needs onnx (pip install damo_pipeline[onnx])")

# --------------------------------------------------------------------------------------------- CPU (everywhere)


@pytest.fixture(scope="module")
def tiny_graphs(tmp_path_factory):
    """damoyolo-ns at 128x128 with random weights: float32 (dynamic batch), float16, and an nms=True graph."""
    torch.manual_seed(0)
    model = build_model("damoyolo-ns").eval()
    root = tmp_path_factory.mktemp("trt_graphs")
    return {"float32": export_onnx(model, root / "ns_fp32.onnx", img_size=128),
            "float16": export_onnx(model, root / "ns_fp16.onnx", img_size=128, batch=2, half=True),
            "nms": export_onnx(model, root / "ns_nms.onnx", img_size=128, nms=True)}


@pytest.fixture
def no_tensorrt(monkeypatch):
    """Make ``import tensorrt`` fail as it does where the package is not installed."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def test_status_gives_a_one_line_reason_here():
    reason = tensorrt_status()
    try:
        import tensorrt  # noqa: F401
        has_tensorrt = True
    except (ImportError, OSError):
        has_tensorrt = False
    if has_tensorrt and torch.cuda.is_available():
        pytest.skip("TensorRT and a CUDA GPU are present: the absent path does not apply")
    assert isinstance(reason, str) and reason and "\n" not in reason
    if not has_tensorrt:
        assert "pip install tensorrt" in reason
    if torch.version.cuda is None:
        assert "CPU-only" in reason
    elif not torch.cuda.is_available():
        assert "no CUDA GPU" in reason


def test_status_names_missing_tensorrt_and_how_to_install_it(no_tensorrt):
    reason = tensorrt_status()
    assert reason is not None and "tensorrt package is not installed" in reason and "pip install tensorrt" in reason
    with pytest.raises(ImportError, match="pip install tensorrt"):
        fp16_needs_half_graph()


def test_constructing_without_tensorrt_raises_runtime_error_with_the_reason(tiny_graphs, no_tensorrt, tmp_path):
    with pytest.raises(RuntimeError, match="TensorRT cannot run here: .*pip install tensorrt") as info:
        TensorRTRunner(tiny_graphs["float32"], cache_dir=tmp_path)
    assert tensorrt_status() in str(info.value)
    assert not any(tmp_path.iterdir()), "nothing may be written to the cache when TensorRT cannot run"


def test_graph_inspection_reads_dtype_batch_and_size(tiny_graphs):
    fp32 = _inspect_graph(tiny_graphs["float32"])
    assert fp32.input_dtype == np.float32 and fp32.fixed_batch is None and fp32.input_size == (128, 128)
    assert fp32.metadata["architecture"] == "damoyolo-ns"
    fp16 = _inspect_graph(tiny_graphs["float16"])
    assert fp16.input_dtype == np.float16 and fp16.fixed_batch == 2


def test_bad_graphs_and_arguments_are_rejected_before_tensorrt(tiny_graphs, tmp_path):
    with pytest.raises(ValueError, match="nms=True.*export it with nms=False"):
        TensorRTRunner(tiny_graphs["nms"], cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TensorRTRunner(tmp_path / "missing.onnx", cache_dir=tmp_path)
    not_onnx = tmp_path / "not.onnx"
    not_onnx.write_bytes(b"\x00\x01 definitely not protobuf")
    with pytest.raises(ValueError, match="not.onnx"):
        TensorRTRunner(not_onnx, cache_dir=tmp_path)
    for kwargs, message in (({"max_batch": 0}, "max_batch must be an int >= 1"),
                            ({"max_batch": 2, "opt_batch": 4}, "opt_batch .4. must not exceed max_batch .2."),
                            ({"fp16": "yes"}, "fp16 must be True or False"),
                            ({"device": -1}, "device must be an int >= 0")):
        with pytest.raises(ValueError, match=message):
            TensorRTRunner(tiny_graphs["float32"], cache_dir=tmp_path, **kwargs)


@pytest.mark.parametrize("graph_is_half, fp16, has_flag, fast, expected", [
    (False, True, True, True, ("fp16", False, True)),     # TensorRT 10, float32 graph: BuilderFlag.FP16
    (False, True, True, False, ("fp32", False, False)),   # no fast fp16 on this GPU: fp32, with a warning
    (False, False, True, True, ("fp32", False, False)),
    (False, False, False, True, ("fp32", True, False)),   # TensorRT 11: always strongly typed
    (True, True, True, True, ("fp16", True, False)),      # float16 graph: strongly typed on 10 and 11
    (True, True, False, True, ("fp16", True, False)),
])
def test_build_plan(graph_is_half, fp16, has_flag, fast, expected, tmp_path):
    plan = _plan_build(graph_is_half, fp16, has_flag, fast, "x", tmp_path / "g.onnx")
    assert (plan.precision, plan.strongly_typed, plan.fp16_flag) == expected


def test_build_plan_errors_say_what_to_do(tmp_path):
    with pytest.raises(RuntimeError, match=r"strongly typed.*export_onnx\(model, path, half=True\).*fp16=False"):
        _plan_build(False, True, False, True, "11.4.0", tmp_path / "g.onnx")
    with pytest.raises(ValueError, match="float16 graph.*fp16=False"):
        _plan_build(True, False, True, True, "10.13.0", tmp_path / "g.onnx")


@pytest.mark.parametrize("capability, fast", [((7, 5), True), ((9, 0), True), ((6, 0), True), ((5, 3), True),
                                              ((6, 1), False), ((5, 2), False)])
def test_fast_fp16_by_compute_capability(capability, fast):
    assert gpu_has_fast_fp16(capability) is fast


def test_engine_cache_name_changes_with_everything_the_engine_depends_on():
    base = dict(onnx_sha256="a" * 64, tensorrt_version="10.13.0", gpu_name="Tesla T4", compute_capability=(7, 5),
                precision="fp16", strongly_typed=False, max_batch=8, opt_batch=1, workspace_mib=2048)
    name = EngineKey(**base).file_name("damoyolo-t-640x640")
    assert name == EngineKey(**base).file_name("damoyolo-t-640x640")
    assert name.startswith("damoyolo-t-640x640-fp16-b8-") and name.endswith(".engine")
    changes = dict(onnx_sha256="b" * 64, tensorrt_version="11.4.0", gpu_name="NVIDIA H100", compute_capability=(9, 0),
                   precision="fp32", strongly_typed=True, max_batch=4, opt_batch=2, workspace_mib=1024)
    names = {EngineKey(**{**base, field: value}).file_name("damoyolo-t-640x640") for field, value in changes.items()}
    assert name not in names and len(names) == len(changes)
    assert "/" not in EngineKey(**base).file_name("a/b c")


# ------------------------------------------------------------------------------------- GPU + TensorRT only
# fp16 against fp32: fp16 keeps 11 significant bits (relative rounding 4.9e-4 per stored value) and the error
# compounds over ~60 layers to about 1e-3 relative. Scores are sigmoid probabilities: 0.02 absolute leaves a
# wide margin. Box sides are DFL expectations over 17 bins times the stride (up to 32 px), so a 0.1-bin logit
# error moves a side by ~3 px at stride 32: we bound the median, the 99th percentile and the maximum instead of
# every element. Reference point, measured on the CPU with this model and input (ONNX Runtime, float16 graph
# vs float32 graph, 320x320): scores max 0.0025; boxes median 0.05 px, p99 1.5 px, max 4.2 px. The bounds are
# about 4x those, for TensorRT's own fp16 kernels (fused layers, fp16 accumulation where it is faster).
SCORE_ATOL = 0.02
BOX_MEDIAN_PX, BOX_P99_PX, BOX_MAX_PX = 0.5, 6.0, 16.0
GPU_IMG_SIZE = 320


def _scenes(n, size, seed=0):
    """Deterministic synthetic photos (smooth colour waves and flat rectangles), RGB 0..255, [n, 3, size, size]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        for c in range(3):
            phase = rng.uniform(0.5, 2) * xx + rng.uniform(0.5, 2) * yy + rng.uniform()
            out[i, c] = 255 * (0.5 + 0.5 * np.sin(2 * np.pi * phase))
        for _ in range(6):
            x0, y0 = rng.uniform(0, 0.8, 2)
            w, h = rng.uniform(0.1, 0.4, 2)
            inside = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
            out[i][:, inside] = rng.uniform(0, 255, (3, 1))
    return out


def _calibrated_tiny(images):
    """damoyolo-t with random weights and BatchNorm statistics taken from ``images`` (realistic activations)."""
    torch.manual_seed(0)
    model = build_model("damoyolo-t")
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batch
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(images))
    return model.eval()


def _assert_fp16_close(reference, got):
    ref_scores, ref_boxes = reference
    scores, boxes = got
    assert scores.dtype == np.float32 and boxes.dtype == np.float32
    assert scores.shape == ref_scores.shape and boxes.shape == ref_boxes.shape
    assert np.abs(scores - ref_scores).max() <= SCORE_ATOL
    box_error = np.abs(boxes - ref_boxes)
    assert np.median(box_error) <= BOX_MEDIAN_PX
    assert np.quantile(box_error, 0.99) <= BOX_P99_PX
    assert box_error.max() <= BOX_MAX_PX


@pytest.fixture(scope="module")
def gpu_setup(tmp_path_factory):
    """Skips (with the reason) unless TensorRT can run; else graphs of a calibrated damoyolo-t, inputs and the
    ONNX Runtime fp32 reference."""
    reason = tensorrt_status()
    if reason is not None:
        pytest.skip(f"TensorRT cannot run here: {reason}")
    ort = pytest.importorskip("onnxruntime", reason="the fp32 reference runs with onnxruntime")
    images = _scenes(4, GPU_IMG_SIZE)
    model = _calibrated_tiny(images)
    root = tmp_path_factory.mktemp("trt_gpu")
    graphs = {"float32": export_onnx(model, root / "t_fp32.onnx", img_size=GPU_IMG_SIZE),
              "float16": export_onnx(model, root / "t_fp16.onnx", img_size=GPU_IMG_SIZE, half=True)}
    session = ort.InferenceSession(str(graphs["float32"]), providers=["CPUExecutionProvider"])
    batch3 = images[1:4]
    reference = {1: session.run(None, {"images": images[:1]}), 3: session.run(None, {"images": batch3})}
    return {"graphs": graphs, "inputs": {1: images[:1], 3: batch3}, "reference": reference,
            "cache": root / "engines"}


@pytest.mark.gpu
@pytest.mark.parametrize("graph_kind", ["float16", "float32"])
def test_fp16_engine_matches_onnxruntime_fp32_and_is_cached(gpu_setup, graph_kind):
    path = gpu_setup["graphs"][graph_kind]
    cache = gpu_setup["cache"] / graph_kind
    if graph_kind == "float32" and fp16_needs_half_graph():
        with pytest.raises(RuntimeError, match="half=True"):
            TensorRTRunner(path, fp16=True, max_batch=2, cache_dir=cache)
        return
    # max_batch=2: batch 1 runs in one call, batch 3 in chunks of 2 and 1.
    runner = TensorRTRunner(path, fp16=True, max_batch=2, cache_dir=cache)
    assert runner.name == "tensorrt" and runner.input_size == (GPU_IMG_SIZE, GPU_IMG_SIZE)
    assert runner.metadata["architecture"] == "damoyolo-t"
    assert runner.precision == "fp16" and not runner.loaded_from_cache and runner.build_seconds > 0
    assert runner.engine_path.is_file() and runner.engine_path.parent == cache
    outputs = {}
    for batch in (1, 3):
        outputs[batch] = runner(gpu_setup["inputs"][batch])
        _assert_fp16_close(gpu_setup["reference"][batch], outputs[batch])

    stamp = runner.engine_path.stat().st_mtime_ns
    again = TensorRTRunner(path, fp16=True, max_batch=2, cache_dir=cache)
    assert again.loaded_from_cache and again.build_seconds is None
    assert again.engine_path == runner.engine_path and again.engine_path.stat().st_mtime_ns == stamp
    assert [p.name for p in cache.glob("*.engine")] == [runner.engine_path.name]
    for batch in (1, 3):
        scores, boxes = again(gpu_setup["inputs"][batch])
        np.testing.assert_allclose(scores, outputs[batch][0], atol=1e-3)
        np.testing.assert_allclose(boxes, outputs[batch][1], atol=0.05)


@pytest.mark.gpu
def test_run_torch_keeps_outputs_on_the_gpu(gpu_setup):
    path = gpu_setup["graphs"]["float16"]
    runner = TensorRTRunner(path, fp16=True, max_batch=2, cache_dir=gpu_setup["cache"] / "float16")
    images = torch.from_numpy(gpu_setup["inputs"][3]).cuda()
    scores, boxes = runner.run_torch(images)
    assert scores.is_cuda and boxes.is_cuda and scores.shape[0] == boxes.shape[0] == 3
    _assert_fp16_close(gpu_setup["reference"][3], (scores.float().cpu().numpy(), boxes.float().cpu().numpy()))
    with pytest.raises(ValueError, match="move them"):
        runner.run_torch(images.cpu())
    with pytest.raises(ValueError, match=f"3, {GPU_IMG_SIZE}, {GPU_IMG_SIZE}"):
        runner.run_torch(images[:, :, :64])
