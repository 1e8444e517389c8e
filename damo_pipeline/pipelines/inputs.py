"""Turning any supported image input into one array: ``[H, W, 3]`` uint8 RGB.

Supported inputs (dispatched by type through :func:`functools.singledispatch`):

* ``str`` / ``pathlib.Path``: an image file, decoded with PIL and converted with ``.convert("RGB")`` like the
  official demo; a ``str`` starting with ``http://`` or ``https://`` is fetched with ``requests``.
* ``bytes`` / ``bytearray`` / ``memoryview``: an encoded image file (JPEG, PNG, ...).
* ``PIL.Image.Image`` of any mode (``L``, ``RGBA``, ``CMYK``, ``P``, ...), converted to RGB.
* ``numpy.ndarray``: ``[H, W, 3]`` uint8 in **BGR** order by default (OpenCV, ModelScope), or RGB with
  ``color_order="rgb"``; ``[H, W, 4]`` (alpha dropped), ``[H, W]`` / ``[H, W, 1]`` grayscale.
* ``torch.Tensor``: ``[3, H, W]`` RGB, or ``[1, H, W]`` / ``[H, W]`` grayscale; uint8 (0..255) or floating
  point in [0, 1] (torchvision's ``to_tensor`` convention), rounded to uint8.

EXIF orientation of encoded files is applied (``exif_transpose=True``, the default), so boxes refer to the image
as viewers show it. The official demo ignores the orientation tag; pass ``exif_transpose=False`` to match it on
such photos.
"""
from __future__ import annotations

import functools
import io
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..version import __version__
from .errors import ImageDownloadError, InvalidImageError

logger = logging.getLogger(__name__)

__all__ = [
    "COLOR_ORDERS", "DEFAULT_MAX_DOWNLOAD_BYTES", "DEFAULT_URL_TIMEOUT", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES",
    "ImageLoadOptions", "LoadedImage", "describe_input", "is_url", "load_image",
]

COLOR_ORDERS = ("bgr", "rgb")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".jfif")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".gifv")
DEFAULT_URL_TIMEOUT = 10.0
DEFAULT_MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 16

ImageInput = Union[str, Path, bytes, bytearray, memoryview, Image.Image, np.ndarray, Any]  # Any: a torch.Tensor


@dataclass(frozen=True)
class ImageLoadOptions:
    """How inputs are read.

    Attributes:
        color_order: channel order of 3/4-channel numpy arrays, ``"bgr"`` (default) or ``"rgb"``.
        exif_transpose: rotate/flip encoded images by their EXIF orientation tag.
        timeout: seconds to wait for a URL's server (connect and each read).
        max_download_bytes: refuse URL bodies larger than this.
    """

    color_order: str = "bgr"
    exif_transpose: bool = True
    timeout: float = DEFAULT_URL_TIMEOUT
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES

    def __post_init__(self) -> None:
        if self.color_order not in COLOR_ORDERS:
            raise ValueError(f"color_order must be one of {COLOR_ORDERS}, got {self.color_order!r}.")
        if not self.timeout or self.timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}.")
        if not isinstance(self.max_download_bytes, int) or self.max_download_bytes <= 0:
            raise ValueError(f"max_download_bytes must be a positive int, got {self.max_download_bytes!r}.")


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image.

    Attributes:
        rgb: ``[H, W, 3]`` uint8 RGB, C-contiguous.
        source: a short description of where it came from (file path, URL, ``"<numpy array 480x640x3>"``).
        frame_index: position of the frame in a video or camera stream, else None.
    """

    rgb: np.ndarray
    source: str
    frame_index: Optional[int] = None

    @property
    def size(self) -> tuple:
        """``(height, width)``."""
        return tuple(self.rgb.shape[:2])


def is_url(value: Any) -> bool:
    """True for a ``str`` that starts with ``http://`` or ``https://`` (case-insensitive)."""
    return isinstance(value, str) and value[:8].lower().startswith(("http://", "https://"))


def describe_input(image: Any) -> str:
    """A short, printable description of an input for messages and results."""
    if isinstance(image, (str, Path)):
        text = str(image)
        return text if len(text) <= 200 else text[:197] + "..."
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"<{type(image).__name__} of {len(image)} bytes>"
    if isinstance(image, Image.Image):
        return f"<PIL image {image.mode} {image.width}x{image.height}>"
    if isinstance(image, np.ndarray):
        return f"<numpy array {'x'.join(map(str, image.shape))} {image.dtype}>"
    if _is_torch_tensor(image):
        return f"<torch tensor {'x'.join(map(str, image.shape))} {str(image.dtype).replace('torch.', '')}>"
    return f"<{type(image).__name__}>"


def load_image(image: ImageInput, options: Optional[ImageLoadOptions] = None, **overrides: Any) -> LoadedImage:
    """Decode one input into ``[H, W, 3]`` uint8 RGB.

    Args:
        image: any supported input (see the module docstring); a :class:`LoadedImage` is returned as is.
        options: reading options; keyword ``overrides`` (``color_order=...``) replace single fields.

    Returns:
        The :class:`LoadedImage`.

    Raises:
        FileNotFoundError: a path that does not exist. ``IsADirectoryError`` for a folder.
        InvalidImageError (ValueError): bytes that are not an image, or an array/tensor of the wrong shape or dtype.
        ImageDownloadError (OSError): a URL that cannot be fetched.
        TypeError: an unsupported input type.
    """
    if isinstance(image, LoadedImage):
        return image
    options = options or ImageLoadOptions()
    if overrides:
        options = replace(options, **overrides)
    rgb = _to_rgb(image, options)
    return LoadedImage(np.ascontiguousarray(rgb), describe_input(image))


def _is_torch_tensor(value: Any) -> bool:
    """True for a torch tensor; never imports torch (if it is not imported, nothing can be a tensor)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


@functools.singledispatch
def _to_rgb(image: Any, options: ImageLoadOptions) -> np.ndarray:
    if _is_torch_tensor(image):  # not registered by type: that would import torch for every pipeline
        return _tensor_to_rgb(image, options)
    raise TypeError(
        f"Unsupported image input {describe_input(image)}: expected a file path or http(s) URL (str/Path), "
        f"encoded bytes, a PIL image, a numpy array (HxWx3 uint8) or a torch tensor (3xHxW). Lists of these "
        f"are batches; videos, folders and cameras go through detector.stream(source).")


@_to_rgb.register
def _(image: str, options: ImageLoadOptions) -> np.ndarray:
    if is_url(image):
        return _decode(io.BytesIO(fetch_url(image, options)), image, options)
    if "://" in image[:16]:
        raise ValueError(f"Unsupported URL scheme in {describe_input(image)!r}: only http:// and https:// "
                         f"images are fetched; download the file and pass its path.")
    return _to_rgb(Path(image), options)


@_to_rgb.register
def _(image: Path, options: ImageLoadOptions) -> np.ndarray:
    path = image.expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Image file {str(image)!r} does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"{str(image)!r} is a folder, not an image; pass a list of its files or use "
                                f"detector.stream({str(image)!r}) to run every image in it.")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise InvalidImageError(f"{str(image)!r} looks like a video; use detector.stream({str(image)!r}) to get "
                                f"one result per frame.")
    try:
        handle = open(path, "rb")
    except OSError as e:
        raise type(e)(e.errno, f"Could not open image file {str(image)!r}: {e.strerror}") from e
    with handle:
        return _decode(handle, str(image), options)


@_to_rgb.register(bytes)
@_to_rgb.register(bytearray)
@_to_rgb.register(memoryview)
def _(image: Union[bytes, bytearray, memoryview], options: ImageLoadOptions) -> np.ndarray:
    if len(image) == 0:
        raise InvalidImageError("Empty bytes given as an image; pass the encoded file's content (JPEG, PNG, ...).")
    return _decode(io.BytesIO(bytes(image)), describe_input(image), options)


@_to_rgb.register
def _(image: Image.Image, options: ImageLoadOptions) -> np.ndarray:
    return _pil_to_rgb(image, describe_input(image), options)


@_to_rgb.register
def _(image: np.ndarray, options: ImageLoadOptions) -> np.ndarray:
    name = describe_input(image)
    if image.dtype != np.uint8:
        raise InvalidImageError(f"numpy image {name} must be uint8 (0..255); convert it with "
                                f"np.clip(array, 0, 255).astype(np.uint8) (or array * 255 for 0..1 floats).")
    if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[2] not in (1, 3, 4):
        raise InvalidImageError(f"numpy image {name} looks channels-first; numpy images are HxWxC: pass "
                                f"array.transpose(1, 2, 0).")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InvalidImageError(f"numpy image {name} must be HxWx3 (BGR, or RGB with color_order='rgb'), HxWx4 "
                                f"or HxW grayscale; got shape {image.shape}. Batches are lists of images.")
    _check_not_empty(image.shape[0], image.shape[1], name)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    rgb = image[:, :, :3]
    return rgb[:, :, ::-1] if options.color_order == "bgr" else np.array(rgb)  # never alias the caller's array


def _tensor_to_rgb(image: Any, options: ImageLoadOptions) -> np.ndarray:
    import torch

    name = describe_input(image)
    tensor = image.detach()
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3 or tensor.shape[0] not in (1, 3):
        raise InvalidImageError(f"torch image {name} must be 3xHxW RGB (or 1xHxW / HxW grayscale); got shape "
                                f"{tuple(image.shape)}. Batches are lists of images: list(batch_tensor).")
    _check_not_empty(tensor.shape[1], tensor.shape[2], name)
    tensor = tensor.cpu()
    if tensor.is_floating_point():
        low, high = float(tensor.min()), float(tensor.max())
        if not (low >= 0.0 and high <= 1.0):
            raise InvalidImageError(f"float torch image {name} must hold values in [0, 1] (torchvision's "
                                    f"convention), got [{low:g}, {high:g}]; pass a uint8 tensor for 0..255 values.")
        tensor = (tensor.float() * 255.0).round_().to(torch.uint8)
    elif tensor.dtype != torch.uint8:
        raise InvalidImageError(f"torch image {name} must be uint8 (0..255) or floating point (0..1), "
                                f"got {tensor.dtype}.")
    array = tensor.permute(1, 2, 0).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else np.array(array)  # never alias the tensor


def _check_not_empty(height: int, width: int, name: str) -> None:
    if height == 0 or width == 0:
        raise InvalidImageError(f"Image {name} is empty ({height}x{width} pixels).")


def _decode(stream: Union[io.BufferedIOBase, io.BytesIO], name: str, options: ImageLoadOptions) -> np.ndarray:
    """Decode an encoded image from a binary stream with PIL."""
    try:
        with Image.open(stream) as pil:
            pil.load()
            return _pil_to_rgb(pil, name, options)
    except InvalidImageError:
        raise
    except UnidentifiedImageError as e:
        raise InvalidImageError(f"{name!r} is not an image file PIL can read (JPEG, PNG, BMP, WebP, TIFF, GIF, ...)."
                                ) from e
    except Image.DecompressionBombError as e:
        raise InvalidImageError(f"{name!r} is too large to decode safely: {e}") from e
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data inside a known format
        raise InvalidImageError(f"{name!r} could not be decoded as an image (truncated or corrupt?): {e}") from e


def _pil_to_rgb(image: Image.Image, name: str, options: ImageLoadOptions) -> np.ndarray:
    _check_not_empty(image.height, image.width, name)
    if options.exif_transpose:
        image = ImageOps.exif_transpose(image)
    return np.array(image.convert("RGB"))  # a writable copy: users draw on result.image


def fetch_url(url: str, options: Optional[ImageLoadOptions] = None) -> bytes:
    """Download an image body with ``requests``: a timeout, a size cap and clear errors.

    Raises:
        ImageDownloadError: unreachable host, timeout, HTTP error status, or a body over
            ``options.max_download_bytes``.
    """
    import requests

    options = options or ImageLoadOptions()
    limit = options.max_download_bytes
    headers = {"User-Agent": f"damo_pipeline/{__version__}"}
    try:
        with requests.get(url, timeout=options.timeout, stream=True, headers=headers) as response:
            if response.status_code >= 400:
                raise ImageDownloadError(f"Could not fetch image {url!r}: HTTP {response.status_code} "
                                         f"{response.reason}.")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ImageDownloadError(f"Image {url!r} is {int(declared)} bytes, over the {limit}-byte limit "
                                         f"(max_download_bytes).")
            body = bytearray()
            for chunk in response.iter_content(chunk_size=_CHUNK):
                body.extend(chunk)
                if len(body) > limit:
                    raise ImageDownloadError(f"Image {url!r} is larger than the {limit}-byte limit "
                                             f"(max_download_bytes).")
    except requests.Timeout as e:
        raise ImageDownloadError(f"Could not fetch image {url!r}: no answer within {options.timeout:g} s.") from e
    except requests.RequestException as e:
        raise ImageDownloadError(f"Could not fetch image {url!r}: {type(e).__name__}: {e}") from e
    logger.debug("Fetched %d bytes from %s", len(body), url)
    return bytes(body)
