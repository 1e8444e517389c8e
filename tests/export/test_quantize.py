"""int8 quantisation: real exported graphs calibrated on real coco128 photos, run in ONNX Runtime."""
import json
import sys

import numpy as np
import onnx
import pytest
import torch

from damo_pipeline.export import export_onnx, read_metadata
from damo_pipeline.export.cli import main as export_main
from damo_pipeline.export.quantize import (ImageCalibrationReader, find_calibration_images, float_tail_nodes,
                                           quantize_onnx)
from damo_pipeline.models import build_model

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is an optional extra (pip install damo_pipeline[onnx])")

IMG_SIZE = 320
CALIBRATION_IMAGES = 4



def _photos(files, size=IMG_SIZE):
    reader = ImageCalibrationReader(files, (size, size), progress=False)
    return np.stack([reader.preprocess(f) for f in files])


@pytest.fixture(scope="module")
def photo_model(detweights, coco_images):
    """DAMO-YOLO-T with the parity weights, BatchNorm statistics set on two real photos (realistic activations)."""
    model = build_model("damoyolo-t")
    model.load_state_dict(detweights.det_state_dict(model.state_dict()), strict=True)
    return detweights.calibrate_bn(model, torch.from_numpy(_photos(coco_images[-2:]))).eval()


@pytest.fixture(scope="module")
def graphs(photo_model, coco_images, tmp_path_factory):
    """(float32 graph, int8 graph calibrated on the first coco128 photos)."""
    folder = tmp_path_factory.mktemp("int8")
    fp32 = export_onnx(photo_model, folder / "t.onnx", img_size=IMG_SIZE)
    int8 = quantize_onnx(fp32, folder / "t-int8.onnx", coco_images[:CALIBRATION_IMAGES], progress=False)
    return fp32, int8


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_int8_graph_is_quantised_and_loads(graphs):
    fp32, int8 = graphs
    model = onnx.load(str(int8))
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    int8_weights = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    dequantized_weights = [n for n in model.graph.node
                           if n.op_type == "DequantizeLinear" and n.input[0] in int8_weights]
    assert len(dequantized_weights) == ops.count("Conv") > 0  # every convolution runs on int8 weights
    # the float tail (score sigmoid, DFL softmax/integral, box decode) is not quantised
    producers = {out: n for n in model.graph.node for out in n.output}
    quantized = [producers[n.input[0]] for n in model.graph.node if n.op_type == "QuantizeLinear"
                 and n.input[0] in producers]
    tail_ops = {"Sigmoid", "Softmax", "MatMul", "Sub", "Mul", "Add", "Concat"}
    assert not [n.name for n in quantized if n.name.startswith("/head/") and n.op_type in tail_ops]
    assert {n.op_type for n in model.graph.node if n.name.startswith("/head/")} >= {"Sigmoid", "Softmax", "MatMul"}
    session, reference = _session(int8), _session(fp32)
    assert [(o.name, o.type) for o in session.get_outputs()] == [(o.name, o.type) for o in reference.get_outputs()]
    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == \
        [(i.name, i.type, i.shape) for i in reference.get_inputs()]


def test_float_tail_is_after_the_last_convolutions(graphs):
    model = onnx.load(str(graphs[0]))
    tail = set(float_tail_nodes(model))
    ops = {n.name: n.op_type for n in model.graph.node}
    assert {"Sigmoid", "Softmax", "MatMul"} <= {ops[name] for name in tail}
    assert not any(ops[name] == "Conv" for name in tail)
    outputs = {o.name for o in model.graph.output}
    assert all(n.name in tail for n in model.graph.node if set(n.output) & outputs)


def test_int8_keeps_metadata_and_records_settings(graphs):
    fp32, int8 = graphs
    source, meta = read_metadata(fp32), read_metadata(int8)
    settings = meta.pop("quantization")
    assert meta == source
    assert settings["format"] == "qdq" and settings["method"] == "minmax" and settings["per_channel"] is True
    assert settings["activation_type"] == "uint8" and settings["weight_type"] == "int8"
    assert settings["calibration_images"] == CALIBRATION_IMAGES and settings["float_tail"] is True
    assert settings["num_float_nodes"] > 0 and settings["onnxruntime_version"] == ort.__version__


def test_int8_outputs_close_to_fp32_on_real_photos(graphs, coco_images):
    fp32, int8 = graphs
    feed = {"images": _photos(coco_images[8:10])}  # not among the calibration photos
    scores32, boxes32 = _session(fp32).run(None, feed)
    scores8, boxes8 = _session(int8).run(None, feed)
    assert scores8.shape == scores32.shape and boxes8.shape == boxes32.shape
    assert np.isfinite(scores8).all() and np.isfinite(boxes8).all()
    # Measured on these photos with these random (parity) weights: mean |score diff| 0.0017, score correlation
    # 0.934, median |box diff| 4.0 px at 320. Random deep weights amplify rounding far more than trained ones do
    # (the fine-tuned T keeps its bccd AP, benchmarks/int8.py); the bounds leave about 2-3x headroom.
    assert np.abs(scores8 - scores32).mean() < 0.005
    assert np.corrcoef(scores8.ravel(), scores32.ravel())[0, 1] > 0.85
    assert np.median(np.abs(boxes8 - boxes32)) < 8.0


def test_reader_preprocesses_like_the_official_demo(detweights, coco_images):
    files = coco_images[:3]
    reader = ImageCalibrationReader(files, (IMG_SIZE, IMG_SIZE), batch_size=2, progress=False)
    assert len(reader) == 2
    first, second = reader.get_next()["images"], reader.get_next()["images"]
    assert reader.get_next() is None
    assert first.shape == (2, 3, IMG_SIZE, IMG_SIZE) and first.dtype == np.float32
    np.testing.assert_array_equal(first[0], detweights.official_preprocess(files[0], IMG_SIZE)[0].numpy())
    np.testing.assert_array_equal(second[0], detweights.official_preprocess(files[2], IMG_SIZE)[0].numpy())
    np.testing.assert_array_equal(second[1], first[0])  # the last batch is filled up by repeating images
    reader.set_range(1, 2)
    np.testing.assert_array_equal(reader.get_next()["images"], second)
    assert reader.get_next() is None
    reader.close()


def test_find_calibration_images(data_dir, coco_images, tmp_path):
    folder = data_dir / "coco128" / "images"
    picked = find_calibration_images(folder, num_images=5)
    assert len(picked) == 5 and picked == sorted(picked)
    assert picked[0] == coco_images[0] and picked[-1] == coco_images[-1]  # spread over the whole folder
    assert find_calibration_images(str(folder / "*.jpg"), num_images=None) == coco_images
    assert find_calibration_images(coco_images[:3][::-1], num_images=10) == coco_images[:3]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_calibration_images(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError, match="No calibration images found"):
        find_calibration_images(tmp_path)
    with pytest.raises(FileNotFoundError, match="No calibration images found"):
        find_calibration_images(str(tmp_path / "*.jpg"))
    with pytest.raises(ValueError, match="num_images"):
        find_calibration_images(folder, num_images=0)


def test_quantize_errors(graphs, photo_model, coco_images, tmp_path):
    fp32, int8 = graphs
    with pytest.raises(FileNotFoundError, match="does not exist"):
        quantize_onnx(tmp_path / "missing.onnx", tmp_path / "out.onnx", coco_images[:1])
    with pytest.raises(FileNotFoundError, match="No calibration images"):
        quantize_onnx(fp32, tmp_path / "out.onnx", tmp_path)
    with pytest.raises(ValueError, match="already quantised"):
        quantize_onnx(int8, tmp_path / "out.onnx", coco_images[:1])
    with pytest.raises(ValueError, match="method must be one of"):
        quantize_onnx(fp32, tmp_path / "out.onnx", coco_images[:1], method="mse")
    nms_graph = export_onnx(photo_model, tmp_path / "nms.onnx", img_size=IMG_SIZE, nms=True)
    with pytest.raises(ValueError, match="nms=True"):
        quantize_onnx(nms_graph, tmp_path / "out.onnx", coco_images[:1])
    assert not (tmp_path / "out.onnx").exists()


def test_missing_onnxruntime_says_how_to_install(graphs, coco_images, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "onnxruntime" or m.startswith("onnxruntime.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an absent package looks like to import
    with pytest.raises(ImportError, match=r"pip install 'damo_pipeline\[onnx\]'"):
        quantize_onnx(graphs[0], tmp_path / "out.onnx", coco_images[:1])


def test_cli_int8_from_exported_graph(graphs, data_dir, tmp_path, capsys):
    out = tmp_path / "cli-int8.onnx"
    pattern = str(data_dir / "coco128" / "images" / "*.jpg")
    assert export_main([str(graphs[0]), "--out", str(out), "--int8", "--calibration", pattern,
                        "--calibration-images", "2"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{"):])["quantization"]["calibration_images"] == 2
    assert read_metadata(out)["quantization"]["calibration_images"] == 2


def test_cli_int8_from_hub_folder_with_fixed_batch(photo_model, data_dir, coco_images, tmp_path):
    from damo_pipeline.hub import save_pretrained

    folder = save_pretrained(photo_model, tmp_path / "model", compute_profile=False)
    out = tmp_path / "b2-int8.onnx"
    assert export_main([str(folder), "--out", str(out), "--img-size", "256", "--batch", "2", "--int8",
                        "--calibration", str(data_dir / "coco128" / "images"), "--calibration-images", "3"]) == 0
    meta = read_metadata(out)
    assert meta["img_size"] == 256 and meta["quantization"]["calibration_images"] == 3
    scores, boxes = _session(out).run(None, {"images": _photos(coco_images[:2], 256)})
    assert scores.shape[0] == boxes.shape[0] == 2 and np.isfinite(scores).all()


def test_cli_int8_argument_errors(graphs, tmp_path, capsys):
    out = str(tmp_path / "x.onnx")
    for argv, message in (([str(graphs[0]), "--out", out, "--int8"], "needs --calibration"),
                          ([str(graphs[0]), "--out", out, "--int8", "--nms", "--calibration", "x"], "drop --nms"),
                          ([str(graphs[0]), "--out", out, "--calibration", "x"], "only used with --int8")):
        with pytest.raises(SystemExit) as exit_info:
            export_main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert export_main([str(graphs[0]), "--out", out, "--int8", "--calibration", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_nano_int8_runs(detweights, coco_images, tmp_path):
    """Nano (SiLU activations, depthwise convolutions) quantises too; its random weights amplify rounding more."""
    model = build_model("damoyolo-ns")
    model.load_state_dict(detweights.det_state_dict(model.state_dict()), strict=True)
    detweights.calibrate_bn(model, torch.from_numpy(_photos(coco_images[-2:]))).eval()
    fp32 = export_onnx(model, tmp_path / "ns.onnx", img_size=IMG_SIZE)
    int8 = quantize_onnx(fp32, tmp_path / "ns-int8.onnx", coco_images[:CALIBRATION_IMAGES], progress=False)
    feed = {"images": _photos(coco_images[8:10])}
    scores32, _ = _session(fp32).run(None, feed)
    scores8, boxes8 = _session(int8).run(None, feed)
    assert np.isfinite(scores8).all() and np.isfinite(boxes8).all()
    assert np.abs(scores8 - scores32).mean() < 0.1  # measured 0.014-0.046 with the random parity weights
