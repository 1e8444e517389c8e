"""Mosaic, random affine and mixup: the official DAMO-YOLO training augmentation (``spec/training.md`` §3.2).

All geometry is vectorised numpy; all pixel work is cv2. Randomness comes from a ``numpy.random.Generator`` the
caller derives per sample, so a sample is a pure function of (seed, epoch, index).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np

POLYGON_POINTS = 1000  # each polygon is resampled to this many points before the affine warp (YOLOv5)


@dataclass
class Annotated:
    """An image with its boxes: the unit the augmentations pass along.

    Attributes:
        image: uint8 [H, W, 3] RGB.
        boxes: float32 [K, 4] xyxy in this image's pixels.
        labels: int64 [K].
        seg_points: float32 [P, 2] polygon points of the boxes that have one, concatenated in box order.
        seg_counts: int32 [K] points per box in ``seg_points`` (0: no polygon).
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    seg_points: np.ndarray = None
    seg_counts: np.ndarray = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if self.seg_counts is None:
            self.seg_counts = np.zeros(len(self.boxes), np.int32)
        if self.seg_points is None:
            self.seg_points = np.zeros((0, 2), np.float32)


def mosaic_tile_regions(tile: int, xc: int, yc: int, width: int, height: int,
                        size: int) -> Tuple[Tuple[int, int, int, int], Tuple[int, int, int, int]]:
    """Where tile ``tile`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of a ``width`` x ``height``
    image lands on the 2S x 2S canvas, its inner corner touching (xc, yc) (YOLOX layout).

    Returns:
        ``((x1, y1, x2, y2) on the canvas, (x1, y1, x2, y2) in the tile)``, equal-sized regions.
    """
    if tile == 0:
        x1, y1, x2, y2 = max(xc - width, 0), max(yc - height, 0), xc, yc
        small = (width - (x2 - x1), height - (y2 - y1), width, height)
    elif tile == 1:
        x1, y1, x2, y2 = xc, max(yc - height, 0), min(xc + width, 2 * size), yc
        small = (0, height - (y2 - y1), min(width, x2 - x1), height)
    elif tile == 2:
        x1, y1, x2, y2 = max(xc - width, 0), yc, xc, min(2 * size, yc + height)
        small = (width - (x2 - x1), 0, width, min(y2 - y1, height))
    elif tile == 3:
        x1, y1, x2, y2 = xc, yc, min(xc + width, 2 * size), min(2 * size, yc + height)
        small = (0, 0, min(width, x2 - x1), min(y2 - y1, height))
    else:
        raise ValueError(f"tile must be 0..3, got {tile}.")
    return (x1, y1, x2, y2), small


def build_mosaic(tiles: Sequence[Annotated], center: Tuple[int, int], size: int, fill: int = 114) -> Annotated:
    """Stitch four images into a 2S x 2S mosaic around ``center``.

    Each image is stretched to S x S (cv2 INTER_LINEAR, keep_ratio False) and placed as one quadrant; parts outside
    the canvas are cut. Boxes and polygons are scaled, shifted and clipped to [0, 2S] (boxes that end up with no
    area are removed later by the affine's candidate filter, as officially).

    Args:
        tiles: four images with their boxes, in quadrant order.
        center: (xc, yc) on the canvas, each in [S/2, 3S/2].
        size: tile size S.
        fill: canvas grey level.
    """
    if len(tiles) != 4:
        raise ValueError(f"A mosaic needs 4 tiles, got {len(tiles)}.")
    xc, yc = center
    canvas = np.full((2 * size, 2 * size, 3), fill, dtype=np.uint8)
    boxes: List[np.ndarray] = []
    points: List[np.ndarray] = []
    for index, tile in enumerate(tiles):
        height0, width0 = tile.image.shape[:2]
        image = cv2.resize(tile.image, (size, size), interpolation=cv2.INTER_LINEAR) \
            if (height0, width0) != (size, size) else tile.image
        (lx1, ly1, lx2, ly2), (sx1, sy1, sx2, sy2) = mosaic_tile_regions(index, xc, yc, size, size, size)
        canvas[ly1:ly2, lx1:lx2] = image[sy1:sy2, sx1:sx2]
        scale = np.array([size / width0, size / height0], dtype=np.float32)
        shift = np.array([lx1 - sx1, ly1 - sy1], dtype=np.float32)
        boxes.append(tile.boxes * np.tile(scale, 2) + np.tile(shift, 2))
        points.append(tile.seg_points * scale + shift)
    merged = np.concatenate(boxes, axis=0).clip(0, 2 * size)
    seg_points = np.concatenate(points, axis=0).clip(0, 2 * size)
    return Annotated(canvas, merged, np.concatenate([t.labels for t in tiles]), seg_points,
                     np.concatenate([t.seg_counts for t in tiles]).astype(np.int32))


def sample_affine(rng: np.random.Generator, canvas_size: Tuple[int, int], out_size: int, degrees: float,
                  translate: float, scale: Tuple[float, float], shear: float) -> Tuple[np.ndarray, float]:
    """Draw the random affine matrix M = T @ Sh @ R @ C (YOLOv5 ``random_perspective`` without perspective).

    Args:
        rng: random generator.
        canvas_size: (height, width) of the input (the 2S x 2S mosaic); C moves its centre to the origin.
        out_size: output side S; T moves the origin to U(0.5 - translate, 0.5 + translate) * S per axis.
        degrees / scale / shear: rotation range (+-deg), isotropic scale range, shear range (+-deg per axis).

    Returns:
        ``(M float64 [3, 3], s)`` mapping canvas pixels to output pixels, and the drawn scale.
    """
    centre = np.eye(3)
    centre[0, 2] = -canvas_size[1] / 2
    centre[1, 2] = -canvas_size[0] / 2
    angle = rng.uniform(-degrees, degrees)
    s = rng.uniform(scale[0], scale[1])
    rotation = np.eye(3)
    rotation[:2] = cv2.getRotationMatrix2D(center=(0, 0), angle=angle, scale=s)
    shearing = np.eye(3)
    shearing[0, 1] = np.tan(np.deg2rad(rng.uniform(-shear, shear)))
    shearing[1, 0] = np.tan(np.deg2rad(rng.uniform(-shear, shear)))
    translation = np.eye(3)
    translation[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_size
    translation[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_size
    return translation @ shearing @ rotation @ centre, float(s)


def _transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def resample_polygons(seg_points: np.ndarray, seg_counts: np.ndarray, num: int = POLYGON_POINTS) -> np.ndarray:
    """Resample each closed polygon to ``num`` points by linear interpolation along the point index.

    Args:
        seg_points: float32 [P, 2], the polygons concatenated.
        seg_counts: int32 [M] points per polygon, all > 0.

    Returns:
        float64 [M, num, 2].
    """
    counts = seg_counts.astype(np.int64)
    offsets = np.cumsum(counts) - counts
    position = np.linspace(0.0, 1.0, num)[None, :] * counts[:, None]  # along the closed polygon, 0..n
    first = np.minimum(np.floor(position).astype(np.int64), counts[:, None] - 1)
    frac = (position - first)[..., None]
    second = (first + 1) % counts[:, None]
    start = seg_points[offsets[:, None] + first].astype(np.float64)
    end = seg_points[offsets[:, None] + second].astype(np.float64)
    return start + (end - start) * frac


def warp_boxes(sample: Annotated, matrix: np.ndarray, out_size: int, use_polygons: bool = True) -> np.ndarray:
    """Boxes of ``sample`` after the affine ``matrix``, clipped to [0, out_size].

    Boxes with a polygon (and ``use_polygons``) become the extent of the warped polygon's points that lie inside
    the output (zeros when none does); the others the extent of their 4 warped corners.

    Returns:
        float32 [K, 4].
    """
    boxes = sample.boxes.astype(np.float64)
    count = len(boxes)
    if count == 0:
        return np.zeros((0, 4), np.float32)
    corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(count * 4, 2)
    warped = _transform_points(corners, matrix).reshape(count, 4, 2)
    new = np.concatenate([warped.min(axis=1), warped.max(axis=1)], axis=1).clip(0, out_size)
    has_polygon = sample.seg_counts > 0
    if use_polygons and has_polygon.any():
        polygons = resample_polygons(sample.seg_points, sample.seg_counts[has_polygon])
        points = _transform_points(polygons.reshape(-1, 2), matrix).reshape(polygons.shape)
        inside = ((points >= 0) & (points <= out_size)).all(axis=2)
        low = np.where(inside[..., None], points, np.inf).min(axis=1)
        high = np.where(inside[..., None], points, -np.inf).max(axis=1)
        from_polygon = np.concatenate([low, high], axis=1)
        from_polygon[~inside.any(axis=1)] = 0.0
        new[has_polygon] = from_polygon
    return new.astype(np.float32)


def box_candidates(before: np.ndarray, after: np.ndarray, scale: float, min_wh: float = 2.0,
                   min_area_ratio: float = 0.1, max_aspect: float = 20.0, eps: float = 1e-16) -> np.ndarray:
    """Keep mask for warped boxes: w, h > ``min_wh``; area / (original area * s^2) > ``min_area_ratio``;
    max(w/h, h/w) < ``max_aspect`` (YOLOv5 ``box_candidates`` against the original box scaled by s)."""
    w1 = (before[:, 2] - before[:, 0]) * scale
    h1 = (before[:, 3] - before[:, 1]) * scale
    w2 = after[:, 2] - after[:, 0]
    h2 = after[:, 3] - after[:, 1]
    aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > min_wh) & (h2 > min_wh) & (w2 * h2 / (w1 * h1 + eps) > min_area_ratio) & (aspect < max_aspect)


def random_affine(sample: Annotated, matrix: np.ndarray, scale: float, out_size: int, fill: int = 114,
                  use_polygons: bool = True, min_wh: float = 2.0, min_area_ratio: float = 0.1,
                  max_aspect: float = 20.0) -> Annotated:
    """Warp ``sample`` with ``matrix`` into an ``out_size`` square (bilinear, border ``fill``) and filter its boxes.

    Returns:
        The warped image with the surviving boxes (polygons are consumed: the result has none).
    """
    image = cv2.warpAffine(sample.image, matrix[:2], dsize=(out_size, out_size), flags=cv2.INTER_LINEAR,
                           borderValue=(fill, fill, fill))
    new_boxes = warp_boxes(sample, matrix, out_size, use_polygons)
    keep = box_candidates(sample.boxes, new_boxes, scale, min_wh, min_area_ratio, max_aspect)
    return Annotated(image, new_boxes[keep], sample.labels[keep])


def mixup(sample: Annotated, other: Annotated, rng: np.random.Generator, scale: Tuple[float, float],
          fill: int = 114) -> Annotated:
    """Blend ``other`` into ``sample`` at 50/50 (YOLOX mixup as DAMO-YOLO uses it).

    ``other`` is letterboxed top-left into an S x S canvas of ``fill``, resized by a jitter j ~ U(scale), flipped
    with probability 0.5, pasted into a zero canvas of max(jittered, S) and a random S x S crop taken. Pixels are
    ``floor(0.5 * a + 0.5 * b)``; ``other``'s boxes are transformed the same way, clipped to the crop and appended
    (no filter here: the caller drops boxes of area <= 4 px^2 afterwards).
    """
    target_h, target_w = sample.image.shape[:2]
    jitter = rng.uniform(scale[0], scale[1])
    flip = rng.uniform(0.0, 1.0) > 0.5
    height, width = other.image.shape[:2]
    ratio = min(target_h / height, target_w / width)
    canvas = np.full((target_h, target_w, 3), fill, dtype=np.uint8)
    new_w, new_h = int(width * ratio), int(height * ratio)
    if new_w > 0 and new_h > 0:
        canvas[:new_h, :new_w] = cv2.resize(other.image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    jittered_size = (max(1, int(target_w * jitter)), max(1, int(target_h * jitter)))
    canvas = cv2.resize(canvas, jittered_size, interpolation=cv2.INTER_LINEAR)
    ratio *= jitter
    if flip:
        canvas = canvas[:, ::-1]
    origin_h, origin_w = canvas.shape[:2]
    padded = np.zeros((max(origin_h, target_h), max(origin_w, target_w), 3), dtype=np.uint8)
    padded[:origin_h, :origin_w] = canvas
    y_offset = int(rng.integers(0, padded.shape[0] - target_h)) if padded.shape[0] > target_h else 0
    x_offset = int(rng.integers(0, padded.shape[1] - target_w)) if padded.shape[1] > target_w else 0
    crop = padded[y_offset:y_offset + target_h, x_offset:x_offset + target_w]

    boxes = other.boxes.astype(np.float64) * ratio
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, origin_w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, origin_h)
    if flip:
        boxes[:, [0, 2]] = origin_w - boxes[:, [2, 0]]
    boxes[:, 0::2] = (boxes[:, 0::2] - x_offset).clip(0, target_w)
    boxes[:, 1::2] = (boxes[:, 1::2] - y_offset).clip(0, target_h)
    blended = ((sample.image.astype(np.uint16) + crop.astype(np.uint16)) >> 1).astype(np.uint8)
    return Annotated(blended, np.concatenate([sample.boxes, boxes.astype(np.float32)]),
                     np.concatenate([sample.labels, other.labels]))


def select_boxes(sample: Annotated, keep: np.ndarray) -> Annotated:
    """The boxes (and their polygons) where ``keep`` is True; the image is shared, not copied."""
    keep = np.asarray(keep, dtype=bool)
    point_keep = np.repeat(keep, sample.seg_counts.astype(np.int64))
    return Annotated(sample.image, sample.boxes[keep], sample.labels[keep], sample.seg_points[point_keep],
                     sample.seg_counts[keep])


def drop_empty_boxes(sample: Annotated) -> Annotated:
    """Remove boxes with no width or height (e.g. boxes that the mosaic's canvas clip cut away entirely)."""
    boxes = sample.boxes
    return select_boxes(sample, (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))


def drop_small_boxes(sample: Annotated, min_area: float) -> Annotated:
    """Remove boxes with area <= ``min_area`` px^2 (step 4 of the official order)."""
    areas = (sample.boxes[:, 2] - sample.boxes[:, 0]) * (sample.boxes[:, 3] - sample.boxes[:, 1])
    keep = areas > min_area
    return Annotated(sample.image, sample.boxes[keep], sample.labels[keep])
