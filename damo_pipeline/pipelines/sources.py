"""Frame sources for ``pipeline.stream(source)``: video files, image folders, cameras and plain iterables.

``open_source(source)`` picks the first kind (in ``SOURCE_KINDS`` order) that accepts ``source`` and returns a
:class:`FrameSource`: an iterable of inputs the pipeline can load, plus what a progress bar or a video writer needs
(``total``, ``fps``, ``frame_size``). Video and camera frames are decoded by OpenCV and converted BGR -> RGB (the
official demo feeds raw BGR frames in its video mode; we do not copy that inconsistency).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from .inputs import IMAGE_SUFFIXES, VIDEO_SUFFIXES, LoadedImage, is_url

logger = logging.getLogger(__name__)

__all__ = ["FrameSource", "SOURCE_KINDS", "list_images", "open_source"]

_STREAM_SCHEMES = ("rtsp://", "rtmp://", "udp://", "tcp://")


@dataclass
class FrameSource:
    """Something to iterate frame by frame.

    Attributes:
        kind: ``"video"``, ``"camera"``, ``"folder"``, ``"image"`` or ``"iterable"``.
        name: the source as given (path, URL, camera index).
        items: the inputs, in order (``LoadedImage`` frames, paths, or anything the pipeline accepts).
        total: number of items when known (video frame count, folder size), else None.
        fps: frames per second of a video or camera, else None.
    """

    kind: str
    name: str
    items: Iterable[Any]
    total: Optional[int] = None
    fps: Optional[float] = None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def list_images(folder: Path) -> List[Path]:
    """The image files directly inside ``folder`` (suffixes in ``IMAGE_SUFFIXES``, any case), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _video_frames(capture: "cv2.VideoCapture", name: str) -> Iterator[LoadedImage]:
    """Decode every frame as RGB; the capture is released when the generator ends or is closed."""
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                return
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
            else:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB if frame.shape[2] == 4 else cv2.COLOR_BGR2RGB)
            yield LoadedImage(np.ascontiguousarray(frame), name, frame_index=index)
            index += 1
    finally:
        capture.release()


def _open_capture(target: Any, name: str, what: str) -> FrameSource:
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        capture.release()
        hint = "check the index and that no other program holds it" if what == "camera" else (
            "check that the file exists and is a video OpenCV can decode (mp4, avi, mkv, ...)")
        raise OSError(f"OpenCV could not open {what} {name!r}; {hint}.")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    return FrameSource(what, name, _video_frames(capture, name), total=count if count > 0 else None,
                       fps=fps if fps > 0 else None)


def _is_camera(source: Any) -> bool:
    return isinstance(source, int) and not isinstance(source, bool)


def _open_camera(source: int) -> FrameSource:
    if source < 0:
        raise ValueError(f"A camera index must be >= 0, got {source}.")
    return _open_capture(source, str(source), "camera")


def _is_path_like(source: Any) -> bool:
    return isinstance(source, Path) or (isinstance(source, str) and not is_url(source))


def _is_folder(source: Any) -> bool:
    return _is_path_like(source) and Path(source).expanduser().is_dir()


def _open_folder(source: Any) -> FrameSource:
    folder = Path(source).expanduser()
    images = list_images(folder)
    if not images:
        raise FileNotFoundError(f"Folder {str(source)!r} holds no image files (suffixes {', '.join(IMAGE_SUFFIXES)}).")
    return FrameSource("folder", str(source), images, total=len(images))


def _is_video(source: Any) -> bool:
    if isinstance(source, str) and source.lower().startswith(_STREAM_SCHEMES):
        return True
    if isinstance(source, (str, Path)):
        return Path(str(source).split("?", 1)[0]).suffix.lower() in VIDEO_SUFFIXES
    return False


def _open_video(source: Any) -> FrameSource:
    name = str(source)
    if _is_path_like(source) and not name.lower().startswith(_STREAM_SCHEMES):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Video file {name!r} does not exist.")
        name_for_cv = str(path)
    else:
        name_for_cv = name
    return _open_capture(name_for_cv, name, "video")


def _is_single_image(source: Any) -> bool:
    return isinstance(source, (str, Path, bytes, bytearray, memoryview)) or type(source).__module__.startswith(
        ("PIL.", "numpy", "torch"))


def _open_single(source: Any) -> FrameSource:
    return FrameSource("image", str(source) if isinstance(source, (str, Path)) else type(source).__name__,
                       [source], total=1)


def _is_iterable(source: Any) -> bool:
    return isinstance(source, Iterable)


def _open_iterable(source: Iterable[Any]) -> FrameSource:
    total = len(source) if hasattr(source, "__len__") else None
    return FrameSource("iterable", type(source).__name__, source, total=total)


# (kind, accepts, opener), tried in order.
SOURCE_KINDS: Tuple[Tuple[str, Callable[[Any], bool], Callable[[Any], FrameSource]], ...] = (
    ("camera", _is_camera, _open_camera),
    ("folder", _is_folder, _open_folder),
    ("video", _is_video, _open_video),
    ("image", _is_single_image, _open_single),
    ("iterable", _is_iterable, _open_iterable),
)


def open_source(source: Any) -> FrameSource:
    """Recognise ``source`` and open it (see ``SOURCE_KINDS``).

    Args:
        source: a camera index (int), an image folder, a video file or stream URL (``rtsp://``...), a single image
            input (path, URL, bytes, PIL, numpy, torch), or any iterable of image inputs.

    Raises:
        FileNotFoundError: a missing video file or an image-less folder.
        OSError: OpenCV cannot open the video or camera.
        TypeError: nothing recognises ``source``.
    """
    for _kind, accepts, opener in SOURCE_KINDS:
        if accepts(source):
            return opener(source)
    raise TypeError(f"Cannot stream from {type(source).__name__} {source!r}: expected a camera index (int), an image "
                    f"folder, a video file or stream URL, an image, or an iterable of images.")
