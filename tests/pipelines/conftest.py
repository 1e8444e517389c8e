"""Fixtures for the pipeline tests: deterministic T weights saved as real checkpoints, real coco128 photos.

The weights are the parity ``det_state_dict`` weights (``../shared/parity/detweights.py``) with BatchNorm
statistics calibrated on four real coco128 photos, so the scores on photos are spread out (no ties at 1.0) and
there are detections at every threshold the tests use.
"""
from pathlib import Path
from types import ModuleType
from typing import Dict, List

import pytest
import torch

from damo_pipeline.models import Detector, build_model
from damo_pipeline.pipelines import ObjectDetectionPipeline, pipeline

TEST_IMG_SIZE = 256  # small input for speed; the official-parity tests use the native 640



@pytest.fixture(scope="session")
def reference_model(detweights: ModuleType, coco_images: List[Path]) -> Detector:
    """damoyolo-t in training form with deterministic weights, BN calibrated on 4 photos, eval mode."""
    torch.manual_seed(0)
    model = build_model("damoyolo-t")
    model.load_state_dict(detweights.det_state_dict(model.state_dict()), strict=True)
    calibration = torch.cat([detweights.official_preprocess(str(p), 320) for p in coco_images[:4]])
    detweights.calibrate_bn(model, calibration)
    return model.eval()


@pytest.fixture(scope="session")
def checkpoints(reference_model: Detector, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """The reference weights written by our own code: ``pth`` (official layout {"model": sd}) and ``safetensors``."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("checkpoints")
    state_dict = {k: v.detach().clone().contiguous() for k, v in reference_model.state_dict().items()}
    torch.save({"model": state_dict}, folder / "damoyolo_t_test.pth")
    save_file(state_dict, str(folder / "damoyolo_t_test.safetensors"))
    return {"pth": folder / "damoyolo_t_test.pth", "safetensors": folder / "damoyolo_t_test.safetensors"}


@pytest.fixture(scope="session")
def small_options() -> Dict[str, object]:
    """The options of the ``detector`` fixture: CPU, a small input for speed, a display-like threshold."""
    return {"device": "cpu", "img_size": TEST_IMG_SIZE, "score_threshold": 0.3}


@pytest.fixture(scope="session")
def detector(checkpoints: Dict[str, Path], small_options: Dict[str, object]) -> ObjectDetectionPipeline:
    """A CPU pipeline on the .pth checkpoint at a small input size; tests override options per call only."""
    return pipeline("image-object-detection", model=checkpoints["pth"], **small_options)


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    torch.manual_seed(0)


class _ImageServer:
    """A real HTTP server on 127.0.0.1 serving a photo, errors and slow or oversized bodies."""

    def __init__(self, photo: Path) -> None:
        import http.server
        import threading
        import time

        body = photo.read_bytes()
        routes = {
            "/photo.jpg": (200, "image/jpeg", body),
            "/page.html": (200, "text/html", b"<html><body>not an image</body></html>"),
            "/missing.jpg": (404, "text/plain", b"not found"),
            "/broken.jpg": (500, "text/plain", b"server error"),
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/slow.jpg":
                    time.sleep(1.5)
                if path == "/unsized.jpg":  # no Content-Length: the size cap must count the streamed bytes
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                    return
                status, kind, payload = routes.get(path, routes["/photo.jpg"] if path == "/slow.jpg"
                                                   else (404, "text/plain", b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.photo_size = len(body)

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def image_server(coco_images: List[Path]):
    """Serves ``coco_images[1]`` at ``/photo.jpg`` (plus error routes) from a thread; shut down after the session."""
    server = _ImageServer(coco_images[1])
    yield server
    server.close()


@pytest.fixture()
def closed_port_url() -> str:
    """An http URL on a 127.0.0.1 port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/photo.jpg"
