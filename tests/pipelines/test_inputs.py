"""Every input form decodes to the same RGB array as the file path; every bad input fails clearly."""
import io
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from damo_pipeline.pipelines import InvalidImageError, load_image


@pytest.fixture(scope="module")
def photo(coco_images: List[Path]) -> Path:
    return coco_images[1]


@pytest.fixture(scope="module")
def photo_rgb(photo: Path) -> np.ndarray:
    return np.asarray(Image.open(photo).convert("RGB"))


def test_path_decodes_like_the_official_demo(photo: Path, photo_rgb: np.ndarray) -> None:
    loaded = load_image(str(photo))
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags.c_contiguous
    np.testing.assert_array_equal(loaded.rgb, photo_rgb)
    assert loaded.source == str(photo) and loaded.size == photo_rgb.shape[:2]
    np.testing.assert_array_equal(load_image(photo).rgb, photo_rgb)


@pytest.mark.parametrize("form", ["bytes", "bytearray", "memoryview", "pil", "numpy_bgr", "numpy_rgb",
                                  "torch_uint8", "torch_float"])
def test_every_form_gives_the_path_pixels(form: str, photo: Path, photo_rgb: np.ndarray) -> None:
    data = photo.read_bytes()
    inputs = {
        "bytes": lambda: (data, {}),
        "bytearray": lambda: (bytearray(data), {}),
        "memoryview": lambda: (memoryview(data), {}),
        "pil": lambda: (Image.open(photo), {}),
        "numpy_bgr": lambda: (np.ascontiguousarray(photo_rgb[:, :, ::-1]), {}),
        "numpy_rgb": lambda: (photo_rgb.copy(), {"color_order": "rgb"}),
        "torch_uint8": lambda: (torch.from_numpy(photo_rgb.copy()).permute(2, 0, 1), {}),
        "torch_float": lambda: (torch.from_numpy(photo_rgb.copy()).permute(2, 0, 1).float() / 255.0, {}),
    }
    image, options = inputs[form]()
    np.testing.assert_array_equal(load_image(image, **options).rgb, photo_rgb)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "LA", "I;16", "1"])
def test_pil_modes_are_converted_to_rgb(mode: str, photo: Path) -> None:
    image = Image.open(photo).convert(mode) if mode != "I;16" else Image.open(photo).convert("L").convert("I;16")
    loaded = load_image(image)
    assert loaded.rgb.shape == (image.height, image.width, 3)
    np.testing.assert_array_equal(loaded.rgb, np.asarray(image.convert("RGB")))


def test_decoded_images_are_writable_copies(photo: Path, photo_rgb: np.ndarray) -> None:
    rgb = photo_rgb.copy()
    with Image.open(photo) as pil:
        for image, options in [(rgb, {"color_order": "rgb"}), (torch.from_numpy(rgb).permute(2, 0, 1), {}),
                               (photo, {}), (pil, {})]:
            loaded = load_image(image, **options)
            assert loaded.rgb.flags.writeable and not np.shares_memory(loaded.rgb, rgb)


def test_grayscale_arrays_and_tensors(photo_rgb: np.ndarray) -> None:
    gray = photo_rgb[:, :, 1].copy()
    expected = np.repeat(gray[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(load_image(gray).rgb, expected)
    np.testing.assert_array_equal(load_image(gray[:, :, None]).rgb, expected)
    np.testing.assert_array_equal(load_image(torch.from_numpy(gray)).rgb, expected)
    np.testing.assert_array_equal(load_image(torch.from_numpy(gray)[None]).rgb, expected)


def test_four_channel_arrays_drop_alpha(photo_rgb: np.ndarray) -> None:
    bgra = np.concatenate([photo_rgb[:, :, ::-1], np.full(photo_rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(load_image(bgra).rgb, photo_rgb)


def test_exif_orientation_is_applied_unless_disabled(photo: Path, tmp_path: Path) -> None:
    image = Image.open(photo)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rotated_file = tmp_path / "rotated.jpg"
    image.save(rotated_file, exif=exif.tobytes(), quality=95)
    with Image.open(rotated_file) as reopened:
        stored = np.asarray(reopened.convert("RGB"))
        shown = np.asarray(ImageOps.exif_transpose(reopened).convert("RGB"))
    assert shown.shape[:2] == stored.shape[1::-1]
    np.testing.assert_array_equal(load_image(rotated_file).rgb, shown)
    np.testing.assert_array_equal(load_image(rotated_file, exif_transpose=False).rgb, stored)
    np.testing.assert_array_equal(load_image(rotated_file.read_bytes()).rgb, shown)


# -- bad inputs -----------------------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    with pytest.raises(FileNotFoundError, match="nope.jpg.*does not exist"):
        load_image(str(missing))


def test_folder_points_to_stream(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a folder.*stream"):
        load_image(tmp_path)


def test_video_file_points_to_stream(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 16)
    with pytest.raises(InvalidImageError, match="looks like a video.*stream"):
        load_image(video)


@pytest.mark.parametrize("content", [b"this is not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_file_that_is_not_an_image(content: bytes, tmp_path: Path) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_bytes(content)
    with pytest.raises(ValueError, match="fake.jpg"):
        load_image(fake)


def test_truncated_jpeg(photo: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(photo.read_bytes()[:3000])
    with pytest.raises(InvalidImageError, match="cut.jpg.*truncated"):
        load_image(cut)


def test_bad_bytes() -> None:
    with pytest.raises(InvalidImageError, match="Empty bytes"):
        load_image(b"")
    with pytest.raises(InvalidImageError, match="bytes of 5 bytes.*not an image"):
        load_image(b"hello")


@pytest.mark.parametrize("value", [42, 3.5, {"image": 1}, [[1, 2]], None, object()])
def test_unsupported_types(value) -> None:
    with pytest.raises(TypeError, match="Unsupported image input"):
        load_image(value)


@pytest.mark.parametrize("array, message", [
    (np.zeros((8, 8, 3), np.float32), "must be uint8"),
    (np.zeros((8, 8, 2), np.uint8), "must be HxWx3"),
    (np.zeros((2, 8, 8, 3), np.uint8), "must be HxWx3"),
    (np.zeros((3, 8, 9), np.uint8), "channels-first"),
    (np.zeros((0, 8, 3), np.uint8), "empty"),
])
def test_bad_numpy_arrays(array: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_image(array)


@pytest.mark.parametrize("tensor, message", [
    (torch.full((3, 8, 8), 200.0), r"values in \[0, 1\]"),
    (torch.zeros((2, 3, 8, 8), dtype=torch.uint8), "3xHxW"),
    (torch.zeros((8, 8, 3), dtype=torch.uint8), "3xHxW"),
    (torch.zeros((3, 8, 8), dtype=torch.int32), "must be uint8"),
    (torch.zeros((3, 0, 8), dtype=torch.uint8), "empty"),
])
def test_bad_tensors(tensor: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_image(tensor)


def test_bad_options_and_schemes() -> None:
    with pytest.raises(ValueError, match="color_order must be one of"):
        load_image(np.zeros((8, 8, 3), np.uint8), color_order="bgra")
    with pytest.raises(ValueError, match="only http:// and https://"):
        load_image("ftp://example.com/a.jpg")


def test_bytes_stream_of_a_png_round_trips(photo_rgb: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(photo_rgb).save(buffer, format="PNG")
    np.testing.assert_array_equal(load_image(buffer.getvalue()).rgb, photo_rgb)
