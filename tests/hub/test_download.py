"""URL downloads against a real HTTP server on 127.0.0.1: cache, progress, sha256, truncation, resume."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from damo_pipeline.hub import ChecksumMismatchError, DownloadError, download_url, url_cache_path

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes: more than one 1 MiB chunk
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def served(file_server):
    base, state = file_server
    state.files["/release/weights.pth"] = PAYLOAD
    return f"{base}/release/weights.pth", state


def test_download_then_cache_hit_without_a_request(served, capsys: pytest.CaptureFixture) -> None:
    url, state = served
    path = download_url(url, sha256=DIGEST, progress=True, backoff_s=0)
    assert path == url_cache_path(url)
    assert "downloads/127.0.0.1_" in path.as_posix() and path.name == "weights.pth"
    assert path.read_bytes() == PAYLOAD
    err = capsys.readouterr().err
    assert "weights.pth" in err and "100%" in err  # the tqdm progress bar ran to completion
    assert sorted(p.name for p in path.parent.iterdir()) == ["weights.pth", "weights.pth.lock"]  # no .part left
    assert len(state.requests) == 1

    assert download_url(url, sha256=DIGEST) == path  # second call: verified cache hit
    assert len(state.requests) == 1


def test_sha256_mismatch_is_rejected_and_nothing_is_kept(served) -> None:
    url, state = served
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ChecksumMismatchError, match=wrong):
        download_url(url, sha256=wrong, backoff_s=0)
    assert not url_cache_path(url).exists()
    assert not url_cache_path(url).with_name("weights.pth.part").exists()


def test_corrupt_cached_copy_is_replaced(served) -> None:
    url, state = served
    dest = url_cache_path(url)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(PAYLOAD[:-1] + b"X")  # same size, wrong bytes
    assert download_url(url, sha256=DIGEST, backoff_s=0).read_bytes() == PAYLOAD
    assert len(state.requests) == 1


def test_truncated_transfer_is_rejected_then_resumed(served) -> None:
    url, state = served
    state.truncate_next = 1
    path = download_url(url, sha256=DIGEST, backoff_s=0)
    assert path.read_bytes() == PAYLOAD
    assert len(state.requests) == 2
    assert state.requests[0][1] is None
    resumed_at = int(state.requests[1][1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(PAYLOAD) // 2  # the second attempt resumed what the first one wrote


def test_partial_download_is_resumed_with_range(served) -> None:
    url, state = served
    dest = url_cache_path(url)
    dest.parent.mkdir(parents=True)
    dest.with_name("weights.pth.part").write_bytes(PAYLOAD[:1000])
    assert download_url(url, sha256=DIGEST, backoff_s=0).read_bytes() == PAYLOAD
    assert state.requests == [("/release/weights.pth", "bytes=1000-")]


def test_server_without_range_support_restarts_from_zero(served) -> None:
    url, state = served
    state.ignore_range = True
    dest = url_cache_path(url)
    dest.parent.mkdir(parents=True)
    dest.with_name("weights.pth.part").write_bytes(b"garbage that is not the file's head")
    assert download_url(url, sha256=DIGEST, backoff_s=0).read_bytes() == PAYLOAD


def test_every_attempt_truncated_fails_and_keeps_the_partial_file(served) -> None:
    url, state = served
    state.truncate_next = 10
    with pytest.raises(DownloadError, match="after 3 attempts: transfer truncated"):
        download_url(url, retries=3, backoff_s=0)
    assert not url_cache_path(url).exists()
    part = url_cache_path(url).with_name("weights.pth.part")
    assert 0 < part.stat().st_size < len(PAYLOAD)  # kept for the next resume
    assert len(state.requests) == 3
    state.truncate_next = 0
    assert download_url(url, sha256=DIGEST, backoff_s=0).read_bytes() == PAYLOAD


def test_http_404_is_not_retried(file_server) -> None:
    base, state = file_server
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_url(f"{base}/absent.pth", backoff_s=0)
    assert len(state.requests) == 1


def test_offline_only_uses_the_cache(served, tmp_path: Path) -> None:
    url, state = served
    with pytest.raises(FileNotFoundError, match="offline"):
        download_url(url, local_files_only=True)
    assert state.requests == []


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="connection refused"):
        download_url(f"http://127.0.0.1:{port}/x.pth", dest=tmp_path / "x.pth", retries=2, backoff_s=0)
    assert not (tmp_path / "x.pth").exists()


def test_url_cache_path_rejects_non_http() -> None:
    with pytest.raises(ValueError, match="http"):
        url_cache_path("ftp://example.org/x.pth")
