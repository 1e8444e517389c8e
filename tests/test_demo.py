"""Tests for damo_pipeline.demo: weight resolution, the no-weights message, end to end."""

import functools
import http.server
import socket
import threading
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from damo_pipeline import demo


@pytest.fixture
def sample_image(tmp_path: Path) -> Path:
    """A small made-up RGB picture (the demo must not need ../shared for these tests)."""
    rng = np.random.default_rng(0)
    path = tmp_path / "sample.jpg"
    assert cv2.imwrite(str(path), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """No env weights, an empty cache and a download URL whose port is closed. Returns the URL."""
    url = f"http://127.0.0.1:{_closed_port()}/x.pth"
    monkeypatch.delenv(demo.WEIGHTS_ENV, raising=False)
    for name in ("DAMO_PIPELINE_CACHE", "DAMO_PIPELINE_RELEASE_MIRROR", "DAMO_PIPELINE_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(demo.URL_ENV, url)
    return url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple]:
    """A loopback HTTP server over tmp_path/served; yields (base_url, folder)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def test_missing_checkpoint_file(
    tmp_path: Path, sample_image: Path, offline: str, capsys: pytest.CaptureFixture
) -> None:
    missing = tmp_path / "nope.pth"
    rc = demo.main(["--checkpoint", str(missing), "--image", str(sample_image), "--out", str(tmp_path / "o.jpg")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"--checkpoint {missing}: file not found" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.jpg").exists()


def test_no_weights_anywhere_explains_in_one_paragraph(
    tmp_path: Path, sample_image: Path, offline: str, capsys: pytest.CaptureFixture
) -> None:
    rc = demo.main(["--image", str(sample_image), "--out", str(tmp_path / "o.jpg")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "\n" not in err.strip(), err  # one paragraph
    assert "--checkpoint: not given" in err
    assert f"{demo.WEIGHTS_ENV}: not set" in err
    assert f"download of {offline}" in err and "connection refused" in err
    assert "--checkpoint PATH" in err and f"{demo.WEIGHTS_ENV}=PATH" in err
    assert demo.release_url("damoyolo-t") in err
    assert "Traceback" not in err
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_env_weights_missing_file(
    tmp_path: Path, sample_image: Path, offline: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(demo.WEIGHTS_ENV, str(tmp_path / "gone.safetensors"))
    rc = demo.main(["--image", str(sample_image)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{demo.WEIGHTS_ENV}={tmp_path / 'gone.safetensors'}: file not found" in err


def test_missing_image(tmp_path: Path, offline: str, capsys: pytest.CaptureFixture) -> None:
    assert demo.main(["--image", str(tmp_path / "none.jpg")]) == 2
    assert "file not found" in capsys.readouterr().err


def _checkpoint_bytes(model: str = "damoyolo-ns") -> bytes:
    import io

    import torch

    from damo_pipeline.models import build_model

    buffer = io.BytesIO()
    torch.save({"model": build_model(model).state_dict()}, buffer)
    return buffer.getvalue()


def test_resolution_order(tmp_path: Path, offline: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = demo.cached_path(offline)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(_checkpoint_bytes())
    _, source = demo.load_model("damoyolo-ns", None)  # cache hit: the closed port is never tried
    assert source == offline

    from_env = tmp_path / "env.pth"
    from_env.write_bytes(_checkpoint_bytes())
    monkeypatch.setenv(demo.WEIGHTS_ENV, str(from_env))
    assert demo.load_model("damoyolo-ns", None)[1] == str(from_env)

    explicit = tmp_path / "cli.pth"
    explicit.write_bytes(_checkpoint_bytes())
    assert demo.load_model("damoyolo-ns", str(explicit))[1] == str(explicit)


def test_download_is_cached_atomically(
    tmp_path: Path, offline: str, file_server: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served = file_server
    payload = _checkpoint_bytes()
    (served / "weights.pth").write_bytes(payload)
    url = f"{base_url}/weights.pth"
    monkeypatch.setenv(demo.URL_ENV, url)
    model, source = demo.load_model("damoyolo-ns", None)
    path = demo.cached_path(url)
    assert source == url and model.config.name == "damoyolo-ns"
    assert path.is_relative_to(tmp_path / "cache" / "damo_pipeline")
    assert path.read_bytes() == payload
    assert not list(path.parent.glob("*.part"))  # no partial file left behind


def test_download_http_error_is_reported(
    tmp_path: Path, offline: str, file_server: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, _ = file_server
    monkeypatch.setenv(demo.URL_ENV, f"{base_url}/absent.pth")
    with pytest.raises(demo.WeightsUnavailable) as info:
        demo.load_model("damoyolo-s", None)
    assert "HTTP 404" in info.value.attempts[-1]
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_demo_end_to_end_with_model_weights(
    tmp_path: Path, sample_image: Path, offline: str, capsys: pytest.CaptureFixture
) -> None:
    try:
        from damo_pipeline.models import build_model, load_checkpoint  # noqa: F401
    except ImportError as e:
        pytest.skip(f"damo_pipeline.models.build_model / load_checkpoint not available yet: {e}")
    import torch

    checkpoint = tmp_path / "t.pth"
    torch.save({"model": build_model("damoyolo-t").state_dict()}, checkpoint)
    out = tmp_path / "annotated.jpg"
    argv = ["--model", "damoyolo-t", "--checkpoint", str(checkpoint), "--image", str(sample_image), "--out", str(out)]
    rc = demo.main(argv)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    written = cv2.imread(str(out))
    assert written is not None and written.shape == (48, 64, 3)
    for line in captured.out.splitlines():
        score, x1, y1, x2, y2 = map(float, line.rsplit(" ", 5)[1:])
        assert score > 0.3 and x1 <= x2 and y1 <= y2
