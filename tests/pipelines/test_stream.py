"""detector.stream(...): a video written here with OpenCV, image folders, iterables, and sources that fail."""
from pathlib import Path
from typing import List

import cv2
import numpy as np
import pytest
from PIL import Image

from damo_pipeline.pipelines import open_source

FRAME_SIZE = (192, 144)  # (width, height)


@pytest.fixture(scope="module")
def video(coco_images: List[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-frame MJPG .avi made of coco128 photos."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, FRAME_SIZE)
    assert writer.isOpened()
    for photo in coco_images[:5]:
        writer.write(cv2.resize(cv2.imread(str(photo)), FRAME_SIZE))
    writer.release()
    return path


def _decoded_frames(path: Path) -> List[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_video_stream_gives_one_result_per_frame(detector, video: Path) -> None:
    frames = _decoded_frames(video)
    assert len(frames) == 5
    results = list(detector.stream(video))
    assert [r.frame_index for r in results] == [0, 1, 2, 3, 4]
    for result, frame in zip(results, frames):
        expected = detector(frame)  # numpy BGR, as OpenCV decodes it
        assert result.source == str(video) and result.image_size == (FRAME_SIZE[1], FRAME_SIZE[0])
        np.testing.assert_array_equal(result["label_ids"], expected["label_ids"])
        np.testing.assert_array_equal(result["scores"], expected["scores"])
        np.testing.assert_array_equal(result["boxes"], expected["boxes"])
        np.testing.assert_array_equal(result.image, frame[:, :, ::-1])  # frames are RGB, as for files


def test_video_stream_in_batches_matches(detector, video: Path) -> None:
    one = list(detector.stream(str(video)))
    three = list(detector.stream(str(video), batch_size=3, score_threshold=0.3))
    assert len(three) == 5
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a["label_ids"], b["label_ids"])
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-5)


def test_video_source_reports_total_and_fps(video: Path) -> None:
    source = open_source(video)
    assert source.kind == "video" and source.total == 5 and source.fps == pytest.approx(5.0)
    assert sum(1 for _ in source) == 5


def test_stream_is_lazy(detector, video: Path) -> None:
    stream = detector.stream(video)
    first = next(stream)
    assert first.frame_index == 0
    stream.close()


def test_folder_stream_runs_every_image_sorted(detector, coco_images: List[Path], tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in reversed(coco_images[:3]):
        (folder / photo.name).write_bytes(photo.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    (folder / "SHOUT.PNG").write_bytes(b"")  # counted (suffix matches) -> its error must name it
    results = detector.stream(folder)
    names = [Path(next(results).source).name for _ in range(3)]
    assert names == ["000000000009.jpg", "000000000025.jpg", "000000000030.jpg"]
    with pytest.raises(ValueError, match="SHOUT.PNG"):
        next(results)


def test_iterables_and_single_images_stream(detector, coco_images: List[Path]) -> None:
    generator = (str(p) for p in coco_images[:2])
    assert [r.source for r in detector.stream(generator)] == [str(p) for p in coco_images[:2]]
    with Image.open(coco_images[0]) as image:
        (only,) = list(detector.stream(image.copy()))
    assert only.image_size == (image.height, image.width)


def test_bad_sources_fail_when_stream_is_called(detector, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.mp4.*does not exist"):
        detector.stream(tmp_path / "missing.mp4")
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"definitely not a video")
    with pytest.raises(OSError, match="OpenCV could not open video.*broken.avi"):
        detector.stream(broken)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no image files"):
        detector.stream(empty)
    with pytest.raises(OSError, match="could not open camera '97'"):
        detector.stream(97)
    with pytest.raises(ValueError, match="camera index must be >= 0"):
        detector.stream(-1)
    with pytest.raises(TypeError, match="Cannot stream from"):
        detector.stream(3.5)
    with pytest.raises(ValueError, match="batch_size"):
        detector.stream(tmp_path, batch_size=0)
