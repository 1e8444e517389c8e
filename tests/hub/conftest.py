"""Fixtures for the hub tests: isolated caches, a real Range-capable HTTP server, small real checkpoints.

Nothing here reaches the network: every cache (ours, Hugging Face's, ModelScope's) points into tmp_path,
and the tests that resolve hub ids run the real clients with ``local_files_only`` / offline mode.
"""
from __future__ import annotations

import hashlib
import http.server
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest
import torch

from damo_pipeline.models import Detector, build_model

ENV_VARS = ("DAMO_PIPELINE_CACHE", "DAMO_PIPELINE_OFFLINE", "DAMO_PIPELINE_HUB_ORDER", "DAMO_PIPELINE_REGISTRY",
            "DAMO_PIPELINE_RELEASE_MIRROR", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN",
            "MODELSCOPE_API_TOKEN")
CLASS_NAMES = ["raccoon", "badger", "fox"]


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every cache in tmp_path; no hub environment variable leaks in from the machine."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    caches = tmp_path / "caches"
    monkeypatch.setenv("DAMO_PIPELINE_CACHE", str(caches / "damo_pipeline"))
    monkeypatch.setenv("HF_HOME", str(caches / "hf_home"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(caches / "modelscope"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(caches / "xdg"))
    return caches


@pytest.fixture
def tiny_detector() -> Detector:
    """damoyolo-ns (1.4 M parameters) with 3 named classes and seeded, non-trivial weights, in eval mode."""
    torch.manual_seed(0)
    model = build_model("damoyolo-ns", class_names=CLASS_NAMES)
    with torch.no_grad():  # move BN statistics off their defaults so a wrong load would show
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                tensor.normal_(0, 0.1)
    return model.eval()


@pytest.fixture
def sample_input() -> torch.Tensor:
    """[2, 3, 64, 64] float RGB 0..255 (a small input keeps the forward pass cheap)."""
    generator = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 64, 64, generator=generator) * 255


@dataclass
class ServerState:
    """What the test server serves and what it saw."""

    files: Dict[str, bytes] = field(default_factory=dict)
    truncate_next: int = 0          # how many upcoming responses are cut in half (connection closed early)
    ignore_range: bool = False      # answer Range requests with the whole file (200)
    requests: List[Tuple[str, Optional[str]]] = field(default_factory=list)  # (path, Range header)


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        state = self.server.state  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        state.requests.append((self.path, range_header))
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start, status = 0, 200
        match = re.match(r"bytes=(\d+)-$", range_header or "")
        if match and not state.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if state.truncate_next > 0:
            state.truncate_next -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def file_server() -> Iterator[Tuple[str, ServerState]]:
    """A real HTTP server on 127.0.0.1 with Range support and fault injection; yields (base_url, state)."""
    state = ServerState()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file (what the Hub uses as the etag of non-LFS files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lay_out_hf_cache(cache_dir: Path, repo_id: str, folder: Path, commit: str, refs: Tuple[str, ...] = ("main",)
                     ) -> Path:
    """Copy ``folder`` into an HF cache the way ``snapshot_download`` lays it out.

    ``models--org--name/blobs/<etag>`` (sha256 for LFS files such as safetensors, git sha1 otherwise),
    ``snapshots/<commit>/<file>`` relative symlinks to the blobs, and ``refs/<name>`` holding the commit.
    Returns the snapshot folder.
    """
    repo_dir = cache_dir / f"models--{repo_id.replace('/', '--')}"
    blobs, snapshot = repo_dir / "blobs", repo_dir / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        etag = hashlib.sha256(data).hexdigest() if path.suffix == ".safetensors" else git_blob_sha1(data)
        (blobs / etag).write_bytes(data)
        os.symlink(os.path.join("..", "..", "blobs", etag), snapshot / path.name)
    (repo_dir / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo_dir / "refs" / ref).write_text(commit)
    return snapshot


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def same_outputs(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        (sa, ba), (sb, bb) = a.eval()(x), b.eval()(x)
    return torch.equal(sa, sb) and torch.equal(ba, bb)


@pytest.fixture
def helpers():
    """The helper functions above (test modules cannot import conftest under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(lay_out_hf_cache=lay_out_hf_cache, same_weights=same_weights, same_outputs=same_outputs,
                           git_blob_sha1=git_blob_sha1, class_names=list(CLASS_NAMES))
