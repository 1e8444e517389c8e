"""Fixtures for the damo-detect tests: a real checkpoint written by our code, coco128 photos, a video, an HTTP server."""
import http.server
import importlib.util
import threading
from pathlib import Path
from typing import List

import cv2
import pytest
import torch

from damo_pipeline.models import build_model



@pytest.fixture(scope="session")
def checkpoint(parity_dir: Path, coco_images: List[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """damoyolo-t with the parity weights, BN calibrated on two photos, saved as {"model": state_dict}."""
    spec = importlib.util.spec_from_file_location("detweights", parity_dir / "detweights.py")
    detweights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(detweights)
    torch.manual_seed(0)
    model = build_model("damoyolo-t")
    model.load_state_dict(detweights.det_state_dict(model.state_dict()), strict=True)
    detweights.calibrate_bn(model, torch.cat([detweights.official_preprocess(str(p), 256) for p in coco_images[:2]]))
    path = tmp_path_factory.mktemp("cli_weights") / "damoyolo_t_cli.pth"
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def video(coco_images: List[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-frame MJPG .avi, 160x120."""
    path = tmp_path_factory.mktemp("cli_video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 4.0, (160, 120))
    assert writer.isOpened()
    for photo in coco_images[:3]:
        writer.write(cv2.resize(cv2.imread(str(photo)), (160, 120)))
    writer.release()
    return path


@pytest.fixture(scope="session")
def photo_url(coco_images: List[Path]):
    """``coco_images[0]`` served over HTTP from 127.0.0.1 (a real server in a thread)."""
    body = coco_images[0].read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status, payload = (200, body) if self.path == "/street.jpg" else (404, b"not found")
            self.send_response(status)
            self.send_header("Content-Type", "image/jpeg" if status == 200 else "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
