"""Image URLs against a real HTTP server on 127.0.0.1: success, HTTP errors, non-images, size cap, timeout."""
from pathlib import Path
from typing import List

import numpy as np
import pytest
from PIL import Image

from damo_pipeline.pipelines import ImageDownloadError, InvalidImageError, load_image


def test_url_decodes_like_the_file(image_server, coco_images: List[Path]) -> None:
    loaded = load_image(image_server.url("/photo.jpg"))
    np.testing.assert_array_equal(loaded.rgb, np.asarray(Image.open(coco_images[1]).convert("RGB")))
    assert loaded.source == image_server.url("/photo.jpg")


@pytest.mark.parametrize("path, message", [("/missing.jpg", "HTTP 404 Not Found"),
                                           ("/broken.jpg", "HTTP 500")])
def test_http_errors_name_the_url_and_status(image_server, path: str, message: str) -> None:
    with pytest.raises(ImageDownloadError, match=message) as info:
        load_image(image_server.url(path))
    assert image_server.url(path) in str(info.value)
    assert isinstance(info.value, OSError)


def test_a_page_that_is_not_an_image(image_server) -> None:
    with pytest.raises(InvalidImageError, match="page.html.*not an image"):
        load_image(image_server.url("/page.html"))


@pytest.mark.parametrize("path", ["/photo.jpg", "/unsized.jpg"])
def test_size_cap(image_server, path: str) -> None:
    with pytest.raises(ImageDownloadError, match="limit"):
        load_image(image_server.url(path), max_download_bytes=1000)
    assert load_image(image_server.url(path), max_download_bytes=image_server.photo_size).rgb.ndim == 3


def test_timeout(image_server) -> None:
    with pytest.raises(ImageDownloadError, match="no answer within 0.3 s"):
        load_image(image_server.url("/slow.jpg"), timeout=0.3)


def test_unreachable_host(closed_port_url: str) -> None:
    with pytest.raises(ImageDownloadError, match="Could not fetch image.*ConnectionError"):
        load_image(closed_port_url)
