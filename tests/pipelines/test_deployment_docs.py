"""docs/deployment.md runs as written: its bash lines (damo-export) then its Python blocks, in a fresh folder."""
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
BLOCK = re.compile(r"(<!-- not run[^>]*-->\s*)?```(python|bash)\n(.*?)```", re.S)


def _blocks() -> List[Tuple[str, str]]:
    return [(kind, body) for skip, kind, body in BLOCK.findall(DOC.read_text()) if not skip]


def test_the_page_covers_every_engine_and_path() -> None:
    text = DOC.read_text()
    code = "\n".join(body for _, body in _blocks())
    for needle in ["export_onnx(", "nms=True", "read_metadata(", "custom_metadata_map", 'engine="onnxruntime"',
                   "quantize_onnx(", "--int8", "tensorrt_status()", "damo-export"]:
        assert needle in code, needle
    assert 'engine="tensorrt"' in text and "performance.md" in text


@pytest.mark.slow  # exports T at 640 three times, quantises it, runs ONNX Runtime (about 2 minutes on 2 cores)
def test_examples_run(tmp_path: Path, checkpoints, coco_images) -> None:
    pytest.importorskip("onnxruntime")
    (tmp_path / "street.jpg").write_bytes(coco_images[0].read_bytes())
    (tmp_path / "damoyolo_tinynasL20_T_436.pth").write_bytes(checkpoints["pth"].read_bytes())
    (tmp_path / "photos").mkdir()
    for photo in coco_images[1:5]:
        (tmp_path / "photos" / photo.name).write_bytes(photo.read_bytes())
    env_cache = {"DAMO_PIPELINE_CACHE": str(tmp_path / "cache")}
    import os

    env = {**os.environ, **env_cache}
    commands = " ".join(body for kind, body in _blocks() if kind == "bash").replace("\\\n", " ")
    for line in [c for c in commands.splitlines() if c.strip()]:
        args = shlex.split(line)
        assert args[0] == "damo-export"
        done = subprocess.run([sys.executable, "-m", "damo_pipeline.export.cli", *args[1:]], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, (line, done.stderr[-2000:])
    script = "\n\n".join(body for kind, body in _blocks() if kind == "python")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "damoyolo-t-int8.onnx").is_file() and (tmp_path / "damoyolo-t-int8b.onnx").is_file()
    assert list((tmp_path / "cache" / "onnx").glob("damoyolo-t-640x640-*.onnx"))
