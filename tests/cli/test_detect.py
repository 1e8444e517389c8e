"""damo-detect: images, folders, URLs and videos; --json, --save; clear errors with exit code 2."""
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import cv2
import pytest

from damo_pipeline.cli.detect import main
from damo_pipeline.pipelines import DetectionResult, pipeline

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_args(checkpoint: Path) -> List[str]:
    return ["--model", "damoyolo-t", "--checkpoint", str(checkpoint), "--device", "cpu", "--img-size", "256",
            "--score-threshold", "0.4"]


@pytest.fixture(scope="module")
def reference(checkpoint: Path):
    return pipeline("image-object-detection", model="damoyolo-t", checkpoint=checkpoint, device="cpu", img_size=256,
                    score_threshold=0.4)


def _json_lines(text: str) -> List[DetectionResult]:
    return [DetectionResult.from_json(line) for line in text.splitlines() if line.strip()]


def test_image_json_equals_the_pipeline(base_args, reference, coco_images, capsys) -> None:
    assert main([str(coco_images[0]), "--json", *base_args]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    expected = reference(coco_images[0])
    assert expected.num_detections > 0 and result == expected and result.source == str(coco_images[0])


def test_image_text_output(base_args, reference, coco_images, capsys) -> None:
    assert main([str(coco_images[1]), *base_args]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = reference(coco_images[1])
    assert lines[0] == f"{coco_images[1]}: {expected.num_detections} detections"
    assert len(lines) == 1 + expected.num_detections
    label, score, *box = lines[1].split()
    assert label == expected["labels"][0].split()[0] and float(score) == pytest.approx(expected["scores"][0], abs=1e-3)
    assert [float(v) for v in box] == pytest.approx(expected["boxes"][0].tolist(), abs=0.06)


def test_folder_with_save_and_json(base_args, coco_images, tmp_path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for photo in coco_images[:3]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    out = tmp_path / "out"
    assert main([str(folder), "--save", str(out), "--json", "--batch-size", "2", *base_args]) == 0
    results = _json_lines(capsys.readouterr().out)
    assert [Path(r.source).name for r in results] == [p.name for p in coco_images[:3]]
    for photo, result in zip(coco_images[:3], results):
        annotated = cv2.imread(str(out / photo.name))
        assert annotated.shape[:2] == result.image_size
        assert DetectionResult.from_json((out / f"{photo.stem}.json").read_text()) == result


def test_url_source(base_args, reference, photo_url, coco_images, capsys) -> None:
    assert main([f"{photo_url}/street.jpg", "--json", *base_args]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    assert result == reference(coco_images[0])


def test_video_with_save(base_args, video, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main([str(video), "--save", str(out), "--json", *base_args]) == 0
    results = _json_lines(capsys.readouterr().out)
    assert [r.frame_index for r in results] == [0, 1, 2]
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (160, 120)
    capture.release()
    saved = _json_lines((out / "clip.jsonl").read_text())
    assert saved == results


def test_classes_option(base_args, coco_images, capsys) -> None:
    assert main([str(coco_images[0]), "--json", "--classes", "frisbee,42", *base_args]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    assert set(result["label_ids"].tolist()) <= {29, 42}


@pytest.mark.parametrize("source, options, message", [
    ("missing.jpg", [], "missing.jpg"),
    ("97", [], "could not open camera '97'"),
    (None, ["--checkpoint", "nope.pth"], "nope.pth"),
    (None, ["--score-threshold", "2"], "score_threshold must be a number in"),
    (None, ["--classes", "unicorn"], "not classes of this model"),
])
def test_errors_exit_2_with_one_line(source, options, message, base_args, coco_images, tmp_path, capsys,
                                     monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([source or str(coco_images[0]), *base_args, *options]) == 2  # later options win in argparse
    err = capsys.readouterr().err
    assert err.startswith("damo-detect: error:") and message in err


def test_default_model_without_weights_exits_2(coco_images, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DAMO_PIPELINE_OFFLINE", "1")
    monkeypatch.setenv("DAMO_PIPELINE_CACHE", str(tmp_path))
    assert main([str(coco_images[0]), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "No weights found for 'damoyolo-s'" in err and "checkpoint" in err


def test_console_entry_point_in_a_subprocess(base_args, coco_images, tmp_path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "damo_pipeline.cli.detect", str(coco_images[0]), "--json",
                           *base_args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    (result,) = _json_lines(done.stdout)
    assert result.num_detections > 0
    missing = subprocess.run([sys.executable, "-m", "damo_pipeline.cli.detect", "gone.jpg", *base_args],
                             capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert missing.returncode == 2 and "gone.jpg" in missing.stderr and "Traceback" not in missing.stderr


def test_onnxruntime_engine_option(base_args, reference, coco_images, tmp_path, capsys, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("DAMO_PIPELINE_CACHE", str(tmp_path / "cache"))
    assert main([str(coco_images[0]), "--json", "--engine", "onnxruntime", "--threads", "1", *base_args]) == 0
    (result,) = _json_lines(capsys.readouterr().out)
    expected = reference(coco_images[0])
    assert result["labels"] == expected["labels"] and result.num_detections == expected.num_detections > 0
    assert max(abs(a - b) for a, b in zip(result["scores"], expected["scores"])) < 1e-4
    assert len(list((tmp_path / "cache" / "onnx").glob("damoyolo-t-256x256-*.onnx"))) == 1
